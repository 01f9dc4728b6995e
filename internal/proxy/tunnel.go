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
	lp.putBuf(cl.head)
	cl.head = nil
	b := appendStatusAndFields(lp.scratch[:0], r)
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

// pump passes the client's buffered bytes into the tunnel.
func (cl *client) pump() {
	if up := cl.up; up != nil {
		tunnelPump(&cl.peer, &up.peer, cl.sn.highWater, cl)
	}
}

// pump passes the backend's buffered bytes into the tunnel.
func (up *upstream) pump() {
	if cl := up.cl; cl != nil {
		tunnelPump(&up.peer, &cl.peer, cl.sn.highWater, cl)
	}
}

// tunnelPump moves src's input to dst's output while dst has less than
// highWater queued, then parks src if input remains (its kernel buffer
// and TCP flow control hold the rest).
func tunnelPump(src, dst *peer, highWater int, cl *client) {
	moved := false
	for src.attached() && !src.closeMe && !src.detaching && dst.attached() && !dst.closeMe {
		if dst.outbound() > highWater {
			break
		}
		buf := src.data()
		if len(buf) == 0 {
			break
		}
		k := min(len(buf), highWater)
		if !dst.write(buf[:k]) {
			return
		}
		src.consume(k)
		moved = true
	}
	if moved {
		cl.tunnelAt = cl.lp.now
	}
	if !src.attached() || src.buffered() == 0 || dst.attached() && dst.outbound() <= highWater {
		return
	}
	if !dst.attached() && src.buffered() <= highWater {
		// dst is parked because src was slow to read; it comes back once
		// src's output drains (the sweep checks). Waiting here, rather
		// than parking src as well, keeps both sides from taking turns
		// parking and resuming each other.
		return
	}
	// dst is backed up (or src's input passed the bound): park src. The client side parks
	// like a body upload (cut off if it cannot be parked and keeps
	// sending); an upstream that cannot be parked because its own output
	// is queued, and keeps sending past the bound, ends the tunnel.
	if src == &cl.peer {
		cl.park()
		return
	}
	if up := cl.up; !up.detach() && up.buffered() > highWater+readBurst {
		up.fail(failUpstreamReset)
	}
}

// endTunnel ends the exchange of a tunnel whose upstream side is gone and
// closes the client once what was passed on is flushed.
func (cl *client) endTunnel(up *upstream) {
	cl.lp.st.tunnels.Add(-1)
	cl.state = csWait // the tunnel is over; closeGracefully takes it on
	up.release(breaker.Success)
	cl.closeAfter = true
	cl.closeGracefully()
}

// tunnelTick runs from the sweep for a client in a tunnel.
func (cl *client) tunnelTick(now int64, full bool) {
	up := cl.up
	if up == nil {
		return
	}
	if cl.attached() && cl.buffered() > 0 {
		cl.pump()
	}
	if up.attached() && up.buffered() > 0 {
		up.pump()
	}
	if full && now-cl.tunnelAt > int64(cl.sn.tunnelIdle) && cl.outbound() == 0 {
		cl.abort()
	}
}
