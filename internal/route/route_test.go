package route

import (
	"strings"
	"sync"
	"testing"

	"github.com/connx/connx/internal/http1"
)

// lookupCase is one request and the route index Lookup must return.
type lookupCase struct {
	name string
	req  req
	want int
}

func runLookups(t *testing.T, tab *Table, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.req.lookup(tab); got != c.want {
				t.Errorf("Lookup(%+v) = %d, want %d", c.req, got, c.want)
			}
		})
	}
}

// TestPrecedence covers every pair of host tier × path tier: each
// request is matched by several routes and the best one must win, whatever
// the file order.
func TestPrecedence(t *testing.T) {
	// Routes in an order that puts the weaker ones first, so that file
	// order alone would pick wrongly.
	routes := routesOf(
		Match{},                                                                    // 0: catch-all
		Match{PathPrefix: "/"},                                                     // 1: any host, prefix /
		Match{PathPrefix: "/a"},                                                    // 2: any host, prefix /a
		Match{PathPrefix: "/a/b"},                                                  // 3: any host, prefix /a/b
		Match{Path: "/a/b/c"},                                                      // 4: any host, exact
		Match{Host: "*.example.com"},                                               // 5: wildcard, no path
		Match{Host: "*.example.com", PathPrefix: "/a"},                             // 6
		Match{Host: "*.example.com", Path: "/a/b"},                                 // 7
		Match{Host: "www.example.com"},                                             // 8: exact host, no path
		Match{Host: "www.example.com", PathPrefix: "/a"},                           // 9
		Match{Host: "www.example.com", PathPrefix: "/a/b/"},                        // 10
		Match{Host: "www.example.com", Path: "/a/b/c"},                             // 11
		Match{Host: "www.example.com", Path: "/x", Methods: []string{"POST"}},      // 12
		Match{Host: "*.example.com", Path: "/x"},                                   // 13
		Match{Path: "/y"},                                                          // 14
		Match{Host: "www.example.com", PathPrefix: "/y", Methods: []string{"PUT"}}, // 15
		Match{Host: "*.example.com", Path: "/y", Methods: []string{"PUT", "POST"}}, // 16
	)
	tab := mustCompile(t, routes)
	runLookups(t, tab, []lookupCase{
		{"exact host, exact path", req{host: "www.example.com", path: "/a/b/c"}, 11},
		{"exact host, longest prefix", req{host: "www.example.com", path: "/a/b/d"}, 10},
		{"exact host, shorter prefix", req{host: "www.example.com", path: "/a/x"}, 9},
		{"exact host, no path", req{host: "www.example.com", path: "/z"}, 8},
		{"wildcard host, exact path", req{host: "api.example.com", path: "/a/b"}, 7},
		{"wildcard host, prefix", req{host: "api.example.com", path: "/a/b/c"}, 6},
		{"wildcard host, no path", req{host: "api.example.com", path: "/z"}, 5},
		{"no host, exact path", req{host: "other.org", path: "/a/b/c"}, 4},
		{"no host, longest prefix", req{host: "other.org", path: "/a/b/x"}, 3},
		{"no host, shorter prefix", req{host: "other.org", path: "/a"}, 2},
		{"no host, root prefix", req{host: "other.org", path: "/z"}, 1},
		{"no host, no path", req{host: "other.org", path: "*"}, 0},
		{"no Host at all", req{path: "/a/b/c"}, 4},
		// The host tier comes first: a host-only route of the exact host
		// beats an exact path of the wildcard or of no host.
		{"exact path fails on method, exact host no path", req{host: "www.example.com", path: "/x"}, 8},
		{"exact host exact path with method", req{host: "www.example.com", path: "/x", method: "POST"}, 12},
		{"exact host prefix fails on method, exact host no path", req{host: "www.example.com", path: "/y", method: "POST"}, 8},
		// A host with no exact routes at all: wildcard exact path.
		{"wildcard exact path", req{host: "mail.example.com", path: "/x"}, 13},
		{"wildcard method", req{host: "mail.example.com", path: "/y", method: "POST"}, 16},
		{"wildcard method fails, wildcard no path", req{host: "mail.example.com", path: "/y", method: "DELETE"}, 5},
		{"exact host prefix needs PUT", req{host: "www.example.com", path: "/y/1", method: "PUT"}, 15},
	})
}

