package proxy

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/connx/connx/internal/breaker"
	"github.com/connx/connx/internal/grpcwire"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/http2"
)

// h2call is one request of a client sent as a stream on an HTTP/2
// backend connection (h2up.go). The client side is the HTTP/1.1 data
// path, unchanged: the forwarded head (cl.head) is translated to HTTP/2
// request fields, the body read by forwardBody goes out as DATA, and the
// response comes back to the client as HTTP/1.1 (client.write), which a
// stream client turns into HEADERS, DATA and trailers again.
//
// Flow control both ways: body bytes the backend's windows do not take
// wait in reqOwed and the client is not read until EventWindow drains
// them; response bytes are returned to the backend's windows (Consumed)
// only once the client has taken them (its owed bytes are below the low
// water mark), so a slow client holds the backend's stream window.
type h2call struct {
	h     *h2up
	cl    *client
	id    uint32
	be    *backend
	probe breaker.Probe

	sentAt, headAt int64
	status         int
	deadline       int64

	// Request side.
	reqOwed []byte // body payload the send windows did not take
	reqEnd  bool   // END_STREAM goes after reqOwed
	reqDone bool   // the request ended on the stream

	// Response side.
	kind    http1.BodyKind // framing toward the client
	trl     bool           // the client takes trailers
	pending int            // response payload written to the client, not yet Consumed
	respEnd bool           // the backend ended the response
	done    bool           // the call is over; nothing more happens to it
}

// assignH2 is assign for a pool whose backends speak HTTP/2: the request
// becomes a stream on a connection to be.
func (cl *client) assignH2(be *backend, probe breaker.Probe) {
	lp := cl.lp
	h := lp.h2For(be, cl.to.connect)
	g := &h2call{h: h, cl: cl, be: be, probe: probe, trl: cl.st != nil || cl.teTrailers}
	cl.gc = g
	blk, ok := g.requestHead()
	var id uint32
	var err error
	if ok {
		id, err = h.c2.OpenStream(blk, cl.bodyKind == http1.BodyNone)
	}
	if !ok || err != nil {
		g.done = true
		cl.gc = nil
		g.release(breaker.ConnectError)
		cl.rejectFor(http.StatusBadGateway, errBadRequest, be)
		return
	}
	g.id = id
	g.reqDone = cl.bodyKind == http1.BodyNone
	h.calls[id] = g
	if cl.tries > 1 && !g.reqDone && (len(cl.replay) > 0 || cl.state != csBody) {
		// A retry: what the client sent goes again (and the end of the
		// request, if it came); the rest follows from forwardBody.
		g.sendReq(cl.replay, cl.state != csBody)
	}
	g.sentAt = time.Now().UnixNano()
	g.deadline = lp.now + cl.to.upstreamHeader
	if cl.grpc && cl.state == csBody {
		cl.deadline = noDeadline // a streaming call's client may be quiet for hours
	}
	h.flush()
}

// noDeadline is a client deadline that never comes: a gRPC call's
// client-streaming side has no clientBody timeout (gRPC's own deadlines
// and keepalives bound it).
const noDeadline = int64(1<<63 - 1)

// requestHead translates the forwarded HTTP/1.1 head into an HTTP/2
// request head: connection-specific fields go, "te: trailers" is kept
// for a client that sent it (every gRPC client does).
func (g *h2call) requestHead() (*http2.HeaderBlock, bool) {
	cl := g.cl
	lp := cl.lp
	r := lp.getReq()
	defer lp.putReq(r)
	if _, err := http1.ParseRequest(cl.head, r, &h2RespLimits); err != nil {
		return nil, false
	}
	var authority []byte
	for i := range r.Headers {
		if h := &r.Headers[i]; h.Flags&http1.FlagHost != 0 {
			authority = h.Value
		}
	}
	scheme := "http"
	if g.be.tlsConf.Load() != nil {
		scheme = "https" // upstream.protocol h2
	}
	blk := g.h.c2.RequestBytes(r.Method, scheme, authority, r.Path)
	for i := range r.Headers {
		h := &r.Headers[i]
		if h.Flags&(http1.FlagHost|http1.FlagHopByHop|http1.FlagTransferEncoding) != 0 {
			continue
		}
		blk.Add(h.Name, h.Value)
	}
	if cl.teTrailers || cl.grpc {
		blk.AddString("te", "trailers")
	}
	return blk, true
}

