package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// echoBackend answers every request with its method, framing and body.
func echoBackend(t *testing.T) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%s te=%v cl=%d body=%s", r.Method, r.TransferEncoding, r.ContentLength, b)
	}))
}

// TestRequestBodies sends Content-Length and chunked request bodies and
// checks the backend receives exactly those bytes, with the same framing.
func TestRequestBodies(t *testing.T) {
	_, addr := proxyFor(t, []string{echoBackend(t)}, nil)
	rc := dialProxy(t, addr)

	rc.send("POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
	if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "POST te=[] cl=11 body=hello world" {
		t.Fatalf("Content-Length body: status %d body %q", resp.StatusCode, body)
	}

	// Chunked, with an extension and a trailer, split over several writes.
	parts := []string{
		"PUT /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"5\r\nhel", "lo\r\n", "1;ext=1\r\n \r\n", "a\r\n0123456789\r\n",
		"0\r\nX-Trailer: t\r\n\r\n",
	}
	for _, p := range parts {
		rc.send(p)
	}
	if resp, body := rc.response("PUT"); resp.StatusCode != 200 || body != "PUT te=[chunked] cl=-1 body=hello 0123456789" {
		t.Fatalf("chunked body: status %d body %q", resp.StatusCode, body)
	}

	// Empty bodies both ways.
	rc.send("POST /empty HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
	if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "POST te=[] cl=0 body=" {
		t.Fatalf("empty body: status %d body %q", resp.StatusCode, body)
	}
	rc.send("POST /empty HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "POST te=[chunked] cl=-1 body=" {
		t.Fatalf("empty chunked body: status %d body %q", resp.StatusCode, body)
	}
}

// TestResponseBodies checks Content-Length, chunked (flushed piecewise,
// with trailers) and read-until-close responses reach the client intact.
func TestResponseBodies(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cl":
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			f := w.(http.Flusher)
			for _, p := range []string{"alpha ", "beta ", "gamma"} {
				io.WriteString(w, p)
				f.Flush()
			}
			w.Header().Set("X-Sum", "42")
		}
	}))
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)

	resp, body := rc.get("/cl")
	if resp.StatusCode != 200 || body != "hello world" || resp.ContentLength != 11 {
		t.Fatalf("/cl: status %d body %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body = rc.get("/chunked")
	if resp.StatusCode != 200 || body != "alpha beta gamma" {
		t.Fatalf("/chunked: status %d body %q", resp.StatusCode, body)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("/chunked: Transfer-Encoding %v", resp.TransferEncoding)
	}
	if got := resp.Trailer.Get("X-Sum"); got != "42" {
		t.Errorf("/chunked: trailer X-Sum %q, want 42", got)
	}
	if resp.Close {
		t.Error("/chunked: connection closed")
	}

	// A body delimited by the close of the connection is passed on and
	// ends the client connection too.
	raw := rawBackend(t, func(c net.Conn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil close")
	})
	_, addr2 := proxyFor(t, []string{raw}, nil)
	rc2 := dialProxy(t, addr2)
	resp, body = rc2.get("/")
	if resp.StatusCode != 200 || body != "until close" || !resp.Close {
		t.Fatalf("until-close: status %d body %q close %v", resp.StatusCode, body, resp.Close)
	}
	rc2.expectClosed()
}

// TestLargeBodies moves 64 MiB each way and compares every byte.
func TestLargeBodies(t *testing.T) {
	const size = 64 << 20
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "/download":
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", strconv.Itoa(size))
			}
			io.Copy(w, patternReader(size))
		}
	}))
	_, addr := proxyFor(t, []string{be}, nil)
	h := sha256.New()
	io.Copy(h, patternReader(size))
	wantSum := hex.EncodeToString(h.Sum(nil))

	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("upload/chunked=%v", chunked), func(t *testing.T) {
			rc := dialProxy(t, addr)
			werr := make(chan error, 1)
			go func() {
				var err error
				if chunked {
					_, err = io.WriteString(rc.c, "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
					if err == nil {
						cw := &chunkWriter{w: rc.c}
						_, err = io.CopyBuffer(cw, patternReader(size), make([]byte, 100_000))
						if err == nil {
							_, err = io.WriteString(rc.c, "0\r\n\r\n")
						}
					}
				} else {
					_, err = fmt.Fprintf(rc.c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
					if err == nil {
						_, err = io.Copy(rc.c, patternReader(size))
					}
				}
				werr <- err
			}()
			resp, body := rc.response("POST")
			if err := <-werr; err != nil {
				t.Fatalf("upload: %v", err)
			}
			if want := fmt.Sprintf("%d %s", size, wantSum); resp.StatusCode != 200 || body != want {
				t.Fatalf("upload: status %d body %q, want %q", resp.StatusCode, body, want)
			}
		})
		t.Run(fmt.Sprintf("download/chunked=%v", chunked), func(t *testing.T) {
			rc := dialProxy(t, addr)
			path := "/download"
			if chunked {
				path += "?chunked=1"
			}
			rc.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(rc.br, nil)
			mustf(t, err, "download head")
			if chunked != (resp.ContentLength == -1) {
				t.Fatalf("download: Content-Length %d", resp.ContentLength)
			}
			pc := newPatternChecker()
			_, err = io.Copy(pc, resp.Body)
			mustf(t, err, "download body")
			pc.check(t, size)
		})
	}
}

