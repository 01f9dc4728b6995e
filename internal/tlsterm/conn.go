// Package tlsterm is ConnX's TLS glue without I/O: a certificate store
// that picks a certificate by SNI and re-reads its files when they
// change, session-ticket key rotation, the server configuration ConnX
// offers, and [Conn], which drives crypto/tls's record layer from byte
// slices so that an event loop can feed it ciphertext and get plaintext
// back, and the other way round.
//
// It imports no event-loop library: internal/proxy owns the sockets and
// calls into this package with the bytes it read and writes the bytes it
// gets back.
package tlsterm

import (
	"bytes"
	"crypto/tls"
	"errors"
	"iter"
	"net"
	"time"
)

// Conn is one TLS connection, client or server side, in two phases.
//
// During [Conn.Handshake] crypto/tls reads and writes the net.Conn given to
// [Server] or [Client] directly, blocking (the caller runs it on a
// goroutine of its own, with a deadline on that net.Conn). Once it returns,
// the net.Conn is never touched again: records are exchanged only through
// [Conn.Open] (ciphertext in, plaintext out) and [Conn.Seal] (plaintext
// in, ciphertext out), which never block.
//
// This works with stock crypto/tls because its record reader keeps a
// partial record across reads and does not make a temporary read error
// sticky (crypto/tls/conn.go, readRecordOrCCS): when Open runs out of
// input, the read returns an error whose Temporary() is true, and the next
// Open resumes where it stopped. That behaviour is not a documented
// promise; TestRecordLayerResumes runs it on every toolchain the project
// builds with.
//
// A Conn made by [ServerStepped] has no net.Conn at all: its handshake is
// driven by [Conn.Step], which feeds it the bytes an event loop read, so
// the handshake runs on the loop like the record layer does.
//
// A Conn is not safe for concurrent use: after the handshake it belongs to
// one goroutine (an event loop). The zero value is not usable.
type Conn struct {
	tc      *tls.Conn
	raw     rawConn
	subject string // the verified peer certificate's subject, header-safe

	// The stepped handshake: crypto/tls's blocking Handshake runs as a
	// coroutine (iter.Pull) that yields whenever it has read all the
	// input given to Step; nil when not started or over.
	next   func() (struct{}, bool)
	stop   func()
	hsErr  error
	done   bool
	client bool // the client side: it receives session tickets after the handshake
}

// crypto/tls collects a handshake message whole before it looks at its
// type (readHandshake), and allows one announced as a Certificate 256
// KiB, every other one 64 KiB; none of it is the proxy's to bound. A
// client could make every connection hold 256 KiB that way, during the
// handshake and after it. So the record layer stops reading (Step's
// handshake and Open fail with ErrHandshakeMessageTooLarge) once an
// incomplete message outgrows what the connection can legitimately
// send: a chain only if clientAuth asks for one, and after the
// handshake only a KeyUpdate (a server never receives anything else; a
// client's session tickets keep crypto/tls's 64 KiB). What is held is
// then at most the limit and one record (16 KiB).
const (
	maxHandshakeMessage = 64<<10 + 4 // crypto/tls's bound for all but a Certificate
	maxPostHandshake    = 4 << 10
)

// ErrHandshakeMessageTooLarge is the error of Step or Open for a
// handshake message larger than the connection may send (see above).
var ErrHandshakeMessageTooLarge = errors.New("tlsterm: handshake message too large")

// postHandshakeLimit is the largest incomplete handshake message Open
// lets crypto/tls hold.
func (c *Conn) postHandshakeLimit() int {
	if c.client {
		return maxHandshakeMessage
	}
	return maxPostHandshake
}

// handBuffered is how many bytes of an incomplete handshake message
// crypto/tls holds.
func (c *Conn) handBuffered() int {
	if _, h := c.buffers(); h != nil {
		return h.Len()
	}
	return 0
}

// Server returns the server side of a TLS connection over nc with cfg.
func Server(nc net.Conn, cfg *tls.Config) *Conn {
	c := &Conn{raw: rawConn{nc: nc}}
	c.tc = tls.Server(&c.raw, cfg)
	_, c.raw.hand = c.buffers()
	return c
}

