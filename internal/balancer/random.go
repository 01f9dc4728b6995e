package balancer

var _ Policy = (*Random)(nil)

// Random ("random") picks an eligible member at random with probability
// proportional to its weight (times its slow-start factor). It shares
// nothing that is written per request, so it scales across event loops
// without contention, at the price of short-term unevenness.
//
// A pick draws from the static cumulative weights (binary search) and
// rejects ineligible or ramping draws (exact rejection sampling); after
// maxTries rejections it scans the members linearly.
//
// The zero value has no members. A Random is safe for concurrent use.
type Random struct {
	set
}

func newRandom(s set, _ Options) Policy { return &Random{set: s} }

// Name returns "random".
func (p *Random) Name() string { return NameRandom }

// Pick returns a weighted random eligible member; see [Policy.Pick].
func (p *Random) Pick(_ uint64, ok func(int) bool) int {
	c := sel{s: &p.set, ok: ok}
	i, _ := c.draw(-1)
	return i
}
