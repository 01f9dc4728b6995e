package balancer

import (
	"math"
	"sync"
	"testing"
	"time"
)

// TestNodeLatencyEstimate checks peak-EWMA arithmetic on one node, and the
// failure penalty beside it.
func TestNodeLatencyEstimate(t *testing.T) {
	const tau = 10 * time.Second
	ms := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	t0 := int64(1000 * time.Second)
	decayed := 10 + 40*math.Exp(-0.1)
	steps := []struct {
		at      time.Duration // after t0
		latency time.Duration
		failed  bool
		want    time.Duration // estimate
		penalty time.Duration // at the same time
	}{
		{0, ms(10), false, ms(10), 0},                                          // first sample taken as is
		{time.Second, ms(50), false, ms(50), 0},                                // peak: at once
		{2 * time.Second, ms(10), false, ms(decayed), 0},                       // decays in: w = e^-0.1
		{2 * time.Second, ms(1), false, ms(decayed), 0},                        // no time passed: no move
		{12 * time.Second, ms(1), true, ms(decayed), ms(decayed)},              // a fast failure does not lower it; penalty = estimate
		{12 * time.Second, -1, true, ms(decayed), ms(decayed)},                 // a second failure does not add to the penalty
		{22 * time.Second, -1, false, ms(decayed), ms(decayed * math.Exp(-1))}, // no sample; the penalty decays
		{22 * time.Second, ms(200), true, ms(200), ms(200)},                    // a slow failure (timeout) raises both
	}
	var n Node
	n.decay.Store(int64(tau))
	for k, s := range steps {
		n.Begin()
		n.End(t0+int64(s.at), s.latency, s.failed)
		got, pen := n.Latency(), n.Penalty(t0+int64(s.at))
		if math.Abs(float64(got-s.want)) > float64(s.want)*1e-3 {
			t.Errorf("step %d: estimate %v, want %v", k, got, s.want)
		}
		if math.Abs(float64(pen-s.penalty)) > float64(s.penalty)*1e-3 {
			t.Errorf("step %d: penalty %v, want %v", k, pen, s.penalty)
		}
	}
	if n.InFlight() != 0 {
		t.Errorf("in flight %d", n.InFlight())
	}
	// Pick-time decay towards 0.
	est, ok := n.rttAt(stampOf(t0+int64(32*time.Second)), stampUnit/float64(tau))
	if want := float64(n.Latency()) * math.Exp(-1); !ok || math.Abs(est-want) > want*1e-3 {
		t.Errorf("decayed estimate %v, want %v", est, want)
	}
	var fresh Node
	if _, ok := fresh.rttAt(0, 1); ok || fresh.Latency() != 0 || fresh.Penalty(t0) != 0 {
		t.Error("fresh node has an estimate")
	}
	// A failure before any estimate has nothing to scale a penalty by.
	fresh.Begin()
	fresh.End(t0, -1, true)
	if fresh.Latency() != 0 || fresh.Penalty(t0) != 0 || fresh.InFlight() != 0 {
		t.Errorf("failure without latency on a fresh node: estimate %v penalty %v", fresh.Latency(), fresh.Penalty(t0))
	}
}

// TestNodePenaltyBounded is issue 14's frozen estimate: a backend that
// answers in 10 ms with 10% of its requests failing. The old penalty at
// least doubled the estimate on every failure and reached its 1-hour cap
// ("3588.69 s" on the status page), and nothing brought it down while the
// backend was idle. The penalty must stay bounded by the real latency,
// the estimate must stay the real latency, and both must come back to it
// once failures stop, also with no traffic at all.
func TestNodePenaltyBounded(t *testing.T) {
	const tau = 10 * time.Second
	clk := newClock()
	var n Node
	n.decay.Store(int64(tau))
	const lat = 10 * time.Millisecond
	for i := range 60_000 { // 10 minutes at 100 requests/s
		clk.Add(10 * time.Millisecond)
		n.Begin()
		if i%10 == 9 {
			n.End(clk.Now(), 2*time.Millisecond, true) // fails fast
		} else {
			n.End(clk.Now(), lat, false)
		}
		if cost := n.Latency() + n.Penalty(clk.Now()); cost > 2*lat+lat/100 {
			t.Fatalf("request %d: estimate %v + penalty %v: more than twice the real latency %v",
				i, n.Latency(), n.Penalty(clk.Now()), lat)
		}
	}
	if got := n.Latency(); got < lat-lat/100 || got > lat+lat/100 {
		t.Errorf("estimate %v after 10 minutes of a %v backend", got, lat)
	}
	// Idle: no request, the penalty fades on its own.
	clk.Add(5 * tau)
	if p := n.Penalty(clk.Now()); p > lat/100 {
		t.Errorf("penalty %v after 5 tau idle, want < 1%% of %v", p, lat)
	}
	if got := n.Latency(); got < lat-lat/100 || got > lat+lat/100 {
		t.Errorf("estimate %v after idling, want the real %v", got, lat)
	}
	// A failure (here a refused connection: no latency) sets the penalty
	// to the estimate; at pick time it decays like the estimate does.
	k := stampUnit / float64(tau)
	n.Begin()
	n.End(clk.Now(), -1, true)
	unit := stampOf(clk.Now())
	p0, _ := n.penAt(unit, k)
	if r := float64(n.Latency()); math.Abs(p0-r) > r*1e-3 {
		t.Errorf("penalty %v right after a failure, want the estimate %v", p0, r)
	}
	unit = stampOf(clk.Now() + int64(3*tau))
	p3, _ := n.penAt(unit, k)
	if want := p0 * math.Exp(-3); math.Abs(p3-want) > want*1e-2 {
		t.Errorf("penalty %v after 3 tau, want %v", p3, want)
	}
}

