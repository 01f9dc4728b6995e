package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The benchmarks use the real clock (time.Now), as the proxy does. Run
// with -cpu 1,2 for one and two goroutines in the Parallel variants.

func benchLimiter(b *testing.B, cfg Config) *Limiter {
	l, err := New(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// A limit that allows nearly everything, so the allowed path is measured.
var open = Config{Enabled: true, RequestsPerSec: 1e9, Burst: 1 << 20}

func BenchmarkDecideGlobal(b *testing.B) {
	l := benchLimiter(b, open)
	r := req("192.0.2.1", "/api")
	b.ReportAllocs()
	for b.Loop() {
		l.Decide(r)
	}
}

func BenchmarkDecideGlobalParallel(b *testing.B) {
	l := benchLimiter(b, open)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := req("192.0.2.1", "/api")
		for pb.Next() {
			l.Decide(r)
		}
	})
}

// BenchmarkDecidePerClient is an existing key: lookup, LRU touch, take.
func BenchmarkDecidePerClient(b *testing.B) {
	cfg := open
	cfg.PerClient = true
	l := benchLimiter(b, cfg)
	r := req("192.0.2.1", "/api")
	b.ReportAllocs()
	for b.Loop() {
		l.Decide(r)
	}
}

// BenchmarkDecidePerClientParallel gives each goroutine its own 256
// clients, as event loops serving different connections would have.
func BenchmarkDecidePerClientParallel(b *testing.B) {
	cfg := open
	cfg.PerClient = true
	l := benchLimiter(b, cfg)
	var g atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := byte(g.Add(1))
		r := req("192.0.2.1", "/api")
		for i := 0; pb.Next(); i++ {
			r.Peer = netip.AddrFrom4([4]byte{10, id, 0, byte(i)})
			l.Decide(r)
		}
	})
}

// BenchmarkDecidePerClientHotKey has every goroutine on one client: the
// worst case for its shard's lock.
func BenchmarkDecidePerClientHotKeyParallel(b *testing.B) {
	cfg := open
	cfg.PerClient = true
	l := benchLimiter(b, cfg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := req("192.0.2.1", "/api")
		for pb.Next() {
			l.Decide(r)
		}
	})
}

// BenchmarkDecideNewKeyEvict is an attacker rotating addresses: every
// request is a new key in a full table, so it evicts the LRU one.
func BenchmarkDecideNewKeyEvict(b *testing.B) {
	cfg := open
	cfg.PerClient, cfg.MaxClients = true, 10_000
	l := benchLimiter(b, cfg)
	r := req("192.0.2.1", "/api")
	b.ReportAllocs()
	for i := uint32(0); b.Loop(); i++ {
		r.Peer = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Decide(r)
	}
	if st := l.Stats(); b.N > 20_000 && st.Evicted == 0 {
		b.Fatal("nothing evicted")
	}
}

func BenchmarkDecideNewKeyEvictParallel(b *testing.B) {
	cfg := open
	cfg.PerClient, cfg.MaxClients = true, 10_000
	l := benchLimiter(b, cfg)
	var g atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := byte(g.Add(1))
		r := req("192.0.2.1", "/api")
		for i := uint32(0); pb.Next(); i++ {
			r.Peer = netip.AddrFrom4([4]byte{id, byte(i >> 16), byte(i >> 8), byte(i)})
			l.Decide(r)
		}
	})
}

// BenchmarkDecideTrustedProxy adds the X-Forwarded-For walk (three hops).
func BenchmarkDecideTrustedProxy(b *testing.B) {
	cfg := open
	cfg.PerClient, cfg.TrustedProxies = true, prefixes("10.0.0.0/8")
	l := benchLimiter(b, cfg)
	var r Request
	xff := []byte("203.0.113.50, 198.51.100.7, 10.1.2.3")
	peer := netip.MustParseAddr("10.0.0.1")
	path := []byte("/api")
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(peer, path)
		l.Collect(&r, []byte("X-Forwarded-For"), xff)
		l.Decide(&r)
	}
}

