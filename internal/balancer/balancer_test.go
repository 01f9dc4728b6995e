package balancer

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	want := []string{"round-robin", "weighted-round-robin", "least-connections", "p2c", "ewma", "consistent-hash", "random"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	Names()[0] = "changed"
	if Names()[0] != "round-robin" {
		t.Fatal("Names shares its slice")
	}
	for _, name := range want {
		_, members := nodesFor(1, 1)
		p := mustNew(t, name, members, Options{})
		if p.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, p.Name())
		}
	}
}

func TestNewErrors(t *testing.T) {
	n := NewNode("a")
	same := NewNode("a")
	tests := []struct {
		name    string
		policy  string
		members []Member
		opts    Options
		want    string
	}{
		{"unknown", "fastest", nil, Options{}, `unknown load-balancing policy "fastest" (valid: round-robin, weighted-round-robin, least-connections, p2c, ewma, consistent-hash, random)`},
		{"nil node", NameRandom, []Member{{Weight: 1}}, Options{}, "member 0 has no node"},
		{"shared node", NameRandom, []Member{{n, 1}, {n, 2}}, Options{}, "members 0 and 1 share a node"},
		{"negative weight", NameRandom, []Member{{n, -1}}, Options{}, "weight must be between 0 and 1000000, got -1"},
		{"huge weight", NameRandom, []Member{{n, MaxWeight + 1}}, Options{}, "got 1000001"},
		{"load factor below 1", NameConsistentHash, nil, Options{HashLoadFactor: 0.5}, "hash load factor must be at least 1"},
		{"load factor NaN", NameConsistentHash, nil, Options{HashLoadFactor: math.NaN()}, "hash load factor"},
		{"negative slow start", NameRandom, nil, Options{SlowStart: -1}, "slow start must be between 0"},
		{"long slow start", NameRandom, nil, Options{SlowStart: 25 * time.Hour}, "slow start must be between 0"},
		{"negative decay", NameEWMA, nil, Options{EWMADecay: -time.Second}, "EWMA decay must be positive"},
		{"negative max penalty", NameEWMA, nil, Options{MaxPenalty: -time.Second}, "max penalty must not be negative"},
		{"same names hashed", NameConsistentHash, []Member{{n, 1}, {same, 1}}, Options{}, `same node name "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.policy, tc.members, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want error containing %q", p, err, tc.want)
			}
		})
	}
	if _, err := New("nope", nil, Options{}); !errors.Is(err, ErrUnknownPolicy) {
		t.Errorf("unknown name: %v does not wrap ErrUnknownPolicy", err)
	}
	// Same names are fine where placement does not depend on them.
	if _, err := New(NameRandom, []Member{{n, 1}, {same, 1}}, Options{}); err != nil {
		t.Errorf("random with equal names: %v", err)
	}
	if _, err := New(NameConsistentHash, nil, Options{HashLoadFactor: math.Inf(1)}); err != nil {
		t.Errorf("+Inf load factor: %v", err)
	}
}

// TestNoneEligible: no members, only weight 0, or all rejected -> -1;
// zero-value policies too.
func TestNoneEligible(t *testing.T) {
	zeros := []Policy{&RoundRobin{}, &WeightedRoundRobin{}, &LeastConnections{}, &P2C{}, &EWMA{}, &ConsistentHash{}, &Random{}}
	for _, p := range zeros {
		if i := p.Pick(7, nil); i != -1 {
			t.Errorf("zero %T picked %d", p, i)
		}
	}
	never := func(int) bool { return false }
	for _, name := range allPolicies {
		t.Run(name, func(t *testing.T) {
			_, none := nodesFor()
			_, drained := nodesFor(0, 0, 0)
			_, live := nodesFor(1, 2, 3)
			cases := []struct {
				what    string
				members []Member
				ok      func(int) bool
			}{
				{"no members", none, nil},
				{"all weight 0", drained, nil},
				{"all ineligible", live, never},
			}
			for _, tc := range cases {
				p := mustNew(t, name, tc.members, Options{SlowStart: time.Second})
				for k := range 100 {
					if i := p.Pick(uint64(k), tc.ok); i != -1 {
						t.Fatalf("%s: Pick = %d, want -1", tc.what, i)
					}
				}
			}
		})
	}
}

// TestPredicateRespected: whatever subset is eligible, a policy picks only
// from it (never weight 0) and always finds a member when there is one.
func TestPredicateRespected(t *testing.T) {
	weights := []int{3, 0, 1, 5, 2, 0, 1, 4, 1, 2}
	for _, name := range allPolicies {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			nodes, members := nodesFor(weights...)
			nodes[3].SetDown()
			nodes[3].SetUp(clk.Now()) // ramping: exercises the slow-start paths
			p := mustNew(t, name, members, clk.opts(Options{SlowStart: time.Minute}))
			r := rand.New(rand.NewPCG(1, 2))
			var allowed [10]bool
			ok := func(i int) bool { return allowed[i] }
			for round := range 2000 {
				any := false
				for i := range allowed {
					allowed[i] = r.IntN(4) == 0
					any = any || (allowed[i] && weights[i] > 0)
				}
				if round%7 == 0 { // some load for the load-aware policies
					nodes[r.IntN(len(nodes))].Begin()
				}
				got := p.Pick(r.Uint64(), ok)
				switch {
				case !any && got != -1:
					t.Fatalf("round %d: nothing eligible, picked %d", round, got)
				case any && got == -1:
					t.Fatalf("round %d: eligible %v, picked none", round, allowed)
				case got >= 0 && (!allowed[got] || weights[got] == 0):
					t.Fatalf("round %d: picked %d (weight %d, allowed %v)", round, got, weights[got], allowed[got])
				}
			}
		})
	}
}

// TestIdleShares: with nothing in flight, every weighted policy splits
// traffic by weight within 1 % over 100k picks.
func TestIdleShares(t *testing.T) {
	weights := []float64{5, 3, 2}
	for _, name := range weightedPolicies {
		t.Run(name, func(t *testing.T) {
			_, members := nodesFor(5, 3, 2)
			p := mustNew(t, name, members, Options{})
			checkShares(t, counts(p, 3, 100_000, nil), weights, 0.01)
		})
	}
	t.Run(NameRoundRobin, func(t *testing.T) {
		_, members := nodesFor(5, 3, 2)
		p := mustNew(t, NameRoundRobin, members, Options{})
		checkShares(t, counts(p, 3, 99_999, nil), []float64{1, 1, 1}, 0)
	})
}

// TestSlowStartRamp: a member that comes back up gets 10 % of its weight,
// 55 % halfway through the window and all of it at the end, in every
// policy that shares by weight (round-robin by its equal turns).
func TestSlowStartRamp(t *testing.T) {
	const window = 10 * time.Second
	factor := func(frac float64) float64 { return (rampFloor + (full-rampFloor)*frac) / full }
	for _, name := range append([]string{NameRoundRobin}, weightedPolicies...) {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			nodes, members := nodesFor(1, 1)
			p := mustNew(t, name, members, clk.opts(Options{SlowStart: window}))
			nodes[1].SetDown()
			start := clk.Now()
			if !nodes[1].SetUp(start) {
				t.Fatal("SetUp after SetDown reported no transition")
			}
			for _, frac := range []float64{0, 0.5, 1} {
				clk.Set(start + int64(frac*float64(window)))
				f := factor(min(frac, 1))
				got := counts(p, 2, 100_000, nil)
				t.Logf("at %3.0f%% of the window: share %.4f, want %.4f", frac*100, float64(got[1])/100_000, f/(1+f))
				checkShares(t, got, []float64{1, f}, 0.01)
			}
			if s := nodes[1].state.Load(); s != 0 {
				t.Errorf("after the window the ramp is still recorded (%d)", s)
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		nodes, members := nodesFor(1, 1)
		p := mustNew(t, NameRandom, members, Options{Now: func() int64 { t.Fatal("clock read with slow start off"); return 0 }})
		nodes[1].SetDown()
		nodes[1].SetUp(1)
		checkShares(t, counts(p, 2, 100_000, nil), []float64{1, 1}, 0.01)
	})
}

func TestNodeUpDown(t *testing.T) {
	var n Node
	if !n.Up() || n.SetUp(5) {
		t.Fatal("zero node: want up, and SetUp to be a no-op")
	}
	if n.state.Load() != 0 {
		t.Fatal("SetUp on an up node started a ramp")
	}
	n.SetDown()
	if n.Up() {
		t.Fatal("down node reports up")
	}
	if !n.SetUp(0) || n.state.Load() != 1 || !n.Up() {
		t.Fatalf("SetUp(0): state %d", n.state.Load())
	}
	if n.SetUp(9) || n.state.Load() != 1 {
		t.Fatal("second SetUp restarted the ramp")
	}
	if n.Name() != "" || NewNode("x").Name() != "x" {
		t.Fatal("names")
	}
}

// TestConcurrentPicks runs picks, Begin/End and health transitions from
// several goroutines at once; run with -race.
func TestConcurrentPicks(t *testing.T) {
	for _, name := range allPolicies {
		t.Run(name, func(t *testing.T) {
			nodes, members := nodesFor(3, 1, 2, 0, 4)
			p, err := New(name, members, Options{SlowStart: 50 * time.Millisecond}) // real Rand and clock
			if err != nil {
				t.Fatal(err)
			}
			var down [5]boolFlag
			ok := func(i int) bool { return !down[i].get() }
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 5000 {
						if g == 0 && k%100 == 0 {
							i := k / 100 % 5
							if down[i].get() {
								down[i].set(false)
								nodes[i].SetUp(time.Now().UnixNano())
							} else {
								down[i].set(true)
								nodes[i].SetDown()
							}
						}
						i := p.Pick(uint64(k*g)*golden, ok)
						if i < 0 {
							continue
						}
						if i == 3 {
							t.Errorf("picked weight-0 member")
							return
						}
						nodes[i].Begin()
						nodes[i].End(time.Now().UnixNano(), time.Duration(k%7)*time.Millisecond, k%11 == 0)
					}
				}()
			}
			wg.Wait()
			for i, n := range nodes {
				if n.InFlight() != 0 {
					t.Errorf("node %d: %d in flight after all ended", i, n.InFlight())
				}
			}
		})
	}
}

type boolFlag struct {
	mu sync.Mutex
	v  bool
}

func (f *boolFlag) get() bool  { f.mu.Lock(); defer f.mu.Unlock(); return f.v }
func (f *boolFlag) set(v bool) { f.mu.Lock(); f.v = v; f.mu.Unlock() }

// TestPickAllocs proves that no policy's Pick allocates, including the
// slow-start, fallback and bounded-load walk paths.
func TestPickAllocs(t *testing.T) {
	for _, name := range allPolicies {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			nodes, members := nodesFor(3, 1, 2, 1, 1)
			p := mustNew(t, name, members, clk.opts(Options{SlowStart: time.Minute}))
			nodes[2].SetDown()
			nodes[2].SetUp(clk.Now())
			for i, n := range nodes {
				for range i * 3 {
					n.Begin()
				}
				n.End(clk.Now(), time.Duration(i+1)*time.Millisecond, false)
				n.Begin()
			}
			var mostlyDown [5]bool
			for i := range 4 {
				mostlyDown[i] = true
			}
			all := func(int) bool { return true }
			few := func(i int) bool { return !mostlyDown[i] }
			var k uint64
			for _, ok := range []func(int) bool{nil, all, few} {
				if a := testing.AllocsPerRun(1000, func() { k++; p.Pick(k*golden, ok) }); a != 0 {
					t.Errorf("Pick allocates %v times per call", a)
				}
			}
			if a := testing.AllocsPerRun(1000, func() { nodes[0].Begin(); nodes[0].End(clk.Now(), time.Millisecond, false) }); a != 0 {
				t.Errorf("Begin/End allocate %v times", a)
			}
		})
	}
}
