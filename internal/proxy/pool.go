package proxy

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/connx/connx/internal/balancer"
	"github.com/connx/connx/internal/breaker"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/health"
	"github.com/panjf2000/gnet/v2"
)

// A pool is a set of backends with its own balancing, health checks,
// breakers, outlier detection and upstream settings: the default pool
// (the top-level backends) and each entry of the config's pools. A
// backend belongs to one pool: the same address in two pools is two
// backends, each with its own health, breaker, counters and idle
// connections (docs/routing.md).

// poolState is the long-lived state of one pool, kept across reloads by
// the pool's name: its backends (by address), the outlier group, the
// health checker and the panic state. A reload that removes the pool
// retires its backends and stops its checker.
type poolState struct {
	name     string
	noneID   int                 // statistics slot of the pool's requests that no backend took
	backends map[string]*backend // by address (host:port); guarded by Server.mu
	outliers *health.Pool        // outlier ejection across the pool's backends
	checker  *health.Checker     // active health checks, off the event loops
	pn       panicState          // loadBalancing.panicThreshold's panic mode

	// sessions are the TLS sessions with its https:// backends
	// (upstream_tls.go), kept across reloads.
	sessions tls.ClientSessionCache
}

// pool is a pool as one snapshot sees it.
type pool struct {
	name     string
	st       *poolState
	members  []member
	policy   balancer.Policy
	hashKey  hashKey
	hashed   bool        // the policy uses a per-request hash (consistent-hash)
	pn       *panicState // never nil
	panicPct int         // loadBalancing.panicThreshold; 0: panic mode off
	retries  int
	retryPct int
	maxIdle  int
	check    health.CheckConfig
	// ppVersion is upstream.proxyProtocol: 0 (none), 1 or 2.
	ppVersion uint8
	// h2: the backends speak HTTP/2 (upstream.protocol h2c, or h2 over
	// TLS; h2up.go).
	h2 bool
	// What buildPool prepared and commit puts in place once the whole
	// snapshot is built, so that a reload that fails changes nothing:
	// the pool's state st is made by this build when newState is set...
	newState bool
	// ...fresh are the backends this build made, by address; the others
	// are kept from the running pool and get breaker settings cb...
	fresh map[string]*backend
	cb    breaker.Config
	// ...the outlier group gets outCfg and the members' outlier states...
	outCfg   health.OutlierConfig
	outliers []*health.Outlier
	// ...and tlsConfs are the members' TLS configurations (nil for
	// http://), for their connections and their checks.
	tlsConfs []*tls.Config
}

// buildPool makes the snapshot's view of pool p, reusing the runtime state
// of the pool and of the backends that keep their address. It changes no
// running state: the pool's new backends and settings wait for commit.
// (It takes statistics ids from s.nextID, which buildWith gives back on
// failure, and may make an empty TLS session cache that no running
// connection uses yet: upstreamTLS.) s.mu is held.
func (s *Server) buildPool(cfg *config.Config, p *config.Pool) (*pool, error) {
	st := s.pools[p.Name]
	newState := st == nil
	if newState {
		st = &poolState{
			name:     p.Name,
			noneID:   s.nextID,
			backends: make(map[string]*backend),
			outliers: health.NewPool(outlierConfig(&p.Outlier), s.log.With("pool", p.Name)),
		}
		s.nextID++
		st.pn.log = s.log.With("pool", p.Name)
	}
	key := "backends"
	if p.Name != config.DefaultPoolName {
		key = "pools." + p.Name + ".backends"
	}
	cb := breakerConfig(&p.CircuitBreaker)
	pl := &pool{
		name:     p.Name,
		st:       st,
		pn:       &st.pn,
		panicPct: p.LoadBalancing.PanicThreshold,
		hashKey:  parseHashKey(p.LoadBalancing.HashKey),
		retries:  p.Upstream.Retries,
		retryPct: p.LoadBalancing.RetryBudget,
		maxIdle:  p.Upstream.MaxIdlePerBackend,
		check:    checkConfig(&p.HealthCheck),
	}
	pl.ppVersion = ppVersionOf(p.Upstream.ProxyProtocol)
	pl.h2 = p.Upstream.HTTP2()
	pl.check.GRPC = p.HealthCheck.Kind == config.HealthCheckGRPC || p.HealthCheck.Kind == config.HealthCheckAuto && pl.h2
	pl.check.ProxyProtocol = int(pl.ppVersion) // checks send a LOCAL header
	outliers := make([]*health.Outlier, len(p.Backends))
	ms := make([]balancer.Member, len(p.Backends))
	fresh := map[string]*backend{}
	for i, b := range p.Backends {
		be, ok := st.backends[b.Addr]
		if !ok {
			hb, err := health.NewBackend(b.URL, st.outliers, cb, s.log)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
			}
			// The node is named by address, as the backend is identified:
			// a respelled URL keeps its consistent-hash keys.
			be = &backend{id: s.nextID, url: b.URL, addr: b.Addr, pool: p.Name, node: balancer.NewNode(b.Addr), hb: hb}
			s.nextID++
			if s.snap.Load() != nil {
				// Added by a reload: ramp up over loadBalancing.slowStart.
				be.node.SetDown()
				be.node.SetUp(s.clock.Load())
			}
			fresh[b.Addr] = be
		}
		pl.members = append(pl.members, member{backend: be, weight: b.Weight, maxConns: int64(b.MaxConnections)})
		ms[i] = balancer.Member{Node: be.node, Weight: b.Weight}
		outliers[i] = be.hb.Outlier()
	}
	lb := &p.LoadBalancing
	policy, err := balancer.New(lb.Algorithm, ms, balancer.Options{
		HashLoadFactor: lb.HashLoadFactor,
		SlowStart:      lb.SlowStart,
		EWMADecay:      lb.EWMADecay,
		MaxPenalty:     cfg.Timeouts.UpstreamResponseHeader,
		Now:            s.clock.Load,
	})
	if err != nil {
		if p.Name == config.DefaultPoolName {
			return nil, fmt.Errorf("loadBalancing: %w", err)
		}
		return nil, fmt.Errorf("pools.%s.loadBalancing: %w", p.Name, err)
	}
	pl.policy = policy
	pl.hashed = policy.Name() == balancer.NameConsistentHash
	base, confs, err := upstreamTLS(p, st, pl.members)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tlsKey(p), err)
	}
	pl.check.TLS = base // health checks of https:// backends
	pl.newState, pl.fresh, pl.cb = newState, fresh, cb
	pl.outCfg, pl.outliers, pl.tlsConfs = outlierConfig(&p.Outlier), outliers, confs
	return pl, nil
}

