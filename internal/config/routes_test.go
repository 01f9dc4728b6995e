package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/route"
)

// issueExample is the configuration of issue 15, which tests outside the
// project use as it is.
const issueExample = `backends:                          # default pool (seed)
  - url: "http://127.0.0.1:9000"
pools:
  api:
    backends:
      - url: "http://127.0.0.1:9001"
      - url: "http://127.0.0.1:9002"
        weight: 2
    loadBalancing: {algorithm: "least-connections"}
    healthCheck: {path: "/healthz", interval: 5, timeout: 2}
  static:
    backends:
      - url: "http://127.0.0.1:9003"
routes:
  - name: api                      # optional; used in metrics, logs, admin
    match:
      host: "api.example.com"      # exact; "*.example.com" = one label
      pathPrefix: "/v1/"
    pool: api
    stripPrefix: "/v1"             # /v1/users -> /users at the backend
  - match: {pathPrefix: "/static/"}
    pool: static
  - match: {path: "/old-home"}     # exact path
    redirect: {location: "https://www.example.com/", code: 301}
`

// issueExampleWant is what issueExample means.
func issueExampleWant() *Config {
	want := Default()
	want.Backends = []Backend{{URL: "http://127.0.0.1:9000", Weight: 1, Addr: "127.0.0.1:9000"}}
	api := want.NewPool("api")
	api.Backends = []Backend{
		{URL: "http://127.0.0.1:9001", Weight: 1, Addr: "127.0.0.1:9001"},
		{URL: "http://127.0.0.1:9002", Weight: 2, Addr: "127.0.0.1:9002"},
	}
	api.LoadBalancing.Algorithm = AlgorithmLeastConnections
	api.HealthCheck.Path = "/healthz"
	api.HealthCheck.Interval = 5 * time.Second
	api.HealthCheck.Timeout = 2 * time.Second
	static := want.NewPool("static")
	static.Backends = []Backend{{URL: "http://127.0.0.1:9003", Weight: 1, Addr: "127.0.0.1:9003"}}
	want.Pools = []Pool{api, static}
	want.Routes = []Route{
		{Name: "api", Match: RouteMatch{Host: "api.example.com", PathPrefix: "/v1/"}, Pool: "api", StripPrefix: "/v1", Timeouts: want.Timeouts},
		{Match: RouteMatch{PathPrefix: "/static/"}, Pool: "static", Timeouts: want.Timeouts},
		{Match: RouteMatch{Path: "/old-home"}, Redirect: &Redirect{Location: "https://www.example.com/", Code: 301}, Timeouts: want.Timeouts},
	}
	return want
}

func TestParseIssueExample(t *testing.T) {
	c := mustParse(t, issueExample)
	if want := issueExampleWant(); !reflect.DeepEqual(c, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", c, want)
	}
	wantTable := []route.Route{
		{Name: "api", Match: route.Match{Host: "api.example.com", PathPrefix: "/v1/"}},
		{Match: route.Match{PathPrefix: "/static/"}},
		{Match: route.Match{Path: "/old-home"}},
	}
	if got := c.RouteTable(); !reflect.DeepEqual(got, wantTable) {
		t.Fatalf("RouteTable() =\n%+v\nwant\n%+v", got, wantTable)
	}
	if _, err := route.Compile(c.RouteTable()); err != nil {
		t.Fatalf("Compile(RouteTable()): %v", err)
	}
}

// TestRoutingExampleFile checks that configs/examples/routing.yaml is the
// issue's example.
func TestRoutingExampleFile(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "configs", "examples", "routing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := issueExampleWant(); !reflect.DeepEqual(c, want) {
		t.Fatalf("configs/examples/routing.yaml =\n%+v\nwant the issue's example\n%+v", c, want)
	}
}

