package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/discovery"
)

// TestDiscoveryDefaults: a dns section gets every default for the keys it
// does not give, at the top level and in a pool; a null discovery is
// none.
func TestDiscoveryDefaults(t *testing.T) {
	c := mustParse(t, `
discovery:
  dns:
    name: api.service.consul
    port: 8080
pools:
  web:
    discovery: {dns: {name: _http._tcp.web.default.svc.cluster.local, type: SRV, resolver: "127.0.0.1:8600", minTTL: 1, maxTTL: 10m, emptyGrace: 0, maxMembers: 50, timeout: 500ms, startEmpty: true}}
  static:
    backends: ["http://10.0.0.1"]
    discovery:
`)
	if len(c.Backends) != 0 {
		t.Errorf("backends %v, want none", c.Backends)
	}
	want := NewDNSDiscovery("api.service.consul")
	want.Port = 8080
	if c.Discovery == nil || !reflect.DeepEqual(c.Discovery.DNS, want) {
		t.Fatalf("top-level discovery %+v, want %+v", c.Discovery, want)
	}
	if p := c.DefaultPool(); p.Discovery != c.Discovery {
		t.Error("DefaultPool does not carry the top-level discovery")
	}
	got := c.Pools[0].Discovery.DNS
	wantPool := &DNSDiscovery{Name: "_http._tcp.web.default.svc.cluster.local", Type: "SRV", Resolver: "127.0.0.1:8600",
		MinTTL: time.Second, MaxTTL: 10 * time.Minute, Timeout: 500 * time.Millisecond, EmptyGrace: 0, MaxMembers: 50, StartEmpty: true}
	if !reflect.DeepEqual(got, wantPool) {
		t.Errorf("pool discovery %+v, want %+v", got, wantPool)
	}
	if c.Pools[1].Discovery != nil {
		t.Errorf("discovery: (null) gave %+v, want none", c.Pools[1].Discovery)
	}

	// The defaults are the discovery package's, and WatcherConfig gives
	// every field.
	wc := want.WatcherConfig()
	dc := discovery.DefaultConfig("api.service.consul")
	dc.Port = 8080
	if wc != dc {
		t.Errorf("WatcherConfig %+v, want %+v", wc, dc)
	}
	if err := wc.Check(); err != nil {
		t.Error(err)
	}
	if wc := got.WatcherConfig(); wc.Resolver != "127.0.0.1:8600" || wc.Type != discovery.TypeSRV || wc.MaxMembers != 50 ||
		wc.MinTTL != time.Second || wc.MaxTTL != 10*time.Minute || wc.Timeout != 500*time.Millisecond || wc.EmptyGrace != 0 {
		t.Errorf("WatcherConfig %+v", wc)
	}
}

// TestDiscoveryRoutes: with top-level discovery and no backends, the
// default pool exists for routes.
func TestDiscoveryRoutes(t *testing.T) {
	mustParse(t, `
discovery: {dns: {name: api.test, port: 80}}
routes:
  - {match: {pathPrefix: /}, pool: default}
`)
	mustParse(t, `
pools:
  api: {discovery: {dns: {name: api.test, port: 80}}}
routes:
  - {match: {pathPrefix: /api/}, pool: api}
`)
}

// TestDiscoveryErrors: each problem is reported at its key, with its line
// and column.
func TestDiscoveryErrors(t *testing.T) {
	src := `discovery:
  dns: {name: "api.test", type: SRV, port: 8080}
backends: ["http://a"]
pools:
  api:
    backends: ["http://b"]
    discovery: {dns: {name: api.test, port: 80}}
  web:
    discovery: {}
  v6:
    discovery:
      dns:
        name: "v6.test"
        type: AAAA
        resolver: "ns.example"
        minTTL: 10s
        maxTTL: 5s
        mintTTL: 1
`
	_, err := Parse([]byte(src), "d.yaml")
	var got []string
	for _, e := range configErrors(t, err) {
		got = append(got, e.Error())
	}
	want := []string{
		`d.yaml:1:1: discovery: cannot be used with backends: a pool takes its members from a fixed list or from DNS, not both`,
		`d.yaml:2:38: discovery.dns.port: must not be set with type SRV: each record carries its port`,
		`d.yaml:7:5: pools.api.discovery: cannot be used with backends: a pool takes its members from a fixed list or from DNS, not both`,
		`d.yaml:9:5: pools.web.discovery.dns: is required: it is the only discovery source`,
		`d.yaml:12:7: pools.v6.discovery.dns.port: is required with type AAAA: the records carry no port`,
		`d.yaml:15:9: pools.v6.discovery.dns.resolver: must be an IP address or "ip:port", e.g. "127.0.0.1:8600", got "ns.example"`,
		`d.yaml:17:9: pools.v6.discovery.dns.maxTTL: must be between minTTL (10s) and 24h, got 5s`,
		`d.yaml:18:9: pools.v6.discovery.dns.mintTTL: unknown key (did you mean "minTTL"?)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDocumentedDiscovery: every YAML example of docs/discovery.md loads.
func TestDocumentedDiscovery(t *testing.T) {
	doc, err := os.ReadFile("../../docs/discovery.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rest := string(doc); ; {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			break
		}
		example, tail, _ := strings.Cut(after, "```")
		rest = tail
		n++
		c, err := Parse([]byte(example), "discovery.md")
		if err != nil {
			t.Errorf("example %d:\n%s\n%v", n, example, err)
			continue
		}
		if c.Discovery == nil && len(c.Pools) == 0 {
			t.Errorf("example %d has no discovery", n)
		}
	}
	if n < 3 {
		t.Errorf("found %d YAML examples in docs/discovery.md", n)
	}
}
