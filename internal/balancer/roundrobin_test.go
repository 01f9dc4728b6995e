package balancer

import (
	"testing"
)

// TestRoundRobinTurns: every window of n consecutive picks holds each live
// member once; an ineligible member's turns go to the others equally; a
// weight-0 member takes no turn.
func TestRoundRobinTurns(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		ok      func(int) bool
		order   []int // one window, repeated
	}{
		{"three", []int{1, 1, 1}, nil, []int{0, 1, 2}},
		{"weights ignored", []int{5, 1, 2}, nil, []int{0, 1, 2}},
		{"weight 0 skipped", []int{1, 0, 1, 1}, nil, []int{0, 2, 3}},
		{"ineligible gives up its turn", []int{1, 1, 1}, func(i int) bool { return i != 1 }, []int{0, 2}},
		{"two of four ineligible", []int{1, 1, 1, 1}, func(i int) bool { return i == 0 || i == 3 }, []int{0, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, members := nodesFor(tc.weights...)
			p := mustNew(t, NameRoundRobin, members, Options{})
			for k := range 1000 * len(tc.order) {
				if got, want := p.Pick(0, tc.ok), tc.order[k%len(tc.order)]; got != want {
					t.Fatalf("pick %d = %d, want %d", k, got, want)
				}
			}
		})
	}
}

// TestRoundRobinFallback: with most members ineligible the pick still
// finds the eligible one after maxTries given-up turns.
func TestRoundRobinFallback(t *testing.T) {
	w := make([]int, 40)
	for i := range w {
		w[i] = 1
	}
	_, members := nodesFor(w...)
	p := mustNew(t, NameRoundRobin, members, Options{})
	only := func(i int) bool { return i == 29 }
	for k := range 100 {
		if got := p.Pick(0, only); got != 29 {
			t.Fatalf("pick %d = %d, want 29", k, got)
		}
	}
}
