package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// TestUpstreamResponseTimeout checks a backend that never answers yields
// 504 after timeouts.upstreamResponseHeader.
func TestUpstreamResponseTimeout(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		readHead(bufio.NewReader(c))
		io.Copy(io.Discard, c) // hold the connection until the proxy drops it
	})
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Timeouts.UpstreamResponseHeader = 500 * time.Millisecond
	})
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	rc.expectStatusAndClose(http.MethodGet, 504)

	// The same for a client parked for its pipelined input.
	rc = dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n" + strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1000))
	rc.expectStatusAndClose(http.MethodGet, 504)
}

// TestAllBackendsDown checks requests fail fast with 502/503 when nothing
// listens on any backend port, and with 503 + Retry-After once every
// backend is marked down.
func TestAllBackendsDown(t *testing.T) {
	_, addr := proxyFor(t, []string{deadPort(t), deadPort(t)}, nil)

	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, _ := rc.response(http.MethodGet)
	if resp.StatusCode != 502 && resp.StatusCode != 503 {
		t.Fatalf("first request: status %d, want 502 or 503", resp.StatusCode)
	}
	if !resp.Close {
		t.Error("first request: no Connection: close")
	}
	rc.expectClosed()

	rc = dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp = rc.expectStatusAndClose(http.MethodGet, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

// TestRetryOnConnectFailure checks a request whose first backend refuses
// the connection is served by the other one.
func TestRetryOnConnectFailure(t *testing.T) {
	live := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "live") })
	_, addr := proxyFor(t, []string{deadPort(t), live.addr}, nil)
	rc := dialProxy(t, addr)
	for i := range 4 {
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "live" {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
}

// TestRetryAfterReset checks an idempotent request whose pooled upstream
// connection was closed by the backend is retried on a fresh one, and a
// POST is not.
func TestRetryAfterReset(t *testing.T) {
	// The backend answers the first request of each connection and then
	// closes it after reading the next head: a keep-alive race.
	var mu sync.Mutex
	var heads []string
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if i == 1 {
				c.(*net.TCPConn).SetLinger(0)
				return
			}
			mu.Lock()
			heads = append(heads, head[:strings.Index(head, "\r\n")])
			mu.Unlock()
			if strings.Contains(head, "Content-Length: 4") {
				io.CopyN(io.Discard, br, 4)
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Server.EventLoops = 1 })
	rc := dialProxy(t, addr)
	for i := range 3 {
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("GET %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody")
	resp, _ := rc.response("POST")
	if resp.StatusCode != 502 {
		t.Fatalf("POST on a dying connection: status %d, want 502 (no retry)", resp.StatusCode)
	}
	rc.expectClosed()
	mu.Lock()
	defer mu.Unlock()
	if len(heads) != 3 {
		t.Errorf("backend answered %v, want 3 GETs", heads)
	}
}

// TestMalformedRequests checks each malformed request is answered with
// the right status and a closed connection, and never reaches the backend.
func TestMalformedRequests(t *testing.T) {
	var mu sync.Mutex
	paths := map[string]int{}
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.Path]++
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
	})
	_, addr := proxyFor(t, []string{be.addr}, func(c *config.Config) { c.Limits.MaxRequestBody = 1000 })

	manyHeaders := strings.Repeat("X-H: v\r\n", 101)
	bigHeaders := strings.Repeat("X-Big: "+strings.Repeat("v", 1000)+"\r\n", 17)
	for _, tc := range []struct {
		name    string
		req     string
		code    int
		reaches bool // the head may reach the backend (path /chunked); a smuggled request never
	}{
		{"CL+TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, false},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, false},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, false},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400, false},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400, false},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400, false},
		{"missing Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, false},
		{"request line too long", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, false},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\n" + bigHeaders + "\r\n", 431, false},
		{"too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + manyHeaders + "\r\n", 431, false},
		{"bad chunk size", "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 400, true},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, false},
		{"body over limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n" + strings.Repeat("x", 1001), 413, false},
		{"chunked body over limit", "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" + strings.Repeat("x", 1001) + "\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 413, true},
		{"smuggled after bad version", "GET / HTTP/2.0\r\nHost: a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 505, false},
	} {
		// First on a new connection, then after a request on a
		// keep-alive one.
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/after=%v", tc.name, after), func(t *testing.T) {
				rc := dialProxy(t, addr)
				if after {
					if resp, _ := rc.get("/ok"); resp.StatusCode != 200 {
						t.Fatalf("good request: status %d", resp.StatusCode)
					}
				}
				rc.send(tc.req)
				rc.expectStatusAndClose(http.MethodGet, tc.code)
				// Only the cases allowed to reach it use /chunked, so a late
				// arrival of one of those is not counted against another.
				mu.Lock()
				defer mu.Unlock()
				for p := range paths {
					if p != "/chunked" && p != "/ok" {
						t.Errorf("backend saw requests %v", paths)
						break
					}
				}
			})
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := paths["/chunked"]; n > 4 {
		t.Errorf("backend saw /chunked %d times, want at most 4", n)
	}
	delete(paths, "/chunked")
	delete(paths, "/ok")
	if len(paths) != 0 {
		t.Errorf("malformed or smuggled requests reached the backend: %v", paths)
	}
}

// TestClientTimeouts checks the header timeout answers 408 and the idle
// timeout closes a keep-alive connection silently.
func TestClientTimeouts(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	// One proxy whose idle timeout cannot interfere with the head and
	// body timeouts, one for the idle timeout.
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Timeouts.ClientHeader = 300 * time.Millisecond
		c.Timeouts.ClientBody = 300 * time.Millisecond
	})
	_, idleAddr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Timeouts.ClientHeader = 300 * time.Millisecond
		c.Timeouts.ClientIdle = 300 * time.Millisecond
	})

	t.Run("slow head", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send("GET / HTTP/1.1\r\nHost: a\r\n")
		rc.expectStatusAndClose(http.MethodGet, 408)
	})
	t.Run("slow head after a request", func(t *testing.T) {
		rc := dialProxy(t, addr)
		if resp, _ := rc.get("/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		rc.send("GET / HTTP/1.1\r\n")
		rc.expectStatusAndClose(http.MethodGet, 408)
	})
	t.Run("slow body", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
		rc.expectStatusAndClose(http.MethodPost, 408)
	})
	t.Run("idle", func(t *testing.T) {
		rc := dialProxy(t, idleAddr)
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		rc.expectClosed()
	})
	t.Run("idle before the first request", func(t *testing.T) {
		dialProxy(t, idleAddr).expectClosed()
	})
}

