package http2

import (
	"encoding/binary"
	"errors"
	"io"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ClientPreface is what a client sends before its first frame (RFC 9113
// 3.4).
const ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

const (
	frameHeaderLen    = 9
	defaultWindow     = 65535
	maxWindow         = 1<<31 - 1
	minMaxFrameSize   = 16384
	maxFrameSizeLimit = 1<<24 - 1
	// maxEvents is how many events Feed collects before it stops taking
	// frames; the rest of the buffer is left for the next call.
	maxEvents = 256
	// closedRing is how many recently closed stream IDs are remembered
	// to tell HEADERS on a closed stream from HEADERS on a skipped one,
	// and the fewest streams the proxy reset that are remembered so that
	// the frames the client had sent on them before it saw the
	// RST_STREAM are ignored (RFC 9113 5.1, which lets the period be
	// limited; Conn.reset).
	closedRing = 64
)

const (
	typeData         = 0x0
	typeHeaders      = 0x1
	typePriority     = 0x2
	typeRSTStream    = 0x3
	typeSettings     = 0x4
	typePushPromise  = 0x5
	typePing         = 0x6
	typeGoAway       = 0x7
	typeWindowUpdate = 0x8
	typeContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of Event.
const (
	// EventHeaders: a new request on Stream. Method, Scheme, Authority,
	// Path, ContentLength and Fields describe it; EndStream reports a
	// request without body.
	EventHeaders EventKind = iota + 1
	// EventData: request body bytes of Stream in Data (padding removed);
	// EndStream reports the last of them. Data may be empty when only
	// EndStream is reported. Call Consumed when they have been passed on.
	EventData
	// EventTrailers: the request's trailer fields in Fields; EndStream is
	// always true.
	EventTrailers
	// EventReset: Stream is gone, reset by the client (RST_STREAM with
	// Code) or by the Conn because the client broke a rule (Code is what
	// was sent). Stop working on it; writes to it fail.
	EventReset
	// EventWindow: Stream, which WriteData could not take whole, may
	// accept more data now (see SendWindow).
	EventWindow
	// EventGoAway: the client sent GOAWAY with Code; Stream is the last
	// stream it says it may have processed (of ours: none, as a server
	// opens no streams). It opens no new streams.
	EventGoAway
)

// Field is one header or trailer field. Names are lowercase.
type Field struct {
	Name, Value string
}

// Event is something the client did, returned by Feed.
//
// Data points into the buffer passed to Feed and is valid until the caller
// modifies or discards it. Fields is valid until the next call to Feed;
// the strings themselves are immutable and may be kept.
type Event struct {
	Kind      EventKind
	Stream    uint32
	EndStream bool
	Code      ErrCode
	Data      []byte
	// Request pseudo-header fields of an EventHeaders. Scheme and Path
	// are empty for CONNECT.
	Method, Scheme, Authority, Path string
	// ContentLength is the request's content-length, or -1 when absent.
	ContentLength int64
	// Fields are the regular fields of an EventHeaders or EventTrailers,
	// in the order received (cookie crumbs are not joined).
	Fields []Field
}

// Conn is the server side of one HTTP/2 connection.
//
// Create it with NewServerConn; the zero value is not usable. A Conn is
// not safe for concurrent use: it belongs to the event loop of its client
// connection. After a connection error (see ConnError) every method that
// writes returns that error, and Feed consumes nothing.
type Conn struct {
	lim Limits
	clk Clock

	fr  *http2.Framer
	rd  frameReader
	out outBuf
	dec *hpack.Decoder

	prefaceDone bool
	gotSettings bool
	err         *ConnError
	// goAway is set once the proxy called Shutdown; streams above
	// goAwayID are then ignored.
	goAway   bool
	goAwayID uint32

	streams map[uint32]*stream
	free    []*stream
	last    *stream
	lastID  uint32
	closed  [closedRing]uint32
	closedN int
	// Streams the proxy reset or ignored, with what their windows still
	// let the client send (inFlight): a ring of 2 × MaxConcurrentStreams
	// (at least closedRing), made at the first reset.
	reset  []resetStream
	resetN int

	// Send side: the client's settings and the connection send window.
	peerWindow   int64
	peerMaxFrame uint32
	sendConn     int64
	// Receive side: what the client may still send on the connection and
	// what the proxy has consumed without a WINDOW_UPDATE yet.
	recvConn   int64
	connCredit int64

	in     inBlock
	fields []Field
	events []Event
	hb     HeaderBlock

	resets, control budget
}

// stream is the state of one open or half-closed stream; closed streams
// are removed from Conn.streams.
type stream struct {
	id uint32
	// remoteDone: the client ended the stream (half-closed remote);
	// localDone: the proxy ended it (half-closed local).
	remoteDone, localDone bool
	sentFinal             bool
	blocked               bool
	sendWin               int64
	recvWin               int64
	credit                int64 // consumed, not yet returned with WINDOW_UPDATE
	unconsumed            int64 // received, not yet consumed
	contentLength         int64
	received              int64
}

type budget struct {
	start time.Time
	n     int
}

// frameReader hands the Framer exactly one whole frame.
type frameReader struct{ b []byte }

func (r *frameReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

type outBuf struct{ b []byte }

func (o *outBuf) Write(p []byte) (int, error) {
	o.b = append(o.b, p...)
	return len(p), nil
}

// NewServerConn returns the server side of a new connection, with its
// SETTINGS (and a connection WINDOW_UPDATE when lim.ConnWindow is larger
// than the default) already in the output. lim may be nil (DefaultLimits)
// and is copied; clk may be nil (the system clock).
func NewServerConn(lim *Limits, clk Clock) *Conn {
	if clk == nil {
		clk = systemClock{}
	}
	c := &Conn{
		lim:          lim.resolved(),
		clk:          clk,
		streams:      make(map[uint32]*stream),
		peerWindow:   defaultWindow,
		peerMaxFrame: minMaxFrameSize,
		sendConn:     defaultWindow,
		recvConn:     defaultWindow,
	}
	c.fr = http2.NewFramer(&c.out, &c.rd)
	c.dec = hpack.NewDecoder(c.lim.HeaderTableSize, c.onField)
	c.dec.SetMaxStringLength(int(c.lim.MaxHeaderListSize))
	c.hb.init()

	settings := [...]http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.lim.MaxConcurrentStreams},
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

// Output returns the bytes queued for the client and empties the queue.
// The returned slice is valid until the next call of a method of c; send
// or copy it before.
func (c *Conn) Output() []byte {
	b := c.out.b
	c.out.b = c.out.b[:0]
	return b
}

// Buffered reports how many bytes are queued for the client.
func (c *Conn) Buffered() int { return len(c.out.b) }

// Err returns the connection error that ended c, or nil.
func (c *Conn) Err() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// Streams returns the number of open and half-closed streams.
func (c *Conn) Streams() int { return len(c.streams) }

// MaxStreams is the SETTINGS_MAX_CONCURRENT_STREAMS c advertised.
func (c *Conn) MaxStreams() int { return int(c.lim.MaxConcurrentStreams) }

// Done reports that the proxy called Shutdown and no stream remains: the
// connection can be closed once its output is sent.
func (c *Conn) Done() bool { return c.goAway && len(c.streams) == 0 }

// Feed processes the whole frames at the start of p (after the client
// preface, on a new connection) and returns how many bytes it consumed and
// the events they carried. Bytes of an incomplete frame are left for the
// next call with the same buffer extended by what arrives next; so are
// whole frames after about 256 events: call Feed again while it consumes
// something.
//
// The returned slice is reused by the next call. On a connection error
// Feed returns the *ConnError, with a GOAWAY queued in the output (and the
// events of the frames before it); the connection's streams are all gone.
func (c *Conn) Feed(p []byte) (int, []Event, error) {
	c.events = c.events[:0]
	if c.in.active {
		// Keep the fields of a header block still being received.
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
	if !c.prefaceDone {
		k := min(len(p), len(ClientPreface))
		if string(p[:k]) != ClientPreface[:k] {
			return 0, nil, c.fail(ErrBadPreface)
		}
		if k < len(ClientPreface) {
			return 0, nil, nil
		}
		c.prefaceDone = true
		n = k
	}
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
func (c *Conn) fail(e *ConnError) error {
	if c.err == nil {
		c.err = e
		_ = c.fr.WriteGoAway(c.lastID, http2.ErrCode(e.Code), nil)
		for id, st := range c.streams {
			delete(c.streams, id)
			c.free = append(c.free, st)
		}
		c.last = nil
	}
	return c.err
}

// frame processes one whole frame.
func (c *Conn) frame(f []byte) *ConnError {
	typ, flags := f[3], f[4]
	id := binary.BigEndian.Uint32(f[5:9]) & 0x7fffffff
	payload := f[frameHeaderLen:]
	if !c.gotSettings {
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
			if err := c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood); err != nil {
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
		return ErrPushPromise
	case typePriority, typeRSTStream, typeSettings, typePing, typeGoAway:
		return c.onControl(f)
	default:
		// Unknown frame types are ignored (RFC 9113 4.1, 5.5).
		return c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood)
	}
}

// spend counts one frame against b and returns over when b is exhausted
// within the flood window.
func (c *Conn) spend(b *budget, limit int, over *ConnError) *ConnError {
	now := c.clk.Now()
	if b.n == 0 || now.Sub(b.start) > c.lim.FloodWindow {
		b.start, b.n = now, 0
	}
	b.n++
	if b.n > limit {
		return over
	}
	return nil
}

// onControl hands a PRIORITY, RST_STREAM, SETTINGS, PING or GOAWAY frame
// to the Framer.
func (c *Conn) onControl(frame []byte) *ConnError {
	c.rd.b = frame
	f, err := c.fr.ReadFrame()
	if err != nil {
		return framerError(err)
	}
	switch f := f.(type) {
	case *http2.PriorityFrame:
		if err := c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood); err != nil {
			return err
		}
		if f.StreamDep == f.StreamID {
			return c.streamError(f.StreamID, ErrCodeProtocol)
		}
	case *http2.RSTStreamFrame:
		id := f.StreamID
		st := c.stream(id)
		if st == nil {
			if id > c.lastID {
				return ErrIdleStream
			}
			return c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood)
		}
		c.removeStream(st)
		c.events = append(c.events, Event{Kind: EventReset, Stream: id, Code: ErrCode(f.ErrCode)})
		return c.spend(&c.resets, c.lim.MaxResets, ErrRapidReset)
	case *http2.SettingsFrame:
		if err := c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood); err != nil {
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
		if err := c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood); err != nil {
			return err
		}
		if !f.IsAck() {
			_ = c.fr.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		c.events = append(c.events, Event{Kind: EventGoAway, Stream: f.LastStreamID, Code: ErrCode(f.ErrCode)})
	}
	return nil
}

// framerError maps an error from the Framer to a connection error.
func framerError(err error) *ConnError {
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		switch ErrCode(ce) {
		case ErrCodeFrameSize:
			return ErrFrameSize
		case ErrCodeFlowControl:
			return ErrBadWindowSetting
		}
	}
	return ErrProtocol
}

func (c *Conn) applySetting(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		if s.ID == http2.SettingInitialWindowSize {
			return ErrBadWindowSetting
		}
		return ErrBadSetting
	}
	switch s.ID {
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
	}
	// SETTINGS_HEADER_TABLE_SIZE needs nothing: responses are encoded
	// without the dynamic table. MAX_CONCURRENT_STREAMS and ENABLE_PUSH
	// concern pushed streams, which a ConnX server never opens.
	return nil
}

// wake reports an EventWindow for st if a write was cut short and the
// windows now accept data.
func (c *Conn) wake(st *stream) {
	if st.blocked && st.sendWin > 0 && c.sendConn > 0 && !st.localDone {
		st.blocked = false
		c.events = append(c.events, Event{Kind: EventWindow, Stream: st.id})
	}
}

func (c *Conn) onWindowUpdate(id uint32, p []byte) *ConnError {
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
		if id > c.lastID {
			return ErrIdleStream
		}
		if inc == 0 {
			return c.streamError(id, ErrCodeProtocol)
		}
		return c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood)
	}
	if inc == 0 {
		return c.streamError(id, ErrCodeProtocol)
	}
	st.sendWin += inc
	if st.sendWin > maxWindow {
		return c.streamError(id, ErrCodeFlowControl)
	}
	c.wake(st)
	return nil
}

