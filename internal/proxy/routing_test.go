package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// seen is what an echo backend reports about the request it received.
type seen struct {
	Name   string
	Target string // request target as received
	Host   string
	Header http.Header
}

// namedEcho starts a backend named name that answers every request
// with a JSON seen (and 200 on /healthz), and returns its address.
func namedEcho(t testing.TB, name string) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Server", "echo")
		_ = json.NewEncoder(w).Encode(seen{Name: name, Target: r.RequestURI, Host: r.Host, Header: r.Header})
	}))
}

// routedConfig parses yaml (with the server section added) as a config
// file, so the test config is exactly what an operator writes.
func routedConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	return serverConfig(t, "", yaml)
}

// serverConfig is routedConfig with more keys for the server section
// (a flow mapping's entries, e.g. "allow: [\"10.0.0.0/8\"]").
func serverConfig(t testing.TB, server, yaml string) *config.Config {
	t.Helper()
	if server != "" {
		server = ", " + server
	}
	full := "server: {host: \"127.0.0.1\", port: 0, eventLoops: 2, shutdownTimeout: 5" + server + "}\n" +
		"limits: {maxConnections: 5000}\n" + yaml
	cfg, err := config.Parse([]byte(full), "routing.yaml")
	if err != nil {
		t.Fatalf("config:\n%s\n%v", full, err)
	}
	return cfg
}

// do sends a request over rc and returns the response and what the echo
// backend saw (Name "" when no backend answered).
func (rc *rawClient) do(req string) (*http.Response, string, seen) {
	rc.t.Helper()
	rc.send(req)
	method := req[:strings.IndexByte(req, ' ')]
	resp, body := rc.response(method)
	var s seen
	if resp.Header.Get("X-Backend") != "" {
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			rc.t.Fatalf("backend answer %q: %v", body, err)
		}
	}
	return resp, body, s
}

