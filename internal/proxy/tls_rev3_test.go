package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Regression tests from review rev3 (TLS handshakes on the event loop).

// TestTLSCloseNotifyWithFinished: a client's first request and its
// close_notify arrive in the same segment as its Finished message. As
// when they arrive after the handshake (tlsTraffic: "closes the
// connection once the plaintext before it has been processed"), the
// request is answered before the connection closes; here a respond
// route answers it at once.
func TestTLSCloseNotifyWithFinished(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) {
		c.Routes = []config.Route{
			{Match: config.RouteMatch{Path: "/ping"}, Respond: &config.Respond{Status: 200, Body: "pong"}},
			{Match: config.RouteMatch{PathPrefix: "/"}, Pool: config.DefaultPoolName},
		}
	})
	for _, held := range []string{"after the handshake", "with Finished"} {
		raw, err := net.DialTimeout("tcp", e.addr, ioTimeout)
		mustf(t, err, "dial")
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(ioTimeout))
		hc := &holdConn{Conn: raw}
		cfg := e.client("example.com")
		cfg.MinVersion = tls.VersionTLS13 // 1.2's client waits for the server's Finished
		c := tls.Client(hc, cfg)
		mustf(t, c.Handshake(), "handshake")
		br := bufio.NewReader(c)
		if held == "after the handshake" {
			// A first request, answered, shows the handshake is over on
			// the server too.
			_, err = io.WriteString(c, "GET /ping HTTP/1.1\r\nHost: example.com\r\n\r\n")
			mustf(t, err, "write")
			mustf(t, hc.flush(), "flush")
			resp, err := http.ReadResponse(br, nil)
			mustf(t, err, "first response")
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "pong" {
				t.Fatalf("first request: %d %q", resp.StatusCode, b)
			}
		}
		_, err = io.WriteString(c, "GET /ping HTTP/1.1\r\nHost: example.com\r\n\r\n")
		mustf(t, err, "write")
		mustf(t, c.CloseWrite(), "close_notify")
		_ = raw.SetDeadline(time.Now().Add(ioTimeout)) // CloseWrite ended the write deadline
		mustf(t, hc.flush(), "flush")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request and close_notify %s: no response: %v", held, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "pong" {
			t.Fatalf("request and close_notify %s: %d %q", held, resp.StatusCode, b)
		}
	}
}

// TestTLSDataWithFinished: what a client sends right behind its Finished,
// in the same segment, is served at once: a 100 KB request body (more
// than crypto/tls reads with the Finished, so Step keeps the rest for the
// first Open), and the HTTP/2 preface and a request after ALPN h2.
func TestTLSDataWithFinished(t *testing.T) {
	e := newTLSEnv(t, h2EchoBackend(t), nil)
	dial := func(proto string) (*tls.Conn, *holdConn) {
		raw, err := net.DialTimeout("tcp", e.addr, ioTimeout)
		mustf(t, err, "dial")
		t.Cleanup(func() { raw.Close() })
		_ = raw.SetDeadline(time.Now().Add(ioTimeout))
		hc := &holdConn{Conn: raw}
		cfg := e.client("example.com")
		cfg.MinVersion = tls.VersionTLS13 // 1.2's client waits for the server's Finished
		cfg.NextProtos = []string{proto}
		c := tls.Client(hc, cfg)
		mustf(t, c.Handshake(), "handshake")
		return c, hc
	}

	c, hc := dial("http/1.1")
	body := strings.Repeat("b", 100<<10)
	_, err := fmt.Fprintf(c, "POST /big HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	mustf(t, err, "write")
	mustf(t, hc.flush(), "flush")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	mustf(t, err, "HTTP/1.1 response")
	b, _ := io.ReadAll(resp.Body)
	if want := fmt.Sprintf("POST /big example.com %d:%s", len(body), body); string(b) != want {
		t.Fatalf("HTTP/1.1: %d, %d bytes %.60q", resp.StatusCode, len(b), b)
	}

	c, hc = dial("h2")
	h := &rawH2{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	_, err = io.WriteString(c, http2.ClientPreface)
	mustf(t, err, "preface")
	mustf(t, h.fr.WriteSettings(), "settings")
	h.get(1, "/h2")
	mustf(t, hc.flush(), "flush")
	var status string
	var data []byte
	for ended := false; !ended; {
		f, err := h.fr.ReadFrame()
		mustf(t, err, "HTTP/2 frame")
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			status, ended = f.PseudoValue("status"), f.StreamEnded()
		case *http2.DataFrame:
			data, ended = append(data, f.Data()...), f.StreamEnded()
		}
	}
	if status != "200" || !strings.HasPrefix(string(data), "GET /h2 example.com") {
		t.Fatalf("HTTP/2: %q %q", status, data)
	}
}