// forwardBody is client.forwardBody for a call: body bytes go out as
// DATA as far as the stream's send windows allow. It reports whether
// processing may continue.
func (g *h2call) forwardBody() bool {
	cl := g.cl
	if g.h.c == nil || !g.flushReq() {
		// Connecting (nothing may be lost to a failed dial), or the
		// backend's window is closed: the client waits.
		g.holdClient()
		return false
	}
	buf := cl.data()
	if len(buf) == 0 {
		return false
	}
	k, done, ok := cl.bodyStep(buf)
	if !ok {
		return false
	}
	switch cl.bodyKind {
	case http1.BodyLength:
		g.send(buf[:k], done)
	case http1.BodyChunked:
		for b := buf[:k]; len(b) > 0; {
			data, n, end := cl.h2dec.next(b)
			b = b[n:]
			if len(data) > 0 {
				g.send(data, false)
			}
			if end {
				break
			}
		}
		if done {
			g.send(nil, true)
		}
	}
	if k > 0 {
		cl.bodySent += int64(k)
		cl.consume(k)
	}
	g.h.flush()
	now := cl.lp.now
	if g.headAt == 0 {
		g.deadline = now + cl.to.upstreamHeader
	}
	if done {
		cl.state = csWait
		cl.deadline = 0
		return true
	}
	cl.deadline = now + cl.to.clientBody
	if cl.grpc {
		cl.deadline = noDeadline
	}
	if len(g.reqOwed) > 0 {
		g.holdClient()
		return false
	}
	return k > 0
}

// grpcReplayMax is how much request payload a gRPC call keeps for a
// retry: one stream window, which a unary call's message usually fits.
// A call that sent more is not retried.
const grpcReplayMax = 64 << 10

// send is sendReq for payload read from the client: a gRPC call keeps it
// for a retry while it fits in grpcReplayMax.
func (g *h2call) send(p []byte, end bool) {
	if cl := g.cl; cl.grpc && !cl.replayOver && len(p) > 0 {
		if len(cl.replay)+len(p) > grpcReplayMax {
			cl.dropReplay()
			cl.replayOver = true
		} else {
			if cl.replay == nil {
				cl.replay = cl.lp.getBuf()
			}
			cl.replay = append(cl.replay, p...)
		}
	}
	g.sendReq(p, end)
}

// dropReplay gives the retry copy of the request payload back.
func (cl *client) dropReplay() {
	if cl.replay != nil {
		cl.lp.putBuf(cl.replay)
		cl.replay = nil
	}
	cl.replayOver = false
}

// replayable reports whether the payload the client has sent so far can
// be sent again: none was, or a gRPC call kept all of it.
func (cl *client) replayable() bool {
	return cl.bodySent == 0 || cl.grpc && !cl.replayOver
}

// sendReq queues request payload p on the stream, keeping what the
// windows do not take; end ends the request after it.
func (g *h2call) sendReq(p []byte, end bool) {
	if g.reqDone {
		return
	}
	if len(g.reqOwed) > 0 {
		g.reqOwed = append(g.reqOwed, p...)
		g.reqEnd = end
		return
	}
	n, err := g.h.c2.WriteData(g.id, p, end)
	switch {
	case err != nil:
		g.reqDone = true // the stream is gone; its reset event says why
	case n < len(p) || end && n == 0 && len(p) > 0:
		g.reqOwed = append(g.reqOwed, p[n:]...)
		g.reqEnd = end
	case end:
		g.reqDone = true
	}
}

// flushReq sends owed body bytes as the windows allow; it reports
// whether none is left.
func (g *h2call) flushReq() bool {
	if len(g.reqOwed) == 0 {
		return true
	}
	n, err := g.h.c2.WriteData(g.id, g.reqOwed, g.reqEnd)
	if err != nil {
		g.reqOwed, g.reqDone = nil, true
		return true
	}
	g.reqOwed = g.reqOwed[n:]
	if len(g.reqOwed) > 0 {
		return false
	}
	g.reqOwed = nil
	g.reqDone = g.reqEnd
	return true
}

