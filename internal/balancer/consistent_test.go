package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func ringOwners(t *testing.T, nodes []*Node, keys []uint64) map[uint64]*Node {
	t.Helper()
	members := make([]Member, len(nodes))
	for i, n := range nodes {
		members[i] = Member{Node: n, Weight: 1}
	}
	p := mustNew(t, NameConsistentHash, members, Options{})
	owners := make(map[uint64]*Node, len(keys))
	for _, k := range keys {
		owners[k] = nodes[p.Pick(k, nil)]
	}
	return owners
}

func testKeys(n int) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = HashString(fmt.Sprintf("client-%d", i))
	}
	return keys
}

// TestConsistentHashMovement: adding an 11th member moves about 1/11 of the
// keys, all to it; removing one moves only that member's keys.
func TestConsistentHashMovement(t *testing.T) {
	keys := testKeys(100_000)
	nodes := make([]*Node, 11)
	for i := range nodes {
		nodes[i] = NewNode(fmt.Sprintf("http://10.0.0.%d:8080", i+1))
	}
	before := ringOwners(t, nodes[:10], keys)

	after := ringOwners(t, nodes, keys)
	moved := 0
	for _, k := range keys {
		if after[k] != before[k] {
			moved++
			if after[k] != nodes[10] {
				t.Fatalf("key %x moved from %s to %s, not to the new member", k, before[k].Name(), after[k].Name())
			}
		}
	}
	frac := float64(moved) / float64(len(keys))
	t.Logf("adding 1 to 10 moved %.4f of keys (ideal %.4f)", frac, 1.0/11)
	if math.Abs(frac-1.0/11) > 0.25/11 {
		t.Errorf("moved %.4f of keys, want 1/11 ± 25%%", frac)
	}

	// Remove member 3 (keep the order of the rest).
	rest := append(append([]*Node{}, nodes[:3]...), nodes[4:10]...)
	removed := ringOwners(t, rest, keys)
	for _, k := range keys {
		switch {
		case before[k] == nodes[3] && removed[k] == nodes[3]:
			t.Fatal("removed member still owns a key")
		case before[k] != nodes[3] && removed[k] != before[k]:
			t.Fatalf("key %x of %s moved to %s when %s was removed", k, before[k].Name(), removed[k].Name(), nodes[3].Name())
		}
	}

	// Reordering members changes nothing: placement depends on names.
	shuffled := append([]*Node{}, nodes[:10]...)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	re := ringOwners(t, shuffled, keys)
	for _, k := range keys {
		if re[k] != before[k] {
			t.Fatal("reordering the members moved keys")
		}
	}
}

// TestConsistentHashShares: with nothing in flight, key shares follow
// weights roughly (virtual nodes), and a key always maps to one member.
func TestConsistentHashShares(t *testing.T) {
	nodes, members := nodesFor(1, 1, 1, 1, 2, 4)
	p := mustNew(t, NameConsistentHash, members, Options{})
	keys := testKeys(100_000)
	cnt := make([]float64, len(nodes))
	for _, k := range keys {
		i := p.Pick(k, nil)
		if j := p.Pick(k, nil); j != i {
			t.Fatalf("key %x mapped to %d then %d", k, i, j)
		}
		cnt[i]++
	}
	for i, w := range []float64{1, 1, 1, 1, 2, 4} {
		share, want := cnt[i]/float64(len(keys)), w/10
		t.Logf("member %d (weight %v): share %.4f, ideal %.2f", i, w, share, want)
		if math.Abs(share-want) > 0.2*want {
			t.Errorf("member %d: share %.4f, want %.2f ± 20%%", i, share, want)
		}
	}
	// The predicate moves a key to the next member on the ring, and only
	// that key's.
	k := keys[0]
	first := p.Pick(k, nil)
	second := p.Pick(k, func(i int) bool { return i != first })
	if second == first || second < 0 {
		t.Fatalf("with %d excluded, picked %d", first, second)
	}
}

