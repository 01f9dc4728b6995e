package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/ratelimit"
	"github.com/panjf2000/gnet/v2"
)

// owner is a client or an upstream: what a peer belongs to.
type owner interface {
	// cleanup runs exactly once when the connection is gone for good.
	cleanup()
	// tick runs from the loop's sweep: every 100 ms (full) for every
	// connection, and every 2 ms for those that are busy.
	tick(now int64, full bool)
	// busy reports whether the connection needs the 2 ms sweep: it owes
	// output, is parked, or is flushing before a close.
	busy() bool
}

// loop is the state one gnet event loop owns: its clients and upstreams,
// the idle upstream pools, and the round-robin cursor. Only that loop's
// goroutine touches it (other goroutines post work with el.Execute).
type loop struct {
	srv *Server
	el  gnet.EventLoop

	now int64 // coarse clock (unix ns), refreshed by every sweep

	// h2batch is set while OnTraffic runs: HTTP/2 backend connections
	// then queue their output (h2dirty) and write it once when the
	// callback ends (h2up.flush), so the calls a client's read opened,
	// or the window updates a backend's read caused, go out in one
	// write per connection instead of one each.
	h2batch bool
	h2dirty []*h2up

	// The balancer's predicate: a method value made once, reading the
	// snapshot and the backend to skip of the pick in progress.
	eligible  func(int) bool
	pickPool  *pool
	pickSkip  *backend
	pickPanic bool // the pool was in panic mode when the pick began

	cur gnet.Conn // the connection whose callback is running

	// clockNs is the time read once per callback (clockSet): the request
	// and response timestamps a callback takes share it (clock).
	clockNs  int64
	clockSet bool

	clients   list[*client]
	upstreams list[*upstream]
	pools     [][]*upstream // idle connections by backend id, newest last

	h2 h2Conns // HTTP/2 backend connections (h2up.go)

	st     loopStats // counters read by Server.Stats
	budget retryBudget
	limReq ratelimit.Request // reused for every rate-limit decision
	rid    ridSource         // new request IDs

	// Peers that need the 2 ms sweep (see owner.busy), so that it does not
	// visit every idle connection; busyNext is the spare list.
	busy, busyNext []*peer

	lastFull   int64
	fullSweeps atomic.Uint64 // full sweeps done; tests wait on it
	scratch    []byte        // response heads are built here
	norm       []byte        // a request path normalised for routing
	target     []byte        // a rewritten request target
	// fwd is the request target to forward for the head being read when
	// it is not the one received (routing normalised or rewrote it),
	// else nil: target, norm or part of the client's input, valid only
	// until the head is built.
	fwd     []byte
	plain   []byte // TLS plaintext, lent to a peer's stash during its callback (tls.go)
	sealBuf []byte // TLS records being written

	sweepTask gnet.Runnable
	drainTask gnet.Runnable
	// h2out are the HTTP/2 client connections with output to write at
	// the end of the current batch of events, by h2outTask (h2conn.go).
	h2out     []*h2conn
	h2outTask gnet.Runnable
	bufs      [][]byte                // free head buffers
	reqs      []*http1.Request        // free request parsers
	chunks    []*http1.ChunkedScanner // free chunked-body scanners
	resps     []*http1.Response       // free response parsers
}

func newLoop(s *Server, el gnet.EventLoop) *loop {
	lp := &loop{srv: s, el: el, now: time.Now().UnixNano(), rid: newRIDSource(),
		norm: make([]byte, 0, 1024), target: make([]byte, 0, 1024)}
	lp.eligible = lp.eligibleMember
	lp.sweepTask = gnet.RunnableFunc(func(context.Context) error {
		lp.sweep()
		return nil
	})
	lp.h2outTask = gnet.RunnableFunc(func(context.Context) error {
		lp.flushH2()
		return nil
	})
	lp.drainTask = gnet.RunnableFunc(func(context.Context) error {
		lp.drain()
		return nil
	})
	return lp
}

// closeConn closes p's gnet connection. Inside p's own callback the close
// is deferred to the callback's return (gnet requires that); otherwise it
// happens now, and OnClose runs before closeConn returns.
func (lp *loop) closeConn(p *peer) {
	if p.detaching {
		// A real close overrides a park still in progress (inside the
		// peer's own callback): gnet's close must not be taken for it.
		p.closeDetached()
		p.detaching = false
	}
	lp.release(p)
}

// release lets gnet close p's connection: deferred to the return of p's
// own callback, else now. detach uses it directly.
func (lp *loop) release(p *peer) {
	if p.c == nil {
		return
	}
	if lp.inCallback(p) {
		p.closeMe = true
		return
	}
	_ = lp.el.Close(p.c)
}