// chunkWriter frames each write as one chunk.
type chunkWriter struct{ w io.Writer }

func (c *chunkWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(c.w, "%x\r\n", len(b)); err != nil {
		return 0, err
	}
	if _, err := c.w.Write(b); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(c.w, "\r\n"); err != nil {
		return 0, err
	}
	return len(b), nil
}

// TestExpectContinue checks the interim 100 Continue reaches a client that
// waits for it before sending the body.
func TestExpectContinue(t *testing.T) {
	_, addr := proxyFor(t, []string{echoBackend(t)}, nil)
	rc := dialProxy(t, addr)
	rc.send("POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "interim response")
	if resp.StatusCode != 100 {
		t.Fatalf("first response %d, want 100", resp.StatusCode)
	}
	rc.send("hello")
	resp, body := rc.response("POST")
	if resp.StatusCode != 200 || body != "POST te=[] cl=5 body=hello" {
		t.Fatalf("final: status %d body %q", resp.StatusCode, body)
	}
	// The connection goes on.
	rc.send("POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
	if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "POST te=[] cl=2 body=ok" {
		t.Fatalf("next: status %d body %q", resp.StatusCode, body)
	}
}

// TestExpectContinueOnce: a backend that repeats 100 Continue gets one
// relayed per request. Each used to be relayed, with no check of what the
// client owed: a backend repeating it to a client that did not read made
// ConnX queue output without bound (found by review: 63 MB held against
// a 256 KiB connectionBuffer).
func TestExpectContinueOnce(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 1000)); err != nil {
			return
		}
		if _, err := io.ReadFull(br, make([]byte, 5)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	rc.send("POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "interim response")
	if resp.StatusCode != 100 {
		t.Fatalf("first response %d, want 100", resp.StatusCode)
	}
	rc.send("hello")
	resp, body := rc.response("POST")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the body: status %d body %q, want one 100 Continue and then 200", resp.StatusCode, body)
	}
}

// TestBackendDiesMidResponse checks a response cut short by the backend is
// cut short for the client too: the client must never see a complete
// message.
func TestBackendDiesMidResponse(t *testing.T) {
	const promised = 1_000_000
	for _, tc := range []struct {
		name string
		head string
		body func(w io.Writer)
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(promised) + "\r\n\r\n", func(w io.Writer) {
			io.Copy(w, patternReader(promised/2))
		}},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", func(w io.Writer) {
			cw := &chunkWriter{w: w}
			io.CopyBuffer(cw, patternReader(promised/2), make([]byte, 10_000))
			// A complete chunk, but no terminating zero chunk.
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := rawBackend(t, func(c net.Conn) {
				if _, err := readHead(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, tc.head)
				tc.body(c)
			})
			_, addr := proxyFor(t, []string{be}, nil)
			rc := dialProxy(t, addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(rc.br, nil)
			mustf(t, err, "head")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			pc := newPatternChecker()
			_, err = io.Copy(pc, resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
				t.Fatalf("body read ended with %v after %d bytes; want an incomplete message", err, pc.n)
			}
			if pc.n > promised/2 || pc.bad >= 0 {
				t.Fatalf("got %d bytes (first bad chunk at %d)", pc.n, pc.bad)
			}
			rc.expectClosed()
		})
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}
