package proxy

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/connx/connx/internal/breaker"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/ratelimit"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// cstate is where a client connection is in its current request.
type cstate uint8

const (
	csIdle      cstate = iota // between requests (keep-alive idle)
	csHead                    // part of a request head has arrived
	csBody                    // forwarding the request body
	csWait                    // request forwarded; response in progress
	csClosing                 // last response written; flushing, then closing
	csTunnel                  // upgraded: bytes pass both ways (tunnel.go)
	csProxy                   // waiting for the PROXY protocol header (proxyproto.go)
	csHandshake               // in its TLS handshake (tls.go)
)

// lingerTime is how long a closing client may keep sending before ConnX
// closes the socket; reading (and dropping) what it sends meanwhile keeps
// the kernel from answering with a reset that would destroy the response.
const lingerTime = int64(time.Second)

// client is one accepted connection. It handles one request at a time;
// pipelined requests wait in the input buffer (bounded by the detach rule)
// until the response before them is complete.
type client struct {
	peer
	lk links[*client]

	state cstate
	req   *http1.Request // borrowed from the loop while a head is parsed
	sn    *snapshot      // the snapshot the current request runs under
	ip    netip.Addr
	pp    *ppClient // PROXY protocol state (proxyproto.go); nil when not in use
	// connID numbers the client connection from 1 in accept order (the
	// access log's conn); a stream client has its connection's.
	connID uint64

	up   *upstream // serving the current request, if any
	hash uint64    // consistent-hash key of the current request

	// The current request's route (nil: none), the pool it goes to (nil:
	// none, ConnX answers), and the timeouts that apply once the route is
	// known. They point into sn.
	rt   *routeAct
	pool *pool
	to   *timeouts

	head []byte // forwarded head, kept for a retry until the response starts

	bodyLeft int64
	chunks   *http1.ChunkedScanner // a chunked body's scanner, borrowed from the loop
	bodySent int64
	tries    int

	// Small fields together, to keep the struct (one per idle
	// connection) small.
	bodyKind    http1.BodyKind
	minor       uint8 // client's HTTP minor version
	h1          bool  // the connection was found to speak HTTP/1.x (see h2)
	isHead      bool  // request method is HEAD
	idempotent  bool
	expect100   bool
	keepAlive   bool // the request allows another after it
	closeAfter  bool // close once the current response is written
	respStarted bool // a final response head went to the client
	holding     bool // a chunked head waits for its first chunk-size line
	linger      bool // on close, read and drop input for a while first

	// The current request's record, for metrics and the access log.
	inReq   bool       // a request is in progress and not yet counted
	method  uint8      // index in stats.Methods
	status  int        // final status sent to the client (0: none yet)
	startNs int64      // unix ns the head was read
	be      *backend   // the backend of the latest attempt, nil if none
	log     *logRecord // access log fields, when this request is logged

	upgrade  []byte // the Upgrade value to forward, nil if not an upgrade
	tunnelAt int64  // last time bytes moved through the tunnel

	pendingOut int64 // bytes about to be written when end runs early
	served     bool  // a request head has been read on this connection
	dropBody   bool  // the backend closes after its response: the rest of the body is dropped
	ridOff     int32 // the request ID's place in head (ridEnd 0: none)
	ridEnd     int32

	// HTTP/2 (h2conn.go, h2stream.go): h2 is set on a connection that
	// speaks HTTP/2, st on the client that serves one of its streams.
	h2 *h2conn
	st *h2stream

	// gc is the request's call on an HTTP/2 backend (h2call.go); grpc
	// marks a gRPC call, teTrailers a client that takes trailers.
	gc         *h2call
	grpc       bool
	teTrailers bool
	// grpcDeadline is when a gRPC call's grpc-timeout runs out (loop
	// clock; 0: none); grpcCode the call's gRPC status once known (-1
	// before), for connx_grpc_calls_total.
	grpcDeadline int64
	grpcCode     int
	// replay is a gRPC call's request payload sent so far, kept (up to
	// grpcReplayMax, a loop buffer) so that the call can be retried on
	// another backend (h2Failed); replayOver: more was sent, no retry.
	// h2dec is the call's chunked-body decoder, which a retry continues.
	replay     []byte
	replayOver bool
	h2dec      chunkDecoder

	deadline int64 // unix ns; meaning depends on state
	closeAt  int64 // flush/linger limit while csClosing
	lastOut  int64 // bytes the socket had taken at the last sweep (send-stall check)
	stallAt  int64 // when output last made progress
}

//lint:ignore U1000 called through list's type constraint
func (cl *client) links() *links[*client] { return &cl.lk }

