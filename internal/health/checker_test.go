package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/breaker"
)

// fakeClock is a Clock whose time moves only when the test says so. It
// knows how many goroutines are sleeping, which is how a test knows that
// every check it caused has finished: a checker goroutine sleeps again
// only after reporting its result.
type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers []*sleeper
	delays   []time.Duration // every Sleep request, in order
	changed  chan struct{}   // closed and replaced when sleepers change
}

type sleeper struct {
	at   time.Time
	wake chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(0, t0), changed: make(chan struct{})}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) bool {
	f.mu.Lock()
	s := &sleeper{at: f.now.Add(d), wake: make(chan struct{})}
	f.sleepers = append(f.sleepers, s)
	f.delays = append(f.delays, d)
	f.signalLocked()
	f.mu.Unlock()
	select {
	case <-s.wake:
		return true
	case <-ctx.Done():
		f.mu.Lock()
		if i := slices.Index(f.sleepers, s); i >= 0 {
			f.sleepers = slices.Delete(f.sleepers, i, i+1)
			f.signalLocked()
		}
		f.mu.Unlock()
		return false
	}
}

func (f *fakeClock) signalLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// advance moves time by d and wakes every sleeper that is due.
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.sleepers = slices.DeleteFunc(f.sleepers, func(s *sleeper) bool {
		if s.at.After(f.now) {
			return false
		}
		close(s.wake)
		return true
	})
	f.signalLocked()
}

// waitSleepers blocks until exactly n goroutines are sleeping.
func (f *fakeClock) waitSleepers(t *testing.T, n int) {
	t.Helper()
	guard := time.NewTimer(30 * time.Second) // a hang guard, not a timing assertion
	defer guard.Stop()
	for {
		f.mu.Lock()
		got, ch := len(f.sleepers), f.changed
		f.mu.Unlock()
		if got == n {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("waiting for %d sleeping checkers; %d are", n, got)
		}
	}
}

func (f *fakeClock) requested() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.delays)
}

// server is a test backend on 127.0.0.1 whose status the test sets.
type server struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
	mu     sync.Mutex
	reqs   []*http.Request // copies of the requests' heads
}

func newServer(t *testing.T, status int) *server {
	t.Helper()
	s := &server{}
	s.status.Store(int32(status))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		s.hits.Add(1)
		w.WriteHeader(int(s.status.Load()))
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) lastRequest() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

// harness is a started Checker with a fake clock over some backends.
type harness struct {
	t    *testing.T
	clk  *fakeClock
	c    *Checker
	bs   []*Backend
	pool *Pool
	log  *logBuffer
	cfg  CheckConfig
}

func newBackend(t *testing.T, pool *Pool, url string) *Backend {
	t.Helper()
	b, err := NewBackend(url, pool, breaker.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// start starts a checker over one backend per URL. randN, if not nil,
// replaces the random source.
func start(t *testing.T, cfg CheckConfig, randN func(int64) int64, urls ...string) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log, lb := newLog()
	h := &harness{t: t, clk: newFakeClock(), pool: NewPool(DefaultOutlierConfig(), log), log: lb, cfg: cfg}
	for _, u := range urls {
		h.bs = append(h.bs, newBackend(t, h.pool, u))
	}
	h.c = NewChecker(cfg, h.bs, log, h.clk)
	if randN != nil {
		h.c.randN = randN
	}
	h.c.Start(context.Background())
	t.Cleanup(h.c.Stop)
	return h
}

// tick lets one interval pass and waits until every checker that was
// sleeping has checked and gone back to sleep.
func (h *harness) tick() {
	h.t.Helper()
	h.clk.advance(h.cfg.Interval)
	h.clk.waitSleepers(h.t, len(h.bs))
}

func checkConfig() CheckConfig {
	c := DefaultCheckConfig()
	c.Jitter = 0
	c.Timeout = 5 * time.Second // real time; only the timeout test waits for it
	return c
}

func TestCheckerFirstCheckAtStart(t *testing.T) {
	srv := newServer(t, 200)
	h := start(t, checkConfig(), nil, srv.URL)
	h.clk.waitSleepers(t, 1) // no time has passed
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d checks before any time passed, want 1", n)
	}
	if d := h.clk.requested(); len(d) != 1 || d[0] != h.cfg.Interval {
		t.Errorf("sleeps %v, want one of %v after the first check", d, h.cfg.Interval)
	}
	s := h.bs[0].State(t0)
	if !s.Checked || !s.Healthy || !s.LastCheck.Equal(time.Unix(0, t0)) {
		t.Errorf("state %+v", s)
	}
	if h.log.count(`msg="backend healthy"`, `reason="first check: status 200"`) != 1 {
		t.Errorf("log:\n%s", h.log)
	}
}

