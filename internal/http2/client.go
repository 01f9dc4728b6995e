package http2

import (
	"encoding/binary"
	"errors"
	"slices"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ClientEvent is something the server did on a ClientConn, returned by
// ClientConn.Feed.
//
// Kinds, for the client role:
//   - EventHeaders: a response head on Stream. Status is 1xx for an
//     informational response (more heads follow) or the final status;
//     ContentLength and Fields describe it. EndStream reports a response
//     without body — for gRPC a trailers-only response, whose
//     grpc-status and grpc-message are then in Fields.
//   - EventData: response body bytes in Data (padding removed); EndStream
//     reports the last of them. Call Consumed when they have been passed
//     on.
//   - EventTrailers: the response's trailer fields in Fields (gRPC's
//     grpc-status, grpc-message); EndStream is always true.
//   - EventReset: Stream is gone: the server reset it (RST_STREAM with
//     Code), ClientConn reset it because the server broke a rule (Code is
//     what was sent), or it was above the last stream of a GOAWAY (Code is
//     REFUSED_STREAM). Unprocessed reports that the server did not process
//     the request (RFC 9113 8.7), so it may be retried on another
//     connection. A reset with Code NO_ERROR after a complete response
//     only asks to stop sending the request body (RFC 9113 8.1).
//   - EventWindow: Stream, which WriteData could not take whole, may take
//     more now (see SendWindow).
//   - EventGoAway: the server sent GOAWAY with Code; Stream is the last
//     stream it may process. Streams above it are reported with
//     EventReset (Unprocessed) just after; no new stream can be opened.
//
// Data points into the buffer passed to Feed and is valid until the caller
// modifies or discards it. Fields is valid until the next call to Feed;
// the strings themselves are immutable and may be kept.
type ClientEvent struct {
	Kind        EventKind
	Stream      uint32
	EndStream   bool
	Unprocessed bool
	Code        ErrCode
	Status      int
	Data        []byte
	// ContentLength is the response's content-length, or -1 when absent
	// or when the response has no content (HEAD, 204, 304).
	ContentLength int64
	Fields        []Field
}

// Errors returned by ClientConn.OpenStream and the writes to a stream.
var (
	// ErrNoStreamAvailable: as many streams are open as the server's
	// SETTINGS_MAX_CONCURRENT_STREAMS (or Limits.MaxConcurrentStreams)
	// allow; wait until Available is positive.
	ErrNoStreamAvailable = errors.New("http2: no stream available on the connection")
	// ErrGoingAway: the server sent GOAWAY or Shutdown was called; open
	// the stream on another connection.
	ErrGoingAway = errors.New("http2: connection going away")
	// ErrStreamIDsExhausted: the connection has used all its stream
	// identifiers; open the stream on another connection.
	ErrStreamIDsExhausted = errors.New("http2: stream identifiers exhausted")
	// ErrHeaderListTooLarge: the block is larger than the server's
	// SETTINGS_MAX_HEADER_LIST_SIZE. Nothing was sent.
	ErrHeaderListTooLarge = errors.New("http2: header list larger than the server accepts")
	// ErrNotRequest: OpenStream was given a block that is not a request
	// head from Request, or WriteTrailers one that is not from Trailers.
	ErrNotRequest = errors.New("http2: wrong kind of header block")
)

// Connection errors only a client sees.
var (
	ErrServerPush   = connErr(ErrCodeProtocol, "server sent PUSH_PROMISE with push disabled")
	ErrServerStream = connErr(ErrCodeProtocol, "server sent HEADERS on a stream the client did not open")
	ErrEnablePush   = connErr(ErrCodeProtocol, "server sent SETTINGS_ENABLE_PUSH other than 0")
)

// assumedMaxStreams is the server's SETTINGS_MAX_CONCURRENT_STREAMS
// assumed until its SETTINGS say otherwise (the RFC's initial value is
// unlimited; it recommends no less than 100). A server that allows fewer
// refuses the excess with REFUSED_STREAM, which is reported Unprocessed.
const assumedMaxStreams = 100

// ClientConn is the client side of one HTTP/2 connection to a backend: it
// opens streams (requests) and reads their responses, bytes in and bytes
// out like Conn.
//
// Create it with NewClientConn; the zero value is not usable. A ClientConn
// is not safe for concurrent use: it belongs to the event loop that owns
// the backend connection. After a connection error (see ConnError) every
// method that writes returns that error and Feed consumes nothing.
//
// A stream counts against the server's concurrency limit until both
// sides have ended it or it is reset: a response that ends before the
// request does (a gRPC error while the client still streams) keeps it
// until the proxy ends the request or calls Reset.
type ClientConn struct {
	lim Limits
	clk Clock

	fr  *http2.Framer
	rd  frameReader
	out outBuf
	dec *hpack.Decoder

	gotSettings bool
	err         *ConnError
	// shutdown: Shutdown was called. goAway: the server sent GOAWAY with
	// goAwayID. Either way no stream is opened any more.
	shutdown bool
	goAway   bool
	goAwayID uint32

	streams map[uint32]*clientStream
	free    []*clientStream
	last    *clientStream
	nextID  uint32
	ids     []uint32 // scratch for GOAWAY

	// The server's settings and the connection send window.
	peerMaxStreams uint32
	peerWindow     int64
	peerMaxFrame   uint32
	peerMaxList    uint32
	sendConn       int64
	// What the server may still send on the connection and what the
	// proxy consumed without a WINDOW_UPDATE yet.
	recvConn   int64
	connCredit int64

	in     clientBlock
	fields []Field
	events []ClientEvent
	hb     HeaderBlock
	hbKind uint8

	control budget
}

// Kinds of the block in ClientConn.hb.
const (
	hbNone uint8 = iota
	hbRequest
	hbHeadRequest // a HEAD request: its response has no content
	hbTrailers
)

// clientStream is the state of one open or half-closed stream.
type clientStream struct {
	id uint32
	// localDone: ConnX ended the request; remoteDone: the server ended
	// the response.
	localDone, remoteDone bool
	headReq               bool // the request is HEAD
	gotFinal              bool // a final response head arrived
	noContent             bool // the response has no content (HEAD, 204, 304)
	blocked               bool
	sendWin               int64
	recvWin               int64
	credit                int64
	unconsumed            int64
	contentLength         int64
	received              int64
}

// NewClientConn returns the client side of a new connection, with the
// client preface, its SETTINGS (server push disabled) and a connection
// WINDOW_UPDATE when lim.ConnWindow is larger than the default already in
// the output. lim may be nil (DefaultLimits) and is copied; for a client,
// lim.MaxConcurrentStreams caps the streams ConnX opens (the server's
// SETTINGS_MAX_CONCURRENT_STREAMS caps them too), and the receive limits
// (header list, windows, frame size, flood budgets) apply to what the
// server sends. clk may be nil (the system clock).
func NewClientConn(lim *Limits, clk Clock) *ClientConn {
	if clk == nil {
		clk = systemClock{}
	}
	c := &ClientConn{
		lim:            lim.resolved(),
		clk:            clk,
		streams:        make(map[uint32]*clientStream),
		nextID:         1,
		peerMaxStreams: assumedMaxStreams,
		peerWindow:     defaultWindow,
		peerMaxFrame:   minMaxFrameSize,
		peerMaxList:    ^uint32(0),
		sendConn:       defaultWindow,
		recvConn:       defaultWindow,
	}
	c.fr = http2.NewFramer(&c.out, &c.rd)
	c.dec = hpack.NewDecoder(c.lim.HeaderTableSize, c.onField)
	c.dec.SetMaxStringLength(int(c.lim.MaxHeaderListSize))
	c.hb.init()

	c.out.b = append(c.out.b, ClientPreface...)
	settings := [...]http2.Setting{
		{ID: http2.SettingEnablePush, Val: 0},
		{ID: http2.SettingMaxHeaderListSize, Val: c.lim.MaxHeaderListSize},
		{ID: http2.SettingInitialWindowSize, Val: c.lim.StreamWindow},
		{ID: http2.SettingMaxFrameSize, Val: c.lim.MaxFrameSize},
		{ID: http2.SettingHeaderTableSize, Val: c.lim.HeaderTableSize},
	}
	_ = c.fr.WriteSettings(settings[:]...)
	if d := int64(c.lim.ConnWindow) - defaultWindow; d > 0 {
		_ = c.fr.WriteWindowUpdate(0, uint32(d))
		c.recvConn += d
	}
	return c
}

// Output returns the bytes queued for the server and empties the queue.
// The returned slice is valid until the next call of a method of c; send
// or copy it before.
func (c *ClientConn) Output() []byte {
	b := c.out.b
	c.out.b = c.out.b[:0]
	return b
}

// Buffered reports how many bytes are queued for the server.
func (c *ClientConn) Buffered() int { return len(c.out.b) }

// Err returns the connection error that ended c, or nil.
func (c *ClientConn) Err() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// Streams returns the number of open and half-closed streams.
func (c *ClientConn) Streams() int { return len(c.streams) }

// Available returns how many more streams OpenStream would open now: 0
// after a connection error, a GOAWAY, Shutdown, or when the stream
// identifiers are used up. It grows when streams end and when the server
// raises its SETTINGS_MAX_CONCURRENT_STREAMS.
func (c *ClientConn) Available() int {
	if c.err != nil || c.goAway || c.shutdown || c.nextID > maxWindow {
		return 0
	}
	limit := min(c.peerMaxStreams, c.lim.MaxConcurrentStreams)
	return max(int(limit)-len(c.streams), 0)
}

// Done reports that the connection will carry no more streams — Shutdown
// was called or the server sent GOAWAY — and none is left: it can be
// closed once its output is sent.
func (c *ClientConn) Done() bool { return (c.shutdown || c.goAway) && len(c.streams) == 0 }

// Request starts a request head with its pseudo-header fields. For CONNECT
// pass empty scheme and path. Add the regular fields to it (the
// connection-specific ones are dropped, but "te: trailers" is kept), then
// pass it to OpenStream. Values are not checked: they come from a request
// the proxy has validated. The block is valid until the next call to
// Request or Trailers.
func (c *ClientConn) Request(method, scheme, authority, path string) *HeaderBlock {
	b := &c.hb
	b.reset(true)
	c.hbKind = hbRequest
	if method == "HEAD" {
		c.hbKind = hbHeadRequest
	}
	b.field(":method", method)
	if scheme != "" {
		b.field(":scheme", scheme)
	}
	if authority != "" {
		b.field(":authority", authority)
	}
	if path != "" {
		b.field(":path", path)
	}
	return b
}

// RequestBytes is Request for a head the proxy holds as bytes: method,
// authority and path are read while the block is made and not kept (the
// encoder keeps no field), so they cost no string.
func (c *ClientConn) RequestBytes(method []byte, scheme string, authority, path []byte) *HeaderBlock {
	return c.Request(bstr(method), scheme, bstr(authority), bstr(path))
}

// Trailers starts a request trailer section for WriteTrailers. The block
// is valid until the next call to Request or Trailers.
func (c *ClientConn) Trailers() *HeaderBlock {
	c.hb.reset(false)
	c.hbKind = hbTrailers
	return &c.hb
}

// OpenStream opens a stream with the request head b (from Request) and
// returns its identifier; endStream sends a request without body. It
// fails, sending nothing, with ErrNoStreamAvailable, ErrGoingAway,
// ErrStreamIDsExhausted, ErrHeaderListTooLarge or the connection error.
func (c *ClientConn) OpenStream(b *HeaderBlock, endStream bool) (uint32, error) {
	if c.err != nil {
		return 0, c.err
	}
	if b != &c.hb || c.hbKind != hbRequest && c.hbKind != hbHeadRequest {
		return 0, ErrNotRequest
	}
	switch {
	case c.goAway || c.shutdown:
		return 0, ErrGoingAway
	case c.nextID > maxWindow:
		return 0, ErrStreamIDsExhausted
	case c.Available() == 0:
		return 0, ErrNoStreamAvailable
	case uint64(b.size) > uint64(c.peerMaxList):
		return 0, ErrHeaderListTooLarge
	}
	id := c.nextID
	c.nextID += 2
	st := c.newStream(id)
	st.headReq = c.hbKind == hbHeadRequest
	c.hbKind = hbNone
	c.writeBlock(id, b.w.b, endStream)
	if endStream {
		st.localDone = true
	}
	return id, nil
}

// WriteTrailers sends the request trailers b (from Trailers) on stream id
// and ends the request.
func (c *ClientConn) WriteTrailers(id uint32, b *HeaderBlock) error {
	if c.err != nil {
		return c.err
	}
	if b != &c.hb || c.hbKind != hbTrailers {
		return ErrNotRequest
	}
	st := c.stream(id)
	if st == nil || st.localDone {
		return ErrStreamClosed
	}
	if uint64(b.size) > uint64(c.peerMaxList) {
		return ErrHeaderListTooLarge
	}
	c.hbKind = hbNone
	c.writeBlock(id, b.w.b, true)
	c.closeLocal(st)
	return nil
}

// writeBlock writes a header block as HEADERS and CONTINUATION frames no
// larger than the server's frame size.
func (c *ClientConn) writeBlock(id uint32, blk []byte, endStream bool) {
	k := min(len(blk), int(c.peerMaxFrame))
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      id,
		BlockFragment: blk[:k],
		EndStream:     endStream,
		EndHeaders:    k == len(blk),
	})
	for blk = blk[k:]; len(blk) > 0; blk = blk[k:] {
		k = min(len(blk), int(c.peerMaxFrame))
		_ = c.fr.WriteContinuation(id, k == len(blk), blk[:k])
	}
}

