package balancer

var _ Policy = (*LeastConnections)(nil)

// LeastConnections ("least-connections") picks the eligible member with
// the fewest in-flight requests relative to its effective weight
// (in-flight/weight, compared by cross-multiplication). Ties are broken at
// random in proportion to effective weight (weighted reservoir sampling),
// so idle members share traffic by weight rather than the first one taking
// it all.
//
// A pick reads every member's in-flight count: O(n), no writes.
//
// The zero value has no members. A LeastConnections is safe for concurrent
// use.
type LeastConnections struct {
	set
}

func newLeastConnections(s set, _ Options) Policy { return &LeastConnections{set: s} }

// Name returns "least-connections".
func (p *LeastConnections) Name() string { return NameLeastConnections }

// Pick returns the least loaded eligible member; see [Policy.Pick].
func (p *LeastConnections) Pick(_ uint64, ok func(int) bool) int {
	c := sel{s: &p.set, ok: ok}
	best := -1
	var bestIn, bestW, ties int64
	for i, n := range p.nodes {
		if !c.eligible(i) {
			continue
		}
		in, w := n.load(), c.effective(i)
		if best >= 0 {
			a, b := in*bestW, bestIn*w
			if a > b {
				continue
			}
			if a == b {
				ties += w
				if int64(c.below(uint64(ties))) >= w {
					continue
				}
				best, bestIn, bestW = i, in, w
				continue
			}
		}
		best, bestIn, bestW, ties = i, in, w, w
	}
	return best
}
