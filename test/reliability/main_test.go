//go:build reliability

// Package reliability is the "hostile world" suite (issue 9): it builds
// the connx binary once and runs it as a real process on 127.0.0.1
// against real backends — net/http servers, raw TCP backends that send
// bad responses, and Toxiproxy (as a library) for network faults — while
// clients attack it with malformed, smuggling, slow and excessive
// traffic. Each case logs what it measured; run it with -v
// (`make reliability`, `make soak`). See docs/reliability.md.
package reliability

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/testproc"
)

// connxBin is the binary under test, built once by TestMain.
var connxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "connx-reliability")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	connxBin, err = testproc.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a connx process under test.
type proc = testproc.Proc

// startConnx runs connx -config path and waits until it listens; a
// non-empty shellPrefix runs it as `sh -c 'PREFIX; exec connx ...'`
// (e.g. "ulimit -n 256").
func startConnx(t *testing.T, path, shellPrefix string) *proc {
	t.Helper()
	return testproc.Start(t, connxBin, shellPrefix, "-config", path)
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

// cpuTime is pid's user+system CPU time from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// fdCount is the number of open fds of pid.
func fdCount(pid int) int {
	e, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(e)
}

// config builds a config file body: server on an ephemeral port (or
// port), health checks off unless extra sets them, and the backends.
func config(port string, extra string, urls ...string) string {
	if port == "" {
		port = "0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  host: 127.0.0.1\n  port: %s\n  shutdownTimeout: 5s\n", port)
	if !strings.Contains(extra, "healthCheck:") {
		b.WriteString("healthCheck:\n  enabled: false\n")
	}
	b.WriteString("backends:\n")
	for _, u := range urls {
		fmt.Fprintf(&b, "  - url: %q\n", u)
	}
	b.WriteString(extra)
	return b.String()
}

// run writes cfg to a temporary directory and starts connx on it.
func run(t *testing.T, cfg string) (*proc, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, cfg)
	return startConnx(t, path, ""), path
}

// backend is a net/http backend that answers "ok" (or h), with a count
// of the TCP connections it accepted.
type backend struct {
	*httptest.Server
	conns atomic.Int64
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		}
	}
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(h)
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// rawConn is a raw client connection to connx.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// response reads one response (for a request of method) within d.
func (r *rawConn) response(method string, d time.Duration) (*http.Response, string, error) {
	r.c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// closed reports whether the peer closes the connection within d
// (EOF or reset, with no further bytes), and any bytes it sent instead.
func (r *rawConn) closed(d time.Duration) (bool, string) {
	r.c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(r.br)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return len(b) == 0, string(b)
	}
	return false, string(b)
}

// percentiles returns p50, p90, p99 and max of ds.
func percentiles(ds []time.Duration) (p50, p90, p99, mx time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.5), at(0.9), at(0.99), s[len(s)-1]
}

// get sends one GET with c and returns the status, or an error.
func get(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}
