package proxy

import (
	"log/slog"
	"sync/atomic"

	"github.com/connx/connx/internal/breaker"
)

// Panic mode (loadBalancing.panicThreshold), as Envoy's
// healthy_panic_threshold: circuit breakers and outlier ejection act on
// one backend at a time, and a fault that is not the backends' (an
// application bug that one client keeps hitting, a dependency they all
// share) can trip them on every backend at once and turn into a site-wide
// 503. When they leave fewer than panicThreshold percent of the backends
// that may take traffic otherwise (weight above 0, not failing active
// health checks, not just refused a connection) available, the pool is in
// panic: the balancer ignores breakers and ejection and spreads requests
// over all of those backends. Both run on as usual meanwhile (an open
// breaker still turns half-open after its timeout and takes probes), and
// the pool leaves panic once enough backends have recovered (see
// poolCounts for what counts).
//
// The state is one atomic flag, read once per pick. It is set by the
// server's tick every 100 ms and also, so that the first requests after
// the last breaker opens do not get 503, by a pick that finds no backend.

// panicState is the pool's panic mode. One is shared by every snapshot of
// a Server, so the state and its count survive reloads.
type panicState struct {
	on      atomic.Bool
	entered atomic.Uint64 // times the pool entered panic mode
	log     *slog.Logger  // nil: discard
}

// panicking reports whether the pool is in panic mode. It is false for a
// snapshot built without a panicState.
func (pl *pool) panicking() bool { return pl.pn != nil && pl.pn.on.Load() }

// usable reports whether the backend may be picked at time now: available
// or, in panic mode, healthy by active checks and not just refused a
// connection (breaker and ejection ignored).
func (b *backend) usable(now int64, panicking bool) bool {
	if panicking {
		return b.downUntil.Load() <= now && b.hb.Healthy()
	}
	return b.available(now)
}

// usable reports whether m may be picked now, as the balancer sees it
// (weight above 0, and see backend.usable), without regard to its
// maxConnections cap. It is what "up" means in metrics and the admin API.
func (pl *pool) usable(m *member, now int64) bool {
	return m.weight > 0 && m.usable(now, pl.panicking())
}

// admit asks be's health record to admit one request at time now; p is
// non-zero for a half-open breaker's probe. In panic mode a backend that
// its breaker or ejection refuses is admitted anyway, without a probe.
func (pl *pool) admit(be *backend, now int64) (ok bool, p breaker.Probe) {
	if ok, p := be.hb.Allow(now); ok {
		return true, p
	}
	return pl.panicking() && be.usable(now, true), 0
}

// poolCounts counts the backends with weight above 0 that pass active
// checks and did not just refuse a connection (candidates); those of them
// that breakers and ejection leave available to a request now
// (available: a half-open breaker whose probe slots are taken is not);
// and those that have recovered (available and not half-open: a closed
// breaker, or an open one whose open time is over — it stays "open" until
// a request asks it, which under consistent-hash may be never).
// The pool enters panic on available and leaves it on recovered, so that
// half-open breakers can neither hold every request out (their probes
// may be slow, or an attacker's) nor make the state flap.
func (pl *pool) poolCounts(now int64) (candidates, available, recovered int) {
	for i := range pl.members {
		m := &pl.members[i]
		if m.weight == 0 || !m.usable(now, true) {
			continue
		}
		candidates++
		if m.hb.Available(now) {
			available++
			if m.hb.Breaker().State() != breaker.HalfOpen {
				recovered++
			}
		}
	}
	return candidates, available, recovered
}

// updatePanic sets the panic flag from the pool's state at time now and
// logs a change; it returns the new state. enterOnly leaves a pool in
// panic mode alone (the pick path, which has just found nothing to pick,
// only enters). It allocates only when it logs.
func (pl *pool) updatePanic(now int64, enterOnly bool) bool {
	pn := pl.pn
	if pn == nil {
		return false
	}
	on := pn.on.Load()
	if on && enterOnly {
		return true
	}
	cand, avail := 0, 0
	want := false
	if pl.panicPct > 0 {
		var recovered int
		cand, avail, recovered = pl.poolCounts(now)
		if on {
			avail = recovered // leave only once enough have recovered
		}
		want = cand > 0 && avail*100 < pl.panicPct*cand
	}
	if want == on || !pn.on.CompareAndSwap(on, want) {
		return pn.on.Load()
	}
	log := pn.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if want {
		pn.entered.Add(1)
		log.Warn("panic mode on: circuit breakers and outlier ejection are ignored, every healthy backend takes traffic",
			"available", avail, "healthy", cand, "panicThreshold", pl.panicPct)
	} else {
		log.Info("panic mode off",
			"available", avail, "healthy", cand, "panicThreshold", pl.panicPct)
	}
	return want
}
