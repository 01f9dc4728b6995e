package proxy

import (
	"errors"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/http2"
	"github.com/connx/connx/internal/tlsterm"
	"github.com/panjf2000/gnet/v2"
)

// HTTP/2 to backends (upstream.protocol: h2c, or h2 over TLS;
// docs/grpc.md).
//
// Each event loop keeps, per backend of an h2c pool, a few HTTP/2
// connections (h2up), dialled off the loop like an HTTP/1.1 upstream and
// enrolled on it, each driven by an http2.ClientConn. A request routed to
// such a pool — an HTTP/1.1 request or an HTTP/2 stream, both a client —
// becomes one stream (h2call, h2call.go) on the first connection to its
// backend with room (ClientConn.Available); when all are full a new one
// is dialled. A connection that got GOAWAY, or whose backend was retired,
// takes no new streams and closes once its last stream ends; one that
// carried no stream for timeouts.upstreamIdle is closed too.
//
// An h2 backend (https://) gets the TLS handshake in the dial goroutine,
// as an HTTP/1.1 https:// backend does (upstream_tls.go), with ALPN h2
// required; the record layer then runs on the loop: onTraffic decrypts
// gnet's ciphertext into the stash before the codec reads it, and
// peer.write seals the codec's output.
//
// An h2up is never parked: what a backend may send is bounded by the
// HTTP/2 windows, which are returned (Consumed) only as clients take the
// response bytes, and what ConnX sends it by the backend's windows.

// h2up is one HTTP/2 connection to a backend, owned by its event loop.
type h2up struct {
	peer
	be     *backend
	c2     *http2.ClientConn
	calls  map[uint32]*h2call
	why    failure // reason for a close ConnX initiated
	idleAt int64   // when the last stream ended
	dirty  bool    // on loop.h2dirty: output to write when the callback ends

	hs atomic.Pointer[tlsterm.Conn] // an h2 backend's record layer, from the dial goroutine to OnOpen
}

// h2Conns is a loop's HTTP/2 backend connections.
type h2Conns []*h2up

// tick runs the full sweep's tick of every connection.
func (hs h2Conns) tick() {
	for _, h := range slices.Clone(hs) {
		h.lp.tick(&h.peer, true)
	}
}

// h2For returns a connection to be with room for one more stream,
// dialling a new one when none has.
func (lp *loop) h2For(be *backend, connect time.Duration) *h2up {
	for _, h := range lp.h2 {
		if h.be == be && !h.closed && !h.closeMe && h.c2.Available() > 0 {
			return h
		}
	}
	h := &h2up{be: be, c2: http2.NewClientConn(nil, h2Clock{lp}), calls: make(map[uint32]*h2call)}
	h.peer = peer{lp: lp, fd: -1, self: h}
	h.idleAt = lp.now
	lp.h2 = append(lp.h2, h)
	be.openConns.Add(1)
	lp.srv.upOpen.Add(1)
	lp.dialH2(h, connect)
	return h
}

// dialH2 is loop.dial for an HTTP/2 connection: connect off the loop,
// enroll on it; OnOpen continues (opened), or the failure is handled on
// the loop.
func (lp *loop) dialH2(h *h2up, timeout time.Duration) {
	var prep func(net.Conn, time.Time) error
	if conf := h.be.tlsConf.Load(); conf != nil {
		prep = func(nc net.Conn, deadline time.Time) error { return h.h2Handshake(nc, conf, deadline) }
	}
	lp.dialAndEnroll(h.be.addr, timeout, h, prep, &h.peer, &h.why)
}

// opened runs in OnOpen: the preface, SETTINGS and the streams opened
// meanwhile go out, and the clients whose bodies waited are read again.
func (h *h2up) opened(c gnet.Conn) {
	h.c = c
	if tc := h.hs.Swap(nil); tc != nil {
		h.tls = tc
		// Records read with the handshake (a session ticket, the
		// backend's SETTINGS) are decrypted now, not at the next input.
		h.onTraffic()
		if h.closed || h.closeMe {
			return
		}
	}
	h.flush()
	for _, g := range h.calls {
		if len(g.reqOwed) > 0 {
			g.window() // a retried call's replay
		} else if g.cl.state == csBody {
			g.resumeClient()
		}
	}
}

// flush writes the codec's output once the connection is up — at the
// end of the running OnTraffic callback if there is one (loop.h2batch).
func (h *h2up) flush() {
	if h.c == nil || h.closed {
		return
	}
	if h.lp.h2batch {
		if !h.dirty {
			h.dirty = true
			h.lp.h2dirty = append(h.lp.h2dirty, h)
		}
		return
	}
	h.flushNow()
}

// flushNow writes the codec's output now.
func (h *h2up) flushNow() {
	h.dirty = false
	if h.c == nil || h.closed {
		return
	}
	if out := h.c2.Output(); len(out) > 0 {
		h.write(out)
	}
}

