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
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// clientIP is the loopback address the interop tests' clients use.
const clientIP = "127.0.0.5"

// listenSocket returns a listening loopback socket as a file for a peer,
// and its address.
func listenSocket(t *testing.T) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustf(t, err, "listen")
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	mustf(t, err, "listener file")
	t.Cleanup(func() { f.Close() })
	return f, ln.Addr().String()
}

// runPeer starts a peer with files as its descriptors 3, 4, ... and stops
// it when the test ends: SIGTERM to its PID (nginx's master takes its
// workers down), SIGKILL if it has not exited 10 seconds later.
func runPeer(t *testing.T, files []*os.File, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	mustf(t, cmd.Start(), "start %s", name)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

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
	bin := needTool(t, "haproxy")
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
		f, addr := listenSocket(t)
		files, fronts = append(files, f), append(fronts, addr)
		cfg += fmt.Sprintf("frontend f%d\n  bind fd@%d\n  unique-id-format conn-%%ci-%%cp\n  default_backend b%d\nbackend b%d\n  server connx %s %s\n",
			i, 3+i, i, i, c.target, c.server)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	mustf(t, os.WriteFile(path, []byte(cfg), 0o644), "config")
	runPeer(t, files, nil, bin, "-db", "-f", path)

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
		start func(t *testing.T) string // returns the peer's address
	}{
		{"nginx", startNginxEcho},
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

func startNginxEcho(t *testing.T) string {
	bin := needTool(t, "nginx")
	f, addr := listenSocket(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "nginx.conf")
	err := os.WriteFile(cfg, []byte(`daemon off;
pid `+dir+`/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path `+dir+`/body;
  proxy_temp_path `+dir+`/proxy;
  fastcgi_temp_path `+dir+`/fastcgi;
  uwsgi_temp_path `+dir+`/uwsgi;
  scgi_temp_path `+dir+`/scgi;
  server {
    listen `+addr+` proxy_protocol;
    location / {
      default_type text/plain;
      return 200 "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port\n";
    }
  }
}
`), 0o644)
	mustf(t, err, "config")
	// NGINX lists inherited listening sockets: nginx uses fd 3 for the
	// listen directive with the same address.
	runPeer(t, []*os.File{f}, []string{"NGINX=3;"}, bin, "-p", dir, "-e", "stderr", "-c", cfg)
	return addr
}

func startHAProxyEcho(t *testing.T) string {
	bin := needTool(t, "haproxy")
	f, addr := listenSocket(t)
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
	runPeer(t, []*os.File{f}, nil, bin, "-db", "-f", cfg)
	return addr
}