// inCallback reports whether p's own callback is running.
func (lp *loop) inCallback(p *peer) bool { return p.c != nil && lp.cur == p.c }

// gone finishes a connection that has no gnet.Conn any more.
func (lp *loop) gone(p *peer) {
	if p.closed {
		return
	}
	p.closed = true
	if c := p.connecting; c != nil {
		p.connecting = nil // OnClose for it finds nothing to do
		_ = lp.el.Close(c)
	}
	p.self.cleanup()
}

// enter marks c as the connection whose callback runs; leave returns the
// action the callback must give gnet.
func (lp *loop) enter(c gnet.Conn) { lp.cur, lp.clockSet = c, false }

func (lp *loop) leave(p *peer) gnet.Action {
	lp.cur, lp.clockSet = nil, false
	if p != nil && p.closeMe {
		return gnet.Close
	}
	return gnet.None
}

// clock returns the time (unix ns) for timestamps of requests and
// responses. Inside a callback (enter to leave) the first call reads the
// clock and the others return the same value: a request's start and its
// forwarding, or a response's head and its end, seen in one read of the
// socket are microseconds apart, and reading the clock costs ConnX 2.5%
// of its CPU in keep-alive traffic when each takes its own. Outside a
// callback every call reads the clock.
func (lp *loop) clock() int64 {
	if lp.clockSet {
		return lp.clockNs
	}
	now := time.Now().UnixNano()
	if lp.cur != nil {
		lp.clockNs, lp.clockSet = now, true
	}
	return now
}

// getBuf returns an empty buffer for a request head.
func (lp *loop) getBuf() []byte {
	if n := len(lp.bufs); n > 0 {
		b := lp.bufs[n-1]
		lp.bufs = lp.bufs[:n-1]
		return b[:0]
	}
	return make([]byte, 0, 1024)
}

func (lp *loop) putBuf(b []byte) {
	if b != nil && cap(b) <= 64<<10 && len(lp.bufs) < 256 {
		lp.bufs = append(lp.bufs, b[:0])
	}
}

// getChunks returns a reset chunked-body scanner.
func (lp *loop) getChunks() *http1.ChunkedScanner {
	if n := len(lp.chunks); n > 0 {
		s := lp.chunks[n-1]
		lp.chunks = lp.chunks[:n-1]
		s.Reset()
		return s
	}
	return new(http1.ChunkedScanner)
}

// putChunks takes a scanner back (nil: none).
func (lp *loop) putChunks(s *http1.ChunkedScanner) {
	if s != nil && len(lp.chunks) < 64 {
		lp.chunks = append(lp.chunks, s)
	}
}

// getReq returns a reset Request parser.
func (lp *loop) getReq() *http1.Request {
	if n := len(lp.reqs); n > 0 {
		r := lp.reqs[n-1]
		lp.reqs = lp.reqs[:n-1]
		return r
	}
	return new(http1.Request)
}

func (lp *loop) putReq(r *http1.Request) {
	r.Reset()
	if len(lp.reqs) < 64 {
		lp.reqs = append(lp.reqs, r)
	}
}

// getResp returns a reset Response parser.
func (lp *loop) getResp() *http1.Response {
	if n := len(lp.resps); n > 0 {
		r := lp.resps[n-1]
		lp.resps = lp.resps[:n-1]
		return r
	}
	return new(http1.Response)
}

func (lp *loop) putResp(r *http1.Response) {
	r.Reset()
	if len(lp.resps) < 64 {
		lp.resps = append(lp.resps, r)
	}
}

// idle returns a pooled connection to b, or nil.
func (lp *loop) idle(b *backend) *upstream {
	if b.id >= len(lp.pools) {
		return nil
	}
	pool := lp.pools[b.id]
	for len(pool) > 0 {
		up := pool[len(pool)-1]
		pool[len(pool)-1] = nil
		pool = pool[:len(pool)-1]
		b.idleConns.Add(-1)
		if up.attached() {
			lp.pools[b.id] = pool
			return up
		}
	}
	lp.pools[b.id] = pool
	return nil
}

// park puts an idle upstream in its pool; it reports false when the pool is
// full.
func (lp *loop) park(up *upstream, max int) bool {
	id := up.be.id
	for id >= len(lp.pools) {
		lp.pools = append(lp.pools, nil)
	}
	if len(lp.pools[id]) >= max {
		return false
	}
	lp.pools[id] = append(lp.pools[id], up)
	up.be.idleConns.Add(1)
	return true
}