// TestNodePenaltyCap: Options.MaxPenalty bounds the penalty of a slow
// backend's failure.
func TestNodePenaltyCap(t *testing.T) {
	clk := newClock()
	nodes, members := nodesFor(1, 1)
	mustNew(t, NameEWMA, members, clk.opts(Options{MaxPenalty: 2 * time.Second}))
	n := nodes[0]
	n.Begin()
	n.End(clk.Now(), 5*time.Second, false) // a slow answer
	n.Begin()
	n.End(clk.Now(), -1, true)
	if got, p := n.Latency(), n.Penalty(clk.Now()); got != 5*time.Second || p != 2*time.Second {
		t.Errorf("estimate %v penalty %v, want 5s and the 2s cap", got, p)
	}
}

// TestNodeLatencyConcurrent: concurrent Ends keep the estimate within the
// samples' range and lose no in-flight count.
func TestNodeLatencyConcurrent(t *testing.T) {
	var n Node
	var wg sync.WaitGroup
	now := time.Now().UnixNano()
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 2000 {
				n.Begin()
				n.End(now+int64(k)*int64(time.Millisecond), time.Duration(1+g)*time.Millisecond, false)
			}
		}()
	}
	wg.Wait()
	if got := n.Latency(); got < time.Millisecond || got > 8*time.Millisecond {
		t.Errorf("estimate %v outside the samples' range", got)
	}
	if n.InFlight() != 0 {
		t.Errorf("in flight %d", n.InFlight())
	}
}

// TestEWMAShiftsTraffic simulates three backends on the injected clock:
// when one's latency rises tenfold it loses its traffic within a second,
// and it wins traffic back after it recovers.
func TestEWMAShiftsTraffic(t *testing.T) {
	clk := newClock()
	nodes, members := nodesFor(1, 1, 1)
	p := mustNew(t, NameEWMA, members, clk.opts(Options{}))
	latency := []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	// run simulates d of traffic at one request per millisecond, each held
	// open for 4 ms, and returns the shares.
	type req struct {
		i   int
		end int64
	}
	var open []req
	run := func(d time.Duration) []float64 {
		cnt := make([]float64, 3)
		for range int(d / time.Millisecond) {
			clk.Add(time.Millisecond)
			keep := open[:0]
			for _, r := range open {
				if r.end <= clk.Now() {
					nodes[r.i].End(clk.Now(), latency[r.i], false)
				} else {
					keep = append(keep, r)
				}
			}
			open = keep
			i := p.Pick(0, nil)
			nodes[i].Begin()
			open = append(open, req{i, clk.Now() + int64(4*time.Millisecond)})
			cnt[i]++
		}
		for i := range cnt {
			cnt[i] /= float64(d / time.Millisecond)
		}
		return cnt
	}
	if s := run(10 * time.Second); s[0] < 0.25 || s[1] < 0.25 || s[2] < 0.25 {
		t.Fatalf("equal backends: shares %.3f", s)
	}
	latency[0] = 100 * time.Millisecond
	run(100 * time.Millisecond) // the first slow responses arrive
	if s := run(5 * time.Second); s[0] > 0.02 {
		t.Errorf("slow backend still gets %.3f of traffic", s[0])
	} else {
		t.Logf("slow backend: shares %.3f", s)
	}
	latency[0] = 10 * time.Millisecond
	run(60 * time.Second)
	if s := run(10 * time.Second); s[0] < 0.2 {
		t.Errorf("recovered backend gets only %.3f of traffic", s[0])
	} else {
		t.Logf("recovered: shares %.3f", s)
	}
}

// TestEWMAUnmeasured: a node without an estimate competes on in-flight
// count alone; a failing node loses.
func TestEWMAUnmeasured(t *testing.T) {
	clk := newClock()
	nodes, members := nodesFor(1, 1)
	p := mustNew(t, NameEWMA, members, clk.opts(Options{}))
	nodes[0].Begin()
	nodes[0].End(clk.Now(), 5*time.Millisecond, false)
	nodes[0].Begin() // one in flight on the measured node
	if got := counts(p, 2, 1000, nil); got[1] != 1000 {
		t.Errorf("unmeasured idle node vs measured busy one: %v", got)
	}
	nodes[0].End(clk.Now(), 5*time.Millisecond, false)
	nodes[1].Begin()
	nodes[1].End(clk.Now(), 5*time.Millisecond, true) // fails: estimate 5ms, penalty 5ms
	nodes[1].Begin()
	nodes[1].End(clk.Now(), time.Millisecond, true)
	if got := counts(p, 2, 1000, nil); got[0] != 1000 {
		t.Errorf("failing node still picked: %v", got)
	}
	if d := nodes[0].decay.Load(); d != int64(DefaultEWMADecay) {
		t.Errorf("New did not store the decay on the nodes: %d", d)
	}
}

func TestExpNeg(t *testing.T) {
	for x := 0.0; x < 3; x += 1.0 / 1024 {
		if got, want := expNeg(x), math.Exp(-x); math.Abs(got-want) > 3e-9 {
			t.Fatalf("expNeg(%v) = %v, want %v", x, got, want)
		}
	}
}
