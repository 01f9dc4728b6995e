package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/acl"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/proxyproto"
	"github.com/connx/connx/internal/stats"
	"github.com/panjf2000/gnet/v2"
)

// The PROXY protocol (docs/proxy-protocol.md).
//
// Receiving. With server.proxyProtocol.enabled, a client accepted on the
// plaintext listener starts in state csProxy: OnOpen closes it at once
// unless its TCP peer is in trustedSources, and readProxyHeader parses
// the header from the buffered input (incrementally, like a request
// head) before anything else is read. The header's addresses replace
// the TCP peer's in cl.ip (and the endpoints a header to a backend
// describes); the listener's allow/deny is checked on them only then.
// The loop's sweep closes a client still in csProxy after
// server.proxyProtocol.timeout. On the TLS listener the header is read
// the same way, before the handshake (csProxy, then csHandshake).
//
// Sending. A pool with upstream.proxyProtocol sends the header before
// the first request on each new connection to a backend (sendProxyHeader),
// describing that request's client. The header binds the connection to
// that client: an idle connection that carried one is reused only for a
// client with the same source and destination address and port — in
// practice, further requests of the same client connection (idleFor).
// Such a pool evicts its oldest idle connection when it is full rather
// than refuse the newest (parkUp), so connections of clients that left
// do not keep the current clients' connections out of the pool.

// ppListener is server.proxyProtocol as a snapshot holds it; nil when
// the header is not read.
type ppListener struct {
	trusted acl.Set
	timeout time.Duration
}

// newPPListener builds the listener's settings from cfg (validated).
func newPPListener(cfg *config.Config) *ppListener {
	pp := &cfg.Server.ProxyProtocol
	if !pp.Enabled {
		return nil
	}
	return &ppListener{trusted: pp.Trusted(), timeout: pp.Timeout}
}

// Reasons a PROXY header is refused, indexes of stats.ProxyProtocolReasons;
// the parser's errors follow, at ppParseErrors plus their index in
// proxyproto.Errors.
const (
	ppUntrusted = iota
	ppTimeout
	ppTruncated
	ppParseErrors
)

// ppStats counts refused headers by reason, for the whole server (the
// TLS listener counts from handshake goroutines; errors are rare).
type ppStats [stats.NumProxyProtocolReasons]atomic.Uint64

func (s *ppStats) fail(reason int) { s[reason].Add(1) }

// ppReason is the reason index of a parse error.
func ppReason(err error) int {
	for i, e := range proxyproto.Errors {
		if err == e {
			return ppParseErrors + i
		}
	}
	return ppTruncated // not a header error: cannot happen
}

// trustedPeer reports whether c's TCP peer may send a PROXY header.
func (p *ppListener) trustedPeer(c gnet.Conn) bool {
	src := peerAddrPort(c)
	return src.IsValid() && p.trusted.Contains(src.Addr().Unmap())
}

// addrPorter is a gnet.Conn that gives its peer's address without
// building a net.Addr: a connection of ConnX's gnet
// (third_party/gnet/CONNX.md, patch 4), whose RemoteAddr builds one on
// its first call.
type addrPorter interface {
	RemoteAddrPort() netip.AddrPort
}

