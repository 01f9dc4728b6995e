package proxy

import (
	"context"
	"errors"
	"net"
	"os"
	"unsafe"

	"github.com/connx/connx/internal/tlsterm"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// peer is the part of a client or upstream connection that deals with gnet:
// the live gnet.Conn, and the detached state used for backpressure.
//
// gnet cannot pause reading a socket, so a connection whose data cannot be
// passed on (the other side owes more than the high-water mark) is
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

	// connecting is the Conn of a connect in progress on the loop
	// (loop.connect), until OnOpen or OnClose; connectBy its deadline.
	connecting gnet.Conn
	connectBy  int64

	detaching bool // the next OnClose is our detach, not a real close
	resuming  bool // an Enroll of fd is in flight
	closeMe   bool // close when the current callback returns
	closed    bool // gone for good; cleanup has run
	lingering bool // write side shut; reads are discarded until EOF
	isClient  bool // count bytes in the client byte counters
	inBusy    bool // on the loop's busy list
	last      bool // closing after what is being written: see sockWrite

	sent int64  // bytes queued for writing, ever
	owed []byte // output the socket has not taken yet (see write)

	tls  *tlsterm.Conn // the record layer of a TLS connection (tls.go); nil for plaintext
	lent []byte        // the loop's plaintext buffer, lent to stash during a callback
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
func (p *peer) outbound() int { return len(p.owed) }

// attached reports whether gnet currently serves this connection.
func (p *peer) attached() bool { return p.c != nil && !p.closed }

// Output. ConnX writes to sockets itself instead of through gnet's
// outbound buffer: gnet drops the unsent output of a connection it closes,
// so a connection with output queued there could not be parked, and its
// input could not be left in the kernel. A write goes straight to the
// socket when nothing is owed; what the socket does not take is owed, and
// owed bytes go first on every later write, every event of the connection
// pair and every sweep (every 2 ms while any are owed). Any connection can
// therefore be parked at any time; owed bytes are written to the parked
// descriptor directly. Producers stop (the other side is parked, or the
// next pipelined request waits) while a peer owes more than
// limits.connectionBuffer, which bounds what ConnX holds per direction.

// write queues b for the socket. It reports false when the connection is
// gone or closing; a socket error closes it (at once, or when the running
// callback of this connection returns).
func (p *peer) write(b []byte) bool {
	if p.closed || p.closeMe && !p.detaching {
		return false
	}
	if p.tls != nil {
		return p.writeTLS(b)
	}
	return p.writeRaw(b)
}

// writeRaw is write for bytes as they go on the wire (after TLS).
func (p *peer) writeRaw(b []byte) bool {
	if p.closed || p.closeMe && !p.detaching {
		return false
	}
	p.sent += int64(len(b))
	if p.isClient {
		p.lp.st.bytesOut.Add(uint64(len(b)))
	}
	if !p.flushOwed() {
		p.broke()
		return false
	}
	if len(p.owed) == 0 {
		if fd := p.sock(); fd >= 0 {
			n, err := sockWrite(fd, b, p.last)
			if n > 0 {
				b = b[n:]
			}
			if err != nil && err != unix.EAGAIN && err != unix.EINTR {
				p.broke()
				return false
			}
		}
	}
	if len(b) > 0 {
		if len(p.owed) == 0 {
			p.lp.srv.owing.Add(1)
			p.lp.markBusy(p)
		}
		p.owed = append(p.owed, b...)
	}
	return true
}

// flushOwed writes owed bytes without blocking. It reports false when the
// socket failed.
func (p *peer) flushOwed() bool {
	if len(p.owed) == 0 {
		return true
	}
	fd := p.sock()
	if fd < 0 {
		return true
	}
	// Without MSG_MORE (peer.last): owed bytes are also flushed where
	// no close follows (a closing client's input, a sweep that still
	// finds bytes owed), and a write without it pushes everything.
	n, err := sockWrite(fd, p.owed, false)
	if n > 0 {
		p.owed = p.owed[n:]
		if len(p.owed) == 0 {
			p.owed = nil // an idle connection holds no buffer
			p.lp.srv.owing.Add(-1)
		}
	}
	return err == nil || err == unix.EAGAIN || err == unix.EINTR
}

// sockWrite writes b to the non-blocking socket fd with a raw system
// call. The write never blocks, so the runtime's bookkeeping around an
// ordinary system call (entersyscall and exitsyscall, about 250
// instructions a call) buys nothing: the runtime could not hand the loop's
// processor to another goroutine in the few microseconds the write takes.
// gnet makes its non-blocking epoll calls the same way (its poll_opt build
// tag). On error n is 0 and err an unix.Errno (EAGAIN, EPIPE...).
//
// last says the write side is shut as soon as these bytes are out, in the
// same callback: they go with MSG_MORE, so the kernel holds the final
// segment and the shutdown (client.flushCheck) sends it with the FIN, one
// segment where there would be two (less work for both ends; nginx sends
// them apart). Only a shutdown or close may follow such a write: corked
// bytes wait for them (peer.last).
func sockWrite(fd int, b []byte, last bool) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n uintptr
	var e unix.Errno
	if last {
		n, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), msgMore, 0, 0)
	} else {
		n, _, e = unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	}
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// dropOwed forgets owed bytes (the connection is gone).
func (p *peer) dropOwed() {
	if len(p.owed) > 0 {
		p.owed = nil
		p.lp.srv.owing.Add(-1)
	}
}