// SendWindow returns how many bytes of request body WriteData would take
// on stream id now: the smaller of the stream's and the connection's send
// windows, or 0 when the stream is not open for sending.
func (c *ClientConn) SendWindow(id uint32) int {
	if c.err != nil {
		return 0
	}
	st := c.stream(id)
	if st == nil || st.localDone {
		return 0
	}
	return int(max(min(st.sendWin, c.sendConn), 0))
}

// WriteData queues as much of p as the send windows allow as DATA frames
// on stream id and returns how much that was. endStream ends the request
// if all of p was taken (an empty p with endStream sends an empty DATA
// frame with END_STREAM). When less than len(p) was taken, an EventWindow
// reports when the windows open again.
func (c *ClientConn) WriteData(id uint32, p []byte, endStream bool) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	st := c.stream(id)
	if st == nil || st.localDone {
		return 0, ErrStreamClosed
	}
	n := int(max(min(int64(len(p)), st.sendWin, c.sendConn), 0))
	if n < len(p) {
		st.blocked = true
		endStream = false
	}
	if n == 0 && !endStream {
		return 0, nil
	}
	st.sendWin -= int64(n)
	c.sendConn -= int64(n)
	rest := p[:n]
	for {
		k := min(len(rest), int(c.peerMaxFrame))
		last := k == len(rest)
		c.out.b = appendDataFrame(c.out.b, id, rest[:k], last && endStream)
		rest = rest[k:]
		if last {
			break
		}
	}
	if endStream {
		c.closeLocal(st)
	}
	return n, nil
}

