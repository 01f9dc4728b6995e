package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/admin"
	"github.com/connx/connx/internal/breaker"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/metrics"
	"github.com/connx/connx/internal/stats"
	"github.com/panjf2000/gnet/v2"
)

// withDefaultHealth turns the passive health machinery back on with its
// defaults (testConfig turns it off for tests that provoke failures).
func withDefaultHealth(c *config.Config) {
	d := config.Default()
	c.CircuitBreaker = d.CircuitBreaker
	c.Outlier = d.Outlier
}

// getStatus sends one GET on a fresh connection and returns the status and
// body.
func getStatus(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestAppErrorsKeepSiteUp is issue 14's outage: two healthy backends,
// breaker and outlier detection at their defaults, one endpoint with an
// application bug that answers 500. Ten requests to it used to open the
// breaker of both backends, and every other page got 503 for about a
// minute. Application 500s say nothing about the backend: the rest of the
// site must keep answering.
func TestAppErrorsKeepSiteUp(t *testing.T) {
	handler := func(i int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/bug" {
				http.Error(w, "nil pointer dereference", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, i)
		}
	}
	a := httpBackend(t, handler(0))
	b := httpBackend(t, handler(1))
	srv, addr := proxyFor(t, []string{a, b}, func(c *config.Config) {
		withDefaultHealth(c)
		c.HealthCheck = config.Default().HealthCheck // every 30s: no check runs during the test
	})
	for range 10 {
		if code, _ := getStatus(t, addr, "/bug"); code != http.StatusInternalServerError {
			t.Fatalf("/bug answered %d, want the backend's 500", code)
		}
	}
	for i := range 10 {
		code, body := getStatus(t, addr, "/")
		if code != http.StatusOK {
			now := time.Now().UnixNano()
			for k, m := range srv.snap.Load().def.members {
				st := m.hb.State(now)
				t.Logf("backend %d: breaker %s, ejected %v, last error %q", k, st.Breaker, st.Ejected, st.LastError)
			}
			t.Fatalf("request %d to a healthy page after 10 application errors: status %d %q, want 200", i, code, body)
		}
	}
}

// logRecorder records every log message (at any level) and passes the
// records its inner handler wants on to it.
type logRecorder struct {
	inner slog.Handler
	mu    sync.Mutex
	msgs  []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	line := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, line)
	r.mu.Unlock()
	if r.inner.Enabled(ctx, rec.Level) {
		return r.inner.Handle(ctx, rec)
	}
	return nil
}
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler { return r } // the proxy adds none
func (r *logRecorder) WithGroup(string) slog.Handler         { return r }

// has reports whether a message, with its attributes, contains sub.
func (r *logRecorder) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// count returns how many messages start with prefix.
func (r *logRecorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func recordingLogger(t *testing.T) (*slog.Logger, *logRecorder) {
	r := &logRecorder{inner: testLogger(t).Handler()}
	return slog.New(r), r
}

// observe renders srv's metrics as connx does and reads /readyz and
// /api/backends from an admin handler over srv.Stats.
type observed struct {
	metrics  string
	ready    int // /readyz status
	readyz   admin.Readiness
	backends []admin.Backend
}

func observe(t *testing.T, srv *Server) observed {
	t.Helper()
	var o observed
	text, err := metrics.New(metrics.Options{Source: srv.Stats}).AppendText(nil)
	if err != nil {
		t.Fatal(err)
	}
	o.metrics = string(text)
	h := admin.New(admin.Options{Stats: srv.Stats}).Handler()
	get := func(path string, v any) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body.String())
		}
		return rec.Code
	}
	o.ready = get("/readyz", &o.readyz)
	get("/api/backends", &o.backends)
	return o
}

// value returns the value of one series of the exposition, e.g.
// `connx_backend_up{backend="http://a"}`.
func (o observed) value(t *testing.T, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(o.metrics, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no series %s in:\n%s", series, o.metrics)
	return 0
}

// sumUp is the sum of connx_backend_up over srv's backends.
func (o observed) sumUp(t *testing.T, srv *Server) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range srv.snap.Load().def.members {
		sum += o.value(t, fmt.Sprintf(`connx_backend_up{backend=%q,pool="default"}`, m.url))
	}
	return sum
}

