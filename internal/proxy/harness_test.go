package proxy

// Shared harness for the data-plane integration tests: an in-process proxy
// on an ephemeral 127.0.0.1 port, net/http and raw TCP backends, and a raw
// client that writes exact bytes and reads responses with net/http's
// reader. Everything a helper starts is stopped through t.Cleanup.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// ioTimeout bounds every blocking read or write a test does, so a broken
// proxy fails the test instead of hanging it.
const ioTimeout = 10 * time.Second

// testConfig returns a validated config for the given backend addresses
// ("127.0.0.1:port"), listening on an ephemeral 127.0.0.1 port. tweak, if
// not nil, runs before validation.
//
// config.Validate rejects server.port 0, so the config is validated with a
// placeholder port that is replaced by 0 afterwards.
func testConfig(t testing.TB, backends []string, tweak func(*config.Config)) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.Port = 0 // the kernel picks
	cfg.Server.ShutdownTimeout = 5 * time.Second
	cfg.Server.EventLoops = 2
	cfg.Limits.MaxConnections = 5000 // within this machine's descriptor limit
	for _, a := range backends {
		cfg.Backends = append(cfg.Backends, config.Backend{URL: "http://" + a, Weight: 1})
	}
	// Health checks would add requests the backends count, and breaker
	// or ejection would turn the failures many tests provoke into 503s:
	// off unless a test turns them on.
	cfg.HealthCheck.Enabled = false
	cfg.CircuitBreaker.Enabled = false
	cfg.Outlier.Enabled = false
	if tweak != nil {
		tweak(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// startProxy runs a proxy for cfg until the test ends and returns it.
func startProxy(t testing.TB, cfg *config.Config) *Server {
	t.Helper()
	return startProxyLog(t, cfg, testLogger(t))
}

// startProxyLog is startProxy with the proxy logging to log.
func startProxyLog(t testing.TB, cfg *config.Config, log *slog.Logger) *Server {
	t.Helper()
	srv, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Serve returned before ready: %v", err)
	case <-time.After(ioTimeout):
		t.Fatal("proxy not ready")
	}
	t.Cleanup(func() {
		// The test's clients are closed by now (their cleanups ran
		// first): the proxy must let go of every one of them.
		deadline := time.Now().Add(5 * time.Second)
		for srv.Active() != 0 || srv.detached.Load() != 0 || srv.flushing.Load() != 0 {
			if time.Now().After(deadline) {
				t.Errorf("proxy holds connections after the clients left: active %d, parked %d, flushing %d\n%s",
					srv.Active(), srv.detached.Load(), srv.flushing.Load(), dumpConns(srv))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		// gnet's Stop polls for the end of the shutdown every 500 ms;
		// Serve returns as soon as it is complete, so wait for that and
		// then release Stop.
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- srv.Stop(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after Stop")
		}
		cancel()
		<-stopped
	})
	return srv
}

// proxyFor starts a proxy in front of backends and returns its address.
func proxyFor(t testing.TB, backends []string, tweak func(*config.Config)) (*Server, string) {
	t.Helper()
	srv := startProxy(t, testConfig(t, backends, tweak))
	return srv, srv.Addr().String()
}

// testLogger logs warnings and errors to the test log while the test runs;
// set CONNX_TEST_LOG=debug to see everything.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	level := slog.LevelWarn
	if os.Getenv("CONNX_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// httpBackend starts a net/http backend on 127.0.0.1 and returns its
// address.
func httpBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = nil
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// countingBackend is a net/http backend that counts requests and
// connections.
type countingBackend struct {
	addr     string
	requests atomic.Int64
	conns    atomic.Int64
}

func newCountingBackend(t testing.TB, h http.HandlerFunc) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		h(w, r)
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	b.addr = ts.Listener.Addr().String()
	return b
}

// rawBackend serves every accepted connection with serve on its own
// goroutine. The listener and all connections are closed, and the
// goroutines waited for, when the test ends.
func rawBackend(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return rawBackendOn(t, ln, serve)
}

// rawBackendOn is rawBackend on a listener of the caller's (it closes
// it when the test ends).
func rawBackendOn(t testing.TB, ln net.Listener, serve func(net.Conn)) string {
	t.Helper()
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// smallBufferListener listens on 127.0.0.1 with a 4 KiB receive buffer,
// which the connections it accepts inherit: a backend that stops reading
// soon leaves what it is sent in ConnX. The caller closes it.
func smallBufferListener(t testing.TB) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// readHead reads one request or response head (through the blank line)
// from r and returns it verbatim.
func readHead(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := r.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" {
			return sb.String(), nil
		}
	}
}

// deadPort returns a 127.0.0.1 address where nothing listens.
func deadPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rawClient is a client connection that writes exact bytes.
type rawClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialProxy(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes s in one write.
func (rc *rawClient) send(s string) {
	rc.t.Helper()
	_ = rc.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// response reads the next response to a request with the given method,
// including its whole body.
func (rc *rawClient) response(method string) (*http.Response, string) {
	rc.t.Helper()
	resp, body, err := rc.tryResponse(method)
	if err != nil {
		rc.t.Fatalf("reading response: %v", err)
	}
	return resp, body
}

func (rc *rawClient) tryResponse(method string) (*http.Response, string, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(ioTimeout))
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, string(b), err
	}
	return resp, string(b), nil
}

// get sends a simple GET for path and returns the response.
func (rc *rawClient) get(path string) (*http.Response, string) {
	rc.t.Helper()
	rc.send("GET " + path + " HTTP/1.1\r\nHost: example.test\r\n\r\n")
	return rc.response(http.MethodGet)
}

// expectClosed reads until EOF (or a reset) and fails if the connection
// stays open or delivers any more bytes.
func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(ioTimeout))
	n, err := io.Copy(io.Discard, rc.br)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		rc.t.Fatalf("connection still open after %v (read %d more bytes)", ioTimeout, n)
	case n > 0:
		rc.t.Fatalf("read %d unexpected bytes before close", n)
	}
}

