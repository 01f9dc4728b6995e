package proxy

import (
	"crypto/tls"
	"fmt"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/acl"
	"github.com/connx/connx/internal/balancer"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/health"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/http2"
	"github.com/connx/connx/internal/ratelimit"
	"github.com/connx/connx/internal/redisync"
	"github.com/connx/connx/internal/route"
)

// backend is the long-lived runtime state of one backend. Its identity is
// its URL: a reload that keeps the URL keeps the object, so counters survive.
// Fields set at creation are read-only; the atomics may be touched from any
// event loop.
type backend struct {
	id   int    // dense index into each loop's pool table; never reused
	url  string // as written in the config; the name shown to operators
	addr string // host:port to dial
	pool string // the name of its pool

	// node carries what the balancer needs across reloads: requests in
	// flight, the latency estimate, the slow-start ramp.
	node *balancer.Node
	// hb is the backend's health: active checks, outlier ejection and the
	// circuit breaker.
	hb *health.Backend
	// downUntil is a unix-nano time before which the backend is skipped after
	// a connect failure. It is the minimal passive check of the data plane;
	// active health checking replaces it.
	downUntil atomic.Int64

	retired   atomic.Bool  // removed by a reload: pool nothing more
	idleConns atomic.Int64 // pooled idle upstream connections, all loops
	openConns atomic.Int64 // open upstream connections, all loops

	// tlsConf is the TLS configuration of an https:// backend
	// (upstream_tls.go), replaced by reloads; nil for http://.
	tlsConf atomic.Pointer[tls.Config]
	// sessions caches the TLS sessions of an https:// backend with tls
	// settings of its own (other backends use their pool's cache); made
	// by the first snapshot that needs it, kept across reloads.
	sessions tls.ClientSessionCache
}

// available reports whether the backend may be picked at time now (unix
// ns): healthy, not ejected, breaker not open, and not just refused a
// connection.
func (b *backend) available(now int64) bool {
	return b.downUntil.Load() <= now && b.hb.Available(now)
}

// member is a backend as one snapshot sees it.
type member struct {
	*backend
	weight   int
	maxConns int64 // 0: no cap on requests in flight
}

// snapshot is an immutable view of the configuration that the event loops
// read. A reload builds a new snapshot and swaps the pointer; requests that
// started under the old one finish with it.
type snapshot struct {
	cfg     *config.Config
	def     *pool              // the default pool (top-level backends); never nil, may have no members
	pools   []*pool            // every pool, def first
	routes  *route.Table       // nil without routes
	acts    []routeAct         // by route index
	limiter *ratelimit.Limiter // nil when rate limiting is off
	lim     http1.Limits
	to      timeouts // the top-level timeouts that a route may override

	highWater int // per-connection buffered-bytes bound (backpressure)
	lowWater  int // resume below this

	clientHeader int64 // timeouts, in nanoseconds
	clientIdle   int64
	upstreamIdle int64
	shutdown     time.Duration

	maxConns    int64
	maxBody     int64
	preserve    bool
	underscores bool // forward header fields with "_" in their names
	metricsPath string
	metricsFrom []netip.Prefix // clients answered at metricsPath (metrics.allow)
	access      acl.Policy     // server.allow / server.deny
	pp          *ppListener    // server.proxyProtocol; nil when off
	ppOut       bool           // some pool sends the PROXY header (upstream.proxyProtocol)
	upgrades    []string       // protocols clients may upgrade to
	ridHeader   string         // the request-ID field, "" when off
	subjHeader  string         // server.tls.clientAuth.subjectHeader, "" without clientAuth
	maxFraming  int64          // chunked framing bytes allowed per body (see framingFactor)
	h2c         bool           // server.h2c
	h2lim       *http2.Limits  // server.http2, for new HTTP/2 connections

	redirectHTTP   bool     // server.redirectHTTP
	redirectExempt []string // server.redirectHTTPExempt
}

// timeouts are the deadlines of a request once its route is known: the
// top-level ones, or a route's (routes[].timeouts).
type timeouts struct {
	clientBody     int64 // nanoseconds
	upstreamHeader int64
	upstreamRead   int64
	tunnelIdle     time.Duration
	connect        time.Duration
}

func timeoutsOf(t *config.Timeouts) timeouts {
	return timeouts{
		clientBody:     int64(t.ClientBody),
		upstreamHeader: int64(t.UpstreamResponseHeader),
		upstreamRead:   int64(t.UpstreamRead),
		tunnelIdle:     t.TunnelIdle,
		connect:        t.UpstreamConnect,
	}
}