func (c *Conn) onData(flags byte, id uint32, payload []byte) *ConnError {
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
		if id > c.lastID {
			return ErrIdleStream
		}
		c.connCredit += flen
		c.flushConnCredit()
		if r := c.inFlight(id); r != nil && flen <= r.left {
			// Sent before the client saw the proxy's RST_STREAM or
			// GOAWAY: counted for flow control, otherwise ignored, up
			// to the stream's window (more is not in flight).
			r.left -= flen
			if flen == 0 {
				return c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood)
			}
			return nil
		}
		return c.streamError(id, ErrCodeStreamClosed)
	}
	if st.remoteDone || flen > st.recvWin {
		c.connCredit += flen
		code := ErrCodeStreamClosed
		if !st.remoteDone {
			code = ErrCodeFlowControl
		}
		return c.streamError(id, code)
	}
	st.recvWin -= flen
	if pad := flen - int64(len(data)); pad > 0 {
		c.connCredit += pad
		st.credit += pad
	}
	st.received += int64(len(data))
	if st.contentLength >= 0 && (st.received > st.contentLength || end && st.received != st.contentLength) {
		c.connCredit += int64(len(data))
		return c.streamError(id, ErrCodeProtocol)
	}
	if len(data) == 0 && !end {
		if err := c.spend(&c.control, c.lim.MaxControlFrames, ErrControlFlood); err != nil {
			return err
		}
	}
	st.unconsumed += int64(len(data))
	if len(data) > 0 || end {
		c.events = append(c.events, Event{Kind: EventData, Stream: id, Data: data, EndStream: end})
	}
	if end {
		c.closeRemote(st)
	} else {
		c.flushStreamCredit(st)
	}
	c.flushConnCredit()
	return nil
}

