package breaker

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is an arbitrary start time; tests add durations to it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func at(d time.Duration) int64 { return t0 + int64(d) }

// recorder collects the changes a breaker reports.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) add(c Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) transitions() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, c := range r.changes {
		s = append(s, c.From.String()+">"+c.To.String())
	}
	return strings.Join(s, " ")
}

func testConfig() Config {
	c := DefaultConfig()
	c.MaxFailures = 3
	c.Timeout = 10 * time.Second
	c.ResetTimeout = 5 * time.Second
	c.HalfOpenSuccess = 2
	c.HalfOpenRequests = 1
	return c
}

func newTest(t *testing.T, c Config) (*Breaker, *recorder) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	return New(c, r.add), r
}

// trip opens b (closed, testConfig) at time now.
func trip(t *testing.T, b *Breaker, now int64) {
	t.Helper()
	for range b.Config().MaxFailures {
		b.Done(now, ConnectError, 0)
	}
	if b.State() != Open {
		t.Fatalf("after %d failures: state %v, want open", b.Config().MaxFailures, b.State())
	}
}

func TestClosed(t *testing.T) {
	// Each step reports one outcome at an offset from t0; want is the
	// state and failure count after the last step.
	type step struct {
		at time.Duration
		o  Outcome
	}
	f := func(d time.Duration) step { return step{d, ConnectError} }
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
		state State
		fails int
	}{
		{"opens at maxFailures consecutive failures", nil,
			[]step{f(0), f(1), f(2)}, Open, 0},
		{"below maxFailures stays closed", nil,
			[]step{f(0), f(1)}, Closed, 2},
		{"success resets the count", nil,
			[]step{f(0), f(1), {2, Success}, f(3), f(4)}, Closed, 2},
		{"timeouts count", nil,
			[]step{{0, Timeout}, {1, Timeout}, {2, Timeout}}, Open, 0},
		{"canceled is neutral", nil,
			[]step{f(0), f(1), {2, Canceled}, f(3)}, Open, 0},
		{"502/503/504 count by default", nil,
			[]step{{0, GatewayError}, {1, GatewayError}, {2, GatewayError}}, Open, 0},
		{"other 5xx do not count by default", nil,
			[]step{{0, ServerError}, {1, ServerError}, {2, ServerError}}, Closed, 0},
		{"other 5xx reset the count by default", nil,
			[]step{f(0), f(1), {2, ServerError}, f(3)}, Closed, 1},
		{"every 5xx counts with failureOn5xx", func(c *Config) { c.FailureOn5xx = true },
			[]step{{0, ServerError}, {1, GatewayError}, {2, ServerError}}, Open, 0},
		{"resetTimeout clears old failures", nil,
			[]step{f(0), f(time.Second), f(6 * time.Second)}, Closed, 1},
		{"resetTimeout counts from the previous failure", nil,
			[]step{f(0), f(4 * time.Second), f(8 * time.Second)}, Open, 0},
		{"failure just inside resetTimeout counts", nil,
			[]step{f(0), f(1), f(5*time.Second - time.Millisecond)}, Open, 0},
		{"a lagging clock does not reset the count", nil,
			[]step{f(time.Second), f(900 * time.Millisecond), f(time.Second)}, Open, 0},
		{"disabled records nothing", func(c *Config) { c.Enabled = false },
			[]step{f(0), f(1), f(2), f(3)}, Closed, 0},
		{"maxFailures 1", func(c *Config) { c.MaxFailures = 1 },
			[]step{f(0)}, Open, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			b, _ := newTest(t, c)
			for _, s := range tt.steps {
				if ok, p := b.Allow(at(s.at)); !ok || p != 0 {
					t.Fatalf("Allow before %v = %v, %v; want true, 0", s, ok, p)
				}
				b.Done(at(s.at), s.o, 0)
			}
			if b.State() != tt.state || b.Failures() != tt.fails {
				t.Errorf("state %v, failures %d; want %v, %d", b.State(), b.Failures(), tt.state, tt.fails)
			}
		})
	}
}