// TestPoolInheritance checks that a pool's sections start from the
// top-level ones wherever these are in the file, and that each key the
// pool gives overrides just that key.
func TestPoolInheritance(t *testing.T) {
	top := "healthCheck: {interval: 10, path: /up, unhealthyThreshold: 7}\n" +
		"circuitBreaker: {maxFailures: 9}\n" +
		"loadBalancing: {algorithm: p2c, retryBudget: 33}\n" +
		"outlierDetection: {consecutiveFailures: 11}\n" +
		"upstream: {retries: 3}\n"
	pools := "pools:\n" +
		"  a:\n" +
		"    backends: [\"http://127.0.0.1:1\", {url: \"http://127.0.0.1:2\", weight: 3}]\n" +
		"    healthCheck: {path: /healthz}\n" +
		"    upstream: {maxIdlePerBackend: 0}\n" +
		"  b:\n" +
		"    backends: [\"http://127.0.0.1:1\"]\n" +
		"    circuitBreaker: {enabled: false}\n" +
		"    loadBalancing: ~\n" +
		"    outlierDetection: {consecutiveFailures: ~, failurePercent: 20}\n"
	check := func(t *testing.T, c *Config) {
		t.Helper()
		if len(c.Pools) != 2 || c.Pools[0].Name != "a" || c.Pools[1].Name != "b" {
			t.Fatalf("pools = %+v, want a and b in file order", c.Pools)
		}
		a, b := &c.Pools[0], &c.Pools[1]
		wantA := c.NewPool("a")
		wantA.Backends = []Backend{{URL: "http://127.0.0.1:1", Weight: 1, Addr: "127.0.0.1:1"}, {URL: "http://127.0.0.1:2", Weight: 3, Addr: "127.0.0.1:2"}}
		wantA.HealthCheck.Path = "/healthz"
		wantA.Upstream.MaxIdlePerBackend = 0
		if !reflect.DeepEqual(*a, wantA) {
			t.Errorf("pool a =\n%+v\nwant\n%+v", *a, wantA)
		}
		wantB := c.NewPool("b")
		wantB.Backends = []Backend{{URL: "http://127.0.0.1:1", Weight: 1, Addr: "127.0.0.1:1"}}
		wantB.CircuitBreaker.Enabled = false
		wantB.Outlier.FailurePercent = 20
		if !reflect.DeepEqual(*b, wantB) {
			t.Errorf("pool b =\n%+v\nwant\n%+v", *b, wantB)
		}
		// The inherited values are the top level's, not the defaults.
		if a.HealthCheck.Interval != 10*time.Second || a.HealthCheck.UnhealthyThreshold != 7 || a.HealthCheck.Timeout != 5*time.Second ||
			a.LoadBalancing.Algorithm != "p2c" || b.LoadBalancing.RetryBudget != 33 || b.CircuitBreaker.MaxFailures != 9 ||
			b.Outlier.ConsecutiveFailures != 11 || a.Upstream.Retries != 3 {
			t.Errorf("pools did not inherit the top-level values: %+v", c.Pools)
		}
	}
	for _, order := range []struct{ name, src string }{
		{"top level first", top + oneBackend + pools},
		{"pools first", pools + oneBackend + top},
		{"top level split around pools", top[:strings.Index(top, "loadBalancing")] + pools + top[strings.Index(top, "loadBalancing"):] + oneBackend},
	} {
		t.Run(order.name, func(t *testing.T) { check(t, mustParse(t, order.src)) })
	}
}

// TestPoolHealthCheckTimeout checks the special default of
// healthCheck.timeout in a pool: the top-level timeout, or the pool's own
// interval when that is shorter and the pool sets it.
func TestPoolHealthCheckTimeout(t *testing.T) {
	tests := []struct {
		name, top, pool   string
		interval, timeout time.Duration
	}{
		{"pool interval shorter than the default timeout", "", "{interval: 2}", 2 * time.Second, 2 * time.Second},
		{"pool interval longer", "", "{interval: 1m}", time.Minute, 5 * time.Second},
		{"pool sets both", "", "{interval: 2, timeout: 3}", 2 * time.Second, 3 * time.Second},
		{"top-level timeout above the pool interval", "healthCheck: {timeout: 10}\n", "{interval: 4}", 4 * time.Second, 4 * time.Second},
		{"top-level timeout below the pool interval", "healthCheck: {timeout: 1}\n", "{interval: 4}", 4 * time.Second, time.Second},
		{"nothing in the pool keeps a top-level timeout above the interval", "healthCheck: {interval: 5, timeout: 10}\n", "~", 5 * time.Second, 10 * time.Second},
		{"nothing anywhere: min(5s, 2s) at the top level", "healthCheck: {interval: 2}\n", "{}", 2 * time.Second, 2 * time.Second},
		{"pool timeout only", "healthCheck: {interval: 2}\n", "{timeout: 7}", 2 * time.Second, 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "pools:\n  p:\n    backends: [\"http://a\"]\n    healthCheck: "+tt.pool+"\n"+tt.top+oneBackend)
			if h := c.Pools[0].HealthCheck; h.Interval != tt.interval || h.Timeout != tt.timeout {
				t.Fatalf("interval, timeout = %v, %v; want %v, %v", h.Interval, h.Timeout, tt.interval, tt.timeout)
			}
		})
	}
}