// sock is the descriptor to write to, or -1 (a dial or a resume is in
// flight, or the connection is gone).
func (p *peer) sock() int {
	switch {
	case p.closed || p.resuming:
		return -1
	case p.c != nil:
		return p.c.Fd()
	}
	return p.fd
}

// broke closes a connection whose socket failed; its cleanup tells the
// other side.
func (p *peer) broke() {
	if p.closed {
		return
	}
	p.dropOwed()
	switch {
	case p.c != nil:
		p.lp.closeConn(p) // also when a park is in progress
	case p.isDetached() && !p.resuming:
		p.closeDetached()
		p.lp.gone(p)
	default:
		p.closeMe = true // OnOpen closes it when the resume completes
	}
}

// detach hands the connection back to the kernel as described on peer.
// It reports false when the descriptor could not be duplicated.
func (p *peer) detach() bool {
	if !p.attached() || p.detaching {
		return false
	}
	fd, err := p.c.Dup()
	if err != nil {
		return false
	}
	if n := p.c.InboundBuffered(); n > 0 && p.tls != nil {
		_ = p.tlsRead() // ciphertext: the stash holds plaintext; an error comes back at the next Open
		p.tlsReturn()
	} else if n > 0 {
		b, _ := p.c.Next(-1)
		p.stash = append(p.stash, b...)
	}
	p.fd = fd
	p.detaching = true
	p.lp.srv.detached.Add(1)
	p.lp.markBusy(p)
	p.lp.release(p)
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
	return enrollResultOr(ch, nil)
}

// errEngineStopped is the result of an Enroll given up because the
// engine stopped (it would never answer).
var errEngineStopped = errors.New("gnet: engine stopped before the enroll completed")

// enrollResultOr is enrollResult that gives up when stop is closed.
func enrollResultOr(ch <-chan gnet.RegisteredResult, stop <-chan struct{}) error {
	var res gnet.RegisteredResult
	var ok bool
	select {
	case res, ok = <-ch:
	case <-stop:
		return errEngineStopped
	}
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
	p.lp.srv.detached.Add(-1)
	p.fd = -1
}

// resumeFailed runs on the loop when the re-enroll failed: the connection
// is lost.
func (p *peer) resumeFailed() {
	p.resuming = false
	p.lp.srv.detached.Add(-1)
	p.fd = -1 // FileConn or Enroll closed it
	p.lp.gone(p)
}

// isDetached reports whether the connection is parked in the kernel.
func (p *peer) isDetached() bool { return p.fd >= 0 }

// closeDetached closes a detached descriptor that will not be resumed.
func (p *peer) closeDetached() {
	if p.fd >= 0 && !p.resuming {
		_ = unix.Close(p.fd)
		p.fd = -1
		p.lp.srv.detached.Add(-1)
	}
}

// hungUp reports whether the other end of a parked descriptor has closed
// or reset the connection. A half-close (FIN after the last request)
// counts: gnet closes a connection when it reads EOF, so an attached
// client that half-closed would be gone too.
func (p *peer) hungUp() bool {
	if p.fd < 0 || p.resuming {
		return false
	}
	fds := [1]unix.PollFd{{Fd: int32(p.fd), Events: pollRDHUP}}
	n, err := unix.Poll(fds[:], 0)
	return err == nil && n > 0 && fds[0].Revents&(pollRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}