// holdClient stops reading an HTTP/1.1 client (a stream client keeps its
// body in its stash, which holds its window).
func (g *h2call) holdClient() {
	if cl := g.cl; cl.st == nil && cl.buffered() > 0 {
		cl.park()
	}
}

// resumeClient reads the client's body again.
func (g *h2call) resumeClient() {
	cl := g.cl
	switch {
	case cl.closed:
	case cl.st != nil:
		cl.st.pump()
	case cl.isDetached():
		if !cl.resuming {
			cl.resume(cl)
		}
	case cl.attached() && cl.buffered() > 0 && !cl.lp.inCallback(&cl.peer):
		_ = cl.c.Wake(nil)
	}
}

// window runs for EventWindow: owed body bytes may go.
func (g *h2call) window() {
	if g.flushReq() {
		g.h.flush()
		if g.cl.state == csBody {
			g.resumeClient()
		}
	}
}

// head relays the response head. A head that ends the stream (a gRPC
// trailers-only response) is the whole response.
func (g *h2call) head(ev *http2.ClientEvent) {
	cl := g.cl
	if ev.Status < 200 {
		// 100 Continue goes to a client that asked for it; other 1xx
		// are not relayed.
		if ev.Status == 100 && cl.expect100 && cl.minor == 1 && !cl.respStarted {
			cl.expect100 = false // one per request, as upstream.readHead
			cl.write(continue100)
		}
		return
	}
	if g.retryUnavailable(ev) {
		return
	}
	if cl.grpc {
		// No retry once a response has come: a stream that lasts hours
		// holds no copy of its messages.
		cl.dropReplay()
		cl.replayOver = true
	}
	lp := cl.lp
	g.headAt, g.status = time.Now().UnixNano(), ev.Status
	if cl.log != nil {
		cl.log.upstream = time.Duration(g.headAt - g.sentAt)
	}
	cl.respStarted = true
	cl.status = ev.Status
	noBody := ev.EndStream || cl.isHead || ev.Status == 204 || ev.Status == 304
	switch {
	case noBody:
		g.kind = http1.BodyNone
	case ev.ContentLength >= 0 && (cl.minor == 0 || !g.trl):
		g.kind = http1.BodyLength
	case cl.minor == 0:
		g.kind = http1.BodyUntilClose
		cl.closeAfter = true
	default:
		g.kind = http1.BodyChunked
	}
	lp.scratch = g.appendClientHead(lp.scratch[:0], ev, noBody)
	lp.putBuf(cl.head) // kept for a retry, and for the request ID above, until now
	cl.head = nil
	g.respEnd = ev.EndStream
	if g.kind == http1.BodyNone {
		if cl.grpc {
			cl.noteGRPCStatus(ev.Fields) // trailers-only
		}
		cl.endOut(g.status, g.be, errNone, len(lp.scratch))
		if cl.write(lp.scratch) {
			g.finish()
		}
		return
	}
	g.deadline = 0
	if !cl.grpc {
		g.deadline = lp.now + cl.to.upstreamRead // a call may be idle for hours
	}
	cl.write(lp.scratch)
}

// appendClientHead appends the client's HTTP/1.1 response head for the
// backend's head ev, as appendResponseHead does for an HTTP/1.1 backend's
// parsed head — route changes, request ID, framing, keep-alive — but
// written from ev's fields directly: the codec has validated them (names
// lowercase tokens, values an HTTP/1.1 field can carry, no
// connection-specific field), so there is nothing to parse. Content-Length
// is written once, for g.kind.
func (g *h2call) appendClientHead(b []byte, ev *http2.ClientEvent, noBody bool) []byte {
	cl := g.cl
	var drop []string
	if cl.rt != nil {
		drop = cl.rt.dropResp
	}
	rid := cl.sn.ridHeader
	hasID := false
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(ev.Status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(ev.Status)...)
	b = append(b, "\r\n"...)
	for i := range ev.Fields {
		f := &ev.Fields[i]
		if f.Name == "content-length" || len(drop) > 0 && listedName(drop, f.Name) {
			continue
		}
		hasID = hasID || len(f.Name) == len(rid) && strings.EqualFold(f.Name, rid)
		b = appendField(b, f.Name, f.Value)
	}
	switch {
	case g.kind == http1.BodyLength || noBody && ev.ContentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, ev.ContentLength, 10)
		b = append(b, "\r\n"...)
	case ev.EndStream && !cl.isHead && ev.Status != 204 && ev.Status != 304:
		b = append(b, "Content-Length: 0\r\n"...)
	}
	if cl.rt != nil {
		b = append(b, cl.rt.setResp...)
	}
	if id := cl.requestID(); id != nil && !hasID {
		b = append(b, rid...)
		b = append(b, ": "...)
		b = append(b, id...)
		b = append(b, "\r\n"...)
	}
	return appendHeadEnd(b, g.kind, cl)
}

