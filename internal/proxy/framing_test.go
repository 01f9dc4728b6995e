package proxy

// Regression tests for the HTTP/1.1 framing and protocol points of issue
// 13 (items 6 to 8), each over real loopback sockets.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// oneByteChunks frames n payload bytes as n chunks of one byte, each with
// an extension, and a trailer: far more framing than payload.
func oneByteChunks(n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteString("1;e=x\r\nx\r\n")
	}
	sb.WriteString("0\r\nX-Trailer: " + strings.Repeat("t", 500) + "\r\n\r\n")
	return sb.String()
}

// TestChunkedBodyLimitCountsPayload checks limits.maxRequestBody counts
// the payload of a chunked body, not its framing: 9,000 bytes in one-byte
// chunks (over 90,000 bytes on the wire) pass a 10,000-byte limit, and
// 10,001 payload bytes get 413, however they are chunked.
func TestChunkedBodyLimitCountsPayload(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d", n)
	}))
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Limits.MaxRequestBody = 10_000 })
	const head = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

	t.Run("9000 bytes in 1-byte chunks", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send(head + oneByteChunks(9000))
		if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "9000" {
			t.Fatalf("status %d body %q, want 200 9000", resp.StatusCode, body)
		}
	})
	t.Run("10000 bytes, at the limit", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send(head + "1770\r\n" + strings.Repeat("y", 6000) + "\r\n")
		rc.send(oneByteChunks(4000))
		if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "10000" {
			t.Fatalf("status %d body %q, want 200 10000", resp.StatusCode, body)
		}
	})
	t.Run("10001 bytes in 1-byte chunks", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send(head + oneByteChunks(10_001))
		rc.expectStatusAndClose("POST", 413)
	})
	t.Run("10001 bytes declared by one chunk", func(t *testing.T) {
		// Refused on the size line, before the data arrives.
		rc := dialProxy(t, addr)
		rc.send(head + "2711\r\n")
		rc.expectStatusAndClose("POST", 413)
	})
	t.Run("10001 bytes, the last chunk over", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send(head + "2710\r\n" + strings.Repeat("y", 10_000) + "\r\n")
		rc.send("1\r\nz\r\n0\r\n\r\n")
		rc.expectStatusAndClose("POST", 413)
	})
}

// rawResponder is a backend that answers every request head with resp
// (and, for a chunked or close-delimited answer, closes after it when
// closeAfter), recording the heads it read.
func rawResponder(t *testing.T, resp string, closeAfter bool) (string, func() []string) {
	var mu sync.Mutex
	var heads []string
	addr := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			mu.Lock()
			heads = append(heads, head)
			mu.Unlock()
			if _, err := io.WriteString(c, resp); err != nil || closeAfter {
				return
			}
		}
	})
	return addr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), heads...)
	}
}

