package ratelimit

import (
	"crypto/sha256"
	"sync/atomic"
	"time"
)

// Store shares the buckets of Limiters between ConnX instances, so that a
// limit holds for a fleet rather than for each instance. Every instance
// still decides each request locally, from its own copy of the bucket;
// the Store reconciles the copies in the background: it takes the counts
// of requests each instance allowed (Shared.Collect), adds them to a
// shared bucket, and hands the shared bucket's state back (Shared.Apply).
// internal/redisync implements it over Redis.
type Store interface {
	// Join starts sharing s, and must not block. The Store must hold s
	// only weakly (weak.Pointer): s lives as long as a Limiter uses it,
	// and a Store drops it once it is garbage or Retired. Several Shared
	// values, of different Limiters (Config.StoreKey), may share one
	// Store.
	Join(s *Shared)
}

// Shared links one set of buckets (a Limiter's global bucket, or its
// client table) to a Store. Limiters built by New from one another keep
// their Shared as long as they keep their buckets and Store.
//
// Its methods are for the Store, are safe for concurrent use, and are
// called from the Store's goroutine, never from an event loop: Collect and
// Apply take each shard's lock once per call.
type Shared struct {
	name    string
	store   Store
	global  *bucket // one of these
	table   *table
	st      *state
	now     func() time.Time
	cost    atomic.Int64 // tokens per request: 1, or the fleet's size while the Store is unreachable
	retired atomic.Bool
}

// SyncItem is one bucket's news for the Store: filled by Collect, its
// Deficit set by the Store, and handed back to Apply.
type SyncItem struct {
	// Global is set for a Limiter's one global bucket; Key is then zero.
	Global bool
	// Key is the client's key: an address in 16-byte form, IPv6 masked
	// to the configured prefix, or 0xff and 120 bits of SHA-256 of a
	// header value. The same client has the same Key on every instance.
	Key [16]byte
	// Count is how many requests this instance allowed from the bucket
	// since the previous Collect. It may be 0 (a global bucket is always
	// collected, so that its copy stays fresh).
	Count int64
	// Interval is the bucket's time per token, the inverse of the rate.
	Interval time.Duration
	// Burst is the bucket's size in tokens.
	Burst int64
	// Deficit is set by the Store: how far the shared bucket is from full
	// (the time it needs to refill), after the Count of every instance
	// was added. It may exceed Burst×Interval: the fleet then allowed
	// more than the bucket held, and the debt is paid back before any
	// instance allows more. Zero or negative is a full bucket.
	Deficit time.Duration

	shard int32  // the table shard holding Key
	h     uint32 // Key's hash in that shard
}

// Name is the Limiter's Config.StoreKey: the Store keeps the buckets of
// Limiters with different names apart.
func (s *Shared) Name() string { return s.name }

// Retired reports whether s is no longer used by the Limiter that made it
// (a reload gave its buckets another Shared, or no Store): the Store
// should drop it.
func (s *Shared) Retired() bool { return s.retired.Load() }

// SetShare sets how many instances share the limit while the Store cannot
// be reached: with n > 1 each request costs n tokens, so this instance
// alone refills at 1/n of the rate and holds 1/n of the burst (at least
// one request). n <= 1 is the whole limit, as when the Store is reachable
// and reconciling. It takes effect at the next request.
func (s *Shared) SetShare(n int) {
	s.cost.Store(int64(max(n, 1)))
}

// Collect appends to dst one item per bucket that allowed requests since
// the previous Collect (for a global bucket: always one item), with their
// counts, and resets the counts. It allocates only to grow dst.
func (s *Shared) Collect(dst []SyncItem) []SyncItem {
	if b := s.global; b != nil {
		b.mu.Lock()
		dst = append(dst, SyncItem{Global: true, Count: b.pend, Interval: time.Duration(b.p.interval), Burst: b.p.burst})
		b.pend = 0
		b.mu.Unlock()
		return dst
	}
	t := s.table
	for si := range t.shards {
		sh := &t.shards[si]
		sh.mu.Lock()
		for _, i := range sh.dirty {
			e := &sh.e[i]
			n := e.pend &^ listed
			e.pend = 0
			if n > 0 {
				dst = append(dst, SyncItem{Key: e.k, Count: int64(n), Interval: time.Duration(sh.p.interval),
					Burst: sh.p.burst, shard: int32(si), h: e.h})
			}
		}
		sh.dirty = sh.dirty[:0]
		sh.mu.Unlock()
	}
	return dst
}

// Apply sets this instance's copy of each bucket in items, which a
// Collect of s returned and the Store gave a Deficit, to the shared
// bucket's state plus the requests allowed here since that Collect. A
// client whose bucket was dropped meanwhile is skipped.
func (s *Shared) Apply(items []SyncItem) {
	now := int64(s.now().Sub(s.st.base))
	if b := s.global; b != nil {
		for i := range items {
			b.mu.Lock()
			b.tat = now + max(int64(items[i].Deficit), 0) + b.pend*b.p.interval
			b.mu.Unlock()
		}
		return
	}
	t := s.table
	var sh *shard
	for i := range items {
		it := &items[i]
		if int(it.shard) >= len(t.shards) {
			continue
		}
		if next := &t.shards[it.shard]; next != sh {
			if sh != nil {
				sh.mu.Unlock()
			}
			sh = next
			sh.mu.Lock()
		}
		if j := sh.find(key(it.Key), it.h); j >= 0 {
			e := &sh.e[j]
			e.tat = now + max(int64(it.Deficit), 0) + int64(e.pend&^listed)*sh.p.interval
		}
	}
	if sh != nil {
		sh.mu.Unlock()
	}
}

// listed marks an entry's pend as being in its shard's dirty list; the
// other bits count the requests it allowed since the last Collect.
const listed = 1 << 31

// fleetHeaderKey is the key of header value v when buckets are shared: it
// must be the same on every instance, so it cannot use the process's
// random seeds. SHA-256 keeps it as hard to aim at as they do.
func fleetHeaderKey(v []byte) key {
	var k key
	sum := sha256.Sum256(v)
	copy(k[1:], sum[:15])
	k[0] = 0xff
	return k
}
