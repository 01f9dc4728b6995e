package ratelimit

import (
	"math"
	"math/bits"
	"time"
)

// params are the limits one bucket is run with, in integer nanoseconds.
//
// A bucket holds up to burst tokens and gains one every interval. It is
// stored as a single int64, its theoretical arrival time (tat, GCRA, ITU-T
// I.371): the instant at which the bucket will be full again. At time now
// the bucket is short of full by deficit = max(tat-now, 0) nanoseconds,
// that is it holds burst - deficit/interval tokens. All arithmetic is exact
// integer arithmetic; the only rounding anywhere is interval =
// round(1s / requestsPerSec), done once per configuration.
//
// params are immutable once built; buckets copy them.
type params struct {
	gen      uint64 // order of creation; a bucket adopts newer params only
	interval int64  // nanoseconds per token, >= 1
	burst    int64  // bucket size in tokens, >= 1
	tau      int64  // burst * interval: the deficit of an empty bucket
	ttl      int64  // idle time, in ns, after which a full bucket may be dropped
}

// newParams converts a validated rate and burst. Validation bounds
// burst/rps by 1e9 seconds, so tau stays below 2^60 ns and tat = now + tau
// cannot overflow within centuries of uptime.
func newParams(rps float64, burst int, ttl time.Duration, gen uint64) params {
	iv := int64(math.Round(float64(time.Second) / rps))
	iv = max(iv, 1)
	return params{gen: gen, interval: iv, burst: int64(burst), tau: int64(burst) * iv, ttl: int64(ttl)}
}

// sameLimits reports whether p and q count tokens identically.
func (p *params) sameLimits(q *params) bool {
	return p.interval == q.interval && p.burst == q.burst
}

// take spends one token from the bucket whose state is *tat, at time now.
// When the bucket has a token it advances *tat and returns ok, the whole
// tokens left and the time until the next token arrives. Otherwise *tat is
// unchanged and wait is the time until a token arrives.
func (p *params) take(tat *int64, now int64) (ok bool, left, wait int64) {
	return p.takeStep(tat, now, p.interval)
}

// takeStep is take for a request that costs step nanoseconds of the
// bucket instead of one interval: a Limiter whose Store is unreachable
// charges each request the fleet's size in tokens (see Shared.SetShare), so
// that the bucket refills at its share of the rate and holds its share of
// the burst. step must be at least 1 and at most tau. left counts whole
// requests of this step; with step == interval it is exactly take's.
func (p *params) takeStep(tat *int64, now, step int64) (ok bool, left, wait int64) {
	t := max(*tat, now) + step
	d := t - now // deficit after spending the token
	if d > p.tau {
		return false, 0, d - p.tau
	}
	*tat = t
	// One division: the room left, tau-d, holds (tau-d)/step more
	// requests, and the next one fits once the remainder has grown to a
	// whole step (a whole step away when there is no remainder). With
	// step == interval this is burst - ceil(d/interval) tokens.
	free := p.tau - d
	return true, free / step, step - free%step
}

// step is what one request costs when it counts for cost requests,
// capped at the whole bucket so that a burst smaller than the fleet still
// lets one request through per refill.
func (p *params) step(cost int64) int64 {
	if cost <= 1 {
		return p.interval
	}
	if cost > p.tau/p.interval {
		return p.tau
	}
	return cost * p.interval
}

// idle reports whether the bucket has been full for at least ttl at now:
// dropping it loses nothing, since a fresh bucket starts full.
func (p *params) idle(tat, now int64) bool {
	return now-tat >= p.ttl
}

// rescale converts a bucket's state from limits p to limits q at time now,
// keeping the tokens it holds (capped at q's burst): a client that had used
// its burst stays limited, one that had not keeps what it had.
func rescale(p, q *params, tat, now int64) int64 {
	d := tat - now
	if d <= 0 || p.sameLimits(q) {
		return tat // full under any limits, or nothing to convert
	}
	d = min(d, p.tau)
	// have is the tokens held, in units of 1/p.interval token, capped at
	// q.burst tokens; scaled to q's units it is have*q.interval/p.interval.
	have := min(p.tau-d, q.burst*p.interval)
	hi, lo := bits.Mul64(uint64(have), uint64(q.interval))
	scaled, _ := bits.Div64(hi, lo, uint64(p.interval)) // <= q.tau, fits
	return now + q.tau - int64(scaled)
}