// Consumed tells c that the proxy has passed on (or dropped) n bytes of
// the request body of stream id, so the client may send that many more:
// WINDOW_UPDATE frames are queued once half a window is owed. Bytes of a
// stream that has since closed were already returned.
func (c *Conn) Consumed(id uint32, n int) {
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

func (c *Conn) flushStreamCredit(st *stream) {
	if st.credit > 0 && st.credit >= int64(c.lim.StreamWindow)/2 {
		_ = c.fr.WriteWindowUpdate(st.id, uint32(st.credit))
		st.recvWin += st.credit
		st.credit = 0
	}
}

func (c *Conn) flushConnCredit() {
	if c.connCredit > 0 && c.connCredit >= int64(c.lim.ConnWindow)/2 {
		_ = c.fr.WriteWindowUpdate(0, uint32(c.connCredit))
		c.recvConn += c.connCredit
		c.connCredit = 0
	}
}

// stream returns the open or half-closed stream id, or nil.
func (c *Conn) stream(id uint32) *stream {
	if c.last != nil && c.last.id == id {
		return c.last
	}
	st := c.streams[id]
	if st != nil {
		c.last = st
	}
	return st
}

func (c *Conn) newStream(id uint32) *stream {
	var st *stream
	if n := len(c.free); n > 0 {
		st = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		st = new(stream)
	}
	*st = stream{
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
func (c *Conn) removeStream(st *stream) {
	c.connCredit += st.unconsumed
	c.flushConnCredit()
	delete(c.streams, st.id)
	if c.last == st {
		c.last = nil
	}
	c.rememberClosed(st.id)
	c.free = append(c.free, st)
}

func (c *Conn) rememberClosed(id uint32) {
	c.closed[c.closedN%closedRing] = id
	c.closedN++
}

func (c *Conn) recentlyClosed(id uint32) bool {
	for _, v := range c.closed {
		if v == id {
			return true
		}
	}
	return false
}

// resetStream is a stream the proxy reset (or ignored after GOAWAY) and
// the DATA the client may still have had in flight on it: the stream's
// receive window when it was reset.
type resetStream struct {
	id   uint32
	left int64
}

// rememberReset notes that the proxy is done with stream id (it sent
// RST_STREAM, or ignores the stream after its GOAWAY) while the client
// may still send window bytes of DATA on it.
func (c *Conn) rememberReset(id uint32, window int64) {
	if c.reset == nil {
		c.reset = make([]resetStream, max(closedRing, 2*int(c.lim.MaxConcurrentStreams)))
	}
	c.reset[c.resetN%len(c.reset)] = resetStream{id, max(window, 0)}
	c.resetN++
}

// inFlight returns the entry of stream id if frames on it may have been
// sent before the client learnt that the proxy is done with it (one of
// the streams rememberReset noted last), nil otherwise. Such frames are
// ignored, not punished (RFC 9113 5.1, 6.8), as far as the stream's
// window allows.
func (c *Conn) inFlight(id uint32) *resetStream {
	for i := range c.reset {
		if c.reset[i].id == id {
			return &c.reset[i]
		}
	}
	return nil
}

func (c *Conn) closeRemote(st *stream) {
	st.remoteDone = true
	if st.localDone {
		c.removeStream(st)
	}
}

func (c *Conn) closeLocal(st *stream) {
	st.localDone = true
	if st.remoteDone {
		c.removeStream(st)
	}
}

// streamError resets stream id for a client error (RFC 9113 5.4.2); an
// open stream is reported with an EventReset. It counts against the reset
// budget, so a client cannot make the proxy do unbounded work by
// provoking resets instead of sending them.
func (c *Conn) streamError(id uint32, code ErrCode) *ConnError {
	_ = c.fr.WriteRSTStream(id, http2.ErrCode(code))
	if st := c.stream(id); st != nil {
		c.rememberReset(id, st.recvWin)
	} else if c.inFlight(id) == nil {
		c.rememberReset(id, 0)
	}
	if st := c.stream(id); st != nil {
		c.removeStream(st)
		c.events = append(c.events, Event{Kind: EventReset, Stream: id, Code: code})
	}
	return c.spend(&c.resets, c.lim.MaxResets, ErrRapidReset)
}

// refuseNew resets stream id, which the client is opening with the
// header block just received, with code: its body may already follow,
// up to a stream's window, and is ignored. An open stream (trailers on
// a stream the client had ended) keeps its own window.
func (c *Conn) refuseNew(id uint32, code ErrCode) *ConnError {
	if c.stream(id) == nil && c.inFlight(id) == nil {
		c.rememberReset(id, int64(c.lim.StreamWindow))
	}
	return c.streamError(id, code)
}

// Reset resets stream id with code (RST_STREAM) on the proxy's behalf:
// an upstream failed, or a complete response makes the rest of the request
// body unwanted (ErrCodeNo, RFC 9113 8.1). Unknown streams are ignored.
func (c *Conn) Reset(id uint32, code ErrCode) {
	if c.err != nil {
		return
	}
	st := c.stream(id)
	if st == nil {
		return
	}
	_ = c.fr.WriteRSTStream(id, http2.ErrCode(code))
	c.rememberReset(id, st.recvWin)
	c.removeStream(st)
}

// Refuse refuses the new stream id with REFUSED_STREAM on the proxy's
// behalf (it holds as many streams as it allows, counting some the codec
// no longer knows): as a reset the codec decides itself, it counts
// against the reset budget, and an error is returned (and the
// connection failed) beyond it.
func (c *Conn) Refuse(id uint32) error {
	if c.err != nil {
		return c.err
	}
	if err := c.streamError(id, ErrCodeRefusedStream); err != nil {
		return c.fail(err)
	}
	return nil
}

// Shutdown starts a graceful close: it queues GOAWAY(NO_ERROR) with the
// last stream the client opened. Streams up to it run to their end;
// streams the client opens later are ignored. Done reports when none is
// left.
func (c *Conn) Shutdown() {
	if c.err != nil || c.goAway {
		return
	}
	c.goAway = true
	c.goAwayID = c.lastID
	_ = c.fr.WriteGoAway(c.lastID, http2.ErrCodeNo, nil)
}

// SendWindow returns how many bytes of response body WriteData would take
// on stream id now: the smaller of the stream's and the connection's send
// windows, or 0 when the stream is not open for sending.
func (c *Conn) SendWindow(id uint32) int {
	if c.err != nil {
		return 0
	}
	st := c.stream(id)
	if st == nil || st.localDone || !st.sentFinal {
		return 0
	}
	return int(max(min(st.sendWin, c.sendConn), 0))
}

// WriteData queues as much of p as the send windows allow as DATA frames
// on stream id and returns how much that was. endStream ends the stream if
// all of p was taken (an empty p with endStream sends an empty DATA frame
// with END_STREAM). When less than len(p) was taken, an EventWindow
// reports when the windows open again. The response head must have been
// written first.
func (c *Conn) WriteData(id uint32, p []byte, endStream bool) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	st := c.stream(id)
	if st == nil || st.localDone {
		return 0, ErrStreamClosed
	}
	if !st.sentFinal {
		return 0, ErrHeaderOrder
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
		c.appendData(id, rest[:k], last && endStream)
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

// appendData writes one DATA frame. The Framer is not used here because
// it would copy each payload twice (into its buffer, then into ours).
func (c *Conn) appendData(id uint32, p []byte, end bool) {
	var flags byte
	if end {
		flags = flagEndStream
	}
	n := len(p)
	c.out.b = append(c.out.b, byte(n>>16), byte(n>>8), byte(n), typeData, flags,
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	c.out.b = append(c.out.b, p...)
}

// WriteHeaders queues the header block b (from Headers) on stream id:
// informational (1xx) heads, then one final head, then optionally
// trailers (a block with status 0), which must end the stream. A block
// larger than the client's frame size is split into CONTINUATION frames.
func (c *Conn) WriteHeaders(id uint32, b *HeaderBlock, endStream bool) error {
	if c.err != nil {
		return c.err
	}
	st := c.stream(id)
	if st == nil || st.localDone {
		return ErrStreamClosed
	}
	switch {
	case b.status == 0:
		if !st.sentFinal || !endStream {
			return ErrHeaderOrder
		}
	case b.status < 200:
		if st.sentFinal || endStream {
			return ErrHeaderOrder
		}
	default:
		if st.sentFinal {
			return ErrHeaderOrder
		}
		st.sentFinal = true
	}
	blk := b.w.b
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
	if endStream {
		c.closeLocal(st)
	}
	return nil
}