func TestCheckerRiseFall(t *testing.T) {
	// Each step sets the server's status, lets one interval pass (the
	// first step is the check at start), and expects Healthy() after it.
	// Thresholds: rise 2, fall 3.
	type step struct {
		status  int
		healthy bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"fall then rise", []step{
			{200, true}, {500, true}, {500, true}, {500, false}, {200, false}, {200, true}}},
		{"flapping never falls", []step{
			{200, true}, {500, true}, {500, true}, {200, true}, {500, true}, {500, true}, {200, true}}},
		{"down at start, flapping never rises", []step{
			{503, false}, {200, false}, {503, false}, {200, false}, {200, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.steps[0].status)
			h := start(t, checkConfig(), nil, srv.URL)
			h.clk.waitSleepers(t, 1)
			for i, s := range tt.steps {
				if i > 0 {
					srv.status.Store(int32(s.status))
					h.tick()
				}
				if got := h.bs[0].Healthy(); got != s.healthy {
					t.Fatalf("step %d (status %d): healthy %v, want %v\nlog:\n%s", i, s.status, got, s.healthy, h.log)
				}
			}
			if n := srv.hits.Load(); int(n) != len(tt.steps) {
				t.Errorf("%d checks, want %d", n, len(tt.steps))
			}
		})
	}
}

func TestCheckerFallLog(t *testing.T) {
	srv := newServer(t, 200)
	h := start(t, checkConfig(), nil, srv.URL)
	h.clk.waitSleepers(t, 1)
	srv.status.Store(500)
	for range 3 {
		h.tick()
	}
	want := `level=WARN msg="backend unhealthy" backend=` + srv.URL + ` reason="status 500, expected 200-399" checks=3`
	if h.log.count(want) != 1 {
		t.Errorf("no line %q in:\n%s", want, h.log)
	}
	if s := h.bs[0].State(t0); s.Available || s.LastError != "active check: status 500, expected 200-399" {
		t.Errorf("state %+v", s)
	}
}

func TestCheckerExpectedStatus(t *testing.T) {
	tests := []struct {
		expected string
		status   int
		healthy  bool
	}{
		{"200-399", 200, true},
		{"200-399", 301, true},
		{"200-399", 399, true},
		{"200-399", 400, false},
		{"200-399", 500, false},
		{"200,204", 204, true},
		{"200,204", 201, false},
		{"5xx", 503, true},
		{"2xx", 404, false},
	}
	for _, tt := range tests {
		t.Run(tt.expected+" "+strconv.Itoa(tt.status), func(t *testing.T) {
			srv := newServer(t, tt.status)
			cfg := checkConfig()
			cfg.ExpectedStatus = MustParseStatusSet(tt.expected)
			h := start(t, cfg, nil, srv.URL)
			h.clk.waitSleepers(t, 1)
			if got := h.bs[0].Healthy(); got != tt.healthy {
				t.Errorf("healthy %v, want %v\nlog:\n%s", got, tt.healthy, h.log)
			}
		})
	}
}

func TestCheckerDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg := checkConfig()
	cfg.ExpectedStatus = MustParseStatusSet("200-299")
	h := start(t, cfg, nil, srv.URL)
	h.clk.waitSleepers(t, 1)
	if h.bs[0].Healthy() {
		t.Error("healthy: a 302 passed 200-299")
	}
	if followed.Load() != 0 {
		t.Error("the redirect was followed")
	}
	if h.log.count(`reason="first check: status 302, expected 200-299"`) != 1 {
		t.Errorf("log:\n%s", h.log)
	}
}