// unpark removes up from its pool (it closed while idle).
func (lp *loop) unpark(up *upstream) {
	if up.be.id >= len(lp.pools) {
		return
	}
	pool := lp.pools[up.be.id]
	for i, u := range pool {
		if u == up {
			copy(pool[i:], pool[i+1:])
			pool[len(pool)-1] = nil
			lp.pools[up.be.id] = pool[:len(pool)-1]
			up.be.idleConns.Add(-1)
			return
		}
	}
}

// sweep runs on the loop from the ticker: resume detached peers whose
// other side drained, finish lingering closes, and every 100 ms enforce
// timeouts.
func (lp *loop) sweep() {
	lp.endH2Batch() // in case a callback that batched did not end (a recovered panic)
	lp.now = time.Now().UnixNano()
	full := lp.now-lp.lastFull >= int64(100*time.Millisecond)
	if full {
		lp.lastFull = lp.now
		lp.budget.decay(lp.now)
		defer lp.fullSweeps.Add(1)
	}
	if !full && len(lp.busy) == 0 {
		return
	}
	// Take the busy list; ticks mark what is still (or newly) busy.
	list := lp.busy
	lp.busy = lp.busyNext[:0]
	for _, p := range list {
		p.inBusy = false
	}
	if full {
		for cl := lp.clients.first(); cl != nil; cl = lp.clients.next() {
			lp.tick(&cl.peer, true)
		}
		for up := lp.upstreams.first(); up != nil; up = lp.upstreams.next() {
			lp.tick(&up.peer, true)
		}
		lp.h2.tick()
	} else {
		for _, p := range list {
			lp.tick(p, false)
		}
	}
	clear(list) // no stale references to closed peers
	lp.busyNext = list[:0]
}

// tick runs p's tick and keeps p on the busy list while it is busy.
func (lp *loop) tick(p *peer, full bool) {
	if p.closed {
		return
	}
	p.self.tick(lp.now, full)
	if !p.closed && p.self.busy() {
		lp.markBusy(p)
	}
}

// markBusy puts p on the busy list, once.
func (lp *loop) markBusy(p *peer) {
	if !p.inBusy && !p.closed {
		p.inBusy = true
		lp.busy = append(lp.busy, p)
	}
}

// list is an intrusive doubly linked list of clients or upstreams.
type list[T interface {
	comparable
	links() *links[T]
}] struct {
	head T
	n    int
	// cursor is the next element of a walk (first, then next): remove
	// moves it past the element it removes, so that a walk goes on
	// whatever the visited element's work closes.
	cursor T
}

// first starts a walk of l: it returns the head, and next each following
// element, the zero T at the end. Elements pushed meanwhile (at the head)
// are not visited. One walk at a time.
func (l *list[T]) first() T {
	l.cursor = l.head
	return l.next()
}

// next is the walk's next element (see first).
func (l *list[T]) next() T {
	var zero T
	v := l.cursor
	if v != zero {
		l.cursor = v.links().next
	}
	return v
}

type links[T any] struct {
	prev, next T
	in         bool
}

func (l *list[T]) push(v T) {
	var zero T
	lk := v.links()
	lk.prev, lk.next, lk.in = zero, l.head, true
	if l.head != zero {
		l.head.links().prev = v
	}
	l.head = v
	l.n++
}

func (l *list[T]) remove(v T) {
	var zero T
	lk := v.links()
	if !lk.in {
		return
	}
	if l.cursor == v {
		l.cursor = lk.next
	}
	if lk.prev != zero {
		lk.prev.links().next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != zero {
		lk.next.links().prev = lk.prev
	}
	lk.prev, lk.next, lk.in = zero, zero, false
	l.n--
}

// retryBudget keeps retries to a share of the loop's recent requests, so a
// failing fleet is not sent every request twice. Counts decay by half every
// budgetHalfLife; minRetries retries are always allowed per half-life.
type retryBudget struct {
	requests, retries float64
	lastDecay         int64
}

const (
	budgetHalfLife = int64(10 * time.Second)
	minRetries     = 10
)

func (b *retryBudget) request() { b.requests++ }

// retry reports whether one more retry fits pct percent of the requests,
// and counts it if so.
func (b *retryBudget) retry(pct int) bool {
	if b.retries >= minRetries && b.retries >= b.requests*float64(pct)/100 {
		return false
	}
	b.retries++
	return true
}

func (b *retryBudget) decay(now int64) {
	if now-b.lastDecay >= budgetHalfLife {
		b.lastDecay = now
		b.requests /= 2
		b.retries /= 2
	}
}
