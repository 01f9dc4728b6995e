package metrics

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/connx/connx/internal/health"
	"github.com/connx/connx/internal/stats"
)

var (
	t0      = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	started = t0.Add(-90 * time.Second)
)

const (
	backendA = "http://10.0.0.1:8080"
	backendB = "http://10.0.0.2:8080"
)

// fixed is a Source that always reports s.
func fixed(s stats.Snapshot) stats.Source {
	return func(dst *stats.Snapshot) { *dst = s }
}

// hist builds a stats.Histogram from non-cumulative counts given by
// bucket index.
func hist(backend string, sum float64, counts map[int]uint64) stats.Histogram {
	h := stats.Histogram{Backend: backend, Counts: make([]uint64, len(stats.DurationBuckets)+1), Sum: sum}
	for i, n := range counts {
		h.Counts[i] = n
		h.Count += n
	}
	return h
}

// h2 returns h with Protocol "h2".
func h2(h stats.Histogram) stats.Histogram {
	h.Protocol = "h2"
	return h
}

// inPool returns h with Pool set.
func inPool(pool string, h stats.Histogram) stats.Histogram {
	h.Pool = pool
	return h
}

func backend(name string, breakerState string) stats.Backend {
	return stats.Backend{
		Name: name, Addr: strings.TrimPrefix(name, "http://"), Weight: 1, Up: true,
		Health: health.BackendState{URL: name, Available: true, Healthy: true, Breaker: breakerState},
	}
}

// sampleSnapshot is a small, fully known snapshot: backends A and B in
// the default pool, A again (a member of its own) in pool "api", and two
// routes.
func sampleSnapshot() stats.Snapshot {
	a := backend(backendA, "closed")
	a.Pool = stats.DefaultPool
	a.Weight, a.InFlight, a.Latency = 3, 4, 2500*time.Microsecond
	a.IdleConns, a.OpenConns = 5, 9
	a.Health.ChecksOK, a.Health.ChecksFailed = 12, 1
	b := backend(backendB, "open")
	b.Pool = stats.DefaultPool
	b.Up, b.Health.Available, b.Health.Healthy, b.Health.Ejected = false, false, false, true
	apiA := backend(backendA, "half-open")
	apiA.Pool = "api"
	apiA.Weight, apiA.InFlight, apiA.IdleConns, apiA.OpenConns = 2, 1, 1, 2
	apiA.Health.ChecksOK = 3

	def := stats.Pool{Name: stats.DefaultPool, Backends: 2, Up: 1, Panic: true, Panics: 2}
	s := stats.Snapshot{
		Time: t0, Started: started,
		Active: 7, Parked: 1, Closing: 2, Tunnels: 3,
		Requests: []stats.RequestCount{
			{Method: "GET", Code: 200, Backend: backendA, Pool: stats.DefaultPool, Protocol: "http1", Count: 10},
			{Method: "GET", Code: 200, Backend: backendA, Pool: stats.DefaultPool, Protocol: "h2", Count: 7},
			{Method: "GET", Code: 502, Backend: backendA, Pool: stats.DefaultPool, Count: 2},
			{Method: "POST", Code: 200, Backend: backendB, Pool: stats.DefaultPool, Count: 4},
			{Method: "OTHER", Code: 499, Backend: backendB, Pool: stats.DefaultPool, Count: 1},
			{Method: "GET", Code: 200, Backend: backendA, Pool: "api", Count: 8},
			{Method: "GET", Code: 503, Backend: stats.NoBackend, Pool: "api", Count: 3},
			{Method: "GET", Code: 429, Backend: stats.NoBackend, Count: 6},
			{Method: "GET", Code: 301, Backend: stats.NoBackend, Count: 5},
		},
		GRPCCalls: []stats.GRPCCount{
			{Status: "0", Backend: backendA, Pool: "api", Count: 7},
			{Status: "14", Backend: backendA, Pool: "api", Count: 1},
			{Status: "14", Backend: stats.NoBackend, Pool: "api", Count: 3},
			{Status: "other", Backend: backendA, Pool: "api", Count: 2},
		},
		Durations: []stats.Histogram{
			inPool(stats.DefaultPool, hist(backendA, 12.5, map[int]uint64{0: 2, 3: 5, 9: 1, 14: 3})),
			h2(inPool(stats.DefaultPool, hist(backendA, 0.007, map[int]uint64{1: 7}))),
			inPool(stats.DefaultPool, hist(backendB, 0.25, map[int]uint64{1: 5})),
			inPool("api", hist(backendA, 0.5, map[int]uint64{4: 8})),
			hist(stats.NoBackend, 0.003, map[int]uint64{0: 6}),
		},
		BytesIn: 1000, BytesOut: 20000, Refused: 5, Denied: 4, DroppedHeaders: 9,
		ProxyProtocolErrors: [stats.NumProxyProtocolReasons]uint64{0: 3, 1: 2, 4: 1},
		Backends:            []stats.Backend{a, b, apiA},
		RateLimit: stats.RateLimit{
			Enabled: true, Allowed: 100, Rejected: 6, Exempt: 2, Keys: 17, Evicted: 4,
			Redis: stats.Redis{Active: true, Up: true, Instances: 3, Syncs: 40, Failures: 2},
		},
		AccessLog: stats.AccessLog{Enabled: true, Written: 23, Dropped: 1},
		Pool:      def,
		Pools: []stats.Pool{def, {Name: "api", Backends: 1, Up: 1, Panics: 1,
			Discovery: stats.Discovery{Active: true, Name: "_http._tcp.api.test", Type: "SRV", State: "failing",
				Members: 1, Resolutions: 9, Failures: 2, LastError: "discovery: SERVFAIL"}}},
		Routes: []stats.Route{
			{Name: "api", Action: "pool", Pool: "api", Requests: [5]uint64{0, 8, 0, 0, 3},
				Duration: hist("", 0.6, map[int]uint64{4: 8, 6: 3})},
			{Name: "routes[2]", Action: "redirect", Requests: [5]uint64{0, 0, 5, 0, 0},
				Duration: hist("", 0.001, map[int]uint64{0: 5})},
		},
		Reloads: stats.Reloads{
			Success: 2, Failure: 1,
			LastSuccess: t0.Add(-10 * time.Second), LastFailure: t0.Add(-20 * time.Second),
		},
	}
	s.TLS = sampleTLS()
	s.Errors[stats.ErrConnect] = 2
	s.Errors[stats.ErrClientAbort] = 1
	s.Errors[stats.ErrRateLimited] = 6
	s.Errors[stats.ErrNoBackend] = 3
	return s
}

