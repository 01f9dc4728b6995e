package balancer

var _ Policy = (*EWMA)(nil)

// EWMA ("ewma") is peak-EWMA, as in Finagle and Linkerd: the cost of a
// member is its latency estimate × (in-flight + 1) / effective weight, and
// a pick compares the costs of two distinct members drawn at random in
// proportion to their effective weights (power of two choices), taking the
// cheaper; on a tie, the first drawn.
//
// The estimate (see [Node.End]) jumps to a latency above it at once and
// decays towards lower ones with time constant tau (Options.EWMADecay), so
// a backend that slows down loses traffic within a few requests, and one
// that recovers wins it back over a few tau. A failure adds a penalty
// equal to the estimate (the cost doubles, once: further failures do not
// compound), which decays towards 0 with the same tau. At pick time the
// estimate is also decayed towards 0 for the time since its last update,
// so a backend that was slow and then left alone is tried again. When
// either candidate has no estimate yet, both are compared on
// (in-flight + 1) / weight alone, as if equally fast.
//
// Building an EWMA stores tau and Options.MaxPenalty on every member's
// node, where End uses them.
//
// The zero value has no members. An EWMA is safe for concurrent use.
type EWMA struct {
	set
	k float64 // stampUnit / tau
}

func newEWMA(s set, opts Options) Policy {
	for _, n := range s.nodes {
		n.decay.Store(int64(opts.EWMADecay))
		n.penCap.Store(int64(opts.MaxPenalty))
	}
	return &EWMA{set: s, k: stampUnit / float64(opts.EWMADecay)}
}

// Name returns "ewma".
func (p *EWMA) Name() string { return NameEWMA }

// Pick returns the cheaper of two random members; see [Policy.Pick].
func (p *EWMA) Pick(_ uint64, ok func(int) bool) int {
	c := sel{s: &p.set, ok: ok}
	a, wa := c.draw(-1)
	if a < 0 {
		return -1
	}
	b, wb := c.draw(a)
	if b < 0 {
		return a
	}
	na, nb := p.nodes[a], p.nodes[b]
	unit := stampOf(c.now())
	ra, okA := na.rttAt(unit, p.k)
	rb, okB := nb.rttAt(unit, p.k)
	if !okA || !okB {
		ra, rb = 1, 1
	} else {
		pa, _ := na.penAt(unit, p.k)
		pb, _ := nb.penAt(unit, p.k)
		ra, rb = ra+pa, rb+pb
	}
	// ra*(ina+1)/wa vs rb*(inb+1)/wb, cross-multiplied.
	if rb*float64(nb.load()+1)*float64(wa) < ra*float64(na.load()+1)*float64(wb) {
		return b
	}
	return a
}