func TestOpenChange(t *testing.T) {
	b, r := newTest(t, testConfig())
	b.Done(at(0), ConnectError, 0)
	b.Done(at(0), Timeout, 0)
	b.Done(at(time.Second), GatewayError, 0)
	if len(r.changes) != 1 {
		t.Fatalf("changes %v, want one", r.changes)
	}
	want := Change{From: Closed, To: Open, At: at(time.Second), Count: 3, Outcome: GatewayError}
	if r.changes[0] != want {
		t.Errorf("change %+v, want %+v", r.changes[0], want)
	}
	if got := want.Reason(); got != "3 consecutive failures (last: 502/503/504 response)" {
		t.Errorf("Reason() = %q", got)
	}
	if b.Since() != at(time.Second) {
		t.Errorf("Since() = %d, want %d", b.Since(), at(time.Second))
	}
}

func TestOpen(t *testing.T) {
	b, r := newTest(t, testConfig())
	trip(t, b, at(0))
	tests := []struct {
		name string
		now  time.Duration
	}{
		{"just opened", 0},
		{"later", 5 * time.Second},
		{"1ms before timeout", 10*time.Second - time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b.Available(at(tt.now)) {
				t.Error("Available = true")
			}
			if ok, p := b.Allow(at(tt.now)); ok || p != 0 {
				t.Errorf("Allow = %v, %v; want false, 0", ok, p)
			}
			if got, want := b.ReadyAt(at(tt.now)), at(10*time.Second); got != want {
				t.Errorf("ReadyAt = %v, want %v", time.Duration(got-t0), time.Duration(want-t0))
			}
		})
	}
	t.Run("reports are ignored", func(t *testing.T) {
		b.Done(at(time.Second), Success, 0)
		b.Done(at(time.Second), ConnectError, 0)
		b.Done(at(time.Second), Success, probeOf(1))
		if b.State() != Open || b.Available(at(10*time.Second-time.Millisecond)) {
			t.Errorf("state %v after reports, want open until the timeout", b.State())
		}
	})
	t.Run("half-open after timeout", func(t *testing.T) {
		now := at(10 * time.Second)
		if !b.Available(now) {
			t.Error("Available = false at timeout")
		}
		if b.State() != Open {
			t.Error("Available changed the state")
		}
		ok, p := b.Allow(now)
		if !ok || p == 0 {
			t.Fatalf("Allow = %v, %v; want a probe", ok, p)
		}
		if b.State() != HalfOpen || b.Since() != now {
			t.Errorf("state %v since %d; want half-open since %d", b.State(), b.Since(), now)
		}
		if got := r.transitions(); got != "closed>open open>half-open" {
			t.Errorf("transitions %q", got)
		}
	})
}

// halfOpen returns a breaker that has just gone half-open at time
// at(10s), and the probe that did it.
func halfOpen(t *testing.T, c Config) (*Breaker, *recorder, Probe) {
	t.Helper()
	b, r := newTest(t, c)
	trip(t, b, at(0))
	ok, p := b.Allow(at(10 * time.Second))
	if !ok || p == 0 || b.State() != HalfOpen {
		t.Fatalf("Allow at timeout = %v, %v, state %v", ok, p, b.State())
	}
	return b, r, p
}

func TestHalfOpenProbeLimit(t *testing.T) {
	for _, limit := range []int{1, 2, 5} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			c := testConfig()
			c.HalfOpenRequests = limit
			b, _, first := halfOpen(t, c)
			now := at(11 * time.Second)
			probes := []Probe{first}
			for range limit - 1 {
				ok, p := b.Allow(now)
				if !ok || p == 0 {
					t.Fatalf("probe %d refused", len(probes)+1)
				}
				probes = append(probes, p)
			}
			if ok, _ := b.Allow(now); ok {
				t.Fatalf("probe %d admitted; limit %d", limit+1, limit)
			}
			if b.Available(now) {
				t.Error("Available with every slot taken")
			}
			b.Done(now, Canceled, probes[0])
			if !b.Available(now) {
				t.Error("Canceled did not free a slot")
			}
			if ok, p := b.Allow(now); !ok || p == 0 {
				t.Errorf("Allow after Canceled = %v, %v", ok, p)
			}
			if ok, _ := b.Allow(now); ok {
				t.Error("admitted past the limit after a Canceled")
			}
			if b.State() != HalfOpen {
				t.Errorf("state %v, want half-open", b.State())
			}
		})
	}
}

