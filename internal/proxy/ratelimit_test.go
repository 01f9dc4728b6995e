package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// TestRateLimitRate drives three clients at three times the limit for two
// seconds of the limiter's clock, which the test moves: each round, one
// interval (1/rate) after the last, every client sends one request. The
// limiter must accept exactly what a token bucket holds at that moment
// (its burst, then one token per interval), and answer every other request
// with a well-formed 429 on a connection that stays usable.
//
// The clock is the test's so that the counts are exact whatever the
// machine's load: on the real clock a client descheduled for longer than
// the burst lasts (100 ms) loses tokens, and the accepted count fell
// short of burst + rate × elapsed.
func TestRateLimitRate(t *testing.T) {
	const rate, burst = 50.0, 5
	const clients, rounds = 3, 100
	interval := time.Duration(float64(time.Second) / rate)
	var offset atomic.Int64
	epoch := time.Now()
	limiterClock = func() time.Time { return epoch.Add(time.Duration(offset.Load())) }
	t.Cleanup(func() { limiterClock = nil }) // registered first: runs after the proxy stopped
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	_, addr := proxyFor(t, []string{be.addr}, func(cfg *config.Config) {
		cfg.RateLimit.Enabled = true
		cfg.RateLimit.RequestsPerSec = rate
		cfg.RateLimit.Burst = burst
	})
	rcs := make([]*rawClient, clients)
	for i := range rcs {
		rcs[i] = dialProxy(t, addr) // one keep-alive connection throughout
	}
	tokens := burst // what the bucket holds at the round's time
	var ok, limited int
	for round := range rounds {
		offset.Store(int64(round) * int64(interval))
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for _, rc := range rcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = rc.c.SetWriteDeadline(time.Now().Add(ioTimeout))
				if _, err := io.WriteString(rc.c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
					t.Error(err)
					return
				}
				resp, body, err := rc.tryResponse(http.MethodGet)
				if err != nil {
					t.Error(err)
					return
				}
				switch resp.StatusCode {
				case 200:
					accepted.Add(1)
				case 429:
					if resp.Close || resp.Header.Get("Retry-After") == "" ||
						resp.Header.Get("RateLimit-Policy") == "" || !strings.Contains(resp.Header.Get("RateLimit"), "r=0") ||
						body == "" {
						t.Errorf("429 lacks its headers, body or keep-alive: %v %q", resp.Header, body)
					}
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		want := min(clients, tokens)
		if got := int(accepted.Load()); got != want {
			t.Fatalf("round %d (%v on the limiter's clock): %d of %d requests accepted, the bucket held %d tokens",
				round, time.Duration(offset.Load()), got, clients, tokens)
		}
		ok += want
		limited += clients - want
		tokens = min(burst, tokens-want+1) // one more token by the next round
	}
	t.Logf("accepted %d, limited %d", ok, limited)
	if want := burst + rounds - 1; ok != want {
		t.Fatalf("accepted %d requests, want burst + one per interval = %d", ok, want)
	}
	if be.requests.Load() != int64(ok) {
		t.Fatalf("backend saw %d requests, %d were accepted", be.requests.Load(), ok)
	}
}

// TestRateLimitPerClientKey checks per-client buckets keyed by a header
// are isolated, and that exempt paths are never limited.
func TestRateLimitPerClientKey(t *testing.T) {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	_, addr := proxyFor(t, []string{be.addr}, func(cfg *config.Config) {
		cfg.RateLimit.Enabled = true
		cfg.RateLimit.RequestsPerSec = 0.001 // no refill during the test
		cfg.RateLimit.Burst = 2
		cfg.RateLimit.PerIP = true
		cfg.RateLimit.Key = "header:X-Api-Key"
		cfg.RateLimit.Exempt = []string{"/healthz"}
	})
	rc := dialProxy(t, addr)
	status := func(path, key string) int {
		rc.send("GET " + path + " HTTP/1.1\r\nHost: a\r\nX-Api-Key: " + key + "\r\n\r\n")
		resp, _ := rc.response(http.MethodGet)
		return resp.StatusCode
	}
	for i, want := range []int{200, 200, 429, 429} {
		if got := status("/", "alice"); got != want {
			t.Fatalf("alice request %d: status %d, want %d", i, got, want)
		}
	}
	if got := status("/", "bob"); got != 200 {
		t.Fatalf("bob limited by alice's bucket: %d", got)
	}
	for range 5 {
		if got := status("/healthz", "alice"); got != 200 {
			t.Fatalf("exempt path limited: %d", got)
		}
	}
}