// gatewayBackend answers 503 on /flaky (a gateway failure: the backend
// says it cannot serve), 500 on /bug, 200 on /health and its index
// elsewhere.
func gatewayBackend(t *testing.T, i int, health *atomic.Bool) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "/health":
			if health != nil && !health.Load() {
				http.Error(w, "sick", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, "ok")
		default:
			fmt.Fprint(w, i)
		}
	}))
}

// activeChecks turns on fast active checks of /health.
func activeChecks(c *config.Config) {
	c.HealthCheck.Enabled = true
	c.HealthCheck.Path = "/health"
	c.HealthCheck.Interval = 100 * time.Millisecond
	c.HealthCheck.Timeout = 80 * time.Millisecond
	c.HealthCheck.Jitter = 0
	c.HealthCheck.HealthyThreshold = 1
	c.HealthCheck.UnhealthyThreshold = 1
}

// breakAll sends n requests to /flaky, each answered 503 by a backend,
// and waits until the first k backends' breakers are open (the proxy
// reports an outcome just after the response has gone out).
func breakAll(t *testing.T, srv *Server, n, k int) {
	t.Helper()
	addr := srv.Addr().String()
	for i := range n {
		if code, body := getStatus(t, addr, "/flaky"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "overloaded") {
			t.Fatalf("/flaky request %d: %d %q, want the backend's 503", i, code, body)
		}
	}
	waitFor(t, "breakers open after 5 gateway failures each", func() bool {
		for _, m := range srv.snap.Load().def.members[:k] {
			if m.hb.Breaker().State() != breaker.Open {
				return false
			}
		}
		return true
	})
}

// TestPanicMode: gateway failures (503 from the backends) open the
// breaker of every backend, which the breaker is right to count. With
// loadBalancing.panicThreshold at its default (50%) the pool enters panic
// mode instead of answering 503 to everyone: traffic keeps flowing to the
// backends that pass active checks, the metrics, /readyz and
// /api/backends say so, and the change is logged once.
func TestPanicMode(t *testing.T) {
	a := gatewayBackend(t, 0, nil)
	b := gatewayBackend(t, 1, nil)
	log, rec := recordingLogger(t)
	cfg := testConfig(t, []string{a, b}, func(c *config.Config) {
		withDefaultHealth(c)
		activeChecks(c)
	})
	if cfg.LoadBalancing.PanicThreshold != 50 {
		t.Fatalf("default panicThreshold %d, want 50", cfg.LoadBalancing.PanicThreshold)
	}
	srv := startProxyLog(t, cfg, log)
	addr := srv.Addr().String()
	o := observe(t, srv)
	if o.value(t, `connx_pool_panic{pool="default"}`) != 0 || o.readyz.Panic {
		t.Fatal("panic mode before any failure")
	}

	// 5 consecutive failures each: both breakers open.
	breakAll(t, srv, 10, 2)
	got := tally(t, addr, 20, 1, nil) // fails on any status but 200
	if got[0] != 10 || got[1] != 10 {
		t.Fatalf("in panic mode: answers %v, want 10/10 over both healthy backends", got[:2])
	}

	o = observe(t, srv)
	if v := o.value(t, `connx_pool_panic{pool="default"}`); v != 1 {
		t.Errorf("connx_pool_panic %v, want 1", v)
	}
	if v := o.value(t, `connx_pool_panics_total{pool="default"}`); v != 1 {
		t.Errorf("connx_pool_panics_total %v, want 1", v)
	}
	if up := o.sumUp(t, srv); up != 2 {
		t.Errorf("connx_backend_up sums to %v, want 2: both backends may be picked in panic mode", up)
	}
	if o.ready != http.StatusOK || !o.readyz.Ready || !o.readyz.Panic || o.readyz.BackendsUp != 2 {
		t.Errorf("/readyz %d %+v, want 200, ready, panic, 2 up", o.ready, o.readyz)
	}
	for _, be := range o.backends {
		if !be.Up || be.Breaker != "open" {
			t.Errorf("/api/backends: %s up %v breaker %s, want up with its breaker open", be.Name, be.Up, be.Breaker)
		}
	}
	// Ticks keep confirming the state; it is logged once.
	time.Sleep(300 * time.Millisecond)
	if n := rec.count("panic mode on"); n != 1 {
		t.Errorf("%d \"panic mode on\" log lines, want 1", n)
	}
	if n := rec.count("panic mode off"); n != 0 {
		t.Errorf("left panic mode while every breaker is open")
	}
}

