package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/connx/connx/internal/accesslog"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// lockedBuffer is a bytes.Buffer safe for the log writer and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestAccessLog checks one JSON line per request with the fields of what
// happened, written off the loop.
func TestAccessLog(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		w.Write(append([]byte("got "), body...))
	}))
	srv, addr := proxyFor(t, []string{be}, nil)
	var out lockedBuffer
	lg, err := accesslog.New(accesslog.Config{Writer: &out, QueueSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetAccessLog(lg)

	rc := dialProxy(t, addr)
	rc.send("POST /upload?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	if resp, body := rc.response(http.MethodPost); resp.StatusCode != 200 || body != "got hello" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	if resp, _ := rc.get("/missing"); resp.StatusCode != 404 {
		t.Fatalf("GET /missing: %d", resp.StatusCode)
	}
	bad := dialProxy(t, addr)
	bad.send("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	bad.expectStatusAndClose(http.MethodGet, http.StatusBadRequest)

	settledStats(t, srv, 3)
	srv.SetAccessLog(nil) // closes: every queued line is written
	lines := strings.Split(strings.TrimSpace(out.b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s\nstats %+v", len(lines), out.b.String(), func() stats.AccessLog { var s stats.Snapshot; srv.Stats(&s); return s.AccessLog }())
	}
	type line struct {
		Client   string   `json:"client"`
		Method   string   `json:"method"`
		Path     string   `json:"path"`
		Proto    string   `json:"proto"`
		Status   int      `json:"status"`
		BytesIn  int64    `json:"bytes_in"`
		BytesOut int64    `json:"bytes_out"`
		Duration float64  `json:"duration_ms"`
		Backend  string   `json:"backend"`
		Upstream *float64 `json:"upstream_ms"`
		Error    string   `json:"error"`
		Conn     uint64   `json:"conn"`
	}
	var got []line
	for _, l := range lines {
		var e line
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		got = append(got, e)
	}
	p := got[0]
	if p.Method != "POST" || p.Path != "/upload?x=1" || p.Status != 200 || p.BytesIn != 5 ||
		p.Backend != "http://"+be || p.Upstream == nil || p.Client != "127.0.0.1" || p.Proto != "HTTP/1.1" || p.BytesOut < 9 {
		t.Errorf("POST line: %+v", p)
	}
	if g := got[1]; g.Status != 404 || g.Path != "/missing" || g.Error != "" {
		t.Errorf("GET line: %+v", g)
	}
	if b := got[2]; b.Status != 400 || b.Backend != "" || b.Error != "bad_request" || b.Upstream != nil ||
		b.BytesOut != int64(len(errorResponse(400))) {
		t.Errorf("bad request line: %+v (want bytes_out %d)", b, len(errorResponse(400)))
	}
	// The two requests of rc share its connection number; bad has its own.
	if got[0].Conn == 0 || got[1].Conn != got[0].Conn || got[2].Conn == got[0].Conn || got[2].Conn == 0 {
		t.Errorf("conn: %d, %d on one connection, %d on another", got[0].Conn, got[1].Conn, got[2].Conn)
	}
	var snap stats.Snapshot
	srv.Stats(&snap)
	if snap.AccessLog.Written != 3 || snap.AccessLog.Enabled {
		t.Errorf("access log stats after close: %+v", snap.AccessLog)
	}
}

// TestAccessLogLocalAnswers: answers ConnX makes itself (503 with no
// backend, metrics) log the bytes they sent, not 0.
func TestAccessLogLocalAnswers(t *testing.T) {
	srv, addr := proxyFor(t, []string{deadPort(t)}, func(c *config.Config) { c.Upstream.Retries = 0 })
	var out lockedBuffer
	lg, err := accesslog.New(accesslog.Config{Writer: &out, QueueSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetAccessLog(lg)
	rc := dialProxy(t, addr)
	rc.send("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := rc.response(http.MethodGet)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	metricsBytes := int64(len(body))
	rc2 := dialProxy(t, addr)
	rc2.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	rc2.expectStatusAndClose(http.MethodGet, http.StatusServiceUnavailable)
	settledStats(t, srv, 2)
	srv.SetAccessLog(nil)
	var lines []struct {
		Status   int   `json:"status"`
		BytesOut int64 `json:"bytes_out"`
	}
	for _, l := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		lines = append(lines, struct {
			Status   int   `json:"status"`
			BytesOut int64 `json:"bytes_out"`
		}{})
		if err := json.Unmarshal([]byte(l), &lines[len(lines)-1]); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %s", len(lines), out.b.String())
	}
	for _, l := range lines {
		switch l.Status {
		case 200:
			if l.BytesOut <= metricsBytes {
				t.Errorf("metrics answer logged %d bytes out, body alone is %d", l.BytesOut, metricsBytes)
			}
		case 503:
			if l.BytesOut < 100 {
				t.Errorf("503 logged %d bytes out", l.BytesOut)
			}
		default:
			t.Errorf("unexpected line %+v", l)
		}
	}
}

// TestAccessLogH2: the streams of one HTTP/2 connection are logged with
// proto HTTP/2.0 and the connection's number; another connection has
// another.
func TestAccessLogH2(t *testing.T) {
	srv, addr := proxyFor(t, []string{h2EchoBackend(t)}, func(c *config.Config) { c.Server.H2C = true })
	var out lockedBuffer
	lg, err := accesslog.New(accesslog.Config{Writer: &out, QueueSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetAccessLog(lg)
	c := h2Client(t, nil)
	for _, p := range []string{"/a", "/b", "/c"} {
		h2Do(t, c, "GET", "http://"+addr+p, nil)
	}
	if r, _ := dialProxy(t, addr).get("/h1"); r.StatusCode != 200 {
		t.Fatalf("HTTP/1.1: %d", r.StatusCode)
	}
	settledStats(t, srv, 4)
	srv.SetAccessLog(nil)
	conns := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		var e struct {
			Path  string `json:"path"`
			Proto string `json:"proto"`
			Conn  uint64 `json:"conn"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if want := map[bool]string{true: "HTTP/1.1", false: "HTTP/2.0"}[e.Path == "/h1"]; e.Proto != want {
			t.Errorf("%s: proto %q, want %q", e.Path, e.Proto, want)
		}
		conns[e.Path] = e.Conn
	}
	if len(conns) != 4 || conns["/a"] == 0 || conns["/b"] != conns["/a"] || conns["/c"] != conns["/a"] || conns["/h1"] == conns["/a"] || conns["/h1"] == 0 {
		t.Errorf("conn numbers %v: want /a, /b, /c on one connection, /h1 on another", conns)
	}
}
