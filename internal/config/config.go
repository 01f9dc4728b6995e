// Package config defines ConnX's configuration: the YAML schema, its
// defaults, and validation that names the file, line, column and key of
// every problem.
//
// A *Config returned by [Load], [Parse] or [Default] is a plain value with
// no locks. Once it has been handed to the rest of the program it must be
// treated as immutable: the proxy builds its runtime snapshot from it and,
// on reload, builds a new snapshot from a new *Config and swaps it in. Code
// that wants a variant must build (or Parse) a new Config instead of
// editing one that is already in use.
//
// The schema is a superset of the original ConnX seed's: every file written
// for the seed loads unchanged, with the same values.
package config

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connx/connx/internal/acl"
	"github.com/connx/connx/internal/discovery"
	"github.com/connx/connx/internal/route"
)

// The seed's load-balancing algorithm names; balancer.Names() lists every
// name loadBalancing.algorithm accepts.
const (
	AlgorithmRoundRobin         = "round-robin"
	AlgorithmWeightedRoundRobin = "weighted-round-robin"
	AlgorithmLeastConnections   = "least-connections"
)

// Config is the whole configuration. Its zero value is not valid (it has no
// backends and zero limits); start from [Default] when building one in code,
// and call [Config.Validate] before use.
//
// A Config has no internal synchronisation. It is safe for concurrent reads
// once no goroutine writes to it; see the package comment for the
// immutability rule.
type Config struct {
	Server   Server    `yaml:"server"`
	Backends []Backend `yaml:"backends"`
	// Discovery, when not nil, says where the default pool's members come
	// from instead of Backends, which must then be empty. Nil by default.
	Discovery      *Discovery     `yaml:"discovery"`
	LoadBalancing  LoadBalancing  `yaml:"loadBalancing"`
	HealthCheck    HealthCheck    `yaml:"healthCheck"`
	CircuitBreaker CircuitBreaker `yaml:"circuitBreaker"`
	Outlier        Outlier        `yaml:"outlierDetection"`
	RateLimit      RateLimit      `yaml:"rateLimit"`
	Timeouts       Timeouts       `yaml:"timeouts"`
	Limits         Limits         `yaml:"limits"`
	Upstream       Upstream       `yaml:"upstream"`
	BackendTLS     BackendTLS     `yaml:"tls"` // TLS to https:// backends; pools inherit it key by key
	Metrics        Metrics        `yaml:"metrics"`
	Admin          Admin          `yaml:"admin"`
	AccessLog      AccessLog      `yaml:"accessLog"`
	RequestID      RequestID      `yaml:"requestId"`
	Log            Log            `yaml:"log"`
	// Pools are the named pools that routes send requests to, in file
	// order. The top-level Backends, with the top-level LoadBalancing,
	// HealthCheck, CircuitBreaker, Outlier and Upstream, are the default
	// pool, named [DefaultPoolName]. Empty by default.
	Pools []Pool `yaml:"pools"`
	// Routes choose, for each request, a pool or an answer, in file
	// order; [Config.RouteTable] gives their matches to route.Compile.
	// A request that matches no route goes to the default pool, or gets
	// 404 when there are no top-level Backends. Empty by default (every
	// request goes to the default pool).
	Routes []Route `yaml:"routes"`
}

