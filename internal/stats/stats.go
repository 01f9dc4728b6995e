// Package stats is the read-only view of a running ConnX that the metrics
// exporter and the admin API render. The data plane fills a [Snapshot] on
// demand (at scrape or page-load time) from counters it keeps per event
// loop; nothing here is touched per request.
//
// A Snapshot is a plain value: it holds no references into the data plane
// and may be kept, copied and read from any goroutine.
package stats

import (
	"time"

	"github.com/connx/connx/internal/health"
	"github.com/connx/connx/internal/proxyproto"
)

// Snapshot is everything ConnX reports about itself at one instant.
type Snapshot struct {
	Time    time.Time // when the snapshot was taken
	Started time.Time // process start

	// Connections from clients.
	Active  int64 // open client connections (connx_active_connections)
	Parked  int64 // connections parked in the kernel for backpressure
	Closing int64 // clients flushing their last response before closing
	Tunnels int64 // upgraded connections (WebSocket tunnels) now open
	// Refused counts connections refused with 503 at accept because
	// limits.maxConnections or the descriptor limit was reached.
	Refused uint64
	// Denied counts connections and requests refused with 403 by
	// server.allow/deny or a route's allow/deny.
	Denied uint64
	// DroppedHeaders counts request header fields not forwarded because
	// their name contains "_" (server.underscoresInHeaders: false).
	DroppedHeaders uint64
	// ProxyProtocolErrors counts client connections closed because of
	// their PROXY protocol header (server.proxyProtocol), by reason;
	// index with ProxyProtocolReasons.
	ProxyProtocolErrors [NumProxyProtocolReasons]uint64

	// Requests counts finished requests by method, status and backend, in
	// no particular order. Each (Method, Code, Backend) appears once.
	Requests []RequestCount
	// GRPCCalls counts finished gRPC calls of pools whose backends speak
	// HTTP/2, by gRPC status and backend, in no particular order; only
	// non-zero counts.
	GRPCCalls []GRPCCount
	// Errors counts failures by kind; index with an ErrorKind.
	Errors [NumErrorKinds]uint64
	// Durations holds one request-duration histogram per backend in
	// Backends, plus one for Backend == NoBackend when ConnX answered
	// requests itself, for Protocol "http1"; and one more with Protocol
	// "h2" for each of them that has counted an HTTP/2 request.
	Durations []Histogram

	BytesIn  uint64 // bytes read from clients
	BytesOut uint64 // bytes written to clients

	Backends  []Backend
	RateLimit RateLimit
	AccessLog AccessLog
	Reloads   Reloads

	// Pool is the state of the default pool (the top-level backends) as
	// a whole; Pools has every pool, the default one first.
	Pool  Pool
	Pools []Pool
	// Routes has one entry per configured route, in config order; empty
	// without routes.
	Routes []Route

	// TLS is the HTTPS listener's state; nil without server.tls.
	TLS *TLS
}

// TLS is the state of the HTTPS listener (server.tls).
type TLS struct {
	// Handshakes counts finished handshakes: completed ones by Version
	// ("1.2", "1.3") with Result "full" or "resumed", failed ones with
	// Version "none" and Result the reason (TLSFailures). Every
	// combination is present, at 0 until it happens.
	Handshakes []TLSHandshakes
	// Duration is the histogram of completed handshakes' durations, from
	// the accept to the handshake's end, with DurationBuckets (Backend and
	// Pool are "").
	Duration   Histogram
	InProgress int64 // handshakes in progress now
	// Certificates are the serving certificates, in configuration order.
	Certificates []Certificate
}

// TLSVersions are the versions the HTTPS listener can complete a
// handshake with, as the version label spells them.
var TLSVersions = [...]string{"1.2", "1.3"}

// TLSFailures are the reasons a handshake fails: the client went away or
// was too slow (timeouts.tlsHandshake), a protocol failure (no common
// version, suite or ALPN protocol, no valid client certificate, not
// TLS), refused before the handshake (server.tls.maxHandshakes or the
// connection limits), or the event loop could not take the connection
// back.
var TLSFailures = [...]string{"timeout", "protocol", "refused", "enroll"}

// TLSHandshakes is the number of handshakes with one version and result.
type TLSHandshakes struct {
	Version string // "1.2", "1.3"; "none" for a failed handshake
	Result  string // "full", "resumed", or one of TLSFailures
	Count   uint64
}

// Certificate is one serving certificate.
type Certificate struct {
	CertFile string    // as configured
	Names    []string  // DNS names (the common name when there are none)
	NotAfter time.Time // expiry
}

// NoBackend is the Backend label of requests that ConnX answered without
// a backend: malformed requests, rate-limited requests, 503s when no
// backend was available, and the metrics route itself.
const NoBackend = "none"

