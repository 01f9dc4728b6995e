package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// fixedBackend answers every request head it reads with a fixed response.
// It allocates nothing per request, so allocations measured in a benchmark
// belong to the proxy.
func fixedBackend(tb testing.TB, resp []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						copy(buf, buf[i+4:have])
						have -= i + 4
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// startBenchProxy runs a proxy with one loop in front of addr; tweak, if
// not nil, changes the config before validation.
func startBenchProxy(tb testing.TB, addr string, tweak ...func(*config.Config)) string {
	tb.Helper()
	cfg := config.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.Port = 0
	cfg.Server.EventLoops = 1
	cfg.Backends = []config.Backend{{URL: "http://" + addr, Weight: 1}}
	cfg.HealthCheck.Enabled = false // its HTTP client would allocate during the measurement
	for _, f := range tweak {
		f(cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	select {
	case <-srv.Ready():
	case err := <-done:
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
		<-done
	})
	return srv.Addr().String()
}

// BenchmarkProxyKeepAlive measures one small GET through the proxy on a
// keep-alive connection: client -> ConnX -> backend and back. allocs/op
// counts the whole process; the raw client and backend allocate nothing
// per request, so they are the proxy's.
func BenchmarkProxyKeepAlive(b *testing.B) {
	benchKeepAlive(b, "GET / HTTP/1.1\r\nHost: bench\r\n")
}

// BenchmarkProxyKeepAliveRouted is BenchmarkProxyKeepAlive through a
// table of 100 routes, on a route that strips a prefix and sets a field.
func BenchmarkProxyKeepAliveRouted(b *testing.B) {
	benchKeepAlive(b, "GET /api/x HTTP/1.1\r\nHost: site17.example.com\r\n", benchRoutes(100))
}

// benchKeepAlive measures the request that starts with line (request
// line and Host) through a proxy made with tweak.
func benchKeepAlive(b *testing.B, line string, tweak ...func(*config.Config)) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
	addr := startBenchProxy(b, fixedBackend(b, resp), tweak...)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte(line + "User-Agent: connx-bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	// The response comes back with a new request ID (32 hex digits).
	want := len(resp) + len("X-Request-Id: \r\n") + 32
	buf := make([]byte, want)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
	}
	for range 100 { // warm the pools
		roundTrip()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
}

// benchRoutes moves cfg's top-level backends into a pool with n routes
// to it, n/2 hosts with two prefixes each (plus a wildcard), as routed
// sites have: "/api/" (stripped, with a field set) and "/static/".
func benchRoutes(n int) func(*config.Config) {
	return func(cfg *config.Config) {
		p := cfg.NewPool("app")
		p.Backends = cfg.Backends
		cfg.Pools = []config.Pool{p}
		cfg.Backends = nil // no default pool: a request no route takes is a 404
		for i := range n / 2 {
			host := fmt.Sprintf("site%d.example.com", i)
			cfg.Routes = append(cfg.Routes,
				config.Route{Match: config.RouteMatch{Host: host, PathPrefix: "/api/"}, Pool: "app", StripPrefix: "/api",
					SetRequestHeaders: []config.Header{{Name: "X-Site", Value: host}}},
				config.Route{Match: config.RouteMatch{Host: host, PathPrefix: "/static/"}, Pool: "app"})
		}
		cfg.Routes = append(cfg.Routes, config.Route{Match: config.RouteMatch{Host: "*.example.net"}, Pool: "app"})
	}
}

// TestProxyKeepAliveAllocs proves the steady-state request path allocates
// nothing: parsing, routing, balancing, pooling, head rewriting and
// forwarding.
func TestProxyKeepAliveAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Run("plain", func(t *testing.T) {
		keepAliveAllocs(t, "GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\n")
	})
	t.Run("routed", func(t *testing.T) {
		// A path that normalisation rewrites, and a route that strips a
		// prefix and sets a field.
		keepAliveAllocs(t, "GET /api//x/./y?z=1 HTTP/1.1\r\nHost: site17.example.com\r\n", benchRoutes(100))
	})
	t.Run("routed long path", func(t *testing.T) {
		// A path whose normal form outgrows the loop's first buffer.
		keepAliveAllocs(t, "GET /api//"+strings.Repeat("seg/", 500)+"y HTTP/1.1\r\nHost: site17.example.com\r\n", benchRoutes(100))
	})
}

func keepAliveAllocs(t *testing.T, line string, tweak ...func(*config.Config)) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
	addr := startBenchProxy(t, fixedBackend(t, resp), tweak...)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte(line + "User-Agent: connx-test\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.1\r\nConnection: keep-alive\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	// The response comes back with a new request ID (32 hex digits).
	head, body, _ := bytes.Cut(resp, []byte("\r\n\r\n"))
	buf := make([]byte, len(resp)+len("X-Request-Id: \r\n")+32)
	var failed error
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			failed = err
			return
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			failed = err
		}
	}
	for range 100 {
		roundTrip()
	}
	allocs := testing.AllocsPerRun(2000, roundTrip)
	if failed != nil {
		t.Fatal(failed)
	}
	if !bytes.HasPrefix(buf, append(head, "\r\nX-Request-Id: "...)) || !bytes.HasSuffix(buf, append([]byte("\r\n\r\n"), body...)) {
		t.Fatalf("response = %q", buf)
	}
	// AllocsPerRun counts the whole process; the ticker's task posting
	// (10 per second) may add a fraction, never one per request.
	if allocs >= 1 {
		t.Fatalf("%.2f allocations per proxied request, want 0", allocs)
	}
}
