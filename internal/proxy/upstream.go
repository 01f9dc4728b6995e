package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/connx/connx/internal/breaker"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/tlsterm"
	"github.com/panjf2000/gnet/v2"
)

// ustate is where an upstream connection is in its current exchange.
type ustate uint8

const (
	usConnecting ustate = iota // dial in flight
	usHead                     // request going out; waiting for the response head
	usBody                     // streaming the response body to the client
	usIdle                     // pooled, waiting for the next request
	usTunnel                   // upgraded: bytes pass both ways (tunnel.go)
	usSending                  // response complete; the request body is still going out
)

// upstream is one connection to a backend, registered on the same event
// loop as the clients it serves. It serves one client at a time and goes
// back to its loop's pool only after a complete, well-framed exchange.
type upstream struct {
	peer
	lk links[*upstream]

	be      *backend
	maxIdle int     // the pool's upstream.maxIdlePerBackend when the connection was made
	cl      *client // the client served, nil while idle
	state   ustate

	resp   *http1.Response // borrowed from the loop while a head is parsed
	kind   http1.BodyKind
	left   int64
	chunks http1.ChunkedScanner

	sentAt   int64 // unix ns the request head went out (0: not yet)
	headAt   int64 // unix ns the final response head arrived (0: not yet)
	status   int   // final response status
	probe    breaker.Probe
	reused   bool      // has completed an exchange before
	broken   bool      // must not be pooled after this exchange
	eof      bool      // the backend closed; stash holds its last bytes
	bigOn    gnet.Conn // the connection whose reads readLarge enlarged, or nil
	why      failure   // reason for a close we initiated
	deadline int64

	// A PROXY header went first on the connection (proxyproto.go),
	// describing these endpoints: only their client may use it.
	ppSent       bool
	ppSrc, ppDst netip.AddrPort
	hs           atomic.Pointer[tlsterm.Conn] // an https:// backend's record layer, from the dial goroutine to OnOpen
}

//lint:ignore U1000 called through list's type constraint
func (up *upstream) links() *links[*upstream] { return &up.lk }

func newUpstream(lp *loop, be *backend, maxIdle int) *upstream {
	up := &upstream{be: be, maxIdle: maxIdle}
	up.peer = peer{lp: lp, fd: -1, self: up}
	lp.upstreams.push(up)
	be.openConns.Add(1)
	lp.srv.upOpen.Add(1)
	return up
}

// bind attaches the upstream to cl for one exchange.
func (up *upstream) bind(cl *client) {
	up.cl = cl
	cl.up = up
	up.broken = false
	up.why = 0
	if up.state == usIdle {
		up.state = usHead
	}
}

// dial connects to the backend off the loop (with the TLS handshake of
// an https:// backend) and enrolls the connection on the loop; OnOpen
// continues, or the upstream is gone with failConnect or failLocal.
func (lp *loop) dial(up *upstream, timeout time.Duration) {
	up.deadline = 0
	var prep func(net.Conn, time.Time) error
	if conf := up.be.tlsConf.Load(); conf != nil {
		prep = func(nc net.Conn, deadline time.Time) error { return up.upstreamHandshake(nc, conf, deadline) }
	}
	lp.dialAndEnroll(up.be.addr, timeout, up, prep, &up.peer, &up.why)
}

// dialAndEnroll connects to addr off the loop within timeout, runs prep
// (nil: none) on the connection before that deadline, and enrolls it on
// the loop with owner as its context, where OnOpen continues. When any
// step fails, *why is set to failConnect (failLocal when this host ran
// out of descriptors or ports) and p is gone, on the loop.
//
// A plaintext connection to an IP address is opened on the loop instead
// (connect, Linux): no goroutine, no duplicate descriptor. An IPv6
// address with a zone (link-local, "[fe80::1%eth0]:80") is dialled as
// before: the zone names the interface, which Go's dialer resolves.
func (lp *loop) dialAndEnroll(addr string, timeout time.Duration, owner any, prep func(net.Conn, time.Time) error, p *peer, why *failure) {
	if prep == nil {
		if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Zone() == "" && lp.connect(ap, timeout, owner, p, why) {
			return
		}
	}
	el := lp.el
	srv := lp.srv
	srv.dialing.Add(1)
	go func() {
		// Enroll holds a duplicate of the dialled descriptor until the
		// connection is registered: two descriptors for a while.
		defer srv.dialing.Add(-1)
		deadline := time.Now().Add(timeout)
		d := net.Dialer{Timeout: timeout}
		nc, err := d.Dial("tcp", addr)
		if err == nil && prep != nil {
			err = prep(nc, deadline)
		}
		if err == nil {
			var ch <-chan gnet.RegisteredResult
			ch, err = el.Enroll(gnet.NewContext(context.Background(), owner), nc)
			if err != nil {
				_ = nc.Close()
			} else {
				err = enrollResult(ch)
			}
		}
		if err != nil {
			_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				*why = failConnect
				if localDialError(err) {
					*why = failLocal
				}
				lp.gone(p)
				return nil
			}))
		}
	}()
}

