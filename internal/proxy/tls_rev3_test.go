package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/proxyproto"
	"github.com/connx/connx/internal/stats"
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

// TestTLSHandshakeSlots: on every way a connection to the HTTPS listener
// with the PROXY protocol can end before its handshake is over, its
// server.tls.maxHandshakes slot is given back and the end is counted
// once, by its reason (docs/metrics.md): the header refused, timed out,
// cut or from a denied address; the handshake timed out, failed, or left
// by the client.
func TestTLSHandshakeSlots(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) {
		c.Server.ProxyProtocol = config.ProxyProtocol{Enabled: true, TrustedSources: []string{"127.0.0.1"}, Timeout: 300 * time.Millisecond}
		c.Server.Deny = []string{"203.0.113.9"}
		c.Timeouts.TLSHandshake = 600 * time.Millisecond
	})
	hdr := func(ip string) []byte { return proxyproto.AppendV1(nil, ap(ip+":1"), ap("198.51.100.1:443")) }
	settled := func(what string) {
		t.Helper()
		waitFor(t, what+": slot and connection given back", func() bool {
			st, _ := e.srv.TLSStats()
			return st.InProgress == 0 && e.srv.Active() == 0
		})
	}
	var hello []byte // a real ClientHello
	{
		raw, err := net.DialTimeout("tcp", e.addr, ioTimeout)
		mustf(t, err, "dial")
		// Accepted first, so that settled below waits for its end (and
		// its count) rather than passing before the accept.
		waitFor(t, "the ClientHello connection accepted", func() bool { return e.srv.Active() == 1 })
		_, err = raw.Write(hdr("203.0.113.7"))
		mustf(t, err, "header")
		rec := &recordConn{Conn: raw}
		_ = tls.Client(rec, e.client("example.com")).Handshake()
		hello = rec.first
		raw.Close()
		settled("the connection that made the ClientHello")
	}
	counts := func() map[string]uint64 {
		st, _ := e.srv.TLSStats()
		var snap stats.Snapshot
		e.srv.Stats(&snap)
		m := map[string]uint64{"denied": snap.Denied}
		for k, n := range st.Failed {
			m["tls "+k] = n
		}
		for k, n := range ppErrors(e.srv) {
			m["pp "+k] = n
		}
		return m
	}
	before := counts()
	for _, c := range []struct {
		name  string
		in    []byte
		close bool   // the client closes; else it waits for the proxy to
		count string // the count the end adds to
	}{
		{"silence", nil, false, "pp timeout"},
		{"bad header", []byte("GARBAGE\r\n"), false, "pp signature"},
		{"half a header", hdr("203.0.113.7")[:10], false, "pp timeout"},
		{"denied address", hdr("203.0.113.9"), false, "denied"},
		{"no ClientHello", hdr("203.0.113.7"), false, "tls timeout"},
		{"garbage ClientHello", append(hdr("203.0.113.7"), bytes.Repeat([]byte{0x16, 0xff, 0, 0x41}, 30)...), false, "tls protocol"},
		{"no Finished", append(hdr("203.0.113.7"), hello...), false, "tls timeout"},
		{"closed in silence", nil, true, ""},
		{"closed in the header", hdr("203.0.113.7")[:10], true, "pp truncated"},
		{"closed before the ClientHello", hdr("203.0.113.7"), true, "tls timeout"},
		{"closed before the Finished", append(hdr("203.0.113.7"), hello...), true, "tls timeout"},
	} {
		nc, err := net.DialTimeout("tcp", e.addr, ioTimeout)
		mustf(t, err, "dial")
		waitFor(t, c.name+": accepted", func() bool { return e.srv.Active() == 1 })
		if len(c.in) > 0 {
			_, err = nc.Write(c.in)
			mustf(t, err, "write")
		}
		if !c.close {
			_ = nc.SetReadDeadline(time.Now().Add(ioTimeout))
			_, err = io.Copy(io.Discard, nc) // until the proxy closes
			mustf(t, err, "%s: the proxy does not close", c.name)
		}
		nc.Close() // what was sent is read before the close is seen
		settled(c.name)
		after := counts()
		for k, n := range after {
			want := before[k]
			if k == c.count {
				want++
			}
			if n != want {
				t.Errorf("%s: %s %d, want %d (counts %v)", c.name, k, n, want, after)
			}
		}
		before = after
	}
}
