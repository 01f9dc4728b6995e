package health

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/breaker"
)

// t0 is an arbitrary start time; tests add durations to it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func at(d time.Duration) int64 { return t0 + int64(d) }

// logBuffer is a goroutine-safe log destination for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count returns how many log lines contain every one of parts.
func (l *logBuffer) count(parts ...string) int {
	n := 0
	for line := range strings.Lines(l.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func newLog() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, nil)), lb
}

func testOutlierConfig() OutlierConfig {
	c := DefaultOutlierConfig()
	c.ConsecutiveFailures = 3
	c.BaseEjection = 30 * time.Second
	c.MaxEjection = 300 * time.Second
	return c
}

// newPool returns a pool of n member outliers named b0, b1, ...
func newPool(t *testing.T, c OutlierConfig, n int) (*Pool, []*Outlier, *logBuffer) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	log, lb := newLog()
	p := NewPool(c, log)
	var os []*Outlier
	for i := range n {
		os = append(os, NewOutlier(fmt.Sprintf("http://b%d", i), p))
	}
	p.SetMembers(os)
	return p, os, lb
}

func fail(o *Outlier, now int64, n int) {
	for range n {
		o.Record(now, breaker.ConnectError)
	}
}

func TestOutlierConsecutive(t *testing.T) {
	S, C, T, X, N := breaker.Success, breaker.ConnectError, breaker.Timeout, breaker.ServerError, breaker.Canceled
	G := breaker.GatewayError
	tests := []struct {
		name     string
		cfg      func(*OutlierConfig)
		outcomes []breaker.Outcome
		ejected  bool
	}{
		{"ejects at the threshold", nil, []breaker.Outcome{C, T, C}, true},
		{"below the threshold", nil, []breaker.Outcome{C, C}, false},
		{"success resets", nil, []breaker.Outcome{C, C, S, C, C}, false},
		{"canceled is neutral", nil, []breaker.Outcome{C, N, C, N, C}, true},
		{"502/503/504 count by default", nil, []breaker.Outcome{G, C, G}, true},
		{"other 5xx do not count by default", nil, []breaker.Outcome{X, X, X, X}, false},
		{"other 5xx reset by default", nil, []breaker.Outcome{C, C, X, C, C}, false},
		{"every 5xx counts with failureOn5xx", func(c *OutlierConfig) { c.FailureOn5xx = true },
			[]breaker.Outcome{X, G, X}, true},
		{"rule off", func(c *OutlierConfig) { c.ConsecutiveFailures = 0 },
			[]breaker.Outcome{C, C, C, C, C, C}, false},
		{"disabled", func(c *OutlierConfig) { c.Enabled = false },
			[]breaker.Outcome{C, C, C, C, C, C}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testOutlierConfig()
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			_, os, lb := newPool(t, c, 2)
			o := os[0]
			for _, r := range tt.outcomes {
				o.Record(at(0), r)
			}
			if got := !o.Available(at(0)); got != tt.ejected {
				t.Fatalf("ejected = %v, want %v", got, tt.ejected)
			}
			if !tt.ejected {
				return
			}
			if o.EjectedUntil() != at(30*time.Second) || o.EjectedAt() != at(0) || o.Ejections() != 1 {
				t.Errorf("until %v at %v ejections %d", o.EjectedUntil(), o.EjectedAt(), o.Ejections())
			}
			if !o.Available(at(30 * time.Second)) {
				t.Error("still ejected at the end of the ejection")
			}
			if lb.count(`msg="backend ejected"`, "backend=http://b0", `reason="3 consecutive failures (last: `, "duration=30s", "ejections=1", "ejected=1", "pool=2") != 1 {
				t.Errorf("log:\n%s", lb)
			}
		})
	}
}

func TestOutlierIgnoresResultsWhileEjected(t *testing.T) {
	_, os, _ := newPool(t, testOutlierConfig(), 2)
	o := os[0]
	fail(o, at(0), 3)
	fail(o, at(time.Second), 10) // late results of requests sent before
	fail(o, at(30*time.Second), 2)
	if !o.Available(at(30 * time.Second)) {
		t.Error("failures reported while ejected counted after it ended")
	}
	fail(o, at(30*time.Second), 1)
	if o.Available(at(30 * time.Second)) {
		t.Error("not ejected again at the threshold")
	}
}