func TestParseRoutes(t *testing.T) {
	c := mustParse(t, oneBackend+`timeouts: {upstreamRead: 9s, tunnelIdle: 2h}
rateLimit: {requestsPerSec: 50, perIP: true, trustedProxies: [10.0.0.0/8]}
pools:
  p: {backends: ["http://127.0.0.1:2"]}
routes:
  - name: full
    match:
      host: "*.example.com"
      pathPrefix: /api
      methods: [GET, HEAD]
      headers: {X-Env: prod, X-Debug: true, X-Trace: ~, X-Version: 2, X-Empty: ""}
    pool: p
    stripPrefix: /api
    addPrefix: /v2
    hostRewrite: "internal.example:8080"
    setRequestHeaders: {X-Forwarded-Proto: https, X-Count: 3}
    removeRequestHeaders: [Cookie]
    setResponseHeaders:
      - {name: Cache-Control, value: no-store}
    removeResponseHeaders: [Server, X-Powered-By]
    timeouts: {upstreamRead: 1m}
    rateLimit: {requestsPerSec: 5}
  - match: {path: /maintenance}
    respond:
      status: 503
      body: "down for maintenance\n"
      headers:
        - {name: Retry-After, value: "120"}
        - {name: Set-Cookie, value: a=1}
        - {name: Set-Cookie, value: b=2}
  - match: {path: /gone}
    respond: {}
  - match: {pathPrefix: /old}
    redirect: {location: "https://{host}/new{path}?{query}"}
    setResponseHeaders: {Cache-Control: max-age=60}
    rateLimit: {burst: 1, enabled: false}
  - match: {pathPrefix: /default}
    pool: default
`)
	r := c.Routes[0]
	wantMatch := RouteMatch{Host: "*.example.com", PathPrefix: "/api", Methods: []string{"GET", "HEAD"},
		Headers: []route.HeaderMatch{{Name: "X-Env", Value: "prod"}, {Name: "X-Debug", Present: true}, {Name: "X-Trace", Present: true},
			{Name: "X-Version", Value: "2"}, {Name: "X-Empty", Value: ""}}}
	if !reflect.DeepEqual(r.Match, wantMatch) {
		t.Errorf("match =\n%+v\nwant\n%+v", r.Match, wantMatch)
	}
	if r.Name != "full" || r.Pool != "p" || r.StripPrefix != "/api" || r.AddPrefix != "/v2" || r.HostRewrite != "internal.example:8080" {
		t.Errorf("route 0 = %+v", r)
	}
	if want := []Header{{"X-Forwarded-Proto", "https"}, {"X-Count", "3"}}; !reflect.DeepEqual(r.SetRequestHeaders, want) {
		t.Errorf("setRequestHeaders = %+v, want %+v", r.SetRequestHeaders, want)
	}
	if want := []Header{{"Cache-Control", "no-store"}}; !reflect.DeepEqual(r.SetResponseHeaders, want) {
		t.Errorf("setResponseHeaders = %+v, want %+v", r.SetResponseHeaders, want)
	}
	if !reflect.DeepEqual(r.RemoveRequestHeaders, []string{"Cookie"}) || !reflect.DeepEqual(r.RemoveResponseHeaders, []string{"Server", "X-Powered-By"}) {
		t.Errorf("remove lists = %q, %q", r.RemoveRequestHeaders, r.RemoveResponseHeaders)
	}
	// Timeouts: the key given, the rest from the top level.
	wantT := c.Timeouts
	wantT.UpstreamRead = time.Minute
	if r.Timeouts != wantT || c.Timeouts.UpstreamRead != 9*time.Second || r.Timeouts.TunnelIdle != 2*time.Hour {
		t.Errorf("timeouts = %+v, want %+v", r.Timeouts, wantT)
	}
	// rateLimit: on, the rate given, burst twice it, the rest from the
	// top level.
	wantRL := c.RateLimit
	wantRL.Enabled, wantRL.RequestsPerSec, wantRL.Burst = true, 5, 10
	if r.RateLimit == nil || !reflect.DeepEqual(*r.RateLimit, wantRL) {
		t.Errorf("rateLimit = %+v, want %+v", r.RateLimit, wantRL)
	}
	if &r.RateLimit.TrustedProxies[0] == &c.RateLimit.TrustedProxies[0] {
		t.Error("a route's rateLimit shares the top-level trustedProxies")
	}

	want1 := &Respond{Status: 503, Body: "down for maintenance\n", Headers: []Header{{"Retry-After", "120"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}}
	if !reflect.DeepEqual(c.Routes[1].Respond, want1) || c.Routes[1].Pool != "" || c.Routes[1].RateLimit != nil {
		t.Errorf("route 1 = %+v", c.Routes[1])
	}
	if want := (&Respond{Status: 200}); !reflect.DeepEqual(c.Routes[2].Respond, want) {
		t.Errorf("respond: {} = %+v, want %+v", c.Routes[2].Respond, want)
	}
	r3 := c.Routes[3]
	if want := (&Redirect{Location: "https://{host}/new{path}?{query}", Code: 302}); !reflect.DeepEqual(r3.Redirect, want) {
		t.Errorf("redirect = %+v, want %+v", r3.Redirect, want)
	}
	if r3.RateLimit.Enabled || r3.RateLimit.Burst != 1 || r3.RateLimit.RequestsPerSec != 50 {
		t.Errorf("route 3 rateLimit = %+v, want off, burst 1, the top-level rate", r3.RateLimit)
	}
	if c.Routes[4].Pool != DefaultPoolName {
		t.Errorf("route 4 pool = %q", c.Routes[4].Pool)
	}
	if _, err := route.Compile(c.RouteTable()); err != nil {
		t.Fatal(err)
	}
}

// TestRoutesWithoutBackends checks that top-level backends are optional
// once there are routes, and required otherwise.
func TestRoutesWithoutBackends(t *testing.T) {
	c := mustParse(t, "routes:\n  - respond: {status: 404}\n")
	if len(c.Backends) != 0 || len(c.Routes) != 1 {
		t.Fatalf("got %+v", c)
	}
	if p := c.DefaultPool(); p.Name != "default" || len(p.Backends) != 0 || p.HealthCheck != c.HealthCheck {
		t.Errorf("DefaultPool() = %+v", p)
	}
	for _, src := range []string{"pools:\n  p: {backends: [\"http://a\"]}\n", "routes: []\n", "backends: []\nroutes:\n"} {
		_, err := Parse([]byte(src), "test.yaml")
		if errs := configErrors(t, err); len(errs) != 1 || errs[0].Key+": "+errs[0].Msg != "backends: at least one backend is required" {
			t.Errorf("%q: %v, want only the missing-backends error", src, err)
		}
	}
}

// TestRouteErrors checks each problem with pools and routes: its message
// and the line and column of the key it names.
func TestRouteErrors(t *testing.T) {
	const pools = "pools:\n  api: {backends: [\"http://127.0.0.1:1\"]}\n  static: {backends: [\"http://127.0.0.1:2\"]}\n" // lines 1-3
	tests := []struct {
		name string
		src  string
		want []string
	}{
		// pools
		{"pools not a mapping", "pools: [api]\n" + oneBackend,
			[]string{`test.yaml:1:1: pools: expected a mapping from pool names to pools, got a list`}},
		{"pool name", "pools:\n  a.b: {backends: [\"http://a\"]}\n" + oneBackend,
			[]string{`test.yaml:2:3: pools.a.b: must be a pool name of 1 to 64 letters, digits, "-" or "_", got "a.b"`}},
		{"pool name not a string", "pools:\n  [a]: {backends: [\"http://a\"]}\n" + oneBackend,
			[]string{`test.yaml:2:3: pools: expected a pool name, got a list`}},
		{"pool named default", "pools:\n  default: {backends: [\"http://a\"]}\n" + oneBackend,
			[]string{`test.yaml:2:3: pools.default: is reserved: "default" names the top-level backends`}},
		{"name inside a pool", "pools:\n  a:\n    name: b\n    backends: [\"http://a\"]\n" + oneBackend,
			[]string{`test.yaml:3:5: pools.a.name: cannot be set: a pool's name is its key in pools`}},
		{"duplicate pool", "pools:\n  a: {backends: [\"http://a\"]}\n  a: {backends: [\"http://b\"]}\n" + oneBackend,
			[]string{`test.yaml:3:3: pools.a: duplicate key (first set at line 2)`}},
		{"pool without backends", "pools:\n  a:\n  b: {backends: []}\n  c: {healthCheck: {path: /x}}\n" + oneBackend,
			[]string{
				`test.yaml:2:3: pools.a.backends: at least one backend is required`,
				`test.yaml:3:7: pools.b.backends: at least one backend is required`,
				`test.yaml:4:3: pools.c.backends: at least one backend is required`,
			}},
		{"pool backends", "pools:\n  a:\n    backends:\n      - http://a\n      - url: http://A:80\n      - url: ftp://b\n        weight: -1\n" + oneBackend,
			[]string{
				`test.yaml:5:9: pools.a.backends[1].url: duplicate backend "http://A:80": pools.a.backends[0] ("http://a") has the same address a:80`,
				`test.yaml:6:9: pools.a.backends[2].url: must be an http or https URL with a host, e.g. "http://backend1:8080", got "ftp://b"`,
				`test.yaml:7:9: pools.a.backends[2].weight: must be between 0 and 1000, got -1`,
			}},
		{"pool unknown key", "pools:\n  a:\n    backend: [\"http://a\"]\n" + oneBackend,
			[]string{
				`test.yaml:2:3: pools.a.backends: at least one backend is required`,
				`test.yaml:3:5: pools.a.backend: unknown key (did you mean "backends"?)`,
			}},
		{"pool section values", "pools:\n  a:\n    backends: [\"http://a\"]\n    loadBalancing: {algorithm: fastest}\n    outlierDetection: {baseEjection: 10m}\n" + oneBackend,
			[]string{
				`test.yaml:4:21: pools.a.loadBalancing.algorithm: unknown algorithm "fastest"`,
				`test.yaml:5:5: pools.a.outlierDetection.maxEjection: must be at least outlierDetection.baseEjection (10m0s), got 5m0s`,
			}},
		{"inherited problem reported once, at the top level", "healthCheck: {path: x}\npools:\n  a: {backends: [\"http://a\"]}\n" + oneBackend,
			[]string{`test.yaml:1:15: healthCheck.path: must start with / and contain no spaces or #, got "x"`}},

		// actions
		{"no action", pools + "routes:\n  - match: {path: /a}\n  -\n" + oneBackend,
			[]string{
				`test.yaml:5:5: routes[0]: has no action: give it pool, redirect or respond`,
				`test.yaml:6:4: routes[1]: expected a mapping, got null`,
			}},
		{"two actions", pools + "routes:\n  - pool: api\n    respond: {}\n    redirect: {location: /}\n" + oneBackend,
			[]string{
				`test.yaml:6:5: routes[0].respond: is a second action: a route has exactly one of pool, redirect and respond, and this one has pool too`,
				`test.yaml:7:5: routes[0].redirect: is a second action: a route has exactly one of pool, redirect and respond, and this one has pool too`,
			}},
		{"unknown pool", pools + "routes:\n  - pool: apj\n  - {pool: nope, match: {path: /x}}\n" + oneBackend,
			[]string{
				`test.yaml:5:5: routes[0].pool: unknown pool "apj" (did you mean "api"?)`,
				`test.yaml:6:6: routes[1].pool: unknown pool "nope" (valid: api, static, default)`,
			}},
		{"unknown pool, no pools", "routes:\n  - pool: api\n" + oneBackend,
			[]string{`test.yaml:2:5: routes[0].pool: unknown pool "api" (the file defines no pools)`}},
		{"default pool without backends", pools + "routes:\n  - pool: default\n",
			[]string{`test.yaml:5:5: routes[0].pool: has no backends: "default" is the top-level backends list, and there is none`}},
		{"route not a mapping", "routes:\n  - api\n" + oneBackend,
			[]string{`test.yaml:2:5: routes[0]: expected a mapping, got "api"`}},
		{"unknown route key", "routes:\n  - respond: {}\n    stripPrefx: /a\n" + oneBackend,
			[]string{`test.yaml:3:5: routes[0].stripPrefx: unknown key (did you mean "stripPrefix"?)`}},
		{"redirect", "routes:\n" +
			"  - {match: {path: /a}, redirect: {location: \"/x{uri}\", code: 303}}\n" +
			"  - {match: {path: /b}, redirect: {location: \"\"}}\n" +
			"  - {match: {path: /c}, redirect: {location: \"www.example.com/\"}}\n" +
			"  - {match: {path: /d}, redirect: {location: \"https://x/{path\"}}\n" +
			"  - {match: {path: /e}, redirect: {location: \"https://x/a b\"}}\n" +
			"  - {match: {path: /f}, redirect: {location: \"https:///{path}\"}}\n" +
			"  - {match: {path: /g}, redirect: {code: 301}}\n" + oneBackend,
			[]string{
				`test.yaml:2:36: routes[0].redirect.location: unknown placeholder {uri} (valid: {host}, {path}, {query})`,
				`test.yaml:2:57: routes[0].redirect.code: must be 301, 302, 307 or 308, got 303`,
				`test.yaml:3:36: routes[1].redirect.location: is required: a URL or a path, e.g. "https://www.example.com{path}"`,
				`test.yaml:4:36: routes[2].redirect.location: must be an http:// or https:// URL or a path starting with "/", got "www.example.com/"`,
				`test.yaml:5:36: routes[3].redirect.location: has an unmatched '{': only the placeholders {host}, {path} and {query} may use braces, got "https://x/{path"`,
				`test.yaml:6:36: routes[4].redirect.location: must not contain spaces, control characters or non-ASCII characters (percent-encode them), got "https://x/a b"`,
				`test.yaml:7:36: routes[5].redirect.location: must have a host after https://, got "https:///{path}"`,
				`test.yaml:8:25: routes[6].redirect.location: is required`,
			}},
		{"redirect not a mapping", "routes:\n  - redirect: https://x/\n" + oneBackend,
			[]string{`test.yaml:2:5: routes[0].redirect: expected a mapping, got "https://x/"`}},
		{"respond", "routes:\n" +
			"  - {match: {path: /a}, respond: {status: 99}}\n" +
			"  - {match: {path: /b}, respond: {status: 204, body: x}}\n" +
			"  - {match: {path: /c}, respond: {headers: {Content-Length: 1, X-A: \"a\\r\\nb\", \"X B\": c}}}\n" +
			"  - {match: {path: /d}, respond: {headers: 5}}\n" + oneBackend,
			[]string{
				`test.yaml:2:35: routes[0].respond.status: must be between 200 and 599, got 99`,
				`test.yaml:3:48: routes[1].respond.body: must be empty: a 204 response has no body`,
				`test.yaml:4:45: routes[2].respond.headers[0].name: cannot be set or removed: ConnX writes Content-Length itself (Connection, Content-Length, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade)`,
				`test.yaml:4:64: routes[2].respond.headers[1].value: must not contain control characters other than tab, got "a\r\nb"`,
				`test.yaml:4:79: routes[2].respond.headers[2].name: must be a header field name (a token), got "X B"`,
				`test.yaml:5:35: routes[3].respond.headers: expected a mapping from header names to values, or a list of {name, value}, got 5`,
			}},
		{"respond body size", "routes:\n  - respond: {body: " + strings.Repeat("x", maxRespondBody+1) + "}\n" + oneBackend,
			[]string{`test.yaml:2:15: routes[0].respond.body: must be at most 1MiB, got 1048577 bytes`}},
		{"modifiers on a redirect", "routes:\n  - redirect: {location: /}\n    stripPrefix: /a\n    addPrefix: /b\n    hostRewrite: h\n" +
			"    setRequestHeaders: {X-A: a}\n    removeRequestHeaders: [X-B]\n    setResponseHeaders: {Cache-Control: no-store, Connection: x}\n" +
			"    removeResponseHeaders: [Server]\n    timeouts: {upstreamRead: 5}\n" + oneBackend,
			[]string{
				`test.yaml:3:5: routes[0].stripPrefix: has no effect on a redirect route: only a pool route sends the request to a backend`,
				`test.yaml:4:5: routes[0].addPrefix: has no effect on a redirect route: only a pool route sends the request to a backend`,
				`test.yaml:5:5: routes[0].hostRewrite: has no effect on a redirect route: only a pool route sends the request to a backend`,
				`test.yaml:6:5: routes[0].setRequestHeaders: has no effect on a redirect route: only a pool route sends the request to a backend`,
				`test.yaml:7:5: routes[0].removeRequestHeaders: has no effect on a redirect route: only a pool route sends the request to a backend`,
				`test.yaml:8:51: routes[0].setResponseHeaders[1].name: cannot be set or removed: ConnX writes Connection itself`,
				`test.yaml:9:5: routes[0].removeResponseHeaders: has no effect on a redirect route: only a pool route sends the request to a backend`,
				`test.yaml:10:5: routes[0].timeouts: has no effect on a redirect route: only a pool route sends the request to a backend`,
			}},
		{"response headers on a respond route", "routes:\n  - respond: {}\n    setResponseHeaders: {X-A: a}\n    timeouts: ~\n" + oneBackend,
			[]string{
				`test.yaml:3:5: routes[0].setResponseHeaders: has no effect on a respond route: put the fields in respond.headers`,
				`test.yaml:4:5: routes[0].timeouts: has no effect on a respond route: only a pool route sends the request to a backend`,
			}},
		// A redirect writes Location itself: a second one would make the
		// response ambiguous (RFC 9110 10.2.2 allows one).
		{"Location on a redirect", "routes:\n  - redirect: {location: /}\n    setResponseHeaders: {location: /x}\n" + oneBackend,
			[]string{
				`test.yaml:3:26: routes[0].setResponseHeaders[0].name: cannot be set on a redirect route: use redirect.location`,
			}},
		{"strip and add prefix", pools + "routes:\n" +
			"  - {match: {pathPrefix: /v1/}, pool: api, stripPrefix: /v2, addPrefix: \"/\"}\n" +
			"  - {match: {path: /v1}, pool: api, stripPrefix: \"/\", addPrefix: api}\n" +
			"  - {match: {host: a.example}, pool: api, stripPrefix: /a}\n" +
			"  - {match: {pathPrefix: /a}, pool: api, stripPrefix: \"/a//\", addPrefix: \"/b/%7e\"}\n" +
			"  - {match: {pathPrefix: /vx}, pool: api, stripPrefix: \"/v\", addPrefix: \"/a/../..\"}\n" +
			"  - {match: {pathPrefix: /q}, pool: api, stripPrefix: \"/q?x\"}\n" + oneBackend,
			[]string{
				`test.yaml:5:44: routes[0].stripPrefix: must be a leading part of match.pathPrefix ("/v1/"), whole segments, got "/v2"`,
				`test.yaml:5:62: routes[0].addPrefix: must not be "/": adding "/" changes nothing`,
				`test.yaml:6:37: routes[1].stripPrefix: must not be "/": stripping "/" changes nothing`,
				`test.yaml:6:55: routes[1].addPrefix: must start with "/", got "api"`,
				`test.yaml:7:43: routes[2].stripPrefix: must go with match.pathPrefix or match.path: it removes a leading part of the path the route matched`,
				`test.yaml:8:42: routes[3].stripPrefix: must be in normalised form: write "/a/" (see docs/routing.md)`,
				`test.yaml:8:63: routes[3].addPrefix: must be in normalised form: write "/b/~" (see docs/routing.md)`,
				`test.yaml:9:43: routes[4].stripPrefix: must be a leading part of match.pathPrefix ("/vx"), whole segments, got "/v"`,
				`test.yaml:9:62: routes[4].addPrefix: must be a path that normalisation accepts (".." climbs above the root), got "/a/../.."`,
				`test.yaml:10:42: routes[5].stripPrefix: must not contain "?", got "/q?x"`,
			}},
		{"host rewrite", pools + "routes:\n" +
			"  - {match: {path: /a}, pool: api, hostRewrite: \"a b\"}\n" +
			"  - {match: {path: /b}, pool: api, hostRewrite: \"::1\"}\n" +
			"  - {match: {path: /c}, pool: api, hostRewrite: \"a:0\"}\n" +
			"  - {match: {path: /d}, pool: api, hostRewrite: \"[::1]:8080\"}\n" +
			"  - {match: {path: /e}, pool: api, hostRewrite: \"[a]\"}\n" + oneBackend,
			[]string{
				`test.yaml:5:36: routes[0].hostRewrite: must be "host" or "host:port", e.g. "api.internal" or "10.0.0.1:8080", got "a b"`,
				`test.yaml:6:36: routes[1].hostRewrite: must be "host" or "host:port", e.g. "api.internal" or "10.0.0.1:8080", got "::1" (write an IPv6 address in brackets)`,
				`test.yaml:7:36: routes[2].hostRewrite: port must be between 1 and 65535, got "0"`,
				`test.yaml:9:36: routes[4].hostRewrite: must be "host" or "host:port"`,
			}},
		{"request ID field", pools + "routes:\n  - pool: api\n" +
			"    setRequestHeaders: {x-request-id: fixed}\n" +
			"    removeResponseHeaders: [X-Request-ID]\n" + oneBackend,
			[]string{
				`test.yaml:6:25: routes[0].setRequestHeaders[0].name: cannot be set or removed by a route: X-Request-Id is requestId.header, which ConnX writes itself`,
				`test.yaml:7:29: routes[0].removeResponseHeaders[0]: cannot be set or removed by a route: X-Request-Id is requestId.header, which ConnX writes itself`,
			}},
		{"header modifiers", pools + "routes:\n  - pool: api\n" +
			"    setRequestHeaders: {Host: x, X-A: 1, x-a: 2, X-B: \"\\0\"}\n" +
			"    removeRequestHeaders: [x-A, Transfer-Encoding, \"a:b\"]\n" +
			"    setResponseHeaders: [{name: X-C, value: c}, {name: X-C, value: d}]\n" +
			"    removeResponseHeaders: [x-c, Keep-Alive]\n" + oneBackend,
			[]string{
				`test.yaml:6:25: routes[0].setRequestHeaders[0].name: cannot be set or removed here: use hostRewrite`,
				`test.yaml:6:42: routes[0].setRequestHeaders[2].name: is set twice: "x-a" is the same field as "X-A" in routes[0].setRequestHeaders[1] (names are case-insensitive)`,
				`test.yaml:6:50: routes[0].setRequestHeaders[3].value: must not contain control characters other than tab, got "\x00"`,
				`test.yaml:7:28: routes[0].removeRequestHeaders[0]: is also in setRequestHeaders, which replaces the field anyway`,
				`test.yaml:7:33: routes[0].removeRequestHeaders[1]: cannot be set or removed: ConnX writes Transfer-Encoding itself`,
				`test.yaml:7:52: routes[0].removeRequestHeaders[2]: must be a header field name (a token), got "a:b"`,
				`test.yaml:8:50: routes[0].setResponseHeaders[1].name: is set twice: "X-C" is the same field as "X-C" in routes[0].setResponseHeaders[0] (names are case-insensitive)`,
				`test.yaml:9:29: routes[0].removeResponseHeaders[0]: is also in setResponseHeaders, which replaces the field anyway`,
				`test.yaml:9:34: routes[0].removeResponseHeaders[1]: cannot be set or removed: ConnX writes Keep-Alive itself`,
			}},
		{"header map values", "routes:\n  - respond: {headers: {X-A: ~, X-A: b, X-B: [c]}}\n" + oneBackend,
			[]string{
				`test.yaml:2:25: routes[0].respond.headers[0].value: expected a value ("" for an empty one), got null`,
				`test.yaml:2:33: routes[0].respond.headers: duplicate key "X-A" (first set at line 2)`,
				`test.yaml:2:41: routes[0].respond.headers[1].value: expected a value ("" for an empty one), got a list`,
			}},
		{"timeouts", pools + "routes:\n  - pool: api\n    timeouts: {clientHeader: 5, clientIdle: 1m, upstreamIdle: ~, upstreamRead: 0, clientBody: -1s, tunnelIdle: x}\n" + oneBackend,
			[]string{
				`test.yaml:6:16: routes[0].timeouts.clientHeader: cannot be set per route: it runs before a route is chosen; set timeouts.clientHeader`,
				`test.yaml:6:33: routes[0].timeouts.clientIdle: cannot be set per route: it runs before a route is chosen; set timeouts.clientIdle`,
				`test.yaml:6:49: routes[0].timeouts.upstreamIdle: cannot be set per route: an idle upstream connection belongs to no route; set timeouts.upstreamIdle`,
				`test.yaml:6:66: routes[0].timeouts.upstreamRead: must be greater than 0, got 0s`,
				`test.yaml:6:83: routes[0].timeouts.clientBody: must be greater than 0, got -1s`,
				`test.yaml:6:100: routes[0].timeouts.tunnelIdle: expected a duration`,
			}},
		{"route rate limit", pools + "routes:\n  - pool: api\n    rateLimit: {requestsPerSec: 0, key: cookie, exempt: [a]}\n" + oneBackend,
			[]string{
				`test.yaml:6:17: routes[0].rateLimit.requestsPerSec: must be a number greater than 0, got 0`,
				`test.yaml:6:36: routes[0].rateLimit.key: must be "client-ip" or "header:Name", got "cookie"`,
				`test.yaml:6:58: routes[0].rateLimit.exempt[0]: must start with "/", got "a"`,
			}},

		// matches, as route.Compile reports them
		{"route names", pools + "routes:\n  - {name: api, pool: api}\n  - {name: api, pool: static, match: {path: /s}}\n  - {name: \"a b\", pool: api, match: {path: /t}}\n" + oneBackend,
			[]string{
				`test.yaml:6:6: routes[1].name: route name "api" is already used by routes[0]`,
				`test.yaml:7:6: routes[2].name: must be 1 to 64 letters, digits, "-" or "_", got "a b"`,
			}},
		{"match", pools + "routes:\n  - pool: api\n    match:\n" +
			"      host: \"a.*.example.com\"\n" +
			"      path: /a\n" +
			"      pathPrefix: /b\n" +
			"      methods: [GET, \"g t\"]\n" +
			"      headers: {\"X A\": v, X-B: \" v\", X-C: false, X-D: [1]}\n" + oneBackend,
			[]string{
				`test.yaml:7:7: routes[0].match.host: a wildcard must be the whole first label followed by a domain, as in "*.example.com"`,
				`test.yaml:9:7: routes[0].match.pathPrefix: path and pathPrefix cannot both be set`,
				`test.yaml:10:22: routes[0].match.methods[1]: method "g t" is not a token`,
				`test.yaml:11:17: routes[0].match.headers[0].name: header name "X A" is not a token`,
				`test.yaml:11:27: routes[0].match.headers[1].value: no header field can have the value " v"`,
				`test.yaml:11:38: routes[0].match.headers[2].value: expected a value to match, or true for "present", got false`,
				`test.yaml:11:50: routes[0].match.headers[3].value: expected a value to match, or true for "present", got a list`,
			}},
		{"match paths", pools + "routes:\n" +
			"  - {pool: api, match: {path: a}}\n" +
			"  - {pool: api, match: {pathPrefix: \"/a/./b\"}}\n" +
			"  - {pool: api, match: {path: \"/a%2Fb\"}}\n" +
			"  - {pool: api, match: {headers: [X-A]}}\n" + oneBackend,
			[]string{
				`test.yaml:5:25: routes[0].match.path: must start with "/"`,
				`test.yaml:6:25: routes[1].match.pathPrefix: not in normalised form: write "/a/b" (see docs/routing.md)`,
				`test.yaml:7:25: routes[2].match.path: can never match: requests for it are refused with 400`,
				`test.yaml:8:25: routes[3].match.headers: expected a mapping from header names to values (or true for "present"), got a list`,
			}},
		{"shadowed", pools + "routes:\n" +
			"  - {pool: api, match: {host: A.example.com, pathPrefix: /v1/}}\n" +
			"  - {pool: static, match: {host: a.example.com., pathPrefix: /v1, methods: [GET]}}\n" +
			"  - pool: static\n" + oneBackend,
			[]string{
				`test.yaml:6:20: routes[1].match: shadowed: can never match: routes[0] comes first with the same host and path condition and accepts every request this route accepts`,
			}},
		{"shadowed without a match key", pools + "routes:\n  - pool: api\n  - pool: static\n" + oneBackend,
			[]string{`test.yaml:6:5: routes[1].match: shadowed: can never match: routes[0] comes first with the same match`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), "test.yaml")
			if c != nil {
				t.Errorf("Parse returned a config along with an error")
			}
			errs := configErrors(t, err)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d:\n got  %s\n want %s", i, e.Error(), tt.want[i])
				}
			}
		})
	}
}