// connectFailed ends p, whose connect failed (err) or timed out (nil),
// with failConnect, or failLocal when this host ran out of descriptors or
// ports.
func connectFailed(p *peer, why *failure, err error) {
	p.connecting = nil
	*why = failConnect
	if err != nil && localDialError(err) {
		*why = failLocal
	}
	p.lp.gone(p)
}

// connectTick closes p's connect in progress once its deadline has
// passed (OnClose then ends p). It reports whether a connect is in
// progress: the owner's tick has nothing else to do then.
func (lp *loop) connectTick(p *peer, now int64) bool {
	if p.connecting == nil {
		return false
	}
	if now >= p.connectBy {
		_ = lp.el.Close(p.connecting)
	}
	return true
}

// opened runs in OnOpen when the dial completed.
func (up *upstream) opened(c gnet.Conn) {
	up.c = c
	up.tlsOpened()
	if up.cl == nil {
		// The client left while we dialed: keep the connection if it fits.
		up.state = usIdle
		up.deadline = up.lp.now + up.lp.srv.snap.Load().upstreamIdle
		if up.be.retired.Load() || !up.lp.park(up, up.maxIdle) {
			up.lp.closeConn(&up.peer)
		}
		return
	}
	up.state = usHead
	up.sendHead()
}

// sendHead writes the client's forwarded head and any body bytes already
// buffered.
func (up *upstream) sendHead() {
	cl := up.cl
	up.deadline = up.lp.now + cl.to.upstreamHeader
	up.sentAt, up.headAt, up.status = up.lp.clock(), 0, 0
	if !up.sendProxyHeader(cl) || !up.write(cl.head) {
		return
	}
	if cl.state == csBody {
		cl.process()
	}
}

// onTraffic handles bytes from the backend.
func (up *upstream) onTraffic() {
	if up.tls != nil {
		defer up.tlsDone(up.tlsRead())
	}
	if up.eof {
		defer up.finishEOF()
	}
	for (up.attached() || up.eof) && !up.closed && !up.closeMe && !up.detaching {
		buf := up.data()
		if len(buf) == 0 {
			return
		}
		cl := up.cl
		if up.state == usTunnel && cl != nil {
			up.pump()
			return
		}
		if cl == nil || up.state == usIdle || up.state == usConnecting || up.state == usSending {
			// Bytes nobody asked for: the connection's state is unknown.
			up.broken = true
			up.lp.closeConn(&up.peer)
			return
		}
		if up.state == usBody && len(cl.owed) > cl.sn.highWater {
			up.park() // the client must read first
			return
		}
		if up.state == usHead {
			if !up.readHead(buf) {
				return
			}
			continue
		}
		if !up.forwardBody(buf, nil) {
			return
		}
	}
}

// keepTail runs when gnet closes the connection because the backend closed
// or reset it. Bytes gnet read just before that which could not be passed
// on yet (the client owes too much, a response followed at once by a
// close) must not be lost with the connection: they stay in the stash and
// are passed on, followed by the close, as the client drains. It reports
// whether it kept the upstream.
func (up *upstream) keepTail(c gnet.Conn) bool {
	cl := up.cl
	if cl == nil || cl.closed || c.InboundBuffered() == 0 || (up.state != usHead && up.state != usBody) {
		return false
	}
	if up.tls != nil {
		_ = up.tlsRead() // an error comes back at the next Open
		up.tlsReturn()
	} else {
		b, _ := c.Next(-1)
		up.stash = append(up.stash, b...)
	}
	up.c = nil
	up.eof = true
	up.broken = true
	up.lp.markBusy(&up.peer)
	up.onTraffic()
	return true
}