// peerAddrPort returns the address and port of c's TCP peer, or the
// zero AddrPort (a Unix socket's peer). It does not allocate for an
// accepted connection of ConnX's gnet.
func peerAddrPort(c gnet.Conn) netip.AddrPort {
	if p, ok := c.(addrPorter); ok {
		return p.RemoteAddrPort()
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// ppClient is a client's PROXY protocol state, allocated only when the
// listener reads the header or a pool sends it.
type ppClient struct {
	// The endpoints a header to a backend describes: the client's
	// address and port and the address it connected to — the received
	// header's, else the TCP connection's.
	src, dst netip.AddrPort
	partial  bool // part of a header has arrived (csProxy)
}

// clientAddr returns the address of c's TCP peer. With pp it also
// returns c's PROXY protocol state.
func clientAddr(c gnet.Conn, pp bool) (netip.Addr, *ppClient) {
	src := peerAddrPort(c)
	var dst netip.AddrPort
	if pp {
		if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
			dst = a.AddrPort()
		}
	}
	if !pp {
		return src.Addr().Unmap(), nil
	}
	return src.Addr().Unmap(), &ppClient{src: src, dst: dst}
}

// endpoints returns what a PROXY header to a backend says of cl. A
// client that has no PROXY protocol state (it connected before a reload
// made a pool send the header) is described by its connection while it
// is attached, else the header carries no address.
func (cl *client) endpoints() (src, dst netip.AddrPort) {
	if cl.pp != nil {
		return cl.pp.src, cl.pp.dst
	}
	if cl.st != nil {
		return cl.st.h.cl.endpoints() // an HTTP/2 stream: its connection's
	}
	if cl.attached() {
		src = peerAddrPort(cl.c)
		if a, ok := cl.c.LocalAddr().(*net.TCPAddr); ok {
			dst = a.AddrPort()
		}
	}
	return src, dst
}

// readProxyHeader reads the PROXY header of a client in csProxy. It
// reports whether processing may continue (with the client's request).
func (cl *client) readProxyHeader() bool {
	buf := cl.data()
	if len(buf) == 0 {
		return false
	}
	cl.pp.partial = true
	var h proxyproto.Header
	n, err := proxyproto.Parse(buf, &h)
	if err == proxyproto.ErrNeedMore {
		return false
	}
	if err != nil {
		cl.proxyHeaderFailed(ppReason(err))
		return false
	}
	if src, ok := h.Client(); ok {
		// LOCAL, UNKNOWN, UNSPEC and AF_UNIX carry no client: the TCP
		// peer's addresses stay.
		cl.ip, cl.pp.src, cl.pp.dst = src.Addr(), src, h.Destination
	}
	cl.consume(n)
	if sn := cl.sn; !sn.access.IsZero() && !sn.access.Allowed(cl.ip) {
		cl.lp.st.denied.Add(1)
		if cl.tls != nil {
			cl.proxyHeaderDone()
			cl.abort() // no plaintext answer on the HTTPS listener
			return false
		}
		cl.state = csIdle
		cl.rejectWith(errorResponse(http.StatusForbidden))
		return false
	}
	if cl.tls != nil {
		cl.state = csHandshake // the handshake's time counts from the accept
		cl.deadline = cl.lp.srv.tlsDeadline(cl.startNs)
		return true
	}
	cl.state = csIdle
	cl.deadline = cl.lp.now + cl.sn.clientHeader // the first request's head starts now
	return true
}

// proxyHeaderDone takes a TLS client whose header was refused out of the
// handshakes in progress, so that cleanup counts nothing more.
func (cl *client) proxyHeaderDone() {
	if cl.tls != nil {
		cl.lp.srv.tls.release()
	}
	cl.state = csIdle
}

// proxyHeaderFailed counts a refused header and closes the client at
// once: nothing is answered, nothing was forwarded.
func (cl *client) proxyHeaderFailed(reason int) {
	cl.lp.srv.pp.fail(reason)
	cl.proxyHeaderDone() // counted: cleanup must not count a truncation
	cl.abort()
}

// proxyHeaderGone runs in cleanup: a client that closed inside its
// header sent a truncated one. One that closed before sending a byte
// (a load balancer's TCP health check) is not counted.
func (cl *client) proxyHeaderGone() {
	if cl.state == csProxy && cl.pp.partial {
		cl.lp.srv.pp.fail(ppTruncated)
	}
}

// sendProxyHeader writes the pool's PROXY header for cl first on a new
// upstream connection, before its first request. It reports false when
// the connection failed.
func (up *upstream) sendProxyHeader(cl *client) bool {
	v := cl.pool.ppVersion
	if v == 0 || up.ppSent || up.reused {
		return true // idleFor hands out no reused connection without one
	}
	up.ppSent = true
	up.ppSrc, up.ppDst = cl.endpoints()
	var b [proxyproto.MaxV1Len]byte
	var h []byte
	if v == 1 {
		h = proxyproto.AppendV1(b[:0], up.ppSrc, up.ppDst)
	} else {
		h = proxyproto.AppendV2(b[:0], up.ppSrc, up.ppDst)
	}
	return up.write(h)
}

// ppVersionOf is upstream.proxyProtocol as a number: 0 (none), 1 or 2.
func ppVersionOf(s string) uint8 {
	switch s {
	case config.ProxyProtocolV1:
		return 1
	case config.ProxyProtocolV2:
		return 2
	}
	return 0
}

// idleFor returns a pooled connection to be that may serve cl, or nil.
// In a pool that sends the PROXY header, that is one whose header
// describes cl's endpoints, or one that has carried nothing yet (it was
// dialled for a client that left); a connection that served requests
// without a header (before a reload turned it on) can no longer send
// one. Elsewhere it is one that has sent none (a reload may have turned
// the header off).
func (lp *loop) idleFor(cl *client, be *backend) *upstream {
	if cl.pool.ppVersion == 0 {
		for {
			up := lp.idle(be)
			if up == nil || !up.ppSent {
				return up
			}
			lp.closeConn(&up.peer) // bound to another client
		}
	}
	if be.id >= len(lp.pools) {
		return nil
	}
	src, dst := cl.endpoints()
	pool := lp.pools[be.id]
	for i := len(pool) - 1; i >= 0; i-- {
		up := pool[i]
		if !up.attached() || up.ppSent && (up.ppSrc != src || up.ppDst != dst) || !up.ppSent && up.reused {
			continue
		}
		copy(pool[i:], pool[i+1:])
		pool[len(pool)-1] = nil
		lp.pools[be.id] = pool[:len(pool)-1]
		be.idleConns.Add(-1)
		return up
	}
	return nil
}

// parkUp pools an idle upstream, reporting false when it is to be
// closed. A connection that carried a PROXY header takes the place of
// the oldest idle connection of a full pool, which is closed.
func (lp *loop) parkUp(up *upstream) bool {
	if lp.park(up, up.maxIdle) {
		return true
	}
	if !up.ppSent || up.maxIdle == 0 || up.be.id >= len(lp.pools) || len(lp.pools[up.be.id]) == 0 {
		return false
	}
	lp.closeConn(&lp.pools[up.be.id][0].peer) // its cleanup unparks it
	return lp.park(up, up.maxIdle)
}
