package proxy

import (
	"bytes"
	"context"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/http2"
)

// HTTP/2 toward clients (docs/http2.md, docs/design.md#http2-to-clients).
//
// A connection that speaks HTTP/2 (ALPN h2 on the HTTPS listener, or the
// client preface on the plaintext port with server.h2c) is still a
// *client: it keeps the peer, the TLS record layer, parking, the output
// bound and the timeouts of an HTTP/1.1 connection, and gets an h2conn
// that drives internal/http2 from its input instead of the HTTP/1.1
// parser. Each stream is served by a client of its own (a "stream
// client", cl.st set) that has no socket: its request head arrives as an
// HTTP/1.1 head written into its stash, its body follows there, and what
// the upstream and the rest of the data path write to it as HTTP/1.1 is
// turned into HEADERS, DATA and trailers on the connection (h2stream.go).
// So routing, rate limits, balancing, retries, breakers, timeouts,
// metrics and the access log run unchanged per stream.

// h2conn is the HTTP/2 side of a client connection. It belongs to the
// connection's event loop.
type h2conn struct {
	cl      *client // the connection
	c       *http2.Conn
	streams map[uint32]*client // stream clients, until both their exchange and their output are over
	closed  bool
	// congested: a stream held output because the connection owed more
	// than connectionBuffer; flush them when it drains.
	congested bool
	// draining: GOAWAY was sent (server drain); close once no stream is
	// left.
	draining bool
	// queued: the connection is in its loop's h2out, its output to be
	// written at the end of the loop's batch of events.
	queued bool
}

// h2Limits turns server.http2 into the codec's limits.
func h2Limits(h *config.HTTP2) *http2.Limits {
	lim := http2.DefaultLimits()
	if h.MaxConcurrentStreams > 0 {
		lim.MaxConcurrentStreams = uint32(h.MaxConcurrentStreams)
	}
	if h.MaxHeaderListSize > 0 {
		lim.MaxHeaderListSize = uint32(h.MaxHeaderListSize)
	}
	if h.StreamWindow > 0 {
		lim.StreamWindow = uint32(min(h.StreamWindow, 1<<31-1))
	}
	if h.ConnectionWindow > 0 {
		lim.ConnWindow = uint32(min(h.ConnectionWindow, 1<<31-1))
	}
	if h.MaxResets > 0 {
		lim.MaxResets = h.MaxResets
	}
	if h.MaxControlFrames > 0 {
		lim.MaxControlFrames = h.MaxControlFrames
	}
	return &lim
}

// h2Clock is the loop's coarse clock for the codec's flood budgets.
type h2Clock struct{ lp *loop }

func (k h2Clock) Now() time.Time { return time.Unix(0, k.lp.now) }

// h2process is the HTTP/2 branch of client.process: it runs a stream
// client's request, feeds an HTTP/2 connection's input to its codec, and
// on a new connection decides whether it speaks HTTP/2 (ALPN h2, or the
// client preface with server.h2c). It reports whether it handled the
// call.
func (cl *client) h2process() bool {
	switch {
	case cl.st != nil:
		cl.st.pump()
		return true
	case cl.h2 != nil:
		cl.h2.process()
		return true
	case cl.h1 || cl.served || cl.state != csIdle:
		return false
	}
	if cl.tls != nil {
		if cl.tls.State().NegotiatedProtocol != "h2" {
			cl.h1 = true
			return false
		}
	} else {
		if !cl.sn.h2c {
			cl.h1 = true
			return false
		}
		b := cl.data()
		k := min(len(b), len(http2.ClientPreface))
		if string(b[:k]) != http2.ClientPreface[:k] {
			return cl.notH2(b)
		}
		if k < len(http2.ClientPreface) {
			return true // wait for the rest of the preface (clientHeader applies)
		}
	}
	cl.startH2()
	cl.h2.process()
	return true
}

