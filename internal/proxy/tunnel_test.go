package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// wsBackend is a WebSocket server; handle runs for each connection.
func wsBackend(t *testing.T, handle func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.SetReadLimit(-1)
		defer c.CloseNow()
		handle(r.Context(), c)
	}))
}

// echo sends every message back.
func echo(ctx context.Context, c *websocket.Conn) {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return
		}
	}
}

func wsDial(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through the proxy: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func tunnelStats(srv *Server) (tunnels, inflight int64) {
	var s stats.Snapshot
	srv.Stats(&s)
	for _, b := range s.Backends {
		inflight += b.InFlight
	}
	return s.Tunnels, inflight
}

// TestWebSocketEcho: messages of every size go both ways through a tunnel;
// the tunnel counts as a request in flight while open.
func TestWebSocketEcho(t *testing.T) {
	srv, addr := proxyFor(t, []string{wsBackend(t, echo)}, nil)
	c := wsDial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 8 << 20} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatalf("write %d: %v", size, err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes: %d bytes, %v", size, len(got), err)
		}
	}
	if tun, inf := tunnelStats(srv); tun != 1 || inf != 1 {
		t.Errorf("open tunnel: tunnels %d, in flight %d; want 1, 1", tun, inf)
	}
	// Close from the client: the close handshake passes through.
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitFor(t, "tunnel gone", func() bool { tun, inf := tunnelStats(srv); return tun == 0 && inf == 0 })
}

// TestWebSocketServerClose: the backend closes; the client sees its close
// frame and reason.
func TestWebSocketServerClose(t *testing.T) {
	be := wsBackend(t, func(ctx context.Context, c *websocket.Conn) {
		_ = c.Write(ctx, websocket.MessageText, []byte("hello"))
		_ = c.Close(websocket.StatusGoingAway, "server leaving")
	})
	_, addr := proxyFor(t, []string{be}, nil)
	c := wsDial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if _, b, err := c.Read(ctx); err != nil || string(b) != "hello" {
		t.Fatalf("first message: %q %v", b, err)
	}
	_, _, err := c.Read(ctx)
	if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
		t.Fatalf("read after server close: %v (status %v)", err, s)
	}
}

// TestWebSocketBackendDies: the backend drops the connection mid-tunnel
// without a close frame; the client's connection ends too.
func TestWebSocketBackendDies(t *testing.T) {
	be := wsBackend(t, func(ctx context.Context, c *websocket.Conn) {
		_, _, _ = c.Read(ctx) // one message, then vanish
		c.CloseNow()
	})
	_, addr := proxyFor(t, []string{be}, nil)
	c := wsDial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after the backend died: %v, want the connection closed", err)
	}
}

// TestWebSocketSlowReaders: a large stream to a client that reads slowly,
// and from a client to a backend that reads slowly, stays within the
// connection buffer bound in the proxy's memory.
func TestWebSocketSlowReaders(t *testing.T) {
	const total = 64 << 20
	const msg = 64 << 10
	for _, dir := range []string{"download", "upload"} {
		t.Run(dir, func(t *testing.T) {
			slow := make(chan struct{})
			done := make(chan int64, 1)
			be := wsBackend(t, func(ctx context.Context, c *websocket.Conn) {
				if dir == "download" {
					for sent := 0; sent < total; sent += msg {
						if err := c.Write(ctx, websocket.MessageBinary, make([]byte, msg)); err != nil {
							return
						}
					}
					_, _, _ = c.Read(ctx) // until the client closes
					return
				}
				var n int64
				for n < total {
					select {
					case <-slow:
					default:
						time.Sleep(bpSlowPause) // a slow reader
					}
					_, b, err := c.Read(ctx)
					if err != nil {
						break
					}
					n += int64(len(b))
				}
				done <- n
			})
			srv, addr := proxyFor(t, []string{be}, bpConfig)
			c := wsDial(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			base := heapInuse()
			var peak, parked int64
			if dir == "download" {
				var n int64
				for i := 0; n < total; i++ {
					if i < 100 {
						time.Sleep(bpSlowPause) // a slow reader at first
						if i%20 == 19 {
							peak = max(peak, heapInuse()-base)
							parked += srv.detached.Load()
						}
					}
					_, b, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("after %d bytes: %v", n, err)
					}
					n += int64(len(b))
				}
			} else {
				writeErr := make(chan error, 1)
				go func() {
					// One message buffer: the heap measured is the whole
					// process's, so the writer should not add garbage.
					m := make([]byte, msg)
					for sent := 0; sent < total; sent += msg {
						if err := c.Write(ctx, websocket.MessageBinary, m); err != nil {
							writeErr <- err
							return
						}
					}
					writeErr <- nil
				}()
				for range 5 {
					time.Sleep(400 * time.Millisecond) // let the backlog build
					peak = max(peak, heapInuse()-base)
					parked += srv.detached.Load()
				}
				close(slow)
				if err := <-writeErr; err != nil {
					t.Fatal(err)
				}
				if n := <-done; n != total {
					t.Fatalf("backend got %d bytes, want %d", n, total)
				}
			}
			t.Logf("%s: heap growth peak %d KiB (bound %d KiB), parked connections seen %d times", dir, peak>>10, bpBound>>10, parked)
			if parked == 0 {
				t.Error("no connection was parked while a reader was slow")
			}
			if peak > bpBound {
				t.Errorf("proxy heap grew by %d KiB, bound %d KiB", peak>>10, bpBound>>10)
			}
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}

// TestTunnelShutdownDeadline: an open tunnel keeps a graceful shutdown
// waiting until its deadline, then is closed.
func TestTunnelShutdownDeadline(t *testing.T) {
	srv, addr := proxyFor(t, []string{wsBackend(t, echo)}, nil)
	c := wsDial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with an open tunnel = %v, want the deadline", err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), ioTimeout)
	defer rcancel()
	if _, _, err := c.Read(rctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("tunnel still open after the shutdown deadline: %v", err)
	}
}

// TestTunnelIdleTimeout: a tunnel with no traffic closes after
// timeouts.tunnelIdle.
func TestTunnelIdleTimeout(t *testing.T) {
	srv, addr := proxyFor(t, []string{wsBackend(t, echo)}, func(c *config.Config) {
		c.Timeouts.TunnelIdle = 200 * time.Millisecond
	})
	c := wsDial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if _, _, err := c.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle tunnel still open: %v", err)
	}
	waitFor(t, "tunnel gone", func() bool { tun, _ := tunnelStats(srv); return tun == 0 })
}

// TestUpgradeDeclined: a backend that answers an upgrade request with a
// normal response has it relayed, and its connection is not reused.
func TestUpgradeDeclined(t *testing.T) {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "no upgrade here: "+r.Header.Get("Upgrade"))
	})
	_, addr := proxyFor(t, []string{be.addr}, nil)
	rc := dialProxy(t, addr)
	rc.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, body := rc.response(http.MethodGet)
	if resp.StatusCode != 200 || body != "no upgrade here: websocket" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp, _ := rc.get("/plain"); resp.StatusCode != 200 {
		t.Fatalf("next request: %d", resp.StatusCode)
	}
	if n := be.conns.Load(); n != 2 {
		t.Errorf("backend saw %d connections, want 2 (the declined upgrade's is not reused)", n)
	}
}