// TestPanicModeHonoursActiveChecks: panic mode ignores breakers and
// ejection, not active health checks. With one backend failing its checks
// and the other two breaker-open, requests go to those two only.
func TestPanicModeHonoursActiveChecks(t *testing.T) {
	var cHealthy atomic.Bool
	a := gatewayBackend(t, 0, nil)
	b := gatewayBackend(t, 1, nil)
	c := gatewayBackend(t, 2, &cHealthy)
	srv, addr := proxyFor(t, []string{a, b, c}, func(c *config.Config) {
		withDefaultHealth(c)
		activeChecks(c)
	})
	waitFor(t, "backend 2 failing its checks", func() bool { return !srv.snap.Load().def.members[2].hb.Healthy() })
	breakAll(t, srv, 10, 2)
	got := tally(t, addr, 20, 1, nil)
	if got[0] != 10 || got[1] != 10 || got[2] != 0 {
		t.Fatalf("answers %v, want 10/10/0: the backend failing active checks gets nothing", got[:3])
	}
	o := observe(t, srv)
	if o.value(t, `connx_pool_panic{pool="default"}`) != 1 || o.sumUp(t, srv) != 2 || o.readyz.BackendsUp != 2 {
		t.Errorf("panic %v, up %v, /readyz %+v", o.value(t, `connx_pool_panic{pool="default"}`), o.sumUp(t, srv), o.readyz)
	}
}

// TestPanicModeEnds: once a breaker closes again the pool has enough
// backends available and leaves panic mode, logging that once.
func TestPanicModeEnds(t *testing.T) {
	a := gatewayBackend(t, 0, nil)
	b := gatewayBackend(t, 1, nil)
	log, rec := recordingLogger(t)
	srv := startProxyLog(t, testConfig(t, []string{a, b}, func(c *config.Config) {
		withDefaultHealth(c)
		c.CircuitBreaker.Timeout = 300 * time.Millisecond
		c.CircuitBreaker.HalfOpenSuccess = 1
	}), log)
	addr := srv.Addr().String()
	breakAll(t, srv, 10, 2)
	if code, _ := getStatus(t, addr, "/"); code != http.StatusOK {
		t.Fatalf("status %d in panic mode", code)
	}
	if !srv.snap.Load().def.panicking() {
		t.Fatal("not in panic mode with both breakers open")
	}
	// Backend 0 is also ejected (30s); backend 1's breaker closes after
	// 300ms and one good probe, which makes 1 of 2 available: 50%.
	// Wait for the end to be settled: out of panic mode with backend 1's
	// breaker closed, not merely half-open (a half-open breaker counts as
	// available, and on a loaded machine its probe may be one of
	// breakAll's failures, which opens it again).
	waitFor(t, "panic mode to end", func() bool {
		if code, _ := getStatus(t, addr, "/"); code != http.StatusOK {
			t.Fatalf("status %d while panic mode ends", code)
		}
		return !srv.snap.Load().def.panicking() && srv.snap.Load().def.members[1].hb.Breaker().State() == breaker.Closed
	})
	for range 10 {
		if code, body := getStatus(t, addr, "/"); code != http.StatusOK || body != "1" {
			t.Fatalf("after panic mode: %d %q, want backend 1 (backend 0 is ejected)", code, body)
		}
	}
	// Each change is logged once. On a loaded machine breakAll can
	// outlast the 300 ms open time, so a half-open probe may meet one of
	// its failures and the pool may go through panic mode twice: count
	// transitions, not runs.
	on, off := rec.count("panic mode on"), rec.count("panic mode off")
	if on < 1 || on != off {
		t.Errorf("logged panic mode on %d times and off %d times, want each entry matched by one exit", on, off)
	}
	var st stats.Snapshot
	srv.Stats(&st)
	if st.Pool.Panic || st.Pool.Panics != uint64(on) {
		t.Errorf("pool %+v, want out of panic after %d panics (as logged)", st.Pool, on)
	}
}

