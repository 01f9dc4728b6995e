package proxy

import (
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