func TestCheckerTimeout(t *testing.T) {
	release := make(chan struct{})
	var block atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if block.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	cfg := checkConfig()
	cfg.Timeout = 50 * time.Millisecond // real time: each timed-out check waits this long
	h := start(t, cfg, nil, srv.URL)
	h.clk.waitSleepers(t, 1)
	if !h.bs[0].Healthy() {
		t.Fatal("not healthy after the first check")
	}
	block.Store(true)
	for i := 1; i <= cfg.UnhealthyThreshold; i++ {
		h.tick()
		if got, want := h.bs[0].Healthy(), i < cfg.UnhealthyThreshold; got != want {
			t.Fatalf("after %d timeouts: healthy %v, want %v", i, got, want)
		}
	}
	if h.log.count(`msg="backend unhealthy"`, `reason="timeout after 50ms"`, "checks=3") != 1 {
		t.Errorf("log:\n%s", h.log)
	}
}

func TestCheckerConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := start(t, checkConfig(), nil, "http://"+addr)
	h.clk.waitSleepers(t, 1)
	if h.bs[0].Healthy() {
		t.Fatal("healthy with nothing listening")
	}
	if s := h.bs[0].State(t0); !strings.Contains(s.LastError, "connection refused") {
		t.Errorf("last error %q", s.LastError)
	}
}

func TestCheckerRequest(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*CheckConfig)
		method string
		uri    string
		host   func(srv *server) string
	}{
		{"defaults", func(*CheckConfig) {}, "GET", "/", func(srv *server) string { return srv.Listener.Addr().String() }},
		{"HEAD, path and host", func(c *CheckConfig) {
			c.Method = http.MethodHead
			c.Path = "/healthz?full=1"
			c.Host = "health.example:8080"
		}, "HEAD", "/healthz?full=1", func(*server) string { return "health.example:8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, 200)
			cfg := checkConfig()
			tt.cfg(&cfg)
			h := start(t, cfg, nil, srv.URL)
			h.clk.waitSleepers(t, 1)
			r := srv.lastRequest()
			if r.Method != tt.method || r.RequestURI != tt.uri || r.Host != tt.host(srv) ||
				r.UserAgent() != userAgent || !r.Close {
				t.Errorf("request %s %s Host %q UA %q Close %v", r.Method, r.RequestURI, r.Host, r.UserAgent(), r.Close)
			}
			if !h.bs[0].Healthy() {
				t.Error("not healthy")
			}
		})
	}
}

func TestCheckerJitter(t *testing.T) {
	// Four backends; the random source hands out 0, 250ms, 500ms, 750ms
	// for the first delays (drawn in list order), then 0.
	var srvs []*server
	var urls []string
	for range 4 {
		s := newServer(t, 200)
		srvs = append(srvs, s)
		urls = append(urls, s.URL)
	}
	var calls atomic.Int64
	randN := func(n int64) int64 {
		i := calls.Add(1) - 1
		if i >= 4 {
			return 0
		}
		return i * n / 4
	}
	cfg := checkConfig()
	cfg.Jitter = time.Second
	h := start(t, cfg, randN, urls...)
	hits := func() []int32 {
		var n []int32
		for _, s := range srvs {
			n = append(n, s.hits.Load())
		}
		return n
	}
	h.clk.waitSleepers(t, 4)
	want := []int32{1, 0, 0, 0}
	if got := hits(); !slices.Equal(got, want) {
		t.Fatalf("checks at start: %v, want %v", got, want)
	}
	for i := 1; i < 4; i++ {
		h.clk.advance(250 * time.Millisecond)
		h.clk.waitSleepers(t, 4)
		want[i] = 1
		if got := hits(); !slices.Equal(got, want) {
			t.Fatalf("checks after %v: %v, want %v", time.Duration(i)*250*time.Millisecond, got, want)
		}
	}
	var times []time.Time
	for _, b := range h.bs {
		times = append(times, b.State(0).LastCheck)
	}
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d != 250*time.Millisecond {
			t.Errorf("first checks %d and %d are %v apart, want 250ms", i-1, i, d)
		}
	}
	// Later checks come Interval - Jitter/2 + rand after the previous.
	if d := h.clk.requested(); !slices.Contains(d, cfg.Interval-cfg.Jitter/2) {
		t.Errorf("sleeps %v: none is interval-jitter/2", d)
	}
}

