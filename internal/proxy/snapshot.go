package proxy

import (
	"fmt"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/balancer"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/health"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/ratelimit"
	"github.com/connx/connx/internal/redisync"
)

// backend is the long-lived runtime state of one backend. Its identity is
// its URL: a reload that keeps the URL keeps the object, so counters survive.
// Fields set at creation are read-only; the atomics may be touched from any
// event loop.
type backend struct {
	id   int    // dense index into each loop's pool table; never reused
	url  string // as written in the config; the name shown to operators
	addr string // host:port to dial

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
	members []member
	policy  balancer.Policy
	hashKey hashKey
	hashed  bool               // the policy uses a per-request hash (consistent-hash)
	limiter *ratelimit.Limiter // nil when rate limiting is off
	lim     http1.Limits

	highWater int // per-connection buffered-bytes bound (backpressure)
	lowWater  int // resume below this

	clientHeader   int64 // timeouts, in nanoseconds
	clientIdle     int64
	clientBody     int64
	upstreamHeader int64
	upstreamRead   int64
	upstreamIdle   int64
	tunnelIdle     time.Duration
	connectTimeout time.Duration
	shutdown       time.Duration

	maxConns    int64
	maxIdle     int
	retries     int
	retryPct    int
	maxBody     int64
	preserve    bool
	underscores bool // forward header fields with "_" in their names
	metricsPath string
	metricsFrom []netip.Prefix // clients answered at metricsPath (metrics.allow)
	upgrades    []string       // protocols clients may upgrade to
	ridHeader   string         // the request-ID field, "" when off
	maxFraming  int64          // chunked framing bytes allowed per body (see framingFactor)

	pn       *panicState // the server's panic mode (panic.go); nil: never
	panicPct int         // loadBalancing.panicThreshold; 0: panic mode off
}

// newSnapshot builds the snapshot for cfg over backends (in cfg's order);
// prev, the snapshot it replaces or nil, lends its rate-limit buckets,
// clock is the coarse clock policies read, and pn is the pool's panic
// state.
func newSnapshot(cfg *config.Config, backends []*backend, prev *snapshot, clock func() int64, pn *panicState) (*snapshot, error) {
	sn := &snapshot{
		cfg: cfg,
		lim: http1.Limits{
			MaxRequestLine: int(cfg.Limits.MaxRequestLine),
			MaxHeaderBytes: int(cfg.Limits.MaxHeaderBytes),
			MaxHeaders:     cfg.Limits.MaxHeaders,
		},
		highWater:      int(cfg.Limits.ConnectionBuffer),
		clientHeader:   int64(cfg.Timeouts.ClientHeader),
		clientIdle:     int64(cfg.Timeouts.ClientIdle),
		clientBody:     int64(cfg.Timeouts.ClientBody),
		upstreamHeader: int64(cfg.Timeouts.UpstreamResponseHeader),
		upstreamRead:   int64(cfg.Timeouts.UpstreamRead),
		upstreamIdle:   int64(cfg.Timeouts.UpstreamIdle),
		tunnelIdle:     cfg.Timeouts.TunnelIdle,
		connectTimeout: cfg.Timeouts.UpstreamConnect,
		shutdown:       cfg.Server.ShutdownTimeout,
		maxConns:       int64(cfg.Limits.MaxConnections),
		maxIdle:        cfg.Upstream.MaxIdlePerBackend,
		retries:        cfg.Upstream.Retries,
		retryPct:       cfg.LoadBalancing.RetryBudget,
		maxBody:        cfg.Limits.MaxRequestBody,
		preserve:       cfg.Server.PreserveHost,
		underscores:    cfg.Server.UnderscoresInHeaders,
		metricsPath:    cfg.Metrics.Path,
		metricsFrom:    cfg.Metrics.AllowPrefixes(),
		upgrades:       cfg.Server.Upgrades,
	}
	if cfg.RequestID.Enabled {
		sn.ridHeader = cfg.RequestID.Header
	}
	sn.maxFraming = math.MaxInt64 // no body limit, no framing limit
	if mb := sn.maxBody; mb > 0 && mb < (math.MaxInt64-framingSlack)/framingFactor {
		sn.maxFraming = framingFactor*mb + framingSlack
	}
	sn.lowWater = sn.highWater / 4
	sn.pn, sn.panicPct = pn, cfg.LoadBalancing.PanicThreshold
	sn.hashKey = parseHashKey(cfg.LoadBalancing.HashKey)
	ms := make([]balancer.Member, len(backends))
	for i, b := range backends {
		w := cfg.Backends[i].Weight
		sn.members = append(sn.members, member{backend: b, weight: w, maxConns: int64(cfg.Backends[i].MaxConnections)})
		ms[i] = balancer.Member{Node: b.node, Weight: w}
	}
	lb := &cfg.LoadBalancing
	p, err := balancer.New(lb.Algorithm, ms, balancer.Options{
		HashLoadFactor: lb.HashLoadFactor,
		SlowStart:      lb.SlowStart,
		EWMADecay:      lb.EWMADecay,
		MaxPenalty:     cfg.Timeouts.UpstreamResponseHeader,
		Now:            clock,
	})
	if err != nil {
		return nil, fmt.Errorf("loadBalancing: %w", err)
	}
	sn.policy = p
	sn.hashed = p.Name() == balancer.NameConsistentHash
	if rl := &cfg.RateLimit; rl.Enabled {
		var prevLim *ratelimit.Limiter
		if prev != nil {
			prevLim = prev.limiter // keeps every client's bucket
		}
		lim, err := ratelimit.New(ratelimit.Config{
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
		}, prevLim, nil)
		if err != nil {
			return nil, fmt.Errorf("rateLimit: %w", err)
		}
		sn.limiter = lim
	}
	return sn, nil
}

// pick asks the policy for a backend that is available (or, in panic
// mode, healthy: see panic.go), not full and not skip; key is the
// request's hash for consistent-hash. It returns nil when none qualifies.
// It runs on lp's goroutine and allocates nothing: the predicate is the
// loop's eligible method value, and the panic flag is one atomic load.
// When nothing qualifies outside panic mode, it checks at once whether
// the pool should be in panic (the tick would see it only within 100 ms).
func (sn *snapshot) pick(lp *loop, skip *backend, key uint64) *backend {
	lp.pickSnap, lp.pickSkip, lp.pickPanic = sn, skip, sn.panicking()
	i := sn.policy.Pick(key, lp.eligible)
	if i < 0 && !lp.pickPanic && sn.panicPct > 0 && sn.updatePanic(lp.now, true) {
		lp.pickPanic = true
		i = sn.policy.Pick(key, lp.eligible)
	}
	lp.pickSnap, lp.pickSkip = nil, nil
	if i < 0 {
		return nil
	}
	return sn.members[i].backend
}

// eligible is the balancer's predicate for member i of the snapshot being
// picked from on this loop.
func (lp *loop) eligibleMember(i int) bool {
	m := &lp.pickSnap.members[i]
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

// anyAvailable reports whether some backend could take a request now.
func (sn *snapshot) anyAvailable(now int64) bool {
	for i := range sn.members {
		if sn.usable(&sn.members[i], now) {
			return true
		}
	}
	return false
}
