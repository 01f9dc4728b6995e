package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/connx/connx/internal/config"
)

// Safe defaults: what a client does must not take a healthy backend out
// of service. Both cases were found by review; with the shipped circuit
// breaker and outlier settings, a few requests opened the breaker of a
// healthy backend and ejected it.

// shippedBreakers starts ConnX with the default circuit breaker and
// outlier settings in front of the given backends.
func shippedBreakers(t *testing.T, backends ...string) (*Server, string) {
	def := config.Default()
	return proxyFor(t, backends, func(cfg *config.Config) {
		cfg.CircuitBreaker = def.CircuitBreaker
		cfg.Outlier = def.Outlier
	})
}

// checkNotBlamed sends each of n requests made by attack on a connection
// of its own, expects status from each, and then checks that every
// backend's breaker is still closed and every backend still answers.
func checkNotBlamed(t *testing.T, srv *Server, addr string, n, status int, attack func(*rawClient)) {
	t.Helper()
	for i := range n {
		rc := dialProxy(t, addr)
		attack(rc)
		resp, _ := rc.response("GET")
		if resp.StatusCode != status {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, status)
		}
		rc.c.Close()
	}
	members := srv.snap.Load().def.members
	for i, m := range members {
		if st := m.hb.Breaker().State().String(); st != "closed" {
			t.Errorf("backend %d: breaker %s after %d client-caused failures", i, st, n)
		}
	}
	seen := map[string]bool{}
	for range 2 * len(members) {
		rc := dialProxy(t, addr)
		if resp, body := rc.get("/"); resp.StatusCode == 200 {
			seen[body] = true
		}
		rc.c.Close()
	}
	if len(seen) != len(members) {
		t.Errorf("afterwards %d of %d backends answered (%v)", len(seen), len(members), seen)
	}
}

// TestUpgradeWithWithheldBodyNotBlamed: an upgrade request that
// announces a body and does not send it, to a backend that answers 101
// as soon as the head arrives (as WebSocket servers commonly do). ConnX
// called the 101 a broken backend's and charged it a connect error.
func TestUpgradeWithWithheldBodyNotBlamed(t *testing.T) {
	mk := func(name string) string {
		return rawBackend(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				h, err := readHead(br)
				if err != nil {
					return
				}
				if strings.Contains(strings.ToLower(h), "upgrade: websocket") {
					io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
					io.Copy(io.Discard, br)
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"+name)
			}
		})
	}
	srv, addr := shippedBreakers(t, mk("A"), mk("B"))
	checkNotBlamed(t, srv, addr, 12, 400, func(rc *rawClient) {
		rc.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 10\r\n\r\n")
	})
}

// TestBackendGivingUpOnSlowBodyNotBlamed: a backend that gives up on an
// upload whose body has not all arrived (a worker timeout shorter than
// ConnX's clientBody) and closes. ConnX charged it a connect error.
func TestBackendGivingUpOnSlowBodyNotBlamed(t *testing.T) {
	mk := func(name string) string {
		return rawBackend(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			h, err := readHead(br)
			if err != nil {
				return
			}
			if strings.HasPrefix(h, "POST") {
				// The first byte of the body, then give up.
				_, _ = br.ReadByte()
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"+name)
		})
	}
	srv, addr := shippedBreakers(t, mk("A"), mk("B"))
	checkNotBlamed(t, srv, addr, 12, 502, func(rc *rawClient) {
		rc.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx")
	})
}

// TestH2BackendResetOnSlowBodyNotBlamed: the same with an HTTP/2 backend,
// which resets the stream (net/http's handler aborts) after the first
// byte of a body the client is slow to send. Found by a review of the
// HTTP/1 fix: g.lost charged it a connect error.
func TestH2BackendResetOnSlowBodyNotBlamed(t *testing.T) {
	mk := func(name string) string {
		return h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				_, _ = r.Body.Read(make([]byte, 1))
				panic(http.ErrAbortHandler) // RST_STREAM, no response
			}
			io.WriteString(w, name)
		})
	}
	a, b := mk("A"), mk("B")
	def := config.Default()
	srv, addr := proxyFor(t, nil, func(cfg *config.Config) {
		grpcPool(a, b)(cfg)
		cfg.CircuitBreaker = def.CircuitBreaker
		cfg.Outlier = def.Outlier
	})
	checkNotBlamed(t, srv, addr, 12, 502, func(rc *rawClient) {
		rc.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx")
	})
}