func TestHalfOpen(t *testing.T) {
	tests := []struct {
		name        string
		cfg         func(*Config)
		outcomes    []Outcome // reported for successive probes, one at a time
		state       State
		transitions string
	}{
		{"halfOpenSuccess successes close", nil,
			[]Outcome{Success, Success}, Closed,
			"closed>open open>half-open half-open>closed"},
		{"one success is not enough", nil,
			[]Outcome{Success}, HalfOpen,
			"closed>open open>half-open"},
		{"failure reopens", nil,
			[]Outcome{ConnectError}, Open,
			"closed>open open>half-open half-open>open"},
		{"failure after a success reopens", nil,
			[]Outcome{Success, Timeout}, Open,
			"closed>open open>half-open half-open>open"},
		{"502/503/504 reopens", nil,
			[]Outcome{GatewayError}, Open,
			"closed>open open>half-open half-open>open"},
		{"other 5xx is a success by default", nil,
			[]Outcome{ServerError, Success}, Closed,
			"closed>open open>half-open half-open>closed"},
		{"other 5xx reopens with failureOn5xx", func(c *Config) { c.FailureOn5xx = true },
			[]Outcome{ServerError}, Open,
			"closed>open open>half-open half-open>open"},
		{"canceled probes do not count", func(c *Config) { c.HalfOpenSuccess = 1 },
			[]Outcome{Canceled, Canceled}, HalfOpen,
			"closed>open open>half-open"},
		{"halfOpenSuccess 3", func(c *Config) { c.HalfOpenSuccess = 3 },
			[]Outcome{Success, Success, Success}, Closed,
			"closed>open open>half-open half-open>closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			b, r, p := halfOpen(t, c)
			now := at(11 * time.Second)
			for i, o := range tt.outcomes {
				if i > 0 {
					var ok bool
					if ok, p = b.Allow(now); !ok || p == 0 {
						t.Fatalf("probe %d refused", i+1)
					}
				}
				b.Done(now, o, p)
			}
			if b.State() != tt.state {
				t.Errorf("state %v, want %v", b.State(), tt.state)
			}
			if got := r.transitions(); got != tt.transitions {
				t.Errorf("transitions %q, want %q", got, tt.transitions)
			}
		})
	}
}

func TestHalfOpenClosesWithFreshCount(t *testing.T) {
	b, r, p := halfOpen(t, testConfig())
	now := at(11 * time.Second)
	b.Done(now, Success, p)
	_, p = b.Allow(now)
	b.Done(now, Success, p)
	if b.State() != Closed || b.Failures() != 0 {
		t.Fatalf("state %v failures %d", b.State(), b.Failures())
	}
	last := r.changes[len(r.changes)-1]
	if last.Count != 2 || last.Reason() != "2 successful probes" {
		t.Errorf("close change %+v (%q)", last, last.Reason())
	}
	// A new failure run starts from zero.
	b.Done(now, ConnectError, 0)
	b.Done(now, ConnectError, 0)
	if b.State() != Closed {
		t.Error("two failures reopened a freshly closed breaker")
	}
}

func TestHalfOpenReopenWaitsAgain(t *testing.T) {
	b, _, p := halfOpen(t, testConfig())
	b.Done(at(12*time.Second), ConnectError, p)
	if ok, _ := b.Allow(at(21 * time.Second)); ok {
		t.Error("admitted 9s after reopening; timeout is 10s")
	}
	if got := b.ReadyAt(at(13 * time.Second)); got != at(22*time.Second) {
		t.Errorf("ReadyAt = %v, want 22s", time.Duration(got-t0))
	}
	if ok, p := b.Allow(at(22 * time.Second)); !ok || p == 0 {
		t.Errorf("Allow 10s after reopening = %v, %v; want a probe", ok, p)
	}
}