// Server is the listening side of the proxy.
type Server struct {
	// Port is the TCP port to listen on, 0-65535 (0: any free port, for
	// tests). Default 8080.
	Port int `yaml:"port"`
	// Host is the IP address or host name to listen on; "" listens on all
	// interfaces like "0.0.0.0". Default "0.0.0.0".
	Host string `yaml:"host"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM/SIGINT. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// EventLoops is the number of gnet event loops, 0-1024; 0 means
	// GOMAXPROCS. Default 0.
	EventLoops int `yaml:"eventLoops"`
	// PreserveHost forwards the client's Host header unchanged; when false
	// the proxy sets Host to the backend's host:port. Default true.
	PreserveHost bool `yaml:"preserveHost"`
	// UnderscoresInHeaders forwards request header fields whose names
	// contain "_" (X_Custom, Content_Length). When false, the default,
	// they are dropped and counted (connx_dropped_headers_total), as
	// nginx's underscores_in_headers off does: a CGI, WSGI or PHP backend
	// maps "_" and "-" to the same variable, so Content_Length could
	// frame the request there differently than Content-Length here.
	UnderscoresInHeaders bool `yaml:"underscoresInHeaders"`
	// Upgrades lists the protocol tokens a client may switch to with
	// "Connection: Upgrade" (compared case-insensitively); a 101 answer
	// turns the connection into a byte tunnel. An empty list refuses every
	// upgrade. Default ["websocket"].
	Upgrades []string `yaml:"upgrades"`
	// ProxyProtocol makes the listener read a PROXY protocol header (v1
	// or v2) before anything else on each connection.
	ProxyProtocol ProxyProtocol `yaml:"proxyProtocol"`
	// Allow lists the CIDRs (or single addresses) of the clients the
	// listener serves; empty (the default) serves everyone. Deny lists
	// those it refuses, and wins over Allow. Both are checked against
	// the client's address: the PROXY header's when ProxyProtocol is on,
	// else the TCP peer's. [Server.AccessPolicy] builds the check.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// TLS is the HTTPS listener, on Host next to the plaintext Port; nil
	// (the default) means none.
	TLS *TLS `yaml:"tls"`
	// H2C serves cleartext HTTP/2 with prior knowledge on Port: a
	// connection that starts with the HTTP/2 preface speaks HTTP/2, any
	// other HTTP/1.1 (docs/http2.md). Default false.
	H2C bool `yaml:"h2c"`
	// HTTP2 bounds each HTTP/2 client connection (docs/http2.md).
	HTTP2 HTTP2 `yaml:"http2"`
	// RedirectHTTP makes the plaintext port answer every request with a
	// 308 to the same URL on the HTTPS port, except the paths under
	// RedirectHTTPExempt and the metrics path. Needs TLS. Default false.
	RedirectHTTP bool `yaml:"redirectHTTP"`
	// RedirectHTTPExempt lists the path prefixes (of the normalised path)
	// that the plaintext port still serves with RedirectHTTP: ACME
	// HTTP-01 challenges, health checks of a load balancer in front.
	// Default ["/.well-known/acme-challenge/"].
	RedirectHTTPExempt []string `yaml:"redirectHTTPExempt"`
}

// HTTP2 holds the limits of one HTTP/2 client connection, for ALPN h2 on
// the HTTPS listener and for h2c (docs/http2.md).
type HTTP2 struct {
	// MaxConcurrentStreams is advertised in SETTINGS; a stream opened
	// beyond it is refused (REFUSED_STREAM). 1-10000, default 100.
	MaxConcurrentStreams int `yaml:"maxConcurrentStreams"`
	// MaxHeaderListSize bounds a decoded request head (RFC 9113 6.5.2;
	// beyond it: 431). 1KiB-1MiB, default 32KiB.
	MaxHeaderListSize int64 `yaml:"maxHeaderListSize"`
	// StreamWindow is each stream's receive window: the request body
	// bytes a client may send ahead of what the backend has taken.
	// 64KiB-16MiB, default 64KiB.
	StreamWindow int64 `yaml:"streamWindow"`
	// ConnectionWindow is the connection's receive window, for all its
	// streams together. 64KiB-64MiB, default 1MiB.
	ConnectionWindow int64 `yaml:"connectionWindow"`
	// MaxResets bounds the streams a client resets (or makes ConnX reset)
	// per 10 s before the connection is closed with ENHANCE_YOUR_CALM
	// (rapid reset, CVE-2023-44487). >= 1, default 200.
	MaxResets int `yaml:"maxResets"`
	// MaxControlFrames bounds PING, SETTINGS, PRIORITY and empty frames
	// per 10 s (CVE-2019-9512/9515/9516/9518). >= 1, default 1000.
	MaxControlFrames int `yaml:"maxControlFrames"`
}

// ProxyProtocol configures reading the PROXY protocol header that a load
// balancer in front of ConnX (AWS NLB, HAProxy send-proxy) sends on each
// connection; docs/proxy-protocol.md describes it.
type ProxyProtocol struct {
	// Enabled requires the header on every connection. Default false.
	Enabled bool `yaml:"enabled"`
	// TrustedSources lists the CIDRs (or single addresses) of the peers
	// allowed to send the header; a connection from any other peer is
	// closed. At least one is required when Enabled is true. Default
	// empty.
	TrustedSources []string `yaml:"trustedSources"`
	// Timeout bounds the wait for a complete header from the connection's
	// open; exceeded -> the connection is closed. > 0. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// Trusted returns the set of TrustedSources (validated).
func (p *ProxyProtocol) Trusted() acl.Set {
	return acl.NewSet(prefixes(p.TrustedSources))
}

// AccessPolicy returns the allow/deny policy of server.allow and
// server.deny (validated).
func (s *Server) AccessPolicy() acl.Policy {
	return acl.NewPolicy(prefixes(s.Allow), prefixes(s.Deny))
}

// TLS configures the HTTPS listener (docs/tls.md). A file that has a tls
// section gets the defaults below for the keys it leaves out.
type TLS struct {
	// Port is the HTTPS port on server.host, 0-65535 (0: any free port,
	// for tests); it must differ from server.port. Default 8443.
	Port int `yaml:"port"`
	// Certificates are the certificate chains and keys served, chosen by
	// SNI: exact name, then wildcard, then the first as the default. At
	// least one. Files are re-read when they change.
	Certificates []Certificate `yaml:"certificates"`
	// MinVersion is the oldest TLS version accepted: "1.2" (default) or
	// "1.3". TLS 1.3 is preferred whenever the client offers it.
	MinVersion string `yaml:"minVersion"`
	// MaxHandshakes bounds the handshakes in progress (each runs on a
	// goroutine of its own, off the event loops); a connection beyond it
	// is closed at once. >= 1, default 4096.
	MaxHandshakes int `yaml:"maxHandshakes"`
	// HTTP2 offers HTTP/2 by ALPN ("h2" before "http/1.1"); false offers
	// HTTP/1.1 only. Default true.
	HTTP2 bool `yaml:"http2"`
	// ClientAuth asks clients for certificates (mutual TLS); nil (the
	// default) asks none.
	ClientAuth *ClientAuth `yaml:"clientAuth"`
}

// ClientAuth configures client certificates on the HTTPS listener
// (docs/tls.md#client-certificates-mtls).
type ClientAuth struct {
	// Mode is "require" (default): a client without a certificate that
	// CAFile verifies is refused in the handshake; or "request": a
	// client may send none, but one it sends must verify.
	Mode string `yaml:"mode"`
	// CAFile is a PEM file of the CA certificates that verify client
	// certificates. Required; re-read on reload.
	CAFile string `yaml:"caFile"`
	// SubjectHeader is the request header that carries the verified
	// client certificate's subject (RFC 2253, "CN=client,O=Example") to
	// the backends. ConnX removes it from every request a client sends,
	// on both ports, so that a client cannot forge it. Default
	// "X-Client-Subject".
	SubjectHeader string `yaml:"subjectHeader"`
}

// Certificate is one certificate chain (PEM, leaf first) and its private
// key (PEM; ECDSA, RSA or Ed25519).
type Certificate struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// DefaultTLS is the tls section a file gets when it writes one, before
// its own keys apply.
func DefaultTLS() *TLS {
	return &TLS{Port: 8443, MinVersion: "1.2", MaxHandshakes: 4096, HTTP2: true}
}

// TLSListenAddr returns the HTTPS listener's "host:port", or "" when
// there is none.
func (c *Config) TLSListenAddr() string {
	if c.Server.TLS == nil {
		return ""
	}
	return net.JoinHostPort(c.Server.Host, strconv.Itoa(c.Server.TLS.Port))
}

// Backend is one upstream server.
//
// The zero Weight means "receives no new traffic" (drain), so backends built
// in code should normally set Weight to 1; in YAML an absent weight defaults
// to 1.
type Backend struct {
	// URL is the backend URL exactly as written, e.g. "http://backend1:8080"
	// or "https://backend1" (TLS, with its pool's tls settings); the path
	// must be empty or "/".
	URL string `yaml:"url"`
	// Weight is the backend's share of traffic, 0-1000; 0 drains the backend
	// (no new requests are sent to it). Default 1 when read from YAML.
	Weight int `yaml:"weight"`
	// MaxConnections caps the requests in flight to this backend (0-1000000;
	// 0, the default, means no cap); a full backend is skipped by the
	// balancer.
	MaxConnections int `yaml:"maxConnections"`
	// TLS overrides its pool's tls settings for this backend (an
	// https:// URL only): the keys it sets replace the pool's, the
	// others are the pool's (Parse fills them in). Nil, the default,
	// uses the pool's settings as they are. Key tls.
	TLS *BackendTLS `yaml:"tls"`
	// Addr is the "host:port" dial address derived from URL by
	// [Config.Validate] (port 80 when the URL has none; host lower-cased).
	// It identifies the backend: runtime state that must survive a reload is
	// keyed by Addr. It is not read from YAML.
	Addr string `yaml:"-"`
}

// HTTPS reports whether the backend is spoken to over TLS (an https://
// URL).
func (b *Backend) HTTPS() bool {
	return len(b.URL) >= 8 && strings.EqualFold(b.URL[:8], "https://")
}

// LoadBalancing selects the balancing policy.
type LoadBalancing struct {
	// Algorithm is a policy name from balancer.Names(): round-robin
	// (default), weighted-round-robin, least-connections, p2c, ewma,
	// consistent-hash, random.
	Algorithm string `yaml:"algorithm"`
	// HashKey is what consistent-hash hashes: "client-ip" (default),
	// "path", "header:Name" or "cookie:name".
	HashKey string `yaml:"hashKey"`
	// HashLoadFactor is consistent-hash's bounded-load factor c (>= 1):
	// no backend takes more than c times its share of the requests in
	// flight. Default 1.25.
	HashLoadFactor float64 `yaml:"hashLoadFactor"`
	// SlowStart is how long a backend that comes back ramps its share from
	// 10% to full; 0 (default) turns slow start off.
	SlowStart time.Duration `yaml:"slowStart"`
	// EWMADecay is the time constant of the ewma policy's latency
	// estimate. Default 10s.
	EWMADecay time.Duration `yaml:"ewmaDecay"`
	// RetryBudget is the most retries may add, as a percentage of the
	// requests of the last 10 seconds (0-100, default 20); at least 10
	// retries per 10 seconds are always allowed.
	RetryBudget int `yaml:"retryBudget"`
	// PanicThreshold is a percentage, 0-100 (default 50, as Envoy's
	// healthy_panic_threshold): when circuit breakers and outlier
	// ejection leave fewer than this share of the backends that active
	// health checks consider up (weight above 0) available, the pool is
	// in panic mode and the balancer ignores breakers and ejection,
	// spreading requests over every backend active checks consider up.
	// 0 turns panic mode off.
	PanicThreshold int `yaml:"panicThreshold"`
}

// HealthCheck configures active health checking.
type HealthCheck struct {
	// Interval between two checks of one backend. Default 30s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one check, > 0; it may equal or exceed Interval (the
	// next check starts Interval after one ends). Default 5s, or Interval
	// when a file sets a shorter interval and no timeout.
	Timeout time.Duration `yaml:"timeout"`
	// Enabled turns active checks on. Default true.
	Enabled bool `yaml:"enabled"`
	// Path is the request path of a check. Default "/".
	Path string `yaml:"path"`
	// Method is GET (default) or HEAD.
	Method string `yaml:"method"`
	// ExpectedStatus lists the healthy statuses: codes, ranges and classes
	// such as "200-399" (default), "200,204", "2xx".
	ExpectedStatus string `yaml:"expectedStatus"`
	// HealthyThreshold is the number of consecutive passing checks that
	// make an unhealthy backend healthy (rise), 1-100. Default 2.
	HealthyThreshold int `yaml:"healthyThreshold"`
	// UnhealthyThreshold is the number of consecutive failing checks that
	// make a healthy backend unhealthy (fall), 1-100. Default 3.
	UnhealthyThreshold int `yaml:"unhealthyThreshold"`
	// Host is the Host header of a check; empty means the backend's
	// host:port.
	Host string `yaml:"host"`
	// Jitter spreads checks: each waits a random 0..Jitter extra, so
	// backends are not probed in the same millisecond; at most half the
	// Interval is used. Default 1s.
	Jitter time.Duration `yaml:"jitter"`
	// Kind is what a check asks: [HealthCheckHTTP] (a request for Path),
	// [HealthCheckGRPC] (grpc.health.v1.Health/Check over HTTP/2; only for
	// a pool whose upstream.protocol is h2c or h2), or [HealthCheckAuto]
	// (the default): gRPC for an h2c or h2 pool, else HTTP.
	Kind string `yaml:"kind"`
}

// Values of HealthCheck.Kind.
const (
	HealthCheckAuto = "auto"
	HealthCheckHTTP = "http"
	HealthCheckGRPC = "grpc"
)

// CircuitBreaker configures the per-backend circuit breaker.
type CircuitBreaker struct {
	// Enabled turns the breaker on. Default true.
	Enabled bool `yaml:"enabled"`
	// MaxFailures is the number of consecutive failures that opens the
	// circuit, >= 1. Default 5.
	MaxFailures int `yaml:"maxFailures"`
	// Timeout is how long the circuit stays open before it goes half-open.
	// Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// ResetTimeout: a failure more than ResetTimeout after the previous
	// one restarts the count of consecutive failures. Default 30s.
	ResetTimeout time.Duration `yaml:"resetTimeout"`
	// HalfOpenSuccess is the number of successes in half-open state that
	// closes the circuit, 1-1000. Default 2.
	HalfOpenSuccess int `yaml:"halfOpenSuccess"`
	// HalfOpenRequests is how many probe requests may be in flight at once
	// while half-open, 1-1000. Default 1.
	HalfOpenRequests int `yaml:"halfOpenRequests"`
	// FailureOn5xx counts every 5xx response as a failure. When false (the
	// default) only gateway failures count: connect errors, resets,
	// timeouts and 502, 503 and 504 responses; an application's 500 says
	// nothing about the backend.
	FailureOn5xx bool `yaml:"failureOn5xx"`
}

// Outlier configures passive health: ejecting a backend whose live
// traffic fails.
type Outlier struct {
	// Enabled turns outlier detection on. Default true.
	Enabled bool `yaml:"enabled"`
	// ConsecutiveFailures ejects after this many failures in a row, 0-1000
	// (0: off). Default 5.
	ConsecutiveFailures int `yaml:"consecutiveFailures"`
	// FailureOn5xx counts every 5xx response as a failure; when false
	// (the default) only gateway failures count, as for the breaker.
	FailureOn5xx bool `yaml:"failureOn5xx"`
	// FailurePercent ejects when at least this percentage of the requests
	// in a Window failed, 0-100 (0: off, the default).
	FailurePercent int `yaml:"failurePercent"`
	// Window is the period FailurePercent is measured over. Default 10s.
	Window time.Duration `yaml:"window"`
	// MinRequests is the fewest requests in a Window for FailurePercent to
	// apply, >= 1. Default 20.
	MinRequests int `yaml:"minRequests"`
	// BaseEjection is the first ejection's length; each further ejection
	// doubles it, up to MaxEjection. Default 30s.
	BaseEjection time.Duration `yaml:"baseEjection"`
	// MaxEjection caps an ejection's length, >= BaseEjection. Default 5m.
	MaxEjection time.Duration `yaml:"maxEjection"`
	// MaxEjectedPercent is the largest share of the pool ejected at once,
	// 0-100. Default 50.
	MaxEjectedPercent int `yaml:"maxEjectedPercent"`
}

// RateLimit configures the token-bucket rate limiter.
type RateLimit struct {
	// Enabled turns rate limiting on. Default false.
	Enabled bool `yaml:"enabled"`
	// RequestsPerSec is the refill rate, > 0. Default 100.
	RequestsPerSec float64 `yaml:"requestsPerSec"`
	// Burst is the bucket size, >= 1. Default 200; in a file that sets
	// requestsPerSec but not burst, twice RequestsPerSec (rounded up), as in
	// the seed.
	Burst int `yaml:"burst"`
	// PerIP keeps one bucket per client instead of one global bucket.
	// Default false.
	PerIP bool `yaml:"perIP"`
	// Key identifies a client when PerIP is on: "client-ip" (default) or
	// "header:Name" (e.g. an API key header).
	Key string `yaml:"key"`
	// TrustedProxies lists the CIDRs (or single addresses) of proxies in
	// front of ConnX: for a request from one of them, the client is the
	// right-most untrusted address of X-Forwarded-For.
	TrustedProxies []string `yaml:"trustedProxies"`
	// IPv6Prefix groups IPv6 clients by this prefix length, 1-128.
	// Default 64.
	IPv6Prefix int `yaml:"ipv6Prefix"`
	// MaxClients bounds the per-client table; the least recently used
	// client is evicted beyond it. Default 100000.
	MaxClients int `yaml:"maxClients"`
	// IdleTTL drops a client's bucket once it has been idle (and full) this
	// long. Default 1m.
	IdleTTL time.Duration `yaml:"idleTTL"`
	// Exempt lists paths never limited: exact paths, or prefixes ending
	// in "*" (e.g. "/health*").
	Exempt []string `yaml:"exempt"`
	// Redis shares the limit with the other ConnX instances that use the
	// same Redis (address, db and prefix), so that it holds for the fleet.
	// Off while Redis.Address is empty (the default).
	Redis RateLimitRedis `yaml:"redis"`
}

// RateLimitRedis is rateLimit.redis: where the fleet's shared buckets
// live. Its fields are in the order of redisync.Options, which converts
// from it.
type RateLimitRedis struct {
	// Address is Redis's "host:port"; "" (default) limits each instance
	// alone.
	Address string `yaml:"address"`
	// Username and Password authenticate (AUTH). Default "" (none).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database index (SELECT), 0-1000000. Default 0.
	DB int `yaml:"db"`
	// Prefix starts every key ConnX writes; instances share limits only
	// with the same prefix. Default "connx:".
	Prefix string `yaml:"prefix"`
	// SyncInterval is the time between two reconciliations with Redis,
	// 1ms-10s. Default 50ms.
	SyncInterval time.Duration `yaml:"syncInterval"`
	// Timeout bounds connecting and each reconciliation round trip; a
	// slower Redis counts as down, 1ms-1m. Default 250ms.
	Timeout time.Duration `yaml:"timeout"`
}

// Timeouts are the proxy's I/O deadlines. Every one must be > 0.
type Timeouts struct {
	// ClientHeader bounds receiving a complete request head, counted from
	// its first byte (or from connection open); exceeded -> 408. Default 10s.
	ClientHeader time.Duration `yaml:"clientHeader"`
	// ClientIdle closes a keep-alive client connection idle between
	// requests. Default 60s.
	ClientIdle time.Duration `yaml:"clientIdle"`
	// ClientBody is the longest inactivity while receiving a request body;
	// exceeded -> 408. Default 60s.
	ClientBody time.Duration `yaml:"clientBody"`
	// UpstreamConnect bounds a TCP connect to a backend; exceeded -> 502
	// (retried on another backend). Default 5s.
	UpstreamConnect time.Duration `yaml:"upstreamConnect"`
	// UpstreamResponseHeader bounds the time from the request being fully
	// sent to the response head being complete; exceeded -> 504.
	// Default 60s.
	UpstreamResponseHeader time.Duration `yaml:"upstreamResponseHeader"`
	// UpstreamRead is the longest inactivity while receiving a response
	// body; exceeded -> the exchange is aborted. Default 60s.
	UpstreamRead time.Duration `yaml:"upstreamRead"`
	// UpstreamIdle closes a pooled idle upstream connection. Default 60s.
	UpstreamIdle time.Duration `yaml:"upstreamIdle"`
	// TunnelIdle closes an upgraded connection (a WebSocket tunnel) after
	// this long with no bytes in either direction. Default 1h.
	TunnelIdle time.Duration `yaml:"tunnelIdle"`
	// TLSHandshake bounds a TLS handshake on the HTTPS listener, from
	// the connection's accept; exceeded -> the connection is closed.
	// Default 10s.
	TLSHandshake time.Duration `yaml:"tlsHandshake"`
}

// Limits bound what one client may make the proxy hold. Sizes are in bytes.
type Limits struct {
	// MaxConnections is the number of concurrent client connections, >= 0;
	// beyond it a new connection gets 503 and is closed. 0 (the default)
	// sizes it from the file descriptor limit: DefaultMaxConnections, or
	// fewer when the limit cannot hold that many (a client and an upstream
	// connection each).
	MaxConnections int `yaml:"maxConnections"`
	// MaxRequestLine is the longest request line, 1..MaxHeaderBytes;
	// exceeded -> 414. Default 8192.
	MaxRequestLine int64 `yaml:"maxRequestLine"`
	// MaxHeaderBytes is the largest request head (request line and header
	// fields), 1..ConnectionBuffer; exceeded -> 431. Default 16384.
	MaxHeaderBytes int64 `yaml:"maxHeaderBytes"`
	// MaxHeaders is the largest number of header fields, >= 1;
	// exceeded -> 431. Default 100.
	MaxHeaders int `yaml:"maxHeaders"`
	// MaxRequestBody is the largest request body, >= 0; 0 means unlimited;
	// exceeded -> 413. Default 0.
	MaxRequestBody int64 `yaml:"maxRequestBody"`
	// ConnectionBuffer bounds the bytes buffered per connection per
	// direction (the backpressure high-water mark), 16KiB..64MiB.
	// Default 256KiB.
	ConnectionBuffer int64 `yaml:"connectionBuffer"`
}

// Upstream configures connections to backends.
type Upstream struct {
	// MaxIdlePerBackend is the number of idle keep-alive connections kept
	// per backend per event loop, 0-10000; 0 disables pooling. Default 256.
	MaxIdlePerBackend int `yaml:"maxIdlePerBackend"`
	// Retries is how many times a failed connect is retried on another
	// backend, 0-5. Default 1.
	Retries int `yaml:"retries"`
	// ProxyProtocol is the PROXY protocol header sent first on every new
	// connection to a backend, carrying the client's address:
	// [ProxyProtocolV1], [ProxyProtocolV2], or "" (the default) for none.
	ProxyProtocol string `yaml:"proxyProtocol"`
	// Protocol is what the backends speak: [ProtocolHTTP1] (the default),
	// [ProtocolH2C], HTTP/2 in cleartext with prior knowledge, or
	// [ProtocolH2], HTTP/2 over TLS (ALPN h2; https:// backends only);
	// with either HTTP/2 many requests (gRPC calls) share each connection.
	Protocol string `yaml:"protocol"`
}

// HTTP2 reports whether the backends speak HTTP/2 (h2c or h2).
func (u *Upstream) HTTP2() bool { return u.Protocol == ProtocolH2C || u.Protocol == ProtocolH2 }

// Values of Upstream.Protocol.
const (
	ProtocolHTTP1 = "http1"
	ProtocolH2C   = "h2c"
	ProtocolH2    = "h2"
)

// Values of Upstream.ProxyProtocol.
const (
	ProxyProtocolV1 = "v1"
	ProxyProtocolV2 = "v2"
)

// Metrics configures the metrics endpoint on the main port.
type Metrics struct {
	// Path is the route on the main port that serves metrics; "" turns the
	// endpoint off. Default "/metrics".
	Path string `yaml:"path"`
	// Allow lists the CIDRs (or single addresses) of the clients that get
	// metrics at Path; a request for Path from any other client is proxied
	// like every other request. The TCP peer's address is checked
	// (X-Forwarded-For is not). Default: loopback, the private ranges of
	// RFC 1918, IPv6 unique local addresses and link-local addresses
	// ([DefaultMetricsAllow]).
	Allow []string `yaml:"allow"`
}

// DefaultMetricsAllow is the default metrics.allow: the clients on this
// host (loopback) and on private networks.
var DefaultMetricsAllow = []string{
	"127.0.0.0/8", "::1/128", // loopback
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // RFC 1918
	"fc00::/7",                    // IPv6 unique local (RFC 4193)
	"169.254.0.0/16", "fe80::/10", // link-local
}

// Log configures the process log: start-up, reloads, health changes and
// errors (the per-request log is AccessLog).
type Log struct {
	// Format is "text" (slog's key=value lines) or "json" (one JSON object
	// per line). Every line carries the process ID as "pid". Default
	// "text". It is read at start; a change applies after a restart or an
	// upgrade.
	Format string `yaml:"format"`
}

// Admin configures the admin listener: health and readiness probes, the
// JSON API, the status page and metrics, served by net/http off the event
// loops.
type Admin struct {
	// Listen is the admin listener's "host:port", e.g. "127.0.0.1:9090";
	// "" turns it off. Port 0 picks a free port. Default "".
	Listen string `yaml:"listen"`
}

// AccessLog configures the per-request access log, written off the event
// loops through a bounded queue.
type AccessLog struct {
	// Enabled turns the access log on. Default false.
	Enabled bool `yaml:"enabled"`
	// Output is "stderr", "stdout" or a file path (appended to). Default
	// "stderr".
	Output string `yaml:"output"`
	// Format is "json" or "logfmt". Default "json".
	Format string `yaml:"format"`
	// Sample is the share of requests logged, 0 < sample <= 1. Default 1.
	Sample float64 `yaml:"sample"`
	// QueueSize is how many lines may wait for the writer, 1-1048576;
	// lines beyond it are dropped and counted. Default 8192.
	QueueSize int `yaml:"queueSize"`
}

// Size units.
const (
	kib = 1 << 10
	mib = 1 << 20
)

// Limits on values that have no natural bound.
const (
	maxWeight            = 1000
	maxEventLoops        = 1024
	maxIdlePerBackendCap = 10000
	maxRetries           = 5
	minConnectionBuffer  = 16 * kib
	maxConnectionBuffer  = 64 * mib
)

// DefaultMaxConnections is the most client connections an unset (0)
// limits.maxConnections allows; the proxy allows fewer when the file
// descriptor limit cannot hold that many.
const DefaultMaxConnections = 10000

// Default returns a new Config holding every default value and no
// backends. The caller owns the result.
func Default() *Config {
	return &Config{
		Server: Server{
			Port:            8080,
			Host:            "0.0.0.0",
			ShutdownTimeout: 30 * time.Second,
			EventLoops:      0,
			PreserveHost:    true,
			Upgrades:        []string{"websocket"},
			ProxyProtocol:   ProxyProtocol{Timeout: 5 * time.Second},
			HTTP2: HTTP2{
				MaxConcurrentStreams: 100,
				MaxHeaderListSize:    32 * kib,
				StreamWindow:         64 * kib,
				ConnectionWindow:     mib,
				MaxResets:            200,
				MaxControlFrames:     1000,
			},

			RedirectHTTPExempt: []string{"/.well-known/acme-challenge/"},
		},
		LoadBalancing: LoadBalancing{
			Algorithm:      AlgorithmRoundRobin,
			HashKey:        "client-ip",
			HashLoadFactor: 1.25,
			EWMADecay:      10 * time.Second,
			RetryBudget:    20,
			PanicThreshold: 50,
		},
		HealthCheck: HealthCheck{
			Interval:           30 * time.Second,
			Timeout:            5 * time.Second,
			Enabled:            true,
			Path:               "/",
			Method:             "GET",
			ExpectedStatus:     "200-399",
			HealthyThreshold:   2,
			UnhealthyThreshold: 3,
			Jitter:             time.Second,
			Kind:               HealthCheckAuto,
		},
		CircuitBreaker: CircuitBreaker{
			Enabled:          true,
			MaxFailures:      5,
			Timeout:          60 * time.Second,
			ResetTimeout:     30 * time.Second,
			HalfOpenSuccess:  2,
			HalfOpenRequests: 1,
			FailureOn5xx:     false,
		},
		Outlier: Outlier{
			Enabled:             true,
			ConsecutiveFailures: 5,
			FailureOn5xx:        false,
			Window:              10 * time.Second,
			MinRequests:         20,
			BaseEjection:        30 * time.Second,
			MaxEjection:         5 * time.Minute,
			MaxEjectedPercent:   50,
		},
		RateLimit: RateLimit{
			Enabled:        false,
			RequestsPerSec: 100,
			Burst:          200,
			PerIP:          false,
			Key:            "client-ip",
			IPv6Prefix:     64,
			MaxClients:     100000,
			IdleTTL:        time.Minute,
			Redis: RateLimitRedis{
				Prefix:       "connx:",
				SyncInterval: 50 * time.Millisecond,
				Timeout:      250 * time.Millisecond,
			},
		},
		Timeouts: Timeouts{
			ClientHeader:           10 * time.Second,
			ClientIdle:             60 * time.Second,
			ClientBody:             60 * time.Second,
			UpstreamConnect:        5 * time.Second,
			UpstreamResponseHeader: 60 * time.Second,
			UpstreamRead:           60 * time.Second,
			UpstreamIdle:           60 * time.Second,
			TunnelIdle:             time.Hour,
			TLSHandshake:           10 * time.Second,
		},
		Limits: Limits{
			MaxConnections:   0, // sized from the descriptor limit
			MaxRequestLine:   8192,
			MaxHeaderBytes:   16384,
			MaxHeaders:       100,
			MaxRequestBody:   0,
			ConnectionBuffer: 256 * kib,
		},
		Upstream: Upstream{
			MaxIdlePerBackend: 256,
			Retries:           1,
			Protocol:          ProtocolHTTP1,
		},
		Metrics: Metrics{Path: "/metrics", Allow: slices.Clone(DefaultMetricsAllow)},
		AccessLog: AccessLog{
			Output:    "stderr",
			Format:    "json",
			Sample:    1,
			QueueSize: 8192,
		},
		RequestID: RequestID{
			Enabled: true,
			Header:  "X-Request-Id",
		},
		Log: Log{Format: "text"},
	}
}

// ListenAddr returns the address to listen on, "host:port".
func (c *Config) ListenAddr() string {
	return net.JoinHostPort(c.Server.Host, strconv.Itoa(c.Server.Port))
}

// TrustedPrefixes parses rateLimit.trustedProxies (validated: a bare
// address becomes a /32 or /128).
func (r *RateLimit) TrustedPrefixes() []netip.Prefix {
	return prefixes(r.TrustedProxies)
}

// AllowPrefixes parses metrics.allow (validated: a bare address becomes a
// /32 or /128).
func (m *Metrics) AllowPrefixes() []netip.Prefix {
	return prefixes(m.Allow)
}

// prefixes parses a validated list of CIDRs and addresses with
// acl.ParsePrefix, the parser of every key that lists prefixes; items
// that do not parse are left out.
func prefixes(list []string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range list {
		if p, err := acl.ParsePrefix(s); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// RequestID tags every proxied request with an ID that the backend, the
// client and the access log all see, so one request can be followed
// across proxies and services.
type RequestID struct {
	// Enabled turns request IDs on. Default true.
	Enabled bool `yaml:"enabled"`
	// Header is the field that carries the ID: a client's value (1 to 64
	// letters, digits or "-_.:+/=") is kept, anything else is replaced by
	// a new random ID (32 hex digits). It is sent to the backend and
	// returned to the client unless the backend's response has it
	// already. Default "X-Request-Id".
	Header string `yaml:"header"`
}

// DefaultPoolName is the name routes use for the default pool: the
// top-level backends with the top-level sections ([Config.DefaultPool]).
// No entry of Config.Pools may have this name.
const DefaultPoolName = "default"

// Pool is a named group of backends with its own balancing, health
// checks, circuit breakers, outlier detection and upstream settings
// (Config.Pools). In YAML a pool is an entry of the pools mapping, and
// each of its sections starts from the top-level section of the same name
// whatever the order of the keys in the file: a key the pool gives
// overrides just that key. A pool that sets healthCheck.interval but not
// healthCheck.timeout gets the top-level timeout or its own interval,
// whichever is shorter.
//
// A Pool built in code should start from [Config.NewPool], which copies
// the top-level sections; its zero sections are not valid.
type Pool struct {
	// Name is the pool's key in the pools mapping: 1 to 64 letters,
	// digits, "-" or "_", unique, and not [DefaultPoolName]. A "name" key
	// inside a pool is refused; the tag names the field in dumps of the
	// config (the admin API).
	Name string `yaml:"name"`
	// Backends are the pool's members, written as the top-level
	// backends are (mappings or plain URL strings); at least one is
	// required unless the pool has Discovery. [Config.Validate] fills in
	// each Addr. The same address may appear in several pools.
	Backends []Backend `yaml:"backends"`
	// Discovery, when not nil, says where the pool's members come from
	// instead of Backends, which must then be empty. Nil by default.
	Discovery *Discovery `yaml:"discovery"`
	// LoadBalancing, HealthCheck, CircuitBreaker, Outlier and Upstream
	// have the meaning, ranges and keys of the top-level sections.
	LoadBalancing  LoadBalancing  `yaml:"loadBalancing"`
	HealthCheck    HealthCheck    `yaml:"healthCheck"`
	CircuitBreaker CircuitBreaker `yaml:"circuitBreaker"`
	Outlier        Outlier        `yaml:"outlierDetection"`
	Upstream       Upstream       `yaml:"upstream"`
	TLS            BackendTLS     `yaml:"tls"`
}

// BackendTLS configures TLS to https:// backends (docs/tls.md#https-to-backends).
// http:// backends ignore it. The zero value verifies the backend's
// certificate against the system's CAs for the URL's host.
type BackendTLS struct {
	// ServerName is sent in SNI and must be a name of the backend's
	// certificate; "" (the default) uses the backend URL's host (an IP
	// address then must be in the certificate's IP SANs).
	ServerName string `yaml:"serverName"`
	// CAFile is a PEM file of the CAs that verify backend certificates;
	// "" (the default) uses the system's.
	CAFile string `yaml:"caFile"`
	// InsecureSkipVerify accepts any backend certificate. Default false.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
	// CertFile and KeyFile are a client certificate (PEM chain, leaf
	// first, and its key) ConnX presents to backends that ask for one;
	// both or neither. Default none.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// NewPool returns a Pool named name with no backends and c's top-level
// sections, which is what Parse starts a pool from.
func (c *Config) NewPool(name string) Pool {
	return Pool{
		Name:           name,
		LoadBalancing:  c.LoadBalancing,
		HealthCheck:    c.HealthCheck,
		CircuitBreaker: c.CircuitBreaker,
		Outlier:        c.Outlier,
		Upstream:       c.Upstream,
		TLS:            c.BackendTLS,
	}
}

// DefaultPool returns the default pool as a Pool: named
// [DefaultPoolName], with the top-level Backends and Discovery (shared,
// not copied) and sections. Its Backends may be empty when c has routes
// or Discovery.
func (c *Config) DefaultPool() Pool {
	p := c.NewPool(DefaultPoolName)
	p.Backends = c.Backends
	p.Discovery = c.Discovery
	return p
}

// Discovery says where a pool's members come from when they are not a
// fixed list (docs/discovery.md). Exactly one source is set; DNS is the
// only one.
type Discovery struct {
	// DNS takes the members from DNS records. Required.
	DNS *DNSDiscovery `yaml:"dns"`
}

// DNSDiscovery takes a pool's members from the A, AAAA or SRV records of
// a name, re-resolved at the records' TTL. In YAML, each key not given
// has the default said here; a DNSDiscovery built in code should start
// from [NewDNSDiscovery]. [DNSDiscovery.WatcherConfig] gives it to
// discovery.New.
type DNSDiscovery struct {
	// Name is the DNS name to resolve, taken as fully qualified (no search
	// domains). Required.
	Name string `yaml:"name"`
	// Type is "A" (default), "AAAA" or "SRV".
	Type string `yaml:"type"`
	// Port is the members' port for A and AAAA, 1-65535 (required); not
	// allowed for SRV, whose records carry it.
	Port int `yaml:"port"`
	// Resolver is the nameserver, "ip" or "ip:port" (port 53 by default);
	// "" (the default) uses the nameservers of /etc/resolv.conf.
	Resolver string `yaml:"resolver"`
	// MinTTL and MaxTTL clamp the answer's TTL, which says when the name
	// is resolved again: MinTTL >= 1s (default 5s), MaxTTL from MinTTL to
	// 24h (default 1m).
	MinTTL time.Duration `yaml:"minTTL"`
	MaxTTL time.Duration `yaml:"maxTTL"`
	// Timeout bounds one query to one nameserver, > 0 and at most 1m.
	// Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// EmptyGrace is how long the last members are kept once the name
	// answers with none (NXDOMAIN or no records) before the pool is
	// emptied; 0 empties it at once. Default 1m.
	EmptyGrace time.Duration `yaml:"emptyGrace"`
	// MaxMembers caps the pool's members, 1-10000. Default 256.
	MaxMembers int `yaml:"maxMembers"`
	// StartEmpty lets ConnX start, or apply a reload that adds or changes
	// this pool's discovery, when the first resolution fails or finds no
	// members: the pool starts empty and fills in when the name resolves.
	// When false (the default) that start or reload fails instead.
	StartEmpty bool `yaml:"startEmpty"`
}

// NewDNSDiscovery returns a DNSDiscovery for name with every default.
func NewDNSDiscovery(name string) *DNSDiscovery {
	d := discovery.DefaultConfig(name)
	return &DNSDiscovery{
		Name:       name,
		Type:       d.Type,
		MinTTL:     d.MinTTL,
		MaxTTL:     d.MaxTTL,
		Timeout:    d.Timeout,
		EmptyGrace: d.EmptyGrace,
		MaxMembers: d.MaxMembers,
	}
}

// WatcherConfig returns d as discovery.New takes it.
func (d *DNSDiscovery) WatcherConfig() discovery.Config {
	return discovery.Config{
		Name:       d.Name,
		Type:       d.Type,
		Port:       d.Port,
		Resolver:   d.Resolver,
		MinTTL:     d.MinTTL,
		MaxTTL:     d.MaxTTL,
		Timeout:    d.Timeout,
		EmptyGrace: d.EmptyGrace,
		MaxMembers: d.MaxMembers,
	}
}

// Route is one entry of Config.Routes: what a request must look like
// (Match) and what ConnX does with it. Exactly one action is set: Pool,
// Redirect or Respond. The modifiers (StripPrefix, AddPrefix, HostRewrite,
// the header lists and Timeouts) apply to pool routes; a redirect route
// may also set response headers, and any route may have a RateLimit.
type Route struct {
	// Name is optional: 1 to 64 letters, digits, "-" or "_", unique among
	// the routes; it names the route in metrics, logs and the admin API.
	Name string `yaml:"name"`
	// Match is what the request must look like; its zero value matches
	// every request.
	Match RouteMatch `yaml:"match"`
	// Pool is the action "proxy to this pool": the name of an entry of
	// Config.Pools, or [DefaultPoolName] for the top-level backends.
	// "" when the route has another action.
	Pool string `yaml:"pool"`
	// Redirect is the action "answer with a redirect"; nil otherwise.
	Redirect *Redirect `yaml:"redirect"`
	// Respond is the action "answer with this response"; nil otherwise.
	Respond *Respond `yaml:"respond"`
	// StripPrefix removes this leading part of the path, whole segments,
	// before the request goes to the backend: "/v1" turns "/v1/users"
	// into "/users" and "/v1" into "/". A trailing "/" changes nothing.
	// It must be a leading part of Match.PathPrefix or Match.Path, so
	// that it is always there. "" (the default) strips nothing.
	StripPrefix string `yaml:"stripPrefix"`
	// AddPrefix is put in front of the path (after StripPrefix): "/api"
	// turns "/users" into "/api/users". A trailing "/" changes nothing.
	// "" (the default) adds nothing.
	AddPrefix string `yaml:"addPrefix"`
	// HostRewrite, when not "", is the Host field sent to the backend,
	// "host" or "host:port", whatever server.preserveHost says.
	HostRewrite string `yaml:"hostRewrite"`
	// SetRequestHeaders are request fields to send to the backend, in
	// order; each replaces every field of its name the client sent.
	SetRequestHeaders []Header `yaml:"setRequestHeaders"`
	// RemoveRequestHeaders are the names of request fields not sent to
	// the backend.
	RemoveRequestHeaders []string `yaml:"removeRequestHeaders"`
	// SetResponseHeaders are response fields to send to the client, in
	// order; each replaces every field of its name the backend sent.
	SetResponseHeaders []Header `yaml:"setResponseHeaders"`
	// RemoveResponseHeaders are the names of response fields not sent to
	// the client.
	RemoveResponseHeaders []string `yaml:"removeResponseHeaders"`
	// Timeouts are the route's deadlines, used instead of the top-level
	// ones once the route is chosen. Parse fills every key the file does
	// not give from the top-level timeouts, and [Config.Validate] fills
	// every zero field the same way, so a route built in code may leave
	// Timeouts zero. ClientHeader, ClientIdle and UpstreamIdle cannot be
	// set per route (the route is not known yet, or the connection is
	// not the route's): they are always the top-level values.
	Timeouts Timeouts `yaml:"timeouts"`
	// RateLimit is the route's own limit, checked in addition to the
	// top-level one; nil (the default) means none. In YAML it starts
	// from the top-level rateLimit with enabled true, and each key given
	// overrides that key; an unset burst with a requestsPerSec given is
	// twice the rate. In code, start from a copy of Config.RateLimit.
	RateLimit *RateLimit `yaml:"rateLimit"`
	// Allow and Deny are the route's access lists, CIDRs or single
	// addresses, with the rules of server.allow and server.deny and
	// checked in addition to them once the route is chosen: a request
	// must pass both. Empty by default.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// AccessPolicy returns the allow/deny policy of the route's allow and
// deny lists (validated).
func (r *Route) AccessPolicy() acl.Policy {
	return acl.NewPolicy(prefixes(r.Allow), prefixes(r.Deny))
}

// RouteMatch is what a request must look like to take a route; each
// field that is set is one more condition. docs/routing.md gives the
// rules; [route.Compile] checks them.
type RouteMatch struct {
	// Host is an exact host ("api.example.com") or a one-label wildcard
	// ("*.example.com"); "" means any host.
	Host string `yaml:"host"`
	// Path is an exact, normalised path; "" means none. Path and
	// PathPrefix are exclusive.
	Path string `yaml:"path"`
	// PathPrefix matches a normalised path and everything below it,
	// whole segments at a time; "" means none.
	PathPrefix string `yaml:"pathPrefix"`
	// Methods lists the accepted methods, case-sensitive; empty means any.
	Methods []string `yaml:"methods"`
	// Headers are conditions on request header fields, in file order. In
	// YAML they are a mapping from a field name to the exact value, or to
	// true (or nothing) for "present with any value".
	Headers []route.HeaderMatch `yaml:"headers"`
}

// Redirect is a route action: answer with a redirect and send nothing
// to a backend.
type Redirect struct {
	// Location is the Location field: an http:// or https:// URL, or a
	// path starting with "/". The placeholders {host} (the request's
	// host, as received), {path} (the normalised path) and {query} (the
	// query without its "?"; a "?" right before an empty {query} is
	// dropped) are replaced; no other "{" or "}" is allowed. Required.
	Location string `yaml:"location"`
	// Code is the status: 301, 302, 307 or 308. Default 302 when read
	// from YAML; a Redirect built in code must set it.
	Code int `yaml:"code"`
}

// Respond is a route action: answer with a fixed response and send
// nothing to a backend.
type Respond struct {
	// Status is the response status, 200-599. Default 200 when read from
	// YAML; a Respond built in code must set it.
	Status int `yaml:"status"`
	// Body is sent as is, at most 1MiB; "" sends an empty body. 204 and
	// 304 responses take none.
	Body string `yaml:"body"`
	// Headers are sent in order; a name may repeat. ConnX sets
	// Content-Length (and the connection fields) itself, and
	// Content-Type "text/plain; charset=utf-8" unless Headers has one.
	Headers []Header `yaml:"headers"`
}

// Header is one header field to set. In YAML a list of them is written
// as a mapping from name to value, in order, or as a list of
// {name, value} mappings (where a name may repeat).
type Header struct {
	// Name is a field name (a token, compared case-insensitively).
	Name string `yaml:"name"`
	// Value is the field value: no control characters other than HTAB.
	Value string `yaml:"value"`
}

// RouteTable returns the matches of c.Routes as route.Compile takes
// them: element i is c.Routes[i], with its name. It is what Validate
// compiles, so compiling it again for a valid c cannot fail. The result
// shares nothing with c.
func (c *Config) RouteTable() []route.Route {
	rs := make([]route.Route, len(c.Routes))
	for i := range c.Routes {
		r := &c.Routes[i]
		rs[i] = route.Route{Name: r.Name, Match: route.Match{
			Host:       r.Match.Host,
			Path:       r.Match.Path,
			PathPrefix: r.Match.PathPrefix,
			Methods:    slices.Clone(r.Match.Methods),
			Headers:    slices.Clone(r.Match.Headers),
		}}
	}
	return rs
}