// sampleTLS is an HTTPS listener's state with two certificates.
func sampleTLS() *stats.TLS {
	t := &stats.TLS{InProgress: 2, Duration: hist("", 0.02, map[int]uint64{0: 7, 2: 1})}
	for _, v := range stats.TLSVersions {
		t.Handshakes = append(t.Handshakes, stats.TLSHandshakes{Version: v, Result: "full", Count: 3}, stats.TLSHandshakes{Version: v, Result: "resumed", Count: 1})
	}
	for _, r := range stats.TLSFailures {
		t.Handshakes = append(t.Handshakes, stats.TLSHandshakes{Version: "none", Result: r, Count: 5})
	}
	t.Certificates = []stats.Certificate{
		{CertFile: "/etc/connx/a.pem", Names: []string{"a.example.com", "b.example.com"}, NotAfter: t0.Add(14 * 24 * time.Hour)},
		{CertFile: "/etc/connx/wild.pem", Names: []string{"*.example.com"}, NotAfter: t0.Add(time.Hour)},
		{CertFile: "/etc/connx/wild.pem", Names: []string{"*.example.com"}, NotAfter: t0.Add(time.Hour)}, // listed twice
	}
	return t
}

// scrape renders e with AppendText and parses the result.
func scrape(t testing.TB, e *Exporter) (text []byte, series map[string]map[string]float64) {
	t.Helper()
	text, err := e.AppendText(nil)
	if err != nil {
		t.Fatalf("AppendText: %v", err)
	}
	return text, flatten(parse(t, text))
}

func parse(t testing.TB, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parsing the exposition: %v\n%s", err, text)
	}
	return mfs
}