func BenchmarkAppendTooMany(b *testing.B) {
	c := &clock{}
	l, _ := New(perClient(100, 1), nil, c.now)
	r := req("192.0.2.1", "/")
	l.Decide(r)
	d := l.Decide(r)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = d.AppendTooMany(buf[:0], true, false)
	}
	b.SetBytes(int64(len(buf)))
}

// The baselines the design was measured against (docs/ratelimit.md).

func BenchmarkBaselineTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}

// BenchmarkBaselineXTimeRate is what one global Decide would cost with
// golang.org/x/time/rate: AllowN, then TokensAt for the RateLimit fields.
func BenchmarkBaselineXTimeRate(b *testing.B) {
	lim := rate.NewLimiter(1e9, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		lim.AllowN(now, 1)
		_ = lim.TokensAt(now)
	}
}

func BenchmarkBaselineXTimeRateParallel(b *testing.B) {
	lim := rate.NewLimiter(1e9, 1<<20)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now()
			lim.AllowN(now, 1)
			_ = lim.TokensAt(now)
		}
	})
}

// Without the clock: the bucket alone, against x/time/rate's AllowN and
// TokensAt, at a fixed instant (both allow everything).

func BenchmarkBucketTake(b *testing.B) {
	p := newParams(1e9, 1<<20, time.Minute, 1)
	bk := &bucket{p: p}
	var c counters
	for i := int64(0); b.Loop(); i++ {
		bk.take(&p, 0, &c, i, 1)
	}
}

func BenchmarkBucketTakeParallel(b *testing.B) {
	p := newParams(1e9, 1<<20, time.Minute, 1)
	bk := &bucket{p: p}
	var c counters
	var now atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bk.take(&p, 0, &c, now.Add(1), 1)
		}
	})
}

func BenchmarkBaselineXTimeRateNoClock(b *testing.B) {
	lim := rate.NewLimiter(1e9, 1<<20)
	t0 := time.Now()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i))
		lim.AllowN(now, 1)
		_ = lim.TokensAt(now)
	}
}

func BenchmarkBaselineXTimeRateNoClockParallel(b *testing.B) {
	lim := rate.NewLimiter(1e9, 1<<20)
	t0 := time.Now()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := t0.Add(time.Duration(n.Add(1)))
			lim.AllowN(now, 1)
			_ = lim.TokensAt(now)
		}
	})
}

// The Shared variants have a Store (one that never collects): Decide then
// also reads the fleet share and counts the request for the next round.

func BenchmarkDecideGlobalShared(b *testing.B) {
	cfg := open
	cfg.Store = &fakeStore{}
	l := benchLimiter(b, cfg)
	r := req("192.0.2.1", "/api")
	b.ReportAllocs()
	for b.Loop() {
		l.Decide(r)
	}
}

func BenchmarkDecidePerClientShared(b *testing.B) {
	cfg := open
	cfg.PerClient, cfg.Store = true, &fakeStore{}
	l := benchLimiter(b, cfg)
	r := req("192.0.2.1", "/api")
	b.ReportAllocs()
	for b.Loop() {
		l.Decide(r)
	}
}

// BenchmarkDecideHeaderKeyShared hashes the key with SHA-256 (the same on
// every instance) instead of the process's seeded hash.
func BenchmarkDecideHeaderKeyShared(b *testing.B) {
	for _, shared := range []bool{false, true} {
		name := "local"
		cfg := open
		cfg.PerClient, cfg.Key = true, "header:X-Key"
		if shared {
			name, cfg.Store = "shared", &fakeStore{}
		}
		b.Run(name, func(b *testing.B) {
			l := benchLimiter(b, cfg)
			r := req("192.0.2.1", "/api")
			r.Key = []byte("0123456789abcdef0123456789abcdef")
			b.ReportAllocs()
			for b.Loop() {
				l.Decide(r)
			}
		})
	}
}
