package metrics

import (
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connx/connx/internal/stats"
)

// statusClasses are the values of connx_route_requests_total's class
// label, indexed as stats.Route.Requests.
var statusClasses = [len(stats.Route{}.Requests)]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// breakerStates are the values of connx_backend_breaker_state's state
// label, as health.BackendState.Breaker spells them.
var breakerStates = [...]string{"closed", "open", "half-open", "disabled"}

// descs are the descriptions of ConnX's own metrics.
type descs struct {
	requests, errors, duration *prometheus.Desc
	grpcCalls                  *prometheus.Desc

	backendUp, backendInFlight, backendWeight, backendLatency *prometheus.Desc
	backendHealthy, backendEjected, backendBreaker            *prometheus.Desc
	healthChecks, upstreamIdle, upstreamOpen                  *prometheus.Desc
	poolPanic, poolPanics, poolBackends, poolUp               *prometheus.Desc
	routeRequests, routeDuration                              *prometheus.Desc
	discoveryMembers, discoveryState, discoveryResolutions    *prometheus.Desc

	active, parked, closing, tunnels *prometheus.Desc
	uptime, startTime                *prometheus.Desc
	bytesIn, bytesOut                *prometheus.Desc
	refused, droppedHeaders, denied  *prometheus.Desc
	proxyProtocolErrors              *prometheus.Desc

	reloads, reloadSuccessTime, reloadSuccessful *prometheus.Desc

	rlEnabled, rlRequests, rlClients, rlEvictions *prometheus.Desc
	rlRedisUp, rlRedisInstances, rlRedisSyncs     *prometheus.Desc

	accessLog *prometheus.Desc
	buildInfo *prometheus.Desc

	tlsHandshakes, tlsDuration, tlsInProgress, tlsCertExpiry *prometheus.Desc
}