// flatten turns families into family name -> series -> value, where a
// series is written name{label="value",...} with labels in name order,
// values quoted with %q, and histograms expanded into _bucket, _count
// and _sum series.
func flatten(mfs map[string]*dto.MetricFamily) map[string]map[string]float64 {
	out := make(map[string]map[string]float64, len(mfs))
	for name, mf := range mfs {
		ss := make(map[string]float64)
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := func(suffix string, extra ...string) string {
				l := append(append([]string(nil), labels...), extra...)
				sort.Strings(l)
				if len(l) == 0 {
					return name + suffix
				}
				return name + suffix + "{" + strings.Join(l, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				ss[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				ss[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					ss[key("_bucket", fmt.Sprintf("le=%q", leString(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
				ss[key("_count")] = float64(h.GetSampleCount())
				ss[key("_sum")] = h.GetSampleSum()
			default:
				ss[key("")] = m.GetUntyped().GetValue()
			}
		}
		out[name] = ss
	}
	return out
}

func leString(f float64) string {
	if f > 1e308 {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// wantFamily checks that family name has exactly the series in want.
func wantFamily(t *testing.T, got map[string]map[string]float64, name string, want map[string]float64) {
	t.Helper()
	if !maps.Equal(got[name], want) {
		t.Errorf("%s:\n got %s\nwant %s", name, dump(got[name]), dump(want))
	}
}

func dump(m map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "\n\t%s %v", k, m[k])
	}
	return b.String()
}

func TestRequestCounts(t *testing.T) {
	_, got := scrape(t, New(Options{Source: fixed(sampleSnapshot())}))
	wantFamily(t, got, "connx_requests_total", map[string]float64{
		`connx_requests_total{backend="http://10.0.0.1:8080",code="200",method="GET",pool="default",protocol="http1"}`:   10,
		`connx_requests_total{backend="http://10.0.0.1:8080",code="200",method="GET",pool="default",protocol="h2"}`:      7,
		`connx_requests_total{backend="http://10.0.0.1:8080",code="502",method="GET",pool="default",protocol="http1"}`:   2,
		`connx_requests_total{backend="http://10.0.0.2:8080",code="200",method="POST",pool="default",protocol="http1"}`:  4,
		`connx_requests_total{backend="http://10.0.0.2:8080",code="499",method="OTHER",pool="default",protocol="http1"}`: 1,
		`connx_requests_total{backend="http://10.0.0.1:8080",code="200",method="GET",pool="api",protocol="http1"}`:       8,
		`connx_requests_total{backend="none",code="503",method="GET",pool="api",protocol="http1"}`:                       3,
		`connx_requests_total{backend="none",code="429",method="GET",pool="",protocol="http1"}`:                          6,
		`connx_requests_total{backend="none",code="301",method="GET",pool="",protocol="http1"}`:                          5,
	})
	wantFamily(t, got, "connx_grpc_calls_total", map[string]float64{
		`connx_grpc_calls_total{backend="http://10.0.0.1:8080",grpc_status="0",pool="api"}`:     7,
		`connx_grpc_calls_total{backend="http://10.0.0.1:8080",grpc_status="14",pool="api"}`:    1,
		`connx_grpc_calls_total{backend="none",grpc_status="14",pool="api"}`:                    3,
		`connx_grpc_calls_total{backend="http://10.0.0.1:8080",grpc_status="other",pool="api"}`: 2,
	})
	wantFamily(t, got, "connx_errors_total", map[string]float64{
		`connx_errors_total{kind="no_backend"}`:      3,
		`connx_errors_total{kind="connect"}`:         2,
		`connx_errors_total{kind="timeout"}`:         0,
		`connx_errors_total{kind="bad_response"}`:    0,
		`connx_errors_total{kind="upstream_reset"}`:  0,
		`connx_errors_total{kind="client_abort"}`:    1,
		`connx_errors_total{kind="rate_limited"}`:    6,
		`connx_errors_total{kind="bad_request"}`:     0,
		`connx_errors_total{kind="client_timeout"}`:  0,
		`connx_errors_total{kind="local_resources"}`: 0,
	})
}

func TestDurationHistogram(t *testing.T) {
	_, got := scrape(t, New(Options{Source: fixed(sampleSnapshot())}))
	want := map[string]float64{}
	// Non-cumulative counts by bucket index, from sampleSnapshot.
	type series struct{ backend, pool, protocol string }
	per := map[series]struct {
		counts map[int]uint64
		sum    float64
	}{
		{backendA, "default", "http1"}: {map[int]uint64{0: 2, 3: 5, 9: 1, 14: 3}, 12.5},
		{backendA, "default", "h2"}:    {map[int]uint64{1: 7}, 0.007},
		{backendB, "default", "http1"}: {map[int]uint64{1: 5}, 0.25},
		{backendA, "api", "http1"}:     {map[int]uint64{4: 8}, 0.5},
		{stats.NoBackend, "", "http1"}: {map[int]uint64{0: 6}, 0.003},
	}
	for k, p := range per {
		labels := fmt.Sprintf(`backend=%q,pool=%q,protocol=%q`, k.backend, k.pool, k.protocol)
		addHistogram(want, "connx_request_duration_seconds", labels, p.counts, p.sum)
	}
	wantFamily(t, got, "connx_request_duration_seconds", want)

	// Spot-check the conversion by hand, so the test does not only
	// mirror the code.
	for series, v := range map[string]float64{
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="0.0005",pool="default",protocol="http1"}`: 2,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="0.0025",pool="default",protocol="http1"}`: 2,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="0.005",pool="default",protocol="http1"}`:  7,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="0.25",pool="default",protocol="http1"}`:   7,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="0.5",pool="default",protocol="http1"}`:    8,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="10",pool="default",protocol="http1"}`:     8,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="+Inf",pool="default",protocol="http1"}`:   11,
		`connx_request_duration_seconds_count{backend="http://10.0.0.1:8080",pool="default",protocol="http1"}`:              11,
		`connx_request_duration_seconds_sum{backend="http://10.0.0.1:8080",pool="default",protocol="http1"}`:                12.5,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="0.005",pool="api",protocol="http1"}`:      0,
		`connx_request_duration_seconds_bucket{backend="http://10.0.0.1:8080",le="0.01",pool="api",protocol="http1"}`:       8,
		`connx_request_duration_seconds_count{backend="http://10.0.0.1:8080",pool="api",protocol="http1"}`:                  8,
	} {
		if g, ok := got["connx_request_duration_seconds"][series]; !ok || g != v {
			t.Errorf("%s = %v (%v), want %v", series, g, ok, v)
		}
	}
}

// addHistogram adds to want the _bucket, _count and _sum series of a
// histogram named name with the labels (besides le) given, from
// non-cumulative counts by bucket index.
func addHistogram(want map[string]float64, name, labels string, counts map[int]uint64, sum float64) {
	var cum uint64
	for i := 0; i <= len(stats.DurationBuckets); i++ {
		cum += counts[i]
		le := "+Inf"
		if i < len(stats.DurationBuckets) {
			le = leString(stats.DurationBuckets[i])
		}
		// Labels in name order, as flatten writes them: le sorts before
		// pool and after backend; routes have pool and route.
		l := append(strings.Split(labels, ","), fmt.Sprintf("le=%q", le))
		sort.Strings(l)
		want[name+"_bucket{"+strings.Join(l, ",")+"}"] = float64(cum)
	}
	want[name+"_count{"+labels+"}"] = float64(cum)
	want[name+"_sum{"+labels+"}"] = sum
}

func TestCumulative(t *testing.T) {
	n := len(stats.DurationBuckets)
	for _, tc := range []struct {
		name      string
		counts    []uint64
		total     uint64
		first     uint64 // cumulative count of the first bucket
		lastFinit uint64 // cumulative count of the last finite bucket
	}{
		{"empty", nil, 0, 0, 0},
		{"all in +Inf", append(make([]uint64, n), 4), 4, 0, 0},
		{"spread", append([]uint64{1, 2}, append(make([]uint64, n-2), 3)...), 6, 1, 3},
		{"short slice", []uint64{5}, 5, 5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, b := cumulative(tc.counts)
			if total != tc.total || b[stats.DurationBuckets[0]] != tc.first || b[stats.DurationBuckets[n-1]] != tc.lastFinit || len(b) != n {
				t.Errorf("cumulative(%v) = %d, %v; want total %d, first %d, last finite %d, %d buckets",
					tc.counts, total, b, tc.total, tc.first, tc.lastFinit, n)
			}
		})
	}
}

func TestBackendGauges(t *testing.T) {
	_, got := scrape(t, New(Options{Source: fixed(sampleSnapshot())}))
	// The same URL in two pools is two members: distinct series.
	per := func(name string, a, b, apiA float64) map[string]float64 {
		return map[string]float64{
			name + `{backend="http://10.0.0.1:8080",pool="default"}`: a,
			name + `{backend="http://10.0.0.2:8080",pool="default"}`: b,
			name + `{backend="http://10.0.0.1:8080",pool="api"}`:     apiA,
		}
	}
	wantFamily(t, got, "connx_backend_up", per("connx_backend_up", 1, 0, 1))
	wantFamily(t, got, "connx_backend_in_flight_requests", per("connx_backend_in_flight_requests", 4, 0, 1))
	wantFamily(t, got, "connx_backend_weight", per("connx_backend_weight", 3, 1, 2))
	wantFamily(t, got, "connx_backend_latency_seconds", per("connx_backend_latency_seconds", 0.0025, 0, 0))
	wantFamily(t, got, "connx_backend_healthy", per("connx_backend_healthy", 1, 0, 1))
	wantFamily(t, got, "connx_backend_ejected", per("connx_backend_ejected", 0, 1, 0))
	wantFamily(t, got, "connx_upstream_idle_connections", per("connx_upstream_idle_connections", 5, 0, 1))
	wantFamily(t, got, "connx_upstream_open_connections", per("connx_upstream_open_connections", 9, 0, 2))
	wantFamily(t, got, "connx_health_checks_total", map[string]float64{
		`connx_health_checks_total{backend="http://10.0.0.1:8080",pool="default",result="success"}`: 12,
		`connx_health_checks_total{backend="http://10.0.0.1:8080",pool="default",result="failure"}`: 1,
		`connx_health_checks_total{backend="http://10.0.0.2:8080",pool="default",result="success"}`: 0,
		`connx_health_checks_total{backend="http://10.0.0.2:8080",pool="default",result="failure"}`: 0,
		`connx_health_checks_total{backend="http://10.0.0.1:8080",pool="api",result="success"}`:     3,
		`connx_health_checks_total{backend="http://10.0.0.1:8080",pool="api",result="failure"}`:     0,
	})
	breaker := map[string]float64{}
	for _, m := range []struct{ url, pool, state string }{
		{backendA, "default", "closed"}, {backendB, "default", "open"}, {backendA, "api", "half-open"},
	} {
		for _, st := range breakerStates {
			breaker[fmt.Sprintf(`connx_backend_breaker_state{backend=%q,pool=%q,state=%q}`, m.url, m.pool, st)] = bool01(st == m.state)
		}
	}
	wantFamily(t, got, "connx_backend_breaker_state", breaker)
}

func TestBreakerStateSet(t *testing.T) {
	for _, st := range []string{"closed", "open", "half-open", "disabled", "bogus"} {
		t.Run(st, func(t *testing.T) {
			s := stats.Snapshot{Time: t0, Backends: []stats.Backend{backend(backendA, st)}}
			_, got := scrape(t, New(Options{Source: fixed(s)}))
			want := map[string]float64{}
			for _, x := range []string{"closed", "open", "half-open", "disabled"} {
				v := 0.0
				if x == st {
					v = 1
				}
				want[fmt.Sprintf(`connx_backend_breaker_state{backend=%q,pool="default",state=%q}`, backendA, x)] = v
			}
			wantFamily(t, got, "connx_backend_breaker_state", want)
		})
	}
}

func TestPoolGauges(t *testing.T) {
	tests := []struct {
		name string
		snap stats.Snapshot
		want map[string]map[string]float64 // family -> series -> value
	}{
		{"two pools", sampleSnapshot(), map[string]map[string]float64{
			"connx_pool_panic":        {`connx_pool_panic{pool="default"}`: 1, `connx_pool_panic{pool="api"}`: 0},
			"connx_pool_panics_total": {`connx_pool_panics_total{pool="default"}`: 2, `connx_pool_panics_total{pool="api"}`: 1},
			"connx_pool_backends":     {`connx_pool_backends{pool="default"}`: 2, `connx_pool_backends{pool="api"}`: 1},
			"connx_pool_backends_up":  {`connx_pool_backends_up{pool="default"}`: 1, `connx_pool_backends_up{pool="api"}`: 1},
			// Discovery series only for the pool with discovery.
			"connx_discovery_members": {`connx_discovery_members{pool="api"}`: 1},
			"connx_discovery_state": {
				`connx_discovery_state{pool="api",state="starting"}`: 0,
				`connx_discovery_state{pool="api",state="ok"}`:       0,
				`connx_discovery_state{pool="api",state="failing"}`:  1,
				`connx_discovery_state{pool="api",state="holding"}`:  0,
				`connx_discovery_state{pool="api",state="empty"}`:    0,
			},
			"connx_discovery_resolutions_total": {
				`connx_discovery_resolutions_total{pool="api",result="answered"}`: 7,
				`connx_discovery_resolutions_total{pool="api",result="failed"}`:   2,
			},
		}},
		// A configuration with routes and pools but no top-level backends
		// has no default pool.
		{"no default pool", stats.Snapshot{Time: t0, Pools: []stats.Pool{{Name: "api", Backends: 3, Up: 3}}},
			map[string]map[string]float64{
				"connx_pool_panic":       {`connx_pool_panic{pool="api"}`: 0},
				"connx_pool_backends_up": {`connx_pool_backends_up{pool="api"}`: 3},
			}},
		// A data plane that fills neither Pools nor Backend.Pool: one
		// default pool, counted from the backends.
		{"predates pools", func() stats.Snapshot {
			down := backend(backendB, "open")
			down.Up = false
			return stats.Snapshot{Time: t0, Backends: []stats.Backend{backend(backendA, "closed"), down},
				Pool: stats.Pool{Panic: true, Panics: 4}}
		}(), map[string]map[string]float64{
			"connx_pool_panic":        {`connx_pool_panic{pool="default"}`: 1},
			"connx_pool_panics_total": {`connx_pool_panics_total{pool="default"}`: 4},
			"connx_pool_backends":     {`connx_pool_backends{pool="default"}`: 2},
			"connx_pool_backends_up":  {`connx_pool_backends_up{pool="default"}`: 1},
			"connx_backend_up":        {`connx_backend_up{backend="http://10.0.0.1:8080",pool="default"}`: 1, `connx_backend_up{backend="http://10.0.0.2:8080",pool="default"}`: 0},
		}},
		{"empty", stats.Snapshot{Time: t0}, map[string]map[string]float64{
			"connx_pool_panic":       {`connx_pool_panic{pool="default"}`: 0},
			"connx_pool_backends_up": {`connx_pool_backends_up{pool="default"}`: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := scrape(t, New(Options{Source: fixed(tt.snap)}))
			for fam, want := range tt.want {
				wantFamily(t, got, fam, want)
			}
		})
	}
}

func TestRouteSeries(t *testing.T) {
	_, got := scrape(t, New(Options{Source: fixed(sampleSnapshot())}))
	wantFamily(t, got, "connx_route_requests_total", map[string]float64{
		`connx_route_requests_total{class="1xx",pool="api",route="api"}`:    0,
		`connx_route_requests_total{class="2xx",pool="api",route="api"}`:    8,
		`connx_route_requests_total{class="3xx",pool="api",route="api"}`:    0,
		`connx_route_requests_total{class="4xx",pool="api",route="api"}`:    0,
		`connx_route_requests_total{class="5xx",pool="api",route="api"}`:    3,
		`connx_route_requests_total{class="1xx",pool="",route="routes[2]"}`: 0,
		`connx_route_requests_total{class="2xx",pool="",route="routes[2]"}`: 0,
		`connx_route_requests_total{class="3xx",pool="",route="routes[2]"}`: 5,
		`connx_route_requests_total{class="4xx",pool="",route="routes[2]"}`: 0,
		`connx_route_requests_total{class="5xx",pool="",route="routes[2]"}`: 0,
	})
	want := map[string]float64{}
	addHistogram(want, "connx_route_request_duration_seconds", `pool="api",route="api"`, map[int]uint64{4: 8, 6: 3}, 0.6)
	addHistogram(want, "connx_route_request_duration_seconds", `pool="",route="routes[2]"`, map[int]uint64{0: 5}, 0.001)
	wantFamily(t, got, "connx_route_request_duration_seconds", want)
	if v := got["connx_route_request_duration_seconds"][`connx_route_request_duration_seconds_bucket{le="0.05",pool="api",route="api"}`]; v != 11 {
		t.Errorf("api route: le=0.05 bucket %v, want 11", v)
	}

	// Without routes, no route family at all.
	s := sampleSnapshot()
	s.Routes = nil
	_, got = scrape(t, New(Options{Source: fixed(s)}))
	for _, fam := range []string{"connx_route_requests_total", "connx_route_request_duration_seconds"} {
		if _, ok := got[fam]; ok {
			t.Errorf("%s exported without routes: %v", fam, got[fam])
		}
	}
}

func TestServerGauges(t *testing.T) {
	_, got := scrape(t, New(Options{Version: "v1.2.3", Source: fixed(sampleSnapshot())}))
	for name, v := range map[string]float64{
		"connx_active_connections":        7,
		"connx_parked_connections":        1,
		"connx_closing_connections":       2,
		"connx_tunnels_active":            3,
		"connx_uptime_seconds":            90,
		"connx_start_time_seconds":        float64(started.Unix()),
		"connx_bytes_received_total":      1000,
		"connx_bytes_sent_total":          20000,
		"connx_connections_refused_total": 5,
		"connx_access_denied_total":       4,
		"connx_dropped_headers_total":     9,
		"connx_ratelimit_enabled":         1,
		"connx_ratelimit_clients":         17,
		"connx_ratelimit_evictions_total": 4,
		"connx_ratelimit_redis_up":        1,
		"connx_ratelimit_redis_instances": 3,
	} {
		wantFamily(t, got, name, map[string]float64{name: v})
	}
	// Every reason is exported from the start, at 0 until it happens.
	pp := map[string]float64{}
	for _, r := range stats.ProxyProtocolReasons {
		pp[`connx_proxy_protocol_errors_total{reason="`+r+`"}`] = 0
	}
	pp[`connx_proxy_protocol_errors_total{reason="untrusted"}`] = 3
	pp[`connx_proxy_protocol_errors_total{reason="timeout"}`] = 2
	pp[`connx_proxy_protocol_errors_total{reason="v1_too_long"}`] = 1
	wantFamily(t, got, "connx_proxy_protocol_errors_total", pp)
	wantFamily(t, got, "connx_ratelimit_requests_total", map[string]float64{
		`connx_ratelimit_requests_total{decision="allowed"}`:  100,
		`connx_ratelimit_requests_total{decision="rejected"}`: 6,
		`connx_ratelimit_requests_total{decision="exempt"}`:   2,
	})
	wantFamily(t, got, "connx_ratelimit_redis_syncs_total", map[string]float64{
		`connx_ratelimit_redis_syncs_total{result="ok"}`:     40,
		`connx_ratelimit_redis_syncs_total{result="failed"}`: 2,
	})
	wantFamily(t, got, "connx_access_log_lines_total", map[string]float64{
		`connx_access_log_lines_total{result="written"}`: 23,
		`connx_access_log_lines_total{result="dropped"}`: 1,
	})
	wantFamily(t, got, "connx_config_reloads_total", map[string]float64{
		`connx_config_reloads_total{result="success"}`: 2,
		`connx_config_reloads_total{result="failure"}`: 1,
	})
	var info string
	for k := range got["connx_build_info"] {
		info = k
	}
	if !strings.Contains(info, `version="v1.2.3"`) || !strings.Contains(info, `goversion="go1.`) || got["connx_build_info"][info] != 1 {
		t.Errorf("connx_build_info: %v", got["connx_build_info"])
	}
}

func TestReloadGauges(t *testing.T) {
	t1, t2 := t0.Add(-time.Minute), t0.Add(-time.Second)
	for _, tc := range []struct {
		name       string
		r          stats.Reloads
		successful float64
		at         time.Time
	}{
		{"no reload yet", stats.Reloads{}, 1, started},
		{"succeeded", stats.Reloads{Success: 1, LastSuccess: t1}, 1, t1},
		{"failed after success", stats.Reloads{Success: 1, Failure: 1, LastSuccess: t1, LastFailure: t2, LastError: "bad"}, 0, t1},
		{"failed, none succeeded", stats.Reloads{Failure: 1, LastFailure: t2, LastError: "bad"}, 0, started},
		{"succeeded after failure", stats.Reloads{Success: 1, Failure: 1, LastFailure: t1, LastSuccess: t2}, 1, t2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stats.Snapshot{Time: t0, Started: started, Reloads: tc.r}
			_, got := scrape(t, New(Options{Source: fixed(s)}))
			wantFamily(t, got, "connx_config_last_reload_successful",
				map[string]float64{"connx_config_last_reload_successful": tc.successful})
			wantFamily(t, got, "connx_config_last_reload_success_timestamp_seconds",
				map[string]float64{"connx_config_last_reload_success_timestamp_seconds": float64(tc.at.Unix())})
		})
	}
}

// TestRemovedBackend checks that a backend the Source no longer reports
// leaves no series behind.
func TestRemovedBackend(t *testing.T) {
	var removed atomic.Bool
	src := func(s *stats.Snapshot) {
		*s = sampleSnapshot()
		if !removed.Load() {
			return
		}
		s.Backends = s.Backends[:1]
		s.Durations = s.Durations[:1]
		s.Requests = s.Requests[:2]
		s.GRPCCalls = nil
		s.Pools = s.Pools[:1]
		s.Routes = nil
	}
	e := New(Options{Source: src})

	text, _ := scrape(t, e)
	if !bytes.Contains(text, []byte(backendB)) {
		t.Fatalf("before removal, no series for %s:\n%s", backendB, text)
	}
	removed.Store(true)
	text, got := scrape(t, e)
	if bytes.Contains(text, []byte(backendB)) {
		t.Errorf("after removal, series remain for %s:\n%s", backendB, grep(text, backendB))
	}
	if len(got["connx_backend_up"]) != 1 || len(got["connx_backend_breaker_state"]) != 4 {
		t.Errorf("after removal: backend_up %v, breaker_state %v", got["connx_backend_up"], got["connx_backend_breaker_state"])
	}
	// The removed pool and routes leave nothing behind either.
	if bytes.Contains(text, []byte(`pool="api"`)) || bytes.Contains(text, []byte("connx_route_")) {
		t.Errorf("after removal, series remain for pool api or routes:\n%s", grep(text, "api"))
	}
}

func grep(text []byte, s string) string {
	var out []string
	for line := range strings.Lines(string(text)) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

func TestLabelEscaping(t *testing.T) {
	names := []string{
		`http://h:1/a"b`,
		`http://h:1/back\slash`,
		"http://h:1/new\nline",
		"http://h:1/ünïcode",
		"http://h:1/bad\xffutf8",
	}
	var s stats.Snapshot
	s.Time = t0
	for _, n := range names {
		s.Backends = append(s.Backends, backend(n, "closed"))
		s.Requests = append(s.Requests, stats.RequestCount{Method: "GET", Code: 200, Backend: n, Count: 1})
		s.Durations = append(s.Durations, hist(n, 1, map[int]uint64{2: 1}))
	}
	text, got := scrape(t, New(Options{Source: fixed(s)}))
	for _, line := range []string{
		`connx_backend_up{backend="http://h:1/a\"b",pool="default"} 1`,
		`connx_backend_up{backend="http://h:1/back\\slash",pool="default"} 1`,
		`connx_backend_up{backend="http://h:1/new\nline",pool="default"} 1`,
		`connx_backend_up{backend="http://h:1/ünïcode",pool="default"} 1`,
		"connx_backend_up{backend=\"http://h:1/bad\uFFFDutf8\",pool=\"default\"} 1",
	} {
		if !bytes.Contains(text, []byte(line+"\n")) {
			t.Errorf("exposition lacks %s", line)
		}
	}
	// Parsed back, every label value is the configured name (invalid
	// UTF-8 replaced).
	for _, n := range names {
		n = strings.ToValidUTF8(n, "\uFFFD")
		for fam, series := range map[string]string{
			"connx_backend_up":               fmt.Sprintf("connx_backend_up{backend=%q,pool=\"default\"}", n),
			"connx_requests_total":           fmt.Sprintf("connx_requests_total{backend=%q,code=\"200\",method=\"GET\",pool=\"default\",protocol=\"http1\"}", n),
			"connx_request_duration_seconds": fmt.Sprintf("connx_request_duration_seconds_count{backend=%q,pool=\"default\",protocol=\"http1\"}", n),
		} {
			if v, ok := got[fam][series]; !ok || v != 1 {
				t.Errorf("%s: %s = %v, %v", fam, series, v, ok)
			}
		}
	}
}

// TestZeroOptions checks that an exporter without a Source still scrapes
// cleanly, with every error kind present.
func TestZeroOptions(t *testing.T) {
	_, got := scrape(t, New(Options{}))
	if n := len(got["connx_errors_total"]); n != int(stats.NumErrorKinds) {
		t.Errorf("connx_errors_total has %d series, want %d", n, stats.NumErrorKinds)
	}
	for k, v := range got["connx_errors_total"] {
		if v != 0 {
			t.Errorf("%s = %v", k, v)
		}
	}
	if _, ok := got["connx_build_info"][`connx_build_info{goversion="`+runtime.Version()+`",version="unknown"}`]; !ok {
		t.Errorf("connx_build_info: %v", got["connx_build_info"])
	}
	if _, ok := got["connx_uptime_seconds"]; ok {
		t.Errorf("connx_uptime_seconds exported without a start time")
	}
}

// TestAppendTextMatchesHandler checks that the main-port rendering and
// the promhttp handler serve the same exposition: ConnX's families
// identical, and the same set of runtime and process families (whose
// values move between scrapes).
func TestAppendTextMatchesHandler(t *testing.T) {
	e := New(Options{Version: "test", Source: fixed(sampleSnapshot())})
	prefix := []byte("kept\n")
	out, err := e.AppendText(append([]byte(nil), prefix...))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("AppendText did not keep dst: %q", out[:min(len(out), 20)])
	}
	fromAppend := parse(t, out[len(prefix):])

	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("Handler: status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, ContentType) {
		t.Errorf("Handler Content-Type %q, want %q", ct, ContentType)
	}
	if f := expfmt.Format(ContentType); f.FormatType() != expfmt.TypeTextPlain || f.Version() != expfmt.TextVersion {
		t.Errorf("ContentType %q is not text %s", ContentType, expfmt.TextVersion)
	}
	fromHandler := parse(t, rec.Body.Bytes())

	if a, h := slices.Sorted(maps.Keys(fromAppend)), slices.Sorted(maps.Keys(fromHandler)); !slices.Equal(a, h) {
		t.Fatalf("families differ:\nAppendText %v\nHandler    %v", a, h)
	}
	connx := 0
	for name, mf := range fromAppend {
		if !strings.HasPrefix(name, "connx_") {
			continue
		}
		connx++
		var a, h bytes.Buffer
		if _, err := expfmt.MetricFamilyToText(&a, mf); err != nil {
			t.Fatal(err)
		}
		if _, err := expfmt.MetricFamilyToText(&h, fromHandler[name]); err != nil {
			t.Fatal(err)
		}
		if a.String() != h.String() {
			t.Errorf("%s differs:\nAppendText:\n%s\nHandler:\n%s", name, a.String(), h.String())
		}
	}
	if connx != 51 {
		t.Errorf("%d connx_ families, want 51", connx)
	}
	for _, p := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if _, ok := fromAppend[p]; !ok {
			t.Errorf("no %s: runtime and process collectors missing", p)
		}
	}
}

