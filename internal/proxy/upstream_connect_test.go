package proxy

import (
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// blackHole returns the address of a listening socket that never accepts
// and whose accept queue is full, so that a connect to it is never
// answered (its SYNs are dropped): a backend that does not respond to a
// connect, on 127.0.0.1.
func blackHole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	// Fill the accept queue until a connect gets no answer.
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the accept queue of a backlog-0 listener did not fill")
	return ""
}

// TestUpstreamConnectTimeout: a connect that is never answered ends at
// timeouts.upstreamConnect with a 502 (503 when no backend is left) and a connect error, and the next
// backend serves the retry; connects are made on the event loop
// (loop.connect), whose deadline the sweep enforces.
func TestUpstreamConnectTimeout(t *testing.T) {
	hole := blackHole(t)
	t.Run("no retry", func(t *testing.T) {
		srv, addr := proxyFor(t, []string{hole}, func(c *config.Config) {
			c.Timeouts.UpstreamConnect = 300 * time.Millisecond
			c.Upstream.Retries = 0
			c.HealthCheck.Enabled = false
		})
		rc := dialProxy(t, addr)
		start := time.Now()
		resp, _ := rc.get("/")
		// 502, or 503 once the failure has marked the only backend down.
		if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 502 or 503", resp.StatusCode)
		}
		// Bounded: not the kernel's SYN retries (over a minute).
		if waited := time.Since(start); waited > 30*time.Second {
			t.Fatalf("the connect was cut after %v", waited)
		}
		if n := settledStats(t, srv, 1).Errors[stats.ErrConnect]; n != 1 {
			t.Fatalf("connect errors = %d, want 1", n)
		}
		if srv.upOpen.Load() != 0 {
			t.Fatalf("%d upstream connections left open", srv.upOpen.Load())
		}
	})
	t.Run("retried", func(t *testing.T) {
		be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
		_, addr := proxyFor(t, []string{hole, be.addr}, func(c *config.Config) {
			c.Timeouts.UpstreamConnect = 300 * time.Millisecond
			c.Upstream.Retries = 1
			c.HealthCheck.Enabled = false
		})
		rc := dialProxy(t, addr)
		for range 4 { // round-robin: two of them try the black hole first
			if resp, _ := rc.get("/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 from the retry", resp.StatusCode)
			}
		}
		if n := be.requests.Load(); n != 4 {
			t.Fatalf("backend served %d, want 4", n)
		}
	})
}
