package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// TestGracefulShutdown: Shutdown refuses new connections at once, closes
// idle keep-alive connections, lets a slow request in flight finish with
// "Connection: close", answers a request already received, and returns
// once the last connection is gone.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	started := make(chan struct{}, 4)
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the backend's Close
	srv, addr := proxyFor(t, []string{be}, nil)

	idle := dialProxy(t, addr)
	if resp, _ := idle.get("/warm"); resp.StatusCode != 200 {
		t.Fatal("warm-up failed")
	}
	// busy has a request in flight and another pipelined behind it;
	// last has one in flight.
	busy := dialProxy(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	last := dialProxy(t, addr)
	last.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()

	// Once the listeners are closed, new connections are refused (not
	// accepted and reset).
	<-srv.Unbound()
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatal("a connection was accepted during shutdown")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial during shutdown: %v, want connection refused", err)
		}
	}
	idle.expectClosed()

	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with a request in flight: %v", err)
	default:
	}
	once.Do(func() { close(release) })
	resp, body := busy.response(http.MethodGet)
	if resp.StatusCode != 200 || body != "done /slow" {
		t.Fatalf("slow request: %d %q", resp.StatusCode, body)
	}
	// The pipelined request had been received: it is answered too,
	// and then the connection closes.
	resp, body = busy.response(http.MethodGet)
	if resp.StatusCode != 200 || body != "done /second" || !resp.Close {
		t.Fatalf("pipelined request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	busy.expectClosed()
	// A response in flight when the shutdown began is the connection's
	// last, and says so.
	resp, body = last.response(http.MethodGet)
	if resp.StatusCode != 200 || body != "done /slow" || !resp.Close {
		t.Fatalf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	last.expectClosed()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return after the last connection closed")
	}
}

// TestShutdownDeadline: a request still in flight at the deadline is cut
// off and Shutdown reports it.
func TestShutdownDeadline(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}))
	t.Cleanup(func() { close(release) }) // before the backend's Close
	srv, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	rc.expectClosed()
}

// TestReloadBackends swaps the backend set: traffic moves to the new set
// at once, a removed backend's series leave the stats, a backend that
// stays keeps its counters and upstream connections.
func TestReloadBackends(t *testing.T) {
	a, b, c := namedBackends(t, 0, 0, 0)[0], namedBackends(t, 0)[0], namedBackends(t, 0)[0]
	srv, addr := proxyFor(t, []string{a, b}, nil)
	if got := tally(t, addr, 20, 1, nil); len(got) < 1 {
		t.Fatal("no traffic")
	}
	before := settledStats(t, srv, 20)
	srv.mu.Lock()
	beA := srv.pools[config.DefaultPoolName].backends[a]
	srv.mu.Unlock()
	if beA == nil || beA.idleConns.Load() == 0 {
		t.Fatalf("backend a has no pooled connection before the reload")
	}

	cfg := testConfig(t, []string{b, c}, func(cf *config.Config) {
		cf.LoadBalancing.Algorithm = "weighted-round-robin"
		cf.Backends[1].Weight = 3
	})
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	hits := map[string]int{}
	for range 40 {
		resp, err := hc.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hits[string(body)]++
	}
	// namedBackends answers with its index in its own call: all "0".
	if hits["0"] != 40 {
		t.Fatalf("answers %v", hits)
	}
	// 40 more, but a's 10 are no longer reported.
	after := settledStats(t, srv, 50)
	names := map[string]stats.Backend{}
	for _, be := range after.Backends {
		names[be.Name] = be
	}
	if _, ok := names["http://"+a]; ok || len(names) != 2 {
		t.Fatalf("backends after reload: %v", names)
	}
	for _, rc := range after.Requests {
		if rc.Backend == "http://"+a {
			t.Fatalf("removed backend still has request series: %+v", rc)
		}
	}
	perBackend := map[string]uint64{}
	for _, rc := range after.Requests {
		perBackend[rc.Backend] += rc.Count
	}
	var bBefore uint64
	for _, rc := range before.Requests {
		if rc.Backend == "http://"+b {
			bBefore += rc.Count
		}
	}
	// Weighted 1:3 over 40 requests: b gets 10 more, c 30.
	if perBackend["http://"+b] != bBefore+10 || perBackend["http://"+c] != 30 {
		t.Fatalf("requests by backend %v (b had %d before)", perBackend, bBefore)
	}
	waitFor(t, "removed backend's pooled connections closed", func() bool {
		return beA.idleConns.Load() == 0 && beA.openConns.Load() == 0
	})
}

// TestReloadInvalidKeepsOld: a config whose snapshot cannot be built
// changes nothing.
func TestReloadInvalidKeepsOld(t *testing.T) {
	a := namedBackends(t, 0)[0]
	srv, addr := proxyFor(t, []string{a}, nil)
	bad := testConfig(t, []string{a}, nil)
	bad.LoadBalancing.Algorithm = "no-such-policy"
	if err := srv.Reload(bad); err == nil {
		t.Fatal("Reload accepted an unknown algorithm")
	}
	if got := tally(t, addr, 5, 1, nil); got[0] != 5 {
		t.Fatalf("after a failed reload: %v", got)
	}
}

// TestOwnAnswerDuringDrain: when Shutdown begins between reading a
// request and ConnX answering it itself (a respond route, a 429), the
// answer says "Connection: close" and the connection closes; before, the
// answer promised keep-alive and the connection was closed under it.
func TestOwnAnswerDuringDrain(t *testing.T) {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name  string
		tweak func(*config.Config)
		code  int
	}{
		{"respond", func(c *config.Config) {
			c.Routes = []config.Route{{Match: config.RouteMatch{PathPrefix: "/"}, Respond: &config.Respond{Status: 200, Body: "hi\n"}}}
		}, 200},
		{"rate-limited", func(c *config.Config) {
			c.RateLimit.Enabled = true
			c.RateLimit.RequestsPerSec = 0.001
			c.RateLimit.Burst = 1
		}, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := proxyFor(t, []string{be.addr}, tc.tweak)
			rc := dialProxy(t, addr)
			if tc.code == 429 { // use up the burst
				if resp, _ := rc.get("/"); resp.StatusCode != 200 {
					t.Fatalf("first request: %d", resp.StatusCode)
				}
			}
			drain := func() { srv.draining.Store(true) }
			srv.headHook.Store(&drain)
			t.Cleanup(func() { srv.draining.Store(false) })
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, _ := rc.response(http.MethodGet)
			if resp.StatusCode != tc.code || !resp.Close {
				t.Fatalf("got %d close=%v (Connection %q), want %d with Connection: close",
					resp.StatusCode, resp.Close, resp.Header.Get("Connection"), tc.code)
			}
			rc.expectClosed()
		})
	}
}
