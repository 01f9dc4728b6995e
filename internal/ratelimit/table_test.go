package ratelimit

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

func testTable(max int, p params) *table {
	return newTable(max, p, maphash.MakeSeed(), new([maxShards]counters))
}

func keyN(n uint64) key {
	var k key
	binary.BigEndian.PutUint64(k[8:], n)
	k[0] = 0x20 // a global unicast address
	return k
}

// keys returns the keys of s from most to least recently used.
func (s *shard) keys() []key {
	var ks []key
	for i := s.head; i >= 0; i = s.e[i].next {
		ks = append(ks, s.e[i].k)
	}
	return ks
}

func TestNewTableShape(t *testing.T) {
	tests := []struct {
		max, shards int
	}{
		{1, 1}, {10, 1}, {511, 1}, {512, 2}, {1000, 2}, {16383, 32}, {16384, 64}, {100_000, 64}, {10_000_000, 64},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			tb := testTable(tt.max, newParams(1, 1, time.Minute, 1))
			if len(tb.shards) != tt.shards {
				t.Errorf("%d shards, want %d", len(tb.shards), tt.shards)
			}
			total := 0
			for i := range tb.shards {
				s := &tb.shards[i]
				total += len(s.e)
				if len(s.slots) < 2*len(s.e) || len(s.slots)&(len(s.slots)-1) != 0 {
					t.Errorf("shard %d: %d slots for %d entries", i, len(s.slots), len(s.e))
				}
			}
			if total != tt.max {
				t.Errorf("capacity %d, want exactly %d", total, tt.max)
			}
		})
	}
}

func TestTableLRUEviction(t *testing.T) {
	p := newParams(1, 5, time.Hour, 1)
	tb := testTable(3, p)
	s := &tb.shards[0]
	a, b, c, d, e := keyN(1), keyN(2), keyN(3), keyN(4), keyN(5)
	now := int64(0)
	for _, k := range []key{a, b, c} {
		tb.take(k, &p, 0, now, 1)
	}
	tb.take(a, &p, 0, now, 1) // a is now the most recent; b the least
	tb.take(d, &p, 0, now, 1) // evicts b
	if got, want := s.keys(), []key{d, a, c}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after evicting: %v, want %v", got, want)
	}
	tb.take(e, &p, 0, now, 1) // evicts c
	if got, want := s.keys(), []key{e, d, a}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after evicting again: %v, want %v", got, want)
	}
	if ev := s.cnt.evicted.Load(); ev != 2 {
		t.Errorf("evicted = %d, want 2", ev)
	}
	// b comes back with a full bucket: 5 tokens, one spent now.
	ok, left, _ := tb.take(b, &p, 0, now, 1)
	if !ok || left != 4 {
		t.Errorf("returning key: ok=%v left=%d, want a fresh bucket (true, 4)", ok, left)
	}
	if tb.len() != 3 {
		t.Errorf("len = %d, want 3", tb.len())
	}
}

func TestTableIdleExpiry(t *testing.T) {
	sec := int64(time.Second)
	p := newParams(1, 2, 10*time.Second, 1) // full 2s after the last request
	tb := testTable(100, p)
	s := &tb.shards[0]
	tb.take(keyN(1), &p, 0, 0, 1)
	tb.take(keyN(2), &p, 0, 0, 1)
	tb.take(keyN(2), &p, 0, 0, 1) // key 2 is empty: full again at 2s

	// At 11s key 1 (full since 1s) has idled 10s, key 2 (full since 2s) not.
	tb.take(keyN(3), &p, 0, 11*sec, 1)
	if got := s.keys(); len(got) != 2 || got[0] != keyN(3) || got[1] != keyN(2) {
		t.Fatalf("keys at 11s: %v, want [3 2]", got)
	}
	// A key whose bucket is not yet full never expires, however idle.
	p2 := newParams(0.01, 2, time.Second, 1) // 100s per token
	tb2 := testTable(100, p2)
	tb2.take(keyN(1), &p2, 0, 0, 1)
	tb2.take(keyN(1), &p2, 0, 0, 1)
	tb2.take(keyN(2), &p2, 0, 150*sec, 1) // key 1 has 1.5 tokens: kept
	if n := tb2.len(); n != 2 {
		t.Errorf("drained key expired early: len %d, want 2", n)
	}
	tb2.take(keyN(2), &p2, 0, 210*sec, 1) // key 1 full at 200s, idle 10s >= 1s
	if n := tb2.len(); n != 1 {
		t.Errorf("idle full key kept: len %d, want 1", n)
	}
	if x := tb.shards[0].cnt.expired.Load() + tb2.shards[0].cnt.expired.Load(); x != 2 {
		t.Errorf("expired = %d, want 2", x)
	}
	// Freed entries are reused before the capacity grows.
	if s.used != 2 {
		t.Errorf("used = %d, want 2 (the expired entry reused)", s.used)
	}
}