// onTraffic handles input from the client socket.
func (cl *client) onTraffic() {
	if !cl.flushOwed() {
		cl.abort()
		return
	}
	if cl.lingering || cl.state == csClosing {
		if n := cl.buffered(); n > 0 {
			cl.consume(n)
		}
		return
	}
	cl.process()
}

// process advances the state machine as far as the buffered input allows.
func (cl *client) process() {
	if cl.h2process() {
		return
	}
	for cl.attached() && !cl.closeMe && !cl.detaching {
		switch cl.state {
		case csProxy:
			if !cl.readProxyHeader() {
				return
			}
		case csHandshake:
			cl.tlsHandshake() // tlsTraffic goes on once it is over
			return
		case csIdle, csHead:
			if len(cl.owed) > cl.sn.highWater {
				// The client is not reading what it asked for: its next
				// request waits in the kernel until it has.
				cl.park()
				return
			}
			if !cl.readHead() {
				return
			}
		case csBody:
			if !cl.forwardBody() {
				return
			}
		case csWait:
			cl.parkPipelined()
			return
		case csTunnel:
			cl.pump()
			return
		default:
			return
		}
	}
}

// The chunked framing a body may carry: framingFactor times
// limits.maxRequestBody plus framingSlack. A 1-byte chunk written with a
// 16-digit size takes 19 bytes of framing.
const (
	framingFactor = 16
	framingSlack  = 64 << 10
)

// readBurst is the most gnet reads from a socket in one go (its default
// read buffer).
const readBurst = 64 << 10

// parkPipelined bounds the pipelined input that waits behind the current
// exchange: over one head's worth, the client is parked until the
// exchange ends.
func (cl *client) parkPipelined() {
	if cl.attached() && cl.buffered() > cl.sn.lim.MaxHeaderBytes {
		cl.park()
	}
}

// park stops gnet reading the client by detaching it. Should the
// descriptor not be duplicated, a client whose input grows past the
// connection buffer plus one read meanwhile is cut off.
func (cl *client) park() {
	if !cl.attached() || cl.detaching || cl.closeMe || cl.detach() {
		return
	}
	if cl.buffered() > cl.sn.highWater+readBurst {
		cl.abort()
	}
}

// readHead parses the next request head and dispatches it. It reports
// whether processing may continue.
func (cl *client) readHead() bool {
	buf := cl.data()
	if len(buf) == 0 {
		return false
	}
	lp := cl.lp
	sn := lp.srv.snap.Load()
	if cl.req == nil {
		cl.req = lp.getReq()
	}
	n, err := http1.ParseRequest(buf, cl.req, &sn.lim)
	if err == http1.ErrNeedMore {
		if cl.state == csIdle {
			cl.state = csHead
			if cl.served {
				// A keep-alive connection's next request: its head has
				// clientHeader from its first byte. The first request's
				// deadline runs from the connection's open (OnOpen).
				cl.deadline = lp.now + sn.clientHeader
			}
		}
		return false
	}
	if cl.holding {
		sn = cl.sn // the head was read, and its record begun, under cl.sn
	} else {
		cl.sn = sn
		cl.served = true
		cl.begin(cl.req)
		cl.noteGRPC(cl.req)
	}
	if err != nil {
		cl.method = methodOther
		cl.reject(statusOfParseError(err))
		return false
	}
	r := cl.req
	// A client that sent Expect: 100-continue waits for the 100 before its
	// body, so its head goes at once, unless body bytes came anyway.
	if r.Chunked && (!r.Expect100 || len(buf) > n) && !cl.firstChunkReady(buf[n:]) {
		return false // held (the Request is kept), or rejected
	}
	cl.holding = false
	// The parsed head is used only in this call: hand the Request back to
	// the loop once done, so idle connections hold no header arrays.
	defer cl.releaseReq()
	cl.minor = uint8(r.Minor)
	cl.keepAlive = r.KeepAlive && !lp.srv.draining.Load()
	if h := lp.srv.headHook.Load(); h != nil {
		(*h)() // tests: Shutdown beginning now
	}
	cl.isHead = string(r.Method) == http.MethodHead
	cl.idempotent = idempotent(r.Method)
	cl.expect100 = r.Expect100
	cl.closeAfter = false
	cl.respStarted = false
	cl.dropBody = false
	cl.bodySent = 0
	cl.tries = 0
	cl.dropReplay()
	cl.h2dec = chunkDecoder{}
	cl.bodyKind = r.BodyKind()
	cl.bodyLeft = r.ContentLength
	if cl.bodyKind == http1.BodyChunked {
		if cl.chunks == nil {
			cl.chunks = lp.getChunks()
		} else {
			cl.chunks.Reset()
		}
		// Only ConnX sets it, from a verified certificate: not in the
		// head (appendRequestHead), not in the trailers either.
		cl.chunks.Forbid(cl.sn.subjHeader)
	}
	cl.upgrade = nil
	if r.Upgrade {
		cl.upgrade = upgradeValue(r, sn.upgrades)
	}

	switch {
	case string(r.Method) == http.MethodConnect:
		cl.reject(http.StatusMethodNotAllowed)
		return false
	case sn.maxBody > 0 && r.ContentLength > sn.maxBody:
		cl.reject(http.StatusRequestEntityTooLarge)
		return false
	case sn.metricsPath != "" && string(pathOnly(r.Path)) == sn.metricsPath && cl.bodyKind == http1.BodyNone && sn.metricsFor(cl.ip):
		cl.consume(n)
		cl.serveMetrics()
		return true
	case sn.redirectHTTP && cl.redirectsHTTPS(r):
		cl.redirectHTTPS(r, n)
		return true
	}

	if sn.limiter != nil && !cl.admitRate(sn.limiter, r, n) {
		return true
	}
	cl.pool, lp.fwd = sn.def, nil
	if sn.routes != nil {
		cl.pool = nil
		if ok, cont := cl.routeRequest(r, n); !ok {
			return cont
		}
	}
	cl.hash = cl.pool.requestHash(cl, r)
	lp.budget.request()
	be, probe := cl.choose(nil)
	if be == nil {
		cl.rejectUnavailable()
		return false
	}
	// With preserveHost off the Host names the first backend picked; a
	// retry elsewhere keeps that head.
	cl.ridEnd = 0
	cl.head = appendRequestHead(lp.getBuf(), cl, sn, be)
	lp.fwd = nil
	if cl.log != nil {
		cl.log.id = string(cl.requestID())
	}
	cl.consume(n)
	if cl.bodyKind == http1.BodyNone {
		cl.state = csWait
		cl.deadline = 0
	} else {
		cl.state = csBody
		cl.deadline = lp.now + cl.to.clientBody
	}
	cl.assign(be, probe)
	return true
}

