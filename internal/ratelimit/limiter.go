package ratelimit

import (
	"bytes"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limiter decides whether requests may pass, by token buckets: one for all
// traffic, or one per client in a table of bounded size.
//
// A Limiter is built by New for one configuration and is immutable
// afterwards, apart from its buckets. All methods are safe for concurrent
// use by any number of goroutines, and Decide never allocates. A nil
// *Limiter, like the zero Limiter, is disabled: it allows everything.
//
// Buckets and counters outlive a Limiter: New(cfg, prev) hands them on to
// the Limiter of the next configuration, so a reload neither refills every
// client's burst nor resets Stats. Both Limiters may run side by side while
// the proxy switches over.
type Limiter struct {
	enabled bool
	kind    keyKind
	st      *state
	p       params // limits of this configuration
	born    int64  // clock() when built: when buckets switch to p
	pol     *policy

	global *bucket // kind == keyGlobal
	table  *table  // otherwise
	sh     *Shared // nil unless Config.Store is set

	header   string // lower-case key header name, for keyHeader
	v6bits   int
	trusted  []netip.Prefix
	exact    map[string]struct{} // exempt paths
	prefixes [][]byte            // exempt path prefixes, "*" removed
	now      func() time.Time
}

// state is what every Limiter in a chain of reloads shares.
type state struct {
	base   time.Time    // time zero of all buckets
	seed   maphash.Seed // table hashing
	k1, k2 maphash.Seed // header-value keys; fixed so keys survive reloads
	gen    atomic.Uint64
	counts [maxShards]counters
}

// counters are one shard's share of Stats; summed by Stats. Written with
// atomic adds, mostly under the shard's lock, so that the cache line is
// already owned by the writer.
type counters struct {
	allowed, rejected, exempt, evicted, expired atomic.Uint64
	_                                           [24]byte // fill a 64-byte line
}

// bucket is the global bucket: one tat behind one lock.
type bucket struct {
	mu     sync.Mutex
	p      params
	tat    int64
	pend   int64 // allowed since the Store last collected (see Shared)
	shared bool  // count pend
}

// Request is what Decide needs to know about one request. The proxy keeps
// one per event loop and refills it for each request with Reset and
// Collect; the zero Request is ready for Reset. A Request is not safe for
// concurrent use.
//
// The slices are only read during Decide and are not kept; they may point
// into the connection's read buffer.
type Request struct {
	// Peer is the TCP peer address.
	Peer netip.Addr
	// ForwardedFor holds the X-Forwarded-For field lines in the order
	// received. It is consulted only when Peer is a trusted proxy.
	ForwardedFor [][]byte
	// Key is the value of the configured key header ("header:Name"), nil
	// when absent.
	Key []byte
	// Path is the request path; a query string is ignored.
	Path []byte
}

// Reset prepares r for the next request: it sets Peer and Path, clears
// Key, and empties ForwardedFor keeping its backing array, so refilling it
// does not allocate once it has grown to the largest count of lines seen.
func (r *Request) Reset(peer netip.Addr, path []byte) {
	clear(r.ForwardedFor) // drop references into the old buffer
	*r = Request{Peer: peer, Path: path, ForwardedFor: r.ForwardedFor[:0]}
}

// Collect offers one request header to r, for the proxy's loop over the
// request's fields: it appends X-Forwarded-For lines to r.ForwardedFor if
// l will consult them, and sets r.Key from the first field named as the
// configured key header. Names compare case-insensitively.
func (l *Limiter) Collect(r *Request, name, value []byte) {
	if l == nil || !l.enabled || l.kind == keyGlobal {
		return
	}
	if l.kind == keyHeader && r.Key == nil && asciiEqualFold(name, l.header) {
		r.Key = value
		return
	}
	if len(l.trusted) > 0 && asciiEqualFold(name, "x-forwarded-for") {
		r.ForwardedFor = append(r.ForwardedFor, value)
	}
}

// New returns the Limiter for cfg, or an error listing every invalid field
// (see Config.Validate) and leaving prev untouched.
//
// prev is the Limiter of the configuration being replaced, or nil. Its
// counters always carry over. Its buckets carry over when both
// configurations limit the same things: globally, or per client keyed the
// same way (Key and IPv6Prefix). Each bucket then keeps the tokens it has,
// capped at the new Burst, and refills at the new rate from then on, so
// unchanged limits change nothing. The conversion is done lazily, per
// shard, at its first request decided by the new Limiter, as of the time
// New ran; until then prev keeps its own limits, and if the new Limiter is
// never used prev is never affected. A
// changed MaxClients copies the most recently used buckets into a new
// table. Other changes start with full buckets.
//
// now is the clock, time.Now when nil; it must be the clock prev was built
// with.
func New(cfg Config, prev *Limiter, now func() time.Time) (*Limiter, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	st := &state{}
	if prev != nil {
		st = prev.st
	} else {
		st.base, st.seed, st.k1, st.k2 = now(), maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed()
	}
	l := &Limiter{enabled: cfg.Enabled, st: st, now: now}
	if !cfg.Enabled {
		return l, nil
	}
	l.p = newParams(cfg.RequestsPerSec, cfg.Burst, cfg.IdleTTL, st.gen.Add(1))
	l.born = l.clock()
	l.v6bits = cfg.IPv6Prefix
	for _, p := range cfg.TrustedProxies {
		if p.Addr().Is4In6() && p.Bits() >= 96 { // peers are compared unmapped
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		l.trusted = append(l.trusted, p.Masked())
	}
	switch name, isHeader := strings.CutPrefix(cfg.Key, "header:"); {
	case !cfg.PerClient:
		l.kind = keyGlobal
	case isHeader:
		l.kind, l.header = keyHeader, strings.ToLower(name)
	default:
		l.kind = keyClientIP
	}
	for _, e := range cfg.Exempt {
		if p, ok := strings.CutSuffix(e, "*"); ok {
			l.prefixes = append(l.prefixes, []byte(p))
		} else {
			if l.exact == nil {
				l.exact = make(map[string]struct{})
			}
			l.exact[e] = struct{}{}
		}
	}
	l.pol = newPolicy(l.kind, cfg.RequestsPerSec, cfg.Burst)

	// Header keys are hashed differently when shared (fleetHeaderKey), so
	// a table keyed by header values carries over only if that does not
	// change.
	carry := prev != nil && prev.enabled && prev.kind == l.kind &&
		(l.kind == keyGlobal || prev.header == l.header && prev.v6bits == l.v6bits) &&
		(l.kind != keyHeader || (prev.sh != nil) == (cfg.Store != nil))
	switch {
	case l.kind == keyGlobal && carry:
		l.global = prev.global // adopts l.p at its first use by l
	case l.kind == keyGlobal:
		l.global = &bucket{p: l.p, tat: l.born}
	case carry && prev.table.max == cfg.MaxClients:
		l.table = prev.table
	default:
		l.table = newTable(cfg.MaxClients, l.p, st.seed, &st.counts)
		if carry {
			l.table.migrate(prev.table, &l.p, l.born)
		}
	}
	l.share(cfg, prev)
	return l, nil
}

// share links l's buckets to cfg.Store: with the Shared of prev when prev
// had the same buckets, Store and StoreKey, else with a new one that
// joins the Store. A Shared of prev over the same buckets that l does not
// keep is retired, so that no two Stores collect the same counts.
func (l *Limiter) share(cfg Config, prev *Limiter) {
	var old *Shared
	if prev != nil && prev.sh != nil && prev.sh.global == l.global && prev.sh.table == l.table {
		old = prev.sh
	}
	if cfg.Store == nil {
		if old != nil {
			old.retired.Store(true)
		}
		return
	}
	if old != nil && old.store == cfg.Store && old.name == cfg.StoreKey {
		l.sh = old
		return
	}
	if l.global != nil {
		l.global.mu.Lock()
		l.global.shared = true
		l.global.mu.Unlock()
	} else {
		l.table.share()
	}
	l.sh = &Shared{name: cfg.StoreKey, store: cfg.Store, global: l.global, table: l.table, st: l.st, now: l.now}
	l.sh.cost.Store(1)
	if old != nil {
		old.retired.Store(true)
	}
	cfg.Store.Join(l.sh)
}

// Decide spends a token for request r and reports whether it may pass.
// Requests to exempt paths, and all requests when l is disabled, pass
// without touching a bucket and their Decision has Limit 0.
func (l *Limiter) Decide(r *Request) Decision {
	if l == nil || !l.enabled {
		return Decision{Allowed: true}
	}
	if l.exempt(r.Path) {
		b := r.Peer.As16()
		l.st.counts[b[15]%maxShards].exempt.Add(1)
		return Decision{Allowed: true}
	}
	now := l.clock()
	cost := int64(1)
	if l.sh != nil {
		cost = l.sh.cost.Load()
	}
	var ok bool
	var left, wait int64
	if l.kind == keyGlobal {
		ok, left, wait = l.global.take(&l.p, l.born, &l.st.counts[0], now, cost)
	} else {
		ok, left, wait = l.table.take(l.key(r), &l.p, l.born, now, cost)
	}
	d := Decision{Allowed: ok, Limit: int(l.p.burst), Remaining: int(left), Reset: time.Duration(wait), pol: l.pol}
	if !ok {
		d.RetryAfter = d.Reset
	}
	return d
}

// key is r's table key.
func (l *Limiter) key(r *Request) key {
	if l.kind == keyHeader && len(r.Key) > 0 {
		if l.sh != nil {
			return fleetHeaderKey(r.Key)
		}
		return headerKey(r.Key, l.st.k1, l.st.k2)
	}
	return addrKey(clientAddr(r.Peer, r.ForwardedFor, l.trusted), l.v6bits)
}

// take spends a token (cost tokens, see params.step) from the global
// bucket at now, after switching it to p, as of born, if p is newer than
// its limits.
func (b *bucket) take(p *params, born int64, c *counters, now, cost int64) (ok bool, left, wait int64) {
	b.mu.Lock()
	if p.gen > b.p.gen {
		b.tat = rescale(&b.p, p, b.tat, born)
		b.p = *p
	}
	ok, left, wait = b.p.takeStep(&b.tat, now, b.p.step(cost))
	if ok {
		c.allowed.Add(1)
		if b.shared {
			b.pend++
		}
	} else {
		c.rejected.Add(1)
	}
	b.mu.Unlock()
	return ok, left, wait
}

// clock is the time in nanoseconds since the chain's first Limiter was
// built; monotonic when the clock is time.Now.
func (l *Limiter) clock() int64 {
	return int64(l.now().Sub(l.st.base))
}

// exempt reports whether path is never limited.
func (l *Limiter) exempt(path []byte) bool {
	if l.exact == nil && l.prefixes == nil {
		return false
	}
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	if _, ok := l.exact[string(path)]; ok {
		return true
	}
	for _, p := range l.prefixes {
		if bytes.HasPrefix(path, p) {
			return plainPath(path)
		}
	}
	return false
}

// plainPath reports whether path could not mean another path to a server
// that decodes percent-escapes, backslashes or dot segments.
func plainPath(path []byte) bool {
	if bytes.IndexByte(path, '%') >= 0 || bytes.IndexByte(path, '\\') >= 0 {
		return false
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		seg := path[i+1:]
		if j := bytes.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
		}
		if (len(seg) == 1 && seg[0] == '.') || (len(seg) == 2 && seg[0] == '.' && seg[1] == '.') {
			return false
		}
	}
	return true
}

// asciiEqualFold reports whether b equals lower, which is lower case,
// ignoring ASCII case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Stats are a Limiter's counters. Allowed, Rejected, Exempt, Evicted and
// Expired count from the first Limiter of a chain of reloads and never go
// down; Keys is the current size of the per-client table.
type Stats struct {
	Allowed  uint64 // requests that found a token
	Rejected uint64 // requests refused (429)
	Exempt   uint64 // requests to exempt paths, not limited
	Keys     int    // client buckets held now; 0 when limiting globally
	Evicted  uint64 // client buckets dropped because the table was full
	Expired  uint64 // client buckets dropped after being idle and full
}

// Stats returns l's counters. It takes no locks; counts read while
// requests are being decided may be a few requests apart from each other.
func (l *Limiter) Stats() Stats {
	var s Stats
	if l == nil {
		return s
	}
	for i := range l.st.counts {
		c := &l.st.counts[i]
		s.Allowed += c.allowed.Load()
		s.Rejected += c.rejected.Load()
		s.Exempt += c.exempt.Load()
		s.Evicted += c.evicted.Load()
		s.Expired += c.expired.Load()
	}
	if l.table != nil {
		s.Keys = l.table.len()
	}
	return s
}