// TestRoutingIssueConfig runs the configuration of the routing issue,
// exactly as written there: each route reaches its pool, stripPrefix
// applies, the redirect answers without a backend, and everything else
// goes to the default pool.
func TestRoutingIssueConfig(t *testing.T) {
	def, api1, api2, static := namedEcho(t, "default"), namedEcho(t, "api1"), namedEcho(t, "api2"), namedEcho(t, "static")
	cfg := routedConfig(t, fmt.Sprintf(`
backends:                          # default pool (seed)
  - url: "http://%s"
pools:
  api:
    backends:
      - url: "http://%s"
      - url: "http://%s"
        weight: 2
    loadBalancing: {algorithm: "least-connections"}
    healthCheck: {path: "/healthz", interval: 5, timeout: 2}
  static:
    backends:
      - url: "http://%s"
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
`, def, api1, api2, static))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())

	cases := []struct {
		req          string
		name, target string // the backend and the target it must see
	}{
		{"GET /v1/users?id=7 HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "api", "/users?id=7"},
		{"GET /v1/users HTTP/1.1\r\nHost: API.Example.COM.:8080\r\n\r\n", "api", "/users"},
		{"GET /v1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "api", "/"},
		{"GET /v1//users/./x/../y HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "api", "/users/y"},
		{"GET /v1/users HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "default", "/v1/users"},
		// An absolute-form target's authority wins over Host (RFC 9112 3.2.2).
		{"GET http://api.example.com/v1/a/../b HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "api", "/b"},
		{"GET /static/app.js HTTP/1.1\r\nHost: x\r\n\r\n", "static", "/static/app.js"},
		{"GET //static/./app.js HTTP/1.1\r\nHost: x\r\n\r\n", "static", "/static/app.js"},
		{"GET /%73tatic/app.js HTTP/1.1\r\nHost: x\r\n\r\n", "static", "/static/app.js"},
		// A route cannot be bypassed, nor another reached, with dot segments.
		{"GET /static/%2e%2e/v1/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "api", "/x"},
		{"GET /staticx HTTP/1.1\r\nHost: x\r\n\r\n", "default", "/staticx"},
		{"GET /old-home/ HTTP/1.1\r\nHost: x\r\n\r\n", "default", "/old-home/"},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "default", "/"},
	}
	for _, c := range cases {
		resp, body, s := rc.do(c.req)
		got := strings.TrimRight(s.Name, "12")
		if resp.StatusCode != 200 || got != c.name || s.Target != c.target {
			t.Errorf("%q: %d from %q (target %q), want 200 from %s with target %q; body %q",
				strings.SplitN(c.req, "\r\n", 2)[0], resp.StatusCode, s.Name, s.Target, c.name, c.target, body)
		}
	}

	resp, _, s := rc.do("GET /old-home HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://www.example.com/" || s.Name != "" {
		t.Errorf("redirect: %d Location %q from %q", resp.StatusCode, resp.Header.Get("Location"), s.Name)
	}
	// The connection is still usable after the redirect (keep-alive).
	if resp, _, s := rc.do("GET /static/a HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || s.Name != "static" {
		t.Errorf("after the redirect: %d from %q", resp.StatusCode, s.Name)
	}

	// Weighted balancing within the api pool, least-connections with
	// weights 1 and 2: both backends take requests.
	names := map[string]int{}
	for range 30 {
		_, _, s := rc.do("GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
		names[s.Name]++
	}
	if names["api1"] == 0 || names["api2"] == 0 || len(names) != 2 {
		t.Errorf("api pool spread: %v", names)
	}

	// Paths that normalisation refuses are 400, and the connection closes.
	for _, bad := range []string{"/v1/%2e%2e/%2e%2e/etc/passwd", "/static/a%2fb", "/static/..;/x", "/a\\b"} {
		rc := dialProxy(t, srv.Addr().String())
		rc.send("GET " + bad + " HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
		rc.expectStatusAndClose(http.MethodGet, http.StatusBadRequest)
	}

	// Stats: per pool, per route.
	snap := settledStats(t, srv, 49)
	pools := map[string]bool{}
	for _, b := range snap.Backends {
		pools[b.Pool] = true
	}
	if !pools["default"] || !pools["api"] || !pools["static"] || len(snap.Pools) != 3 || snap.Pools[0].Name != "default" {
		t.Errorf("pools in stats: backends %v, pools %+v", pools, snap.Pools)
	}
	byRoute := map[string]stats.Route{}
	for _, r := range snap.Routes {
		byRoute[r.Name] = r
	}
	if r := byRoute["api"]; r.Action != "pool" || r.Pool != "api" || r.Requests[1] != 36 || r.Duration.Count != r.Requests[1] {
		t.Errorf("route api: %+v", r)
	}
	if r := byRoute["routes[2]"]; r.Action != "redirect" || r.Requests[2] != 1 {
		t.Errorf("redirect route: %+v", r)
	}
}

// TestRoutingModifiers: the request and response rewrites of a pool
// route arrive, the respond action answers without a backend (HEAD
// without a body, keep-alive kept), and redirect placeholders expand.
func TestRoutingModifiers(t *testing.T) {
	be := namedEcho(t, "a")
	cfg := routedConfig(t, fmt.Sprintf(`
pools:
  a:
    backends: ["http://%s"]
routes:
  - name: rw
    match: {pathPrefix: "/api/v1"}
    pool: a
    stripPrefix: "/api/v1"
    addPrefix: "/internal"
    hostRewrite: "svc.internal:8080"
    setRequestHeaders: {X-Forwarded-Prefix: "/api/v1", X-Tenant: "blue"}
    removeRequestHeaders: ["Cookie"]
    setResponseHeaders: {Strict-Transport-Security: "max-age=600", Server: "connx"}
    removeResponseHeaders: ["X-Internal"]
  - match: {path: "/maintenance"}
    respond:
      status: 503
      body: "Back soon.\n"
      headers: {Retry-After: "600"}
  - match: {path: "/empty"}
    respond: {status: 204}
  - match: {pathPrefix: "/go"}
    redirect: {location: "https://{host}/new{path}?{query}", code: 308}
    setResponseHeaders: {Cache-Control: "no-store"}
`, be))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())

	resp, _, s := rc.do("GET /api/v1/users?x=1 HTTP/1.1\r\nHost: www.example.com\r\nCookie: a=b\r\nX-Tenant: red\r\nx-tenant: green\r\n\r\n")
	switch {
	case resp.StatusCode != 200 || s.Name != "a":
		t.Fatalf("rewrite route: %d from %q", resp.StatusCode, s.Name)
	case s.Target != "/internal/users?x=1":
		t.Errorf("target %q, want /internal/users?x=1", s.Target)
	case s.Host != "svc.internal:8080":
		t.Errorf("Host %q, want the hostRewrite", s.Host)
	case s.Header.Get("Cookie") != "":
		t.Errorf("Cookie %q was not removed", s.Header.Get("Cookie"))
	case strings.Join(s.Header.Values("X-Tenant"), ",") != "blue":
		t.Errorf("X-Tenant %q, want only the route's value", s.Header.Values("X-Tenant"))
	case s.Header.Get("X-Forwarded-Prefix") != "/api/v1":
		t.Errorf("X-Forwarded-Prefix %q", s.Header.Get("X-Forwarded-Prefix"))
	case s.Header.Get("X-Forwarded-Host") != "www.example.com":
		t.Errorf("X-Forwarded-Host %q, want the client's host", s.Header.Get("X-Forwarded-Host"))
	}
	if h := resp.Header; h.Get("X-Internal") != "" || h.Get("Strict-Transport-Security") != "max-age=600" || strings.Join(h.Values("Server"), ",") != "connx" {
		t.Errorf("response fields: %v", h)
	}
	if resp, _, s := rc.do("GET /api/v1 HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || s.Target != "/internal/" {
		t.Errorf("/api/v1: %d target %q, want /internal/", resp.StatusCode, s.Target)
	}

	resp, body, _ := rc.do("GET /maintenance HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 503 || body != "Back soon.\n" || resp.Header.Get("Retry-After") != "600" ||
		resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.ContentLength != int64(len(body)) || resp.Close {
		t.Errorf("respond: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body, _ = rc.do("HEAD /maintenance HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 503 || body != "" || resp.ContentLength != 11 {
		t.Errorf("respond to HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body, _ = rc.do("GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 204 || body != "" || resp.Header.Get("Content-Length") != "" {
		t.Errorf("respond 204: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	for req, loc := range map[string]string{
		"GET /go/x?a=1&b=2 HTTP/1.1\r\nHost: old.example:8080\r\n\r\n": "https://old.example:8080/new/go/x?a=1&b=2",
		"GET /go/./y HTTP/1.1\r\nHost: old.example\r\n\r\n":            "https://old.example/new/go/y",
	} {
		resp, _, _ := rc.do(req)
		if resp.StatusCode != 308 || resp.Header.Get("Location") != loc || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("redirect %q: %d Location %q, want %q (%v)", req, resp.StatusCode, resp.Header.Get("Location"), loc, resp.Header)
		}
	}
	// No default pool: no match is 404, and the connection stays.
	resp, body, _ = rc.do("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 404 || body != notFoundBody || resp.Close {
		t.Errorf("no route: %d %q close %v", resp.StatusCode, body, resp.Close)
	}
	// A respond route with a request body answers and closes (the body
	// is not read).
	rc2 := dialProxy(t, srv.Addr().String())
	rc2.send("POST /maintenance HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	if resp := rc2.expectStatusAndClose(http.MethodPost, 503); !resp.Close {
		t.Error("respond to a request with a body: no Connection: close")
	}
}

// TestRoutingPoolIsolation: a backend address listed in two pools is two
// members with their own state: the member in one pool trips its breaker
// on that pool's failing requests while the member in the other pool
// keeps serving.
func TestRoutingPoolIsolation(t *testing.T) {
	shared := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "shared")
		if strings.HasPrefix(r.URL.Path, "/broken/") {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_ = json.NewEncoder(w).Encode(seen{Name: "shared", Target: r.RequestURI})
	}))
	cfg := routedConfig(t, fmt.Sprintf(`
healthCheck: {enabled: false}
outlierDetection: {enabled: false}
circuitBreaker: {enabled: true, maxFailures: 2, failureOn5xx: true, timeout: 60}
pools:
  broken:
    backends: ["http://%s"]
    loadBalancing: {panicThreshold: 0}
  fine:
    backends: ["http://%s"]
routes:
  - {match: {pathPrefix: "/broken/"}, pool: broken}
  - {match: {pathPrefix: "/fine/"}, pool: fine}
`, shared, shared))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())
	codes := []int{}
	for range 3 {
		resp, _, _ := rc.do("GET /broken/x HTTP/1.1\r\nHost: x\r\n\r\n")
		codes = append(codes, resp.StatusCode)
		if resp.Close {
			rc = dialProxy(t, srv.Addr().String())
		}
	}
	if fmt.Sprint(codes) != "[500 500 503]" {
		t.Errorf("broken pool: %v, want [500 500 503] (the breaker opens after 2 failures)", codes)
	}
	for range 10 {
		if resp, _, s := rc.do("GET /fine/x HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || s.Name != "shared" {
			t.Fatalf("fine pool: %d from %q", resp.StatusCode, s.Name)
		}
	}
	if resp, _, _ := rc.do("GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 404 {
		t.Errorf("no route, no default pool: %d", resp.StatusCode)
	}
	snap := settledStats(t, srv, 14)
	states := map[string]string{}
	for _, b := range snap.Backends {
		states[b.Pool] = fmt.Sprintf("%s up=%v", b.Health.Breaker, b.Up)
	}
	if states["broken"] != "open up=false" || states["fine"] != "closed up=true" || len(snap.Backends) != 2 {
		t.Errorf("members: %v", states)
	}
	none := uint64(0)
	for _, rc := range snap.Requests {
		if rc.Pool == "broken" && rc.Backend == stats.NoBackend && rc.Code == 503 {
			none += rc.Count
		}
	}
	if none != 1 {
		t.Errorf("the broken pool's 503 without a backend: counted %d times, want 1 (%+v)", none, snap.Requests)
	}
}

// TestRoutingTimeoutsAndLimits: a route's own timeout and rate limit
// apply to it and to no other route.
func TestRoutingTimeoutsAndLimits(t *testing.T) {
	release := make(chan struct{})
	slow := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-time.After(ioTimeout):
			}
		}
		io.WriteString(w, "ok")
	}))
	cfg := routedConfig(t, fmt.Sprintf(`
backends: ["http://%s"]
routes:
  - match: {path: "/slow"}
    pool: default
    timeouts: {upstreamResponseHeader: 0.2}
  - name: limited
    match: {path: "/limited"}
    pool: default
    rateLimit: {requestsPerSec: 0.1, burst: 2}
`, slow))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())
	rc.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := rc.response(http.MethodGet); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("route timeout: %d, want 504", resp.StatusCode)
	}
	close(release)
	rc = dialProxy(t, srv.Addr().String())
	codes := []int{}
	for range 3 {
		resp, _, _ := rc.do("GET /limited HTTP/1.1\r\nHost: x\r\n\r\n")
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("route rate limit: %v, want [200 200 429]", codes)
	}
	for range 5 {
		if resp, _, _ := rc.do("GET /other HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("an unlimited path: %d", resp.StatusCode)
		}
	}
	snap := settledStats(t, srv, 0)
	for _, r := range snap.Routes {
		if r.Name == "limited" && (r.RateLimit.Rejected != 1 || r.RateLimit.Allowed != 2) {
			t.Errorf("route limiter stats: %+v", r.RateLimit)
		}
	}
}