// TestResponseTransferCodings checks a response with a transfer coding
// other than chunked is answered with 502, never passed on with the coding
// stripped (which would hand the client gzip bytes as the body), and that
// an HTTP/1.0 client never gets a chunked response it cannot read.
func TestResponseTransferCodings(t *testing.T) {
	gz := "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
	for _, tc := range []struct {
		name, resp string
		closes     bool
	}{
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\na\r\n" + gz + "\r\n0\r\n\r\n", false},
		{"gzip then chunked lines", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\na\r\n" + gz + "\r\n0\r\n\r\n", false},
		{"gzip, until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + gz, true},
		{"chunked, gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" + gz, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, _ := rawResponder(t, tc.resp, tc.closes)
			srv, addr := proxyFor(t, []string{be}, nil)
			rc := dialProxy(t, addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp := rc.expectStatusAndClose(http.MethodGet, 502)
			if len(resp.TransferEncoding) != 0 {
				t.Errorf("502 with Transfer-Encoding %v", resp.TransferEncoding)
			}
			var snap stats.Snapshot
			srv.Stats(&snap)
			if n := snap.Errors[stats.ErrBadResponse]; n != 1 {
				t.Errorf("bad_response errors = %d, want 1", n)
			}
		})
	}

	// A backend that answers an HTTP/1.0 request (forwarded as HTTP/1.0)
	// with chunked breaks RFC 9112 6.1, and the client could not read it.
	t.Run("chunked to an HTTP/1.0 client", func(t *testing.T) {
		be, _ := rawResponder(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false)
		_, addr := proxyFor(t, []string{be}, nil)
		rc := dialProxy(t, addr)
		rc.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		head, err := readHead(rc.br)
		mustf(t, err, "response head")
		if !strings.HasPrefix(head, "HTTP/1.1 502 ") || strings.Contains(strings.ToLower(head), "transfer-encoding") {
			t.Fatalf("HTTP/1.0 client got %q, want a 502 without Transfer-Encoding", head)
		}
	})
	// Chunked to an HTTP/1.1 client is passed on as it is.
	t.Run("chunked to an HTTP/1.1 client", func(t *testing.T) {
		be, _ := rawResponder(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false)
		_, addr := proxyFor(t, []string{be}, nil)
		rc := dialProxy(t, addr)
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "hello" || len(resp.TransferEncoding) != 1 {
			t.Fatalf("status %d body %q te %v", resp.StatusCode, body, resp.TransferEncoding)
		}
	})
}

// TestHTTPMinorVersions checks HTTP/1.2 and later minor versions are
// served as HTTP/1.1 (RFC 9110 2.5), and other major versions get 505.
func TestHTTPMinorVersions(t *testing.T) {
	be, heads := rawResponder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	for _, v := range []string{"1.2", "1.9"} {
		rc.send("GET /v HTTP/" + v + "\r\nHost: a\r\n\r\n")
		resp, body := rc.response(http.MethodGet)
		if resp.StatusCode != 200 || body != "ok" || resp.Close {
			t.Fatalf("HTTP/%s: status %d body %q close %v", v, resp.StatusCode, body, resp.Close)
		}
		if resp.Proto != "HTTP/1.1" {
			t.Errorf("HTTP/%s: answered with %s", v, resp.Proto)
		}
	}
	for _, h := range heads() {
		if !strings.HasPrefix(h, "GET /v HTTP/1.1\r\n") {
			t.Errorf("backend received %q, want an HTTP/1.1 request line", h)
		}
	}
	for _, v := range []string{"2.0", "0.9", "3.1"} {
		rc := dialProxy(t, addr)
		rc.send("GET / HTTP/" + v + "\r\nHost: a\r\n\r\n")
		rc.expectStatusAndClose(http.MethodGet, 505)
	}
}

// TestOptionsAbsoluteForm checks OPTIONS with an absolute-form target and
// an empty path is forwarded as "OPTIONS *" (RFC 9112 3.2.4).
func TestOptionsAbsoluteForm(t *testing.T) {
	be, heads := rawResponder(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	for _, target := range []string{"http://x.test", "http://x.test:8080", "http://x.test/", "*"} {
		rc.send("OPTIONS " + target + " HTTP/1.1\r\nHost: x.test\r\n\r\n")
		if resp, _ := rc.response(http.MethodOptions); resp.StatusCode != 200 {
			t.Fatalf("OPTIONS %s: status %d", target, resp.StatusCode)
		}
	}
	rc.send("GET http://x.test HTTP/1.1\r\nHost: x.test\r\n\r\n")
	rc.response(http.MethodGet)
	var lines []string
	for _, h := range heads() {
		lines = append(lines, h[:strings.Index(h, "\r\n")])
	}
	want := []string{"OPTIONS * HTTP/1.1", "OPTIONS * HTTP/1.1", "OPTIONS / HTTP/1.1", "OPTIONS * HTTP/1.1", "GET / HTTP/1.1"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("backend request lines %q, want %q", lines, want)
	}
}

// TestTrailerField checks the Trailer field, which is end-to-end
// (RFC 9110 6.6.2), is forwarded both ways with the trailer fields it
// announces.
func TestTrailerField(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, err := readHead(br)
		if err != nil {
			return
		}
		// Read the chunked body through its trailer section.
		var body strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			body.WriteString(line)
			if line == "0\r\n" {
				rest, err := readHead(br)
				if err != nil {
					return
				}
				body.WriteString(rest)
				break
			}
		}
		mu.Lock()
		seen = append(seen, head, body.String())
		mu.Unlock()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
	})
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Req-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Req-Sum: 7\r\n\r\n")
	head, err := readHead(rc.br)
	mustf(t, err, "response head")
	if !strings.Contains(head, "\r\nTrailer: X-Sum\r\n") {
		t.Errorf("client response head lacks the Trailer field: %q", head)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), rc.br)), nil)
	mustf(t, err, "response")
	b, err := io.ReadAll(resp.Body)
	mustf(t, err, "body")
	if string(b) != "hello" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("body %q trailer %v", b, resp.Trailer)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || !strings.Contains(seen[0], "\r\nTrailer: X-Req-Sum\r\n") || !strings.HasSuffix(seen[1], "0\r\nX-Req-Sum: 7\r\n\r\n") {
		t.Errorf("backend received %q", seen)
	}
}

