package proxy

import (
	"fmt"
	"testing"

	"github.com/connx/connx/internal/testcert"
)

// Regression test from review rev2 (DNS discovery wiring).

// TestDiscoveryFailedReloadKeepsWatchers: Reload promises "on error
// nothing changes", but it commits the new configuration's discovery
// watchers before the steps that can still fail (reloadTLS here: adding
// server.tls takes a restart). The running configuration then keeps a pool
// with discovery whose watcher is gone, and the next rebuild (any other
// watcher's change) empties that pool: its requests get 503.
func TestDiscoveryFailedReloadKeepsWatchers(t *testing.T) {
	a, d, e := namedEcho(t, "a"), namedEcho(t, "d"), namedEcho(t, "e")
	webRR := func(addr string) string {
		return "_http._tcp.web.test. 1 IN SRV 0 10 " + portOf(addr) + " h.test."
	}
	z := startZone(t, webRR(d), "h.test. 1 IN A 127.0.0.1", "api.test. 1 IN A 127.0.0.1")
	routes := "routes:\n  - {match: {pathPrefix: \"/api/\"}, pool: api}\n"
	top := fmt.Sprintf("discovery:\n  dns: {name: \"_http._tcp.web.test\", type: SRV, resolver: %q, minTTL: 1s, maxTTL: 1s}\n", z.addr)
	running := top + fmt.Sprintf(`pools:
  api:
    discovery:
      dns: {name: "api.test", port: %s, resolver: %q, minTTL: 1s, maxTTL: 1s}
`, portOf(a), z.addr) + routes
	srv := startProxy(t, routedConfig(t, running))
	addr := srv.Addr().String()
	backendOf := func(path string) (int, string) {
		rc := dialProxy(t, addr)
		resp, _, s := rc.do("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		return resp.StatusCode, s.Name
	}
	if code, name := backendOf("/api/x"); code != 200 || name != "a" {
		t.Fatalf("api pool: %d from %q", code, name)
	}
	srv.mu.Lock()
	pw := srv.watches["api"]
	srv.mu.Unlock()

	// A reload that drops the api pool's discovery and adds server.tls:
	// refused (the TLS listener needs a restart).
	ca := testcert.NewCA(t)
	cf, kf := ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, t.TempDir(), "example.com")
	tlsSection := fmt.Sprintf("tls: {port: 0, certificates: [{certFile: %q, keyFile: %q}]}", cf, kf)
	refused := top + fmt.Sprintf("pools:\n  api:\n    backends: [\"http://%s\"]\n", a) + routes
	if err := srv.Reload(serverConfig(t, tlsSection, refused)); err == nil {
		t.Fatal("a reload adding server.tls succeeded")
	} else {
		t.Logf("reload refused as expected: %v", err)
	}
	srv.mu.Lock()
	kept := srv.watches["api"] == pw
	srv.mu.Unlock()
	if !kept {
		t.Errorf("a refused reload replaced or removed the api pool's DNS watcher")
	}

	// Another pool's members change: the rebuild must leave api alone.
	z.set(t, webRR(e), "h.test. 1 IN A 127.0.0.1", "api.test. 1 IN A 127.0.0.1")
	waitFor(t, "the default pool to follow its records", func() bool {
		code, name := backendOf("/")
		return code == 200 && name == "e"
	})
	if code, name := backendOf("/api/x"); code != 200 || name != "a" {
		t.Errorf("api pool after the refused reload and a rebuild: %d from %q, want 200 from a", code, name)
	}
}
