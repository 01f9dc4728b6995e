package balancer

import (
	"fmt"
	"math/bits"
)

// Effective weights are fixed point: a member's effective weight is its
// configured weight times a factor in [rampFloor, full].
const (
	full      = 1024      // factor of a member that is not ramping
	rampFloor = full / 10 // factor at the start of slow start
	// maxTries bounds the random or counter-driven attempts a policy makes
	// before it falls back to a linear scan over the members.
	maxTries = 8
)

// set is the immutable member list every policy embeds.
type set struct {
	nodes []*Node
	w     []int64 // configured weights; 0: never picked
	cum   []int64 // cum[i] = w[0] + ... + w[i]
	total int64   // cum[len-1]
	slow  int64   // slow-start window in ns; 0: off
	now   func() int64
	rand  func() uint64
}

// newSet copies members; opts must have been validated.
func newSet(members []Member, opts Options) (set, error) {
	s := set{
		nodes: make([]*Node, len(members)),
		w:     make([]int64, len(members)),
		cum:   make([]int64, len(members)),
		slow:  int64(opts.SlowStart),
		now:   opts.Now,
		rand:  opts.Rand,
	}
	seen := make(map[*Node]int, len(members))
	for i, m := range members {
		if m.Node == nil {
			return set{}, fmt.Errorf("balancer: member %d has no node", i)
		}
		if j, dup := seen[m.Node]; dup {
			return set{}, fmt.Errorf("balancer: members %d and %d share a node", j, i)
		}
		seen[m.Node] = i
		if m.Weight < 0 || m.Weight > MaxWeight {
			return set{}, fmt.Errorf("balancer: member %d: weight must be between 0 and %d, got %d", i, MaxWeight, m.Weight)
		}
		s.nodes[i] = m.Node
		s.w[i] = int64(m.Weight)
		s.total += int64(m.Weight)
		s.cum[i] = s.total
	}
	return s, nil
}

// find returns the member whose cumulative-weight interval holds x, for
// 0 <= x < s.total: the smallest i with cum[i] > x. Weight-0 members have
// empty intervals and are never found. The search is branch-free (the
// compiler emits a conditional move), as random x defeat branch
// prediction.
func (s *set) find(x int64) int {
	cum := s.cum
	base, n := 0, len(cum)
	for n > 1 {
		half := n >> 1
		if cum[base+half-1] <= x {
			base += half
		}
		n -= half
	}
	return base
}

// sel is the scratch state of one Pick: the predicate, the clock read at
// most once, and a SplitMix64 generator seeded at most once from the
// shared source. It lives on the Pick's stack.
type sel struct {
	s   *set
	ok  func(int) bool
	t   int64
	r   uint64
	tOK bool
	rOK bool
}

// eligible reports whether member i may be picked at all.
func (c *sel) eligible(i int) bool {
	return c.s.w[i] > 0 && (c.ok == nil || c.ok(i))
}

func (c *sel) now() int64 {
	if !c.tOK {
		c.t, c.tOK = c.s.now(), true
	}
	return c.t
}

func (c *sel) next() uint64 {
	if !c.rOK {
		c.seed()
	}
	c.r += golden
	return mix64(c.r)
}

func (c *sel) seed() { c.r, c.rOK = c.s.rand(), true }

// below returns a uniform value in [0, n) (Lemire's multiply-shift; the
// bias is below n/2^64).
func (c *sel) below(n uint64) uint64 {
	hi, _ := bits.Mul64(c.next(), n)
	return hi
}

// factor returns member i's slow-start factor in [rampFloor, full].
func (c *sel) factor(i int) int64 {
	if c.s.slow == 0 {
		return full
	}
	return c.ramp(i)
}

// ramp is factor with slow start on.
func (c *sel) ramp(i int) int64 {
	n := c.s.nodes[i]
	start := n.state.Load()
	if start == 0 || start == stateDown {
		return full
	}
	el := c.now() - start
	switch {
	case el >= c.s.slow:
		// The ramp is over: forget it so later picks skip the clock.
		n.state.CompareAndSwap(start, 0)
		return full
	case el <= 0:
		return rampFloor
	}
	return rampFloor + (full-rampFloor)*el/c.s.slow
}

// admit is slow start for the turn-based policies: it accepts member i
// with probability factor(i)/full.
func (c *sel) admit(i int) bool {
	f := c.factor(i)
	return f == full || int64(c.below(full)) < f
}

// effective returns member i's weight scaled by its slow-start factor.
func (c *sel) effective(i int) int64 { return c.s.w[i] * c.factor(i) }

// draw returns an eligible member other than ex (-1: none excluded) drawn
// with probability proportional to its effective weight, and that weight;
// -1 when there is none. It proposes members from the static cumulative
// weights (binary search) and accepts a proposal with probability
// factor/full if it is eligible (rejection sampling, which is exact); after
// maxTries rejections it falls back to an exact linear scan.
func (c *sel) draw(ex int) (int, int64) {
	s := c.s
	total := s.total
	var exLo, exW int64
	if ex >= 0 {
		exW = s.w[ex]
		exLo = s.cum[ex] - exW
		total -= exW
	}
	if total <= 0 {
		return -1, 0
	}
	for range maxTries {
		x := int64(c.below(uint64(total)))
		if ex >= 0 && x >= exLo {
			x += exW
		}
		i := s.find(x)
		if c.ok != nil && !c.ok(i) {
			continue
		}
		f := c.factor(i)
		if f < full && int64(c.below(full)) >= f {
			continue
		}
		return i, s.w[i] * f
	}
	return c.drawScan(ex)
}

// drawScan is draw's exact fallback: two passes over the members.
func (c *sel) drawScan(ex int) (int, int64) {
	var total int64
	for i := range c.s.w {
		if i != ex && c.eligible(i) {
			total += c.effective(i)
		}
	}
	if total == 0 {
		return -1, 0
	}
	x := int64(c.below(uint64(total)))
	last, lastW := -1, int64(0)
	for i := range c.s.w {
		if i == ex || !c.eligible(i) {
			continue
		}
		e := c.effective(i)
		if x < e {
			return i, e
		}
		x -= e
		last, lastW = i, e
	}
	// Eligibility changed between the passes.
	return last, lastW
}