// TestUpgradeNotAllowed: with server.upgrades empty, the Upgrade fields are
// not forwarded and the request is an ordinary one.
func TestUpgradeNotAllowed(t *testing.T) {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upgrade="+r.Header.Get("Upgrade")+" connection="+r.Header.Get("Connection"))
	})
	_, addr := proxyFor(t, []string{be.addr}, func(c *config.Config) { c.Server.Upgrades = nil })
	rc := dialProxy(t, addr)
	rc.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if resp, body := rc.response(http.MethodGet); resp.StatusCode != 200 || !strings.HasPrefix(body, "upgrade= connection=") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// TestWebSocketDuplex: clients that write and read at the same time push
// both directions of their tunnels past the connection buffer at once;
// every byte arrives, and the tunnels end cleanly.
func TestWebSocketDuplex(t *testing.T) {
	const clients, total, msg = 2, 32 << 20, 64 << 10
	srv, addr := proxyFor(t, []string{wsBackend(t, echo)}, bpConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, 2*clients)
	for i := range clients {
		c := wsDial(t, addr)
		go func() {
			for sent := 0; sent < total; sent += msg {
				b := bytes.Repeat([]byte{byte(i), byte(sent >> 16)}, msg/2)
				if err := c.Write(ctx, websocket.MessageBinary, b); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		go func() {
			for got := 0; got < total; got += msg {
				_, b, err := c.Read(ctx)
				if err != nil {
					errs <- err
					return
				}
				if want := bytes.Repeat([]byte{byte(i), byte(got >> 16)}, msg/2); !bytes.Equal(b, want) {
					errs <- errors.New("echo differs")
					return
				}
			}
			c.Close(websocket.StatusNormalClosure, "")
			errs <- nil
		}()
	}
	for range 2 * clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "tunnels closed", func() bool { tun, inf := tunnelStats(srv); return tun == 0 && inf == 0 })
	if n := srv.owing.Load(); n != 0 {
		t.Errorf("%d tunnel sides still owe bytes", n)
	}
}

// TestUpgradeRateLimited: the rate limiter applies to upgrade requests,
// and an open tunnel counts toward least-connections' in-flight view.
func TestUpgradeRateLimited(t *testing.T) {
	srv, addr := proxyFor(t, []string{wsBackend(t, echo)}, func(c *config.Config) {
		c.RateLimit.Enabled = true
		c.RateLimit.RequestsPerSec = 0.001
		c.RateLimit.Burst = 1
	})
	wsDial(t, addr) // the one token
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections() // the 429 leaves the connection open
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("second upgrade: %v, status %d; want 429", err, code)
	}
	if tun, inf := tunnelStats(srv); tun != 1 || inf != 1 {
		t.Errorf("tunnels %d, in flight %d; want 1, 1", tun, inf)
	}
}
