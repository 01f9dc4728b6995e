package balancer

import (
	"math"
	mathbits "math/bits"
	"slices"
)

var _ Policy = (*ConsistentHash)(nil)

// Ring sizing: pointsPerWeight virtual nodes per unit of weight, at most
// maxPoints in all (12 bytes each).
const (
	pointsPerWeight = 160
	maxPoints       = 1 << 17
	// maxWalk bounds the ring points one pick visits before it falls back
	// to a scan over the members.
	maxWalk = 4096
)

// ConsistentHash ("consistent-hash") maps the caller's 64-bit request key
// to a member on a hash ring with virtual nodes, with Google's bounded
// loads ("Consistent Hashing with Bounded Loads", Mirrokni, Thorup,
// Zadimoghaddam 2018).
//
// Each member with weight w owns 160 × w points on the ring, at positions
// derived from its node's name alone (not from its index or the other
// members), so adding or removing one member of n moves only about 1/n of
// the keys, all to or from that member. If the ring would exceed 131072
// points the counts are scaled down, and membership changes then move a
// few more keys.
//
// Bounded loads: a member takes the request only if its in-flight count
// after taking it stays within ceil(c × (total in-flight + 1) × its
// effective weight / total weight), c being Options.HashLoadFactor, the
// total counted over members with weight > 0. Otherwise the pick walks
// clockwise to the next distinct member. A member with nothing in flight
// always takes the request. When every eligible member is at its bound (only
// possible when some are ineligible), the key's first eligible member
// takes it. With +Inf as c the bound is off.
//
// Why a ring: jump hash cannot remove a member from the middle without
// renumbering the others; rendezvous hashing costs one hash per member per
// pick and needs a sorted order for the bounded-load walk; Maglev moves
// some keys that need not move. A ring lookup is a bucket-index lookup, the
// bounded-load walk is its natural successor order, and movement is
// minimal.
//
// The zero value has no members. A ConsistentHash is safe for concurrent
// use.
type ConsistentHash struct {
	set
	points []uint64 // sorted ring positions
	owners []int32  // owners[k] is the member at points[k]
	// index[b] is the first point whose top bits (pos >> shift) are >= b;
	// index has 2^(64-shift) + 1 entries, the last being len(points).
	index []uint32
	shift uint
	// bound is c / (total weight × full): a member's bound is
	// ceil(bound × (in-flight total + 1) × effective weight); +Inf: off.
	bound float64
}

func newConsistentHash(s set, opts Options) Policy {
	p := &ConsistentHash{set: s, bound: opts.HashLoadFactor / float64(max(s.total, 1)*full)}
	type point struct {
		pos   uint64
		owner int32
	}
	var ring []point
	for i, n := range s.nodes {
		for j := range pointCount(s.w[i], s.total) {
			ring = append(ring, point{mix64(n.id + uint64(j+1)*golden), int32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b point) int {
		switch {
		case a.pos < b.pos:
			return -1
		case a.pos > b.pos:
			return 1
		}
		// Equal positions (1 in 2^64): order by name, not by index.
		an, bn := s.nodes[a.owner].name, s.nodes[b.owner].name
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return 0
	})
	p.points = make([]uint64, len(ring))
	p.owners = make([]int32, len(ring))
	for k, pt := range ring {
		p.points[k], p.owners[k] = pt.pos, pt.owner
	}
	p.buildIndex()
	return p
}

// buildIndex sizes the bucket index to the first power of two at or above
// the number of points (at least 2 buckets).
func (p *ConsistentHash) buildIndex() {
	bits := max(1, mathbits.Len(uint(len(p.points))))
	p.shift = uint(64 - bits)
	p.index = make([]uint32, 1<<bits+1)
	k := 0
	for b := range p.index {
		for k < len(p.points) && p.points[k]>>p.shift < uint64(b) {
			k++
		}
		p.index[b] = uint32(k)
	}
}

// pointCount returns the number of ring points of a member with weight w
// when the weights add up to total.
func pointCount(w, total int64) int64 {
	if w == 0 {
		return 0
	}
	if total*pointsPerWeight <= maxPoints {
		return w * pointsPerWeight
	}
	if per := maxPoints / total; per >= 1 {
		return w * per
	}
	return max(1, w*maxPoints/total)
}

// Name returns "consistent-hash".
func (p *ConsistentHash) Name() string { return NameConsistentHash }

// Pick returns the member key maps to, subject to bounded loads; see
// [Policy.Pick]. key should be well mixed ([HashBytes]); it is mixed once
// more anyway.
func (p *ConsistentHash) Pick(key uint64, ok func(int) bool) int {
	if len(p.points) == 0 {
		return -1
	}
	at := p.successor(mix64(key))
	c := sel{s: &p.set, ok: ok}
	i := int(p.owners[at])
	var total int64 = -1
	if c.eligible(i) && p.fits(&c, i, &total) {
		return i
	}
	return p.walk(&c, at, i, total)
}

// successor returns the index of the first ring point at or after h,
// wrapping to 0. The bucket index narrows the search to the points that
// share h's top bits, about one on average.
func (p *ConsistentHash) successor(h uint64) int {
	b := h >> p.shift
	k, end := int(p.index[b]), int(p.index[b+1])
	for k < end && p.points[k] < h {
		k++
	}
	if k == len(p.points) {
		return 0
	}
	return k
}

// fits reports whether member i is within its load bound if it takes one
// more request. *total caches the total in-flight count (-1: not summed
// yet).
func (p *ConsistentHash) fits(c *sel, i int, total *int64) bool {
	in := p.nodes[i].load()
	if in == 0 || math.IsInf(p.bound, 1) {
		return true
	}
	if *total < 0 {
		var t int64
		for j, n := range p.nodes {
			if p.w[j] > 0 {
				t += n.load()
			}
		}
		*total = t
	}
	limit := math.Ceil(p.bound*float64(*total+1)*float64(c.effective(i)) - 1e-9)
	return float64(in+1) <= limit
}

// walk continues clockwise from ring position at, whose member first was
// already checked, to the first distinct eligible member within its bound.
// If the walk meets every member without finding one, the first eligible
// member met takes the request. If it is cut short (maxWalk points, or
// more members than its bitmap tracks), the members are scanned in index
// order instead.
func (p *ConsistentHash) walk(c *sel, at, first int, total int64) int {
	var seen [64]uint64 // members 0-4095
	mark := func(i int) (was bool) {
		if i >= len(seen)*64 {
			return false
		}
		w, b := i/64, uint64(1)<<(i%64)
		was = seen[w]&b != 0
		seen[w] |= b
		return was
	}
	mark(first)
	fallback := -1
	if c.eligible(first) {
		fallback = first
	}
	live := 0
	for _, w := range p.w {
		if w > 0 {
			live++
		}
	}
	met, prev := 1, first
	for range min(len(p.points), maxWalk) {
		if met >= live {
			break
		}
		if at++; at == len(p.points) {
			at = 0
		}
		i := int(p.owners[at])
		if i == prev || mark(i) {
			continue
		}
		prev = i
		met++
		if !c.eligible(i) {
			continue
		}
		if p.fits(c, i, &total) {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	if met < live || live > len(seen)*64 {
		for i := range p.nodes {
			if !c.eligible(i) {
				continue
			}
			if p.fits(c, i, &total) {
				return i
			}
			if fallback < 0 {
				fallback = i
			}
		}
	}
	return fallback
}
