package proxy

import (
	"os"
	"testing"

	"github.com/connx/connx/internal/config"
)

// TestTLSBackendRejectedReload: a reload that fails (here a later pool's
// tls caFile holds no certificate) changes nothing, the TLS settings of
// the backends of the pools built before the failure included: the
// default pool's backend, whose CA the rejected config replaced by one
// that does not verify it, is still reached with the settings in force.
func TestTLSBackendRejectedReload(t *testing.T) {
	a, other := newHTTPSBackend(t, false), newHTTPSBackend(t, false)
	bad := t.TempDir() + "/bad-ca.pem"
	pem, err := os.ReadFile(other.caFile)
	mustf(t, err, "CA file")
	mustf(t, os.WriteFile(bad, pem, 0o600), "CA file copy")
	mk := func(ca, poolCA string) *config.Config {
		return testConfig(t, nil, func(c *config.Config) {
			c.Backends = []config.Backend{{URL: "https://" + a.addr, Weight: 1}}
			c.BackendTLS = config.BackendTLS{CAFile: ca, ServerName: "backend.internal"}
			c.Upstream.Retries = 0
			c.Upstream.MaxIdlePerBackend = 0 // a handshake per request
			p := c.NewPool("api")
			p.Backends = []config.Backend{{URL: "https://" + other.addr, Weight: 1}}
			p.TLS.CAFile = poolCA
			c.Pools = []config.Pool{p}
		})
	}
	srv := startProxy(t, mk(a.caFile, other.caFile))
	addr := srv.Addr().String()
	if resp, _ := dialProxy(t, addr).get("/before"); resp.StatusCode != 200 {
		t.Fatalf("before the reload: %d", resp.StatusCode)
	}
	next := mk(other.caFile, bad) // validated
	mustf(t, os.WriteFile(bad, []byte("not a certificate\n"), 0o600), "bad CA file")
	if err := srv.Reload(next); err == nil {
		t.Fatal("a reload with a pool's caFile that holds no certificate was accepted")
	}
	if resp, body := dialProxy(t, addr).get("/after"); resp.StatusCode != 200 {
		t.Fatalf("after the rejected reload: %d %q (the rejected config's CA is in use)", resp.StatusCode, body)
	}
}
