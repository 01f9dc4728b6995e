package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestProxyProtocolAndAccessKeys checks that the edge keys (issue 22)
// decode, and that their accessors give what the proxy will use.
func TestProxyProtocolAndAccessKeys(t *testing.T) {
	c := mustParse(t, `
server:
  proxyProtocol:
    enabled: true
    trustedSources: ["10.0.0.0/8", "2001:db8::1"]
    timeout: 2s
  allow: ["192.168.0.0/16", "::ffff:172.16.0.0/108"]
  deny: [192.168.66.6]
upstream:
  proxyProtocol: v2
pools:
  inherits: {backends: ["http://a"]}
  v1: {backends: ["http://b"], upstream: {proxyProtocol: v1}}
  off: {backends: ["http://c"], upstream: {proxyProtocol: "", retries: 2}}
  nulled: {backends: ["http://d"], upstream: {proxyProtocol: ~}}
routes:
  - {match: {pathPrefix: /admin}, pool: v1, allow: ["10.8.0.0/16"], deny: ["10.8.0.1"]}
  - {match: {pathPrefix: /}, respond: {status: 204}, deny: ["::/0"]}
`+oneBackend)
	pp := c.Server.ProxyProtocol
	if !pp.Enabled || pp.Timeout != 2*time.Second || len(pp.TrustedSources) != 2 {
		t.Fatalf("server.proxyProtocol = %+v", pp)
	}
	trusted := pp.Trusted()
	for a, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "2001:db8::1": true, "2001:db8::2": false, "192.168.0.1": false} {
		if got := trusted.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("Trusted().Contains(%s) = %v, want %v", a, got, want)
		}
	}
	server := c.Server.AccessPolicy()
	for a, want := range map[string]bool{"192.168.1.1": true, "192.168.66.6": false, "172.16.5.5": true, "10.0.0.1": false, "2001:db8::1": false} {
		if got := server.Allowed(netip.MustParseAddr(a)); got != want {
			t.Errorf("server.AccessPolicy().Allowed(%s) = %v, want %v", a, got, want)
		}
	}
	if c.Upstream.ProxyProtocol != ProxyProtocolV2 {
		t.Errorf("upstream.proxyProtocol = %q", c.Upstream.ProxyProtocol)
	}
	want := map[string]string{"inherits": "v2", "v1": "v1", "off": "", "nulled": "v2"}
	for _, p := range c.Pools {
		if p.Upstream.ProxyProtocol != want[p.Name] {
			t.Errorf("pools.%s.upstream.proxyProtocol = %q, want %q", p.Name, p.Upstream.ProxyProtocol, want[p.Name])
		}
		if p.Name == "off" && (p.Upstream.Retries != 2 || p.Upstream.MaxIdlePerBackend != 256) {
			t.Errorf("pools.off.upstream = %+v", p.Upstream)
		}
	}
	admin := c.Routes[0].AccessPolicy()
	if !admin.Allowed(netip.MustParseAddr("10.8.1.1")) || admin.Allowed(netip.MustParseAddr("10.8.0.1")) || admin.Allowed(netip.MustParseAddr("10.9.0.1")) {
		t.Error("routes[0].AccessPolicy() is wrong")
	}
	rest := c.Routes[1].AccessPolicy()
	if !rest.Allowed(netip.MustParseAddr("203.0.113.1")) || rest.Allowed(netip.MustParseAddr("2001:db8::1")) {
		t.Error("routes[1].AccessPolicy() is wrong")
	}
	// Defaults: off, and nobody refused.
	d := mustParse(t, oneBackend)
	if pol := d.Server.AccessPolicy(); !pol.IsZero() || d.Server.ProxyProtocol.Enabled || d.Upstream.ProxyProtocol != "" {
		t.Errorf("defaults: %+v %+v", d.Server, d.Upstream)
	}
}

func TestProxyProtocolAndAccessErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // "key: message"
	}{
		{"enabled without sources", "server: {proxyProtocol: {enabled: true}}\n",
			[]string{"server.proxyProtocol.trustedSources: must list at least one CIDR or address when enabled is true: only these peers may send a PROXY header"}},
		{"bad source checked when disabled", "server: {proxyProtocol: {trustedSources: [10.0.0.0/33]}}\n",
			[]string{`server.proxyProtocol.trustedSources[0]: must be a CIDR or an IP address, got "10.0.0.0/33"`}},
		{"timeout", "server: {proxyProtocol: {timeout: -1s}}\n",
			[]string{"server.proxyProtocol.timeout: must be greater than 0, got -1s"}},
		{"timeout type", "server: {proxyProtocol: {timeout: soon}}\n",
			[]string{`server.proxyProtocol.timeout: expected a duration: seconds (e.g. 30 or 0.5) or a string like "500ms", "10s", "1m", got "soon"`}},
		{"unknown key", "server: {proxyProtocol: {enable: true}}\n",
			[]string{`server.proxyProtocol.enable: unknown key (did you mean "enabled"?)`}},
		{"server lists", "server: {allow: [a], deny: [\"::1\", \"1.2.3.4/40\"]}\n",
			[]string{`server.allow[0]: must be a CIDR or an IP address, got "a"`, `server.deny[1]: must be a CIDR or an IP address, got "1.2.3.4/40"`}},
		{"upstream", "upstream: {proxyProtocol: V2}\n",
			[]string{`upstream.proxyProtocol: must be "v1", "v2" or "" (none), got "V2"`}},
		{"pool upstream", "pools:\n  api: {backends: [\"http://a\"], upstream: {proxyProtocol: 2}}\n",
			[]string{`pools.api.upstream.proxyProtocol: must be "v1", "v2" or "" (none), got "2"`}},
		{"inherited once", "upstream: {proxyProtocol: v3}\npools:\n  api: {backends: [\"http://a\"]}\n",
			[]string{`upstream.proxyProtocol: must be "v1", "v2" or "" (none), got "v3"`}},
		{"route lists", "routes:\n  - {pool: default, allow: [\"10.0.0.0/8\", x], deny: [y]}\n",
			[]string{`routes[0].allow[1]: must be a CIDR or an IP address, got "x"`, `routes[0].deny[0]: must be a CIDR or an IP address, got "y"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src+oneBackend), "test.yaml")
			var got []string
			for _, e := range configErrors(t, err) {
				got = append(got, e.Key+": "+e.Msg)
				if e.Line == 0 {
					t.Errorf("%s: no line", e)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestPrefixKeysShareTheParser checks that metrics.allow and
// rateLimit.trustedProxies keep their behaviour through acl.ParsePrefix:
// host bits cleared, a bare address as a /32 or /128, a zone dropped.
func TestPrefixKeysShareTheParser(t *testing.T) {
	c := mustParse(t, `
metrics: {allow: ["10.1.2.3/8", "fe80::1%eth0"]}
rateLimit: {trustedProxies: ["192.0.2.7", "2001:db8::1/32"]}
`+oneBackend)
	got := append(c.Metrics.AllowPrefixes(), c.RateLimit.TrustedPrefixes()...)
	want := []string{"10.0.0.0/8", "fe80::1/128", "192.0.2.7/32", "2001:db8::/32"}
	if len(got) != len(want) {
		t.Fatalf("prefixes = %v", got)
	}
	for i := range want {
		if got[i] != netip.MustParsePrefix(want[i]) {
			t.Errorf("prefix %d = %v, want %s", i, got[i], want[i])
		}
	}
}