// newSnapshot builds the snapshot for cfg over pools (the default pool
// first, then cfg.Pools in order); prev, the snapshot it replaces or nil,
// lends its rate-limit buckets, and ids gives each route its statistics
// slot.
func newSnapshot(cfg *config.Config, pools []*pool, prev *snapshot, ids routeIDs) (*snapshot, error) {
	sn := &snapshot{
		cfg:   cfg,
		def:   pools[0],
		pools: pools,
		lim: http1.Limits{
			MaxRequestLine: int(cfg.Limits.MaxRequestLine),
			MaxHeaderBytes: int(cfg.Limits.MaxHeaderBytes),
			MaxHeaders:     cfg.Limits.MaxHeaders,
		},
		to:           timeoutsOf(&cfg.Timeouts),
		highWater:    int(cfg.Limits.ConnectionBuffer),
		clientHeader: int64(cfg.Timeouts.ClientHeader),
		clientIdle:   int64(cfg.Timeouts.ClientIdle),
		upstreamIdle: int64(cfg.Timeouts.UpstreamIdle),
		shutdown:     cfg.Server.ShutdownTimeout,
		maxConns:     int64(cfg.Limits.MaxConnections),
		maxBody:      cfg.Limits.MaxRequestBody,
		preserve:     cfg.Server.PreserveHost,
		underscores:  cfg.Server.UnderscoresInHeaders,
		metricsPath:  cfg.Metrics.Path,
		metricsFrom:  cfg.Metrics.AllowPrefixes(),
		access:       cfg.Server.AccessPolicy(),
		pp:           newPPListener(cfg),
		upgrades:     cfg.Server.Upgrades,
	}
	sn.h2c, sn.h2lim = cfg.Server.H2C, h2Limits(&cfg.Server.HTTP2)
	if cfg.RequestID.Enabled {
		sn.ridHeader = cfg.RequestID.Header
	}
	if t := cfg.Server.TLS; t != nil && t.ClientAuth != nil {
		sn.subjHeader = t.ClientAuth.SubjectHeader
	}
	sn.redirectHTTP = cfg.Server.RedirectHTTP && cfg.Server.TLS != nil
	sn.redirectExempt = cfg.Server.RedirectHTTPExempt
	sn.maxFraming = math.MaxInt64 // no body limit, no framing limit
	if mb := sn.maxBody; mb > 0 && mb < (math.MaxInt64-framingSlack)/framingFactor {
		sn.maxFraming = framingFactor*mb + framingSlack
	}
	sn.lowWater = sn.highWater / 4
	for _, pl := range pools {
		sn.ppOut = sn.ppOut || pl.ppVersion != 0
	}
	if rl := &cfg.RateLimit; rl.Enabled {
		var prevLim *ratelimit.Limiter
		if prev != nil {
			prevLim = prev.limiter // keeps every client's bucket
		}
		lim, err := newLimiter(rl, prevLim, "")
		if err != nil {
			return nil, fmt.Errorf("rateLimit: %w", err)
		}
		sn.limiter = lim
	}
	if err := sn.buildRoutes(prev, ids); err != nil {
		return nil, err
	}
	return sn, nil
}

// limiterClock is the rate limiters' clock, time.Now when nil. Tests set
// it before starting a proxy (and reset it once the proxy is stopped) to
// decide every request at a time they choose.
var limiterClock func() time.Time

// newLimiter builds the limiter for rl; prev, when not nil, lends its
// buckets. key tells limiters that share rateLimit.redis apart ("" for
// the top-level one, the route's label for a route's).
func newLimiter(rl *config.RateLimit, prev *ratelimit.Limiter, key string) (*ratelimit.Limiter, error) {
	return ratelimit.New(ratelimit.Config{
		Enabled:        true,
		RequestsPerSec: rl.RequestsPerSec,
		Burst:          rl.Burst,
		PerClient:      rl.PerIP,
		Key:            rl.Key,
		TrustedProxies: rl.TrustedPrefixes(),
		IPv6Prefix:     rl.IPv6Prefix,
		MaxClients:     rl.MaxClients,
		IdleTTL:        rl.IdleTTL,
		Exempt:         rl.Exempt,
		Store:          redisync.For(redisync.Options(rl.Redis)), // nil without rateLimit.redis.address
		StoreKey:       key,
	}, prev, limiterClock)
}

// poolNamed returns the snapshot's pool called name, or nil.
func (sn *snapshot) poolNamed(name string) *pool {
	for _, pl := range sn.pools {
		if pl.name == name {
			return pl
		}
	}
	return nil
}

// pick asks the pool's policy for a backend that is available (or, in panic
// mode, healthy: see panic.go), not full and not skip; key is the
// request's hash for consistent-hash. It returns nil when none qualifies.
// It runs on lp's goroutine and allocates nothing: the predicate is the
// loop's eligible method value, and the panic flag is one atomic load.
// When nothing qualifies outside panic mode, it checks at once whether
// the pool should be in panic (the tick would see it only within 100 ms).
func (pl *pool) pick(lp *loop, skip *backend, key uint64) *backend {
	lp.pickPool, lp.pickSkip, lp.pickPanic = pl, skip, pl.panicking()
	i := pl.policy.Pick(key, lp.eligible)
	if i < 0 && !lp.pickPanic && pl.panicPct > 0 && pl.updatePanic(lp.now, true) {
		lp.pickPanic = true
		i = pl.policy.Pick(key, lp.eligible)
	}
	lp.pickPool, lp.pickSkip = nil, nil
	if i < 0 {
		return nil
	}
	return pl.members[i].backend
}

// eligibleMember is the balancer's predicate for member i of the pool
// being picked from on this loop.
func (lp *loop) eligibleMember(i int) bool {
	m := &lp.pickPool.members[i]
	return m.backend != lp.pickSkip && m.usable(lp.now, lp.pickPanic) &&
		(m.maxConns == 0 || m.node.InFlight() < m.maxConns)
}

// metricsFor reports whether a request for metricsPath from client ip is
// answered with metrics (metrics.allow) rather than proxied.
func (sn *snapshot) metricsFor(ip netip.Addr) bool {
	for _, p := range sn.metricsFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// anyAvailable reports whether some backend of the pool could take a
// request now.
func (pl *pool) anyAvailable(now int64) bool {
	for i := range pl.members {
		if pl.usable(&pl.members[i], now) {
			return true
		}
	}
	return false
}