// TestRoutingReloadUnderLoad moves routes and pools by reload while
// clients keep sending requests: none fails, each is answered by a pool
// that one of the two configurations sends it to, and a pool kept across
// reloads keeps its backends' runtime state.
func TestRoutingReloadUnderLoad(t *testing.T) {
	a, b, c := namedEcho(t, "a"), namedEcho(t, "b"), namedEcho(t, "c")
	one := fmt.Sprintf(`
backends: ["http://%s"]
pools:
  p1: {backends: ["http://%s"]}
routes:
  - {name: r1, match: {pathPrefix: "/one/"}, pool: p1}
  - {name: r2, match: {pathPrefix: "/two/"}, pool: default}
`, a, b)
	two := fmt.Sprintf(`
backends: ["http://%s"]
pools:
  p1: {backends: ["http://%s"]}
  p2: {backends: ["http://%s", "http://%s"]}
routes:
  - {name: r2, match: {pathPrefix: "/two/"}, pool: p2}
  - {name: r1, match: {pathPrefix: "/one/"}, pool: p1}
`, a, b, c, a)
	allowed := map[string]map[string]bool{
		"/one/x":  {"b": true},
		"/two/x":  {"a": true, "c": true},
		"/else/x": {"a": true},
	}
	srv := startProxy(t, routedConfig(t, one))
	addr := srv.Addr().String()
	beB := srv.pools["p1"].backends[b]

	var stop atomic.Bool
	var wg sync.WaitGroup
	var done, failed atomic.Int64
	errs := make(chan string, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: ioTimeout}
			defer client.CloseIdleConnections()
			paths := []string{"/one/x", "/two/x", "/else/x"}
			for i := w; !stop.Load(); i++ {
				p := paths[i%len(paths)]
				resp, err := client.Get("http://" + addr + p)
				if err != nil {
					failed.Add(1)
					select {
					case errs <- err.Error():
					default:
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				name := resp.Header.Get("X-Backend")
				if resp.StatusCode != 200 || !allowed[p][name] {
					failed.Add(1)
					select {
					case errs <- fmt.Sprintf("%s: %d from %q", p, resp.StatusCode, name):
					default:
					}
				}
				done.Add(1)
			}
		}()
	}
	for i := range 20 {
		next := one
		if i%2 == 0 {
			next = two
		}
		target := done.Load() + 50
		waitFor(t, "requests between reloads", func() bool { return done.Load() >= target || failed.Load() > 0 })
		if err := srv.Reload(routedConfig(t, next)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	target := done.Load() + 50
	waitFor(t, "requests after the last reload", func() bool { return done.Load() >= target || failed.Load() > 0 })
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across reloads", failed.Load(), done.Load())
	}
	srv.mu.Lock()
	kept := srv.pools["p1"].backends[b]
	_, p2 := srv.pools["p2"]
	srv.mu.Unlock()
	if kept != beB {
		t.Error("pool p1's backend lost its runtime state across reloads")
	}
	if p2 {
		t.Error("pool p2 was removed by the last reload but is still kept")
	}
	t.Logf("%d requests, 0 failed, 20 reloads", done.Load())
}

// TestRoutingOptionsStar: "OPTIONS *" names the server, not a path, so a
// route's addPrefix must not turn it into a path ("/api*").
func TestRoutingOptionsStar(t *testing.T) {
	lines := make(chan string, 4)
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			lines <- head[:strings.Index(head, "\r\n")]
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	cfg := routedConfig(t, fmt.Sprintf(`
pools:
  a:
    backends: ["http://%s"]
routes:
  - match: {host: "h.example"}
    pool: a
    addPrefix: "/api"
`, be))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())
	for req, want := range map[string]string{
		"OPTIONS * HTTP/1.1\r\nHost: h.example\r\n\r\n":                "OPTIONS * HTTP/1.1",
		"OPTIONS http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n": "OPTIONS * HTTP/1.1",
		"GET /x HTTP/1.1\r\nHost: h.example\r\n\r\n":                   "GET /api/x HTTP/1.1",
	} {
		rc.send(req)
		if resp, _ := rc.response(req[:strings.IndexByte(req, ' ')]); resp.StatusCode != 200 {
			t.Fatalf("%q: status %d", req, resp.StatusCode)
		}
		if got := <-lines; got != want {
			t.Errorf("%q reached the backend as %q, want %q", req, got, want)
		}
	}
}

