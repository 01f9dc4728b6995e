package proxy

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// peer is the part of a client or upstream connection that deals with gnet:
// the live gnet.Conn, and the detached state used for backpressure.
//
// gnet cannot pause reading a socket, so a connection whose data cannot be
// passed on (the other side's outbound buffer is over the high-water mark) is
// detached: ConnX keeps a dup of its file descriptor, copies whatever gnet
// had already buffered into stash, and lets gnet close its own descriptor.
// The socket stays open, unread bytes stay in the kernel, and TCP flow
// control slows the sender. Resuming wraps the dup and enrolls it on the same
// event loop again; stash is consumed before anything read afterwards.
//
// A peer is owned by its event loop; nothing here is safe for other
// goroutines.
type peer struct {
	lp   *loop
	self owner     // the client or upstream this peer belongs to
	c    gnet.Conn // nil while connecting, detached, or closed

	stash []byte // bytes read before a detach, consumed first
	fd    int    // the dup while detached, else -1

	detaching bool // the next OnClose is our detach, not a real close
	resuming  bool // an Enroll of fd is in flight
	closeMe   bool // close when the current callback returns
	closed    bool // gone for good; cleanup has run
	lingering bool // write side shut; reads are discarded until EOF
	isClient  bool // count bytes in the client byte counters

	sent int64  // bytes written, ever
	owed []byte // tunnel output the socket has not taken yet (tunnel.go)
}

// data returns the unconsumed input: the stash first, then gnet's buffer.
// The slice is valid until the next consume or the end of the callback.
func (p *peer) data() []byte {
	if p.c == nil {
		return p.stash
	}
	if len(p.stash) > 0 {
		if p.c.InboundBuffered() > 0 {
			b, _ := p.c.Next(-1)
			p.stash = append(p.stash, b...)
		}
		return p.stash
	}
	b, _ := p.c.Peek(-1)
	return b
}

// buffered is how many input bytes are waiting.
func (p *peer) buffered() int {
	n := len(p.stash)
	if p.c != nil {
		n += p.c.InboundBuffered()
	}
	return n
}

// consume drops n bytes from the front of data(), or of the buffered()
// bytes: the stash first, then gnet's buffer. n must be > 0.
func (p *peer) consume(n int) {
	if p.isClient {
		p.lp.st.bytesIn.Add(uint64(n))
	}
	if k := len(p.stash); k > 0 {
		if n < k {
			p.stash = p.stash[n:]
			return
		}
		p.stash = nil
		n -= k
	}
	if n > 0 && p.c != nil {
		_, _ = p.c.Discard(n)
	}
}

// outbound is how many bytes wait to be written to this peer.
func (p *peer) outbound() int {
	if p.c == nil {
		return 0
	}
	return p.c.OutboundBuffered()
}

// attached reports whether gnet currently serves this connection.
func (p *peer) attached() bool { return p.c != nil && !p.closed }

// write sends b. It reports false when the connection is gone (the write
// may have closed it, in which case cleanup has already run).
func (p *peer) write(b []byte) bool {
	if !p.attached() || p.closeMe {
		return false
	}
	if _, err := p.c.Write(b); err != nil {
		return false
	}
	p.sent += int64(len(b))
	if p.isClient {
		p.lp.st.bytesOut.Add(uint64(len(b)))
	}
	return !p.closed
}

// detach hands the connection back to the kernel as described on peer.
// It reports false when the descriptor could not be duplicated.
//
// A connection with output still queued in gnet is not detached (gnet drops
// the unsent output of a connection it closes); the caller tries again on
// a later event.
func (p *peer) detach() bool {
	if !p.attached() || p.detaching || p.c.OutboundBuffered() > 0 {
		return false
	}
	return p.detachDropping()
}

// detachDropping detaches even with output queued, which gnet drops: only
// for a connection whose remaining output no longer matters.
func (p *peer) detachDropping() bool {
	if !p.attached() || p.detaching {
		return false
	}
	fd, err := p.c.Dup()
	if err != nil {
		return false
	}
	if n := p.c.InboundBuffered(); n > 0 {
		b, _ := p.c.Next(-1)
		p.stash = append(p.stash, b...)
	}
	p.fd = fd
	p.detaching = true
	p.lp.detached++
	p.lp.srv.detached.Add(1)
	p.lp.closeConn(p)
	return true
}

// resume enrolls the detached descriptor on the loop again. OnOpen fires
// with ctx as the connection's context when it is back.
func (p *peer) resume(ctx any) {
	if p.fd < 0 || p.resuming {
		return
	}
	p.resuming = true
	fd := p.fd
	el := p.lp.el
	go func() {
		f := os.NewFile(uintptr(fd), "connx-resume")
		nc, err := net.FileConn(f)
		_ = f.Close()
		if err == nil && nc.RemoteAddr() == nil {
			// The peer reset the connection while it was parked. gnet's
			// Enroll would panic on the missing address and report
			// nothing.
			_ = nc.Close()
			err = errPeerGone
		}
		if err == nil {
			var ch <-chan gnet.RegisteredResult
			ch, err = el.Enroll(gnet.NewContext(context.Background(), ctx), nc)
			if err == nil {
				err = enrollResult(ch)
			} else {
				_ = nc.Close()
			}
		}
		if err != nil {
			_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				p.resumeFailed()
				return nil
			}))
		}
	}()
}

var errPeerGone = errors.New("connection reset while parked")

// enrollResult waits for an Enroll. gnet closes the channel without a
// result when its enroll task panics; that is a failure too.
func enrollResult(ch <-chan gnet.RegisteredResult) error {
	res, ok := <-ch
	switch {
	case res.Err != nil:
		return res.Err
	case !ok || res.Conn == nil:
		return errors.New("gnet: enroll failed")
	}
	return nil
}

// reattached is called from OnOpen when a resumed descriptor is back.
func (p *peer) reattached(c gnet.Conn) {
	p.c = c
	p.resuming = false
	p.lp.detached--
	p.lp.srv.detached.Add(-1)
	p.fd = -1
}

// resumeFailed runs on the loop when the re-enroll failed: the connection
// is lost.
func (p *peer) resumeFailed() {
	p.resuming = false
	p.lp.detached--
	p.lp.srv.detached.Add(-1)
	p.fd = -1 // FileConn or Enroll closed it
	p.lp.gone(p)
}

// isDetached reports whether the connection is parked in the kernel.
func (p *peer) isDetached() bool { return p.fd >= 0 }

// writeDetached writes b straight to a detached descriptor, best effort and
// without blocking; used only for final error responses.
func (p *peer) writeDetached(b []byte) {
	if p.fd >= 0 && !p.resuming {
		_, _ = unix.Write(p.fd, b)
	}
}

// closeDetached closes a detached descriptor that will not be resumed.
func (p *peer) closeDetached() {
	if p.fd >= 0 && !p.resuming {
		_ = unix.Close(p.fd)
		p.fd = -1
		p.lp.detached--
		p.lp.srv.detached.Add(-1)
	}
}