// appendDataFrame appends one DATA frame to b. The Framer is not used as
// it would copy the payload twice.
func appendDataFrame(b []byte, id uint32, p []byte, end bool) []byte {
	var flags byte
	if end {
		flags = flagEndStream
	}
	n := len(p)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typeData, flags,
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	return append(b, p...)
}

// Consumed tells c that the proxy has passed on (or dropped) n bytes of
// the response body of stream id, so the server may send that many more:
// WINDOW_UPDATE frames are queued once half a window is owed. Bytes of a
// stream that has since closed were already returned.
func (c *ClientConn) Consumed(id uint32, n int) {
	if c.err != nil || n <= 0 {
		return
	}
	st := c.stream(id)
	if st == nil {
		return
	}
	k := min(int64(n), st.unconsumed)
	st.unconsumed -= k
	c.connCredit += k
	if !st.remoteDone {
		st.credit += k
		c.flushStreamCredit(st)
	}
	c.flushConnCredit()
}

func (c *ClientConn) flushStreamCredit(st *clientStream) {
	if st.credit > 0 && st.credit >= int64(c.lim.StreamWindow)/2 {
		_ = c.fr.WriteWindowUpdate(st.id, uint32(st.credit))
		st.recvWin += st.credit
		st.credit = 0
	}
}

