package proxy

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/connx/connx/internal/balancer"
	"github.com/connx/connx/internal/config"
)

// namedBackends starts n backends that answer with their index after
// delay[i] and returns their addresses.
func namedBackends(t *testing.T, delays ...time.Duration) []string {
	t.Helper()
	addrs := make([]string, len(delays))
	for i, d := range delays {
		addrs[i] = httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d > 0 {
				time.Sleep(d) // the backend's service time, not synchronisation
			}
			fmt.Fprint(w, i)
		}))
	}
	return addrs
}

// tally sends n requests from conc concurrent keep-alive clients (each
// with its own header value from key, if not nil) and counts which backend
// answered.
func tally(t *testing.T, addr string, n, conc int, key func(i int) string) []int {
	t.Helper()
	var mu sync.Mutex
	counts := make([]int, 8)
	var wg sync.WaitGroup
	per := n / conc
	for c := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := range per {
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				if key != nil {
					req.Header.Set("X-User", key(c*per+i))
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				var idx int
				if _, err := fmt.Sscan(string(body), &idx); err != nil || resp.StatusCode != 200 {
					t.Errorf("status %d body %q", resp.StatusCode, body)
					return
				}
				mu.Lock()
				counts[idx]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

func withPolicy(name string, weights []int, more func(*config.Config)) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.LoadBalancing.Algorithm = name
		for i, w := range weights {
			cfg.Backends[i].Weight = w
		}
		if more != nil {
			more(cfg)
		}
	}
}

// TestPolicyDistributionsEndToEnd runs each policy through real sockets
// against three backends and checks the observed shares.
func TestPolicyDistributionsEndToEnd(t *testing.T) {
	t.Run("round-robin", func(t *testing.T) {
		_, addr := proxyFor(t, namedBackends(t, 0, 0, 0), withPolicy("round-robin", []int{5, 1, 1}, nil))
		got := tally(t, addr, 90, 1, nil)
		if got[0] != 30 || got[1] != 30 || got[2] != 30 {
			t.Fatalf("shares %v, want 30/30/30 (weights ignored)", got[:3])
		}
	})
	t.Run("weighted-round-robin", func(t *testing.T) {
		_, addr := proxyFor(t, namedBackends(t, 0, 0, 0), withPolicy("weighted-round-robin", []int{5, 1, 1}, nil))
		got := tally(t, addr, 70, 1, nil)
		if got[0] != 50 || got[1] != 10 || got[2] != 10 {
			t.Fatalf("shares %v, want exactly 50/10/10", got[:3])
		}
	})
	t.Run("weighted-round-robin no starvation", func(t *testing.T) {
		_, addr := proxyFor(t, namedBackends(t, 0, 0), withPolicy("weighted-round-robin", []int{2, 1}, nil))
		got := tally(t, addr, 30, 1, nil)
		if got[0] != 20 || got[1] != 10 {
			t.Fatalf("shares %v, want 20/10", got[:2])
		}
	})
	t.Run("random", func(t *testing.T) {
		_, addr := proxyFor(t, namedBackends(t, 0, 0, 0), withPolicy("random", []int{2, 1, 1}, nil))
		got := tally(t, addr, 800, 4, nil)
		// Expected 400/200/200; ±80 is about 5 standard deviations.
		if got[0] < 320 || got[0] > 480 || got[1] < 120 || got[1] > 280 || got[2] < 120 || got[2] > 280 {
			t.Fatalf("shares %v, want about 400/200/200", got[:3])
		}
	})
	// Load-aware policies: backend 0 is slow, so with concurrent clients
	// it holds requests longer and must get the smallest share.
	for _, name := range []string{"least-connections", "p2c", "ewma"} {
		t.Run(name+" avoids the slow backend", func(t *testing.T) {
			_, addr := proxyFor(t, namedBackends(t, 40*time.Millisecond, 0, 0), withPolicy(name, []int{1, 1, 1}, nil))
			got := tally(t, addr, 240, 6, nil)
			t.Logf("%s shares %v", name, got[:3])
			if got[0]*3 >= got[1]+got[2] {
				t.Fatalf("slow backend got %d of 240 (%v); want well under a third", got[0], got[:3])
			}
		})
	}
	t.Run("consistent-hash by header", func(t *testing.T) {
		srv, addr := proxyFor(t, namedBackends(t, 0, 0, 0), withPolicy("consistent-hash", []int{1, 1, 1}, func(cfg *config.Config) {
			cfg.LoadBalancing.HashKey = "header:X-User"
		}))
		// The ring is placed by the backends' addresses (random ports), so
		// the mapping differs from run to run but is exact within one: a
		// ring built independently over the same names, with nothing in
		// flight, says where each user's requests must go.
		pl := srv.snap.Load().def
		nodes := make([]*balancer.Node, len(pl.members))
		ms := make([]balancer.Member, len(pl.members))
		for i, m := range pl.members {
			nodes[i] = m.backend.node
			ms[i] = balancer.Member{Node: balancer.NewNode(m.backend.addr), Weight: 1}
		}
		ring, err := balancer.New(balancer.NameConsistentHash, ms, balancer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		all := func(int) bool { return true }
		// Bounded loads send a request elsewhere when its backend still
		// counts the previous request in flight: the proxy ends that count
		// just after writing the response, possibly on another event loop
		// than the next request's. Each request therefore waits until the
		// proxy holds nothing in flight, so bounded loads never apply and
		// every request must take its key's ring owner.
		rc := dialProxy(t, addr)
		route := func(user string) int {
			waitFor(t, "the proxy to end the previous request's in-flight count", func() bool {
				for _, n := range nodes {
					if n.InFlight() != 0 {
						return false
					}
				}
				return true
			})
			rc.send("GET / HTTP/1.1\r\nHost: a\r\nX-User: " + user + "\r\n\r\n")
			resp, body := rc.response(http.MethodGet)
			var idx int
			if _, err := fmt.Sscan(body, &idx); err != nil || resp.StatusCode != 200 {
				t.Fatalf("user %s: status %d body %q", user, resp.StatusCode, body)
			}
			return idx
		}
		// The same user always lands on the same backend, its own...
		for _, user := range []string{"alice", "bob", "carol", "dave"} {
			want := ring.Pick(balancer.HashString(user), all)
			for i := range 10 {
				if got := route(user); got != want {
					t.Fatalf("user %s request %d went to backend %d, its ring owner is %d", user, i, got, want)
				}
			}
		}
		// ...and many users spread over all three, each on its own.
		var got [3]int
		for i := range 300 {
			user := fmt.Sprint("user-", i)
			w := ring.Pick(balancer.HashString(user), all)
			if g := route(user); g != w {
				t.Fatalf("user %s went to backend %d, its ring owner is %d", user, g, w)
			}
			got[w]++
		}
		// Each backend owns a Beta(160, 320) share of the ring (160 points
		// of 480, placed by a hash of its address): mean 1/3, standard
		// deviation 0.0215. Its count of 300 users has mean 100 and
		// standard deviation sqrt(300·(2/9) + 300²·0.0215²) = 10.4, so
		// fewer than 40 is 5.8 deviations out: below 1e-8 per backend.
		// A ring that ignored most of its points, or a key that did not
		// vary with the header, falls far below.
		for i, c := range got {
			if c < 40 {
				t.Fatalf("backend %d got %d of 300 users (%v)", i, c, got)
			}
		}
	})
}

// TestBackendMaxConnections checks a backend at its maxConnections is
// skipped.
func TestBackendMaxConnections(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	slow := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		fmt.Fprint(w, 0)
	}))
	fast := namedBackends(t, 0)[0]
	_, addr := proxyFor(t, []string{slow, fast}, func(cfg *config.Config) {
		cfg.LoadBalancing.Algorithm = "round-robin"
		cfg.Backends[0].MaxConnections = 1
	})
	defer close(release)
	// Occupy the slow backend's only slot.
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-started
	// Everything else must go to the fast backend (index 1 answers "0"
	// because namedBackends numbers from 0: it is the only one that
	// answers at all while the slow one is blocked).
	got := tally(t, addr, 10, 1, nil)
	if got[0] != 10 {
		t.Fatalf("answers %v: requests went to the full backend", got[:2])
	}
}