// Client returns the client side of a TLS connection over nc with cfg.
func Client(nc net.Conn, cfg *tls.Config) *Conn {
	c := &Conn{raw: rawConn{nc: nc}, client: true}
	c.tc = tls.Client(&c.raw, cfg)
	_, c.raw.hand = c.buffers()
	return c
}

// ServerStepped returns the server side of a TLS connection whose
// handshake is driven by [Conn.Step] instead of a socket; local and
// remote are the connection's addresses (what crypto/tls's callbacks
// see).
func ServerStepped(local, remote net.Addr, cfg *tls.Config) *Conn {
	c := &Conn{raw: rawConn{local: local, remote: remote, stepped: true}}
	c.tc = tls.Server(&c.raw, cfg)
	_, c.raw.hand = c.buffers()
	if cfg.ClientAuth == tls.NoClientCert {
		c.raw.handMax = maxHandshakeMessage
	}
	return c
}

// Step feeds the ciphertext ct, all of which it consumes, to a handshake
// started with [ServerStepped], and runs the handshake until it needs
// more input or is over. Its output (the server's flight, an alert) is
// then waiting in [Conn.Pending]. It reports whether the handshake is
// over, and then its error: nil means the connection is ready for
// [Conn.Open] and [Conn.Seal], and bytes the peer sent behind its last
// handshake message wait to be decrypted by the first Open (call it with
// no new input before waiting for more).
//
// Step runs crypto/tls's own handshake code on the caller's goroutine, as
// a coroutine that is suspended while it waits for input: no goroutine of
// its own is scheduled, and nothing blocks. ct is not retained.
func (c *Conn) Step(ct []byte) (done bool, err error) {
	if c.done {
		return true, c.hsErr
	}
	if c.next == nil {
		c.next, c.stop = iter.Pull(c.handshake)
	}
	c.raw.in = ct
	_, more := c.next()
	if len(c.raw.in) > 0 {
		// Read past the handshake's last message in this input: kept for
		// the first Open.
		c.raw.left = append(c.raw.left[:0], c.raw.in...)
	}
	c.raw.in = nil
	if more {
		return false, nil
	}
	c.next, c.stop = nil, nil
	if c.hsErr == nil {
		c.raw.handMax = c.postHandshakeLimit()
		// Not in the coroutine: Release does nothing while next is set.
		c.Release() // what the handshake grew (a request read with it stays)
	}
	return true, c.hsErr
}

// handshake is the coroutine behind Step.
func (c *Conn) handshake(yield func(struct{}) bool) {
	c.raw.yield = yield
	c.hsErr = c.tc.Handshake()
	c.raw.yield = nil
	c.raw.stepped = false
	c.done = true
	if c.hsErr == nil {
		c.setSubject()
	}
}

// Handshaking reports whether a handshake driven by Step has started and
// is not over.
func (c *Conn) Handshaking() bool { return c.next != nil }

// Abort ends a handshake driven by Step that is not over (the connection
// is closing): crypto/tls's handshake gets a read error and returns, so
// nothing of it is left running. It does nothing otherwise.
func (c *Conn) Abort() {
	if c.stop != nil {
		stop := c.stop
		c.next, c.stop = nil, nil
		stop()
	}
}

// Handshake runs the TLS handshake over the net.Conn, blocking, and then
// lets go of it, whatever the outcome: the caller keeps the net.Conn and
// its deadline. Bytes the peer sent behind its last handshake message
// (typically its first request) may have been read with it; they are
// decrypted by the first Open, so call Open once (with no new input) before
// waiting for the socket to become readable.
func (c *Conn) Handshake() error {
	err := c.tc.Handshake()
	c.raw.local, c.raw.remote = c.raw.nc.LocalAddr(), c.raw.nc.RemoteAddr()
	c.raw.nc = nil
	if err == nil {
		c.setSubject()
		c.raw.handMax = c.postHandshakeLimit()
		c.Release() // what the handshake grew (a request read with it stays)
	}
	return err
}

// setSubject records the verified peer certificate's subject.
func (c *Conn) setSubject() {
	if st := c.tc.ConnectionState(); len(st.VerifiedChains) > 0 {
		c.subject = headerSafe(st.VerifiedChains[0][0].Subject.String())
	}
}