// data relays response payload.
func (g *h2call) data(p []byte, end bool) {
	cl := g.cl
	if len(p) > 0 {
		ok := true
		if g.kind == http1.BodyChunked {
			b := cl.lp.scratch[:0]
			b = strconv.AppendInt(b, int64(len(p)), 16)
			b = append(b, "\r\n"...)
			b = append(b, p...)
			b = append(b, "\r\n"...)
			cl.lp.scratch = b
			ok = cl.write(b)
		} else {
			ok = cl.write(p)
		}
		if !ok || g.done {
			return
		}
		g.pending += len(p)
		g.drained()
		if !cl.grpc && g.headAt > 0 {
			g.deadline = cl.lp.now + cl.to.upstreamRead
		}
	}
	if end {
		g.trailers(nil)
	}
}

// trailers ends the response: the chunked body's last chunk, with the
// trailer fields for a client that takes them.
func (g *h2call) trailers(fields []http2.Field) {
	cl := g.cl
	g.respEnd = true
	var b []byte
	if g.kind == http1.BodyChunked {
		b = append(cl.lp.scratch[:0], "0\r\n"...)
		if g.trl {
			for i := range fields {
				b = appendField(b, fields[i].Name, fields[i].Value)
			}
		}
		b = append(b, "\r\n"...)
		cl.lp.scratch = b
	}
	if cl.grpc {
		cl.noteGRPCStatus(fields)
	}
	cl.endOut(g.status, g.be, errNone, len(b))
	if len(b) > 0 && !cl.write(b) {
		return
	}
	g.finish()
}

// drained returns to the backend's windows the response bytes the
// client has taken.
func (g *h2call) drained() {
	cl := g.cl
	if g.pending > 0 && !g.done && len(cl.owed) < cl.sn.lowWater {
		g.h.c2.Consumed(g.id, g.pending)
		g.pending = 0
		g.h.flush()
	} else if g.pending > 0 {
		g.h.lp.markBusy(&g.h.peer)
	}
}

// finish ends a call whose response is complete. A request body still
// coming is not wanted any more: the stream is cancelled and the rest of
// the body dropped.
func (g *h2call) finish() {
	cl := g.cl
	h := g.h
	g.done = true
	if !g.reqDone || !g.respEnd {
		h.c2.Reset(g.id, http2.ErrCodeCancel)
		if !g.reqDone && cl.state == csBody {
			cl.dropBody = true
			cl.closeAfter = true
		}
	}
	h.removed(g)
	h.flush()
	cl.gc = nil
	g.release(statusOutcome(g.status))
	cl.exchangeDone()
}

// reset runs when the stream was reset by the backend (or by the codec
// for a broken response, or refused by GOAWAY).
func (g *h2call) reset(ev *http2.ClientEvent) {
	f := failUpstreamReset
	if ev.Code == http2.ErrCodeProtocol {
		f = failBadResponse
	}
	g.lost(f, ev.Unprocessed)
}

// lost ends a call that failed: before the response started, the client
// is retried elsewhere or answered (client.h2Failed); after, it is cut
// short.
func (g *h2call) lost(f failure, unprocessed bool) {
	if g.done {
		return
	}
	g.done = true
	cl := g.cl
	g.h.removed(g)
	cl.gc = nil
	o := outcomeOf(f)
	if f == failUpstreamReset && cl.state == csBody && !cl.respStarted {
		// Reset before answering while the client was still sending the
		// body: a backend giving up on a slow upload, not a failure of
		// its own (as upstream.cleanup for HTTP/1 backends).
		o = breaker.Canceled
	}
	g.release(o)
	if cl.respStarted {
		g.cutShort(grpcUnavailable, "connx: backend connection lost", kindOf(f))
		return
	}
	cl.h2Failed(f, g.be, unprocessed)
}

