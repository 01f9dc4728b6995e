package http2

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// startGoH2C starts Go's HTTP/2 server with cleartext prior knowledge on
// loopback.
func startGoH2C(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func goHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "6")
		w.Header().Set("X-Proto", r.Proto)
		io.WriteString(w, "hello\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Got-Trailer, X-Len")
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		n, _ := io.Copy(w, r.Body)
		w.Header().Set("X-Got-Trailer", r.Trailer.Get("X-Sum"))
		w.Header().Set("X-Len", strconv.FormatInt(n, 10))
	})
	mux.HandleFunc("/continue", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func getHead(authority, path string) func(c *ClientConn) *HeaderBlock {
	return func(c *ClientConn) *HeaderBlock { return c.Request("GET", "http", authority, path) }
}

func TestClientE2EGoServer(t *testing.T) {
	addr := startGoH2C(t, goHandler())
	tc := dialTestClient(t, addr, nil)

	t.Run("GET", func(t *testing.T) {
		c, err := tc.open(getHead(addr, "/hello"), true)
		if err != nil {
			t.Fatal(err)
		}
		r := c.readResponse()
		if r.status != 200 || string(r.body) != "hello\n" || fieldValue(r.head, "x-proto") != "HTTP/2.0" || r.reset != nil {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		c, _ := tc.open(func(c *ClientConn) *HeaderBlock { return c.Request("HEAD", "http", addr, "/hello") }, true)
		r := c.readResponse()
		if r.status != 200 || len(r.body) != 0 || fieldValue(r.head, "content-length") != "6" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("early hints", func(t *testing.T) {
		c, _ := tc.open(getHead(addr, "/continue"), true)
		ev := c.recv()
		if ev.Kind != EventHeaders || ev.Status != 103 || fieldValue(ev.Fields, "link") == "" {
			t.Fatalf("first event %+v", ev)
		}
		if r := c.readResponse(); r.status != 204 {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("echo 4 MiB with trailers both ways", func(t *testing.T) {
		c, _ := tc.open(func(c *ClientConn) *HeaderBlock {
			hb := c.Request("POST", "http", addr, "/echo")
			hb.AddString("trailer", "X-Sum")
			return hb
		}, false)
		body := bytes.Repeat([]byte("0123456789abcdef"), 4<<16)
		c.send(body, true, Field{"x-sum", "42"})
		r := c.readResponse()
		if r.status != 200 || !bytes.Equal(r.body, body) || fieldValue(r.trailers, "x-got-trailer") != "42" ||
			fieldValue(r.trailers, "x-len") != strconv.Itoa(len(body)) {
			t.Fatalf("status %d, %d bytes, trailers %v, reset %v", r.status, len(r.body), r.trailers, r.reset)
		}
	})
	t.Run("50 concurrent streams", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := range 50 {
			wg.Go(func() {
				c, err := tc.open(func(c *ClientConn) *HeaderBlock { return c.Request("POST", "http", addr, "/echo") }, false)
				if err != nil {
					errs <- err
					return
				}
				body := bytes.Repeat([]byte{byte(i)}, 100<<10+i)
				c.send(body, true)
				if r := c.readResponse(); !bytes.Equal(r.body, body) {
					errs <- fmt.Errorf("stream %d: %d bytes back, reset %v", c.id, len(r.body), r.reset)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("reset by the client", func(t *testing.T) {
		c, _ := tc.open(func(c *ClientConn) *HeaderBlock { return c.Request("POST", "http", addr, "/echo") }, false)
		c.send(make([]byte, 1000), false)
		if ev := c.recv(); ev.Kind != EventHeaders {
			t.Fatalf("event %+v", ev)
		}
		c.reset(ErrCodeCancel)
		// The connection goes on.
		c, _ = tc.open(getHead(addr, "/hello"), true)
		if r := c.readResponse(); r.status != 200 {
			t.Fatalf("got %+v", r)
		}
	})
	var streams int
	tc.exec(func() { streams = tc.cc.Streams() })
	if streams != 0 {
		t.Fatalf("%d streams left", streams)
	}
}