// GRPCCount is the number of finished gRPC calls with one gRPC status
// and backend.
type GRPCCount struct {
	// Status is the call's gRPC status, "0" to "16", or "other" (a code
	// gRPC does not define, or none: a response without grpc-status that
	// a gRPC client could not read either).
	Status string
	// Backend and Pool are as in RequestCount.
	Backend, Pool string
	Count         uint64
}

// RequestCount is the number of finished requests with one method, status
// code and backend.
type RequestCount struct {
	// Method is the request method, upper case, for the standard methods
	// (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT) and
	// "OTHER" for every other, so the label set stays bounded.
	Method string
	// Code is the status ConnX sent; 499 when the client went away before
	// any status was sent (as nginx logs it).
	Code int
	// Backend is the backend's URL as configured, or NoBackend.
	Backend string
	// Pool is the name of the pool the request was sent to (DefaultPool
	// for the top-level backends), or "" when ConnX answered it before
	// choosing a pool (a malformed request, a redirect or respond route,
	// a request no route matched and no default pool takes).
	Pool string
	// Protocol is the protocol the client spoke, one of Protocols; ""
	// counts as "http1".
	Protocol string
	Count    uint64
}

// Protocols are the values of the protocol label of the request metrics,
// in the order the data plane indexes them: "http1" for HTTP/1.0 and
// HTTP/1.1 requests, "h2" for HTTP/2 streams (TLS with ALPN h2, or h2c).
var Protocols = [...]string{"http1", "h2"}

// Methods lists the methods counted by name, in the order the data plane
// indexes them; every other method counts as "OTHER" (the last entry).
var Methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "OTHER"}

// ErrorKind is why a request failed. The names are the values of the
// connx_errors_total{kind} label.
type ErrorKind uint8

const (
	ErrNoBackend     ErrorKind = iota // no backend available (503)
	ErrConnect                        // connecting to a backend failed (502 unless retried)
	ErrTimeout                        // the response head did not come in time (504)
	ErrBadResponse                    // a backend sent a malformed response (502)
	ErrUpstreamReset                  // a backend closed or reset the connection mid-exchange
	ErrClientAbort                    // the client closed before its response was complete
	ErrRateLimited                    // refused by the rate limiter (429)
	ErrBadRequest                     // malformed or oversized request (400, 405, 413, 414, 431, 501, ...)
	ErrClientTimeout                  // the client was too slow sending its request (408)
	ErrLocal                          // this host ran out of descriptors or ports dialling a backend (503)
	NumErrorKinds
)

var errorNames = [NumErrorKinds]string{
	"no_backend", "connect", "timeout", "bad_response", "upstream_reset",
	"client_abort", "rate_limited", "bad_request", "client_timeout",
	"local_resources",
}

// String is the kind's label value, e.g. "no_backend".
func (k ErrorKind) String() string {
	if k < NumErrorKinds {
		return errorNames[k]
	}
	return "unknown"
}

// NumProxyProtocolReasons is the number of reasons a PROXY protocol
// header is refused: the three of the listener and every
// proxyproto.Error.
const NumProxyProtocolReasons = 3 + len(proxyproto.Errors)

// ProxyProtocolReasons are the values of the reason label of
// connx_proxy_protocol_errors_total, indexed as
// Snapshot.ProxyProtocolErrors: "untrusted" (the peer is not in
// trustedSources), "timeout" (no complete header within the timeout),
// "truncated" (the connection ended inside the header), then each
// proxyproto.Error's Code in the order of proxyproto.Errors.
var ProxyProtocolReasons = func() (r [NumProxyProtocolReasons]string) {
	r[0], r[1], r[2] = "untrusted", "timeout", "truncated"
	for i, e := range proxyproto.Errors {
		r[3+i] = e.Code
	}
	return r
}()

// DurationBuckets are the upper bounds, in seconds, of the request
// duration histogram buckets (0.5 ms to 10 s); a last, implicit bucket is
// +Inf.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram is the request-duration histogram of one backend: the time
// from the request head being read to the last response byte being handed
// to the kernel.
type Histogram struct {
	Backend string
	Pool    string // as in RequestCount
	// Protocol is as in RequestCount for the request-duration histograms
	// (Snapshot.Durations); "" elsewhere.
	Protocol string
	// Counts[i] is the number of requests with duration <= DurationBuckets[i]
	// and > DurationBuckets[i-1] (not cumulative); Counts[len(DurationBuckets)]
	// counts the longer ones. len(Counts) == len(DurationBuckets)+1.
	Counts []uint64
	Count  uint64  // total, the sum of Counts
	Sum    float64 // seconds
}