func TestOutlierEjectionGrowth(t *testing.T) {
	c := testOutlierConfig()
	c.BaseEjection = 30 * time.Second
	c.MaxEjection = 300 * time.Second
	t.Run("doubles up to maxEjection", func(t *testing.T) {
		_, os, _ := newPool(t, c, 2)
		o := os[0]
		now := at(0)
		for i, want := range []time.Duration{30, 60, 120, 240, 300, 300, 300} {
			fail(o, now, 3)
			got := time.Duration(o.EjectedUntil() - now)
			if got != want*time.Second || o.Ejections() != i+1 {
				t.Fatalf("ejection %d: %v (ejections %d), want %v", i+1, got, o.Ejections(), want*time.Second)
			}
			now = o.EjectedUntil() + int64(time.Second) // fail again soon after
		}
	})
	t.Run("forgotten after maxEjection in the pool", func(t *testing.T) {
		_, os, _ := newPool(t, c, 2)
		o := os[0]
		fail(o, at(0), 3)
		fail(o, at(30*time.Second), 3) // 60s, ends at 90s
		tests := []struct {
			name  string
			after time.Duration // since the last ejection ended
			want  time.Duration
		}{
			{"just under maxEjection", c.MaxEjection - time.Second, 120 * time.Second},
			{"maxEjection", c.MaxEjection, 30 * time.Second},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				now := o.EjectedUntil() + int64(tt.after)
				fail(o, now, 3)
				if got := time.Duration(o.EjectedUntil() - now); got != tt.want {
					t.Errorf("ejection lasts %v, want %v", got, tt.want)
				}
			})
		}
	})
	t.Run("ejectionTime does not overflow", func(t *testing.T) {
		for _, n := range []int{1, 2, 10, 62, 63, 64, 1000} {
			if d := ejectionTime(time.Hour, 24*time.Hour, n); d <= 0 || d > 24*time.Hour {
				t.Errorf("n=%d: %v", n, d)
			}
		}
	})
}

func TestOutlierMaxEjectedPercent(t *testing.T) {
	tests := []struct {
		size, percent, allowed int
	}{
		{1, 50, 0},
		{2, 50, 1},
		{3, 50, 1},
		{4, 50, 2},
		{5, 50, 2},
		{4, 100, 4},
		{4, 0, 0},
		{10, 10, 1},
		{10, 35, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d members at %d%%", tt.size, tt.percent), func(t *testing.T) {
			c := testOutlierConfig()
			c.MaxEjectedPercent = tt.percent
			p, os, lb := newPool(t, c, tt.size)
			for _, o := range os {
				fail(o, at(0), 3)
			}
			if got := p.Ejected(at(0)); got != tt.allowed {
				t.Errorf("%d ejected, want %d", got, tt.allowed)
			}
			if refused := tt.size - tt.allowed; lb.count(`msg="backend not ejected: too many ejected"`) != refused {
				t.Errorf("want %d refusals logged:\n%s", refused, lb)
			}
		})
	}
}

func TestOutlierCapReleasesWhenAnEjectionEnds(t *testing.T) {
	p, os, lb := newPool(t, testOutlierConfig(), 2) // one may be ejected
	a, b := os[0], os[1]
	fail(a, at(0), 3)
	fail(b, at(0), 3)
	if a.Available(at(0)) || !b.Available(at(0)) {
		t.Fatal("want a ejected, b refused")
	}
	// b keeps failing: no new attempt (and no log) until refusedRetry.
	fail(b, at(500*time.Millisecond), 5)
	if lb.count("not ejected") != 1 || !b.Available(at(500*time.Millisecond)) {
		t.Errorf("refusal repeated within refusedRetry:\n%s", lb)
	}
	// After a's ejection ends, b's next failure ejects it.
	fail(b, at(30*time.Second), 1)
	if b.Available(at(30*time.Second)) || p.Ejected(at(30*time.Second)) != 1 {
		t.Errorf("b not ejected after a's ejection ended")
	}
	if lb.count("not ejected") != 1 {
		t.Errorf("refusal logged again:\n%s", lb)
	}
}

