package balancer

import (
	"math"
	"sync"
	"testing"
	"time"
)

// TestNodeLatencyEstimate checks peak-EWMA arithmetic on one node.
func TestNodeLatencyEstimate(t *testing.T) {
	const tau = 10 * time.Second
	ms := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	t0 := int64(1000 * time.Second)
	steps := []struct {
		at      time.Duration // after t0
		latency time.Duration
		failed  bool
		want    time.Duration
	}{
		{0, ms(10), false, ms(10)},                                                   // first sample taken as is
		{time.Second, ms(50), false, ms(50)},                                         // peak: at once
		{2 * time.Second, ms(10), false, ms(10 + 40*math.Exp(-0.1))},                 // decays in: w = e^-0.1
		{2 * time.Second, ms(1), false, ms(10 + 40*math.Exp(-0.1))},                  // no time passed: no move
		{12 * time.Second, ms(1), true, 2 * ms((10+40*math.Exp(-0.1))*math.Exp(-1))}, // failure doubles the decayed estimate
		{200 * time.Second, -1, false, 2 * ms((10+40*math.Exp(-0.1))*math.Exp(-1))},  // negative: no sample
	}
	var n Node
	n.decay.Store(int64(tau))
	for k, s := range steps {
		n.Begin()
		n.End(t0+int64(s.at), s.latency, s.failed)
		got := n.Latency()
		if math.Abs(float64(got-s.want)) > float64(s.want)*1e-3 {
			t.Errorf("step %d: estimate %v, want %v", k, got, s.want)
		}
	}
	if n.InFlight() != 0 {
		t.Errorf("in flight %d", n.InFlight())
	}
	// Pick-time decay towards 0.
	est, ok := n.rttAt(stampOf(t0+int64(22*time.Second)), stampUnit/float64(tau))
	if want := float64(n.Latency()) * math.Exp(-1); !ok || math.Abs(est-want) > want*1e-3 {
		t.Errorf("decayed estimate %v, want %v", est, want)
	}
	var fresh Node
	if _, ok := fresh.rttAt(0, 1); ok || fresh.Latency() != 0 {
		t.Error("fresh node has an estimate")
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
	nodes[1].End(clk.Now(), 5*time.Millisecond, true) // fails: estimate 5ms, then doubled on next failure
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
