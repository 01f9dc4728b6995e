package ratelimit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestTake(t *testing.T) {
	// 100/s, burst 3: interval 10ms, tau 30ms.
	p := newParams(100, 3, time.Minute, 1)
	ms := int64(time.Millisecond)
	type step struct {
		at         int64 // ns
		ok         bool
		left, wait int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then empty", []step{
			{0, true, 2, 10 * ms},
			{0, true, 1, 10 * ms},
			{0, true, 0, 10 * ms},
			{0, false, 0, 10 * ms},
			{9 * ms, false, 0, 1 * ms},
			{10 * ms, true, 0, 10 * ms},
		}},
		{"partial refill reports time to the next token", []step{
			{0, true, 2, 10 * ms},
			{0, true, 1, 10 * ms},
			{0, true, 0, 10 * ms},
			{15 * ms, true, 0, 5 * ms}, // had 1.5 tokens, now 0.5
			{15 * ms, false, 0, 5 * ms},
			{20 * ms, true, 0, 10 * ms},
		}},
		{"refills no further than burst", []step{
			{0, true, 2, 10 * ms},
			{time.Hour.Nanoseconds(), true, 2, 10 * ms},
		}},
		{"clock going back does not mint tokens", []step{
			{50 * ms, true, 2, 10 * ms},
			{50 * ms, true, 1, 10 * ms},
			{50 * ms, true, 0, 10 * ms},
			{0, false, 0, 60 * ms},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tat int64
			for i, s := range tt.steps {
				ok, left, wait := p.take(&tat, s.at)
				if ok != s.ok || left != s.left || wait != s.wait {
					t.Fatalf("step %d at %v: got (%v, %d, %v), want (%v, %d, %v)", i, time.Duration(s.at),
						ok, left, time.Duration(wait), s.ok, s.left, time.Duration(s.wait))
				}
			}
		})
	}
}

// TestSustainedRate checks the exact count: a client that keeps its bucket
// empty, asking at irregular times, gets burst + floor(elapsed/interval)
// requests, for rates whose interval is and is not a whole number of
// nanoseconds.
func TestSustainedRate(t *testing.T) {
	for _, tt := range []struct {
		rps   float64
		burst int
	}{
		{100, 200}, {1, 2}, {0.5, 3}, {3, 5}, {7.3, 10}, {1e6, 100}, {1e9, 1000},
	} {
		t.Run(fmt.Sprintf("%v per s burst %d", tt.rps, tt.burst), func(t *testing.T) {
			p := newParams(tt.rps, tt.burst, time.Minute, 1)
			rng := rand.New(rand.NewPCG(1, 2))
			var tat, now, allowed int64
			horizon := 1000 * p.interval * int64(tt.burst) // ~1000 bucket refills
			for now < horizon {
				for {
					ok, _, _ := p.take(&tat, now)
					if !ok {
						break
					}
					allowed++
				}
				// Never wait long enough for the bucket to overflow, so
				// no token is lost to the cap.
				now += 1 + rng.Int64N((int64(tt.burst)-1)*p.interval)
				if now >= horizon {
					now = horizon
					for {
						ok, _, _ := p.take(&tat, now)
						if !ok {
							break
						}
						allowed++
					}
					break
				}
			}
			want := int64(tt.burst) + horizon/p.interval
			if allowed != want {
				t.Errorf("%v/s burst %d: %d allowed in %v, want %d", tt.rps, tt.burst, allowed, time.Duration(horizon), want)
			}
			// The interval is the configured one rounded to 1ns.
			if exact := 1e9 / tt.rps; math.Abs(float64(p.interval)-exact) > 0.5 {
				t.Errorf("interval %dns, want %vns rounded", p.interval, exact)
			}
		})
	}
}

// TestAgainstXTimeRate replays random request times against
// golang.org/x/time/rate, the reference token bucket, and expects the same
// decision for every request.
func TestAgainstXTimeRate(t *testing.T) {
	for _, tt := range []struct {
		rps   float64
		burst int
	}{
		{100, 1}, {100, 20}, {0.5, 2}, {1000, 50}, {8, 3}, {3, 4}, {7.3, 5},
	} {
		t.Run(fmt.Sprintf("%v per s burst %d", tt.rps, tt.burst), func(t *testing.T) {
			p := newParams(tt.rps, tt.burst, time.Minute, 1)
			ref := rate.NewLimiter(rate.Limit(tt.rps), tt.burst)
			rng := rand.New(rand.NewPCG(3, 4))
			var tat, now int64
			base := time.Unix(1e9, 0)
			ref.AllowN(base, 0) // start the reference's clock at base
			mismatches := 0
			for i := 0; i < 200_000; i++ {
				// Mostly bursts, sometimes long pauses.
				if rng.IntN(10) == 0 {
					now += rng.Int64N(int64(tt.burst+2) * p.interval)
				} else {
					now += rng.Int64N(p.interval / 2)
				}
				got, _, _ := p.take(&tat, now)
				want := ref.AllowN(base.Add(time.Duration(now)), 1)
				if got != want {
					mismatches++
				}
			}
			if mismatches != 0 {
				t.Errorf("%v/s burst %d: %d of 200000 decisions differ from x/time/rate", tt.rps, tt.burst, mismatches)
			}
		})
	}
}

func TestRescale(t *testing.T) {
	sec := int64(time.Second)
	now := 1000 * sec
	// tokens held under p at now, as a float, for reading failures.
	tokens := func(p *params, tat int64) float64 {
		d := min(max(tat-now, 0), p.tau)
		return float64(p.tau-d) / float64(p.interval)
	}
	tests := []struct {
		name             string
		fromRPS, toRPS   float64
		fromB, toB       int
		have, want       float64 // tokens before and after
		wantSameTATValue bool
	}{
		{"same limits keep the state", 10, 10, 20, 20, 3.5, 3.5, true},
		{"empty stays empty at a new rate", 10, 100, 20, 200, 0, 0, false},
		{"tokens kept when burst grows", 10, 10, 20, 40, 5, 5, false},
		{"tokens capped when burst shrinks", 10, 10, 20, 4, 15, 4, false},
		{"fractions kept across rates", 10, 1, 20, 20, 2.5, 2.5, false},
		{"full stays full", 10, 2, 20, 5, 20, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newParams(tt.fromRPS, tt.fromB, time.Minute, 1)
			q := newParams(tt.toRPS, tt.toB, time.Minute, 2)
			tat := now + p.tau - int64(tt.have*float64(p.interval))
			if tt.have == float64(tt.fromB) {
				tat = now - sec // full a while ago
			}
			got := rescale(&p, &q, tat, now)
			if tk := tokens(&q, got); tk != tt.want {
				t.Errorf("tokens after = %v, want %v", tk, tt.want)
			}
			if tt.wantSameTATValue && got != tat {
				t.Errorf("tat changed from %d to %d", tat, got)
			}
		})
	}
}
