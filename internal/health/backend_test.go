package health

import (
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/breaker"
)

func testBreakerConfig() breaker.Config {
	c := breaker.DefaultConfig()
	c.MaxFailures = 3
	c.Timeout = 10 * time.Second
	return c
}

// newBackends returns n backends (http://127.0.0.1:1000+i) in one pool,
// all members, logging to the returned buffer.
func newBackends(t *testing.T, oc OutlierConfig, n int) ([]*Backend, *Pool, *logBuffer) {
	t.Helper()
	log, lb := newLog()
	p := NewPool(oc, log)
	var bs []*Backend
	var os []*Outlier
	for i := range n {
		b, err := NewBackend("http://127.0.0.1:"+strconv.Itoa(1000+i), p, testBreakerConfig(), log)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
		os = append(os, b.Outlier())
	}
	p.SetMembers(os)
	return bs, p, lb
}

func testCheckConfig() *CheckConfig {
	c := DefaultCheckConfig()
	c.Jitter = 0
	return &c
}

func TestBackendRiseFall(t *testing.T) {
	// Each string is a sequence of check results (+ passed, - failed);
	// want is Healthy() after each one. Thresholds: rise 2, fall 3.
	tests := []struct {
		name    string
		results string
		want    string
	}{
		{"first pass decides", "+", "H"},
		{"first failure decides", "-", "U"},
		{"fall after three failures", "+---", "HHHU"},
		{"interrupted failures do not fall", "+--+--+--", "HHHHHHHHH"},
		{"rise after two passes", "-++", "UUH"},
		{"interrupted passes do not rise", "-+-+-+", "UUUUUU"},
		{"full cycle", "+---+-++", "HHHUUUUH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, _, _ := newBackends(t, DefaultOutlierConfig(), 1)
			b := bs[0]
			log, lb := newLog()
			if !b.Healthy() {
				t.Fatal("unhealthy before the first check")
			}
			var got strings.Builder
			for i, r := range tt.results {
				b.report(at(time.Duration(i)*time.Second), testCheckConfig(), r == '+', "status x", log)
				if b.Healthy() {
					got.WriteByte('H')
				} else {
					got.WriteByte('U')
				}
			}
			if got.String() != tt.want {
				t.Errorf("healthy after each check: %s, want %s", got.String(), tt.want)
			}
			changes := 1
			for i := 1; i < len(tt.want); i++ {
				if tt.want[i] != tt.want[i-1] {
					changes++
				}
			}
			if n := lb.count("backend=http://127.0.0.1:1000", `reason="`); n != changes {
				t.Errorf("%d log lines, want %d (one per change):\n%s", n, changes, lb)
			}
		})
	}
}

func TestBackendRiseFallLogs(t *testing.T) {
	bs, _, _ := newBackends(t, DefaultOutlierConfig(), 1)
	b := bs[0]
	log, lb := newLog()
	c := testCheckConfig()
	b.report(at(0), c, true, "status 200", log)
	for i := 1; i <= 3; i++ {
		b.report(at(time.Duration(i)*time.Second), c, false, "status 500, expected 200-399", log)
	}
	b.report(at(4*time.Second), c, true, "status 200", log)
	b.report(at(5*time.Second), c, true, "status 204", log)
	want := []string{
		`level=INFO msg="backend healthy" backend=http://127.0.0.1:1000 reason="first check: status 200" checks=1`,
		`level=WARN msg="backend unhealthy" backend=http://127.0.0.1:1000 reason="status 500, expected 200-399" checks=3`,
		`level=INFO msg="backend healthy" backend=http://127.0.0.1:1000 reason="status 204" checks=2`,
	}
	for _, w := range want {
		if lb.count(w) != 1 {
			t.Errorf("no log line %q in:\n%s", w, lb)
		}
	}
	s := b.State(at(5 * time.Second))
	if !s.Healthy || !s.Checked || !s.HealthSince.Equal(time.Unix(0, at(5*time.Second))) ||
		!s.LastCheck.Equal(time.Unix(0, at(5*time.Second))) {
		t.Errorf("state %+v", s)
	}
	if s.LastError != "active check: status 500, expected 200-399" || !s.LastErrorAt.Equal(time.Unix(0, at(3*time.Second))) {
		t.Errorf("last error %q at %v", s.LastError, s.LastErrorAt)
	}
}

