package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"
	"testing"

	"github.com/connx/connx/internal/accesslog"
	"github.com/connx/connx/internal/config"
)

// headEchoBackend answers each request with the head it received, as the
// body, and with the given extra response header lines.
func headEchoBackend(t *testing.T, extra string) string {
	return rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s", extra, len(head), head); err != nil {
				return
			}
		}
	})
}

// headerLines returns a head's field lines (without the start line).
func headerLines(head string) []string {
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	return lines[1:]
}

// TestHopByHop checks hop-by-hop fields are removed both ways, and the
// other fields keep their order and case.
func TestHopByHop(t *testing.T) {
	be := headEchoBackend(t, "X-Keep: yes\r\nConnection: X-Bar\r\nX-Bar: 1\r\nKeep-Alive: timeout=5\r\nx-Lower-Case: kept\r\n")
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	rc.send("GET /hop HTTP/1.1\r\n" +
		"x-first: a\r\n" +
		"Host: example.test\r\n" +
		"Connection: close, X-Foo\r\n" +
		"X-Foo: 1\r\n" +
		"Keep-Alive: 5\r\n" +
		"X-Mixed-CASE: b\r\n" +
		"Proxy-Connection: x\r\n" +
		"TE: trailers\r\n" +
		"Upgrade: h2c\r\n" +
		"x-last: c\r\n\r\n")

	// Read the response head raw to see the fields as sent.
	head, err := readHead(rc.br)
	mustf(t, err, "response head")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), nil)
	mustf(t, err, "parse response head")
	body := make([]byte, resp.ContentLength)
	_, err = io.ReadFull(rc.br, body)
	mustf(t, err, "response body")

	// What the backend received.
	got := headerLines(string(body))
	want := []string{"x-first: a", "Host: example.test", "X-Mixed-CASE: b", "x-last: c"}
	var kept []string
	for _, l := range got {
		name := textproto.CanonicalMIMEHeaderKey(l[:strings.Index(l, ":")])
		switch name {
		case "Connection", "X-Foo", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "Transfer-Encoding":
			t.Errorf("backend received hop-by-hop field %q", l)
		case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id":
		default:
			kept = append(kept, l)
		}
	}
	if strings.Join(kept, "|") != strings.Join(want, "|") {
		t.Errorf("backend received fields %q, want %q in this order", kept, want)
	}
	if !strings.HasPrefix(string(body), "GET /hop HTTP/1.1\r\n") {
		t.Errorf("request line %q", string(body)[:strings.Index(string(body), "\r\n")])
	}

	// What the client received.
	var names []string
	for _, l := range headerLines(head) {
		names = append(names, l[:strings.Index(l, ":")])
	}
	for _, l := range headerLines(head) {
		switch name := textproto.CanonicalMIMEHeaderKey(l[:strings.Index(l, ":")]); name {
		case "X-Bar", "Keep-Alive":
			t.Errorf("client received hop-by-hop field %q", l)
		case "Connection":
			if l != "Connection: close" {
				t.Errorf("client received %q, want only ConnX's own Connection: close", l)
			}
		}
	}
	if !strings.Contains(head, "\r\nX-Keep: yes\r\n") || !strings.Contains(head, "\r\nx-Lower-Case: kept\r\n") {
		t.Errorf("end-to-end response fields lost or re-cased: %q", head)
	}
	if strings.Index(head, "X-Keep") > strings.Index(head, "x-Lower-Case") {
		t.Errorf("response field order changed: %v", names)
	}
	// The client asked to close.
	rc.expectClosed()
}

// TestForwardedHeaders checks X-Forwarded-For/-Proto/-Host and Host.
func TestForwardedHeaders(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s xff=%q proto=%q xfh=%q", r.Host,
			r.Header.Values("X-Forwarded-For"), r.Header.Values("X-Forwarded-Proto"), r.Header.Values("X-Forwarded-Host"))
	}))
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	for _, tc := range []struct{ extra, want string }{
		{"", `host=example.test:81 xff=["127.0.0.1"] proto=["http"] xfh=["example.test:81"]`},
		{"X-Forwarded-For: 1.2.3.4\r\n", `host=example.test:81 xff=["1.2.3.4, 127.0.0.1"] proto=["http"] xfh=["example.test:81"]`},
		{"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8, 9.9.9.9\r\n", `host=example.test:81 xff=["1.2.3.4, 5.6.7.8, 9.9.9.9, 127.0.0.1"] proto=["http"] xfh=["example.test:81"]`},
		{"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n", `host=example.test:81 xff=["127.0.0.1"] proto=["http"] xfh=["example.test:81"]`},
	} {
		rc.send("GET / HTTP/1.1\r\nHost: example.test:81\r\n" + tc.extra + "\r\n")
		if resp, body := rc.response(http.MethodGet); resp.StatusCode != 200 || body != tc.want {
			t.Errorf("with %q: status %d\n got %s\nwant %s", tc.extra, resp.StatusCode, body, tc.want)
		}
	}
	// An absolute-form target names the host.
	rc.send("GET http://abs.test/p HTTP/1.1\r\nHost: other.test\r\n\r\n")
	if resp, body := rc.response(http.MethodGet); resp.StatusCode != 200 || !strings.HasPrefix(body, "host=abs.test ") || !strings.Contains(body, `xfh=["abs.test"]`) {
		t.Errorf("absolute-form: status %d body %s", resp.StatusCode, body)
	}

	// preserveHost off: Host names the backend.
	_, addr2 := proxyFor(t, []string{be}, func(c *config.Config) { c.Server.PreserveHost = false })
	resp, body := dialProxy(t, addr2).get("/")
	if want := "host=" + be + " "; resp.StatusCode != 200 || !strings.HasPrefix(body, want) || !strings.Contains(body, `xfh=["example.test"]`) {
		t.Errorf("preserveHost=false: status %d body %s, want prefix %q", resp.StatusCode, body, want)
	}
}