// firstChunkProbe bounds the bytes examined for the first chunk-size line:
// 16 hex digits, an extension of at most 4096 bytes and the CRLF fit.
const firstChunkProbe = 4<<10 + 64

// firstChunkReady checks the start of a chunked request body before the
// head goes anywhere: no backend is picked, dialled or sent a byte until
// the first chunk-size line has arrived and is valid, so a body malformed
// from its first byte is answered 400 (413 if its first chunk alone is
// over limits.maxRequestBody) and never reaches a backend. Until the line
// is complete the head is held (csHead, the Request kept) under the
// clientBody timeout. It reports whether the request may go on.
//
// A request with Expect: 100-continue is not held: its client waits for
// the 100 (or its own timeout) before sending the body.
func (cl *client) firstChunkReady(body []byte) bool {
	if len(body) > firstChunkProbe {
		body = body[:firstChunkProbe]
	}
	var s http1.ChunkedScanner
	if _, _, err := s.Scan(body, &cl.sn.lim); err != nil {
		cl.holding = false
		cl.reject(statusOfParseError(err))
		return false
	}
	if cl.sn.maxBody > 0 && s.Payload() > cl.sn.maxBody {
		cl.holding = false
		cl.reject(http.StatusRequestEntityTooLarge)
		return false
	}
	if s.Chunks() > 0 {
		return true
	}
	if !cl.holding {
		cl.holding = true
		cl.state = csHead
		cl.deadline = cl.lp.now + cl.sn.to.clientBody
	}
	return false
}

// admitRate asks the rate limiter lim about request r (head of n bytes).
// When it is refused, the client gets 429 with the RateLimit headers and
// keeps its connection (unless a body would follow, which is not read),
// and admitRate reports false.
func (cl *client) admitRate(lim *ratelimit.Limiter, r *http1.Request, n int) bool {
	lp := cl.lp
	rq := &lp.limReq
	rq.Reset(cl.ip, r.Path)
	for i := range r.Headers {
		lim.Collect(rq, r.Headers[i].Name, r.Headers[i].Value)
	}
	d := lim.Decide(rq)
	if d.Allowed {
		return true
	}
	keep := cl.keepOpen(n) && cl.bodyKind == http1.BodyNone
	lp.scratch = d.AppendTooMany(lp.scratch[:0], keep, cl.isHead)
	if cl.grpc {
		lp.scratch = cl.appendGRPCError(lp.scratch[:0], http.StatusTooManyRequests, keep)
	}
	cl.sendAnswer(http.StatusTooManyRequests, errRateLimited, lp.scratch, n, keep)
	return false
}

