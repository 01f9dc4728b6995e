package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
	"github.com/connx/connx/internal/testcert"
)

// httpsBackend is a backend serving HTTPS with a certificate for
// "backend.internal" from a private CA. It answers /big with size bytes
// and anything else with what it saw of the TLS connection.
type httpsBackend struct {
	addr    string // host:port
	ca      *testcert.CA
	caFile  string
	clients *testcert.CA // verifies client certificates when required
}

func newHTTPSBackend(t *testing.T, requireClientCert bool) *httpsBackend {
	b := &httpsBackend{ca: testcert.NewCA(t), clients: testcert.NewCA(t)}
	dir := t.TempDir()
	b.caFile = dir + "/backend-ca.pem"
	testcert.WriteFile(t, b.caFile, b.ca.PEM)
	leaf := b.ca.Issue(t, testcert.ECDSA, false, "backend.internal")
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	mustf(t, err, "backend pair")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16)) // 1 MiB
			return
		case "/stream":
			w.Header().Set("Content-Length", strconv.Itoa(streamSize))
			io.Copy(w, patternReader(streamSize))
			return
		}
		cn := ""
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "sni=%s resumed=%v client=%s path=%s", r.TLS.ServerName, r.TLS.DidResume, cn, r.URL.Path)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	if requireClientCert {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = b.clients.Pool()
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b.addr = strings.TrimPrefix(srv.URL, "https://")
	return b
}

// httpsProxy runs a proxy whose one backend is b over https.
func httpsProxy(t *testing.T, b *httpsBackend, tweak func(*config.Config)) *Server {
	cfg := testConfig(t, nil, func(c *config.Config) {
		c.Backends = []config.Backend{{URL: "https://" + b.addr, Weight: 1}}
		c.BackendTLS = config.BackendTLS{CAFile: b.caFile, ServerName: "backend.internal"}
		if tweak != nil {
			tweak(c)
		}
	})
	return startProxy(t, cfg)
}

