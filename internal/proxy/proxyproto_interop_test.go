package proxy

// Interop of the PROXY protocol with real peers over loopback: HAProxy in
// front of ConnX (send-proxy, send-proxy-v2; plaintext and TLS ports),
// and ConnX in front of nginx (listen ... proxy_protocol) and HAProxy
// (bind ... accept-proxy), each backend echoing the address it learned.
// The test client connects from 127.0.0.5, so the address that arrives
// is told apart from HAProxy's and ConnX's own (127.0.0.1). Each test
// skips when its peer is not installed, unless CONNX_CI=1.
//
// The test binds each socket a peer listens on and hands it over as a
// file descriptor (HAProxy "bind fd@N", nginx's NGINX variable): a
// connection made before the peer is ready waits in the backlog, so
// nothing polls for readiness.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/testproc"
)

// clientIP is the loopback address the interop tests' clients use.
const clientIP = "127.0.0.5"

// dialFromClient connects to addr from clientIP.
func dialFromClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
	c, err := d.Dial("tcp", addr)
	mustf(t, err, "dial %s", addr)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	return c
}

// getBody sends GET / on c and returns the status and the trimmed body.
func getBody(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
	mustf(t, err, "write")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	mustf(t, err, "response")
	b, err := io.ReadAll(resp.Body)
	mustf(t, err, "body")
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestHAProxySendsToConnX: HAProxy in TCP mode relays to ConnX's
// plaintext and TLS ports with send-proxy and send-proxy-v2 (with a
// CRC32C and a unique ID); ConnX's backend sees the test client's
// address in X-Forwarded-For.
func TestHAProxySendsToConnX(t *testing.T) {
	bin := testproc.Tool(t, "haproxy")
	be := xffBackend(t)
	e := newTLSEnv(t, be.addr, func(c *config.Config) {
		c.Server.ProxyProtocol = config.ProxyProtocol{Enabled: true, TrustedSources: []string{"127.0.0.1"}, Timeout: 5 * time.Second}
	})
	cases := []struct {
		name, server, target string
		tls                  bool
	}{
		{"send-proxy", "send-proxy", e.plain, false},
		{"send-proxy-v2", "send-proxy-v2 proxy-v2-options crc32c,unique-id", e.plain, false},
		{"TLS send-proxy", "send-proxy", e.addr, true},
		{"TLS send-proxy-v2", "send-proxy-v2 proxy-v2-options ssl,authority,crc32c", e.addr, true},
	}
	var files []*os.File
	var fronts []string
	cfg := "global\ndefaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n"
	for i, c := range cases {
		f, addr := testproc.ListenFile(t)
		files, fronts = append(files, f), append(fronts, addr)
		cfg += fmt.Sprintf("frontend f%d\n  bind fd@%d\n  unique-id-format conn-%%ci-%%cp\n  default_backend b%d\nbackend b%d\n  server connx %s %s\n",
			i, 3+i, i, i, c.target, c.server)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	mustf(t, os.WriteFile(path, []byte(cfg), 0o644), "config")
	testproc.RunPeer(t, files, nil, bin, "-db", "-f", path)

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dialFromClient(t, fronts[i])
			if c.tls {
				tc := tls.Client(conn, e.client("example.com"))
				mustf(t, tc.Handshake(), "handshake through HAProxy")
				conn = tc
			}
			if code, body := getBody(t, conn); code != 200 || body != clientIP {
				t.Fatalf("%d %q, want 200 %q", code, body, clientIP)
			}
		})
	}
	if m := ppErrors(e.srv); len(m) != 0 {
		t.Errorf("errors counted: %v", m)
	}
}

// TestConnXSendsToPeers: ConnX with upstream.proxyProtocol v1 and v2 in
// front of nginx (listen ... proxy_protocol) and HAProxy (accept-proxy),
// which echo the client and server address and port they learned.
func TestConnXSendsToPeers(t *testing.T) {
	peers := []struct {
		name  string
		start func(testing.TB) string // returns the peer's address
	}{
		{"nginx", testproc.NginxProxyProtocolEcho},
		{"haproxy", startHAProxyEcho},
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			addr := p.start(t)
			for _, v := range []string{config.ProxyProtocolV1, config.ProxyProtocolV2} {
				t.Run(v, func(t *testing.T) {
					srv := startProxy(t, testConfig(t, []string{addr}, func(c *config.Config) {
						c.Upstream.ProxyProtocol = v
					}))
					conn := dialFromClient(t, srv.Addr().String())
					_, cport, _ := net.SplitHostPort(conn.LocalAddr().String())
					want := clientIP + " " + cport + " " + strings.Replace(srv.Addr().String(), ":", " ", 1)
					for range 2 { // the second request reuses the connection
						if code, body := getBody(t, conn); code != 200 || body != want {
							t.Fatalf("%s learned %q (%d), want %q", p.name, body, code, want)
						}
					}
				})
			}
		})
	}
}

func startHAProxyEcho(t testing.TB) string {
	bin := testproc.Tool(t, "haproxy")
	f, addr := testproc.ListenFile(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	err := os.WriteFile(cfg, []byte(`global
defaults
  mode http
  timeout client 10s
  timeout server 10s
  timeout connect 5s
frontend echo
  bind fd@3 accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]\n"
`), 0o644)
	mustf(t, err, "config")
	testproc.RunPeer(t, []*os.File{f}, nil, bin, "-db", "-f", cfg)
	return addr
}