// TestConcurrentScrapes runs scrapes in parallel, for the race detector.
func TestConcurrentScrapes(t *testing.T) {
	var calls atomic.Int64
	src := func(s *stats.Snapshot) {
		calls.Add(1)
		*s = sampleSnapshot()
	}
	e := New(Options{Source: src})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := e.AppendText(nil); err != nil {
				errs <- err
			}
			rec := httptest.NewRecorder()
			e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusOK {
				errs <- fmt.Errorf("handler status %d", rec.Code)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := calls.Load(); n != 16 {
		t.Errorf("Source called %d times for 16 scrapes, want one call per scrape", n)
	}
}

func TestTLSSeries(t *testing.T) {
	_, got := scrape(t, New(Options{Source: fixed(sampleSnapshot())}))
	want := map[string]float64{}
	for _, v := range stats.TLSVersions {
		want[fmt.Sprintf(`connx_tls_handshakes_total{result="full",version=%q}`, v)] = 3
		want[fmt.Sprintf(`connx_tls_handshakes_total{result="resumed",version=%q}`, v)] = 1
	}
	for _, r := range stats.TLSFailures {
		want[fmt.Sprintf(`connx_tls_handshakes_total{result=%q,version="none"}`, r)] = 5
	}
	wantFamily(t, got, "connx_tls_handshakes_total", want)
	wantFamily(t, got, "connx_tls_handshakes_in_progress", map[string]float64{"connx_tls_handshakes_in_progress": 2})
	wantFamily(t, got, "connx_tls_certificate_expiry_timestamp_seconds", map[string]float64{
		`connx_tls_certificate_expiry_timestamp_seconds{cert_file="/etc/connx/a.pem",name="a.example.com"}`:    float64(t0.Add(14 * 24 * time.Hour).Unix()),
		`connx_tls_certificate_expiry_timestamp_seconds{cert_file="/etc/connx/wild.pem",name="*.example.com"}`: float64(t0.Add(time.Hour).Unix()),
	})
	h := got["connx_tls_handshake_duration_seconds"]
	if h["connx_tls_handshake_duration_seconds_count"] != 8 || h["connx_tls_handshake_duration_seconds_sum"] != 0.02 ||
		h[`connx_tls_handshake_duration_seconds_bucket{le="0.001"}`] != 7 || h[`connx_tls_handshake_duration_seconds_bucket{le="0.0025"}`] != 8 {
		t.Errorf("connx_tls_handshake_duration_seconds:%s", dump(h))
	}

	// Without server.tls there is no TLS series.
	s := sampleSnapshot()
	s.TLS = nil
	_, got = scrape(t, New(Options{Source: fixed(s)}))
	for name := range got {
		if strings.HasPrefix(name, "connx_tls_") {
			t.Errorf("%s exported without server.tls", name)
		}
	}
}