// TestRoutingSetForwardedFields: a route's setRequestHeaders replaces
// every field of that name (docs/configuration.md), the X-Forwarded-*
// fields ConnX writes itself included: a TLS terminator in front of ConnX
// sets X-Forwarded-Proto to https, and the backend must not also see
// ConnX's "http". removeRequestHeaders drops them likewise.
func TestRoutingSetForwardedFields(t *testing.T) {
	be := namedEcho(t, "a")
	cfg := routedConfig(t, fmt.Sprintf(`
pools:
  a:
    backends: ["http://%s"]
routes:
  - match: {pathPrefix: "/set"}
    pool: a
    setRequestHeaders: {X-Forwarded-Proto: "https", X-Forwarded-Host: "www.example.com", X-Forwarded-For: "192.0.2.1"}
  - match: {pathPrefix: "/remove"}
    pool: a
    removeRequestHeaders: [X-Forwarded-For]
  - match: {pathPrefix: "/plain"}
    pool: a
`, be))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())
	const fwd = "X-Forwarded-For: 198.51.100.7\r\n"
	_, _, s := rc.do("GET /set HTTP/1.1\r\nHost: h.example\r\n" + fwd + "\r\n")
	for name, want := range map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.example.com", "X-Forwarded-For": "192.0.2.1",
	} {
		if got := strings.Join(s.Header.Values(name), " | "); got != want {
			t.Errorf("set %s: the backend saw %q, want %q", name, got, want)
		}
	}
	_, _, s = rc.do("GET /remove HTTP/1.1\r\nHost: h.example\r\n" + fwd + "\r\n")
	if got := s.Header.Values("X-Forwarded-For"); len(got) != 0 || s.Header.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("remove X-Forwarded-For: the backend saw %q (X-Forwarded-Proto %q)", got, s.Header.Get("X-Forwarded-Proto"))
	}
	_, _, s = rc.do("GET /plain HTTP/1.1\r\nHost: h.example\r\n" + fwd + "\r\n")
	if got := strings.Join(s.Header.Values("X-Forwarded-For"), " | "); got != "198.51.100.7, 127.0.0.1" ||
		s.Header.Get("X-Forwarded-Proto") != "http" || s.Header.Get("X-Forwarded-Host") != "h.example" {
		t.Errorf("no modifiers: the backend saw %v", s.Header)
	}
}