func newDescs() descs {
	// A backend is identified by its pool and URL: the same URL in two
	// pools is two members with their own state and series.
	be := []string{"backend", "pool"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return descs{
		requests: d("connx_requests_total",
			"Finished requests by method, status code sent (499: the client left before any status), backend (\"none\": answered by ConnX itself), pool (\"\": answered before a pool was chosen) and the protocol the client spoke (http1, h2).",
			"method", "code", "backend", "pool", "protocol"),
		grpcCalls: d("connx_grpc_calls_total",
			"Finished gRPC calls (content-type application/grpc) of pools whose backends speak HTTP/2, by gRPC status (\"0\" to \"16\", \"other\": none or undefined), including the calls ConnX failed itself; backend and pool as in connx_requests_total.",
			"grpc_status", "backend", "pool"),
		errors: d("connx_errors_total",
			"Failed requests by kind of failure.",
			"kind"),
		duration: d("connx_request_duration_seconds",
			"Time from the request head being read to the last response byte being handed to the kernel, by backend, pool and the protocol the client spoke (http1, h2).",
			"backend", "pool", "protocol"),

		backendUp: d("connx_backend_up",
			"Whether the balancer may pick the backend now (1) or not (0): weight above 0, healthy, not ejected and its circuit breaker admits requests; in panic mode breaker and ejection are ignored.",
			be...),
		backendInFlight: d("connx_backend_in_flight_requests",
			"Requests (and tunnels) in progress on the backend.",
			be...),
		backendWeight: d("connx_backend_weight",
			"The backend's configured balancing weight.",
			be...),
		backendLatency: d("connx_backend_latency_seconds",
			"The balancer's moving average of the backend's response-head latency; 0 before the first response.",
			be...),
		backendHealthy: d("connx_backend_healthy",
			"Active health check verdict: 1 healthy (also before the first check and when checks are off), 0 unhealthy.",
			be...),
		backendEjected: d("connx_backend_ejected",
			"Whether passive outlier detection has ejected the backend now (1) or not (0).",
			be...),
		backendBreaker: d("connx_backend_breaker_state",
			"Circuit breaker state of the backend: 1 for the current state, 0 for the others.",
			"backend", "pool", "state"),
		healthChecks: d("connx_health_checks_total",
			"Finished active health checks of the backend by result, since the backend was added.",
			"backend", "pool", "result"),
		upstreamIdle: d("connx_upstream_idle_connections",
			"Idle pooled connections to the backend, all event loops.",
			be...),
		upstreamOpen: d("connx_upstream_open_connections",
			"Open connections to the backend (idle and busy), all event loops.",
			be...),
		poolPanic: d("connx_pool_panic",
			"Whether the pool is in panic mode now (1) or not (0): circuit breakers and outlier ejection left fewer than loadBalancing.panicThreshold percent of its healthy backends available, so they are ignored.",
			"pool"),
		poolPanics: d("connx_pool_panics_total",
			"Times the pool entered panic mode since ConnX started.",
			"pool"),
		poolBackends: d("connx_pool_backends",
			"Backends configured in the pool.",
			"pool"),
		poolUp: d("connx_pool_backends_up",
			"Backends of the pool the balancer may pick now (connx_backend_up summed over the pool).",
			"pool"),
		discoveryMembers: d("connx_discovery_members",
			"Members the pool's DNS discovery found at its last answer with members (kept while DNS fails or, for emptyGrace, answers with none); only pools with discovery.",
			"pool"),
		discoveryState: d("connx_discovery_state",
			"State of the pool's DNS discovery: 1 for the current state, 0 for the others (starting, ok, failing: the last members are kept; holding: the name has no members, the last ones are kept for emptyGrace; empty).",
			"pool", "state"),
		discoveryResolutions: d("connx_discovery_resolutions_total",
			"Finished resolutions of the pool's DNS name by result: answered (with members or without) or failed (timeout, SERVFAIL, REFUSED, unreachable, unreadable).",
			"pool", "result"),
		routeRequests: d("connx_route_requests_total",
			"Finished requests that took the route, by status class (1xx to 5xx; 499 counts as 4xx); pool is the route's pool, \"\" for redirect and respond routes.",
			"route", "pool", "class"),
		routeDuration: d("connx_route_request_duration_seconds",
			"Time from the request head being read to the last response byte being handed to the kernel, by route.",
			"route", "pool"),

		active: d("connx_active_connections",
			"Open client connections."),
		parked: d("connx_parked_connections",
			"Client connections parked in the kernel for backpressure."),
		closing: d("connx_closing_connections",
			"Client connections flushing their last response before closing."),
		tunnels: d("connx_tunnels_active",
			"Upgraded connections (WebSocket tunnels) open now."),
		uptime: d("connx_uptime_seconds",
			"Seconds since ConnX started."),
		startTime: d("connx_start_time_seconds",
			"Time ConnX started, in seconds since the Unix epoch."),
		bytesIn: d("connx_bytes_received_total",
			"Bytes read from clients."),
		bytesOut: d("connx_bytes_sent_total",
			"Bytes written to clients."),
		denied: d("connx_access_denied_total",
			"Client connections and requests refused with 403 by server.allow/server.deny or a route's allow/deny."),
		refused: d("connx_connections_refused_total",
			"Client connections refused with 503 at accept because limits.maxConnections or the file descriptor limit was reached."),
		proxyProtocolErrors: d("connx_proxy_protocol_errors_total",
			"Client connections closed because of their PROXY protocol header (server.proxyProtocol), by reason: untrusted, timeout, truncated, or the parser's error code.",
			"reason"),
		droppedHeaders: d("connx_dropped_headers_total",
			"Request header fields not forwarded because their name contains an underscore (server.underscoresInHeaders: false)."),

		reloads: d("connx_config_reloads_total",
			"Configuration reload attempts by result.",
			"result"),
		reloadSuccessTime: d("connx_config_last_reload_success_timestamp_seconds",
			"Time the configuration in use was loaded (the last successful reload, or the start), in seconds since the Unix epoch."),
		reloadSuccessful: d("connx_config_last_reload_successful",
			"Whether the last configuration reload attempt succeeded (1) or failed (0); 1 before any reload."),

		rlEnabled: d("connx_ratelimit_enabled",
			"Whether rate limiting is enabled (1) or not (0)."),
		rlRequests: d("connx_ratelimit_requests_total",
			"Requests seen by the rate limiter by decision.",
			"decision"),
		rlClients: d("connx_ratelimit_clients",
			"Client token buckets the rate limiter holds."),
		rlEvictions: d("connx_ratelimit_evictions_total",
			"Client token buckets evicted to keep the rate limiter's table bounded."),
		rlRedisUp: d("connx_ratelimit_redis_up",
			"Whether the rate limit is shared through Redis now (1), or not (0): Redis is unreachable or slow and each instance limits to its share, or rateLimit.redis is off."),
		rlRedisInstances: d("connx_ratelimit_redis_instances",
			"ConnX instances last seen sharing the rate limit through Redis, this one included; 0 when rateLimit.redis is off."),
		rlRedisSyncs: d("connx_ratelimit_redis_syncs_total",
			"Reconciliation rounds with Redis by result.",
			"result"),

		accessLog: d("connx_access_log_lines_total",
			"Access log lines by result: written, or dropped because the write queue was full.",
			"result"),
		buildInfo: d("connx_build_info",
			"Always 1; the labels give the ConnX version and the Go version it was built with.",
			"version", "goversion"),

		tlsHandshakes: d("connx_tls_handshakes_total",
			"Finished TLS handshakes on the HTTPS listener: completed by version with result full or resumed, failed (version \"none\") by reason: timeout, protocol, refused, enroll (always 0 since handshakes run on the event loops).",
			"version", "result"),
		tlsDuration: d("connx_tls_handshake_duration_seconds",
			"Time from the accept of an HTTPS connection to the end of its completed TLS handshake."),
		tlsInProgress: d("connx_tls_handshakes_in_progress",
			"TLS handshakes in progress now (at most server.tls.maxHandshakes)."),
		tlsCertExpiry: d("connx_tls_certificate_expiry_timestamp_seconds",
			"Expiry (notAfter) of a serving certificate, in seconds since the Unix epoch; name is its first DNS name (or common name), cert_file its certFile as configured.",
			"name", "cert_file"),
	}
}

// collector is the prometheus.Collector of ConnX's own metrics. It is
// immutable after newCollector, so Collect may run concurrently.
type collector struct {
	d         descs
	source    stats.Source
	buildInfo prometheus.Metric
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(o Options) *collector {
	c := &collector{d: newDescs(), source: o.Source}
	version := o.Version
	if version == "" {
		version = "unknown"
	}
	c.buildInfo = prometheus.MustNewConstMetric(c.d.buildInfo, prometheus.GaugeValue, 1,
		validUTF8(version), runtime.Version())
	return c
}

// Describe sends every metric's description, so the registry checks each
// scrape for consistency.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.d
	for _, x := range [...]*prometheus.Desc{
		d.requests, d.errors, d.duration, d.grpcCalls,
		d.backendUp, d.backendInFlight, d.backendWeight, d.backendLatency,
		d.backendHealthy, d.backendEjected, d.backendBreaker,
		d.healthChecks, d.upstreamIdle, d.upstreamOpen,
		d.poolPanic, d.poolPanics, d.poolBackends, d.poolUp,
		d.discoveryMembers, d.discoveryState, d.discoveryResolutions,
		d.routeRequests, d.routeDuration,
		d.active, d.parked, d.closing, d.tunnels,
		d.uptime, d.startTime, d.bytesIn, d.bytesOut, d.refused, d.denied, d.droppedHeaders,
		d.proxyProtocolErrors,
		d.reloads, d.reloadSuccessTime, d.reloadSuccessful,
		d.rlEnabled, d.rlRequests, d.rlClients, d.rlEvictions,
		d.rlRedisUp, d.rlRedisInstances, d.rlRedisSyncs,
		d.accessLog, d.buildInfo,
		d.tlsHandshakes, d.tlsDuration, d.tlsInProgress, d.tlsCertExpiry,
	} {
		ch <- x
	}
}

// Collect takes one snapshot and sends it as constant metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var s stats.Snapshot
	if c.source != nil {
		c.source(&s)
	}
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	d := &c.d
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	histogram := func(desc *prometheus.Desc, h *stats.Histogram, labels ...string) {
		count, buckets := cumulative(h.Counts)
		ch <- prometheus.MustNewConstHistogram(desc, count, h.Sum, buckets, labels...)
	}

	for _, r := range s.Requests {
		counter(d.requests, r.Count, validUTF8(r.Method), strconv.Itoa(r.Code), validUTF8(r.Backend), poolLabel(r.Pool, r.Backend), protocolLabel(r.Protocol))
	}
	for _, g := range s.GRPCCalls {
		counter(d.grpcCalls, g.Count, g.Status, validUTF8(g.Backend), poolLabel(g.Pool, g.Backend))
	}
	for k, n := range s.Errors {
		counter(d.errors, n, stats.ErrorKind(k).String())
	}
	for i := range s.Durations {
		h := &s.Durations[i]
		histogram(d.duration, h, validUTF8(h.Backend), poolLabel(h.Pool, h.Backend), protocolLabel(h.Protocol))
	}

	for i := range s.Backends {
		b := &s.Backends[i]
		name, pool := validUTF8(b.Name), poolLabel(b.Pool, b.Name)
		gauge(d.backendUp, bool01(b.Up), name, pool)
		gauge(d.backendInFlight, float64(b.InFlight), name, pool)
		gauge(d.backendWeight, float64(b.Weight), name, pool)
		gauge(d.backendLatency, b.Latency.Seconds(), name, pool)
		gauge(d.backendHealthy, bool01(b.Health.Healthy), name, pool)
		gauge(d.backendEjected, bool01(b.Health.Ejected), name, pool)
		for _, st := range breakerStates {
			gauge(d.backendBreaker, bool01(b.Health.Breaker == st), name, pool, st)
		}
		counter(d.healthChecks, b.Health.ChecksOK, name, pool, "success")
		counter(d.healthChecks, b.Health.ChecksFailed, name, pool, "failure")
		gauge(d.upstreamIdle, float64(b.IdleConns), name, pool)
		gauge(d.upstreamOpen, float64(b.OpenConns), name, pool)
	}

	for _, p := range s.PoolList() {
		name := validUTF8(p.Name)
		gauge(d.poolPanic, bool01(p.Panic), name)
		counter(d.poolPanics, p.Panics, name)
		gauge(d.poolBackends, float64(p.Backends), name)
		gauge(d.poolUp, float64(p.Up), name)
		// Discovery series exist only for pools with discovery.
		if dd := &p.Discovery; dd.Active {
			gauge(d.discoveryMembers, float64(dd.Members), name)
			for _, st := range stats.DiscoveryStates {
				gauge(d.discoveryState, bool01(dd.State == st), name, st)
			}
			counter(d.discoveryResolutions, dd.Resolutions-min(dd.Failures, dd.Resolutions), name, "answered")
			counter(d.discoveryResolutions, dd.Failures, name, "failed")
		}
	}

	// Route series exist only with routes: their names come from the
	// configuration, so there are as many as it has routes.
	for i := range s.Routes {
		r := &s.Routes[i]
		name, pool := validUTF8(r.Name), validUTF8(r.Pool)
		for c, n := range r.Requests {
			counter(d.routeRequests, n, name, pool, statusClasses[c])
		}
		histogram(d.routeDuration, &r.Duration, name, pool)
	}

	gauge(d.active, float64(s.Active))
	gauge(d.parked, float64(s.Parked))
	gauge(d.closing, float64(s.Closing))
	gauge(d.tunnels, float64(s.Tunnels))
	if !s.Started.IsZero() {
		gauge(d.uptime, s.Time.Sub(s.Started).Seconds())
		gauge(d.startTime, unixSeconds(s.Started))
	}
	counter(d.bytesIn, s.BytesIn)
	counter(d.bytesOut, s.BytesOut)
	counter(d.refused, s.Refused)
	counter(d.denied, s.Denied)
	counter(d.droppedHeaders, s.DroppedHeaders)
	for i, n := range s.ProxyProtocolErrors {
		counter(d.proxyProtocolErrors, n, stats.ProxyProtocolReasons[i])
	}

	rl := &s.Reloads
	counter(d.reloads, rl.Success, "success")
	counter(d.reloads, rl.Failure, "failure")
	// Before the first reload, the configuration in use is the one loaded
	// at start (as Prometheus reports its own).
	if last := rl.LastSuccess; !last.IsZero() {
		gauge(d.reloadSuccessTime, unixSeconds(last))
	} else if !s.Started.IsZero() {
		gauge(d.reloadSuccessTime, unixSeconds(s.Started))
	}
	failed := rl.LastError != "" || (!rl.LastFailure.IsZero() && rl.LastFailure.After(rl.LastSuccess))
	gauge(d.reloadSuccessful, bool01(!failed))

	// The rate limiter's series exist also while it is disabled (at 0, or
	// at the counts of its last enabled period if the data plane keeps
	// them), so dashboards and alerts need no absent() handling.
	lim := &s.RateLimit
	gauge(d.rlEnabled, bool01(lim.Enabled))
	counter(d.rlRequests, lim.Allowed, "allowed")
	counter(d.rlRequests, lim.Rejected, "rejected")
	counter(d.rlRequests, lim.Exempt, "exempt")
	gauge(d.rlClients, float64(lim.Keys))
	counter(d.rlEvictions, lim.Evicted)
	gauge(d.rlRedisUp, bool01(lim.Redis.Active && lim.Redis.Up))
	gauge(d.rlRedisInstances, float64(lim.Redis.Instances))
	counter(d.rlRedisSyncs, lim.Redis.Syncs, "ok")
	counter(d.rlRedisSyncs, lim.Redis.Failures, "failed")

	counter(d.accessLog, s.AccessLog.Written, "written")
	counter(d.accessLog, s.AccessLog.Dropped, "dropped")

	// TLS series exist only with an HTTPS listener.
	if t := s.TLS; t != nil {
		for _, h := range t.Handshakes {
			counter(d.tlsHandshakes, h.Count, h.Version, h.Result)
		}
		histogram(d.tlsDuration, &t.Duration)
		gauge(d.tlsInProgress, float64(t.InProgress))
		// A pair listed twice would be a duplicate series, which fails
		// the whole scrape: export it once.
		seen := make(map[[2]string]bool, len(t.Certificates))
		for _, c := range t.Certificates {
			name := ""
			if len(c.Names) > 0 {
				name = c.Names[0]
			}
			k := [2]string{validUTF8(name), validUTF8(c.CertFile)}
			if !seen[k] {
				seen[k] = true
				gauge(d.tlsCertExpiry, unixSeconds(c.NotAfter), k[0], k[1])
			}
		}
	}

	ch <- c.buildInfo
}

