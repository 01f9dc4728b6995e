package balancer

import "sync/atomic"

var _ Policy = (*WeightedRoundRobin)(nil)

// maxPeriod caps the precomputed SWRR sequence (int32 entries: 256 KiB).
const maxPeriod = 1 << 16

// WeightedRoundRobin ("weighted-round-robin") is smooth weighted
// round-robin, the nginx algorithm: weights 5, 1, 1 give a a b a c a a, the
// heavy member's turns spread between the others'.
//
// The sequence of one period is computed when the policy is built (weights
// divided by their greatest common divisor, so the period is their sum
// over the gcd), and a pick takes seq[counter % period] with one atomic
// counter shared by all goroutines. Over any sum(weights) consecutive
// picks with all members eligible, each member is therefore picked exactly
// weight times, across event loops. If the reduced weights add up to more
// than 65536, they are scaled down to fit (each positive weight stays at
// least 1), and shares are exact for the scaled weights.
//
// A member that is not eligible gives up its turn, and the pick takes the
// next one, so the others keep their relative shares exactly. After
// maxTries given-up turns the pick falls back to a weighted random choice
// among eligible members.
//
// Slow start (approximation): a ramping member takes its turn with
// probability equal to its ramp factor; its expected share is that of its
// weight times the factor.
//
// The zero value has no members. A WeightedRoundRobin is safe for
// concurrent use.
type WeightedRoundRobin struct {
	set
	seq []int32

	_    [64]byte
	next atomic.Uint64
	_    [56]byte
}

func newWeightedRoundRobin(s set, _ Options) Policy {
	return &WeightedRoundRobin{set: s, seq: swrrSequence(s.w)}
}

// swrrSequence returns one period of smooth weighted round-robin over w.
func swrrSequence(w []int64) []int32 {
	red := make([]int64, len(w))
	var g, sum int64
	for _, x := range w {
		g = gcd(g, x)
	}
	if g == 0 {
		return nil
	}
	for i, x := range w {
		red[i] = x / g
		sum += red[i]
	}
	if sum > maxPeriod {
		scaled := sum
		sum, g = 0, 0
		for i, x := range red {
			if x > 0 {
				red[i] = max(1, x*maxPeriod/scaled)
				g = gcd(g, red[i])
			}
		}
		for i := range red {
			red[i] /= g
			sum += red[i]
		}
	}
	seq := make([]int32, sum)
	cur := make([]int64, len(w))
	for k := range seq {
		best := -1
		for i, x := range red {
			if x == 0 {
				continue
			}
			cur[i] += x
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= sum
		seq[k] = int32(best)
	}
	return seq
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Name returns "weighted-round-robin".
func (p *WeightedRoundRobin) Name() string { return NameWeightedRoundRobin }

// Pick returns the member whose turn it is; see [Policy.Pick].
func (p *WeightedRoundRobin) Pick(_ uint64, ok func(int) bool) int {
	n := uint64(len(p.seq))
	if n == 0 {
		return -1
	}
	c := sel{s: &p.set, ok: ok}
	for range maxTries {
		i := int(p.seq[(p.next.Add(1)-1)%n])
		if (ok == nil || ok(i)) && c.admit(i) {
			return i
		}
	}
	i, _ := c.drawScan(-1)
	return i
}