// TestRoutingSlowBodyIsNotABackendTimeout: a client that pauses in the
// middle of its request body, for less than timeouts.clientBody, is not
// the backend's fault. upstreamResponseHeader runs from the request being
// fully sent (docs/configuration.md); with a route's short value it used
// to run from each body write, so the pause was answered 504 and counted
// as a backend timeout (breaker, outlier detection): a slow client could
// take a healthy backend out of service.
func TestRoutingSlowBodyIsNotABackendTimeout(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	cfg := routedConfig(t, fmt.Sprintf(`
pools:
  a:
    backends: ["http://%s"]
routes:
  - match: {pathPrefix: "/up"}
    pool: a
    timeouts: {upstreamResponseHeader: 0.2, clientBody: 60}
`, be))
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())
	rc.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	// Pause well past upstreamResponseHeader: nothing may come back.
	_ = rc.c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := rc.br.Peek(1); err == nil {
		resp, body := rc.response(http.MethodPost)
		t.Fatalf("during the client's pause: %d %q, want no answer yet", resp.StatusCode, body)
	}
	rc.send("defghij")
	if resp, body := rc.response(http.MethodPost); resp.StatusCode != 200 || body != "abcdefghij" {
		t.Fatalf("after the pause: %d %q, want 200 with the body echoed", resp.StatusCode, body)
	}
	if n := settledStats(t, srv, 1).Errors[stats.ErrTimeout]; n != 0 {
		t.Errorf("%d upstream timeouts counted, want 0", n)
	}
}
