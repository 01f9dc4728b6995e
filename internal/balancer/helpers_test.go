package balancer

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// testRand returns a deterministic source that is safe for concurrent use:
// SplitMix64 over an atomic counter.
func testRand(seed uint64) func() uint64 {
	var ctr atomic.Uint64
	ctr.Store(seed)
	return func() uint64 { return mix64(ctr.Add(golden)) }
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ t atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.t.Store(int64(1000 * time.Second))
	return c
}

func (c *fakeClock) Now() int64             { return c.t.Load() }
func (c *fakeClock) Add(d time.Duration)    { c.t.Add(int64(d)) }
func (c *fakeClock) Set(t int64)            { c.t.Store(t) }
func (c *fakeClock) opts(o Options) Options { o.Now = c.Now; return o }

// nodesFor returns named nodes and members with the given weights.
func nodesFor(weights ...int) ([]*Node, []Member) {
	nodes := make([]*Node, len(weights))
	members := make([]Member, len(weights))
	for i, w := range weights {
		nodes[i] = NewNode(fmt.Sprintf("http://backend%d:8080", i))
		members[i] = Member{Node: nodes[i], Weight: w}
	}
	return nodes, members
}

func mustNew(t testing.TB, name string, members []Member, opts Options) Policy {
	t.Helper()
	if opts.Rand == nil {
		opts.Rand = testRand(1)
	}
	p, err := New(name, members, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	return p
}

// counts picks n times and returns how often each member was chosen; -1
// results are counted in the last slot.
func counts(p Policy, members, n int, ok func(int) bool) []int {
	c := make([]int, members+1)
	for k := range n {
		i := p.Pick(uint64(k)*golden, ok)
		if i < 0 {
			c[members]++
			continue
		}
		c[i]++
	}
	return c
}

// checkShares fails unless counts[i]/total is within tol of want[i]/sum(want).
func checkShares(t *testing.T, got []int, want []float64, tol float64) {
	t.Helper()
	var total int
	for _, c := range got[:len(want)] {
		total += c
	}
	var sum float64
	for _, w := range want {
		sum += w
	}
	if got[len(want)] != 0 {
		t.Errorf("%d picks returned -1", got[len(want)])
	}
	for i, w := range want {
		share, exp := float64(got[i])/float64(total), w/sum
		if math.Abs(share-exp) > tol {
			t.Errorf("member %d: share %.4f, want %.4f ± %.4f (counts %v)", i, share, exp, tol, got)
		}
	}
}

// allPolicies lists every registered policy name.
var allPolicies = Names()

// weightedPolicies lists the policies whose idle shares follow weights.
var weightedPolicies = []string{NameWeightedRoundRobin, NameLeastConnections, NameP2C, NameRandom}
