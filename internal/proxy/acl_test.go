package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// TestAccessLists: server.allow/deny refuse a client at accept with 403
// and close; a route's allow/deny refuse its requests with 403 and keep
// the connection; both are counted.
func TestAccessLists(t *testing.T) {
	be := namedEcho(t, "a")
	cases := []struct {
		name, server string
	}{
		{"deny wins", "allow: [\"127.0.0.0/8\"], deny: [\"127.0.0.1\"]"},
		{"not in allow", "allow: [\"10.0.0.0/8\", \"::1\"]"},
		{"mapped prefix", "deny: [\"::ffff:127.0.0.0/104\"]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := serverConfig(t, c.server, fmt.Sprintf("backends: [\"http://%s\"]\n", be))
			srv := startProxy(t, cfg)
			rc := dialProxy(t, srv.Addr().String())
			rc.expectStatusAndClose(http.MethodGet, http.StatusForbidden)
			if snap := settledStats(t, srv, 0); snap.Denied != 1 {
				t.Errorf("denied %d, want 1", snap.Denied)
			}
		})
	}

	cfg := serverConfig(t, `allow: ["127.0.0.1"]`, fmt.Sprintf(`
backends: ["http://%s"]
routes:
  - {match: {pathPrefix: "/admin/"}, pool: default, allow: ["10.8.0.0/16"]}
  - {match: {pathPrefix: "/metrics-ish/"}, pool: default, allow: ["127.0.0.0/8"], deny: ["127.0.0.2"]}
  - {match: {path: "/gone"}, respond: {status: 410}, deny: ["::/0", "0.0.0.0/0"]}
`, be))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())
	for _, c := range []struct {
		path string
		code int
	}{{"/admin/x", 403}, {"/metrics-ish/x", 200}, {"/gone", 403}, {"/other", 200}, {"/admin/", 403}} {
		resp, body, _ := rc.do("GET " + c.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != c.code || resp.Close {
			t.Errorf("%s: %d close=%v %q, want %d and the connection kept", c.path, resp.StatusCode, resp.Close, body, c.code)
		}
	}
	if snap := settledStats(t, srv, 5); snap.Denied != 3 {
		t.Errorf("denied %d, want 3", snap.Denied)
	}
}

// TestProxyProtocolNotServed: PROXY protocol settings validate but are
// refused by New and Reload until the data plane serves them.
func TestProxyProtocolNotServed(t *testing.T) {
	be := namedEcho(t, "a")
	cfg := serverConfig(t, `proxyProtocol: {enabled: true, trustedSources: ["10.0.0.0/8"]}`, fmt.Sprintf("backends: [\"http://%s\"]\n", be))
	if _, err := New(cfg, testLogger(t)); !errors.Is(err, ErrNotServed) {
		t.Fatalf("New: %v, want ErrNotServed", err)
	}
	srv := startProxy(t, routedConfig(t, fmt.Sprintf("backends: [\"http://%s\"]\n", be)))
	bad := routedConfig(t, fmt.Sprintf("backends: [\"http://%s\"]\npools:\n  p: {backends: [\"http://%s\"], upstream: {proxyProtocol: v2}}\n", be, be))
	if err := srv.Reload(bad); !errors.Is(err, ErrNotServed) || err.Error() != "pools.p.upstream.proxyProtocol is "+ErrNotServed.Error() {
		t.Fatalf("Reload: %v", err)
	}
	rc := dialProxy(t, srv.Addr().String())
	if resp, _, s := rc.do("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || s.Name != "a" {
		t.Fatalf("after the refused reload: %d from %q", resp.StatusCode, s.Name)
	}
}