// cutShort ends the client's side of a call whose response had started
// (the call is done): a gRPC call gets trailers with status st and msg —
// a gRPC client reads them as what they are, where a reset would reach
// it as INTERNAL —, anything else is aborted.
func (g *h2call) cutShort(st int, msg string, kind errKind) {
	cl := g.cl
	if cl.grpc && g.kind == http1.BodyChunked && g.trl {
		b := append(cl.lp.scratch[:0], "0\r\ngrpc-status: "...)
		b = strconv.AppendInt(b, int64(st), 10)
		b = append(b, "\r\ngrpc-message: "...)
		b = append(b, msg...)
		b = append(b, "\r\n\r\n"...)
		cl.lp.scratch = b
		cl.grpcCode = st
		cl.endOut(g.status, g.be, kind, len(b))
		if cl.write(b) {
			cl.closeAfter = true
			cl.exchangeDone()
		}
		return
	}
	cl.end(g.status, g.be, kind)
	cl.abort()
}

// expire ends a gRPC call whose grpc-timeout ran out: the backend's
// stream is reset (CANCEL) and the client gets DEADLINE_EXCEEDED — as a
// trailers-only answer before the response started, as trailers after.
func (g *h2call) expire() {
	cl := g.cl
	if !cl.respStarted {
		resp := appendGRPCStatus(nil, grpcDeadlineExceeded, grpcDeadlineMsg, false)
		cl.grpcCode = grpcDeadlineExceeded
		cl.endOut(http.StatusGatewayTimeout, g.be, errTimeout, len(resp))
		cl.rejectWith(resp) // resets the stream (dropCall)
		return
	}
	g.done = true
	g.h.c2.Reset(g.id, http2.ErrCodeCancel)
	g.h.removed(g)
	g.h.flush()
	cl.gc = nil
	g.release(breaker.Canceled)
	g.cutShort(grpcDeadlineExceeded, grpcDeadlineMsg, errTimeout)
}

// grpcDeadlineMsg is the grpc-message of a call whose grpc-timeout ConnX
// enforced.
const grpcDeadlineMsg = "connx: deadline exceeded (grpc-timeout)"

// tick enforces the call's timeouts and returns response bytes a slow
// client has taken since.
func (g *h2call) tick(now int64, full bool) {
	if g.done {
		return
	}
	if dl := g.cl.grpcDeadline; dl > 0 && now >= dl {
		g.expire()
		return
	}
	g.drained()
	if !full || g.deadline == 0 || now <= g.deadline {
		return
	}
	cl := g.cl
	switch {
	case g.headAt == 0 && cl.state == csBody && len(g.reqOwed) == 0:
		g.deadline = now + cl.to.upstreamHeader // the client is the slow one
	case g.headAt == 0:
		g.h.c2.Reset(g.id, http2.ErrCodeCancel)
		g.lost(failTimeout, false)
	case g.pending > 0:
		g.deadline = now + cl.to.upstreamRead // the client is the slow one
	default:
		g.h.c2.Reset(g.id, http2.ErrCodeCancel)
		g.lost(failUpstreamIdle, false)
	}
}

// release ends the backend's count of the call, as upstream.release does.
func (g *h2call) release(o breaker.Outcome) {
	var now int64
	lat := time.Duration(-1)
	failed := o.Failure(false)
	switch {
	case g.headAt > 0:
		now = g.headAt
		lat = time.Duration(g.headAt - g.sentAt)
	case failed && g.sentAt > 0:
		now = time.Now().UnixNano()
		lat = time.Duration(now - g.sentAt)
	default:
		now = time.Now().UnixNano()
	}
	g.be.node.End(now, lat, failed)
	g.be.hb.Done(now, o, g.probe)
}

// dropCall cancels the client's call (the client went away, or ConnX
// answered it).
func (cl *client) dropCall() {
	g := cl.gc
	if g == nil {
		return
	}
	cl.gc = nil
	if g.done {
		return
	}
	g.done = true
	g.h.c2.Reset(g.id, http2.ErrCodeCancel)
	g.h.removed(g)
	g.h.flush()
	g.release(breaker.Canceled)
}