// expectStatusAndClose reads one response, checks its status and that it
// announces and performs a close.
func (rc *rawClient) expectStatusAndClose(method string, code int) *http.Response {
	rc.t.Helper()
	resp, _ := rc.response(method)
	if resp.StatusCode != code {
		rc.t.Fatalf("status %d, want %d", resp.StatusCode, code)
	}
	if !resp.Close {
		rc.t.Errorf("status %d without Connection: close", code)
	}
	rc.expectClosed()
	return resp
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, what, ioTimeout, cond)
}

// slowTimeout bounds waits for work that grows with the machine's load
// rather than with the proxy's latency: megabytes moved or hundreds of
// thousands of frames answered before a limit is reached, under the race
// detector on a shared CI machine. A proxy that never gets there still
// fails the test; a slow machine does not.
const slowTimeout = 2 * time.Minute

// waitForWithin is waitFor with its own deadline.
func waitForWithin(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStalled waits until the count of bytes a writer has sent stops
// moving for quiet (every buffer on the way is full), and returns it.
func waitStalled(t testing.TB, what string, sent *atomic.Int64, quiet time.Duration) int64 {
	t.Helper()
	last, lastAt := sent.Load(), time.Now()
	waitFor(t, what, func() bool {
		if n := sent.Load(); n != last {
			last, lastAt = n, time.Now()
		}
		return time.Since(lastAt) > quiet
	})
	return last
}

// patternBlock is the period of the byte stream used for large bodies: an
// odd length, so a loss or duplication anywhere shifts what follows.
var patternBlock = func() []byte {
	b := make([]byte, 1<<20+13)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

// pattern is an endless reader of the pattern stream.
type pattern struct{ off int }

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k := copy(b[n:], patternBlock[p.off:])
		n += k
		p.off = (p.off + k) % len(patternBlock)
	}
	return n, nil
}

// patternReader returns a reader of the first n bytes of the stream.
func patternReader(n int64) io.Reader { return io.LimitReader(&pattern{}, n) }

// patternChecker verifies bytes against the pattern stream as they
// stream past.
type patternChecker struct {
	n   int64 // bytes seen
	bad int64 // offset of the first mismatch, or -1
}

func newPatternChecker() *patternChecker { return &patternChecker{bad: -1} }

func (c *patternChecker) Write(b []byte) (int, error) {
	for done := 0; done < len(b); {
		off := int(c.n % int64(len(patternBlock)))
		want := patternBlock[off:]
		k := min(len(want), len(b)-done)
		if c.bad < 0 && !bytes.Equal(b[done:done+k], want[:k]) {
			c.bad = c.n
		}
		done += k
		c.n += int64(k)
	}
	return len(b), nil
}

func (c *patternChecker) check(t testing.TB, want int64) {
	t.Helper()
	if c.n != want || c.bad >= 0 {
		t.Fatalf("got %d bytes (first bad chunk at %d), want %d intact bytes", c.n, c.bad, want)
	}
}

func mustf(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