// cumulative converts a stats.Histogram's per-bucket counts into the
// cumulative counts of a Prometheus histogram, keyed by upper bound, and
// their total. The total is computed from the counts rather than taken
// from Histogram.Count, so the +Inf bucket and _count always agree even if
// the source read its counters at slightly different moments. Missing
// counts (a short slice) count as 0.
func cumulative(counts []uint64) (total uint64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(stats.DurationBuckets))
	for i, le := range stats.DurationBuckets {
		if i < len(counts) {
			total += counts[i]
		}
		buckets[le] = total
	}
	for _, n := range counts[min(len(counts), len(stats.DurationBuckets)):] {
		total += n // the +Inf bucket
	}
	return total, buckets
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / float64(time.Second)
}

// poolLabel is the pool label of a series of backend (stats.PoolOf),
// made valid UTF-8.
func poolLabel(pool, backend string) string {
	return validUTF8(stats.PoolOf(pool, backend))
}

// protocolLabel is the protocol label of a request series: "" (a
// source that does not tell) counts as "http1".
func protocolLabel(p string) string {
	if p == "" {
		return stats.Protocols[0]
	}
	return validUTF8(p)
}

// validUTF8 makes s a valid label value: Prometheus requires UTF-8, and a
// constant metric with an invalid label value would fail the whole
// scrape. Invalid bytes become U+FFFD. Valid strings are returned as is.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