func (c *ClientConn) flushConnCredit() {
	if c.connCredit > 0 && c.connCredit >= int64(c.lim.ConnWindow)/2 {
		_ = c.fr.WriteWindowUpdate(0, uint32(c.connCredit))
		c.recvConn += c.connCredit
		c.connCredit = 0
	}
}

// Reset resets stream id with code (RST_STREAM) on the proxy's behalf:
// the client went away, or the call was cancelled (ErrCodeCancel). Frames
// the server sent before it saw the reset are ignored. Unknown streams
// are ignored.
func (c *ClientConn) Reset(id uint32, code ErrCode) {
	if c.err != nil {
		return
	}
	st := c.stream(id)
	if st == nil {
		return
	}
	_ = c.fr.WriteRSTStream(id, http2.ErrCode(code))
	c.removeStream(st)
}

// Shutdown starts a graceful close: it queues GOAWAY(NO_ERROR) (the server
// opens no streams, so its last stream is 0) and opens no more streams.
// Streams already open run to their end; Done reports when none is left.
func (c *ClientConn) Shutdown() {
	if c.err != nil || c.shutdown {
		return
	}
	c.shutdown = true
	_ = c.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
}

// Feed processes the whole frames at the start of p and returns how many
// bytes it consumed and the events they carried. Bytes of an incomplete
// frame are left for the next call with the same buffer extended by what
// arrives next; so are whole frames after about 256 events: call Feed
// again while it consumes something.
//
// The returned slice is reused by the next call. On a connection error
// Feed returns the *ConnError, with a GOAWAY queued in the output (and the
// events of the frames before it); every stream is gone and none of them
// is reported: the proxy fails them all (those above the error's last
// stream were not processed — all of them, as the server opens none).
func (c *ClientConn) Feed(p []byte) (int, []ClientEvent, error) {
	c.events = c.events[:0]
	if c.in.active {
		k := copy(c.fields, c.fields[c.in.first:])
		c.fields = c.fields[:k]
		c.in.first = 0
	} else {
		c.fields = c.fields[:0]
	}
	if c.err != nil {
		return 0, nil, c.err
	}
	n := 0
	for len(c.events) < maxEvents && len(p)-n >= frameHeaderLen {
		h := p[n : n+frameHeaderLen]
		length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		if length > int(c.lim.MaxFrameSize) {
			return n, c.events, c.fail(ErrFrameTooLarge)
		}
		if len(p)-n < frameHeaderLen+length {
			break
		}
		frame := p[n : n+frameHeaderLen+length]
		n += len(frame)
		if err := c.frame(frame); err != nil {
			return n, c.events, c.fail(err)
		}
	}
	return n, c.events, nil
}