func TestBackendAvailable(t *testing.T) {
	tests := []struct {
		name      string
		unhealthy bool
		ejected   bool
		open      bool
		want      bool
	}{
		{"all clear", false, false, false, true},
		{"unhealthy", true, false, false, false},
		{"ejected", false, true, false, false},
		{"breaker open", false, false, true, false},
		{"ejected and open", false, true, true, false},
		{"everything", true, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := DefaultOutlierConfig()
			oc.MaxEjectedPercent = 100
			oc.ConsecutiveFailures = 2
			bs, _, _ := newBackends(t, oc, 2)
			b := bs[0]
			now := at(0)
			if tt.unhealthy {
				b.report(now, testCheckConfig(), false, "status 500", slog.New(slog.DiscardHandler))
			}
			if tt.ejected {
				b.Outlier().Record(now, breaker.ConnectError)
				b.Outlier().Record(now, breaker.ConnectError)
			}
			if tt.open {
				for range 3 {
					b.Breaker().Done(now, breaker.ConnectError, 0)
				}
			}
			if got := b.Available(now); got != tt.want {
				t.Errorf("Available = %v, want %v", got, tt.want)
			}
			ok, p := b.Allow(now)
			if ok != tt.want || p != 0 {
				t.Errorf("Allow = %v, %v; want %v, 0", ok, p, tt.want)
			}
			if s := b.State(now); s.Available != tt.want || s.Healthy == tt.unhealthy || s.Ejected != tt.ejected ||
				(s.Breaker == "open") != tt.open {
				t.Errorf("State = %+v", s)
			}
		})
	}
}

func TestBackendDone(t *testing.T) {
	oc := DefaultOutlierConfig()
	oc.ConsecutiveFailures = 4
	bs, _, lb := newBackends(t, oc, 2)
	b := bs[0]
	for i := range 3 {
		ok, p := b.Allow(at(0))
		if !ok {
			t.Fatalf("request %d refused", i)
		}
		b.Done(at(time.Duration(i)*time.Millisecond), breaker.Timeout, p)
	}
	// The breaker (maxFailures 3) opened; the detector (4) has not ejected.
	s := b.State(at(time.Second))
	if s.Breaker != "open" || s.Ejected || s.Available {
		t.Errorf("state %+v", s)
	}
	if s.LastError != "request: timeout" || !s.LastErrorAt.Equal(time.Unix(0, at(2*time.Millisecond)&^7)) {
		t.Errorf("last error %q at %v", s.LastError, s.LastErrorAt)
	}
	if !s.BreakerSince.Equal(time.Unix(0, at(2*time.Millisecond))) {
		t.Errorf("breaker since %v", s.BreakerSince)
	}
	if lb.count(`level=WARN msg="circuit breaker open" backend=http://127.0.0.1:1000 from=closed reason="3 consecutive failures (last: timeout)"`) != 1 {
		t.Errorf("log:\n%s", lb)
	}
	// A request admitted before the breaker opened reports late: it
	// reaches the detector, which ejects.
	b.Done(at(time.Second), breaker.ConnectError, 0)
	if s := b.State(at(time.Second)); !s.Ejected || s.LastError != "request: connect error" {
		t.Errorf("state %+v", s)
	}
	// Half-open after the breaker timeout, once the ejection (30s) ended.
	now := at(31 * time.Second)
	ok, p := b.Allow(now)
	if !ok || p == 0 {
		t.Fatalf("Allow = %v, %v; want a probe", ok, p)
	}
	b.Done(now, breaker.Success, p)
	_, p = b.Allow(now)
	b.Done(now, breaker.Success, p)
	if s := b.State(now); s.Breaker != "closed" || !s.Available {
		t.Errorf("state %+v", s)
	}
	for _, m := range []string{"circuit breaker half-open", "circuit breaker closed"} {
		if lb.count("level=INFO", `msg="`+m+`"`) != 1 {
			t.Errorf("no %q line:\n%s", m, lb)
		}
	}
}

