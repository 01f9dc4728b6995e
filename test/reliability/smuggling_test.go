//go:build reliability

package reliability

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a raw TCP backend that records the head of every request
// it receives, reads its body by Content-Length or chunked framing, and
// answers 200 "ok" on a keep-alive connection.
type recorder struct {
	addr  string
	mu    sync.Mutex
	heads []string
	conns []string // the connection (peer address) each head came on
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var cmu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				rec.serve(c)
			}()
		}
	}()
	return rec
}

func (rec *recorder) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		var head []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			if l == "" {
				break
			}
			head = append(head, l)
		}
		rec.mu.Lock()
		rec.heads = append(rec.heads, strings.Join(head, "\n"))
		rec.conns = append(rec.conns, c.RemoteAddr().String())
		rec.mu.Unlock()
		var body io.Reader = strings.NewReader("")
		for _, h := range head[1:] {
			k, v, _ := strings.Cut(h, ":")
			v = strings.TrimSpace(v)
			switch strings.ToLower(k) {
			case "content-length":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return
				}
				body = io.LimitReader(br, n)
			case "transfer-encoding":
				body = httputil.NewChunkedReader(br)
			}
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return
		}
		if _, ok := body.(*strings.Reader); !ok {
			if _, isLimit := body.(*io.LimitedReader); !isLimit {
				// the chunked reader stops before the trailer section
				for {
					l, err := br.ReadString('\n')
					if err != nil || strings.TrimRight(l, "\r\n") == "" {
						break
					}
				}
			}
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// seen returns the heads whose request line contains s.
func (rec *recorder) seen(s string) []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, h := range rec.heads {
		line, _, _ := strings.Cut(h, "\n")
		if strings.Contains(line, s) {
			out = append(out, h)
		}
	}
	return out
}

