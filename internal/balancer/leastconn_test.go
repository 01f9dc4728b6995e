package balancer

import (
	"fmt"
	"testing"
)

// TestLeastConnections: the member with the lowest in-flight/weight wins.
func TestLeastConnections(t *testing.T) {
	tests := []struct {
		weights  []int
		inflight []int
		ok       func(int) bool
		want     int
	}{
		{[]int{1, 1, 1}, []int{3, 1, 2}, nil, 1},
		{[]int{1, 1, 1}, []int{0, 0, 1}, func(i int) bool { return i == 2 }, 2},
		{[]int{5, 1}, []int{4, 1}, nil, 0},       // 0.8 < 1
		{[]int{5, 1}, []int{6, 1}, nil, 1},       // 1.2 > 1
		{[]int{2, 1, 1}, []int{3, 2, 2}, nil, 0}, // 1.5 < 2
		{[]int{3, 2}, []int{4, 3}, nil, 0},       // 1.33 < 1.5 (cross-multiplied)
		{[]int{1, 0, 1}, []int{5, 0, 6}, nil, 0}, // weight 0 never
		{[]int{1, 1, 1}, []int{1, 0, 2}, func(i int) bool { return i != 1 }, 0},
		{[]int{1000, 1}, []int{999, 0}, nil, 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("w%v_in%v", tc.weights, tc.inflight), func(t *testing.T) {
			nodes, members := nodesFor(tc.weights...)
			for i, n := range tc.inflight {
				for range n {
					nodes[i].Begin()
				}
			}
			p := mustNew(t, NameLeastConnections, members, Options{})
			for range 100 {
				if got := p.Pick(0, tc.ok); got != tc.want {
					t.Fatalf("picked %d, want %d", got, tc.want)
				}
			}
		})
	}
}

// TestLeastConnectionsTies: tied members share picks in proportion to
// weight rather than the first taking them all.
func TestLeastConnectionsTies(t *testing.T) {
	tests := []struct {
		weights  []int
		inflight []int
		want     []float64
	}{
		{[]int{1, 1, 1}, []int{0, 0, 0}, []float64{1, 1, 1}},
		{[]int{1, 1, 1}, []int{2, 2, 2}, []float64{1, 1, 1}},
		{[]int{2, 1, 1}, []int{0, 0, 0}, []float64{2, 1, 1}},
		{[]int{2, 1, 1}, []int{2, 1, 3}, []float64{2, 1, 0}}, // 1 = 1 < 3
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("w%v_in%v", tc.weights, tc.inflight), func(t *testing.T) {
			nodes, members := nodesFor(tc.weights...)
			for i, n := range tc.inflight {
				for range n {
					nodes[i].Begin()
				}
			}
			p := mustNew(t, NameLeastConnections, members, Options{})
			checkShares(t, counts(p, len(tc.weights), 60_000, nil), tc.want, 0.01)
		})
	}
}

// TestLeastConnectionsSpreads: with requests held open, in-flight counts
// track weights.
func TestLeastConnectionsSpreads(t *testing.T) {
	nodes, members := nodesFor(5, 3, 2)
	p := mustNew(t, NameLeastConnections, members, Options{})
	for range 1000 {
		nodes[p.Pick(0, nil)].Begin()
	}
	for i, want := range []int64{500, 300, 200} {
		if got := nodes[i].InFlight(); got < want-1 || got > want+1 {
			t.Errorf("member %d: %d in flight, want %d ± 1", i, got, want)
		}
	}
}