// finishEOF ends an upstream kept by keepTail once its stash has been
// passed on, or nobody wants it any more, or what is left is part of a
// response head (which can no longer complete).
func (up *upstream) finishEOF() {
	if !up.closed && (len(up.stash) == 0 || up.cl == nil || up.cl.closed || up.state == usHead || up.state == usSending) {
		up.lp.gone(&up.peer)
	}
}

// readHead parses a response head and sends the client its version of it.
// It reports whether processing may continue.
func (up *upstream) readHead(buf []byte) bool {
	cl := up.cl
	lp := up.lp
	if up.resp == nil {
		up.resp = lp.getResp()
	}
	n, err := http1.ParseResponse(buf, up.resp, &cl.sn.lim)
	if err == http1.ErrNeedMore {
		return false
	}
	if err != nil {
		up.releaseResp()
		if err == http1.ErrResponseUnsupportedTE {
			up.fail(failUnsupported) // well-formed: not a broken backend
		} else {
			up.fail(failBadResponse)
		}
		return false
	}
	r := up.resp
	defer up.releaseResp()
	if r.Status < 200 {
		if r.Status == 101 {
			if cl.upgrade != nil && cl.state == csWait {
				return up.startTunnel(r, n)
			}
			if cl.upgrade != nil {
				// The client asked for the switch but has not sent all
				// of the body it announced, so the tunnel cannot start
				// where the backend expects it. Not the backend's fault:
				// a client doing this on purpose must not be able to
				// open its breaker.
				up.fail(failEarlySwitch)
				return false
			}
			// A switch nobody asked for: a broken backend.
			up.fail(failBadResponse)
			return false
		}
		if r.Status == 100 && cl.expect100 && cl.minor == 1 && !cl.respStarted {
			// One per request: a backend repeating it would otherwise
			// queue output for a client that does not read, unbounded.
			cl.expect100 = false
			cl.write(continue100)
		}
		up.consume(n)
		r.Reset()
		return true
	}
	if cl.minor == 0 && r.BodyKind(cl.isHead) == http1.BodyChunked {
		// The request went out as HTTP/1.0, which forbids a transfer
		// coding in the answer (RFC 9112 6.1); its client could not read
		// one, and ConnX never rewrites a body's framing.
		up.fail(failUnsupported)
		return false
	}
	cl.respStarted = true
	cl.status = r.Status
	up.headAt, up.status = up.lp.clock(), r.Status
	if cl.log != nil {
		cl.log.upstream = time.Duration(up.headAt - up.sentAt)
	}
	up.kind = r.BodyKind(cl.isHead)
	up.left = r.ContentLength
	up.chunks.Reset()
	if !r.KeepAlive || up.kind == http1.BodyUntilClose {
		up.broken = true
	}
	if up.kind == http1.BodyUntilClose {
		cl.closeAfter = true
	}
	if cl.state == csBody && !r.KeepAlive {
		// An answer before the end of the body that closes the
		// connection: the backend will not read the rest, which is
		// dropped, and the client's connection cannot be kept. Any other
		// answer leaves the body flowing (full duplex).
		cl.dropBody = true
		cl.closeAfter = true
	}
	if cl.upgrade != nil {
		up.broken = true // the backend declined an upgrade and may be in any state
	}
	lp.scratch = appendResponseHead(lp.scratch[:0], r, up.kind, cl)
	lp.putBuf(cl.head) // kept for a retry, and for the request ID, until now
	cl.head = nil
	up.consume(n)
	if up.kind == http1.BodyNone {
		up.endBefore(len(lp.scratch))
		cl.last = cl.closesAfter()
		if !cl.write(lp.scratch) {
			up.broken = true
			up.lp.closeConn(&up.peer)
			return false
		}
		up.finish()
		return true
	}
	up.state = usBody
	up.deadline = lp.now + cl.to.upstreamRead
	// The head goes out with the first body bytes: one write, not two.
	return up.forwardBody(up.data(), lp.scratch)
}