func TestHalfOpenIgnoresStaleReports(t *testing.T) {
	c := testConfig()
	c.HalfOpenRequests = 2
	b, _, a := halfOpen(t, c)
	now := at(11 * time.Second)
	_, slow := b.Allow(now)
	// Requests admitted while closed report late: they do not count.
	b.Done(now, ConnectError, 0)
	b.Done(now, Success, 0)
	if b.State() != HalfOpen {
		t.Fatalf("non-probe report changed half-open to %v", b.State())
	}
	b.Done(now, Timeout, a) // reopens; slow is still out
	_, fresh := b.Allow(at(21 * time.Second))
	if fresh == 0 || fresh == slow {
		t.Fatalf("new round probe %v, old %v", fresh, slow)
	}
	b.Done(at(21*time.Second), Success, slow) // from the old round: ignored
	b.Done(at(21*time.Second), Success, fresh)
	if b.State() != HalfOpen {
		t.Errorf("state %v: the old round's success counted", b.State())
	}
	// The old probe did not free a slot of the new round either: fresh
	// has reported, so exactly two slots are free.
	for i := range 2 {
		if ok, _ := b.Allow(at(21 * time.Second)); !ok {
			t.Errorf("probe %d refused", i+1)
		}
	}
	if ok, _ := b.Allow(at(21 * time.Second)); ok {
		t.Error("third concurrent probe admitted")
	}
}

func TestHalfOpenLostProbes(t *testing.T) {
	b, r, lost := halfOpen(t, testConfig()) // at 10s; the probe never reports
	if ok, _ := b.Allow(at(19 * time.Second)); ok {
		t.Fatal("admitted while the only probe is out")
	}
	if got := b.ReadyAt(at(19 * time.Second)); got != at(20*time.Second) {
		t.Errorf("ReadyAt = %v, want 20s", time.Duration(got-t0))
	}
	ok, p := b.Allow(at(20 * time.Second))
	if !ok || p == 0 || p == lost {
		t.Fatalf("Allow after the safety timer = %v, %v (lost %v)", ok, p, lost)
	}
	b.Done(at(20*time.Second), ConnectError, lost) // the lost one: ignored
	if b.State() != HalfOpen {
		t.Fatalf("state %v", b.State())
	}
	if got := r.changes[len(r.changes)-1]; got.From != HalfOpen || got.To != HalfOpen ||
		!strings.Contains(got.Reason(), "new round") {
		t.Errorf("last change %+v", got)
	}
}

func TestEndOpen(t *testing.T) {
	b, r := newTest(t, testConfig())
	b.EndOpen() // closed: no effect
	if b.State() != Closed {
		t.Fatal("EndOpen changed a closed breaker")
	}
	trip(t, b, at(0))
	b.EndOpen()
	if !b.Available(at(time.Second)) {
		t.Fatal("not available after EndOpen")
	}
	if ok, p := b.Allow(at(time.Second)); !ok || p == 0 || b.State() != HalfOpen {
		t.Errorf("Allow after EndOpen = %v, %v, state %v", ok, p, b.State())
	}
	if c := r.changes[len(r.changes)-1]; !c.Early || c.Reason() != "open period ended early" {
		t.Errorf("change %+v (%q)", c, c.Reason())
	}
}