// commit puts in place what buildPool prepared for pl: the pool's state
// (when new) and its new backends join the server's, the backends kept
// get the breaker settings, the outlier group its settings and members,
// and every member its TLS configuration, for its connections and its
// checks. It runs once the whole snapshot is built; s.mu is held.
func (s *Server) commit(pl *pool) {
	st := pl.st
	if pl.newState {
		s.pools[pl.name] = st
	}
	for addr, be := range pl.fresh {
		st.backends[addr] = be
	}
	for i, m := range pl.members {
		if pl.fresh[m.addr] != m.backend {
			m.hb.Breaker().Configure(pl.cb)
		}
		m.tlsConf.Store(pl.tlsConfs[i])
		m.hb.SetTLS(pl.tlsConfs[i]) // also for checks: the backend's own settings
	}
	st.outliers.Configure(pl.outCfg)
	st.outliers.SetMembers(pl.outliers)
}

// healthBackends lists the pool's backends for its health checker.
func (pl *pool) healthBackends() []*health.Backend {
	hbs := make([]*health.Backend, len(pl.members))
	for i, m := range pl.members {
		hbs[i] = m.hb
	}
	return hbs
}

// apply makes the server's pools match sn, which has just been swapped
// in: each pool's health checker gets its settings and backends (a new
// pool's checker is made, and started once Serve has started); backends sn no longer has are retired, and so are the
// backends of pools it no longer has, whose checkers stop. A retired
// backend gets no new requests (no snapshot lists it), its requests in
// flight finish, and every loop closes its idle pooled connections.
func (s *Server) apply(sn *snapshot) {
	keep := make(map[*backend]bool, sn.backendCount())
	for _, pl := range sn.pools {
		for _, m := range pl.members {
			keep[m.backend] = true
		}
	}
	s.mu.Lock()
	ctx := s.checkCtx
	var gone []*backend
	var stop []*health.Checker
	for name, st := range s.pools {
		for addr, be := range st.backends {
			if !keep[be] {
				be.retired.Store(true)
				delete(st.backends, addr)
				gone = append(gone, be)
			}
		}
		if sn.poolNamed(name) == nil {
			delete(s.pools, name)
			if st.checker != nil {
				stop = append(stop, st.checker)
			}
		}
	}
	for _, pl := range sn.pools {
		st := pl.st
		if st.checker == nil {
			st.checker = health.NewChecker(pl.check, pl.healthBackends(), s.log.With("pool", pl.name), nil)
			if ctx != nil {
				st.checker.Start(ctx)
			}
		} else {
			st.checker.Update(pl.check, pl.healthBackends())
		}
	}
	loops := s.loops
	s.mu.Unlock()
	for _, c := range stop {
		go c.Stop() // it waits for the checks in flight
	}
	if len(gone) == 0 {
		return
	}
	for _, lp := range loops {
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			for _, be := range gone {
				lp.dropPool(be)
			}
			return nil
		}))
	}
}

// tickPools tells each pool's balancer about availability changes, so a
// backend that comes back ramps up over loadBalancing.slowStart, and
// enters or leaves panic mode.
func (sn *snapshot) tickPools(now int64) {
	for _, pl := range sn.pools {
		for _, m := range pl.members {
			if m.available(now) {
				m.node.SetUp(now)
			} else {
				m.node.SetDown()
			}
		}
		pl.updatePanic(now, false)
	}
}

// backendCount is the number of backends of every pool.
func (sn *snapshot) backendCount() int {
	n := 0
	for _, pl := range sn.pools {
		n += len(pl.members)
	}
	return n
}