// forwardBody streams response body bytes; it reports whether processing
// may continue.
//
// head, when not nil, is a response head to send before the body bytes;
// small bodies are copied behind it so both leave in one write.
func (up *upstream) forwardBody(buf, head []byte) bool {
	cl := up.cl
	var k int
	done := false
	switch up.kind {
	case http1.BodyLength:
		k = len(buf)
		if int64(k) > up.left {
			k = int(up.left)
		}
		up.left -= int64(k)
		done = up.left == 0
	case http1.BodyChunked:
		var err error
		k, done, err = up.chunks.Scan(buf, &cl.sn.lim)
		if err != nil {
			if head != nil {
				// Nothing reached the client yet: it gets a 502.
				cl.respStarted = false
				up.state = usHead
				up.fail(failBadResponse)
				return false
			}
			// Part of the response is already out: cut the client off.
			cl.end(up.status, up.be, errBadResponse)
			up.broken = true
			up.lp.closeConn(&up.peer)
			cl.abort()
			return false
		}
	default: // until close
		k = len(buf)
	}
	if done {
		up.endBefore(len(head) + k)
		cl.last = cl.closesAfter()
	}
	if head != nil {
		if k <= coalesceMax {
			head = append(head, buf[:k]...)
			up.lp.scratch = head
		}
		if !cl.write(head) {
			up.broken = true
			up.lp.closeConn(&up.peer)
			return false
		}
		if k <= coalesceMax {
			if k > 0 {
				up.consume(k)
			}
			k = 0
		}
	}
	if k > 0 {
		if !cl.write(buf[:k]) {
			return false
		}
		up.consume(k)
	}
	up.deadline = up.lp.now + cl.to.upstreamRead
	if done {
		up.finish()
		return true
	}
	if len(cl.owed) > cl.sn.highWater {
		up.park()
		return false
	}
	up.readLarge(len(cl.owed) == 0 && cl.st == nil && cl.h2 == nil)
	return k > 0
}

// largeRead is the most one read of a backend's response body takes while
// its client owes nothing, where gnet reads 64 KiB otherwise: a 1 MiB
// body then costs the proxy 4 reads and 4 writes instead of 16 and 16,
// and 3-14% less CPU (docs/benchmarks.md, "session 9").
const largeRead = 256 << 10

// readSizer is the gnet.Conn method of ConnX's gnet (CONNX.md, patch 7).
type readSizer interface{ SetReadSize(n int) }

// readLarge makes the backend's next reads larger, up to largeRead, when
// on, and gives them back their usual size otherwise. Only a client that
// owes nothing gets them, and never more than limits.connectionBuffer at
// once, so a read still leaves the client owing at most
// limits.connectionBuffer plus 64 KiB, as with gnet's usual reads; an
// HTTP/2 client's streams have their own flow control, and keep the
// usual size.
func (up *upstream) readLarge(on bool) {
	if !on {
		up.readUsual()
		return
	}
	size := min(largeRead, up.cl.sn.highWater)
	if size > gnet.MaxStreamBufferCap && up.c != nil && up.bigOn != up.c {
		if rs, ok := up.c.(readSizer); ok {
			rs.SetReadSize(size)
			up.bigOn = up.c
		}
	}
}

// readUsual gives the backend's reads their usual size again.
func (up *upstream) readUsual() {
	if up.bigOn != nil {
		if up.bigOn == up.c {
			up.c.(readSizer).SetReadSize(0)
		}
		up.bigOn = nil
	}
}

// park stops gnet reading the backend while the client drains.
func (up *upstream) park() { up.detach() }

// finish ends a complete exchange: pool or close the connection, and let
// the client go on.
func (up *upstream) finish() {
	cl := up.cl
	lp := up.lp
	up.readUsual()
	if !cl.dropBody && (cl.state == csBody || len(up.owed) > 0 && !up.broken) {
		// The response is complete but the request body is not, or not
		// all of it has left: the exchange ends when the body has
		// (forwardBody or the sweep finishes it). Pooling or closing the
		// connection now would lose what it still owes the backend.
		up.state = usSending
		up.deadline = lp.now + cl.to.upstreamRead
		return
	}
	up.cl = nil
	cl.up = nil
	cl.end(up.status, up.be, errNone)
	up.release(statusOutcome(up.status))
	keep := !up.broken && cl.state == csWait && up.buffered() == 0 && len(up.owed) == 0 && !up.be.retired.Load()
	if keep {
		up.state = usIdle
		up.reused = true
		up.deadline = lp.now + cl.sn.upstreamIdle
		keep = lp.parkUp(up)
	}
	if !keep {
		up.state = usIdle
		lp.closeConn(&up.peer)
	}
	cl.exchangeDone()
}