// TestHTTP10Client checks an HTTP/1.0 client gets a response it can read
// and keep-alive only when it asked for it.
func TestHTTP10Client(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1 ")
		if r.URL.Path == "/flush" {
			// No length known: HTTP/1.0 framing is the close.
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "part2")
	}))
	_, addr := proxyFor(t, []string{be}, nil)

	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body := rc.response(http.MethodGet)
	if resp.StatusCode != 200 || body != "part1 part2" || len(resp.TransferEncoding) != 0 {
		t.Fatalf("keep-alive 1.0: status %d body %q te %v", resp.StatusCode, body, resp.TransferEncoding)
	}
	if resp.Close {
		t.Fatal("keep-alive 1.0: closed")
	}
	rc.send("GET / HTTP/1.0\r\n\r\n")
	resp, body = rc.response(http.MethodGet)
	if resp.StatusCode != 200 || body != "part1 part2" || !resp.Close {
		t.Fatalf("plain 1.0: status %d body %q close %v", resp.StatusCode, body, resp.Close)
	}
	rc.expectClosed()

	rc = dialProxy(t, addr)
	rc.send("GET /flush HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body = rc.response(http.MethodGet)
	if resp.StatusCode != 200 || body != "part1 part2" || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("1.0 until close: status %d body %q te %v close %v", resp.StatusCode, body, resp.TransferEncoding, resp.Close)
	}
	rc.expectClosed()
}

// TestRequestID: a client's plausible request ID is passed to the backend
// and returned; a missing or implausible one is replaced by a new random
// ID; a backend's own field is not duplicated; the access log records it.
func TestRequestID(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := r.Header.Values("X-Request-Id")
		if r.URL.Path == "/own" {
			w.Header().Set("X-Request-Id", "backend-"+strings.Join(ids, ","))
		}
		io.WriteString(w, strings.Join(ids, ","))
	}))
	srv, addr := proxyFor(t, []string{be}, nil)
	var out lockedBuffer
	lg, err := accesslog.New(accesslog.Config{Writer: &out, QueueSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetAccessLog(lg)
	rc := dialProxy(t, addr)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)

	rc.send("GET / HTTP/1.1\r\nHost: a\r\nx-request-id: abc-123:Z\r\n\r\n")
	resp, body := rc.response(http.MethodGet)
	if body != "abc-123:Z" || resp.Header.Values("X-Request-Id")[0] != "abc-123:Z" || len(resp.Header.Values("X-Request-Id")) != 1 {
		t.Errorf("client's ID: backend saw %q, client got %q", body, resp.Header.Values("X-Request-Id"))
	}
	seen := map[string]bool{}
	for _, in := range []string{"", "X-Request-Id: \r\n", "X-Request-Id: a b\r\n", "X-Request-Id: " + strings.Repeat("x", 65) + "\r\n", "X-Request-Id: \"q\"\r\n"} {
		rc.send("GET / HTTP/1.1\r\nHost: a\r\n" + in + "\r\n")
		resp, body := rc.response(http.MethodGet)
		if !hex32.MatchString(body) || resp.Header.Get("X-Request-Id") != body || seen[body] {
			t.Errorf("with %q: backend saw %q, client got %q (want one new 32-hex ID)", in, body, resp.Header.Values("X-Request-Id"))
		}
		seen[body] = true
	}
	rc.send("GET /own HTTP/1.1\r\nHost: a\r\nX-Request-Id: r1\r\n\r\n")
	if resp, _ := rc.response(http.MethodGet); strings.Join(resp.Header.Values("X-Request-Id"), ",") != "backend-r1" {
		t.Errorf("backend's own field: client got %q", resp.Header.Values("X-Request-Id"))
	}
	settledStats(t, srv, 7)
	srv.SetAccessLog(nil)
	if !strings.Contains(out.b.String(), `"request_id":"abc-123:Z"`) {
		t.Errorf("access log has no request_id:\n%s", out.b.String())
	}
}

// TestRequestIDOff: requestId.enabled false passes the client's field
// through untouched and adds none.
func TestRequestIDOff(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Join(r.Header.Values("X-Request-Id"), ","))
	}))
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.RequestID.Enabled = false })
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a b\r\n\r\n")
	if resp, body := rc.response(http.MethodGet); body != "a b" || resp.Header.Get("X-Request-Id") != "" {
		t.Errorf("backend saw %q, client got %q", body, resp.Header.Values("X-Request-Id"))
	}
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := rc.response(http.MethodGet); body != "" || resp.Header.Get("X-Request-Id") != "" {
		t.Errorf("backend saw %q, client got %q", body, resp.Header.Values("X-Request-Id"))
	}
}

// BenchmarkRequestIDNew is the cost of making one request ID.
func BenchmarkRequestIDNew(b *testing.B) {
	r := newRIDSource()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.appendNew(buf[:0])
	}
}