// h2Failed is upstreamFailed for a call: retry when safe — a failed
// connect, a stream the backend did not process, or an idempotent
// request without body — otherwise answer.
func (cl *client) h2Failed(f failure, be *backend, unprocessed bool) {
	if cl.closed {
		return
	}
	pl := cl.pool
	if f == failLocal {
		cl.rejectFor(statusFor(f), errLocal, nil)
		return
	}
	if f == failConnect {
		be.downUntil.Store(cl.lp.now + int64(2*time.Second))
	}
	safe := cl.replayable() &&
		(f == failConnect || unprocessed || f == failUpstreamReset && cl.idempotent && cl.bodyKind == http1.BodyNone)
	if safe && cl.tries <= pl.retries && cl.lp.budget.retry(pl.retryPct) {
		cl.count(kindOf(f))
		cl.retryH2(be)
		return
	}
	if f == failConnect && !pl.anyAvailable(cl.lp.now) {
		cl.count(errConnect)
		cl.rejectUnavailable()
		return
	}
	cl.rejectFor(statusFor(f), kindOf(f), be)
}

// retryH2 sends the request again, to a backend other than be.
func (cl *client) retryH2(be *backend) {
	cl.dispatch(be)
	if g := cl.gc; g != nil && cl.state == csBody && g.h.c != nil {
		g.resumeClient() // the rest of the body (a new connection resumes it when it opens)
	}
}

// retryUnavailable retries, when the rules allow, a gRPC call that the
// backend answered with a trailers-only UNAVAILABLE (14) and nothing
// else: the backend did not take the call, and the client has seen
// nothing of it. The request's payload must all be in the replay copy,
// and the retry within upstream.retries and the retry budget. It reports
// whether the call went to another backend.
func (g *h2call) retryUnavailable(ev *http2.ClientEvent) bool {
	cl := g.cl
	pl := cl.pool
	if !cl.grpc || !ev.EndStream || ev.Status != http.StatusOK || cl.respStarted || !cl.replayable() ||
		cl.tries > pl.retries || grpcStatusIn(ev.Fields) != grpcUnavailable || !cl.lp.budget.retry(pl.retryPct) {
		return false
	}
	g.done = true
	g.respEnd = true
	if !g.reqDone {
		g.h.c2.Reset(g.id, http2.ErrCodeCancel) // the backend wants no more of it
	}
	g.h.removed(g)
	g.h.flush()
	cl.gc = nil
	g.headAt = time.Now().UnixNano()
	g.release(statusOutcome(http.StatusServiceUnavailable))
	cl.retryH2(g.be)
	return true
}

// grpcStatusIn is the grpc-status among fields, -1 if none.
func grpcStatusIn(fields []http2.Field) int {
	for i := range fields {
		if fields[i].Name == "grpc-status" {
			return grpcwire.ParseStatus(fields[i].Value)
		}
	}
	return -1
}

// next takes a validated chunked body's framing from b up to the next
// payload: it returns that payload (part of b), how many bytes of b it
// used, and whether the body ended (trailers are skipped).
func (d *chunkDecoder) next(b []byte) (data []byte, n int, end bool) {
	for n < len(b) {
		switch d.state {
		case cdSize:
			if v := unhexDigit(b[n]); v >= 0 {
				d.size = d.size<<4 | int64(v)
				n++
				continue
			}
			d.state = cdExt
		case cdExt:
			i := bytes.IndexByte(b[n:], '\n')
			if i < 0 {
				return nil, len(b), false
			}
			n += i + 1
			if d.size == 0 {
				d.state = cdTrailer
			} else {
				d.state = cdData
			}
		case cdData:
			k := int(min(int64(len(b)-n), d.size))
			data = b[n : n+k]
			n += k
			d.size -= int64(k)
			if d.size == 0 {
				d.state = cdDataEnd
			}
			return data, n, false
		case cdDataEnd:
			i := bytes.IndexByte(b[n:], '\n')
			if i < 0 {
				return nil, len(b), false
			}
			n += i + 1
			d.state, d.size = cdSize, 0
		case cdTrailer:
			// size counts the current line's bytes other than CR.
			c := b[n]
			n++
			switch {
			case c == '\n' && d.size == 0:
				d.state = cdSize
				return nil, n, true
			case c == '\n':
				d.size = 0
			case c != '\r':
				d.size++
			}
		}
	}
	return nil, n, false
}

