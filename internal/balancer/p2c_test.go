package balancer

import (
	"fmt"
	"testing"
)

// TestP2CPrefersLessLoaded: of the two candidates the one with lower
// in-flight/weight wins.
func TestP2CPrefersLessLoaded(t *testing.T) {
	tests := []struct {
		weights  []int
		inflight []int
		want     []float64
	}{
		// Two members: both are always the candidates.
		{[]int{1, 1}, []int{5, 1}, []float64{0, 1}},
		{[]int{4, 1}, []int{3, 1}, []float64{1, 0}}, // 0.75 < 1
		// Three equal members, one busy: it wins only when drawn with
		// the other... never, as it is always compared with an idle one.
		{[]int{1, 1, 1}, []int{9, 0, 0}, []float64{0, 1, 1}},
		// Three members loaded 0, 1, 2: the least loaded wins whenever it
		// is drawn (2/3 of picks), the middle one otherwise.
		{[]int{1, 1, 1}, []int{0, 1, 2}, []float64{2, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("w%v_in%v", tc.weights, tc.inflight), func(t *testing.T) {
			nodes, members := nodesFor(tc.weights...)
			for i, n := range tc.inflight {
				for range n {
					nodes[i].Begin()
				}
			}
			p := mustNew(t, NameP2C, members, Options{})
			checkShares(t, counts(p, len(tc.weights), 60_000, nil), tc.want, 0.01)
		})
	}
}

// TestP2CSpreads: with requests held open, in-flight counts follow weights.
func TestP2CSpreads(t *testing.T) {
	nodes, members := nodesFor(5, 3, 2)
	p := mustNew(t, NameP2C, members, Options{})
	for range 10_000 {
		nodes[p.Pick(0, nil)].Begin()
	}
	for i, want := range []float64{0.5, 0.3, 0.2} {
		if got := float64(nodes[i].InFlight()) / 10_000; got < want-0.01 || got > want+0.01 {
			t.Errorf("member %d: %.3f of in-flight, want %.2f ± 0.01", i, got, want)
		}
	}
}