// fail records a connection error and queues its GOAWAY.
func (c *ClientConn) fail(e *ConnError) error {
	if c.err == nil {
		c.err = e
		_ = c.fr.WriteGoAway(0, http2.ErrCode(e.Code), nil)
		for id, st := range c.streams {
			delete(c.streams, id)
			c.free = append(c.free, st)
		}
		c.last = nil
	}
	return c.err
}

func (c *ClientConn) frame(f []byte) *ConnError {
	typ, flags := f[3], f[4]
	id := binary.BigEndian.Uint32(f[5:9]) & 0x7fffffff
	payload := f[frameHeaderLen:]
	if !c.gotSettings {
		// RFC 9113 3.4: the server's preface is a SETTINGS frame.
		if typ != typeSettings || flags&flagAck != 0 {
			return ErrFirstNotSettings
		}
		c.gotSettings = true
	}
	if c.in.active {
		if typ != typeContinuation || id != c.in.id {
			return ErrExpectContinuation
		}
		c.in.frames++
		if c.in.frames > c.lim.MaxContinuations {
			return ErrContinuationFlood
		}
		if len(payload) == 0 && flags&flagEndHeaders == 0 {
			if err := c.spend(); err != nil {
				return err
			}
		}
		return c.fragment(payload, flags&flagEndHeaders != 0)
	}
	switch typ {
	case typeData:
		return c.onData(flags, id, payload)
	case typeHeaders:
		return c.onHeaders(flags, id, payload)
	case typeWindowUpdate:
		return c.onWindowUpdate(id, payload)
	case typeContinuation:
		return ErrStrayContinuation
	case typePushPromise:
		return ErrServerPush
	case typePriority, typeRSTStream, typeSettings, typePing, typeGoAway:
		return c.onControl(f)
	default:
		return c.spend()
	}
}

// spend counts one control or empty frame against the flood budget.
func (c *ClientConn) spend() *ConnError {
	b := &c.control
	now := c.clk.Now()
	if b.n == 0 || now.Sub(b.start) > c.lim.FloodWindow {
		b.start, b.n = now, 0
	}
	b.n++
	if b.n > c.lim.MaxControlFrames {
		return ErrControlFlood
	}
	return nil
}