func TestCheckerDefaultJitterInRange(t *testing.T) {
	srv := newServer(t, 200)
	cfg := checkConfig()
	cfg.Jitter = time.Second
	var urls []string
	for range 5 {
		urls = append(urls, srv.URL)
	}
	h := start(t, cfg, nil, urls...) // the real random source
	h.clk.waitSleepers(t, 5)
	for _, d := range h.clk.requested() {
		first := d >= 0 && d < cfg.Jitter
		later := d >= cfg.Interval-cfg.Jitter/2 && d < cfg.Interval+cfg.Jitter/2
		if !first && !later {
			t.Errorf("sleep %v outside both ranges", d)
		}
	}
}

func TestCheckerUpdate(t *testing.T) {
	a, b := newServer(t, 200), newServer(t, 200)
	h := start(t, checkConfig(), nil, a.URL)
	h.clk.waitSleepers(t, 1)
	a.status.Store(500)
	h.tick() // a: 1 failure of 3

	bb := newBackend(t, h.pool, b.URL)
	h.bs = append(h.bs, bb)
	h.c.Update(h.cfg, h.bs)
	h.clk.waitSleepers(t, 2)
	if a.hits.Load() != 2 || b.hits.Load() != 1 {
		t.Fatalf("hits a=%d b=%d; want a untouched, b checked at once", a.hits.Load(), b.hits.Load())
	}
	if !bb.State(0).Checked {
		t.Fatal("added backend not checked")
	}
	h.tick() // a: 2 failures
	if !h.bs[0].Healthy() {
		t.Fatal("a fell early")
	}
	h.tick() // a: 3 failures: the count from before Update went on
	if h.bs[0].Healthy() {
		t.Fatal("a's fall count restarted on Update")
	}

	// Remove a.
	h.bs = h.bs[1:]
	h.c.Update(h.cfg, h.bs)
	h.clk.waitSleepers(t, 1)
	before := a.hits.Load()
	h.tick()
	if a.hits.Load() != before || b.hits.Load() != 4 {
		t.Errorf("after removal: a %d (was %d), b %d", a.hits.Load(), before, b.hits.Load())
	}

	// A new configuration applies from the next check.
	cfg := h.cfg
	cfg.Path = "/v2"
	h.cfg = cfg
	h.c.Update(cfg, h.bs)
	h.tick()
	if got := b.lastRequest().RequestURI; got != "/v2" {
		t.Errorf("checked %q after Update, want /v2", got)
	}
}

func TestCheckerUpdateDisable(t *testing.T) {
	srv := newServer(t, 500)
	h := start(t, checkConfig(), nil, srv.URL)
	h.clk.waitSleepers(t, 1)
	if h.bs[0].Healthy() {
		t.Fatal("healthy")
	}
	off := h.cfg
	off.Enabled = false
	h.c.Update(off, h.bs)
	h.clk.waitSleepers(t, 0)
	if !h.bs[0].Healthy() {
		t.Error("unhealthy with checks off")
	}
	h.c.Update(h.cfg, h.bs)
	h.clk.waitSleepers(t, 1)
	if h.bs[0].Healthy() || srv.hits.Load() != 2 {
		t.Errorf("re-enabled: healthy %v, hits %d; want a first check at once", h.bs[0].Healthy(), srv.hits.Load())
	}
}

