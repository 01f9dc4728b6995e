package balancer

var _ Policy = (*P2C)(nil)

// P2C ("p2c") is the power of two random choices: it draws two distinct
// eligible members at random in proportion to their effective weights and
// picks the one with fewer in-flight requests relative to its effective
// weight; on a tie, the first drawn. With nothing in flight it is
// therefore exactly weighted random; under load it steers away from busy
// members like least-connections, while reading only two nodes per pick.
//
// The zero value has no members. A P2C is safe for concurrent use.
type P2C struct {
	set
}

func newP2C(s set, _ Options) Policy { return &P2C{set: s} }

// Name returns "p2c".
func (p *P2C) Name() string { return NameP2C }

// Pick returns the less loaded of two random members; see [Policy.Pick].
func (p *P2C) Pick(_ uint64, ok func(int) bool) int {
	c := sel{s: &p.set, ok: ok}
	a, wa := c.draw(-1)
	if a < 0 {
		return -1
	}
	b, wb := c.draw(a)
	if b < 0 {
		return a
	}
	if p.nodes[b].load()*wa < p.nodes[a].load()*wb {
		return b
	}
	return a
}