// choose picks a backend other than skip whose breaker admits the request;
// probe is non-zero when the request is a half-open breaker's probe.
func (cl *client) choose(skip *backend) (*backend, breaker.Probe) {
	for range 3 { // a half-open breaker may refuse: try others
		be := cl.pool.pick(cl.lp, skip, cl.hash)
		if be == nil {
			return nil, 0
		}
		if ok, probe := cl.pool.admit(be, cl.lp.now); ok {
			return be, probe
		}
		skip = be
	}
	return nil, 0
}

// dispatch assigns a retry to a backend other than skip.
func (cl *client) dispatch(skip *backend) {
	be, probe := cl.choose(skip)
	if be == nil && skip != nil && skip.usable(cl.lp.now, cl.pool.panicking()) {
		// No other backend: retry the same one. A connect failure has
		// marked it down, so this is a reset, typically a pooled
		// connection the backend closed while idle.
		var ok bool
		if ok, probe = cl.pool.admit(skip, cl.lp.now); ok {
			be = skip
		}
	}
	if be == nil {
		cl.rejectUnavailable()
		return
	}
	cl.assign(be, probe)
}

// assign sends the request to be over a pooled connection, or starts a
// connection that will send it.
func (cl *client) assign(be *backend, probe breaker.Probe) {
	lp := cl.lp
	cl.tries++
	cl.be = be
	be.node.Begin()
	if cl.pool.h2 {
		cl.assignH2(be, probe)
		return
	}
	up := lp.idleFor(cl, be)
	if up == nil {
		up = newUpstream(lp, be, cl.pool.maxIdle)
		up.bind(cl)
		up.probe = probe
		lp.dial(up, cl.to.connect)
		return
	}
	up.bind(cl)
	up.probe = probe
	up.sendHead()
}

