package admin

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/health"
	"github.com/connx/connx/internal/stats"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// backend returns a healthy, up backend named http://<host>:8080.
func backend(host string) stats.Backend {
	name := "http://" + host + ":8080"
	return stats.Backend{
		Name: name, Addr: host + ":8080", Weight: 1, Up: true,
		Health: health.BackendState{URL: name, Available: true, Healthy: true, Breaker: "closed"},
	}
}

// fixed returns a Source that always reports snap.
func fixed(snap stats.Snapshot) stats.Source {
	return func(s *stats.Snapshot) { *s = snap }
}

// get serves one request through h and returns the response.
func get(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := rec.Result()
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s %s: Cache-Control %q, want no-store", method, target, cc)
	}
	return res
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decode checks the status and content type of res and decodes its JSON
// body into v.
func decode(t *testing.T, res *http.Response, code int, v any) {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("status %d, want %d", res.StatusCode, code)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestHealthz(t *testing.T) {
	h := New(Options{}).Handler()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		res := get(t, h, m, "/healthz")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", m, res.StatusCode)
		}
		if m == http.MethodGet {
			if b := body(t, res); b != "ok\n" {
				t.Fatalf("body %q", b)
			}
		}
	}
}

// inPool returns b as a member of pool.
func inPool(pool string, b stats.Backend) stats.Backend {
	b.Pool = pool
	return b
}

