package ratelimit

import (
	"hash/maphash"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a manual clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *clock) now() time.Time          { return epoch.Add(time.Duration(c.ns.Load())) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newLimiter(t testing.TB, cfg Config, prev *Limiter, c *clock) *Limiter {
	t.Helper()
	l, err := New(cfg, prev, c.now)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return l
}

// req is a Request from peer for path.
func req(peer string, path string) *Request {
	return &Request{Peer: netip.MustParseAddr(peer), Path: []byte(path)}
}

// drain spends every token of r's bucket at the current time and returns
// how many it took.
func drain(l *Limiter, r *Request) int {
	n := 0
	for l.Decide(r).Allowed {
		n++
		if n > 1e7 {
			panic("bucket never empties")
		}
	}
	return n
}

func perClient(rps float64, burst int) Config {
	return Config{Enabled: true, RequestsPerSec: rps, Burst: burst, PerClient: true}
}

func global(rps float64, burst int) Config {
	return Config{Enabled: true, RequestsPerSec: rps, Burst: burst}
}

func testSeeds() [2]maphash.Seed { return [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()} }