func TestBackendRecovery(t *testing.T) {
	oc := DefaultOutlierConfig()
	oc.MaxEjectedPercent = 100
	bs, _, lb := newBackends(t, oc, 1)
	b := bs[0]
	log := slog.New(slog.NewTextHandler(lb, nil))
	c := testCheckConfig()
	fail := func(now int64) {
		for range 5 {
			b.Done(now, breaker.ConnectError, 0)
		}
	}
	fail(at(0)) // breaker open for 10s, ejected for 30s
	b.report(at(time.Second), c, false, "connection refused", log)
	b.nextCheck.Store(at(31 * time.Second))
	if b.Available(at(time.Second)) {
		t.Fatal("available")
	}
	if got := b.AvailableAt(at(time.Second)); got != at(31*time.Second) {
		t.Errorf("AvailableAt = %v, want 31s (the next check)", time.Duration(got-t0))
	}
	b.report(at(2*time.Second), c, true, "status 200", log)
	if b.Available(at(2 * time.Second)) {
		t.Fatal("available after one pass; rise is 2")
	}
	b.report(at(3*time.Second), c, true, "status 200", log)
	if !b.Available(at(3 * time.Second)) {
		t.Fatalf("not available once checks pass: %+v", b.State(at(3*time.Second)))
	}
	if ok, p := b.Allow(at(3 * time.Second)); !ok || p == 0 {
		t.Errorf("Allow = %v, %v; want a half-open probe", ok, p)
	}
	if lb.count(`msg="backend ejection ended early"`, `reason="active health check passed"`) != 1 {
		t.Errorf("log:\n%s", lb)
	}
}

func TestBackendAvailableAt(t *testing.T) {
	bs, _, _ := newBackends(t, DefaultOutlierConfig(), 4)
	b := bs[0]
	if got := b.AvailableAt(at(0)); got != at(0) {
		t.Errorf("available backend: %v", got)
	}
	for range 3 {
		b.Done(at(0), breaker.ConnectError, 0)
	}
	if got := b.AvailableAt(at(time.Second)); got != at(10*time.Second) {
		t.Errorf("open breaker: %v, want 10s", time.Duration(got-t0))
	}
	for range 2 {
		b.Done(at(0), breaker.ConnectError, 0) // 5th failure: ejected for 30s
	}
	if got := b.AvailableAt(at(time.Second)); got != at(30*time.Second) {
		t.Errorf("ejected: %v, want 30s", time.Duration(got-t0))
	}
}

func TestNewBackend(t *testing.T) {
	p := NewPool(DefaultOutlierConfig(), nil)
	tests := []struct {
		url, base string
	}{
		{"http://backend1:8080", "http://backend1:8080"},
		{"http://backend1:8080/", "http://backend1:8080"},
		{"https://[::1]:443", "https://[::1]:443"},
		{"ftp://x", ""},
		{"backend1:8080", ""},
		{"http://", ""},
		{"http://a b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			b, err := NewBackend(tt.url, p, breaker.DefaultConfig(), nil)
			if tt.base == "" {
				if err == nil {
					t.Errorf("accepted")
				}
				return
			}
			if err != nil || b.base != tt.base || b.URL() != tt.url {
				t.Errorf("NewBackend = %v, %v", b, err)
			}
		})
	}
	if _, err := NewBackend("http://x", nil, breaker.DefaultConfig(), nil); err == nil {
		t.Error("accepted a nil pool")
	}
}