// TestTableIndexRandomized drives one shard with random inserts, hits,
// evictions and expiries, some on colliding home slots, and checks it
// against a map after every step.
func TestTableIndexRandomized(t *testing.T) {
	for _, capacity := range []int{1, 2, 7, 64, 300} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			p := newParams(1000, 1, time.Nanosecond, 1)
			tb := testTable(capacity, p)
			s := &tb.shards[0]
			rng := rand.New(rand.NewPCG(5, uint64(capacity)))
			model := map[key]bool{}
			var now int64
			for step := 0; step < 20000; step++ {
				k := keyN(rng.Uint64N(uint64(3 * capacity)))
				if rng.IntN(20) == 0 {
					now += int64(time.Second) // everything idle: expiry kicks in
				}
				before := s.n.Load()
				tb.take(k, &p, 0, now, 1)
				model[k] = true
				// Rebuild the model from the LRU list and compare both ways.
				inList := map[key]bool{}
				for _, kk := range s.keys() {
					if inList[kk] {
						t.Fatalf("step %d: %v twice in the LRU list", step, kk)
					}
					inList[kk] = true
				}
				if len(inList) != int(s.n.Load()) || len(inList) > capacity {
					t.Fatalf("step %d: list %d, n %d, capacity %d", step, len(inList), s.n.Load(), capacity)
				}
				for kk := range model {
					h := uint32(maphash.Bytes(tb.seed, kk[:]))
					found := s.find(kk, h) >= 0
					if found != inList[kk] {
						t.Fatalf("step %d: find(%v) = %v, in list %v (n before %d)", step, kk, found, inList[kk], before)
					}
					if !found {
						delete(model, kk)
					}
				}
				used := 0
				for _, v := range s.slots {
					if v != 0 {
						used++
					}
				}
				if used != len(inList) {
					t.Fatalf("step %d: %d slots used for %d keys", step, used, len(inList))
				}
			}
		})
	}
}

// TestTableMemoryBound feeds a million distinct keys (an attacker rotating
// source addresses) through a table of the default size, 100000, and
// checks that the table stays at its bound and the heap does not grow.
func TestTableMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const max = DefaultMaxClients
	c := &clock{}
	l := newLimiter(t, Config{Enabled: true, RequestsPerSec: 1, Burst: 1, PerClient: true}, nil, c)
	var r Request
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	addr := func(i uint32) {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 0x0a000000+i)
		r.Peer = netip.AddrFrom4(b)
		l.Decide(&r)
	}
	for i := uint32(0); i < max; i++ { // fill the table
		addr(i)
	}
	before := heap()
	for i := uint32(max); i < 1_000_000; i++ {
		addr(i)
		if i%100_000 == 0 {
			c.advance(time.Millisecond)
		}
	}
	after := heap()
	st := l.Stats()
	if st.Keys != max {
		t.Errorf("Keys = %d after 1M distinct clients, want the bound %d", st.Keys, max)
	}
	if st.Evicted != 1_000_000-max {
		t.Errorf("Evicted = %d, want %d", st.Evicted, 1_000_000-max)
	}
	// Generous: the table allocates nothing after New; allow 256 KiB of
	// runtime noise.
	if after > before+256<<10 {
		t.Errorf("heap grew from %d to %d bytes", before, after)
	}
	t.Logf("heap before %d KiB, after %d KiB, table %d KiB for %d keys", before>>10, after>>10, tableBytes(l.table)>>10, max)
}

// tableBytes is the memory a table holds.
func tableBytes(tb *table) int {
	n := 0
	for i := range tb.shards {
		n += len(tb.shards[i].e)*int(unsafe.Sizeof(entry{})) + len(tb.shards[i].slots)*8
	}
	return n + len(tb.shards)*int(unsafe.Sizeof(shard{}))
}