// forwardBody passes buffered body bytes to the upstream. It reports
// whether processing may continue.
func (cl *client) forwardBody() bool {
	if cl.gc != nil {
		return cl.gc.forwardBody()
	}
	up := cl.up
	if cl.dropBody {
		// The backend answered and closes without reading the rest of the
		// body: drop it; the connection closes after the response.
		if n := cl.buffered(); n > 0 {
			cl.consume(n)
		}
		return false
	}
	// The body flows while the response does (full duplex): a backend
	// may answer at once and keep reading, as a streaming echo or an
	// early 202 does.
	if up == nil || up.state == usConnecting || up.eof {
		if cl.buffered() > cl.sn.highWater {
			cl.park()
		}
		return false
	}
	if up.outbound() > cl.sn.highWater {
		cl.park()
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
	if k > 0 {
		if !up.write(buf[:k]) {
			return false // the upstream failed; its cleanup decided
		}
		cl.bodySent += int64(k)
		cl.consume(k)
	}
	now := cl.lp.now
	up.deadline = now + cl.to.upstreamHeader
	if up.state != usHead {
		up.deadline = now + cl.to.upstreamRead
	}
	if done {
		cl.state = csWait
		cl.deadline = 0
		if up.state == usSending && len(up.owed) == 0 {
			up.finish() // the response was complete already
		}
		// Else the sweep finishes it once the body's last bytes are out:
		// finish now would close a connection that still owes them.
		return true
	}
	cl.deadline = now + cl.to.clientBody
	if up.outbound() > cl.sn.highWater {
		cl.park()
		return false
	}
	return k > 0
}

// upstreamFailed handles the loss of the upstream before a final response
// head reached the client: retry when safe, otherwise answer with an error.
func (cl *client) upstreamFailed(f failure, up *upstream) {
	if cl.closed {
		return
	}
	if cl.respStarted {
		cl.abort()
		return
	}
	pl := cl.pool
	if f == failLocal {
		// This host ran out of descriptors or ports: not the backend's
		// fault, and another backend would fail the same way.
		cl.rejectFor(statusFor(f), errLocal, nil)
		return
	}
	if f == failConnect {
		up.be.downUntil.Store(cl.lp.now + int64(2*time.Second))
	}
	safe := cl.bodySent == 0 &&
		(f == failConnect || (f == failUpstreamReset && cl.idempotent && cl.bodyKind == http1.BodyNone))
	if safe && cl.tries <= pl.retries && cl.lp.budget.retry(pl.retryPct) {
		cl.count(kindOf(f))
		cl.dispatch(up.be)
		if cl.state == csBody && cl.attached() && !cl.lp.inCallback(&cl.peer) {
			_ = cl.c.Wake(nil)
		}
		return
	}
	if f == failConnect && !pl.anyAvailable(cl.lp.now) {
		cl.count(errConnect) // the failure that made it a 503
		cl.rejectUnavailable()
		return
	}
	cl.rejectFor(statusFor(f), kindOf(f), up.be)
}

// rejectUnavailable answers 503 when no backend can take the request, with
// a Retry-After until the first may be back.
func (cl *client) rejectUnavailable() {
	lp := cl.lp
	lp.scratch = appendUnavailable(lp.scratch[:0], cl.pool.retryAfter(lp.now))
	if cl.grpc {
		lp.scratch = cl.appendGRPCError(lp.scratch[:0], http.StatusServiceUnavailable, false)
	}
	if !cl.respStarted {
		cl.endOut(http.StatusServiceUnavailable, nil, errNoBackend, len(lp.scratch))
	}
	cl.rejectWith(lp.scratch)
}

// exchangeDone runs when the response is completely written (or the
// exchange ended otherwise) and the upstream is released.
func (cl *client) exchangeDone() {
	lp := cl.lp
	lp.putBuf(cl.head)
	cl.head = nil
	cl.dropReplay()
	lp.putChunks(cl.chunks)
	cl.chunks = nil
	if cl.st != nil {
		cl.st.exchangeDone()
		return
	}
	if cl.closed {
		return
	}
	if cl.closeAfter || !cl.keepAlive || cl.state == csBody ||
		(lp.srv.draining.Load() && cl.buffered() == 0) {
		cl.linger = cl.linger || cl.state == csBody // the rest of its body may be coming
		cl.closeGracefully()
		return
	}
	cl.state = csIdle
	cl.deadline = lp.now + cl.sn.clientIdle
	// The next request has no response yet: an error before its head is
	// complete (timeout, malformed head) must be answered, not cut short.
	cl.respStarted = false
	switch {
	case cl.isDetached():
		if len(cl.owed) <= cl.sn.highWater {
			cl.resume(cl) // else the sweep does, once the client reads
		}
	case cl.buffered() > 0 && cl.attached():
		if lp.inCallback(&cl.peer) {
			return // process() is on the stack and continues
		}
		_ = cl.c.Wake(nil)
	}
}

// reject answers the current request with an error status and closes.
func (cl *client) reject(code int) {
	kind := errBadRequest
	if code == http.StatusRequestTimeout {
		kind = errClientTimeout
	}
	cl.rejectFor(code, kind, cl.be)
}

// rejectFor answers with the error status code, counted as an error of
// kind (attributed to backend be, if any), and closes.
func (cl *client) rejectFor(code int, kind errKind, be *backend) {
	resp := errorResponse(code)
	if cl.grpc {
		resp = cl.appendGRPCError(nil, code, false)
	}
	if !cl.respStarted {
		cl.endOut(code, be, kind, len(resp))
	}
	cl.rejectWith(resp)
}

// rejectWith answers with the complete response resp and closes.
func (cl *client) rejectWith(resp []byte) {
	if cl.closed {
		return
	}
	complete := false // the client has its whole response
	cl.dropCall()
	if up := cl.up; up != nil {
		complete = up.state == usSending
		cl.up = nil
		up.abandon()
	}
	if cl.respStarted {
		if complete {
			// The body failed after a complete response: let the client
			// read it, then close.
			cl.linger = true
			cl.closeGracefully()
			return
		}
		cl.abort()
		return
	}
	cl.respStarted = true
	cl.linger = true // the client may still be sending
	// closeGracefully shuts the write side at once: the FIN can go with
	// the answer (peer.last).
	cl.last = cl.st == nil && cl.state != csClosing
	if cl.write(resp) {
		cl.closeGracefully()
	}
}

// closesAfter reports whether the connection is closed (or its write
// side shut) as soon as the response in progress is out, in the same
// callback: exchangeDone then goes straight to closeGracefully. Its last
// bytes can then wait for the FIN (peer.last). A request body still
// coming keeps the response apart from the close.
func (cl *client) closesAfter() bool {
	return cl.st == nil && cl.state == csWait && (cl.closeAfter || !cl.keepAlive)
}

// closeGracefully flushes what was written, shuts the write side, and
// closes after the client's FIN or lingerTime.
func (cl *client) closeGracefully() {
	if cl.st != nil {
		cl.st.exchangeDone()
		return
	}
	if cl.closed || cl.state == csClosing {
		return
	}
	cl.state = csClosing
	cl.closeAt = cl.lp.now + int64(cl.sn.shutdown)
	cl.lp.srv.flushing.Add(1)
	cl.lp.markBusy(&cl.peer)
	cl.tlsCloseNotify()
	cl.flushCheck()
}

// flushCheck moves a closing client on once its output is written.
func (cl *client) flushCheck() {
	if cl.lingering || cl.closed {
		return
	}
	if !cl.flushOwed() {
		cl.abort()
		return
	}
	if len(cl.owed) > 0 || !cl.attached() {
		if cl.isDetached() && !cl.resuming {
			// Unread input may wait in the kernel, and closing over it
			// would reset the connection and destroy the response:
			// take the client back to read and drop it while lingering.
			cl.resume(cl)
		}
		if cl.lp.now > cl.closeAt {
			cl.abort()
		}
		return
	}
	cl.lp.srv.flushing.Add(-1)
	cl.lingering = true // the flush is accounted for
	if !cl.linger && cl.buffered() == 0 {
		// The exchange ended cleanly and the client sent nothing more:
		// close without lingering. Input may still have arrived since
		// the last read, and a close over unread input resets the
		// connection, dropping what the socket has not sent: the last
		// bytes held back for the FIN (peer.last) leave with it first.
		if cl.last {
			_ = unix.Shutdown(cl.c.Fd(), unix.SHUT_WR)
		}
		cl.abort()
		return
	}
	cl.closeAt = cl.lp.now + lingerTime
	if unix.Shutdown(cl.c.Fd(), unix.SHUT_WR) != nil {
		cl.abort()
	}
}

// abort closes the client at once; a response in progress is cut short so
// the client sees an incomplete message, never a fake complete one.
func (cl *client) abort() {
	if cl.st != nil {
		cl.st.abort()
		return
	}
	if cl.closed {
		return
	}
	if cl.isDetached() && !cl.resuming {
		cl.closeDetached()
		cl.lp.gone(&cl.peer)
		return
	}
	if cl.attached() {
		cl.lp.closeConn(&cl.peer)
		return
	}
	// Resuming: OnOpen will see closeMe and close it.
	cl.closeMe = true
}

// cleanup releases everything the client holds. It runs once.
func (cl *client) cleanup() {
	lp := cl.lp
	cl.proxyHeaderGone()
	cl.tlsHandshakeGone()
	if cl.h2 != nil {
		cl.h2.close()
	}
	if cl.inReq {
		// The client left (or was cut off) before its response was
		// complete: 499 when it got no status at all, as nginx logs it.
		code := cl.status
		if code == 0 {
			code = statusClientGone
		}
		cl.end(code, cl.be, errClientAbort)
	}
	tunnel := cl.state == csTunnel
	if tunnel {
		lp.st.tunnels.Add(-1)
	}
	cl.dropOwed()
	cl.dropCall()
	cl.dropReplay()
	lp.clients.remove(cl)
	lp.srv.active.Add(-1)
	if cl.state == csClosing && !cl.lingering {
		lp.srv.flushing.Add(-1)
	}
	if up := cl.up; up != nil {
		cl.up = nil
		if tunnel {
			up.clientLeftTunnel(lp.now, cl.sn)
		} else {
			up.abandon()
		}
	}
	lp.putBuf(cl.head)
	cl.head = nil
	lp.putChunks(cl.chunks)
	cl.chunks = nil
	cl.releaseReq()
	cl.stash = nil
	cl.c = nil
}

// releaseReq returns the borrowed Request to the loop.
func (cl *client) releaseReq() {
	if cl.req != nil {
		cl.lp.putReq(cl.req)
		cl.req = nil
	}
}

// tick runs from the loop's sweep.
func (cl *client) tick(now int64, full bool) {
	if cl.h2 != nil && !cl.h2.tick(now, full) {
		return
	}
	if cl.state == csTunnel {
		cl.tunnelTick(now, full) // parked or not
		return
	}
	if !cl.flushOwed() {
		cl.abort()
		return
	}
	if cl.state == csClosing {
		if cl.lingering {
			if now > cl.closeAt {
				cl.abort()
			}
			return
		}
		cl.flushCheck()
		return
	}
	if cl.isDetached() {
		switch {
		case cl.resuming:
		case cl.mayResume():
			cl.resume(cl)
		case full && (cl.stalled(now) || cl.hungUp()):
			// It stopped reading, or it is gone: nothing else would
			// ever free the parked descriptor.
			cl.abort()
		}
		return
	}
	if !full || !cl.attached() {
		return
	}
	switch cl.state {
	case csProxy:
		if now > cl.deadline {
			cl.proxyHeaderFailed(ppTimeout)
			return
		}
	case csHandshake:
		if now > cl.deadline {
			cl.abort() // counted as a timeout by cleanup
			return
		}
	case csIdle:
		if now > cl.deadline && len(cl.owed) > 0 {
			// Still reading its last response: the idle time starts when
			// that is written (a client that stops reading is dropped by
			// the stall check below).
			cl.deadline = now + cl.sn.clientIdle
		}
		if now > cl.deadline {
			cl.abort()
			return
		}
		if cl.tls != nil && cl.buffered() == 0 {
			// Idle: crypto/tls's input buffers go back (at most once
			// per sweep, not per request).
			cl.tls.Release()
		}
	case csHead, csBody:
		if now > cl.deadline {
			if !cl.inReq {
				// The head never completed: count it as an unknown method.
				cl.inReq, cl.method, cl.status, cl.be = true, methodOther, 0, nil
				cl.rt, cl.pool = nil, nil
				cl.startNs = cl.deadline - cl.sn.clientHeader
			}
			cl.reject(http.StatusRequestTimeout)
			return
		}
	}
	// Input that waited: park it now, or move the body on if the
	// upstream drained.
	switch {
	case cl.state == csWait:
		cl.parkPipelined()
	case cl.state == csBody && cl.buffered() > 0:
		cl.process()
	}
	if !cl.attached() || cl.detaching || cl.closeMe {
		return
	}
	// A client that stops reading its response is dropped after the idle
	// timeout without progress.
	if cl.stalled(now) {
		cl.abort()
	}
}

// busy reports whether the client needs the 2 ms sweep.
func (cl *client) busy() bool {
	if cl.h2 != nil && cl.h2.busy() {
		return true
	}
	if len(cl.owed) > 0 || cl.isDetached() || cl.state == csClosing && !cl.lingering {
		return true
	}
	up := cl.up
	return cl.state == csTunnel && up != nil && (len(up.owed) > 0 || up.isDetached())
}

// mayResume reports whether what made a parked client wait is over.
func (cl *client) mayResume() bool {
	lw := cl.sn.lowWater
	switch cl.state {
	case csIdle, csHead:
		return len(cl.owed) < lw // it read enough of its responses
	case csBody:
		if cl.gc != nil {
			return len(cl.gc.reqOwed) == 0 && cl.gc.h.c != nil
		}
		up := cl.up
		return up == nil || up.state != usConnecting && !up.eof && len(up.owed) < lw
	}
	return false // csWait: exchangeDone resumes it
}

// stalled reports whether output has waited for the client, without the
// client taking any of it, for longer than clientIdle.
func (cl *client) stalled(now int64) bool {
	taken := cl.sent - int64(len(cl.owed))
	if len(cl.owed) == 0 || taken != cl.lastOut {
		cl.lastOut, cl.stallAt = taken, now
		return false
	}
	return now-cl.stallAt > cl.sn.clientIdle
}

// serveMetrics answers the main-port metrics route. The exposition is
// rendered on its own goroutine (a scrape takes far longer than a request
// should hold the loop) and written back on the loop.
func (cl *client) serveMetrics() {
	cl.respStarted = true
	cl.state = csWait
	cl.deadline = 0
	lp := cl.lp
	render := lp.srv.metricsRender()
	go func() {
		body, err := render(nil)
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			cl.metricsReady(body, err)
			return nil
		}))
	}()
}

