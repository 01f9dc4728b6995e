package proxy

import (
	"bytes"
	"strings"
	"time"

	"github.com/connx/connx/internal/breaker"
	"github.com/connx/connx/internal/http1"
)

// Upgrade tunnels. A request with "Connection: Upgrade" and an Upgrade
// token that server.upgrades allows (WebSocket by default) is forwarded
// with both fields. If the backend answers 101 Switching Protocols, the
// client and upstream connections become a byte tunnel on the loop they
// already share: bytes are passed on as they arrive, with the same
// backpressure bound as bodies (a side whose peer has more than
// limits.connectionBuffer queued is parked), until either side closes or
// nothing moves for timeouts.tunnelIdle. Any other answer is relayed as a
// normal response, and the upstream connection is not reused.
//
// The exchange stays open for the balancer and the breaker until the
// tunnel ends, so least-connections counts open tunnels.

// upgradeValue returns the Upgrade field of r reduced to the protocols
// allowed (lower-case names, compared without their "/version"), or nil
// when none is allowed or r is not an upgrade request. It is called only
// for requests the parser marked as upgrades (rare), and may allocate.
func upgradeValue(r *http1.Request, allowed []string) []byte {
	if !r.Upgrade || len(allowed) == 0 {
		return nil
	}
	var out []byte
	for i := range r.Headers {
		h := &r.Headers[i]
		if !http1.EqualFold(h.Name, "upgrade") {
			continue
		}
		for tok := range bytes.SplitSeq(h.Value, []byte(",")) {
			tok = bytes.TrimSpace(tok)
			name, _, _ := bytes.Cut(tok, []byte("/"))
			for _, a := range allowed {
				if len(name) > 0 && strings.EqualFold(string(name), a) {
					if len(out) > 0 {
						out = append(out, ", "...)
					}
					out = append(out, tok...)
					break
				}
			}
		}
	}
	return out
}

// responseUpgrade returns the Upgrade field value of a 101 response.
func responseUpgrade(r *http1.Response) []byte {
	for i := range r.Headers {
		if h := &r.Headers[i]; http1.EqualFold(h.Name, "upgrade") {
			return h.Value
		}
	}
	return nil
}

// startTunnel switches the exchange to a tunnel after the 101 response
// head r (n bytes) arrived. It reports whether processing may continue.
func (up *upstream) startTunnel(r *http1.Response, n int) bool {
	cl := up.cl
	lp := up.lp
	cl.respStarted = true
	cl.status = r.Status
	b := appendStatusAndFields(lp.scratch[:0], r, nil)
	b = appendResponseID(b, r, cl)
	lp.putBuf(cl.head)
	cl.head = nil
	b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
	b = append(b, responseUpgrade(r)...)
	b = append(b, "\r\n\r\n"...)
	lp.scratch = b
	up.consume(n)
	up.headAt, up.status = time.Now().UnixNano(), r.Status
	up.broken = true // never pooled
	up.state = usTunnel
	cl.state = csTunnel
	cl.tunnelAt = lp.now
	cl.upgrade = nil
	lp.st.tunnels.Add(1)
	cl.end(101, up.be, errNone)
	if !cl.write(b) {
		return false
	}
	// Bytes that came with the 101, or that the client sent early, go on.
	up.pump()
	cl.pump()
	return false
}

// Flow control in a tunnel is the general one (see peer.write): a side
// stops being read (it is parked) while the other side owes highWater
// bytes, and is resumed when that falls below lowWater, so both
// directions of a busy tunnel can be flow-controlled at once.

// pump passes the client's buffered bytes into the tunnel.
func (cl *client) pump() {
	if up := cl.up; up != nil {
		cl.tunnelPump(&cl.peer, &up.peer)
	}
}

// pump passes the backend's buffered bytes into the tunnel.
func (up *upstream) pump() {
	if cl := up.cl; cl != nil {
		cl.tunnelPump(&up.peer, &cl.peer)
	}
}

// tunnelPump moves src's input into dst's socket (or owed bytes) while dst
// owes less than highWater, and parks src when dst owes more.
func (cl *client) tunnelPump(src, dst *peer) {
	hw := cl.sn.highWater
	if !dst.flushOwed() {
		cl.tunnelBroken(dst)
		return
	}
	moved := false
	for src.attached() && !src.closeMe && !src.detaching && len(dst.owed) < hw {
		buf := src.data()
		if len(buf) == 0 {
			break
		}
		k := min(len(buf), hw)
		ok := dst.write(buf[:k])
		src.consume(k)
		moved = true
		if !ok {
			cl.tunnelBroken(dst)
			return
		}
	}
	if moved {
		cl.tunnelAt = cl.lp.now
	}
	if len(dst.owed) >= hw && src.attached() && !src.detaching && !src.closeMe {
		src.detach()
	}
}

// tunnelBroken ends a tunnel whose side p could not be written.
func (cl *client) tunnelBroken(p *peer) {
	if p == &cl.peer {
		cl.abort()
		return
	}
	if up := cl.up; up != nil {
		up.fail(failUpstreamReset)
	}
}

// endTunnel ends the exchange of a tunnel whose upstream side is gone and
// closes the client once what it is owed is written.
func (cl *client) endTunnel(up *upstream) {
	cl.lp.st.tunnels.Add(-1)
	cl.state = csWait // the tunnel is over; closeGracefully takes it on
	up.release(breaker.Success)
	up.dropOwed()
	cl.closeAfter = true
	cl.closeGracefully() // what the client is owed goes first
}

// clientLeftTunnel runs when the client of a tunnel is gone: the upstream
// gets what it is owed (the client's last bytes, a WebSocket close frame)
// before it is closed, within server.shutdownTimeout.
func (up *upstream) clientLeftTunnel(now int64, sn *snapshot) {
	up.cl = nil
	up.release(breaker.Success)
	if len(up.owed) == 0 || up.closed {
		up.dropOwed()
		up.abandon()
		return
	}
	up.deadline = now + int64(sn.shutdown)
}

// tunnelTick runs from the sweep for a client in a tunnel: it writes owed
// bytes, resumes a parked side once the other owes little, moves input
// that waited, and ends a tunnel idle for timeouts.tunnelIdle.
func (cl *client) tunnelTick(now int64, full bool) {
	up := cl.up
	if up == nil {
		return
	}
	before := len(cl.owed) + len(up.owed)
	if !cl.flushOwed() {
		cl.abort()
		return
	}
	if !up.flushOwed() {
		up.fail(failUpstreamReset)
		return
	}
	if len(cl.owed)+len(up.owed) < before {
		cl.tunnelAt = now
	}
	lw := cl.sn.lowWater
	if cl.isDetached() && !cl.resuming && len(up.owed) < lw {
		cl.resume(cl)
	}
	if up.isDetached() && !up.resuming && len(cl.owed) < lw {
		up.resume(up)
	}
	if cl.attached() && cl.buffered() > 0 {
		cl.pump()
	}
	if up.attached() && up.buffered() > 0 {
		up.pump()
	}
	if full && now-cl.tunnelAt > int64(cl.to.tunnelIdle) {
		cl.abort()
	}
}

// orphanTick runs from the sweep for a tunnel upstream whose client left:
// close it once its owed bytes are written, or at its deadline.
func (up *upstream) orphanTick(now int64) {
	if !up.flushOwed() || len(up.owed) == 0 || now > up.deadline {
		up.dropOwed()
		up.abandon()
	}
}