// TestPanicThresholdOff: panicThreshold 0 keeps the breakers strict.
func TestPanicThresholdOff(t *testing.T) {
	a := gatewayBackend(t, 0, nil)
	b := gatewayBackend(t, 1, nil)
	srv, addr := proxyFor(t, []string{a, b}, func(c *config.Config) {
		withDefaultHealth(c)
		c.LoadBalancing.PanicThreshold = 0
	})
	breakAll(t, srv, 10, 2)
	if code, _ := getStatus(t, addr, "/"); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d with every breaker open and panic mode off, want 503", code)
	}
	time.Sleep(250 * time.Millisecond) // a few ticks
	o := observe(t, srv)
	if o.value(t, `connx_pool_panic{pool="default"}`) != 0 || o.sumUp(t, srv) != 0 || o.ready != http.StatusServiceUnavailable {
		t.Errorf("panic %v, up %v, /readyz %d", o.value(t, `connx_pool_panic{pool="default"}`), o.sumUp(t, srv), o.ready)
	}
}

// TestUpMeansPickable is issue 14's lying readiness: one backend failing
// its active checks and the other at weight 0 (draining). No request can
// be forwarded, so no backend is up: connx_backend_up sums to 0, /readyz
// answers 503 and /api/backends shows the states "down" and "draining",
// both not up, and a request gets 503.
func TestUpMeansPickable(t *testing.T) {
	var aHealthy atomic.Bool
	a := gatewayBackend(t, 0, &aHealthy)
	b := gatewayBackend(t, 1, nil)
	srv, addr := proxyFor(t, []string{a, b}, func(c *config.Config) {
		activeChecks(c)
		c.Backends[1].Weight = 0
	})
	waitFor(t, "backend 0 failing its checks", func() bool { return !srv.snap.Load().def.members[0].hb.Healthy() })
	if code, _ := getStatus(t, addr, "/"); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: no backend can take the request", code)
	}
	o := observe(t, srv)
	if up := o.sumUp(t, srv); up != 0 {
		t.Errorf("connx_backend_up sums to %v, want 0", up)
	}
	if o.ready != http.StatusServiceUnavailable || o.readyz.Ready || o.readyz.BackendsUp != 0 {
		t.Errorf("/readyz %d %+v, want 503, not ready", o.ready, o.readyz)
	}
	if len(o.backends) != 2 || o.backends[0].Up || o.backends[0].State != "down" || o.backends[1].Up || o.backends[1].State != "draining" {
		t.Errorf("/api/backends: %+v", o.backends)
	}

	// Backend 0 passes its checks again: it is up, and so is the pool.
	aHealthy.Store(true)
	waitFor(t, "backend 0 healthy", func() bool { return srv.snap.Load().def.members[0].hb.Healthy() })
	o = observe(t, srv)
	if up := o.sumUp(t, srv); up != 1 || o.ready != http.StatusOK || o.readyz.BackendsUp != 1 || !o.backends[0].Up || o.backends[1].Up {
		t.Errorf("after recovery: up %v, /readyz %d %+v", up, o.ready, o.readyz)
	}
	if code, body := getStatus(t, addr, "/"); code != http.StatusOK || body != "0" {
		t.Errorf("after recovery: %d %q", code, body)
	}
}

