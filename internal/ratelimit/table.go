package ratelimit

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
)

// Sharding: a table of maxClients keys has up to maxShards shards of at
// least minShardCap keys each. Fewer shards mean a truer LRU order (it is
// exact with one shard); more mean less lock contention between event loops.
const (
	maxShards   = 64
	minShardCap = 256
)

// table holds one token bucket per client key, at most max of them.
//
// Each shard owns a fixed array of entries, allocated once, linked into an
// LRU list, and an open-addressing hash index over them (linear probing,
// load factor at most 1/2, deletion by backward shift, so no tombstones).
// After newTable nothing allocates: a new key takes a free entry or evicts
// the shard's least recently used one. A key's shard and index slot come
// from a hash seeded at random per process, so no client can choose keys
// that pile into one shard or one probe chain.
//
// A table is safe for concurrent use; each shard has its own mutex. It may
// be shared by the Limiters of successive configurations.
type table struct {
	shards []shard
	shift  uint // shard of hash h is h >> shift
	seed   maphash.Seed
	max    int
}

// shard is one lock's worth of a table.
type shard struct {
	mu    sync.Mutex
	p     params    // limits the buckets are kept under
	cnt   *counters // this shard's slot in the shared counters
	slots []uint64  // hash<<32 | entry index+1; 0 is empty
	mask  uint32    // len(slots) - 1
	e     []entry   // len(e) is the shard's capacity
	used  int32     // e[:used] have been handed out
	free  int32     // first entry of the free list (through next), or -1
	head  int32     // most recently used entry, or -1
	tail  int32     // least recently used entry, or -1
	n     atomic.Int64
	// dirty lists the entries that allowed requests since the Store last
	// collected them (see Shared), each once (entry.pend's listed bit).
	// Its capacity is len(e), so appending never allocates; it is nil
	// while the table is not shared.
	dirty []int32
	_     [64]byte // keep the next shard's lock off this cache line
}

// entry is one client's bucket. It holds no pointers, so the garbage
// collector never scans the table.
type entry struct {
	k          key
	tat        int64  // the bucket (see params)
	prev, next int32  // LRU neighbours, -1 at the ends
	h          uint32 // low bits of the key's hash: home slot and tag
	pend       uint32 // when shared: allowed since the last Collect, and the listed bit
}

// newTable returns an empty table for max keys whose buckets start under p.
// cnts must have maxShards elements.
func newTable(max int, p params, seed maphash.Seed, cnts *[maxShards]counters) *table {
	n := 1
	for n*2 <= maxShards && max/(n*2) >= minShardCap {
		n *= 2
	}
	t := &table{shards: make([]shard, n), shift: 64 - uint(bits.TrailingZeros(uint(n))), seed: seed, max: max}
	for i := range t.shards {
		c := max / n
		if i < max%n {
			c++
		}
		ns := 2
		for ns < 2*c {
			ns *= 2
		}
		t.shards[i] = shard{p: p, cnt: &cnts[i], slots: make([]uint64, ns), mask: uint32(ns - 1),
			e: make([]entry, c), free: -1, head: -1, tail: -1}
	}
	return t
}

// take spends a token (cost tokens, see params.step) from k's bucket at
// now, creating the bucket (full) if k has none. If p is newer than the
// shard's limits the shard first switches to p, as of time born.
func (t *table) take(k key, p *params, born, now, cost int64) (ok bool, left, wait int64) {
	hash := maphash.Bytes(t.seed, k[:])
	s := &t.shards[hash>>t.shift]
	h := uint32(hash)
	s.mu.Lock()
	if p.gen > s.p.gen {
		s.adopt(p, born)
	}
	s.expire(now)
	i := s.find(k, h)
	if i < 0 {
		i = s.insert(k, h, now)
	} else {
		s.touch(i)
	}
	ok, left, wait = s.p.takeStep(&s.e[i].tat, now, s.p.step(cost))
	if ok {
		s.cnt.allowed.Add(1)
		if s.dirty != nil {
			s.mark(i)
		}
	} else {
		s.cnt.rejected.Add(1)
	}
	s.mu.Unlock()
	return ok, left, wait
}

// mark counts an allowed request of entry i for the Store.
func (s *shard) mark(i int32) {
	e := &s.e[i]
	if e.pend&listed == 0 {
		s.dirty = append(s.dirty, i)
		e.pend |= listed
	}
	if e.pend&^listed < listed-1 {
		e.pend++
	}
}

// share makes t count allowed requests for a Store, from now on.
func (t *table) share() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		if s.dirty == nil {
			s.dirty = make([]int32, 0, len(s.e))
		}
		s.mu.Unlock()
	}
}

// len is the number of keys held.
func (t *table) len() int {
	n := 0
	for i := range t.shards {
		n += int(t.shards[i].n.Load())
	}
	return n
}

// adopt switches the shard to newer limits p as of time at, keeping every
// bucket's tokens (see rescale). It runs once per shard per reload that
// changed the limits, and costs a few nanoseconds per key held.
func (s *shard) adopt(p *params, at int64) {
	if !s.p.sameLimits(p) {
		for i := s.head; i >= 0; i = s.e[i].next {
			s.e[i].tat = rescale(&s.p, p, s.e[i].tat, at)
		}
	}
	s.p = *p
}