// TestFallbackAcrossTiers shows the fall-back that nginx's server blocks
// do not have: when no route of the exact host matches, wildcard and
// host-less routes are considered.
func TestFallbackAcrossTiers(t *testing.T) {
	tab := mustCompile(t, routesOf(
		Match{PathPrefix: "/static"},                                              // 0
		Match{Host: "*.example.com", PathPrefix: "/admin"},                        // 1
		Match{Host: "api.example.com", PathPrefix: "/v1"},                         // 2
		Match{Host: "api.example.com", Path: "/health", Methods: []string{"GET"}}, // 3
	))
	runLookups(t, tab, []lookupCase{
		{"exact host route", req{host: "api.example.com", path: "/v1/users"}, 2},
		{"exact host miss to wildcard", req{host: "api.example.com", path: "/admin/x"}, 1},
		{"exact host miss to no host", req{host: "api.example.com", path: "/static/app.js"}, 0},
		{"method miss to nothing", req{host: "api.example.com", path: "/health", method: "POST"}, -1},
		{"no route at all", req{host: "api.example.com", path: "/"}, -1},
	})
}

func TestFileOrder(t *testing.T) {
	tab := mustCompile(t, routesOf(
		Match{PathPrefix: "/a", Methods: []string{"GET"}},                            // 0
		Match{PathPrefix: "/a/", Headers: []HeaderMatch{{Name: "X", Present: true}}}, // 1: same prefix
		Match{PathPrefix: "/a"},                             // 2
		Match{Host: "h", Methods: []string{"POST"}},         // 3
		Match{Host: "H.", Methods: []string{"POST", "PUT"}}, // 4
	))
	runLookups(t, tab, []lookupCase{
		{"first of equals", req{path: "/a", headers: []string{"X: 1"}}, 0},
		{"second when first fails", req{path: "/a/b", method: "PUT", headers: []string{"X: 1"}}, 1},
		{"third", req{path: "/a/b", method: "PUT"}, 2},
		{"earlier host route", req{host: "h", path: "/q", method: "POST"}, 3},
		{"later host route", req{host: "h", path: "/q", method: "PUT"}, 4},
	})
}

func TestWildcard(t *testing.T) {
	tab := mustCompile(t, routesOf(
		Match{Host: "*.example.com"},   // 0
		Match{Host: "*.b.example.com"}, // 1
		Match{Host: "*.com"},           // 2
	))
	runLookups(t, tab, []lookupCase{
		{"one label", req{host: "a.example.com", path: "/"}, 0},
		{"upper case and port", req{host: "A.EXAMPLE.COM:8443", path: "/"}, 0},
		{"trailing dot", req{host: "a.example.com.", path: "/"}, 0},
		{"hyphen label", req{host: "my-app.example.com", path: "/"}, 0},
		{"two labels take the deeper wildcard", req{host: "a.b.example.com", path: "/"}, 1},
		{"apex matches the one-label wildcard above it", req{host: "example.com", path: "/"}, 2},
		{"three labels deep", req{host: "a.b.c.example.com", path: "/"}, -1},
		{"empty first label", req{host: ".example.com", path: "/"}, -1},
		{"bare com", req{host: "com", path: "/"}, -1},
		{"suffix without dot", req{host: "aexample.com", path: "/"}, 2},
		{"IPv6", req{host: "[::1]", path: "/"}, -1},
	})
}