// TestBadBackendResponse checks malformed responses become 502.
func TestBadBackendResponse(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"garbage status line", "garbage\r\n\r\n"},
		{"CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := rawBackend(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, err := readHead(br); err != nil {
					return
				}
				io.WriteString(c, tc.resp)
				io.Copy(io.Discard, br)
			})
			_, addr := proxyFor(t, []string{be}, nil)
			rc := dialProxy(t, addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			rc.expectStatusAndClose(http.MethodGet, 502)
		})
	}
}

// TestUpstreamReadTimeout checks a response body that stalls is cut off
// after timeouts.upstreamRead: the client sees an incomplete message and a
// close.
func TestUpstreamReadTimeout(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		io.Copy(io.Discard, br) // stall until the proxy closes
	})
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Timeouts.UpstreamRead = 300 * time.Millisecond
	})
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body, err := rc.tryResponse(http.MethodGet)
	if err == nil || resp == nil || resp.StatusCode != 200 || body != "partial" {
		t.Fatalf("got %v body %q err %v; want the head, 7 bytes, then an error", resp, body, err)
	}
	rc.expectClosed()
}

// TestClientGoesAway closes clients in the middle of an exchange: the
// upstream connection must be dropped, never pooled, and the proxy must
// let go of everything (checked by the harness at the end).
func TestClientGoesAway(t *testing.T) {
	const big = 16 << 20
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(big))
			io.Copy(w, patternReader(big))
		case "/slow":
			<-r.Context().Done() // answers never; ends when the proxy drops it
		default:
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		}
	})
	srv, addr := proxyFor(t, []string{be.addr}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 10
		c.Server.EventLoops = 1
	})
	// Mid-download.
	rc := dialProxy(t, addr)
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "head")
	io.CopyN(io.Discard, resp.Body, 1<<20)
	rc.c.Close()
	// Waiting for the response head.
	rc = dialProxy(t, addr)
	rc.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the request to reach the backend", func() bool { return be.requests.Load() == 2 })
	rc.c.Close()
	// Mid-upload.
	rc = dialProxy(t, addr)
	rc.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\npartial")
	waitFor(t, "the request to reach the backend", func() bool { return be.requests.Load() == 3 })
	rc.c.Close()
	waitFor(t, "the proxy to drop the clients", func() bool { return srv.Active() == 0 })

	// None of those upstream connections may serve another request.
	conns := be.conns.Load()
	rc = dialProxy(t, addr)
	if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if be.conns.Load() != conns+1 {
		t.Errorf("a request went over an upstream connection left by an aborted exchange")
	}
}

// TestLocalDialError: dials that fail for lack of local resources are told
// apart from the backend's failures (they must not open its breaker).
func TestLocalDialError(t *testing.T) {
	for _, tc := range []struct {
		err   error
		local bool
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.ENFILE)}, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, false},
	} {
		if got := localDialError(tc.err); got != tc.local {
			t.Errorf("localDialError(%v) = %v, want %v", tc.err, got, tc.local)
		}
	}
	if o := outcomeOf(failLocal); o.Failure(true) {
		t.Errorf("a local failure counts against the backend: %v", o)
	}
}
