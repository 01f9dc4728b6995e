package proxy

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// Rejected reloads: a config whose snapshot fails to build part way
// leaves the running server as it was, the runtime state of the pools
// built before the failure included (their members, breaker and outlier
// settings), and so do the statistics ids.

// poolAddrs lists the addresses of the backends the server keeps for the
// pool called name (nil when it has no such pool).
func poolAddrs(srv *Server, name string) []string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	st := srv.pools[name]
	if st == nil {
		return nil
	}
	var addrs []string
	for addr := range st.backends {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs)
	return addrs
}

// TestReloadRejectedKeepsMembers: a reload that adds backend b to the
// default pool (and a pool "api") but fails later, in a later pool or in
// the routes, adds nothing to the running server: the default pool still
// has only a, with a alone in its outlier group, no pool "api" exists,
// no statistics id is taken, and requests go to a only.
func TestReloadRejectedKeepsMembers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(*config.Config) // makes the validated config fail to build
	}{
		{"later pool", func(c *config.Config) { c.Pools[0].LoadBalancing.Algorithm = "no-such-policy" }},
		{"route", func(c *config.Config) { c.Routes[0].Pool = "no-such-pool" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := namedBackends(t, 0, 0, 0) // answer "0", "1", "2"
			a, b, apiB := bs[0], bs[1], bs[2]
			srv, addr := proxyFor(t, []string{a}, nil)
			srv.mu.Lock()
			ids, routes := srv.nextID, len(srv.routeIDs)
			srv.mu.Unlock()

			next := testConfig(t, []string{a, b}, func(c *config.Config) {
				p := c.NewPool("api")
				p.Backends = []config.Backend{{URL: "http://" + apiB, Weight: 1}}
				c.Pools = []config.Pool{p}
				c.Routes = []config.Route{{Name: "all", Pool: "api"}}
			})
			tc.spoil(next)
			if err := srv.Reload(next); err == nil {
				t.Fatal("the broken config was accepted")
			}

			if got := poolAddrs(srv, config.DefaultPoolName); !slices.Equal(got, []string{a}) {
				t.Errorf("default pool's backends after the rejected reload: %v, want [%s]", got, a)
			}
			if got := poolAddrs(srv, "api"); got != nil {
				t.Errorf("the rejected config's pool \"api\" is kept, with backends %v", got)
			}
			srv.mu.Lock()
			outliers := srv.pools[config.DefaultPoolName].outliers.Len()
			gotIDs, gotRoutes := srv.nextID, len(srv.routeIDs)
			srv.mu.Unlock()
			if outliers != 1 {
				t.Errorf("default pool's outlier group has %d members, want 1", outliers)
			}
			if gotIDs != ids || gotRoutes != routes {
				t.Errorf("statistics ids: next backend id %d (was %d), %d route ids (was %d)", gotIDs, ids, gotRoutes, routes)
			}
			if got := tally(t, addr, 10, 2, nil); got[0] != 10 {
				t.Fatalf("answers after the rejected reload: %v, want all 10 from a", got)
			}

			// A reload that succeeds then adds b afresh: a new backend,
			// with its own id.
			good := testConfig(t, []string{a, b}, nil)
			mustf(t, srv.Reload(good), "reload")
			if got, want := poolAddrs(srv, config.DefaultPoolName), []string{a, b}; !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Fatalf("default pool's backends after the good reload: %v", got)
			}
			srv.mu.Lock()
			beB := srv.pools[config.DefaultPoolName].backends[b]
			srv.mu.Unlock()
			if beB.id != ids {
				t.Errorf("added backend has id %d, want %d (the next one before the rejected reload)", beB.id, ids)
			}
		})
	}
}

// TestReloadRejectedKeepsBreaker: a rejected reload that lowers
// circuitBreaker.maxFailures from 3 to 1 leaves the running backend's
// breaker as it was: it opens after the third failure, not the first.
func TestReloadRejectedKeepsBreaker(t *testing.T) {
	var hits atomic.Int64
	a := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	other := namedBackends(t, 0)[0]
	breaker := func(maxFailures int) func(*config.Config) {
		return func(c *config.Config) {
			c.Upstream.Retries = 0
			c.CircuitBreaker.Enabled = true
			c.CircuitBreaker.MaxFailures = maxFailures
			c.CircuitBreaker.Timeout = time.Hour // no probe during the test
			c.CircuitBreaker.HalfOpenSuccess = 1
			c.CircuitBreaker.FailureOn5xx = true
			c.LoadBalancing.PanicThreshold = 0 // an open breaker is obeyed
		}
	}
	srv, addr := proxyFor(t, []string{a}, breaker(3))
	hb := srv.snap.Load().def.members[0].hb

	next := testConfig(t, []string{a}, func(c *config.Config) {
		breaker(1)(c)
		p := c.NewPool("api")
		p.Backends = []config.Backend{{URL: "http://" + other, Weight: 1}}
		c.Pools = []config.Pool{p}
	})
	next.Pools[0].LoadBalancing.Algorithm = "no-such-policy"
	if err := srv.Reload(next); err == nil {
		t.Fatal("the broken config was accepted")
	}
	if got := hb.Breaker().Config().MaxFailures; got != 3 {
		t.Errorf("breaker's maxFailures after the rejected reload: %d, want 3", got)
	}
	client := &http.Client{Timeout: ioTimeout}
	defer client.CloseIdleConnections()
	get := func() int {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// The outcome is recorded as the exchange ends, which may be after
	// the client has the response: wait for it before the next request.
	br := hb.Breaker()
	recorded := func(n int) {
		waitFor(t, fmt.Sprintf("failure %d recorded", n), func() bool {
			return br.Failures() >= n || br.State().String() != "closed"
		})
	}
	for i := 1; i <= 2; i++ {
		if code := get(); code != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d, want the backend's 500 (breaker %s after %d backend hits)",
				i, code, br.State(), hits.Load())
		}
		recorded(i)
		if st := br.State().String(); st != "closed" {
			t.Fatalf("breaker %s after %d failures, want closed (maxFailures 3)", st, i)
		}
	}
	if code := get(); code != http.StatusInternalServerError {
		t.Fatalf("request 3: status %d, want the backend's 500", code)
	}
	recorded(3)
	if st := br.State().String(); st != "open" || hits.Load() != 3 {
		t.Fatalf("after the third failure: breaker %s, %d backend hits; want open, 3", st, hits.Load())
	}
	if code := get(); code != http.StatusServiceUnavailable || hits.Load() != 3 {
		t.Fatalf("with the breaker open: status %d, %d backend hits; want 503, 3", code, hits.Load())
	}
}