// endH2Batch writes the output the HTTP/2 backend connections queued
// during a callback, one write each.
func (lp *loop) endH2Batch() {
	lp.h2batch = false
	for _, h := range lp.h2dirty { // nothing is added now: h2batch is off
		h.flushNow()
	}
	clear(lp.h2dirty)
	lp.h2dirty = lp.h2dirty[:0]
}

// onTraffic feeds the backend's frames to the codec and acts on the
// events.
func (h *h2up) onTraffic() {
	if h.tls != nil {
		defer h.tlsDone(h.tlsRead())
	}
	for h.attached() && !h.closeMe {
		buf := h.data()
		if len(buf) == 0 {
			break
		}
		n, evs, err := h.c2.Feed(buf)
		for i := range evs {
			h.event(&evs[i])
		}
		if n > 0 {
			h.consume(n)
		}
		if err != nil {
			h.flushNow() // the GOAWAY, before the close
			h.why = failBadResponse
			h.lp.closeConn(&h.peer)
			return
		}
		if n == 0 {
			break
		}
	}
	h.flush()
	h.checkIdle()
}

// event acts on one event of the codec.
func (h *h2up) event(ev *http2.ClientEvent) {
	if ev.Kind == http2.EventGoAway {
		return // Available is 0 from now on; the streams above it are reset next
	}
	g := h.calls[ev.Stream]
	if g == nil {
		if ev.Kind == http2.EventData {
			h.c2.Consumed(ev.Stream, len(ev.Data))
		}
		return
	}
	switch ev.Kind {
	case http2.EventHeaders:
		g.head(ev)
	case http2.EventData:
		g.data(ev.Data, ev.EndStream)
	case http2.EventTrailers:
		g.trailers(ev.Fields)
	case http2.EventReset:
		g.reset(ev)
	case http2.EventWindow:
		g.window()
	}
}

// tlsDone ends the decryption that began onTraffic: the loop gets its
// buffer back; a close_notify takes no new streams (the backend's FIN
// follows) and a record-layer error closes the connection.
func (h *h2up) tlsDone(err error) {
	h.tlsReturn()
	if err == nil || h.closed {
		return
	}
	if errors.Is(err, io.EOF) {
		h.c2.Shutdown() // Done once the calls end; checkIdle closes it
		h.checkIdle()
		return
	}
	h.why = failUpstreamReset
	h.lp.closeConn(&h.peer)
}

// removed forgets a call that ended.
func (h *h2up) removed(g *h2call) {
	if h.calls[g.id] == g {
		delete(h.calls, g.id)
	}
	if len(h.calls) == 0 {
		h.idleAt = h.lp.now
	}
}

// checkIdle closes a connection that will carry no more streams.
func (h *h2up) checkIdle() {
	if h.closed || len(h.calls) > 0 || !h.attached() {
		return
	}
	if h.c2.Done() || h.c2.Err() != nil || h.be.retired.Load() {
		h.flushNow() // what the batch holds for it goes before the close
		h.lp.closeConn(&h.peer)
	}
}

// cleanup runs once when the connection is gone: its calls fail.
func (h *h2up) cleanup() {
	lp := h.lp
	if i := slices.Index(lp.h2, h); i >= 0 {
		lp.h2 = slices.Delete(lp.h2, i, i+1)
	}
	h.be.openConns.Add(-1)
	lp.srv.upOpen.Add(-1)
	h.dropOwed()
	h.c = nil
	h.stash = nil
	why := h.why
	if why == 0 {
		why = failUpstreamReset
	}
	for _, g := range h.calls {
		g.lost(why, why == failConnect)
	}
	clear(h.calls)
}

// tick runs from the loop's sweep: output owed to the backend, response
// bytes waiting for slow clients, the calls' timeouts, idle connections.
func (h *h2up) tick(now int64, full bool) {
	// The calls' timeouts run while the connect is in progress too.
	if h.lp.connectTick(&h.peer, now) && h.closed {
		return
	}
	if !h.flushOwed() {
		h.broke()
		return
	}
	for _, g := range h.calls {
		g.tick(now, full)
	}
	h.flush()
	if full && len(h.calls) == 0 && h.attached() {
		if now-h.idleAt > h.lp.srv.snap.Load().upstreamIdle {
			h.c2.Shutdown()
			h.flushNow()
			h.lp.closeConn(&h.peer)
			return
		}
		h.checkIdle()
	}
}

// busy reports whether the connection needs the 2 ms sweep.
func (h *h2up) busy() bool {
	if len(h.owed) > 0 {
		return true
	}
	for _, g := range h.calls {
		if g.pending > 0 {
			return true
		}
	}
	return false
}