// metricsReady writes a rendered exposition, on the loop.
func (cl *client) metricsReady(body []byte, err error) {
	if cl.closed || cl.state != csWait || cl.up != nil {
		return
	}
	// The client may be parked meanwhile (it pipelined more than a
	// head): the answer goes to the parked descriptor, and exchangeDone
	// takes the client back.
	if err != nil {
		cl.lp.srv.log.Error("metrics", "err", err)
		cl.rejectFor(http.StatusInternalServerError, errNone, nil)
		return
	}
	b := cl.lp.scratch[:0]
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: "...)
	b = appendInt(b, int64(len(body)))
	b = append(b, "\r\n"...)
	if !cl.keepAlive {
		b = append(b, "Connection: close\r\n"...)
	} else if cl.minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	if !cl.isHead {
		b = append(b, body...)
	}
	cl.lp.scratch = b
	cl.endOut(http.StatusOK, nil, errNone, len(b))
	if !cl.write(b) {
		return
	}
	cl.exchangeDone()
}

// pathOnly is the path of an origin-form target, without the query.
func pathOnly(target []byte) []byte {
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

func idempotent(m []byte) bool {
	switch string(m) {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// statusClientGone is the status recorded for a request whose client left
// before any status was sent (nginx's 499).
const statusClientGone = 499

// errKind is a stats.ErrorKind plus one; 0 means no error.
type errKind uint8

const (
	errNone errKind = iota
	errNoBackend
	errConnect
	errTimeout
	errBadResponse
	errUpstreamReset
	errClientAbort
	errRateLimited
	errBadRequest
	errClientTimeout
	errLocal
)

// kindOf is the error kind a failure counts as.
func kindOf(f failure) errKind {
	switch f {
	case failNoBackend:
		return errNoBackend
	case failConnect:
		return errConnect
	case failTimeout, failUpstreamIdle:
		return errTimeout
	case failBadResponse, failUnsupported:
		return errBadResponse
	case failEarlySwitch:
		return errBadRequest
	}
	return errUpstreamReset
}

// begin starts the record of the request whose head r was just parsed
// (r's fields may be partial when parsing failed).
func (cl *client) begin(r *http1.Request) {
	cl.inReq = true
	cl.method = methodIndex(r.Method)
	cl.status = 0
	cl.be = nil
	cl.rt, cl.pool, cl.to = nil, nil, &cl.sn.to
	cl.startNs = cl.lp.clock()
	cl.log = nil
	if lg := cl.lp.srv.accessLog.Load(); lg != nil && lg.Sampled() {
		cl.log = newLogRecord(lg, cl, r)
	}
}

// end records the current request once: the status sent (or 499), the
// backend that served it (nil: ConnX itself) and the error kind, if any.
func (cl *client) end(code int, be *backend, kind errKind) {
	if !cl.inReq {
		return
	}
	cl.inReq = false
	cl.status = code
	st := &cl.lp.st
	now := cl.lp.clock()
	if now <= cl.startNs {
		// Begun in this callback (ConnX answered at once): its own read.
		now = time.Now().UnixNano()
	}
	dur := now - cl.startNs
	slot := 0 // ConnX answered before choosing a pool
	switch {
	case be != nil:
		slot = be.id + 1
	case cl.pool != nil:
		slot = cl.pool.st.noneID + 1
	}
	proto := protoHTTP1
	if cl.st != nil {
		proto = protoH2
	}
	st.count(slot, proto, cl.method, code, dur)
	if cl.grpc && cl.pool != nil && cl.pool.h2 {
		st.countGRPC(slot, cl.grpcStatus(code))
	}
	if cl.rt != nil {
		st.countRoute(cl.rt.id, code, dur)
	}
	if kind != errNone {
		st.errors[kind-1].Add(1)
	}
	if cl.log != nil {
		cl.log.write(cl, code, be, kind, dur)
		cl.log = nil
	}
}

// endOut is end for a request whose answer of n bytes is about to be
// written: the access log counts them as sent.
func (cl *client) endOut(code int, be *backend, kind errKind, n int) {
	cl.pendingOut = int64(n)
	cl.end(code, be, kind)
	cl.pendingOut = 0
}

// count records an error that did not end the request (a failed attempt
// that was retried or turned into another status).
func (cl *client) count(kind errKind) {
	cl.lp.st.errors[kind-1].Add(1)
}

// bodyStep frames the next part of a request body from buf: the first k
// bytes of it belong to the body, done when they complete it. A
// malformed or oversized chunked body is rejected (ok false).
func (cl *client) bodyStep(buf []byte) (k int, done, ok bool) {
	switch cl.bodyKind {
	case http1.BodyLength:
		k = int(min(int64(len(buf)), cl.bodyLeft))
		cl.bodyLeft -= int64(k)
		return k, cl.bodyLeft == 0, true
	case http1.BodyChunked:
		var err error
		k, done, err = cl.chunks.Scan(buf, &cl.sn.lim)
		if err != nil {
			cl.reject(statusOfParseError(err))
			return 0, false, false
		}
		// The payload, not the framing, counts against the limit; a chunk
		// counts in full once its size line is read. The framing (sizes,
		// extensions, CRLFs, trailers) may take framingFactor times the
		// limit plus framingSlack, so that tiny chunks with long
		// extensions cannot send a backend thousands of times the limit.
		if mb := cl.sn.maxBody; mb > 0 {
			payload := cl.chunks.Payload()
			if payload > mb || cl.bodySent+int64(k)-payload > cl.sn.maxFraming {
				cl.reject(http.StatusRequestEntityTooLarge)
				return 0, false, false
			}
		}
		return k, done, true
	}
	return 0, false, true
}