// PeerSubject is the subject of the peer's certificate (RFC 2253,
// "CN=client,O=Example") when the handshake verified one, else "". Bytes
// that may not appear in an HTTP header value (controls, DEL) are written
// as \xHH, so the result can be sent as one.
func (c *Conn) PeerSubject() string { return c.subject }

// headerSafe escapes the bytes of s that a header value may not hold.
func headerSafe(s string) string {
	const hex = "0123456789abcdef"
	var b []byte
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < 0x20 || ch == 0x7f {
			if b == nil {
				b = append(make([]byte, 0, len(s)+8), s[:i]...)
			}
			b = append(b, '\\', 'x', hex[ch>>4], hex[ch&15])
		} else if b != nil {
			b = append(b, ch)
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

// State is the connection's TLS state (version, cipher suite, ALPN
// protocol, server name, peer certificates, resumption).
func (c *Conn) State() tls.ConnectionState { return c.tc.ConnectionState() }

// minRead is the free space Open keeps in dst for each read: a whole
// record's plaintext.
const minRead = 16 << 10

// Open consumes the ciphertext ct and appends to dst the plaintext it
// completes, together with plaintext of earlier input that was still
// waiting (a record is decrypted once it has arrived in full). It returns
// io.EOF once the peer has sent close_notify, and any other error when the
// peer sent something that is not valid TLS or an alert; either way the
// connection is over and the caller should send [Conn.Pending] (an alert,
// if any) before closing. ct is not retained. All of ct is consumed unless
// there is an error.
//
// Open may produce output of its own (a key update answering the peer's,
// an alert): take it with Pending after every Open.
//
// A handshake message after the handshake larger than a server can
// receive (4 KiB; a client: 64 KiB) is refused with
// ErrHandshakeMessageTooLarge while it is still incomplete.
//
// A peer that asks for more than MaxKeyUpdates key updates within
// KeyUpdateWindow gets a close_notify (in Pending) and
// ErrKeyUpdateFlood: each request obliges this side to send a KeyUpdate
// of its own, output a peer that does not read would otherwise pile up
// without bound. crypto/tls stops only 16 in a row with no application
// data between them.
func (c *Conn) Open(dst, ct []byte) ([]byte, error) {
	if c.raw.left != nil {
		ct = append(c.raw.left, ct...)
		c.raw.left = nil
	}
	c.raw.in, c.raw.opening = ct, true
	defer func() { c.raw.in, c.raw.opening = nil, false }()
	for {
		if cap(dst)-len(dst) < minRead {
			dst = append(dst[:cap(dst)], make([]byte, minRead)...)[:len(dst)]
		}
		n, err := c.tc.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err != nil {
			if errors.Is(err, errWouldBlock) {
				return dst, nil
			}
			if errors.Is(err, ErrKeyUpdateFlood) {
				_ = c.tc.CloseWrite()
			}
			return dst, err
		}
	}
}

// The KeyUpdate budget (see Open): MaxKeyUpdates requests per
// KeyUpdateWindow. Real peers update keys after gigabytes of records,
// not several times a second.
const (
	MaxKeyUpdates   = 32
	KeyUpdateWindow = 10 * time.Second
)

// ErrKeyUpdateFlood is Open's error for a peer that asked for more key
// updates than the budget allows.
var ErrKeyUpdateFlood = errors.New("tlsterm: too many KeyUpdate requests")

// now is the budget's clock (tests replace it).
var now = time.Now

// Seal encrypts p into records and appends them, after any output Open
// left pending, to dst. It fails only once the connection is broken or
// closed for writing.
func (c *Conn) Seal(dst, p []byte) ([]byte, error) {
	dst = append(dst, c.raw.out...)
	c.raw.out = dst
	_, err := c.tc.Write(p)
	dst = c.raw.out
	c.raw.out = nil
	return dst, err
}

// Pending appends to dst the output Open produced (alerts, key updates)
// and forgets it.
func (c *Conn) Pending(dst []byte) []byte {
	if len(c.raw.out) > 0 {
		dst = append(dst, c.raw.out...)
		c.raw.out = nil
	}
	return dst
}

// CloseNotify appends a close_notify alert (after any pending output) to
// dst: the peer can tell the end of the data from a truncation. Writes
// fail after it.
func (c *Conn) CloseNotify(dst []byte) []byte {
	_ = c.tc.CloseWrite()
	return c.Pending(dst)
}

// errWouldBlock is what the record layer reads when the bytes given to
// Open are used up. crypto/tls passes a temporary net.Error on without
// marking the connection broken.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tlsterm: no more input" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// rawConn is the net.Conn under the tls.Conn: the socket while nc is set
// (the handshake), the in and out buffers afterwards. A stepped handshake
// reads from in too, and waits for more by yielding to Step's caller.
type rawConn struct {
	nc            net.Conn
	in, out       []byte
	left          []byte // input a stepped handshake left unread
	local, remote net.Addr
	stepped       bool                // the handshake is driven by Step
	yield         func(struct{}) bool // suspends it while in is empty

	// While Open runs, crypto/tls writes only to answer a KeyUpdate
	// request (or to send an alert, with an error). They are counted
	// per KeyUpdateWindow starting at kuStart (unix ns); flood is set
	// beyond MaxKeyUpdates, and reading stops.
	opening bool
	flood   bool
	kuN     int32
	kuStart int64

	// hand is crypto/tls's buffer of an incomplete handshake message (nil
	// if it cannot be reached); reading stops with
	// ErrHandshakeMessageTooLarge once it holds more than handMax bytes
	// (0: crypto/tls's own bounds only).
	hand    *bytes.Buffer
	handMax int
}

// errAborted is the read error of a stepped handshake ended by Abort.
var errAborted = errors.New("tlsterm: handshake aborted")

var _ net.Conn = (*rawConn)(nil)

func (r *rawConn) Read(b []byte) (int, error) {
	if r.nc != nil {
		return r.nc.Read(b)
	}
	if r.flood {
		return 0, ErrKeyUpdateFlood // not temporary: crypto/tls keeps it
	}
	if r.handMax > 0 && r.hand != nil && r.hand.Len() > r.handMax {
		return 0, ErrHandshakeMessageTooLarge // not temporary either
	}
	for len(r.in) == 0 {
		if r.yield == nil {
			if r.stepped {
				return 0, errAborted
			}
			return 0, errWouldBlock
		}
		if !r.yield(struct{}{}) {
			return 0, errAborted
		}
	}
	n := copy(b, r.in)
	r.in = r.in[n:]
	return n, nil
}

func (r *rawConn) Write(b []byte) (int, error) {
	if r.nc != nil {
		return r.nc.Write(b)
	}
	if r.opening {
		r.keyUpdateAnswered()
	}
	r.out = append(r.out, b...)
	return len(b), nil
}

// keyUpdateAnswered counts an answer against the budget.
func (r *rawConn) keyUpdateAnswered() {
	t := now().UnixNano()
	if r.kuN == 0 || t-r.kuStart > int64(KeyUpdateWindow) {
		r.kuStart, r.kuN = t, 0
	}
	r.kuN++
	if r.kuN > MaxKeyUpdates {
		r.flood = true
	}
}

// Close does nothing: the caller owns the socket.
func (r *rawConn) Close() error { return nil }

func (r *rawConn) LocalAddr() net.Addr {
	if r.nc != nil {
		return r.nc.LocalAddr()
	}
	return r.local
}

func (r *rawConn) RemoteAddr() net.Addr {
	if r.nc != nil {
		return r.nc.RemoteAddr()
	}
	return r.remote
}

func (r *rawConn) SetDeadline(t time.Time) error {
	if r.nc != nil {
		return r.nc.SetDeadline(t)
	}
	return nil
}

func (r *rawConn) SetReadDeadline(t time.Time) error {
	if r.nc != nil {
		return r.nc.SetReadDeadline(t)
	}
	return nil
}

func (r *rawConn) SetWriteDeadline(t time.Time) error {
	if r.nc != nil {
		return r.nc.SetWriteDeadline(t)
	}
	return nil
}