func TestConfigure(t *testing.T) {
	t.Run("keeps the failure count", func(t *testing.T) {
		b, _ := newTest(t, testConfig())
		b.Done(at(0), ConnectError, 0)
		b.Done(at(0), ConnectError, 0)
		c := testConfig()
		c.MaxFailures = 10
		b.Configure(c)
		if b.Failures() != 2 {
			t.Errorf("failures %d after Configure, want 2", b.Failures())
		}
		b.Done(at(0), ConnectError, 0)
		if b.State() != Closed {
			t.Error("opened at the old maxFailures")
		}
	})
	t.Run("lower maxFailures applies to the next failure", func(t *testing.T) {
		b, _ := newTest(t, testConfig())
		b.Done(at(0), ConnectError, 0)
		b.Done(at(0), ConnectError, 0)
		c := testConfig()
		c.MaxFailures = 1
		b.Configure(c)
		b.Done(at(0), ConnectError, 0)
		if b.State() != Open {
			t.Errorf("state %v, want open", b.State())
		}
	})
	t.Run("keeps an open breaker open, with the new timeout", func(t *testing.T) {
		b, _ := newTest(t, testConfig())
		trip(t, b, at(0))
		c := testConfig()
		c.Timeout = 20 * time.Second
		b.Configure(c)
		if b.State() != Open || b.Available(at(15*time.Second)) || !b.Available(at(20*time.Second)) {
			t.Errorf("state %v; want open until 20s", b.State())
		}
	})
	t.Run("disabling closes and admits everything", func(t *testing.T) {
		b, r := newTest(t, testConfig())
		trip(t, b, at(0))
		c := testConfig()
		c.Enabled = false
		b.Configure(c)
		if b.State() != Closed || !b.Available(at(0)) {
			t.Fatalf("state %v after disabling", b.State())
		}
		for range 10 {
			if ok, p := b.Allow(at(0)); !ok || p != 0 {
				t.Fatalf("Allow = %v, %v", ok, p)
			}
			b.Done(at(0), ConnectError, 0)
		}
		if b.State() != Closed || b.Failures() != 0 {
			t.Errorf("disabled breaker recorded failures: %v %d", b.State(), b.Failures())
		}
		if got := r.transitions(); got != "closed>open" {
			t.Errorf("transitions %q", got)
		}
		b.Configure(testConfig())
		trip(t, b, at(time.Second))
	})
	t.Run("Config returns what was given", func(t *testing.T) {
		c := testConfig()
		c.HalfOpenRequests = 7
		b := New(c, nil)
		if b.Config() != c {
			t.Errorf("Config() = %+v", b.Config())
		}
	})
}

func TestZeroValue(t *testing.T) {
	var b Breaker
	if b.Config() != DefaultConfig() {
		t.Fatalf("zero Breaker config %+v", b.Config())
	}
	for range DefaultConfig().MaxFailures - 1 {
		b.Done(t0, ConnectError, 0)
	}
	if b.State() != Closed {
		t.Fatal("opened early")
	}
	b.Done(t0, ConnectError, 0)
	if b.State() != Open {
		t.Fatal("zero Breaker did not open at the default maxFailures")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{"default", func(*Config) {}, ""},
		{"maxFailures 0", func(c *Config) { c.MaxFailures = 0 }, "circuitBreaker.maxFailures: must be between 1 and 1000, got 0"},
		{"maxFailures 1001", func(c *Config) { c.MaxFailures = 1001 }, "circuitBreaker.maxFailures"},
		{"halfOpenSuccess 0", func(c *Config) { c.HalfOpenSuccess = 0 }, "circuitBreaker.halfOpenSuccess"},
		{"halfOpenRequests 0", func(c *Config) { c.HalfOpenRequests = 0 }, "circuitBreaker.halfOpenRequests"},
		{"timeout 0", func(c *Config) { c.Timeout = 0 }, "circuitBreaker.timeout: must be greater than 0, got 0s"},
		{"resetTimeout -1", func(c *Config) { c.ResetTimeout = -1 }, "circuitBreaker.resetTimeout"},
		{"max counts", func(c *Config) { c.MaxFailures, c.HalfOpenSuccess, c.HalfOpenRequests = 1000, 1000, 1000 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want %q...", err, tt.want)
			}
		})
	}
}