// notH2 decides for a plaintext connection on an h2c port whose first
// bytes b are not the HTTP/2 preface: once its first line is complete,
// an HTTP/1.x request line is served as HTTP/1.1, and anything else —
// neither HTTP/1.x nor HTTP/2, such as a broken preface — is closed
// without an answer (RFC 9113 3.4). It reports whether it handled the
// call.
func (cl *client) notH2(b []byte) bool {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return false // decide when the line is complete
	}
	line := bytes.TrimSuffix(b[:i], []byte("\r"))
	if n := len(line); n >= 9 && string(line[n-9:n-1]) == " HTTP/1." || len(bytes.TrimSpace(line)) == 0 {
		cl.h1 = true
		return false
	}
	cl.abort()
	return true
}

// startH2 turns cl into an HTTP/2 connection and queues its SETTINGS.
func (cl *client) startH2() {
	lp := cl.lp
	sn := lp.srv.snap.Load()
	cl.served = true
	cl.h2 = &h2conn{
		cl:      cl,
		c:       http2.NewServerConn(sn.h2lim, h2Clock{lp}),
		streams: make(map[uint32]*client),
	}
	cl.deadline = lp.now + sn.clientIdle
	lp.st.h2conns.Add(1)
	if lp.srv.draining.Load() {
		cl.h2.drain()
	}
}

// process feeds the connection's input to the codec and acts on the
// events. Like an HTTP/1.1 client, a connection that owes more than
// connectionBuffer is not read (parked) until it has taken its output.
func (h *h2conn) process() {
	cl := h.cl
	for !h.closed && cl.attached() && !cl.closeMe && !cl.detaching {
		if len(cl.owed) > cl.sn.highWater {
			cl.park()
			break
		}
		buf := cl.data()
		if len(buf) == 0 {
			break
		}
		n, evs, err := h.c.Feed(buf)
		for i := range evs {
			if h.closed {
				break
			}
			h.event(&evs[i])
		}
		if h.closed {
			return
		}
		if n > 0 {
			cl.consume(n)
		}
		if err != nil {
			h.fail()
			return
		}
		if n == 0 {
			break
		}
	}
	h.flush()
	h.checkDone()
}

// event acts on one event of the codec.
func (h *h2conn) event(ev *http2.Event) {
	switch ev.Kind {
	case http2.EventHeaders:
		h.open(ev)
	case http2.EventData:
		if s := h.streams[ev.Stream]; s != nil {
			s.st.data(ev.Data, ev.EndStream)
		} else {
			h.c.Consumed(ev.Stream, len(ev.Data))
		}
	case http2.EventTrailers:
		if s := h.streams[ev.Stream]; s != nil {
			s.st.trailers(ev.Fields)
		}
	case http2.EventReset:
		if s := h.streams[ev.Stream]; s != nil {
			s.st.resetByPeer()
		}
	case http2.EventWindow:
		if s := h.streams[ev.Stream]; s != nil {
			s.st.flush()
		}
	case http2.EventGoAway:
		// The client opens no more streams; those it has run to their end.
	}
}

// open starts the stream of a new request.
func (h *h2conn) open(ev *http2.Event) {
	if len(h.streams) >= h.c.MaxStreams() {
		// The codec counts only the streams it still knows. One whose
		// response is complete and whose body the client has finished
		// sending is forgotten there, while its stream client may still
		// hold the body's rest and a backend connection (a backend that
		// answered early and does not read): counted here too, or a
		// client could open such streams without bound. Refused like
		// the codec's own refusals, against the reset budget.
		if h.c.Refuse(ev.Stream) != nil {
			h.fail()
		}
		return
	}
	s := newStreamClient(h, ev)
	h.streams[ev.Stream] = s
	h.cl.lp.st.h2streams.Add(1)
	s.st.pump()
}