// TestRoutesInCode checks pools and routes built in code: NewPool, zero
// route timeouts filled in, and errors named by key without a position.
func TestRoutesInCode(t *testing.T) {
	c := Default()
	c.Timeouts.UpstreamRead = 7 * time.Second
	p := c.NewPool("api")
	p.Backends = []Backend{{URL: "http://A:1", Weight: 1}}
	c.Pools = []Pool{p}
	c.Routes = []Route{
		{Name: "api", Match: RouteMatch{PathPrefix: "/api", Headers: []route.HeaderMatch{{Name: "X-A", Present: true}}}, Pool: "api",
			Timeouts: Timeouts{UpstreamConnect: time.Second}},
		{Match: RouteMatch{Path: "/x"}, Redirect: &Redirect{Location: "/y", Code: 308}},
		{Respond: &Respond{Status: 404, Body: "no\n"}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Pools[0].Backends[0].Addr != "a:1" {
		t.Errorf("pool backend Addr = %q, want a:1", c.Pools[0].Backends[0].Addr)
	}
	want := c.Timeouts
	want.UpstreamConnect = time.Second
	if c.Routes[0].Timeouts != want || c.Routes[1].Timeouts != c.Timeouts {
		t.Errorf("route timeouts = %+v, %+v; want %+v, %+v", c.Routes[0].Timeouts, c.Routes[1].Timeouts, want, c.Timeouts)
	}
	// RouteTable shares nothing with c.
	table := c.RouteTable()
	table[0].Match.Headers[0].Name = "X-B"
	if c.Routes[0].Match.Headers[0].Name != "X-A" {
		t.Error("RouteTable shares Headers with the config")
	}

	c.Pools = append(c.Pools, c.NewPool("api"), Pool{Name: "z", Backends: []Backend{{URL: "http://b", Weight: 1}}})
	c.Routes[0].Timeouts.ClientIdle = time.Hour
	c.Routes[1].Redirect.Code = 0
	c.Routes[2].Respond.Status = 0
	err := c.Validate()
	errs := configErrors(t, err)
	for _, w := range []string{
		"pools.api: duplicate pool name: pools[0] has the same name",
		"pools.api.backends: at least one backend is required",
		// A Pool not made by NewPool has zero sections.
		"pools.z.healthCheck.interval: must be greater than 0, got 0s",
		"routes[0].timeouts.clientIdle: cannot be set per route: it runs before a route is chosen; set timeouts.clientIdle",
		"routes[1].redirect.code: must be 301, 302, 307 or 308, got 0",
		"routes[2].respond.status: must be between 200 and 599, got 0",
	} {
		if !slices.ContainsFunc(errs, func(e *Error) bool { return e.Error() == w }) {
			t.Errorf("missing error %q in\n%v", w, err)
		}
	}
	for _, e := range errs {
		if e.Line != 0 || e.File != "" {
			t.Errorf("error with a position: %+v", e)
		}
	}
}

// TestRoutesKeepSeedFilesUnchanged checks that the seed's files, which
// have neither pools nor routes, load as before.
func TestRoutesKeepSeedFilesUnchanged(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "seed-readme.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Pools != nil || c.Routes != nil || len(c.RouteTable()) != 0 {
		t.Fatalf("pools %v, routes %v; want none", c.Pools, c.Routes)
	}
	text, err := os.ReadFile(filepath.Join("testdata", "seed-readme.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), "pools") || strings.Contains(string(text), "routes") {
		t.Fatal("the seed file was edited")
	}
}

// TestDocumentedRoutingConfiguration checks the Configuration section of
// docs/routing.md: its example is the issue's, and its refused file gives
// exactly the errors it shows.
func TestDocumentedRoutingConfiguration(t *testing.T) {
	doc, err := os.ReadFile("../../docs/routing.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(doc), "\n## Configuration\n")
	if !ok {
		t.Fatal("docs/routing.md lacks the Configuration section")
	}
	text, _, _ = strings.Cut(text, "\n## ")
	block := func(after, fence string) string {
		t.Helper()
		_, rest, ok := strings.Cut(text, after)
		if !ok {
			t.Fatalf("no %q in the Configuration section", after)
		}
		_, rest, _ = strings.Cut(rest, fence+"\n")
		b, _, _ := strings.Cut(rest, "```")
		return b
	}
	if got := block("", "```yaml"); got != issueExample {
		t.Errorf("the example is not the issue's:\n%s", got)
	}
	_, err = Parse([]byte(block("This file", "```yaml")), "routing.yaml")
	if want := block("is refused with", "```"); err == nil || err.Error()+"\n" != want {
		t.Errorf("the refused file gives\n%v\nthe documentation shows\n%s", err, want)
	}
}