func TestBackendStateDisabledBreaker(t *testing.T) {
	bs, _, _ := newBackends(t, DefaultOutlierConfig(), 1)
	c := testBreakerConfig()
	c.Enabled = false
	bs[0].Breaker().Configure(c)
	if s := bs[0].State(at(0)); s.Breaker != "disabled" || !s.Available || s.Checked || !s.LastCheck.IsZero() {
		t.Errorf("state %+v", s)
	}
}

// TestBackendConcurrent drives one backend from many goroutines (event
// loops) while another reads its state. Run it with -race.
func TestBackendConcurrent(t *testing.T) {
	oc := DefaultOutlierConfig()
	oc.FailurePercent = 50
	oc.BaseEjection = 50 * time.Millisecond
	bs, _, _ := newBackends(t, oc, 2)
	b := bs[0]
	var now atomic.Int64
	now.Store(t0)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 3000 {
				n := now.Load()
				if !b.Available(n) {
					continue
				}
				ok, p := b.Allow(n)
				if !ok {
					continue
				}
				o := breaker.Success
				if (i+w)%4 == 0 {
					o = breaker.Outcome((i + w) % 5)
				}
				b.Done(now.Load(), o, p)
			}
		})
	}
	wg.Go(func() {
		for range 1000 {
			n := now.Add(int64(time.Millisecond))
			_ = b.State(n)
			b.report(n, testCheckConfig(), n%3 != 0, "x", slog.New(slog.DiscardHandler))
		}
	})
	wg.Wait()
}

func TestStateCountsChecks(t *testing.T) {
	b, err := NewBackend("http://127.0.0.1:1", NewPool(DefaultOutlierConfig(), nil), breaker.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultCheckConfig()
	for i, ok := range []bool{true, true, false, true, false, false} {
		b.report(int64(i+1), &c, ok, "detail", slog.New(slog.DiscardHandler))
	}
	if s := b.State(10); s.ChecksOK != 3 || s.ChecksFailed != 3 {
		t.Fatalf("ChecksOK/ChecksFailed = %d/%d, want 3/3", s.ChecksOK, s.ChecksFailed)
	}
}

// TestBackendHeld: panic mode's measure counts ejection and an open
// breaker, not active check results, and not a half-open breaker whose
// probe slots are taken.
func TestBackendHeld(t *testing.T) {
	oc := DefaultOutlierConfig()
	oc.MaxEjectedPercent = 100
	oc.ConsecutiveFailures = 2
	bs, _, _ := newBackends(t, oc, 3)
	now := at(0)

	unhealthy := bs[0]
	unhealthy.report(now, testCheckConfig(), false, "status 500", slog.New(slog.DiscardHandler))
	if unhealthy.Held(now) || unhealthy.Available(now) {
		t.Error("an unhealthy backend: Held, or Available")
	}

	ejected := bs[1]
	ejected.Outlier().Record(now, breaker.GatewayError)
	ejected.Outlier().Record(now, breaker.GatewayError)
	if !ejected.Held(now) {
		t.Error("an ejected backend is not held")
	}

	b := bs[2]
	for range 3 {
		b.Breaker().Done(now, breaker.ConnectError, 0)
	}
	if !b.Held(now) {
		t.Error("open breaker: not held")
	}
	later := now + int64(testBreakerConfig().Timeout)
	if b.Held(later) {
		t.Error("open breaker past its timeout: held")
	}
	if ok, p := b.Allow(later); !ok || p == 0 { // half-open, the one slot taken
		t.Fatalf("Allow = %v, %v; want a probe", ok, p)
	}
	if b.Available(later) || b.Held(later) {
		t.Errorf("half-open with its probe in flight: Available %v (want false), Held %v (want false)", b.Available(later), b.Held(later))
	}
}
