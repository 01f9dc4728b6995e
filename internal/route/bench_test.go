package route

import (
	"fmt"
	"testing"

	"github.com/connx/connx/internal/http1"
)

// benchTable compiles hosts exact hosts with two prefixes each, 20
// wildcard routes and 20 routes without a host (1,040 routes for 500
// hosts).
func benchTable(tb testing.TB, hosts int) *Table {
	var routes []Route
	for h := range hosts {
		host := fmt.Sprintf("host-%d.example.com", h)
		routes = append(routes,
			Route{Name: host + "-svc", Match: Match{Host: host, PathPrefix: "/svc/v1"}},
			Route{Name: host + "-static", Match: Match{Host: host, PathPrefix: "/static/"}})
	}
	for w := range 10 {
		routes = append(routes,
			Route{Match: Match{Host: fmt.Sprintf("*.tenant-%d.example.net", w)}},
			Route{Match: Match{Host: fmt.Sprintf("*.tenant-%d.example.net", w), PathPrefix: "/admin", Methods: []string{"GET", "POST"}}})
	}
	for c := range 10 {
		routes = append(routes,
			Route{Match: Match{PathPrefix: fmt.Sprintf("/common-%d", c)}},
			Route{Match: Match{Path: fmt.Sprintf("/health-%d", c), Headers: []HeaderMatch{{Name: "X-Probe", Present: true}}}})
	}
	return mustCompile(tb, routes)
}

type benchRequest struct {
	name               string
	host, path, method []byte
	headers            []http1.Header
}

func benchRequests() []benchRequest {
	hs := []http1.Header{
		{Name: []byte("User-Agent"), Value: []byte("curl/8.5.0")},
		{Name: []byte("Accept"), Value: []byte("*/*")},
		{Name: []byte("X-Probe"), Value: []byte("1")},
	}
	mk := func(name, host, path string) benchRequest {
		return benchRequest{name, []byte(host), []byte(path), []byte("GET"), hs}
	}
	return []benchRequest{
		mk("exact host prefix", "host-123.example.com", "/svc/v1/users/42"),
		mk("case and port", "Host-321.EXAMPLE.com:8080", "/static/css/app.css"),
		mk("deep path", "host-9.example.com", "/svc/v1/a/b/c/d/e/f/g/h/i/j/k/l"),
		mk("exact host falls back", "host-5.example.com", "/common-3/x"),
		mk("wildcard", "a.tenant-7.example.net", "/admin/users"),
		mk("no host route, exact path", "unknown.org", "/health-4"),
		mk("no route", "unknown.org", "/nothing/here/at/all"),
	}
}

// BenchmarkLookup looks up requests of several kinds in a table of 1,040
// routes (500 exact hosts × 2 prefixes, 20 wildcard, 20 without a host).
func BenchmarkLookup(b *testing.B) {
	tab := benchTable(b, 500)
	for _, r := range benchRequests() {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab.Lookup(r.host, r.path, r.method, r.headers)
			}
		})
	}
	// Every host in turn, so that the maps are not all in cache.
	hosts := make([][]byte, 500)
	for h := range hosts {
		hosts[h] = fmt.Appendf(nil, "host-%d.example.com", (h*7919)%500)
	}
	path, method := []byte("/svc/v1/users/42"), []byte("GET")
	b.Run("rotating hosts", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if tab.Lookup(hosts[i], path, method, nil) < 0 {
				b.Fatal("no route")
			}
			if i++; i == len(hosts) {
				i = 0
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, target string }{
		{"normal", "/api/v1/users/12345/orders?expand=items&limit=10"},
		{"rewritten", "/api//v1/./users/%7e12345/../12345/orders?expand=items"},
	} {
		target := []byte(bc.target)
		dst := make([]byte, 0, 3*len(target))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(target)))
			for b.Loop() {
				Normalize(dst, target)
			}
		})
	}
}
