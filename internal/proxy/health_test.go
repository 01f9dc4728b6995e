package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// flakyBackend answers body with 200 while ok is true and 500 otherwise,
// on every path.
func flakyBackend(t *testing.T, body string, ok *atomic.Bool) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ok.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, body)
	}))
}

func availableAt(srv *Server, i int) bool {
	return srv.snap.Load().def.members[i].available(time.Now().UnixNano())
}

// TestActiveHealthChecks flips a backend's health endpoint and checks that
// traffic leaves it after the fall threshold and returns after the rise.
func TestActiveHealthChecks(t *testing.T) {
	var aOK atomic.Bool
	aOK.Store(true)
	a := flakyBackend(t, "0", &aOK)
	var bHits atomic.Int64
	bCounted := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			bHits.Add(1)
		}
		fmt.Fprint(w, "1")
	}))
	srv, addr := proxyFor(t, []string{a, bCounted}, func(cfg *config.Config) {
		cfg.HealthCheck.Enabled = true
		cfg.HealthCheck.Path = "/health"
		cfg.HealthCheck.Interval = 100 * time.Millisecond
		cfg.HealthCheck.Timeout = 80 * time.Millisecond
		cfg.HealthCheck.Jitter = 0
		cfg.HealthCheck.HealthyThreshold = 2
		cfg.HealthCheck.UnhealthyThreshold = 2
	})
	waitFor(t, "both backends checked healthy", func() bool { return availableAt(srv, 0) && availableAt(srv, 1) })

	aOK.Store(false)
	waitFor(t, "backend 0 marked unhealthy", func() bool { return !availableAt(srv, 0) })
	before := bHits.Load()
	got := tally(t, addr, 20, 1, nil)
	if got[0] != 0 || got[1] != 20 || bHits.Load()-before != 20 {
		t.Fatalf("with backend 0 unhealthy: answers %v, backend 1 served %d of 20", got[:2], bHits.Load()-before)
	}

	aOK.Store(true)
	waitFor(t, "backend 0 healthy again", func() bool { return availableAt(srv, 0) })
	got = tally(t, addr, 20, 1, nil)
	if got[0] != 10 || got[1] != 10 {
		t.Fatalf("after recovery: answers %v, want 10/10", got[:2])
	}
}

// TestCircuitBreaker checks that a backend answering 5xx is cut off after
// maxFailures, gets a single probe after the open timeout, and is used
// again once the probe succeeds.
func TestCircuitBreaker(t *testing.T) {
	var aOK atomic.Bool
	var aHits atomic.Int64
	a := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aHits.Add(1)
		if !aOK.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "0")
	}))
	b := namedBackends(t, 0, 0)[1] // answers "1"
	srv, addr := proxyFor(t, []string{a, b}, func(cfg *config.Config) {
		cfg.CircuitBreaker.Enabled = true
		cfg.CircuitBreaker.MaxFailures = 3
		cfg.CircuitBreaker.Timeout = 300 * time.Millisecond
		cfg.CircuitBreaker.HalfOpenSuccess = 1
		cfg.CircuitBreaker.FailureOn5xx = true
	})
	hb := srv.snap.Load().def.members[0].hb
	client := &http.Client{Timeout: 5 * time.Second}
	get := func() int {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// Round-robin alternates: 6 requests give backend 0 its 3 failures.
	for range 6 {
		get()
	}
	if aHits.Load() != 3 || hb.Breaker().State().String() != "open" {
		t.Fatalf("after 3 failures: backend 0 hits %d, breaker %s", aHits.Load(), hb.Breaker().State())
	}
	for range 10 {
		if code := get(); code != 200 {
			t.Fatalf("status %d while the breaker is open: requests must go to the healthy backend", code)
		}
	}
	if aHits.Load() != 3 {
		t.Fatalf("open breaker let %d requests through", aHits.Load()-3)
	}
	aOK.Store(true)
	// After the open timeout one probe goes through and closes it.
	waitFor(t, "breaker to close after a probe", func() bool {
		get()
		return hb.Breaker().State().String() == "closed"
	})
	got := tally(t, addr, 20, 1, nil)
	if got[0] != 10 || got[1] != 10 {
		t.Fatalf("after closing: answers %v, want 10/10", got[:2])
	}
}

// TestNoBackendAvailable checks the answer when every backend is
// unhealthy: 503 at once with a Retry-After, and no request reaches the
// backend.
func TestNoBackendAvailable(t *testing.T) {
	var ok atomic.Bool
	var hits atomic.Int64
	a := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Header.Get("User-Agent") != "" && r.Header.Get("X-Forwarded-For") != "" {
			hits.Add(1)
		}
		if !ok.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "0")
	}))
	srv, addr := proxyFor(t, []string{a}, func(cfg *config.Config) {
		cfg.HealthCheck.Enabled = true
		cfg.HealthCheck.Interval = 200 * time.Millisecond
		cfg.HealthCheck.Timeout = 100 * time.Millisecond
		cfg.HealthCheck.Jitter = 0
	})
	waitFor(t, "the backend marked unhealthy", func() bool { return !availableAt(srv, 0) })
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")
	r2 := rc.expectStatusAndClose(http.MethodGet, http.StatusServiceUnavailable)
	if ra, err := strconv.Atoi(r2.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r2.Header.Get("Retry-After"))
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d proxied requests reached a backend known to be down", n)
	}
	ok.Store(true)
	waitFor(t, "recovery once checks pass", func() bool { return availableAt(srv, 0) })
	if got := tally(t, addr, 3, 1, nil); got[0] != 3 {
		t.Fatalf("after recovery: %v", got[:1])
	}
}

// TestSlowStartAfterRecovery checks that a backend coming back from
// failed health checks gets a small share at first under
// loadBalancing.slowStart, not half the traffic at once.
func TestSlowStartAfterRecovery(t *testing.T) {
	var aOK atomic.Bool
	aOK.Store(true)
	a := flakyBackend(t, "0", &aOK)
	b := namedBackends(t, 0, 0)[1] // answers "1"
	srv, addr := proxyFor(t, []string{a, b}, func(cfg *config.Config) {
		cfg.LoadBalancing.SlowStart = time.Hour // the ramp barely moves during the test
		cfg.HealthCheck.Enabled = true
		cfg.HealthCheck.Interval = 100 * time.Millisecond
		cfg.HealthCheck.Timeout = 80 * time.Millisecond
		cfg.HealthCheck.Jitter = 0
		cfg.HealthCheck.HealthyThreshold = 1
		cfg.HealthCheck.UnhealthyThreshold = 1
	})
	node := srv.snap.Load().def.members[0].node
	waitFor(t, "backend 0 healthy", func() bool { return availableAt(srv, 0) })
	aOK.Store(false)
	waitFor(t, "backend 0 down in the balancer", func() bool { return !node.Up() })
	aOK.Store(true)
	waitFor(t, "backend 0 up again in the balancer", func() bool { return node.Up() && availableAt(srv, 0) })
	got := tally(t, addr, 200, 1, nil)
	t.Logf("shares right after recovery: %v", got[:2])
	// At the start of the ramp backend 0 takes about 10% of its turns.
	if got[0] > 50 {
		t.Fatalf("backend 0 got %d of 200 right after recovering; slow start should hold it near 10%% of its share", got[0])
	}
	if got[0] == 0 {
		t.Fatalf("backend 0 got nothing after recovering")
	}
}