func TestMaxCounts(t *testing.T) {
	c := testConfig()
	c.MaxFailures = MaxCount
	c.HalfOpenRequests = MaxCount
	c.HalfOpenSuccess = MaxCount
	b, _ := newTest(t, c)
	for range MaxCount - 1 {
		b.Done(t0, ConnectError, 0)
	}
	if b.State() != Closed || b.Failures() != MaxCount-1 {
		t.Fatalf("state %v failures %d", b.State(), b.Failures())
	}
	b.Done(t0, ConnectError, 0)
	if b.State() != Open {
		t.Fatal("did not open at MaxCount")
	}
	now := t0 + int64(c.Timeout)
	var probes []Probe
	for range MaxCount {
		ok, p := b.Allow(now)
		if !ok {
			t.Fatalf("probe %d refused", len(probes)+1)
		}
		probes = append(probes, p)
	}
	if ok, _ := b.Allow(now); ok {
		t.Fatal("admitted past MaxCount probes")
	}
	for _, p := range probes {
		b.Done(now, Success, p)
	}
	if b.State() != Closed {
		t.Errorf("state %v after %d successes", b.State(), MaxCount)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{Closed.String(), "closed"},
		{Open.String(), "open"},
		{HalfOpen.String(), "half-open"},
		{State(9).String(), "unknown"},
		{Success.String(), "success"},
		{ConnectError.String(), "connect error"},
		{Timeout.String(), "timeout"},
		{ServerError.String(), "5xx response"},
		{Canceled.String(), "canceled"},
		{GatewayError.String(), "502/503/504 response"},
		{Outcome(99).String(), "unknown outcome"},
		{Change{From: Open, To: HalfOpen}.Reason(), "open timeout elapsed"},
		{Change{From: HalfOpen, To: Open, Outcome: Timeout}.Reason(), "probe failed: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestConcurrent runs many goroutines through Allow and Done while a clock
// goroutine moves time, and checks that no half-open round ever has more
// probes out than HalfOpenRequests. Run it with -race.
func TestConcurrent(t *testing.T) {
	c := testConfig()
	c.MaxFailures = 4
	c.Timeout = time.Second
	c.HalfOpenRequests = 3
	c.HalfOpenSuccess = 3
	b, _ := newTest(t, c)

	var now atomic.Int64
	now.Store(t0)
	var out [1 << 10]atomic.Int32 // probes out, per round
	var errs atomic.Int32
	const workers, iterations = 8, 4000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iterations {
				ok, p := b.Allow(now.Load())
				if !ok {
					continue
				}
				round := &out[uint64(p)&mask10]
				if p != 0 && round.Add(1) > int32(c.HalfOpenRequests) {
					errs.Add(1)
				}
				o := Success
				if (i+w)%3 == 0 {
					o = Outcome(1 + (i+w)%5) // ConnectError, Timeout, ServerError, Canceled, GatewayError
				}
				if p != 0 {
					round.Add(-1)
				}
				b.Done(now.Load(), o, p)
			}
		})
	}
	wg.Go(func() {
		for range 2000 {
			now.Add(int64(5 * time.Millisecond))
		}
	})
	wg.Wait()
	if n := errs.Load(); n > 0 {
		t.Errorf("%d times a round had more than %d probes out", n, c.HalfOpenRequests)
	}
	// Every probe was reported, so the breaker recovers on successes.
	end := now.Load() + int64(c.Timeout)
	for i := 0; b.State() != Closed; i++ {
		if i > 10 {
			t.Fatalf("did not close: %v", b.State())
		}
		if ok, p := b.Allow(end); ok {
			b.Done(end, Success, p)
		}
	}
}

// TestStatusOutcome: only 502, 503 and 504 are gateway failures; every
// 5xx is one with failureOn5xx.
func TestStatusOutcome(t *testing.T) {
	tests := []struct {
		status          int
		want            Outcome
		gateway, all5xx bool // Failure(false), Failure(true)
	}{
		{200, Success, false, false},
		{404, Success, false, false},
		{499, Success, false, false},
		{500, ServerError, false, true},
		{501, ServerError, false, true},
		{502, GatewayError, true, true},
		{503, GatewayError, true, true},
		{504, GatewayError, true, true},
		{505, ServerError, false, true},
		{599, ServerError, false, true},
	}
	for _, tt := range tests {
		o := StatusOutcome(tt.status)
		if o != tt.want || o.Failure(false) != tt.gateway || o.Failure(true) != tt.all5xx {
			t.Errorf("status %d: %v (failure %v, with failureOn5xx %v); want %v (%v, %v)",
				tt.status, o, o.Failure(false), o.Failure(true), tt.want, tt.gateway, tt.all5xx)
		}
	}
	for _, o := range []Outcome{ConnectError, Timeout} {
		if !o.Failure(false) {
			t.Errorf("%v is not a failure by default", o)
		}
	}
	for _, o := range []Outcome{Success, Canceled} {
		if o.Failure(true) {
			t.Errorf("%v is a failure", o)
		}
	}
}
