package balancer

import "sync/atomic"

var _ Policy = (*RoundRobin)(nil)

// RoundRobin ("round-robin") gives eligible members equal turns, whatever
// their weights (weight 0 still means never). One atomic counter shared by
// all goroutines hands out the turns, so turns are exact across event
// loops: over any n consecutive picks with all n members eligible, each
// member is picked once.
//
// A member that is not eligible when its turn comes gives up the turn and
// the pick takes the next one, so the remaining members still share
// exactly. After maxTries given-up turns in one pick (most members
// unavailable) the pick scans forward from there instead.
//
// Slow start: a ramping member takes its turn with probability equal to
// its ramp factor and otherwise gives it up, so its share grows from
// 10 % of an equal share to a full one.
//
// The zero value has no members. A RoundRobin is safe for concurrent use.
type RoundRobin struct {
	set
	live []int32 // members with weight > 0, in order

	_    [64]byte // keep the counter off the read-only fields' cache line
	next atomic.Uint64
	_    [56]byte
}

func newRoundRobin(s set, _ Options) Policy {
	p := &RoundRobin{set: s}
	for i, w := range s.w {
		if w > 0 {
			p.live = append(p.live, int32(i))
		}
	}
	return p
}

// Name returns "round-robin".
func (p *RoundRobin) Name() string { return NameRoundRobin }

// Pick returns the member whose turn it is; see [Policy.Pick].
func (p *RoundRobin) Pick(_ uint64, ok func(int) bool) int {
	n := uint64(len(p.live))
	if n == 0 {
		return -1
	}
	c := sel{s: &p.set, ok: ok}
	var turn uint64
	for range min(n, maxTries) {
		turn = p.next.Add(1) - 1
		i := int(p.live[turn%n])
		if (ok == nil || ok(i)) && c.admit(i) {
			return i
		}
	}
	return p.scan(&c, turn+1)
}

// scan returns the first eligible member from turn on that slow start
// admits, or failing that the first eligible one.
func (p *RoundRobin) scan(c *sel, turn uint64) int {
	n := uint64(len(p.live))
	first := -1
	for k := range n {
		i := int(p.live[(turn+k)%n])
		if c.ok != nil && !c.ok(i) {
			continue
		}
		if c.admit(i) {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return first
}