// TestPanicModeHalfOpenProbesBusy: every backend's breaker is half-open
// and its probe slot is taken by a slow request (an attacker's, say).
// Nothing can be picked, so the pool must be in panic mode and serve,
// not answer 503 until the probes end.
func TestPanicModeHalfOpenProbesBusy(t *testing.T) {
	release := make(chan struct{})
	handler := func(i int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/flaky":
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
			case "/slow":
				<-release
				fmt.Fprint(w, "slow")
			default:
				fmt.Fprint(w, i)
			}
		}
	}
	a := httpBackend(t, handler(0))
	b := httpBackend(t, handler(1))
	srv, addr := proxyFor(t, []string{a, b}, func(c *config.Config) {
		withDefaultHealth(c)
		c.Outlier.Enabled = false
		c.CircuitBreaker.Timeout = 300 * time.Millisecond
		c.Upstream.Retries = 0
	})
	breakAll(t, srv, 10, 2)
	// The breakers decide on the loop's coarse clock: wait until it says
	// their open time is over.
	waitFor(t, "the breakers' open time to pass on the loop's clock", func() bool {
		now := loopClock(srv)
		for _, m := range srv.snap.Load().def.members {
			if !m.hb.Breaker().Available(now) {
				return false
			}
		}
		return true
	})
	// Slow requests take the probe slots: one per backend.
	hc := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	var slow sync.WaitGroup
	defer slow.Wait()
	defer close(release)
	halfOpen := func() bool {
		for _, m := range srv.snap.Load().def.members {
			if m.hb.Breaker().State() != breaker.HalfOpen {
				return false
			}
		}
		return true
	}
	for i := 0; !halfOpen(); i++ {
		if i == 8 {
			t.Fatal("the slow requests did not take both probe slots")
		}
		slow.Add(1)
		go func() {
			defer slow.Done()
			if resp, err := hc.Get("http://" + addr + "/slow"); err == nil {
				resp.Body.Close()
			}
		}()
		_, before := tunnelStats(srv)
		waitFor(t, "the slow request in flight", func() bool { _, n := tunnelStats(srv); return n > before })
	}
	// What the next 100 ms tick would decide, now.
	srv.snap.Load().def.updatePanic(time.Now().UnixNano(), false)
	for i := range 10 {
		if code, _ := getStatus(t, addr, "/"); code != http.StatusOK {
			t.Fatalf("request %d while both probes are busy: %d, want 200 (panic mode)", i, code)
		}
	}
}

// loopClock is the earliest of the loops' coarse clocks, read on each loop.
func loopClock(s *Server) int64 {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	earliest := int64(1<<63 - 1)
	for _, lp := range loops {
		done := make(chan int64, 1)
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			done <- lp.now
			return nil
		}))
		earliest = min(earliest, <-done)
	}
	return earliest
}

// TestPanicModeEndsUnderHashing: under consistent-hash a client's requests
// all go to one backend, so the other backends' breakers, their open time
// over, are never asked and stay "open"; the pool must still leave panic
// mode once every backend may be picked again. (Found by review.)
func TestPanicModeEndsUnderHashing(t *testing.T) {
	a, b, c := gatewayBackend(t, 0, nil), gatewayBackend(t, 1, nil), gatewayBackend(t, 2, nil)
	srv, addr := proxyFor(t, []string{a, b, c}, func(c *config.Config) {
		c.LoadBalancing.Algorithm = "consistent-hash"
		c.CircuitBreaker = config.Default().CircuitBreaker
		c.CircuitBreaker.Timeout = 200 * time.Millisecond
		c.CircuitBreaker.HalfOpenSuccess = 1
	})
	breakAll(t, srv, 15, 3) // the failures walk the ring: all three breakers open
	waitFor(t, "panic mode", func() bool { return srv.snap.Load().def.panicking() })
	waitFor(t, "the breakers' open time to pass on the loop's clock", func() bool {
		now := loopClock(srv)
		for _, m := range srv.snap.Load().def.members {
			if !m.hb.Breaker().Available(now) {
				return false
			}
		}
		return true
	})
	if code, _ := getStatus(t, addr, "/"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	// What the next 100 ms tick decides, now.
	srv.snap.Load().def.updatePanic(time.Now().UnixNano(), false)
	if srv.snap.Load().def.panicking() {
		for k, m := range srv.snap.Load().def.members {
			t.Logf("backend %d: breaker %s", k, m.hb.Breaker().State())
		}
		t.Fatal("still in panic with every backend available again")
	}
}