// idle reports a stream the client has not opened: even ones (the server
// opens none, push being off) and odd ones not yet used.
func (c *ClientConn) idle(id uint32) bool { return id&1 == 0 || id >= c.nextID }

func (c *ClientConn) onControl(frame []byte) *ConnError {
	c.rd.b = frame
	f, err := c.fr.ReadFrame()
	if err != nil {
		return framerError(err)
	}
	switch f := f.(type) {
	case *http2.PriorityFrame:
		return c.spend()
	case *http2.RSTStreamFrame:
		id := f.StreamID
		st := c.stream(id)
		if st == nil {
			if c.idle(id) {
				return ErrIdleStream
			}
			return c.spend()
		}
		c.removeStream(st)
		code := ErrCode(f.ErrCode)
		c.events = append(c.events, ClientEvent{Kind: EventReset, Stream: id, Code: code,
			Unprocessed: code == ErrCodeRefusedStream, ContentLength: -1})
	case *http2.SettingsFrame:
		if err := c.spend(); err != nil {
			return err
		}
		if f.IsAck() {
			return nil
		}
		if err := f.ForeachSetting(c.applySetting); err != nil {
			var ce *ConnError
			if errors.As(err, &ce) {
				return ce
			}
			return framerError(err)
		}
		_ = c.fr.WriteSettingsAck()
	case *http2.PingFrame:
		if err := c.spend(); err != nil {
			return err
		}
		if !f.IsAck() {
			_ = c.fr.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		c.onGoAway(f.LastStreamID, ErrCode(f.ErrCode))
	}
	return nil
}

// onGoAway reports a GOAWAY and, in ascending order, the streams above its
// last stream, which the server will not process.
func (c *ClientConn) onGoAway(lastID uint32, code ErrCode) {
	if c.goAway && lastID > c.goAwayID {
		// RFC 9113 6.8: the last stream identifier must not increase.
		lastID = c.goAwayID
	}
	c.goAway, c.goAwayID = true, lastID
	c.events = append(c.events, ClientEvent{Kind: EventGoAway, Stream: lastID, Code: code, ContentLength: -1})
	c.ids = c.ids[:0]
	for id := range c.streams {
		if id > lastID {
			c.ids = append(c.ids, id)
		}
	}
	slices.Sort(c.ids)
	for _, id := range c.ids {
		c.removeStream(c.streams[id])
		c.events = append(c.events, ClientEvent{Kind: EventReset, Stream: id,
			Code: ErrCodeRefusedStream, Unprocessed: true, ContentLength: -1})
	}
}

func (c *ClientConn) applySetting(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		if s.ID == http2.SettingInitialWindowSize {
			return ErrBadWindowSetting
		}
		return ErrBadSetting
	}
	switch s.ID {
	case http2.SettingEnablePush:
		// RFC 9113 6.5.2: a server sends no value other than 0.
		if s.Val != 0 {
			return ErrEnablePush
		}
	case http2.SettingMaxConcurrentStreams:
		c.peerMaxStreams = s.Val
	case http2.SettingInitialWindowSize:
		delta := int64(s.Val) - c.peerWindow
		c.peerWindow = int64(s.Val)
		for _, st := range c.streams {
			st.sendWin += delta
			if st.sendWin > maxWindow {
				return ErrWindowOverflow
			}
			c.wake(st)
		}
	case http2.SettingMaxFrameSize:
		c.peerMaxFrame = s.Val
	case http2.SettingMaxHeaderListSize:
		c.peerMaxList = s.Val
	}
	// SETTINGS_HEADER_TABLE_SIZE needs nothing: requests are encoded
	// without the dynamic table.
	return nil
}

// wake reports an EventWindow for st if a write was cut short and the
// windows now take data.
func (c *ClientConn) wake(st *clientStream) {
	if st.blocked && st.sendWin > 0 && c.sendConn > 0 && !st.localDone {
		st.blocked = false
		c.events = append(c.events, ClientEvent{Kind: EventWindow, Stream: st.id, ContentLength: -1})
	}
}