// TestConsistentHashBoundedLoad: requests held open, keys heavily skewed;
// after every pick no member is above ceil(c × its weighted share of the
// total) — the bound of Mirrokni et al.
func TestConsistentHashBoundedLoad(t *testing.T) {
	tests := []struct {
		c       float64
		weights []int
	}{
		{1.25, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{1.25, []int{3, 1, 1, 2, 1}},
		{1.0, []int{1, 1, 1, 1}},
		{2, []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("c%v_w%v", tc.c, tc.weights), func(t *testing.T) {
			nodes, members := nodesFor(tc.weights...)
			p := mustNew(t, NameConsistentHash, members, Options{HashLoadFactor: tc.c})
			var sumW float64
			for _, w := range tc.weights {
				sumW += float64(w)
			}
			r := rand.New(rand.NewPCG(5, 6))
			hot := testKeys(3) // 3 hot keys take 80 % of requests
			total := 0
			for step := range 5000 {
				key := r.Uint64()
				if r.IntN(5) != 0 {
					key = hot[r.IntN(len(hot))]
				}
				i := p.Pick(key, nil)
				nodes[i].Begin()
				total++
				for j, n := range nodes {
					bound := math.Ceil(tc.c*float64(total)*float64(tc.weights[j])/sumW - 1e-9)
					if float64(n.InFlight()) > bound {
						t.Fatalf("step %d: member %d has %d in flight, bound %v (total %d)", step, j, n.InFlight(), bound, total)
					}
				}
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		nodes, members := nodesFor(1, 1, 1)
		p := mustNew(t, NameConsistentHash, members, Options{HashLoadFactor: math.Inf(1)})
		i := p.Pick(42, nil)
		for range 100 {
			if j := p.Pick(42, nil); j != i {
				t.Fatalf("bound off: key moved from %d to %d", i, j)
			}
			nodes[i].Begin()
		}
	})
	t.Run("all full except ineligible", func(t *testing.T) {
		nodes, members := nodesFor(1, 1, 1)
		p := mustNew(t, NameConsistentHash, members, Options{HashLoadFactor: 1})
		for range 10 {
			nodes[0].Begin()
		}
		// Only member 0 is eligible and it is over its bound: it still
		// takes the request rather than none.
		if i := p.Pick(1, func(i int) bool { return i == 0 }); i != 0 {
			t.Fatalf("picked %d", i)
		}
	})
}

// TestConsistentHashSlowStart: a ramping member's bound shrinks, so a hot
// key spills to the next member sooner.
func TestConsistentHashSlowStart(t *testing.T) {
	clk := newClock()
	nodes, members := nodesFor(1, 1, 1, 1)
	p := mustNew(t, NameConsistentHash, members, clk.opts(Options{SlowStart: 10 * time.Second}))
	key := testKeys(1)[0]
	owner := p.Pick(key, nil)
	nodes[owner].SetDown()
	nodes[owner].SetUp(clk.Now())
	for range 40 {
		nodes[p.Pick(key, nil)].Begin()
	}
	// Full weight: bound ceil(1.25 × 40/4) = 13; at 10 %: about 2.
	if got := nodes[owner].InFlight(); got > 3 {
		t.Errorf("ramping owner took %d of 40", got)
	}
}

// TestConsistentHashBigRing: rings that would exceed maxPoints are scaled
// down, every member keeps at least one point, and a walk cut short by
// maxWalk still finds the rare eligible members.
func TestConsistentHashBigRing(t *testing.T) {
	t.Run("many heavy members", func(t *testing.T) {
		w := make([]int, 100)
		for i := range w {
			w[i] = 1000
		}
		_, members := nodesFor(w...)
		p := mustNew(t, NameConsistentHash, members, Options{}).(*ConsistentHash)
		if len(p.points) != 100*1000 {
			t.Fatalf("%d points, want 1 per unit of weight", len(p.points))
		}
	})
	t.Run("one giant member", func(t *testing.T) {
		nodes, members := nodesFor(MaxWeight, 1, 1)
		p := mustNew(t, NameConsistentHash, members, Options{}).(*ConsistentHash)
		if len(p.points) > maxPoints+2 {
			t.Fatalf("%d points, over the cap", len(p.points))
		}
		cnt := make([]int, 3)
		for _, o := range p.owners {
			cnt[o]++
		}
		if cnt[1] != 1 || cnt[2] != 1 {
			t.Fatalf("point counts %v, want the small members to keep one each", cnt)
		}
		notGiant := func(i int) bool { return i != 0 }
		nodes[1].Begin() // one in flight: the bound applies
		seen := make([]int, 3)
		for _, k := range testKeys(2000) {
			i := p.Pick(k, notGiant)
			if i <= 0 {
				t.Fatalf("picked %d", i)
			}
			seen[i]++
		}
		if seen[1] != 0 {
			t.Errorf("picks %v: member 1 is over its bound and member 2 has room", seen)
		}
	})
}

func TestSuccessor(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 2, 3, 7, 64, 1000, 5000} {
		pts := make([]uint64, n)
		for i := range pts {
			pts[i] = r.Uint64()
		}
		if n == 7 { // clustered in one bucket
			for i := range pts {
				pts[i] >>= 20
			}
		}
		slices.Sort(pts)
		p := &ConsistentHash{points: pts}
		p.buildIndex()
		probes := []uint64{0, math.MaxUint64}
		for _, x := range pts {
			probes = append(probes, x, x-1, x+1)
		}
		for range 1000 {
			probes = append(probes, r.Uint64())
		}
		for _, h := range probes {
			want, _ := slices.BinarySearch(pts, h)
			if want == len(pts) {
				want = 0
			}
			if got := p.successor(h); got != want {
				t.Fatalf("%d points, h %#x: %d, want %d", n, h, got, want)
			}
		}
	}
}