// flush has the codec's output written to the connection once the loop
// has run the callbacks of its current batch of events: the responses of
// many streams whose upstreams answered in one batch leave in one write
// (one TLS record, one syscall) instead of one each.
func (h *h2conn) flush() {
	if h.closed || h.queued || h.c.Buffered() == 0 {
		return
	}
	lp := h.cl.lp
	if lp.el == nil {
		h.flushNow()
		return
	}
	h.queued = true
	lp.h2out = append(lp.h2out, h)
	if len(lp.h2out) == 1 && lp.el.Execute(context.Background(), lp.h2outTask) != nil {
		lp.flushH2() // the engine is stopping: no more tasks
	}
}

// flushNow writes the codec's output to the connection at once.
func (h *h2conn) flushNow() {
	if h.closed {
		return
	}
	if out := h.c.Output(); len(out) > 0 {
		h.cl.write(out)
	}
}

// flushH2 writes the output of the HTTP/2 connections queued by flush.
// It runs as a loop task, which gnet runs after the callbacks of the
// batch of events that queued them.
func (lp *loop) flushH2() {
	for i, h := range lp.h2out {
		lp.h2out[i] = nil
		h.queued = false
		h.flushNow()
	}
	lp.h2out = lp.h2out[:0]
}

// congestedNow reports whether stream output must wait for the
// connection's socket to drain.
func (h *h2conn) congestedNow() bool {
	if len(h.cl.owed) > h.cl.sn.highWater {
		h.congested = true
	}
	return h.congested
}

// fail ends the connection after a connection error: the codec queued
// GOAWAY; every stream is abandoned.
func (h *h2conn) fail() {
	h.flushNow()
	h.closed = true
	h.abortStreams()
	h.cl.linger = true
	h.cl.closeGracefully()
}

// drain starts the graceful close of a server drain: GOAWAY with the last
// stream the client opened; the connection closes once the streams up to
// it are over.
func (h *h2conn) drain() {
	if h.closed || h.draining {
		return
	}
	h.draining = true
	h.c.Shutdown()
	h.flushNow()
	h.checkDone()
}

// checkDone closes a draining connection that has no stream left.
func (h *h2conn) checkDone() {
	if h.closed || !h.draining || len(h.streams) > 0 || !h.c.Done() {
		return
	}
	h.flushNow()
	h.closed = true
	h.cl.closeGracefully()
}

// removed forgets a finished stream.
func (h *h2conn) removed(id uint32) {
	delete(h.streams, id)
	h.checkDone()
}

// abortStreams abandons every stream (the connection is gone).
func (h *h2conn) abortStreams() {
	for _, s := range h.streams {
		s.st.gone = true // no frame is written for it any more
		s.st.abort()
	}
	clear(h.streams)
}

// close runs from the connection's cleanup.
func (h *h2conn) close() {
	h.closed = true
	h.abortStreams()
	h.cl.lp.st.h2conns.Add(-1)
}

// tick runs from the connection's tick before the HTTP/1.1 part (which
// flushes owed output, resumes a parked connection, and enforces the
// idle and stall timeouts). It reports whether that part should run.
func (h *h2conn) tick(now int64, full bool) bool {
	cl := h.cl
	if h.closed {
		return true
	}
	if !cl.flushOwed() {
		cl.abort()
		return false
	}
	if h.congested && len(cl.owed) < cl.sn.lowWater {
		h.congested = false
		for _, s := range h.streams {
			s.st.flush()
		}
	}
	for _, s := range h.streams {
		s.st.tick(now, full)
	}
	switch {
	case len(h.streams) > 0:
		cl.deadline = now + cl.sn.clientIdle // idle only once no stream is open
	case full && now > cl.deadline && len(cl.owed) == 0:
		h.drain() // idle: GOAWAY, then close
	}
	h.flush()
	h.checkDone()
	return !cl.closed
}

// busy reports whether the connection needs the 2 ms sweep.
func (h *h2conn) busy() bool {
	if h.congested {
		return true
	}
	for _, s := range h.streams {
		if s.st.busy() {
			return true
		}
	}
	return false
}