func TestTLSBackendPrivateCA(t *testing.T) {
	b := newHTTPSBackend(t, false)
	srv := httpsProxy(t, b, func(c *config.Config) { c.Upstream.MaxIdlePerBackend = 0 }) // a connection per request
	rc := dialProxy(t, srv.Addr().String())
	for i := range 3 {
		resp, body := rc.get(fmt.Sprintf("/r%d", i))
		want := fmt.Sprintf("sni=backend.internal resumed=%v client= path=/r%d", i > 0, i)
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d: %d %q, want %q", i, resp.StatusCode, body, want)
		}
	}
	// A response larger than the buffers, through the record layer.
	resp, body := rc.get("/big")
	if resp.StatusCode != 200 || body != strings.Repeat("0123456789abcdef", 1<<16) {
		t.Fatalf("/big: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestTLSBackendPooled(t *testing.T) {
	b := newHTTPSBackend(t, false)
	srv := httpsProxy(t, b, nil)
	rc := dialProxy(t, srv.Addr().String())
	for i := range 20 { // keep-alive to the backend: one handshake
		if resp, body := rc.get("/k"); resp.StatusCode != 200 || body != "sni=backend.internal resumed=false client= path=/k" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	// POST bodies go through the sealing path too.
	payload := strings.Repeat("x", 300<<10)
	rc.send(fmt.Sprintf("POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(payload), payload))
	if resp, body := rc.response("POST"); resp.StatusCode != 200 || body != "sni=backend.internal resumed=false client= path=/post" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
}

func TestTLSBackendRefused(t *testing.T) {
	b := newHTTPSBackend(t, false)
	for name, tweak := range map[string]func(*config.Config){
		"system CAs":       func(c *config.Config) { c.BackendTLS.CAFile = "" },
		"wrong serverName": func(c *config.Config) { c.BackendTLS.ServerName = "other.internal" },
	} {
		t.Run(name, func(t *testing.T) {
			srv := httpsProxy(t, b, tweak)
			// A failed handshake is a failed connect: 502, or 503 once
			// the only backend is held out after it.
			if resp, body := dialProxy(t, srv.Addr().String()).get("/"); resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%d %q, want 502 or 503", resp.StatusCode, body)
			}
			var s stats.Snapshot
			srv.Stats(&s)
			if s.Errors[stats.ErrConnect] == 0 {
				t.Errorf("no connect error counted: %v", s.Errors)
			}
		})
	}
	// insecureSkipVerify accepts the certificate anyway (no SNI: the
	// URL's host is an IP address).
	srv := httpsProxy(t, b, func(c *config.Config) {
		c.BackendTLS = config.BackendTLS{InsecureSkipVerify: true}
	})
	if resp, body := dialProxy(t, srv.Addr().String()).get("/"); resp.StatusCode != 200 || body != "sni= resumed=false client= path=/" {
		t.Errorf("insecureSkipVerify: %d %q", resp.StatusCode, body)
	}
}

func TestTLSBackendClientCert(t *testing.T) {
	b := newHTTPSBackend(t, true)
	dir := t.TempDir()
	cf, kf := b.clients.Issue(t, testcert.ECDSA, true, "connx").Write(t, dir, "client")
	// Pools inherit tls key by key: the pool adds the client pair.
	srv := httpsProxy(t, b, func(c *config.Config) {
		c.Backends = nil
		p := c.NewPool("api")
		p.Backends = []config.Backend{{URL: "https://" + b.addr, Weight: 1}}
		p.TLS.CertFile, p.TLS.KeyFile = cf, kf
		c.Pools = []config.Pool{p}
		c.Routes = []config.Route{{Match: config.RouteMatch{PathPrefix: "/"}, Pool: "api"}}
	})
	if resp, body := dialProxy(t, srv.Addr().String()).get("/m"); resp.StatusCode != 200 || body != "sni=backend.internal resumed=false client=connx path=/m" {
		t.Errorf("with a client certificate: %d %q", resp.StatusCode, body)
	}
}

func TestTLSBackendHealthCheck(t *testing.T) {
	b := newHTTPSBackend(t, false)
	for _, c := range []struct {
		name string
		ca   string
		ok   bool
	}{{"private CA", b.caFile, true}, {"system CAs", "", false}} {
		t.Run(c.name, func(t *testing.T) {
			srv := httpsProxy(t, b, func(cfg *config.Config) {
				cfg.BackendTLS.CAFile = c.ca
				cfg.HealthCheck.Enabled = true
				cfg.HealthCheck.Path = "/health"
				cfg.HealthCheck.UnhealthyThreshold = 1
				cfg.HealthCheck.Jitter = 0
			})
			var be stats.Backend
			waitFor(t, "a finished health check", func() bool {
				var s stats.Snapshot
				srv.Stats(&s)
				be = s.Backends[0]
				return be.Health.ChecksOK+be.Health.ChecksFailed > 0
			})
			if c.ok && (be.Health.ChecksOK == 0 || !be.Health.Healthy) {
				t.Errorf("health over HTTPS with the private CA: %+v", be.Health)
			}
			if !c.ok && (be.Health.ChecksFailed == 0 || !strings.Contains(be.Health.LastError, "certificate")) {
				t.Errorf("health over HTTPS without the CA: %+v", be.Health)
			}
		})
	}
}

// streamSize is the response of /stream: more than the loopback socket
// buffers and the connection buffer hold, so the upstream must park.
const streamSize = 32 << 20

// TestTLSBackendParked: a client that does not read makes the proxy park
// the https:// upstream (with ciphertext it had read and not yet
// decrypted); once the client reads, the whole stream arrives intact.
func TestTLSBackendParked(t *testing.T) {
	b := newHTTPSBackend(t, false)
	srv := httpsProxy(t, b, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 10
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, srv.Addr().String())
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
	rc.send("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the upstream parked", func() bool { return srv.detached.Load() > 0 })
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "response head")
	pc := newPatternChecker()
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "body")
	pc.check(t, streamSize)
}