func TestHostNormalisation(t *testing.T) {
	tab := mustCompile(t, routesOf(
		Match{Host: "www.Example.com"}, // 0
		Match{Host: "[2001:db8::1]"},   // 1
		Match{Host: "127.0.0.1"},       // 2
		Match{Host: "dot.example."},    // 3
	))
	long := strings.Repeat("a.", 130) + "example.com"
	runLookups(t, tab, []lookupCase{
		{"exact", req{host: "www.example.com"}, 0},
		{"mixed case", req{host: "WWW.eXample.COM"}, 0},
		{"port", req{host: "www.example.com:8080"}, 0},
		{"empty port", req{host: "www.example.com:"}, 0},
		{"trailing dot", req{host: "www.example.com."}, 0},
		{"trailing dot and port", req{host: "www.example.com.:80"}, 0},
		{"two trailing dots", req{host: "www.example.com.."}, -1},
		{"other host", req{host: "example.com"}, -1},
		{"IPv6", req{host: "[2001:db8::1]"}, 1},
		{"IPv6 port", req{host: "[2001:db8::1]:443"}, 1},
		{"IPv6 upper case", req{host: "[2001:DB8::1]"}, 1},
		{"IPv6 other spelling is not recognised", req{host: "[2001:db8:0::1]"}, -1},
		{"IPv4", req{host: "127.0.0.1:9000"}, 2},
		{"route written with trailing dot", req{host: "dot.example"}, 3},
		{"empty", req{host: ""}, -1},
		{"too long", req{host: long}, -1},
	})
}

func TestPathPrefixSegments(t *testing.T) {
	tab := mustCompile(t, routesOf(
		Match{PathPrefix: "/api"},            // 0
		Match{PathPrefix: "/static/"},        // 1
		Match{PathPrefix: "/a/b"},            // 2
		Match{PathPrefix: "/v1.2"},           // 3
		Match{Host: "root", PathPrefix: "/"}, // 4
		Match{Host: "exact", Path: "/api/"},  // 5
	))
	runLookups(t, tab, []lookupCase{
		{"prefix itself", req{path: "/api"}, 0},
		{"prefix with slash", req{path: "/api/"}, 0},
		{"below", req{path: "/api/x/y"}, 0},
		{"not a segment boundary", req{path: "/apix"}, -1},
		{"not a segment boundary with more", req{path: "/api.v2/x"}, -1},
		{"trailing-slash prefix matches without slash", req{path: "/static"}, 1},
		{"trailing-slash prefix below", req{path: "/static/app.js"}, 1},
		{"trailing-slash prefix no boundary", req{path: "/staticx"}, -1},
		{"two segments", req{path: "/a/b/c"}, 2},
		{"first segment only", req{path: "/a"}, -1},
		{"dot in prefix", req{path: "/v1.2/x"}, 3},
		{"dot in prefix no boundary", req{path: "/v1.23"}, -1},
		{"root prefix", req{host: "root", path: "/anything/at/all"}, 4},
		{"root prefix root", req{host: "root", path: "/"}, 4},
		{"root prefix does not match *", req{host: "root", path: "*"}, -1},
		{"exact path keeps its slash", req{host: "exact", path: "/api/"}, 5},
		{"exact path without slash", req{host: "exact", path: "/api"}, 0},
		{"empty path", req{path: ""}, -1},
	})
}

func TestMethods(t *testing.T) {
	tab := mustCompile(t, routesOf(
		Match{Path: "/m", Methods: []string{"GET", "HEAD"}}, // 0
		Match{Path: "/m", Methods: []string{"PURGE"}},       // 1
		Match{Path: "/n", Methods: []string{"GET"}},         // 2
	))
	runLookups(t, tab, []lookupCase{
		{"GET", req{path: "/m", method: "GET"}, 0},
		{"HEAD", req{path: "/m", method: "HEAD"}, 0},
		{"extension method", req{path: "/m", method: "PURGE"}, 1},
		{"case-sensitive", req{path: "/m", method: "get"}, -1},
		{"other", req{path: "/m", method: "POST"}, -1},
		{"GET does not imply HEAD", req{path: "/n", method: "HEAD"}, -1},
	})
}