// expire drops up to two least recently used keys whose buckets have been
// full for the idle TTL. Two per call is enough to drain idle keys faster
// than one request can add one.
func (s *shard) expire(now int64) {
	for range 2 {
		i := s.tail
		if i < 0 || !s.p.idle(s.e[i].tat, now) {
			return
		}
		s.remove(i)
		s.e[i].next = s.free
		s.free = i
		s.cnt.expired.Add(1)
	}
}

// find returns the entry of k, whose hash has low bits h, or -1.
func (s *shard) find(k key, h uint32) int32 {
	for pos := h & s.mask; ; pos = (pos + 1) & s.mask {
		v := s.slots[pos]
		if v == 0 {
			return -1
		}
		if uint32(v>>32) == h {
			if i := int32(uint32(v)) - 1; s.e[i].k == k {
				return i
			}
		}
	}
}

// slotOf returns the index slot pointing at entry i, which must be held.
func (s *shard) slotOf(i int32) uint32 {
	want := uint64(s.e[i].h)<<32 | uint64(i+1)
	pos := s.e[i].h & s.mask
	for s.slots[pos] != want {
		pos = (pos + 1) & s.mask
	}
	return pos
}

// insert adds k, absent, with a full bucket as of now and makes it the
// most recently used key. When the shard is full it evicts the least
// recently used key.
func (s *shard) insert(k key, h uint32, now int64) int32 {
	var i int32
	switch {
	case s.free >= 0:
		i = s.free
		s.free = s.e[i].next
	case int(s.used) < len(s.e):
		i = s.used
		s.used++
	default:
		i = s.tail
		s.remove(i)
		s.cnt.evicted.Add(1)
	}
	// A reused entry may still be in the dirty list: keep it listed (its
	// old key's count is lost) so that it is never listed twice.
	s.e[i] = entry{k: k, tat: now, h: h, pend: s.e[i].pend & listed}
	s.place(i)
	s.linkFront(i)
	return i
}

// place points the first empty slot of entry i's probe chain at it.
func (s *shard) place(i int32) {
	pos := s.e[i].h & s.mask
	for s.slots[pos] != 0 {
		pos = (pos + 1) & s.mask
	}
	s.slots[pos] = uint64(s.e[i].h)<<32 | uint64(i+1)
	s.n.Add(1)
}

// remove takes held entry i out of the index and the LRU list; the caller
// reuses or frees it.
func (s *shard) remove(i int32) {
	s.unslot(s.slotOf(i))
	s.unlink(i)
	s.n.Add(-1)
}

// unslot empties slot pos and moves later members of its probe run back,
// so that every key stays reachable from its home slot without tombstones.
func (s *shard) unslot(pos uint32) {
	for j := (pos + 1) & s.mask; s.slots[j] != 0; j = (j + 1) & s.mask {
		home := uint32(s.slots[j]>>32) & s.mask
		// The key at j may fill the hole at pos unless its home lies
		// cyclically in (pos, j].
		if (j-home)&s.mask >= (j-pos)&s.mask {
			s.slots[pos] = s.slots[j]
			pos = j
		}
	}
	s.slots[pos] = 0
}

// touch makes entry i the most recently used.
func (s *shard) touch(i int32) {
	if s.head != i {
		s.unlink(i)
		s.linkFront(i)
	}
}

func (s *shard) linkFront(i int32) {
	s.e[i].prev, s.e[i].next = -1, s.head
	if s.head >= 0 {
		s.e[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}

func (s *shard) linkBack(i int32) {
	s.e[i].prev, s.e[i].next = s.tail, -1
	if s.tail >= 0 {
		s.e[s.tail].next = i
	} else {
		s.head = i
	}
	s.tail = i
}

func (s *shard) unlink(i int32) {
	prev, next := s.e[i].prev, s.e[i].next
	if prev >= 0 {
		s.e[prev].next = next
	} else {
		s.head = next
	}
	if next >= 0 {
		s.e[next].prev = prev
	} else {
		s.tail = prev
	}
}

// carried is one bucket moved from an old table.
type carried struct {
	k   key
	tat int64
}

// migrate fills t, new and not yet shared, with the buckets of old that
// are not full, converted to limits p, most recently used first, as far as
// t has room. Recency is exact within an old shard; across old shards keys
// are interleaved by rank. old keeps working meanwhile; a request it
// decides after its shard was copied is not seen by t.
func (t *table) migrate(old *table, p *params, now int64) {
	lists := make([][]carried, len(old.shards))
	for si := range old.shards {
		s := &old.shards[si]
		s.mu.Lock()
		l := make([]carried, 0, s.n.Load())
		for i := s.head; i >= 0; i = s.e[i].next {
			if tat := rescale(&s.p, p, s.e[i].tat, now); tat > now {
				l = append(l, carried{s.e[i].k, tat})
			}
		}
		s.mu.Unlock()
		lists[si] = l
	}
	for rank := 0; ; rank++ {
		more := false
		for _, l := range lists {
			if rank >= len(l) {
				continue
			}
			more = true
			c := l[rank]
			hash := maphash.Bytes(t.seed, c.k[:])
			s := &t.shards[hash>>t.shift]
			if int(s.used) == len(s.e) {
				continue
			}
			i := s.used
			s.used++
			s.e[i] = entry{k: c.k, tat: c.tat, h: uint32(hash)}
			s.place(i)
			s.linkBack(i)
		}
		if !more {
			return
		}
	}
}