// endBefore records the exchange as complete just before its last n
// bytes are handed to the client, so that whoever has the response can
// see it counted.
func (up *upstream) endBefore(n int) {
	up.cl.endOut(up.status, up.be, errNone, n)
}

// fail closes the upstream for reason f; cleanup tells the client.
func (up *upstream) fail(f failure) {
	up.why = f
	up.broken = true
	if up.eof {
		up.lp.gone(&up.peer)
		return
	}
	if up.isDetached() && !up.resuming {
		up.closeDetached()
		up.lp.gone(&up.peer)
		return
	}
	up.lp.closeConn(&up.peer)
}

// abandon is called when the client no longer wants this exchange.
func (up *upstream) abandon() {
	if up.cl != nil {
		up.cl = nil
		up.release(breaker.Canceled)
	}
	up.broken = true
	switch {
	case up.closed:
	case up.state == usConnecting:
		// OnOpen or the dial failure finds no client and tidies up.
	case up.isDetached() && !up.resuming:
		up.closeDetached()
		up.lp.gone(&up.peer)
	case up.attached():
		up.lp.closeConn(&up.peer)
	case up.eof:
		up.lp.gone(&up.peer)
	default:
		up.closeMe = true
	}
}

// cleanup runs once when the upstream connection is gone.
func (up *upstream) cleanup() {
	lp := up.lp
	lp.upstreams.remove(up)
	up.be.openConns.Add(-1)
	lp.srv.upOpen.Add(-1)
	if up.state == usIdle {
		lp.unpark(up)
	}
	up.c = nil
	up.bigOn = nil
	up.stash = nil
	up.dropOwed()
	up.releaseResp()
	cl := up.cl
	if cl == nil {
		return
	}
	up.cl = nil
	cl.up = nil
	if up.state == usTunnel {
		cl.endTunnel(up)
		return
	}
	if up.state == usSending {
		// The client has its whole response; the backend stopped taking
		// the rest of the body, which can no longer be delivered.
		if up.why != 0 {
			up.release(outcomeOf(up.why))
		} else {
			up.release(statusOutcome(up.status))
		}
		cl.closeAfter = true
		cl.exchangeDone()
		return
	}
	switch {
	case up.state == usBody && up.kind == http1.BodyUntilClose && up.why == 0:
		up.release(statusOutcome(up.status)) // the close ends the body
	case up.why != 0:
		up.release(outcomeOf(up.why))
	case cl.state == csBody && up.state == usHead && len(up.owed) == 0:
		// The backend closed before answering, having taken all of the
		// body the client had sent, while the client was still sending
		// it: a backend that gives up on a slow upload (a worker
		// timeout) does this, so a slow client must not count against
		// it, as the sweep's body timeout does not.
		up.release(breaker.Canceled)
	default:
		up.release(breaker.ConnectError) // the connection broke mid-exchange
	}
	if up.state == usBody {
		if up.kind == http1.BodyUntilClose && up.why == 0 {
			cl.end(up.status, up.be, errNone)
			cl.closeAfter = true
			cl.exchangeDone()
			return
		}
		kind := errUpstreamReset
		if up.why != 0 {
			kind = kindOf(up.why)
		}
		cl.end(up.status, up.be, kind)
		cl.abort()
		return
	}
	why := up.why
	if why == 0 {
		why = failUpstreamReset
	}
	cl.upstreamFailed(why, up)
}