// TestSmuggling sends each malformed or ambiguous request on a raw
// socket: connx must answer the exact status and close the connection,
// and the backend must never see two requests from one payload (each
// payload ends in a second, smuggled request with its own path). Valid
// cases (absolute-form) must be forwarded in origin-form.
func TestSmuggling(t *testing.T) {
	rec := newRecorder(t)
	p, _ := run(t, config("", "", "http://"+rec.addr))

	const smuggle = "GET /smuggled-%d HTTP/1.1\r\nHost: a\r\n\r\n"
	bigHeaders := strings.Repeat("X-Big: "+strings.Repeat("v", 1000)+"\r\n", 17)
	cases := []struct {
		name string
		req  string // %[1]d is the case number
		code int
		// forwarded: the request may reach the backend (exactly once,
		// with path /c%d) — its framing was valid.
		forwarded bool
		keepAlive bool
		// For a forwarded request: a line the forwarded head must have,
		// and a field name it must not.
		has, hasNot string
	}{
		{"CL+TE", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400, false, false, "", ""},
		{"TE+CL", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX", 400, false, false, "", ""},
		{"duplicate CL same value", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, false, false, "", ""},
		{"duplicate CL different values", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n", 400, false, false, "", ""},
		{"CL list 0, 44", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 44\r\n\r\n", 400, false, false, "", ""},
		{"TE chunked, chunked", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, false, false, "", ""},
		{"TE chunked twice in two fields", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, false, false, "", ""},
		{"TE xchunked", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501, false, false, "", ""},
		// RFC 9112 6.3 says 400 for chunked not last, 6.1 allows 501 for an
		// unknown coding; connx answers 501 for any coding but chunked.
		{"TE chunked not last", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 501, false, false, "", ""},
		{"TE with space before colon", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX", 400, false, false, "", ""},
		{"TE on HTTP/1.0", "POST /c%[1]d HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, false, false, "", ""},
		{"obs-fold", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400, false, false, "", ""},
		{"obs-fold of TE", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX", 400, false, false, "", ""},
		{"space before colon", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400, false, false, "", ""},
		{"NUL in value", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400, false, false, "", ""},
		{"CR in value", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400, false, false, "", ""},
		{"LF in value", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\nX-A: b\nContent-Length: 6\r\n\r\n", 400, false, false, "", ""},
		{"negative chunk size", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400, false, false, "", ""},
		{"hex-overflow chunk size", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400, false, false, "", ""},
		{"chunk size with 0x", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400, false, false, "", ""},
		{"bare LF line endings", "GET /c%[1]d HTTP/1.1\nHost: a\n\n", 400, false, false, "", ""},
		{"bare LF in chunk line", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, false, false, "", ""},
		// The head of a chunked request waits for a valid first chunk-size
		// line (connx looks at the first 4 KiB of body it has); a bad size
		// after a larger valid chunk is found once the head is forwarded.
		{"bad chunk size after a 4 KiB chunk", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1100\r\n" + strings.Repeat("a", 0x1100) + "\r\nzz\r\n0\r\n\r\n", 400, true, false, "", ""},
		{"missing Host on 1.1", "GET /c%[1]d HTTP/1.1\r\nX-A: b\r\n\r\n", 400, false, false, "", ""},
		{"two Hosts", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, false, false, "", ""},
		{"oversized request line", "GET /c%[1]d" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, false, false, "", ""},
		{"oversized headers", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\n" + bigHeaders + "\r\n", 431, false, false, "", ""},
		{"too many headers", "GET /c%[1]d HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-H: v\r\n", 101) + "\r\n", 431, false, false, "", ""},
		{"CL with plus sign", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400, false, false, "", ""},
		{"negative CL", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, false, false, "", ""},
		{"CL hex-overflow", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551621\r\n\r\n", 400, false, false, "", ""},
		{"TE with vertical tab", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\vchunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX", 400, false, false, "", ""},
		{"NUL in request target", "GET /c%[1]d\x00x HTTP/1.1\r\nHost: a\r\n\r\n", 400, false, false, "", ""},
		{"HTTP/1.1 with no version digits", "GET /c%[1]d HTTP/1.\r\nHost: a\r\n\r\n", 400, false, false, "", ""},
		// Valid framing: forwarded once; the tail is a second, pipelined request.
		{"TE Chunked in upper case", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, true, true, "", ""},
		{"absolute-form target", "GET http://a/c%[1]d?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", 200, true, true, "", ""},
		{"HTTP/1.2 served as HTTP/1.1", "GET /c%[1]d HTTP/1.2\r\nHost: a\r\n\r\n", 200, true, true, " HTTP/1.1", ""},
		{"Content-Length with leading zeros", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: 0005\r\n\r\nhello", 200, true, true, "Content-Length: 5", ""},
		// A CGI-style backend reads "_" as "-": dropped (nginx's default).
		{"Transfer_Encoding beside Content-Length", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n", 200, true, true, "Content-Length: 5", "transfer_encoding"},
		{"Content_Length beside chunked", "POST /c%[1]d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent_Length: 6\r\n\r\n0\r\n\r\n", 200, true, true, "Transfer-Encoding: chunked", "content_length"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload := fmt.Sprintf(tc.req, i) + fmt.Sprintf(smuggle, i)
			rc := dial(t, p.Addr)
			rc.send(payload)
			resp, body, err := rc.response(http.MethodGet, 5*time.Second)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, tc.code, body)
			}
			var second string
			if tc.keepAlive {
				// The smuggled request is a separate, valid pipelined request.
				resp2, _, err := rc.response(http.MethodGet, 5*time.Second)
				if err != nil || resp2.StatusCode != 200 {
					t.Errorf("pipelined request after a valid one: %v %v", resp2, err)
				}
			} else {
				ok, rest := rc.closed(5 * time.Second)
				if !ok {
					t.Errorf("connection not closed after %d (then got %q)", resp.StatusCode, rest)
				}
				second = rest
			}
			// Both requests travel before the answer; give the backend
			// a moment only for the valid case's pipelined request.
			main := rec.seen(fmt.Sprintf("/c%d", i))
			smuggled := rec.seen(fmt.Sprintf("/smuggled-%d ", i))
			switch {
			case tc.keepAlive:
				if len(main) != 1 || len(smuggled) != 1 {
					t.Errorf("backend saw %d heads for /c%d and %d for the pipelined one, want 1 and 1", len(main), i, len(smuggled))
				}
				if len(main) == 1 && strings.HasPrefix(tc.req, "GET http://") && !strings.HasPrefix(main[0], fmt.Sprintf("GET /c%d?q=1 HTTP/1.1", i)) {
					t.Errorf("absolute-form forwarded as %q, want origin-form", strings.SplitN(main[0], "\n", 2)[0])
				}
				if len(main) == 1 && tc.has != "" && !strings.Contains(main[0], tc.has) {
					t.Errorf("forwarded head lacks %q:\n%s", tc.has, main[0])
				}
				if len(main) == 1 && tc.hasNot != "" && strings.Contains(strings.ToLower(main[0]), "\n"+tc.hasNot+":") {
					t.Errorf("forwarded head has %s:\n%s", tc.hasNot, main[0])
				}
			case tc.forwarded:
				if len(main) > 1 || len(smuggled) != 0 {
					t.Errorf("backend saw %d heads and %d smuggled", len(main), len(smuggled))
				}
			default:
				if len(main) != 0 || len(smuggled) != 0 {
					t.Errorf("backend saw %v", append(main, smuggled...))
				}
			}
			t.Logf("%-32s -> %d, closed=%v, backend heads: %d main + %d smuggled%s", tc.name, resp.StatusCode, !tc.keepAlive, len(main), len(smuggled), trail(second))
		})
	}
	// A request whose head was forwarded before its body turned out to be
	// malformed leaves its upstream connection mid-message: nothing may
	// follow it on that connection.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	t.Logf("backend received %d request heads in all for %d payloads, on %d connections", len(rec.heads), len(cases), distinct(rec.conns))
	for i, tc := range cases {
		if !tc.forwarded || tc.keepAlive {
			continue
		}
		for j, h := range rec.heads {
			if !strings.HasPrefix(h, fmt.Sprintf("POST /c%d ", i)) {
				continue
			}
			for k := j + 1; k < len(rec.heads); k++ {
				if rec.conns[k] == rec.conns[j] {
					t.Errorf("%s: the upstream connection left mid-body was reused for %q", tc.name, strings.SplitN(rec.heads[k], "\n", 2)[0])
				}
			}
		}
	}
}

func distinct(s []string) int {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return len(m)
}

func trail(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" (extra bytes %q)", s)
}

// TestBadBackendResponses: a backend that answers with a malformed
// response head or framing must give the client 502 (or, once a valid
// head has been forwarded, an aborted message) — never the bad bytes.
func TestBadBackendResponses(t *testing.T) {
	const marker = "EVIL"
	for _, tc := range []struct {
		name string
		resp string
		// streamed: the head is valid and may already be forwarded when
		// the body turns out bad; then the client gets that head and an
		// incomplete body, never the bad bytes.
		streamed bool
	}{
		{"bad status line", "HTTP/1.1 2x0 OK\r\nContent-Length: 4\r\n\r\n" + marker, false},
		{"garbage", marker + " garbage\r\n\r\n", false},
		{"CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n" + marker + "\r\n0\r\n\r\n", false},
		{"two different CLs", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 9\r\n\r\n" + marker, false},
		{"header with NUL", "HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 4\r\n\r\n" + marker, false},
		{"header with bare CR", "HTTP/1.1 200 OK\r\nX-A: b\rSet-Cookie: x\r\nContent-Length: 4\r\n\r\n" + marker, false},
		{"101 without upgrade", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n" + marker, false},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + marker + "\r\n0\r\n\r\n", true},
		// Passed on without the coding, the body would change meaning.
		{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n" + marker + "\r\n0\r\n\r\n", false},
		{"TE gzip until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + marker, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						br := bufio.NewReader(c)
						for {
							l, err := br.ReadString('\n')
							if err != nil {
								return
							}
							if l == "\r\n" {
								break
							}
						}
						io.WriteString(c, tc.resp)
						c.SetReadDeadline(time.Now().Add(10 * time.Second))
						io.Copy(io.Discard, br)
					}()
				}
			}()
			p, _ := run(t, config("", "upstream:\n  retries: 0\n", "http://"+ln.Addr().String()))
			rc := dial(t, p.Addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			all, err := io.ReadAll(rc.br)
			got := string(all)
			status := strings.SplitN(got, "\r\n", 2)[0]
			if strings.Contains(got, marker) {
				t.Errorf("the bad bytes reached the client: %q", got)
			}
			switch {
			case strings.HasPrefix(got, "HTTP/1.1 502 "):
			case tc.streamed && strings.HasPrefix(got, "HTTP/1.1 200 "):
				// an aborted message: head, no complete body
				if strings.HasSuffix(got, "0\r\n\r\n") {
					t.Errorf("aborted response ends like a complete chunked body: %q", got)
				}
			default:
				t.Errorf("client got %q, want 502", got)
			}
			t.Logf("%-20s -> %q, then closed (read err %v)", tc.name, status, err)
		})
	}
}