func TestOutlierCapLogsOncePerRun(t *testing.T) {
	_, os, lb := newPool(t, testOutlierConfig(), 1) // never ejected
	o := os[0]
	for i := range 5 {
		fail(o, at(time.Duration(i)*2*time.Second), 3)
	}
	if n := lb.count("not ejected"); n != 1 {
		t.Errorf("%d refusals logged in one failure run, want 1", n)
	}
	o.Record(at(20*time.Second), breaker.Success)
	fail(o, at(22*time.Second), 3)
	if n := lb.count("not ejected"); n != 2 {
		t.Errorf("%d refusals logged after a new run, want 2", n)
	}
}

func TestOutlierMembership(t *testing.T) {
	p, os, _ := newPool(t, testOutlierConfig(), 3)
	stranger := NewOutlier("http://new", p)
	fail(stranger, at(0), 3)
	if !stranger.Available(at(0)) {
		t.Error("a non-member was ejected")
	}
	// Reload: b0 leaves, stranger joins. Pool of 3, 50%: one may be ejected.
	p.SetMembers([]*Outlier{os[1], os[2], stranger, stranger})
	if p.Len() != 3 {
		t.Errorf("Len() = %d after a duplicate", p.Len())
	}
	fail(os[0], at(0), 3)
	if !os[0].Available(at(0)) {
		t.Error("a removed member was ejected")
	}
	fail(stranger, at(0), 3)
	if stranger.Available(at(0)) {
		t.Error("a new member was not ejected")
	}
	other := NewPool(testOutlierConfig(), nil)
	defer func() {
		if recover() == nil {
			t.Error("SetMembers accepted an Outlier of another pool")
		}
	}()
	other.SetMembers([]*Outlier{os[0]})
}

func TestOutlierFailurePercent(t *testing.T) {
	c := testOutlierConfig()
	c.ConsecutiveFailures = 0
	c.FailurePercent = 50
	c.MinRequests = 10
	c.Window = 10 * time.Second
	S, F := breaker.Success, breaker.ConnectError
	type rec struct {
		at time.Duration
		r  breaker.Outcome
	}
	many := func(d time.Duration, r breaker.Outcome, n int) []rec {
		var rs []rec
		for range n {
			rs = append(rs, rec{d, r})
		}
		return rs
	}
	cat := func(parts ...[]rec) []rec {
		var rs []rec
		for _, p := range parts {
			rs = append(rs, p...)
		}
		return rs
	}
	tests := []struct {
		name    string
		recs    []rec
		ejected bool
		reason  string
	}{
		{"at the percentage with minRequests", cat(many(0, S, 5), many(0, F, 5)), true,
			`reason="5 of 10 requests failed (50%) in the 10s window"`},
		{"below minRequests", cat(many(0, S, 4), many(0, F, 5)), false, ""},
		{"below the percentage", cat(many(0, S, 6), many(0, F, 5)), false, ""},
		{"a success at the end does not eject", cat(many(0, F, 5), many(0, S, 5)), false, ""},
		{"requests of an earlier window do not count", cat(many(0, S, 5), many(10*time.Second, F, 5)), false, ""},
		{"a lagging clock adds to the newer window",
			cat(many(10*time.Second, F, 5), many(10*time.Second-time.Millisecond, F, 5)), true, ""},
		{"502/503/504 count", cat(many(0, S, 5), many(0, breaker.GatewayError, 5)), true, ""},
		{"other 5xx do not count", cat(many(0, S, 5), many(0, breaker.ServerError, 5)), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, os, lb := newPool(t, c, 2)
			o := os[0]
			for _, r := range tt.recs {
				o.Record(at(r.at), r.r)
			}
			last := at(tt.recs[len(tt.recs)-1].at)
			if got := !o.Available(last); got != tt.ejected {
				t.Fatalf("ejected = %v, want %v", got, tt.ejected)
			}
			if tt.reason != "" && lb.count(tt.reason) != 1 {
				t.Errorf("log:\n%s", lb)
			}
		})
	}
}

func TestOutlierWindowSaturates(t *testing.T) {
	c := testOutlierConfig()
	c.ConsecutiveFailures = 0
	c.FailurePercent = 100
	_, os, _ := newPool(t, c, 2)
	o := os[0]
	o.win.Store(winValid | uint64(t0/int64(c.Window))&mask15<<winIdxShift | (1<<23)<<winReqShift)
	if req, bad := o.count(t0, true, c.Window); req != 1 || bad != 1 {
		t.Errorf("count at saturation = %d, %d; want a fresh window", req, bad)
	}
}

