package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
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