// Backend is one configured backend as the data plane sees it now.
type Backend struct {
	Pool   string // the pool's name; DefaultPool for the top-level backends
	Name   string // the URL as configured
	Addr   string // host:port dialled
	Weight int

	// Health is the backend's health-check, outlier and breaker state.
	Health health.BackendState
	// Up is whether the balancer may pick the backend now: its weight is
	// above 0 and it is available (Health.Available, and it did not just
	// refuse a connection) or, while the pool is in panic mode, healthy
	// by active checks (breaker and ejection ignored). Being at its
	// maxConnections cap does not make it down.
	Up bool

	InFlight  int64         // requests (and tunnels) in progress
	Latency   time.Duration // the balancer's moving average of response-head latency; 0 if none yet
	IdleConns int64         // pooled idle upstream connections, all loops
	OpenConns int64         // open upstream connections, all loops

	// LatencyPenalty is what recent gateway failures add to Latency in
	// the ewma policy's cost; it decays to 0 a few loadBalancing.ewmaDecay
	// after the last failure.
	LatencyPenalty time.Duration
}

// DefaultPool is the name of the pool of the top-level backends.
const DefaultPool = "default"

// Pool is the state of one backend pool as a whole.
type Pool struct {
	Name string
	// Backends is the number of the pool's backends; Up counts those the
	// balancer may pick now (Backend.Up).
	Backends int
	Up       int
	// Panic is whether the pool is in panic mode now
	// (loadBalancing.panicThreshold): so few backends are available that
	// circuit breakers and outlier ejection are ignored.
	Panic bool
	// Panics counts the times the pool entered panic mode since start.
	Panics uint64
	// Discovery is the state of the pool's DNS discovery
	// (pools[].discovery); zero for a pool with a fixed backend list.
	Discovery Discovery
}

// Discovery is the state of a pool's DNS discovery, as its watcher
// (internal/discovery) last reported it.
type Discovery struct {
	Active bool   // the pool takes its members from DNS
	Name   string // the name resolved, as configured
	Type   string // "A", "AAAA" or "SRV"
	// State is one of DiscoveryStates: where the watcher stands after its
	// last resolution.
	State string
	// Members is the number of members the watcher published last (what
	// the pool has, once the rebuild it asked for is done).
	Members int
	// Resolutions counts the resolutions that finished since the watcher
	// started, Failures those of them that failed (no usable answer; an
	// answer without members is not a failure).
	Resolutions, Failures uint64
	// LastAnswer is when a nameserver last answered; zero before the
	// first answer.
	LastAnswer time.Time
	// LastError is the last resolution's error, "" after one that found
	// members.
	LastError string
}

// DiscoveryStates are the values of Discovery.State, as
// discovery.State.String spells them: no resolution has finished yet; the
// last one found members; it failed and the last members are kept; the
// name has no members and the last ones are kept for emptyGrace; the name
// has no members and the pool is empty.
var DiscoveryStates = [...]string{"starting", "ok", "failing", "holding", "empty"}

// Route is one configured route and the requests it took.
type Route struct {
	// Name is the route's name, or "routes[i]" (its place in the config)
	// for a route without one.
	Name string
	// Action is "pool", "redirect" or "respond"; Pool is the pool's name
	// for a pool route, else "".
	Action string
	Pool   string
	// Requests counts the route's finished requests by status class:
	// Requests[0] for 1xx through Requests[4] for 5xx (499, a client that
	// went away, is a 4xx).
	Requests [5]uint64
	// Duration is the route's request-duration histogram (Backend and
	// Pool empty).
	Duration Histogram
	// RateLimit is the route's own limiter, if it has one.
	RateLimit RateLimit
}

// RateLimit is the rate limiter's counters.
type RateLimit struct {
	Enabled  bool
	Allowed  uint64
	Rejected uint64
	Exempt   uint64
	Keys     int // client buckets held
	Evicted  uint64
	// Redis is the state of the Redis that shares the limit with other
	// instances (rateLimit.redis); zero when none is used.
	Redis Redis
}

// Redis is the state of rateLimit.redis.
type Redis struct {
	Active    bool   // a limiter shares its buckets through Redis
	Up        bool   // the last reconciliation round succeeded
	Instances int    // ConnX instances last seen sharing the Redis
	Syncs     uint64 // rounds that succeeded
	Failures  uint64 // rounds that failed (Redis down, slow, refusing)
}

// AccessLog is the access log writer's counters.
type AccessLog struct {
	Enabled bool
	Written uint64 // lines written
	Dropped uint64 // lines dropped because the queue was full
}

// Reloads counts configuration reloads.
type Reloads struct {
	Success     uint64
	Failure     uint64
	LastSuccess time.Time // zero before the first reload
	LastFailure time.Time
	LastError   string // the last failure's message; "" after a success
}

// Source fills a Snapshot. It is called from the scraping goroutine, may
// be called concurrently, and must not block on the event loops.
type Source func(*Snapshot)