func (c *ClientConn) onWindowUpdate(id uint32, p []byte) *ConnError {
	if len(p) != 4 {
		return ErrFrameSize
	}
	inc := int64(binary.BigEndian.Uint32(p) & 0x7fffffff)
	if id == 0 {
		if inc == 0 {
			return ErrZeroWindowUpdate
		}
		c.sendConn += inc
		if c.sendConn > maxWindow {
			return ErrWindowOverflow
		}
		if c.sendConn-inc <= 0 {
			for _, st := range c.streams {
				c.wake(st)
			}
		}
		return nil
	}
	st := c.stream(id)
	if st == nil {
		if c.idle(id) {
			return ErrIdleStream
		}
		return c.spend()
	}
	if inc == 0 {
		return c.streamError(st, ErrCodeProtocol)
	}
	st.sendWin += inc
	if st.sendWin > maxWindow {
		return c.streamError(st, ErrCodeFlowControl)
	}
	c.wake(st)
	return nil
}

func (c *ClientConn) onData(flags byte, id uint32, payload []byte) *ConnError {
	if id == 0 {
		return ErrStreamZero
	}
	flen := int64(len(payload))
	data := payload
	if flags&flagPadded != 0 {
		if len(data) == 0 || int(data[0]) > len(data)-1 {
			return ErrBadPadding
		}
		data = data[1 : len(data)-int(data[0])]
	}
	if flen > c.recvConn {
		return ErrConnFlowControl
	}
	c.recvConn -= flen
	end := flags&flagEndStream != 0
	st := c.stream(id)
	if st == nil {
		if c.idle(id) {
			return ErrIdleStream
		}
		// A stream ConnX reset: the server sent this before it knew.
		c.connCredit += flen
		c.flushConnCredit()
		return nil
	}
	if st.remoteDone || !st.gotFinal || flen > st.recvWin {
		c.connCredit += flen
		code := ErrCodeProtocol // DATA before the response head
		switch {
		case st.remoteDone:
			code = ErrCodeStreamClosed
		case flen > st.recvWin:
			code = ErrCodeFlowControl
		}
		return c.streamError(st, code)
	}
	st.recvWin -= flen
	if pad := flen - int64(len(data)); pad > 0 {
		c.connCredit += pad
		st.credit += pad
	}
	st.received += int64(len(data))
	if st.noContent && st.received > 0 ||
		st.contentLength >= 0 && (st.received > st.contentLength || end && st.received != st.contentLength) {
		c.connCredit += int64(len(data))
		return c.streamError(st, ErrCodeProtocol)
	}
	if len(data) == 0 && !end {
		if err := c.spend(); err != nil {
			return err
		}
	}
	st.unconsumed += int64(len(data))
	if len(data) > 0 || end {
		c.events = append(c.events, ClientEvent{Kind: EventData, Stream: id, Data: data, EndStream: end, ContentLength: -1})
	}
	if end {
		c.closeRemote(st)
	} else {
		c.flushStreamCredit(st)
	}
	c.flushConnCredit()
	return nil
}

// streamError resets st for a server error (RFC 9113 5.4.2) and reports
// it with an EventReset.
func (c *ClientConn) streamError(st *clientStream, code ErrCode) *ConnError {
	_ = c.fr.WriteRSTStream(st.id, http2.ErrCode(code))
	c.removeStream(st)
	c.events = append(c.events, ClientEvent{Kind: EventReset, Stream: st.id, Code: code, ContentLength: -1})
	return nil
}

func (c *ClientConn) stream(id uint32) *clientStream {
	if c.last != nil && c.last.id == id {
		return c.last
	}
	st := c.streams[id]
	if st != nil {
		c.last = st
	}
	return st
}

func (c *ClientConn) newStream(id uint32) *clientStream {
	var st *clientStream
	if n := len(c.free); n > 0 {
		st = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		st = new(clientStream)
	}
	*st = clientStream{
		id:            id,
		sendWin:       c.peerWindow,
		recvWin:       int64(c.lim.StreamWindow),
		contentLength: -1,
	}
	c.streams[id] = st
	c.last = st
	return st
}

// removeStream forgets a closed stream, returning to the connection
// window what the proxy had not consumed of it.
func (c *ClientConn) removeStream(st *clientStream) {
	c.connCredit += st.unconsumed
	c.flushConnCredit()
	delete(c.streams, st.id)
	if c.last == st {
		c.last = nil
	}
	c.free = append(c.free, st)
}

func (c *ClientConn) closeRemote(st *clientStream) {
	st.remoteDone = true
	if st.localDone {
		c.removeStream(st)
	}
}

func (c *ClientConn) closeLocal(st *clientStream) {
	st.localDone = true
	if st.remoteDone {
		c.removeStream(st)
	}
}