// TestInvalidFirstByte checks a byte that cannot start a request line is
// answered with 400 at once, on a new connection and after a complete
// request, instead of after the header timeout.
func TestInvalidFirstByte(t *testing.T) {
	be, _ := rawResponder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	_, addr := proxyFor(t, []string{be}, nil) // clientHeader: the default 10 s
	const fast = 2 * time.Second
	check := func(t *testing.T, rc *rawClient) {
		t.Helper()
		start := time.Now()
		_ = rc.c.SetReadDeadline(time.Now().Add(fast))
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Fatalf("no answer within %v: %v", fast, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || time.Since(start) > fast {
			t.Fatalf("status %d after %v, want 400 at once", resp.StatusCode, time.Since(start))
		}
		rc.expectClosed()
	}
	for _, b := range []string{"\x00", " ", "\x16\x03\x01", "\r\x00", "\xff"} {
		t.Run(fmt.Sprintf("alone %q", b), func(t *testing.T) {
			rc := dialProxy(t, addr)
			rc.send(b)
			check(t, rc)
		})
		t.Run(fmt.Sprintf("after a request %q", b), func(t *testing.T) {
			rc := dialProxy(t, addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n" + b)
			if resp, body := rc.response(http.MethodGet); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("first request: status %d body %q", resp.StatusCode, body)
			}
			check(t, rc)
		})
	}
	// Empty lines before a request line are still allowed (RFC 9112 2.2).
	t.Run("leading CRLF", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send("\r\n")
		time.Sleep(50 * time.Millisecond)
		rc.send("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := rc.response(http.MethodGet); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
}

// watchBackend is a backend that records whether anything connected to it
// and how many bytes it received; it answers a request whose chunked body
// it has read to the end with 200.
type watchBackend struct {
	addr  string
	conns atomic.Int64
	bytes atomic.Int64
}

func newWatchBackend(t *testing.T) *watchBackend {
	w := &watchBackend{}
	w.addr = rawBackend(t, func(c net.Conn) {
		w.conns.Add(1)
		br := bufio.NewReader(countReader{c, &w.bytes})
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if strings.Contains(strings.ToLower(head), "expect: 100-continue") {
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			}
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "0\r\n" {
					if _, err := readHead(br); err != nil { // trailers and the final CRLF
						return
					}
					break
				}
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	return w
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// TestChunkedHeadHeld checks the head of a chunked request is not sent (no
// backend is even connected to) until the first chunk-size line is valid,
// so a body malformed from its first byte never reaches a backend.
func TestChunkedHeadHeld(t *testing.T) {
	const head = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	be := newWatchBackend(t)
	_, addr := proxyFor(t, []string{be.addr}, func(c *config.Config) {
		c.Timeouts.ClientBody = 500 * time.Millisecond
		c.Limits.MaxRequestBody = 100
	})
	nothing := func(t *testing.T) {
		t.Helper()
		if c, b := be.conns.Load(), be.bytes.Load(); c != 0 || b != 0 {
			t.Fatalf("the backend saw %d connections and %d bytes, want none", c, b)
		}
	}
	for _, tc := range []struct{ name, body string }{
		{"bad size", "zz\r\n"},
		{"bad size after a valid digit", "5x\r\nhello\r\n"},
		{"bare LF", "5\nhello\r\n"},
		{"empty size", "\r\n"},
		{"extension with a control character", "5;a\x01\r\n"},
		{"over the body limit", "65\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialProxy(t, addr)
			rc.send(head + tc.body)
			code := 400
			if strings.HasPrefix(tc.body, "65") {
				code = 413
			}
			rc.expectStatusAndClose("POST", code)
			nothing(t)
		})
		t.Run(tc.name+", split", func(t *testing.T) {
			rc := dialProxy(t, addr)
			rc.send(head)
			time.Sleep(50 * time.Millisecond)
			rc.send(tc.body[:1])
			time.Sleep(50 * time.Millisecond)
			rc.send(tc.body[1:])
			code := 400
			if strings.HasPrefix(tc.body, "65") {
				code = 413
			}
			rc.expectStatusAndClose("POST", code)
			nothing(t)
		})
	}
	t.Run("head alone times out", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send(head + "5")
		rc.expectStatusAndClose("POST", 408)
		nothing(t)
	})
	t.Run("head alone then a valid body", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send(head)
		time.Sleep(200 * time.Millisecond)
		nothing(t)
		rc.send("5\r\nhello\r\n0\r\n\r\n")
		if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
	// With Expect: 100-continue the client waits for 100 before sending
	// the body, so the head goes at once.
	t.Run("expect 100-continue", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send("POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
		resp, err := http.ReadResponse(rc.br, nil)
		mustf(t, err, "interim response")
		if resp.StatusCode != 100 {
			t.Fatalf("status %d, want 100", resp.StatusCode)
		}
		rc.send("5\r\nhello\r\n0\r\n\r\n")
		if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	})
}

// TestUnderscoreHeaders checks header fields whose names contain "_" are
// dropped by default (a CGI-style backend would read Content_Length as
// Content-Length), counted, and kept with server.underscoresInHeaders.
func TestUnderscoreHeaders(t *testing.T) {
	be := headEchoBackend(t, "")
	const req = "POST / HTTP/1.1\r\nHost: a\r\nX_Custom: 1\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\nContent_Length: 0\r\nX-Dash: 2\r\n\r\nhello"
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("underscoresInHeaders=%v", keep), func(t *testing.T) {
			srv, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Server.UnderscoresInHeaders = keep })
			rc := dialProxy(t, addr)
			for range 2 {
				rc.send(req)
				resp, body := rc.response("POST")
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				for _, name := range []string{"X_Custom", "Transfer_Encoding", "Content_Length"} {
					if got := strings.Contains(body, "\r\n"+name+": "); got != keep {
						t.Errorf("backend received %s: %v, want %v\n%s", name, got, keep, body)
					}
				}
				if !strings.Contains(body, "\r\nX-Dash: 2\r\n") || !strings.Contains(body, "\r\nContent-Length: 5\r\n") {
					t.Errorf("other fields lost:\n%s", body)
				}
			}
			var snap stats.Snapshot
			srv.Stats(&snap)
			want := uint64(6)
			if keep {
				want = 0
			}
			if snap.DroppedHeaders != want {
				t.Errorf("DroppedHeaders = %d, want %d", snap.DroppedHeaders, want)
			}
		})
	}
}

// TestContentLengthCanonical checks Content-Length is forwarded as the
// canonical decimal both ways, so a backend or client that reads leading
// zeros as octal cannot disagree on the framing.
func TestContentLengthCanonical(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, err := readHead(br)
		if err != nil {
			return
		}
		n := 0
		for _, l := range headerLines(head) {
			if strings.HasPrefix(strings.ToLower(l), "content-length:") {
				n, _ = strconv.Atoi(strings.TrimSpace(l[len("content-length:"):]))
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		// Echo the request head, declared with leading zeros, twice.
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 000%d\r\ncontent-length: 00%d\r\n\r\n%s", len(head), len(head), head)
	})
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0044\r\n\r\n" + strings.Repeat("b", 44))
	head, err := readHead(rc.br)
	mustf(t, err, "response head")
	var cls []string
	for _, l := range headerLines(head) {
		if strings.HasPrefix(strings.ToLower(l), "content-length:") {
			cls = append(cls, l)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), rc.br)), nil)
	mustf(t, err, "response")
	b, err := io.ReadAll(resp.Body)
	mustf(t, err, "body")
	if want := "Content-Length: " + strconv.Itoa(len(b)); len(cls) != 1 || cls[0] != want {
		t.Errorf("client received %q, want one %q", cls, want)
	}
	if !strings.Contains(string(b), "\r\nContent-Length: 44\r\n") {
		t.Errorf("backend received:\n%s\nwant Content-Length: 44", b)
	}
}

