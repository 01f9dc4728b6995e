package stats

// PoolOf is the pool a backend, a request count or a histogram belongs
// to, given its Pool and Backend fields: pool itself when set, else
// DefaultPool for a real backend and "" for NoBackend.
//
// Backend.Pool is never "" and a request sent to a backend was sent to a
// pool, so a "" there can only come from a data plane that predates pools
// (and has only the default pool); renderers call PoolOf so that such a
// snapshot shows what a current one would.
func PoolOf(pool, backend string) string {
	if pool == "" && backend != NoBackend {
		return DefaultPool
	}
	return pool
}

// PoolList returns s.Pools or, when it is empty (a data plane that
// predates pools, or a configuration without backends), the one default
// pool: s.Pool named DefaultPool, with Backends and Up counted from
// s.Backends. The result is never empty and may alias s.Pools.
func (s *Snapshot) PoolList() []Pool {
	if len(s.Pools) > 0 {
		return s.Pools
	}
	p := s.Pool
	if p.Name == "" {
		p.Name = DefaultPool
	}
	if p.Backends == 0 {
		for i := range s.Backends {
			if PoolOf(s.Backends[i].Pool, s.Backends[i].Name) == p.Name {
				p.Backends++
				if s.Backends[i].Up {
					p.Up++
				}
			}
		}
	}
	return []Pool{p}
}