func TestReadyz(t *testing.T) {
	down := backend("b")
	down.Up = false
	def := func(backends, up int, panic bool) PoolState {
		return PoolState{Name: stats.DefaultPool, Ready: up > 0, BackendsUp: up, Backends: backends, Panic: panic}
	}
	api := func(backends, up int) PoolState {
		return PoolState{Name: "api", Ready: up > 0, BackendsUp: up, Backends: backends}
	}
	twoPools := func(apiUp, defUp int) stats.Snapshot {
		return stats.Snapshot{
			Pools: []stats.Pool{{Name: stats.DefaultPool, Backends: 1, Up: defUp}, {Name: "api", Backends: 2, Up: apiUp}},
		}
	}
	tests := []struct {
		name   string
		target string
		snap   stats.Snapshot
		code   int
		want   Readiness
	}{
		// Snapshots from a data plane that does not fill Pools: the
		// backends make up the default pool.
		{"no backends", "/readyz", stats.Snapshot{}, 503,
			Readiness{Ready: false, Pools: []PoolState{def(0, 0, false)}}},
		{"none up", "/readyz", stats.Snapshot{Backends: []stats.Backend{down}}, 503,
			Readiness{Ready: false, Backends: 1, Pools: []PoolState{def(1, 0, false)}}},
		{"one of two up", "/readyz", stats.Snapshot{Backends: []stats.Backend{backend("a"), down}}, 200,
			Readiness{Ready: true, BackendsUp: 1, Backends: 2, Pools: []PoolState{def(2, 1, false)}}},
		{"panic mode", "/readyz", stats.Snapshot{Backends: []stats.Backend{backend("a"), down}, Pool: stats.Pool{Panic: true}}, 200,
			Readiness{Ready: true, BackendsUp: 1, Backends: 2, Panic: true, Pools: []PoolState{def(2, 1, true)}}},

		// Pools: one pool up is enough; ?pool= probes one.
		{"one pool down", "/readyz", twoPools(0, 1), 200,
			Readiness{Ready: true, BackendsUp: 1, Backends: 3, Pools: []PoolState{def(1, 1, false), api(2, 0)}}},
		{"all pools down", "/readyz", twoPools(0, 0), 503,
			Readiness{Ready: false, BackendsUp: 0, Backends: 3, Pools: []PoolState{def(1, 0, false), api(2, 0)}}},
		{"?pool= down", "/readyz?pool=api", twoPools(0, 1), 503,
			Readiness{Ready: false, BackendsUp: 0, Backends: 2, Pools: []PoolState{api(2, 0)}}},
		{"?pool= up", "/readyz?pool=api", twoPools(2, 0), 200,
			Readiness{Ready: true, BackendsUp: 2, Backends: 2, Pools: []PoolState{api(2, 2)}}},
		{"?pool=default", "/readyz?pool=default", twoPools(2, 0), 503,
			Readiness{Ready: false, BackendsUp: 0, Backends: 1, Pools: []PoolState{def(1, 0, false)}}},

		// Only redirect and respond routes: every request is answered.
		{"routes without backends", "/readyz", stats.Snapshot{Routes: []stats.Route{{Name: "old", Action: "redirect"}}}, 200,
			Readiness{Ready: true, Pools: []PoolState{def(0, 0, false)}}},
		// Pool routes whose pools are down are not ready.
		{"routes, pools down", "/readyz", func() stats.Snapshot {
			s := twoPools(0, 0)
			s.Routes = []stats.Route{{Name: "api", Action: "pool", Pool: "api"}}
			return s
		}(), 503, Readiness{Ready: false, Backends: 3, Pools: []PoolState{def(1, 0, false), api(2, 0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{Stats: fixed(tt.snap)}).Handler()
			var got Readiness
			decode(t, get(t, h, "GET", tt.target), tt.code, &got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// A nil Source is an empty snapshot: not ready.
	var got Readiness
	decode(t, get(t, New(Options{}).Handler(), "GET", "/readyz"), 503, &got)

	// An unknown pool is 404, with the reason.
	var e map[string]string
	decode(t, get(t, New(Options{}).Handler(), "GET", "/readyz?pool=nope"), 404, &e)
	if e["error"] != `no pool "nope"` {
		t.Errorf("unknown pool: %v", e)
	}
}

func TestBackends(t *testing.T) {
	a, b := backend("a"), backend("b")
	a.Weight, a.InFlight, a.Latency, a.IdleConns, a.OpenConns = 3, 7, 12345678*time.Nanosecond, 4, 9
	a.LatencyPenalty = 2500 * time.Microsecond
	a.Health.Checked, a.Health.ChecksOK, a.Health.ChecksFailed = true, 40, 2
	a.Health.LastCheck = t0.Add(-time.Second)
	a.Health.HealthSince = t0.Add(-time.Hour)
	a.Health.LastError, a.Health.LastErrorAt = "request: timeout", t0.Add(-time.Minute)
	b.Up = false
	b.Health.Healthy, b.Health.Available = false, false
	b.Health.Ejected, b.Health.EjectedUntil = true, t0.Add(30*time.Second)
	b.Health.Breaker, b.Health.BreakerSince, b.Health.Failures = "open", t0.Add(-5*time.Second), 5
	snap := stats.Snapshot{
		Time:     t0,
		Backends: []stats.Backend{a, b},
		Requests: []stats.RequestCount{
			{Method: "GET", Code: 200, Backend: a.Name, Count: 100},
			{Method: "POST", Code: 201, Backend: a.Name, Count: 10},
			{Method: "GET", Code: 502, Backend: a.Name, Count: 3},
			{Method: "GET", Code: 504, Backend: b.Name, Count: 2},
			{Method: "GET", Code: 404, Backend: b.Name, Count: 1},
			{Method: "GET", Code: 503, Backend: stats.NoBackend, Count: 50},
		},
	}
	h := New(Options{Stats: fixed(snap)}).Handler()

	// The field names are the API: check them exactly, on the raw JSON.
	var raw []map[string]any
	decode(t, get(t, h, "GET", "/api/backends"), 200, &raw)
	if len(raw) != 2 {
		t.Fatalf("%d backends, want 2", len(raw))
	}
	keys := make([]string, 0, len(raw[0]))
	for k := range raw[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{
		"addr", "breaker", "breaker_failures", "breaker_since", "checked", "checks_failed", "checks_ok",
		"ejected", "ejected_until", "ejections", "errors", "health_since", "healthy", "idle_conns",
		"in_flight", "last_check", "last_error", "last_error_at", "latency_ms", "latency_penalty_ms", "name", "open_conns",
		"pool", "requests", "state", "up", "weight",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys\n got %q\nwant %q", keys, want)
	}
	if raw[0]["ejected_until"] != nil || raw[0]["breaker_since"] != nil {
		t.Errorf("unset times should be null: %v, %v", raw[0]["ejected_until"], raw[0]["breaker_since"])
	}

	var got []Backend
	decode(t, get(t, h, "GET", "/api/backends"), 200, &got)
	ga, gb := got[0], got[1]
	if ga.Pool != stats.DefaultPool || gb.Pool != stats.DefaultPool {
		t.Errorf("pools %q, %q: a snapshot without pools has the default pool only", ga.Pool, gb.Pool)
	}
	if ga.Name != a.Name || ga.Addr != "a:8080" || ga.Weight != 3 || ga.State != StateUp || !ga.Up || !ga.Healthy || !ga.Checked {
		t.Errorf("a: %+v", ga)
	}
	if ga.InFlight != 7 || ga.LatencyMS != 12.345 || ga.PenaltyMS != 2.5 || ga.IdleConns != 4 || ga.OpenConns != 9 {
		t.Errorf("a: in flight %d, latency %v ms (penalty %v), conns %d/%d", ga.InFlight, ga.LatencyMS, ga.PenaltyMS, ga.OpenConns, ga.IdleConns)
	}
	if ga.Requests != 113 || ga.Errors != 3 {
		t.Errorf("a: requests %d errors %d, want 113 and 3", ga.Requests, ga.Errors)
	}
	if ga.ChecksOK != 40 || ga.ChecksFailed != 2 || ga.LastError != "request: timeout" ||
		!ga.LastErrorAt.Equal(t0.Add(-time.Minute)) || !ga.LastCheck.Equal(t0.Add(-time.Second)) {
		t.Errorf("a: checks/last error: %+v", ga)
	}
	if gb.State != StateDown || gb.Up || gb.Healthy || !gb.Ejected || gb.Breaker != "open" || gb.BreakerFailures != 5 {
		t.Errorf("b: %+v", gb)
	}
	if gb.EjectedUntil == nil || !gb.EjectedUntil.Equal(t0.Add(30*time.Second)) || !gb.BreakerSince.Equal(t0.Add(-5*time.Second)) {
		t.Errorf("b: ejected until %v, breaker since %v", gb.EjectedUntil, gb.BreakerSince)
	}
	if gb.Requests != 3 || gb.Errors != 2 {
		t.Errorf("b: requests %d errors %d, want 3 and 2", gb.Requests, gb.Errors)
	}

	// No backends is [], not null.
	h = New(Options{Stats: fixed(stats.Snapshot{})}).Handler()
	if b := strings.TrimSpace(body(t, get(t, h, "GET", "/api/backends"))); b != "[]" {
		t.Fatalf("empty: %q", b)
	}
}

// TestBackendsByPool checks that the same URL in two pools is two
// backends, each with its own state and request counts.
func TestBackendsByPool(t *testing.T) {
	a, apiA, apiB := inPool(stats.DefaultPool, backend("a")), inPool("api", backend("a")), inPool("api", backend("b"))
	apiA.Up, apiA.Health.Breaker = false, "open"
	snap := stats.Snapshot{
		Time:     t0,
		Backends: []stats.Backend{a, apiA, apiB},
		Requests: []stats.RequestCount{
			{Method: "GET", Code: 200, Backend: a.Name, Pool: stats.DefaultPool, Count: 10},
			{Method: "GET", Code: 200, Backend: a.Name, Pool: "api", Count: 4},
			{Method: "GET", Code: 502, Backend: a.Name, Pool: "api", Count: 2},
			{Method: "GET", Code: 200, Backend: apiB.Name, Pool: "api", Count: 7},
			{Method: "GET", Code: 503, Backend: stats.NoBackend, Pool: "api", Count: 1},
			{Method: "GET", Code: 404, Backend: stats.NoBackend, Count: 3},
		},
	}
	var got []Backend
	decode(t, get(t, New(Options{Stats: fixed(snap)}).Handler(), "GET", "/api/backends"), 200, &got)
	type row struct {
		pool, name, state string
		requests, errors  uint64
	}
	var rows []row
	for _, b := range got {
		rows = append(rows, row{b.Pool, b.Name, b.State, b.Requests, b.Errors})
	}
	want := []row{
		{"default", a.Name, StateUp, 10, 0},
		{"api", a.Name, StateOpen, 6, 2},
		{"api", apiB.Name, StateUp, 7, 0},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("backends\n got %+v\nwant %+v", rows, want)
	}
}

func TestPools(t *testing.T) {
	snap := stats.Snapshot{
		Time: t0,
		Pool: stats.Pool{Name: stats.DefaultPool, Backends: 2, Up: 2},
		Pools: []stats.Pool{
			{Name: stats.DefaultPool, Backends: 2, Up: 2},
			{Name: "api", Backends: 3, Up: 1, Panic: true, Panics: 4},
			{Name: "static", Backends: 1, Up: 0},
		},
		Requests: []stats.RequestCount{
			{Method: "GET", Code: 200, Backend: "http://a:8080", Pool: stats.DefaultPool, Count: 10},
			{Method: "GET", Code: 200, Backend: "http://a:8080", Pool: "api", Count: 4},
			{Method: "GET", Code: 502, Backend: "http://b:8080", Pool: "api", Count: 2},
			{Method: "GET", Code: 503, Backend: stats.NoBackend, Pool: "static", Count: 5},
			{Method: "GET", Code: 429, Backend: stats.NoBackend, Count: 3}, // no pool: counted nowhere
		},
	}
	h := New(Options{Stats: fixed(snap)}).Handler()
	var raw []map[string]any
	decode(t, get(t, h, "GET", "/api/pools"), 200, &raw)
	if len(raw) != 3 {
		t.Fatalf("%d pools, want 3", len(raw))
	}
	keys := slices.Sorted(maps.Keys(raw[0]))
	if want := []string{"backends", "backends_up", "errors", "name", "panic", "panics", "ready", "requests"}; !slices.Equal(keys, want) {
		t.Fatalf("keys\n got %q\nwant %q", keys, want)
	}
	var got []Pool
	decode(t, get(t, h, "GET", "/api/pools"), 200, &got)
	want := []Pool{
		{PoolState: PoolState{Name: "default", Ready: true, BackendsUp: 2, Backends: 2}, Requests: 10},
		{PoolState: PoolState{Name: "api", Ready: true, BackendsUp: 1, Backends: 3, Panic: true}, Panics: 4, Requests: 6, Errors: 2},
		{PoolState: PoolState{Name: "static", Backends: 1}, Requests: 5, Errors: 5},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pools\n got %+v\nwant %+v", got, want)
	}

	// A pool with DNS discovery has its state; the others no key.
	snap.Pools[1].Discovery = stats.Discovery{Active: true, Name: "_http._tcp.api.test", Type: "SRV", State: "failing",
		Members: 3, Resolutions: 9, Failures: 2, LastAnswer: t0.Add(-time.Minute), LastError: "discovery: SERVFAIL"}
	decode(t, get(t, New(Options{Stats: fixed(snap)}).Handler(), "GET", "/api/pools"), 200, &raw)
	if _, ok := raw[0]["discovery"]; ok {
		t.Errorf("default pool without discovery has a discovery key: %v", raw[0])
	}
	d, _ := raw[1]["discovery"].(map[string]any)
	dk := slices.Sorted(maps.Keys(d))
	if want := []string{"failures", "last_answer", "last_error", "members", "name", "resolutions", "state", "type"}; !slices.Equal(dk, want) {
		t.Fatalf("discovery keys\n got %q\nwant %q", dk, want)
	}
	if d["state"] != "failing" || d["members"] != 3.0 || d["failures"] != 2.0 || d["last_error"] != "discovery: SERVFAIL" ||
		d["last_answer"] != t0.Add(-time.Minute).Format(time.RFC3339Nano) {
		t.Errorf("discovery %v", d)
	}

	// Without pools in the snapshot: the default pool alone.
	decode(t, get(t, New(Options{Stats: fixed(stats.Snapshot{Backends: []stats.Backend{backend("a")}})}).Handler(), "GET", "/api/pools"), 200, &got)
	if want := []Pool{{PoolState: PoolState{Name: "default", Ready: true, BackendsUp: 1, Backends: 1}}}; !slices.Equal(got, want) {
		t.Fatalf("default pool only: got %+v, want %+v", got, want)
	}
}

func TestRoutes(t *testing.T) {
	snap := stats.Snapshot{
		Time: t0,
		Routes: []stats.Route{
			{Name: "api", Action: "pool", Pool: "api", Requests: [5]uint64{1, 100, 3, 4, 5},
				RateLimit: stats.RateLimit{Enabled: true, Allowed: 113, Rejected: 4, Keys: 2}},
			{Name: "routes[1]", Action: "redirect", Requests: [5]uint64{0, 0, 7, 0, 0}},
			{Name: "maintenance", Action: "respond"},
		},
	}
	h := New(Options{Stats: fixed(snap)}).Handler()
	var raw []map[string]any
	decode(t, get(t, h, "GET", "/api/routes"), 200, &raw)
	if len(raw) != 3 {
		t.Fatalf("%d routes, want 3", len(raw))
	}
	keys := slices.Sorted(maps.Keys(raw[0]))
	if want := []string{"action", "name", "pool", "rate_limit", "requests", "responses"}; !slices.Equal(keys, want) {
		t.Fatalf("keys\n got %q\nwant %q", keys, want)
	}
	var got []Route
	decode(t, get(t, h, "GET", "/api/routes"), 200, &got)
	want := []Route{
		{Name: "api", Action: "pool", Pool: "api", Requests: 113,
			Responses: StatusClasses{C1xx: 1, C2xx: 100, C3xx: 3, C4xx: 4, C5xx: 5},
			RateLimit: RateLimit{Enabled: true, Allowed: 113, Rejected: 4, Keys: 2}},
		{Name: "routes[1]", Action: "redirect", Requests: 7, Responses: StatusClasses{C3xx: 7}},
		{Name: "maintenance", Action: "respond"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("routes\n got %+v\nwant %+v", got, want)
	}

	// No routes is [], not null.
	if b := strings.TrimSpace(body(t, get(t, New(Options{}).Handler(), "GET", "/api/routes"))); b != "[]" {
		t.Fatalf("no routes: %q", b)
	}
}

func TestState(t *testing.T) {
	tests := []struct {
		name string
		edit func(*stats.Backend)
		want string
	}{
		{"up", func(*stats.Backend) {}, StateUp},
		{"half-open and up", func(b *stats.Backend) { b.Health.Breaker = "half-open" }, StateHalfOpen},
		{"breaker open", func(b *stats.Backend) { b.Up = false; b.Health.Breaker = "open" }, StateOpen},
		{"ejected", func(b *stats.Backend) { b.Up = false; b.Health.Ejected = true; b.Health.Breaker = "open" }, StateEjected},
		{"unhealthy", func(b *stats.Backend) { b.Up = false; b.Health.Healthy = false; b.Health.Ejected = true }, StateDown},
		{"not up, no reason", func(b *stats.Backend) { b.Up = false }, StateDown},
		{"weight 0", func(b *stats.Backend) { b.Weight = 0; b.Up = false }, StateDraining},
		{"in panic mode, breaker open but up", func(b *stats.Backend) { b.Health.Breaker = "open" }, StateOpen},
		{"breaker disabled", func(b *stats.Backend) { b.Health.Breaker = "disabled" }, StateUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backend("x")
			tt.edit(&b)
			if got := state(&b); got != tt.want {
				t.Fatalf("state %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStats(t *testing.T) {
	snap := stats.Snapshot{
		Time: t0, Started: t0.Add(-90 * time.Minute),
		Active: 12, Parked: 1, Closing: 2, Tunnels: 3,
		Requests: []stats.RequestCount{
			{Method: "GET", Code: 101, Backend: "http://a:8080", Count: 1},
			{Method: "GET", Code: 200, Backend: "http://a:8080", Count: 100},
			{Method: "GET", Code: 304, Backend: "http://a:8080", Count: 5},
			{Method: "GET", Code: 499, Backend: "http://a:8080", Count: 2},
			{Method: "GET", Code: 429, Backend: stats.NoBackend, Count: 7},
			{Method: "GET", Code: 503, Backend: stats.NoBackend, Count: 4},
		},
		BytesIn: 1000, BytesOut: 5000,
		Backends:  []stats.Backend{backend("a"), backend("b")},
		RateLimit: stats.RateLimit{Enabled: true, Allowed: 100, Rejected: 7, Keys: 3},
		AccessLog: stats.AccessLog{Enabled: true, Written: 116, Dropped: 1},
		Reloads:   stats.Reloads{Success: 2, Failure: 1, LastSuccess: t0.Add(-time.Minute), LastFailure: t0.Add(-2 * time.Minute)},
		Pool:      stats.Pool{Panic: true, Panics: 3},
	}
	snap.Errors[stats.ErrRateLimited] = 7
	snap.Errors[stats.ErrNoBackend] = 4
	snap.Backends[1].Up = false
	h := New(Options{Stats: fixed(snap)}).Handler()

	var raw map[string]any
	decode(t, get(t, h, "GET", "/api/stats"), 200, &raw)
	for _, k := range []string{"time", "started", "uptime_seconds", "connections", "requests", "responses",
		"errors", "bytes_in", "bytes_out", "backends", "rate_limit", "access_log", "reloads"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no key %q", k)
		}
	}
	if n := len(raw["errors"].(map[string]any)); n != int(stats.NumErrorKinds) {
		t.Errorf("%d error kinds, want %d", n, stats.NumErrorKinds)
	}

	var s Summary
	decode(t, get(t, h, "GET", "/api/stats"), 200, &s)
	if s.UptimeSeconds != 5400 || !s.Started.Equal(t0.Add(-90*time.Minute)) || !s.Time.Equal(t0) {
		t.Errorf("uptime %v started %v time %v", s.UptimeSeconds, s.Started, s.Time)
	}
	if s.Connections != (Connections{Active: 12, Parked: 1, Closing: 2, Tunnels: 3}) {
		t.Errorf("connections %+v", s.Connections)
	}
	if s.Requests != 119 || s.Responses != (StatusClasses{C1xx: 1, C2xx: 100, C3xx: 5, C4xx: 9, C5xx: 4}) {
		t.Errorf("requests %d, responses %+v", s.Requests, s.Responses)
	}
	if s.Errors["rate_limited"] != 7 || s.Errors["no_backend"] != 4 || s.Errors["connect"] != 0 {
		t.Errorf("errors %v", s.Errors)
	}
	if s.Backends != (BackendCount{Total: 2, Up: 1, Panic: true, Panics: 3}) {
		t.Errorf("backends %+v", s.Backends)
	}

	// With pools, backends counts every pool's: panic if any pool is in
	// panic mode, panics summed.
	snap.Pools = []stats.Pool{
		{Name: stats.DefaultPool, Backends: 2, Up: 1},
		{Name: "api", Backends: 3, Up: 3, Panic: true, Panics: 2},
		{Name: "static", Backends: 1, Up: 0, Panics: 1},
	}
	decode(t, get(t, New(Options{Stats: fixed(snap)}).Handler(), "GET", "/api/stats"), 200, &s)
	if s.Backends != (BackendCount{Total: 6, Up: 4, Panic: true, Panics: 3}) {
		t.Errorf("backends over pools %+v", s.Backends)
	}
	if !s.RateLimit.Enabled || s.RateLimit.Rejected != 7 || s.RateLimit.Keys != 3 || s.AccessLog.Dropped != 1 {
		t.Errorf("rate limit %+v, access log %+v", s.RateLimit, s.AccessLog)
	}
	if s.Reloads.Success != 2 || s.Reloads.Failure != 1 || !s.Reloads.LastSuccess.Equal(t0.Add(-time.Minute)) {
		t.Errorf("reloads %+v", s.Reloads)
	}
}

func TestMethodNotAllowedAndNotFound(t *testing.T) {
	h := New(Options{Metrics: http.NotFoundHandler()}).Handler()
	for _, path := range []string{"/", "/healthz", "/readyz", "/api/backends", "/api/pools", "/api/routes", "/api/stats", "/api/tls", "/api/config", "/metrics"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			res := get(t, h, m, path)
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, path, res.StatusCode)
			}
			if a := res.Header.Get("Allow"); !strings.Contains(a, "GET") {
				t.Errorf("%s %s: Allow %q", m, path, a)
			}
		}
	}
	for _, path := range []string{"/nope", "/api", "/api/", "/api/backends/x", "/index.html", "/healthz/"} {
		if res := get(t, h, "GET", path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}
}

func TestMetrics(t *testing.T) {
	m := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "connx_up 1\n") })
	res := get(t, New(Options{Metrics: m}).Handler(), "GET", "/metrics")
	if res.StatusCode != 200 || body(t, res) != "connx_up 1\n" {
		t.Fatalf("with Metrics: status %d", res.StatusCode)
	}
	if res := get(t, New(Options{}).Handler(), "GET", "/metrics"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("without Metrics: status %d, want 404", res.StatusCode)
	}
}

func TestStatusPage(t *testing.T) {
	h := New(Options{Refresh: 250 * time.Millisecond, Metrics: http.NotFoundHandler()}).Handler()
	res := get(t, h, "GET", "/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	page := body(t, res)
	if !strings.Contains(page, `data-refresh="250"`) || !strings.Contains(page, `data-metrics="true"`) {
		t.Errorf("settings not filled in")
	}
	if strings.Contains(page, "{{") {
		t.Errorf("unfilled placeholder")
	}
	// Self-contained: no external scripts, styles, images or fonts.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(`).FindString(page); m != "" {
		t.Errorf("external reference %q", m)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Errorf("CSP %q", csp)
	}
	if p := string(renderPage(time.Second, false)); !strings.Contains(p, `data-refresh="1000"`) || !strings.Contains(p, `data-metrics="false"`) {
		t.Errorf("renderPage defaults")
	}
	if s := New(Options{}); !strings.Contains(string(s.page), `data-refresh="1000"`) {
		t.Errorf("default Refresh is not 1s")
	}
}

func TestStartShutdown(t *testing.T) {
	s := New(Options{Addr: "127.0.0.1:0"})
	if s.Addr() != nil {
		t.Fatal("Addr before Start")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Start: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.IdleTimeout <= 0 || s.srv.MaxHeaderBytes <= 0 {
		t.Error("server timeouts not set")
	}
	addr := s.Addr().String()
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, res); res.StatusCode != 200 || b != "ok\n" {
		t.Fatalf("status %d body %q", res.StatusCode, b)
	}
	res.Body.Close()

	// Another server on the same address fails, naming it.
	err = New(Options{Addr: addr}).Start()
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("listen on a used address: %v", err)
	}

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("still listening after Shutdown")
	}
}