func TestOutlierUneject(t *testing.T) {
	_, os, lb := newPool(t, testOutlierConfig(), 2)
	o := os[0]
	o.Uneject(at(0), "test") // not ejected: nothing
	fail(o, at(0), 3)
	o.Uneject(at(5*time.Second), "active health check passed")
	if !o.Available(at(5*time.Second)) || o.EjectedUntil() != at(5*time.Second) {
		t.Errorf("still ejected after Uneject")
	}
	if lb.count(`msg="backend ejection ended early"`, `reason="active health check passed"`) != 1 {
		t.Errorf("log:\n%s", lb)
	}
	fail(o, at(6*time.Second), 3)
	if got := time.Duration(o.EjectedUntil() - at(6*time.Second)); got != 60*time.Second {
		t.Errorf("next ejection %v, want 60s (the cut one still counts)", got)
	}
}

func TestOutlierConfigure(t *testing.T) {
	p, os, _ := newPool(t, testOutlierConfig(), 2)
	o := os[0]
	fail(o, at(0), 2)
	c := testOutlierConfig()
	c.ConsecutiveFailures = 2
	p.Configure(c)
	fail(o, at(0), 1)
	if o.Available(at(0)) {
		t.Error("the count was lost or the new threshold not applied")
	}
	p.Configure(OutlierConfig{Enabled: true, BaseEjection: -1, MaxEjectedPercent: 300})
	got := p.Config()
	if got.Window <= 0 || got.BaseEjection <= 0 || got.MaxEjection < got.BaseEjection || got.MaxEjectedPercent != 100 || got.MinRequests != 1 {
		t.Errorf("not normalized: %+v", got)
	}
}

func TestOutlierConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*OutlierConfig)
		want string
	}{
		{"default", func(*OutlierConfig) {}, ""},
		{"consecutive -1", func(c *OutlierConfig) { c.ConsecutiveFailures = -1 }, "outlierDetection.consecutiveFailures: must be between 0 and 1000, got -1"},
		{"percent 101", func(c *OutlierConfig) { c.FailurePercent = 101 }, "outlierDetection.failurePercent"},
		{"minRequests 0", func(c *OutlierConfig) { c.MinRequests = 0 }, "outlierDetection.minRequests"},
		{"maxEjectedPercent -1", func(c *OutlierConfig) { c.MaxEjectedPercent = -1 }, "outlierDetection.maxEjectedPercent"},
		{"window 0", func(c *OutlierConfig) { c.Window = 0 }, "outlierDetection.window: must be greater than 0"},
		{"baseEjection 0", func(c *OutlierConfig) { c.BaseEjection = 0 }, "outlierDetection.baseEjection"},
		{"max < base", func(c *OutlierConfig) { c.MaxEjection = time.Second }, "outlierDetection.maxEjection: must be at least outlierDetection.baseEjection (30s), got 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultOutlierConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestOutlierConcurrent records from many goroutines into one pool while
// time moves, and checks the cap holds throughout. Run it with -race.
func TestOutlierConcurrent(t *testing.T) {
	c := testOutlierConfig()
	c.FailurePercent = 60
	c.MinRequests = 20
	c.Window = time.Second
	c.BaseEjection = 100 * time.Millisecond
	c.MaxEjection = time.Second
	p, os, _ := newPool(t, c, 5) // at most 2 ejected
	var now atomic.Int64
	now.Store(t0)
	var wg sync.WaitGroup
	var over atomic.Int32
	for w := range 8 {
		wg.Go(func() {
			for i := range 3000 {
				o := os[(i+w)%len(os)]
				r := breaker.Success
				if (i*7+w)%5 < 2+(i+w)%len(os)/2 { // backends differ in failure rate
					r = breaker.Outcome(1 + (i+w)%3)
				}
				o.Record(now.Load(), r)
				_ = o.Available(now.Load())
			}
		})
	}
	wg.Go(func() {
		for range 3000 {
			n := now.Add(int64(time.Millisecond))
			if p.Ejected(n) > 2 {
				over.Add(1)
			}
		}
	})
	wg.Wait()
	if n := over.Load(); n > 0 {
		t.Errorf("more than 2 of 5 ejected %d times", n)
	}
	total := 0
	for _, o := range os {
		total += o.Ejections()
	}
	t.Logf("ejection runs at the end: %d", total)
}