func TestHeaders(t *testing.T) {
	tab := mustCompile(t, routesOf(
		Match{Path: "/h", Headers: []HeaderMatch{{Name: "X-Canary", Value: "1"}, {Name: "X-Team", Present: true}}}, // 0
		Match{Path: "/h", Headers: []HeaderMatch{{Name: "x-canary", Value: "1"}}},                                  // 1
		Match{Path: "/h", Headers: []HeaderMatch{{Name: "X-Canary", Present: true}}},                               // 2
		Match{Path: "/e", Headers: []HeaderMatch{{Name: "X-Empty", Value: ""}}},                                    // 3
		Match{Path: "/r", Headers: []HeaderMatch{{Name: "X-A", Value: "1"}, {Name: "X-A", Value: "2"}}},            // 4
	))
	runLookups(t, tab, []lookupCase{
		{"both conditions", req{path: "/h", headers: []string{"X-Team: x", "X-Canary: 1"}}, 0},
		{"value, name case-insensitive", req{path: "/h", headers: []string{"X-CANARY: 1"}}, 1},
		{"value is case-sensitive", req{path: "/h", headers: []string{"X-Canary: True"}}, 2},
		{"presence with any value", req{path: "/h", headers: []string{"x-canary: 0"}}, 2},
		{"presence with empty value", req{path: "/h", headers: []string{"X-Canary:"}}, 2},
		{"repeated field, second matches", req{path: "/h", headers: []string{"X-Canary: 0", "X-Canary: 1"}}, 1},
		{"list value is not split", req{path: "/h", headers: []string{"X-Canary: 1, 2"}}, 2},
		{"absent", req{path: "/h", headers: []string{"X-Other: 1"}}, -1},
		{"empty value", req{path: "/e", headers: []string{"X-Empty:"}}, 3},
		{"empty value needs the field", req{path: "/e"}, -1},
		{"non-empty value is not empty", req{path: "/e", headers: []string{"X-Empty: a"}}, -1},
		{"two values need two fields", req{path: "/r", headers: []string{"X-A: 1", "X-A: 2"}}, 4},
		{"one of two", req{path: "/r", headers: []string{"X-A: 1"}}, -1},
	})
}

func TestNilAndEmptyTable(t *testing.T) {
	var nilTab *Table
	if got := nilTab.Lookup([]byte("h"), []byte("/"), []byte("GET"), nil); got != -1 {
		t.Errorf("nil Table: Lookup = %d", got)
	}
	empty := mustCompile(t, nil)
	if got := empty.Lookup([]byte("h"), []byte("/"), []byte("GET"), nil); got != -1 {
		t.Errorf("empty Table: Lookup = %d", got)
	}
}

// TestCompileCopies checks that the Table does not see later changes to
// the routes it was compiled from.
func TestCompileCopies(t *testing.T) {
	methods := []string{"GET"}
	hs := []HeaderMatch{{Name: "X", Value: "1"}}
	tab := mustCompile(t, routesOf(Match{Methods: methods, Headers: hs}))
	methods[0], hs[0].Value = "POST", "2"
	if got := (req{path: "/", method: "GET", headers: []string{"X: 1"}}).lookup(tab); got != 0 {
		t.Errorf("Lookup after changing the routes = %d, want 0", got)
	}
}

func TestLookupConcurrent(t *testing.T) {
	tab := benchTable(t, 50)
	reqs := benchRequests()
	want := make([]int, len(reqs))
	for i, r := range reqs {
		want[i] = tab.Lookup(r.host, r.path, r.method, r.headers)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				for i, r := range reqs {
					if got := tab.Lookup(r.host, r.path, r.method, r.headers); got != want[i] {
						t.Errorf("concurrent Lookup = %d, want %d", got, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestLookupAllocs(t *testing.T) {
	tab := benchTable(t, 500)
	for _, r := range benchRequests() {
		if n := testing.AllocsPerRun(100, func() {
			tab.Lookup(r.host, r.path, r.method, r.headers)
		}); n != 0 {
			t.Errorf("Lookup(%q, %q) allocates %.1f times", r.host, r.path, n)
		}
	}
	// A whole request: Normalize, then Lookup, on a reused buffer.
	target := []byte("/svc/v1//users/./42?x=1")
	host := []byte("Host-7.Example.com:8080")
	hs := []http1.Header{{Name: []byte("Accept"), Value: []byte("*/*")}}
	dst := make([]byte, 0, 3*len(target))
	if n := testing.AllocsPerRun(100, func() {
		path, _, err := Normalize(dst, target)
		if err != nil || tab.Lookup(host, path, []byte("GET"), hs) < 0 {
			t.Fatalf("no route for %q: %v", target, err)
		}
	}); n != 0 {
		t.Errorf("Normalize + Lookup allocates %.1f times", n)
	}
}
