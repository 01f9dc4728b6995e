package metrics

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/connx/connx/internal/stats"
)

// TestDocumentedMetrics checks docs/metrics.md against the exporter: its
// tables list exactly the connx_* families exported, and its cardinality
// section gives the number of fixed series and of series per backend,
// pool (with and without DNS discovery) and route.
func TestDocumentedMetrics(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	_, all := scrape(t, New(Options{Version: "test", Source: fixed(sampleSnapshot())}))
	exported := map[string]bool{}
	for name := range all {
		if strings.HasPrefix(name, "connx_") {
			exported[name] = true
		}
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(connx_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for _, name := range slices.Sorted(maps.Keys(exported)) {
		if !documented[name] {
			t.Errorf("docs/metrics.md has no table row for %s", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(documented)) {
		if !exported[name] {
			t.Errorf("docs/metrics.md documents %s, which is not exported", name)
		}
	}

	// Fixed series: a process with no backends and no requests yet (the
	// default pool's series included).
	count := func(s stats.Snapshot) int {
		_, got := scrape(t, New(Options{Version: "test", Source: fixed(s)}))
		n := 0
		for name, series := range got {
			if strings.HasPrefix(name, "connx_") {
				n += len(series)
			}
		}
		return n
	}
	base := stats.Snapshot{Time: t0, Started: started}
	fixedSeries := count(base)
	one := base
	one.Backends = []stats.Backend{backend(backendA, "closed")}
	one.Durations = []stats.Histogram{hist(backendA, 0, nil)}
	perBackend := count(one) - fixedSeries
	pools := base
	pools.Pools = []stats.Pool{{Name: stats.DefaultPool}, {Name: "api"}}
	perPool := count(pools) - fixedSeries
	dns := pools
	dns.Pools = []stats.Pool{{Name: stats.DefaultPool}, {Name: "api", Discovery: stats.Discovery{Active: true, State: "ok"}}}
	perDiscovery := count(dns) - count(pools)
	route := base
	route.Routes = []stats.Route{{Name: "api", Action: "pool", Pool: "api"}}
	perRoute := count(route) - fixedSeries
	withTLS := base
	withTLS.TLS = &stats.TLS{Duration: hist("", 0, nil)}
	for _, v := range stats.TLSVersions {
		withTLS.TLS.Handshakes = append(withTLS.TLS.Handshakes, stats.TLSHandshakes{Version: v, Result: "full"}, stats.TLSHandshakes{Version: v, Result: "resumed"})
	}
	for _, r := range stats.TLSFailures {
		withTLS.TLS.Handshakes = append(withTLS.TLS.Handshakes, stats.TLSHandshakes{Version: "none", Result: r})
	}
	tlsSeries := count(withTLS) - fixedSeries
	withTLS.TLS.Certificates = []stats.Certificate{{CertFile: "a.pem", Names: []string{"a.example.com"}}}
	perCert := count(withTLS) - fixedSeries - tlsSeries
	for _, want := range []string{
		fmt.Sprintf("With `server.tls`: %d series", tlsSeries),
		fmt.Sprintf("Per certificate: %d series", perCert),
		fmt.Sprintf("Fixed: %d `connx_*` series", fixedSeries),
		fmt.Sprintf("Per backend: %d series", perBackend),
		fmt.Sprintf("Per pool: %d series", perPool),
		fmt.Sprintf("and %d more for a pool with DNS discovery", perDiscovery),
		fmt.Sprintf("Per route: %d series", perRoute),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/metrics.md lacks %q", want)
		}
	}
}