// gRPC. A request is a gRPC call when its content-type is
// application/grpc (or application/grpc+proto, ...). When ConnX fails
// such a call itself, the client gets what a gRPC client can read: HTTP
// 200 with grpc-status and grpc-message, as a trailers-only response (an
// HTTP/2 client gets one HEADERS frame with END_STREAM).

// noteGRPC records whether the request r is a gRPC call and whether its
// client takes trailers.
// A valid grpc-timeout sets the call's deadline (grpcDeadline), counted
// from now.
func (cl *client) noteGRPC(r *http1.Request) {
	cl.grpc, cl.teTrailers = false, false
	cl.grpcDeadline, cl.grpcCode = 0, -1
	var timeout []byte
	for i := range r.Headers {
		h := &r.Headers[i]
		switch {
		case len(h.Name) == 12 && http1.EqualFold(h.Name, "content-type"):
			v := h.Value
			cl.grpc = len(v) >= 16 && http1.EqualFold(v[:16], "application/grpc") && (len(v) == 16 || v[16] == '+' || v[16] == ';')
		case len(h.Name) == 2 && http1.EqualFold(h.Name, "te"):
			cl.teTrailers = bytes.Contains(h.Value, []byte("trailers"))
		case len(h.Name) == 12 && http1.EqualFold(h.Name, "grpc-timeout"):
			timeout = h.Value
		}
	}
	if cl.grpc && timeout != nil {
		if d, ok := grpcwire.ParseTimeout(timeout); ok {
			cl.grpcDeadline = satAdd(cl.lp.now, int64(d))
		}
	}
}

// satAdd is a+b for b >= 0, at most the largest int64.
func satAdd(a, b int64) int64 {
	if a > noDeadline-b {
		return noDeadline
	}
	return a + b
}

// gRPC status codes ConnX answers with.
const (
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcDeadlineExceeded  = 4
	grpcResourceExhausted = 8
)

// grpcStatusFor is the gRPC status of a call ConnX answered with HTTP
// status code.
func grpcStatusFor(code int) (int, string) {
	switch code {
	case http.StatusServiceUnavailable:
		return grpcUnavailable, "connx: no backend available"
	case http.StatusBadGateway:
		return grpcUnavailable, "connx: backend failed"
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return grpcDeadlineExceeded, "connx: timeout"
	case http.StatusTooManyRequests:
		return grpcResourceExhausted, "connx: rate limited"
	case http.StatusRequestEntityTooLarge:
		return grpcResourceExhausted, "connx: request too large"
	}
	return grpcInternal, "connx: " + http.StatusText(code)
}

// appendGRPCError appends the trailers-only answer for a call ConnX
// failed with HTTP status code, and records its gRPC status; keep leaves
// the connection open.
func (cl *client) appendGRPCError(b []byte, code int, keep bool) []byte {
	st, msg := grpcStatusFor(code)
	cl.grpcCode = st
	return appendGRPCStatus(b, st, msg, keep)
}

// grpcStatus is the gRPC status of a call that ended with HTTP status
// code: the one ConnX sent or passed on; CANCELLED for a client that
// went away first; for a response without grpc-status, what a gRPC
// client makes of its HTTP status, or -1 ("other") for a 200.
func (cl *client) grpcStatus(code int) int {
	switch {
	case cl.grpcCode >= 0:
		return cl.grpcCode
	case code == statusClientGone:
		return 1 // CANCELLED
	case code == http.StatusOK:
		return -1
	}
	return grpcwire.FromHTTPStatus(code)
}

// noteGRPCStatus records the grpc-status among fields (a trailers-only
// head, or trailers).
func (cl *client) noteGRPCStatus(fields []http2.Field) {
	if st := grpcStatusIn(fields); st >= 0 {
		cl.grpcCode = st
	} else if len(fields) > 0 {
		cl.grpcCode = grpcOther // trailers without a grpc-status
	}
}

// appendGRPCStatus appends a trailers-only answer with gRPC status st and
// message msg; keep leaves the connection open.
func appendGRPCStatus(b []byte, st int, msg string, keep bool) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: "...)
	b = strconv.AppendInt(b, int64(st), 10)
	b = append(b, "\r\nGrpc-Message: "...)
	b = append(b, msg...)
	b = append(b, "\r\nContent-Length: 0\r\n"...)
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}