// TestListenPortZero checks that port 0 binds one port for every event
// loop, and that Addr reports it.
func TestListenPortZero(t *testing.T) {
	be, _ := rawResponder(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
	const loops = 4
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Server.EventLoops = loops })
	if port := srv.Addr().(*net.TCPAddr).Port; port == 0 {
		t.Fatalf("Addr() = %v", srv.Addr())
	}
	// gnet calls OnBoot (Ready) once the first loop's socket is bound;
	// the others follow at once.
	deadline := time.Now().Add(2 * time.Second)
	for srv.ListenerCount() != loops && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.ListenerCount(); n != loops {
		t.Fatalf("%d listening sockets on %v, want one per event loop (%d)", n, srv.Addr(), loops)
	}
	// Every loop accepts on that port: connections spread over them.
	for range 32 {
		rc := dialProxy(t, addr)
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		rc.c.Close()
	}
	srv.mu.Lock()
	n := len(srv.loops)
	srv.mu.Unlock()
	if n < 2 {
		t.Errorf("32 connections reached %d event loop(s), want them spread over %d", n, loops)
	}
}

// TestChunkedFramingBounded: chunk extensions are framing, not payload,
// but they may not make the bytes sent to a backend unbounded: 1000
// one-byte chunks with 4000-byte extensions under maxRequestBody 1000
// get 413.
func TestChunkedFramingBounded(t *testing.T) {
	var got atomic.Int64
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Add(n)
	}))
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Limits.MaxRequestBody = 1000 })
	rc := dialProxy(t, addr)
	ext := ";x=" + strings.Repeat("e", 4000)
	go func() {
		_, _ = io.WriteString(rc.c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 1000 {
			if _, err := io.WriteString(rc.c, "1"+ext+"\r\nx\r\n"); err != nil {
				return
			}
		}
		_, _ = io.WriteString(rc.c, "0\r\n\r\n")
	}()
	resp, _ := rc.response(http.MethodPost)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// TestUnsupportedResponseNotAConnectFailure: a well-formed response with a
// transfer coding ConnX cannot pass on gets 502, but it is an
// application's answer, not a broken backend: it must not open breakers
// (with failureOn5xx off, the default) and take the site down.
func TestUnsupportedResponseNotAConnectFailure(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if strings.HasPrefix(head, "GET /gz ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		d := config.Default()
		c.CircuitBreaker = d.CircuitBreaker
		c.Outlier = d.Outlier
		c.LoadBalancing.PanicThreshold = 0
	})
	for i := range 10 {
		rc := dialProxy(t, addr)
		rc.send("GET /gz HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, _ := rc.response(http.MethodGet); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("/gz %d: status %d, want 502", i, resp.StatusCode)
		}
	}
	rc := dialProxy(t, addr)
	if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after 10 unsupported responses: status %d (breaker %s)", resp.StatusCode, srv.snap.Load().def.members[0].hb.Breaker().State())
	}
}