func TestCheckerStop(t *testing.T) {
	before := runtime.NumGoroutine()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	ok := newServer(t, 200)
	log, _ := newLog()
	clk := newFakeClock()
	pool := NewPool(DefaultOutlierConfig(), log)
	bs := []*Backend{newBackend(t, pool, ok.URL), newBackend(t, pool, ok.URL), newBackend(t, pool, hanging.URL)}
	cfg := checkConfig()
	cfg.Timeout = time.Hour // the hanging check is ended by Stop, not by its timeout
	c := NewChecker(cfg, bs, log, clk)
	c.Start(context.Background())
	clk.waitSleepers(t, 2)
	<-entered
	c.Stop() // must return with a check in flight and two goroutines asleep
	clk.waitSleepers(t, 0)
	c.Stop() // again: nothing
	c.Start(context.Background())
	c.Update(cfg, bs) // after Stop: nothing starts
	clk.waitSleepers(t, 0)
	if ok.hits.Load() != 2 {
		t.Errorf("checks after Stop: %d hits", ok.hits.Load())
	}
	close(release)
	hanging.Close()
	ok.Close()

	// Goroutines of the checker, the servers and net/http end; wait
	// (polling, with a hang guard) until the count is back.
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCheckerStopBeforeStart(t *testing.T) {
	c := NewChecker(checkConfig(), nil, nil, nil)
	c.Stop()
	c.Start(context.Background())
	c.Stop()
}

func TestCheckerContextCancel(t *testing.T) {
	srv := newServer(t, 200)
	clk := newFakeClock()
	b := newBackend(t, NewPool(DefaultOutlierConfig(), nil), srv.URL)
	c := NewChecker(checkConfig(), []*Backend{b}, nil, clk)
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	clk.waitSleepers(t, 1)
	cancel()
	clk.waitSleepers(t, 0)
	c.Stop()
}

func TestCheckConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*CheckConfig)
		want string
	}{
		{"default", func(*CheckConfig) {}, ""},
		{"interval 0", func(c *CheckConfig) { c.Interval = 0 }, "healthCheck.interval: must be greater than 0, got 0s"},
		{"timeout 0", func(c *CheckConfig) { c.Timeout = 0 }, "healthCheck.timeout: must be greater than 0"},
		{"timeout = interval", func(c *CheckConfig) { c.Timeout = c.Interval }, ""},
		{"timeout > interval", func(c *CheckConfig) { c.Timeout = 2 * c.Interval }, ""},
		{"jitter > interval", func(c *CheckConfig) { c.Jitter = time.Minute }, "healthCheck.jitter: must be between 0 and healthCheck.interval (30s), got 1m0s"},
		{"jitter 0", func(c *CheckConfig) { c.Jitter = 0 }, ""},
		{"jitter = interval", func(c *CheckConfig) { c.Jitter = c.Interval }, ""},
		{"method POST", func(c *CheckConfig) { c.Method = "POST" }, `healthCheck.method: must be GET or HEAD, got "POST"`},
		{"method head", func(c *CheckConfig) { c.Method = "head" }, "healthCheck.method"},
		{"method HEAD", func(c *CheckConfig) { c.Method = "HEAD" }, ""},
		{"no status", func(c *CheckConfig) { c.ExpectedStatus = StatusSet{} }, "healthCheck.expectedStatus"},
		{"rise 0", func(c *CheckConfig) { c.HealthyThreshold = 0 }, "healthCheck.healthyThreshold: must be between 1 and 100, got 0"},
		{"fall 101", func(c *CheckConfig) { c.UnhealthyThreshold = 101 }, "healthCheck.unhealthyThreshold"},
		{"relative path", func(c *CheckConfig) { c.Path = "health" }, "healthCheck.path"},
		{"path with space", func(c *CheckConfig) { c.Path = "/a b" }, "healthCheck.path"},
		{"path with fragment", func(c *CheckConfig) { c.Path = "/a#b" }, "healthCheck.path"},
		{"path with query", func(c *CheckConfig) { c.Path = "/a?b=1" }, ""},
		{"host with slash", func(c *CheckConfig) { c.Host = "a/b" }, "healthCheck.host"},
		{"host with newline", func(c *CheckConfig) { c.Host = "a\nb" }, "healthCheck.host"},
		{"host:port", func(c *CheckConfig) { c.Host = "example.com:8080" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultCheckConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckConfigNormalized(t *testing.T) {
	got := CheckConfig{Enabled: true, Jitter: -1, HealthyThreshold: 500, Method: "POST"}.normalized()
	d := DefaultCheckConfig()
	if got.Interval != d.Interval || got.Timeout != d.Timeout || got.Jitter != 0 || got.Path != "/" ||
		got.Method != "GET" || got.ExpectedStatus != d.ExpectedStatus || got.HealthyThreshold != 100 ||
		got.UnhealthyThreshold != 1 {
		t.Errorf("normalized = %+v", got)
	}
}
