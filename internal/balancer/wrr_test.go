package balancer

import (
	"fmt"
	"strings"
	"testing"
)

func letters(p Policy, n int, ok func(int) bool) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('a' + p.Pick(0, ok)))
	}
	return b.String()
}

// TestWRRSmooth checks the exact SWRR order, including the [2,1] shape the
// seed starved.
func TestWRRSmooth(t *testing.T) {
	tests := []struct {
		weights []int
		want    string // one period
	}{
		{[]int{5, 1, 1}, "aabacaa"},
		{[]int{2, 1}, "aba"},
		{[]int{1, 1, 1}, "abc"},
		{[]int{4, 2}, "aba"}, // divided by the gcd
		{[]int{3, 0, 1}, "aaca"},
		{[]int{1, 2, 3}, "cbacbc"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.weights), func(t *testing.T) {
			_, members := nodesFor(tc.weights...)
			p := mustNew(t, NameWeightedRoundRobin, members, Options{})
			if got := letters(p, 3*len(tc.want), nil); got != strings.Repeat(tc.want, 3) {
				t.Errorf("weights %v: %s, want %s repeated", tc.weights, got, tc.want)
			}
		})
	}
}

// TestWRRWindows: over every window of sum(weights) consecutive picks,
// each member gets exactly its weight.
func TestWRRWindows(t *testing.T) {
	for _, weights := range [][]int{{5, 1, 1}, {2, 1}, {7, 3, 2, 1}, {10, 20, 30}, {1, 1000}, {13, 8, 5, 3, 2, 1, 1}} {
		_, members := nodesFor(weights...)
		p := mustNew(t, NameWeightedRoundRobin, members, Options{})
		sum := 0
		for _, w := range weights {
			sum += w
		}
		seq := make([]int, 20*sum)
		for k := range seq {
			seq[k] = p.Pick(0, nil)
		}
		cnt := make([]int, len(weights))
		for k, i := range seq {
			cnt[i]++
			if k >= sum {
				cnt[seq[k-sum]]--
			}
			if k >= sum-1 {
				for i, w := range weights {
					if cnt[i] != w {
						t.Fatalf("weights %v: window ending at %d gives member %d %d picks", weights, k, i, cnt[i])
					}
				}
			}
		}
	}
}

// TestWRRIneligible: an ineligible member's turns are given up, so the
// others keep their exact relative shares.
func TestWRRIneligible(t *testing.T) {
	_, members := nodesFor(5, 1, 1)
	p := mustNew(t, NameWeightedRoundRobin, members, Options{})
	noB := func(i int) bool { return i != 1 }
	// Period a a b a c a a without b: a a a c a a.
	if got := letters(p, 12, noB); got != "aaacaaaaacaa" {
		t.Errorf("without b: %s", got)
	}
	got := counts(p, 3, 60_000, noB)
	if got[0] != 50_000 || got[2] != 10_000 {
		t.Errorf("without b: counts %v, want 50000/0/10000", got)
	}
	// Only the weight-1 member: found through the fallback.
	onlyC := func(i int) bool { return i == 2 }
	for range 100 {
		if i := p.Pick(0, onlyC); i != 2 {
			t.Fatalf("only c eligible: picked %d", i)
		}
	}
}

func TestSWRRSequenceCap(t *testing.T) {
	w := make([]int64, 100)
	for i := range w {
		w[i] = int64(997 + i%3) // gcd 1, sum ~ 100k
	}
	seq := swrrSequence(w)
	if len(seq) > maxPeriod+len(w) || len(seq) < maxPeriod/2 {
		t.Fatalf("period %d, want about %d", len(seq), maxPeriod)
	}
	cnt := make([]int, len(w))
	for _, i := range seq {
		cnt[i]++
	}
	for i, c := range cnt {
		if c < 600 || c > 700 {
			t.Errorf("member %d (weight %d): %d of %d turns", i, w[i], c, len(seq))
		}
	}
	if swrrSequence([]int64{0, 0}) != nil {
		t.Error("all-zero weights: want no sequence")
	}
}