// tick runs from the loop's sweep.
func (up *upstream) tick(now int64, full bool) {
	if up.lp.connectTick(&up.peer, now) {
		return
	}
	if up.state == usTunnel {
		switch {
		case up.cl == nil:
			up.orphanTick(now)
		case !full:
			up.cl.tunnelTick(now, false) // the client may not be busy itself
		}
		return // on full sweeps the client's tick moves the tunnel on
	}
	cl := up.cl
	if up.eof {
		// Closed by the backend with bytes left for a client that owed
		// too much: pass them on as it drains.
		if cl == nil || cl.closed || len(cl.owed) < cl.sn.lowWater {
			up.onTraffic()
		}
		return
	}
	if !up.flushOwed() {
		up.fail(failUpstreamReset)
		return
	}
	if up.state == usSending && len(up.owed) == 0 && cl != nil && cl.state == csWait {
		up.finish() // an early response, and now the whole body is out
		return
	}
	if up.isDetached() {
		switch {
		case up.resuming:
		case cl == nil || cl.closed:
			up.fail(failUpstreamReset)
		case cl.st != nil && !cl.st.mayResume(): // an HTTP/2 stream's send window resumes it
		case len(cl.owed) < cl.sn.lowWater:
			up.resume(up)
		}
		return
	}
	if up.state == usBody && up.attached() && cl != nil && len(cl.owed) > cl.sn.highWater {
		up.park() // it could not be parked when the client filled up
		if !up.attached() {
			return
		}
	}
	if full && up.state == usIdle && up.tls != nil && up.buffered() == 0 {
		up.tls.Release() // pooled: crypto/tls's input buffers go back
	}
	if !full || !up.attached() || up.deadline == 0 || now <= up.deadline {
		return
	}
	switch up.state {
	case usIdle:
		up.lp.closeConn(&up.peer)
	case usHead:
		// While the client is still sending its body and the backend has
		// taken all of it so far, the client is the slow one: that is
		// clientBody's business, and no fault of the backend's.
		// upstreamResponseHeader runs once the request is fully sent.
		if cl != nil && cl.state == csBody && len(up.owed) == 0 {
			up.deadline = now + cl.to.upstreamHeader
		} else {
			up.fail(failTimeout)
		}
	case usSending:
		// Only a backend that takes none of the body is late; a client
		// that pauses is clientBody's business.
		if len(up.owed) > 0 {
			up.fail(failTimeout)
		} else {
			up.deadline = now + cl.to.upstreamRead
		}
	case usBody:
		if cl != nil && len(cl.owed) == 0 {
			up.fail(failUpstreamIdle)
		} else {
			up.deadline = now + cl.to.upstreamRead // the client is the slow one
		}
	}
}

// busy reports whether the upstream needs the 2 ms sweep.
func (up *upstream) busy() bool {
	return len(up.owed) > 0 || up.isDetached() || up.eof
}

// release ends the backend's count of the current exchange and reports
// its outcome: to the breaker and outlier detection, and to the balancer
// with its latency (request head sent to response head received or, for a
// failure before any response, until the failure). A cancelled exchange
// records no latency.
func (up *upstream) release(o breaker.Outcome) {
	var now int64
	lat := time.Duration(-1)
	failed := o.Failure(false) // gateway failures: an application's 500 is a real answer
	switch {
	case up.headAt > 0:
		now = up.headAt
		lat = time.Duration(up.headAt - up.sentAt)
	case failed && up.sentAt > 0:
		now = time.Now().UnixNano()
		lat = time.Duration(now - up.sentAt)
	default:
		now = time.Now().UnixNano()
	}
	up.be.node.End(now, lat, failed)
	up.be.hb.Done(now, o, up.probe)
	up.sentAt, up.headAt, up.probe = 0, 0, 0
}

// statusOutcome is how a response status counts for the breaker: 502,
// 503 and 504 are gateway failures, other 5xx application errors.
func statusOutcome(status int) breaker.Outcome { return breaker.StatusOutcome(status) }

// releaseResp returns the borrowed Response to the loop.
func (up *upstream) releaseResp() {
	if up.resp != nil {
		up.lp.putResp(up.resp)
		up.resp = nil
	}
}

// coalesceMax is the largest body prefix copied behind a response head to
// save a write.
const coalesceMax = 16 << 10

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// localDialError reports whether a dial failed for lack of resources on
// this host (descriptors, memory, local ports) rather than because of the
// backend.
func localDialError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.EADDRNOTAVAIL)
}
