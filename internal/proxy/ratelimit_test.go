package proxy

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// TestRateLimitRate drives clients at three times the limit for two
// seconds: the accepted count matches burst + rate × elapsed within 5%,
// and every other request gets a well-formed 429 on a connection that
// stays usable.
func TestRateLimitRate(t *testing.T) {
	const rate, burst = 50.0, 5
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	_, addr := proxyFor(t, []string{be.addr}, func(cfg *config.Config) {
		cfg.RateLimit.Enabled = true
		cfg.RateLimit.RequestsPerSec = rate
		cfg.RateLimit.Burst = burst
	})
	const clients = 3
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(2 * time.Second)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := dialProxy(t, addr) // one keep-alive connection throughout
			tick := time.NewTicker(time.Duration(float64(time.Second) * clients / (3 * rate)))
			defer tick.Stop()
			for time.Now().Before(deadline) {
				<-tick.C
				rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				resp, body, err := rc.tryResponse(http.MethodGet)
				if err != nil {
					t.Error(err)
					return
				}
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
					if resp.Close || resp.Header.Get("Retry-After") == "" ||
						resp.Header.Get("RateLimit-Policy") == "" || !strings.Contains(resp.Header.Get("RateLimit"), "r=0") ||
						body == "" {
						t.Errorf("429 lacks its headers, body or keep-alive: %v %q", resp.Header, body)
						return
					}
				default:
					t.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	want := burst + rate*elapsed
	got := float64(ok.Load())
	t.Logf("accepted %v (want %.1f ±5%%), limited %d, over %.2fs", got, want, limited.Load(), elapsed)
	if got < want*0.95-1 || got > want*1.05+1 {
		t.Fatalf("accepted %v requests, want %.1f ±5%%", got, want)
	}
	if limited.Load() == 0 {
		t.Fatal("nothing was limited at three times the rate")
	}
	if be.requests.Load() != ok.Load() {
		t.Fatalf("backend saw %d requests, %d were accepted", be.requests.Load(), ok.Load())
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
