package http2

import (
	"encoding/binary"
	"errors"
	"strings"
	"unsafe"

	"golang.org/x/net/http2/hpack"
)

// blockKind says what a header block being received will become.
type blockKind uint8

const (
	blockNew      blockKind = iota // a request head on a new stream
	blockTrailers                  // trailers of an open stream
	blockIgnore                    // decoded for HPACK state only (after GOAWAY)
	blockRefuse                    // beyond MaxConcurrentStreams: REFUSED_STREAM
	blockReset                     // a stream error known at HEADERS: reset with code
)

// Pseudo-header fields seen, as bits.
const (
	pseudoMethod = 1 << iota
	pseudoScheme
	pseudoAuthority
	pseudoPath
)

// inBlock is the header block being received: a HEADERS frame and its
// CONTINUATION frames. Fields are decoded as fragments arrive, so no
// fragment is kept; the event is made at END_HEADERS.
type inBlock struct {
	active    bool // CONTINUATION expected
	id        uint32
	kind      blockKind
	code      ErrCode // for blockReset
	st        *stream // for blockTrailers
	endStream bool
	frames    int
	size      int // encoded bytes
	listSize  int // decoded size, RFC 9113 6.5.2
	tooLarge  bool
	malformed bool
	regular   bool // a regular field was seen
	pseudo    uint8
	first     int // index of the block's first field in Conn.fields

	method, scheme, authority, path, host string
	contentLength                         int64
}

func (c *Conn) onHeaders(flags byte, id uint32, p []byte) *ConnError {
	if id == 0 {
		return ErrStreamZero
	}
	pad := 0
	if flags&flagPadded != 0 {
		if len(p) == 0 {
			return ErrBadPadding
		}
		pad = int(p[0])
		p = p[1:]
	}
	selfDep := false
	if flags&flagPriority != 0 {
		if len(p) < 5 {
			return ErrFrameSize
		}
		selfDep = binary.BigEndian.Uint32(p)&0x7fffffff == id
		p = p[5:]
	}
	if pad > len(p) {
		return ErrBadPadding
	}
	p = p[:len(p)-pad]

	b := &c.in
	*b = inBlock{id: id, endStream: flags&flagEndStream != 0, first: len(c.fields), contentLength: -1}
	switch st := c.stream(id); {
	case st != nil && st.remoteDone:
		b.kind, b.code = blockReset, ErrCodeStreamClosed
	case st != nil:
		b.kind, b.st = blockTrailers, st
	case id&1 == 0:
		return ErrEvenStream
	case id <= c.lastID && c.inFlight(id) != nil:
		// Trailers sent before the client saw the proxy's RST_STREAM
		// or GOAWAY: decoded for the HPACK state only.
		b.kind = blockIgnore
	case id <= c.lastID:
		if c.recentlyClosed(id) {
			return ErrClosedStreamHeaders
		}
		return ErrStreamIDDecreased
	default:
		c.lastID = id
		switch {
		case c.goAway:
			b.kind = blockIgnore
			// Its body may follow, up to a stream's window.
			c.rememberReset(id, int64(c.lim.StreamWindow))
		case len(c.streams) >= int(c.lim.MaxConcurrentStreams):
			b.kind = blockRefuse
		}
	}
	if selfDep && b.kind != blockIgnore {
		b.kind, b.code = blockReset, ErrCodeProtocol
	}
	// Only request heads and trailers need their fields.
	c.dec.SetEmitEnabled(b.kind == blockNew || b.kind == blockTrailers)
	return c.fragment(p, flags&flagEndHeaders != 0)
}

// fragment decodes one piece of the header block and finishes the block
// at END_HEADERS.
func (c *Conn) fragment(p []byte, end bool) *ConnError {
	b := &c.in
	if err := decodeFragment(c.dec, &b.size, &b.active, c.lim.MaxHeaderListSize, p, end); err != nil || !end {
		return err
	}
	return c.endBlock()
}

// decodeFragment feeds p, one piece of a header block, to dec, both
// roles' way: size counts the block's encoded bytes (more than four
// times maxList is an HPACK bomb), active says a CONTINUATION must
// follow, and end closes the block. The caller finishes the block when
// end and no error.
func decodeFragment(dec *hpack.Decoder, size *int, active *bool, maxList uint32, p []byte, end bool) *ConnError {
	*size += len(p)
	if *size > 4*int(maxList) {
		return ErrHeaderBlockTooLarge
	}
	if _, err := dec.Write(p); err != nil {
		if errors.Is(err, hpack.ErrStringLength) {
			return ErrHeaderBlockTooLarge
		}
		return ErrCompression
	}
	*active = !end
	if end && dec.Close() != nil {
		return ErrCompression
	}
	return nil
}

// onField is the hpack.Decoder's emit function: it validates one field
// (RFC 9113 8.2, 8.3) and collects it.
func (c *Conn) onField(f hpack.HeaderField) {
	b := &c.in
	b.listSize += len(f.Name) + len(f.Value) + 32
	if b.listSize > int(c.lim.MaxHeaderListSize) {
		b.tooLarge = true
		c.dec.SetEmitEnabled(false)
		return
	}
	if b.malformed {
		return
	}
	name, value := f.Name, f.Value
	if !validValue(value) {
		b.malformed = true
		return
	}
	if len(name) > 0 && name[0] == ':' {
		if b.kind == blockTrailers || b.regular {
			b.malformed = true
			return
		}
		var bit uint8
		switch name {
		case ":method":
			bit, b.method = pseudoMethod, value
		case ":scheme":
			bit, b.scheme = pseudoScheme, value
		case ":authority":
			bit, b.authority = pseudoAuthority, value
		case ":path":
			bit, b.path = pseudoPath, value
		default:
			// :status, :protocol (extended CONNECT is not offered) and
			// unknown pseudo-header fields.
			b.malformed = true
			return
		}
		if b.pseudo&bit != 0 {
			b.malformed = true
		}
		b.pseudo |= bit
		return
	}
	b.regular = true
	if !validName(name) {
		b.malformed = true
		return
	}
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		b.malformed = true
		return
	case "te":
		if !strings.EqualFold(value, "trailers") {
			b.malformed = true
			return
		}
	case "content-length":
		n, ok := parseContentLength(value)
		if !ok || b.kind == blockTrailers || b.contentLength >= 0 && b.contentLength != n {
			b.malformed = true
			return
		}
		b.contentLength = n
	case "host":
		if b.host != "" && b.host != value {
			b.malformed = true
			return
		}
		b.host = value
	}
	c.fields = append(c.fields, Field{Name: name, Value: value})
}

// endBlock acts on a complete header block.
func (c *Conn) endBlock() *ConnError {
	b := &c.in
	switch b.kind {
	case blockIgnore:
		return nil
	case blockRefuse:
		return c.refuseNew(b.id, ErrCodeRefusedStream)
	case blockReset:
		return c.refuseNew(b.id, b.code)
	case blockTrailers:
		st := b.st
		if c.stream(b.id) != st {
			// The proxy reset the stream while its trailers arrived.
			return nil
		}
		if b.tooLarge || b.malformed || !b.endStream ||
			st.contentLength >= 0 && st.received != st.contentLength {
			return c.streamError(b.id, ErrCodeProtocol)
		}
		c.events = append(c.events, Event{Kind: EventTrailers, Stream: b.id, EndStream: true,
			ContentLength: -1, Fields: c.fields[b.first:len(c.fields):len(c.fields)]})
		c.closeRemote(st)
		return nil
	}
	if b.tooLarge {
		// RFC 9113 8.2.3 lets a server answer 431 instead of resetting.
		st := c.newStream(b.id)
		st.remoteDone = b.endStream
		_ = c.WriteHeaders(b.id, c.Headers(431), true)
		c.Reset(b.id, ErrCodeNo)
		return nil
	}
	if b.malformed || !b.validRequest() || b.endStream && b.contentLength > 0 {
		c.rememberClosed(b.id)
		return c.refuseNew(b.id, ErrCodeProtocol)
	}
	st := c.newStream(b.id)
	st.contentLength = b.contentLength
	st.remoteDone = b.endStream
	c.events = append(c.events, Event{
		Kind: EventHeaders, Stream: b.id, EndStream: b.endStream,
		Method: b.method, Scheme: b.scheme, Authority: b.authority, Path: b.path,
		ContentLength: b.contentLength,
		Fields:        c.fields[b.first:len(c.fields):len(c.fields)],
	})
	return nil
}

// validRequest checks the request pseudo-header fields (RFC 9113 8.3.1,
// 8.5) and that they can be forwarded as an HTTP/1.1 request line.
func (b *inBlock) validRequest() bool {
	if b.pseudo&pseudoMethod == 0 || !validToken(b.method) {
		return false
	}
	if b.pseudo&pseudoAuthority != 0 && !validAuthority(b.authority) {
		return false
	}
	if b.method == "CONNECT" {
		return b.pseudo == pseudoMethod|pseudoAuthority && b.authority != ""
	}
	if b.pseudo&(pseudoScheme|pseudoPath) != pseudoScheme|pseudoPath || !validScheme(b.scheme) {
		return false
	}
	switch {
	case b.path == "*":
		if b.method != "OPTIONS" {
			return false
		}
	case len(b.path) == 0 || b.path[0] != '/' || !validPath(b.path):
		return false
	}
	// RFC 9113 8.3.1: a Host field naming another authority than
	// :authority makes the request malformed.
	if b.host != "" && b.pseudo&pseudoAuthority != 0 && !strings.EqualFold(b.host, b.authority) {
		return false
	}
	return true
}

// parseContentLength parses a decimal content-length.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// Character classes, indexed by byte.
const (
	cToken     = 1 << iota // RFC 9110 tchar
	cLowerName             // tchar, not uppercase
	cPath                  // RFC 3986 pchar, "/", "?", and "%"; no space or controls
	cAuthority             // reg-name, IP literals, port
	cScheme
)

var charClass = func() (t [256]uint8) {
	for ch := 0; ch < 256; ch++ {
		b := byte(ch)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if alnum || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			t[ch] |= cToken
			if b < 'A' || b > 'Z' {
				t[ch] |= cLowerName
			}
		}
		if alnum || strings.IndexByte("-._~!$&'()*+,;=:@/?%", b) >= 0 {
			t[ch] |= cPath
		}
		if alnum || strings.IndexByte("-._~!$&'()*+,;=:[]%", b) >= 0 {
			t[ch] |= cAuthority
		}
		if alnum || strings.IndexByte("+-.", b) >= 0 {
			t[ch] |= cScheme
		}
	}
	return t
}()

func validClass(s string, class uint8) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&class == 0 {
			return false
		}
	}
	return true
}

func validToken(s string) bool     { return s != "" && validClass(s, cToken) }
func validName(s string) bool      { return s != "" && validClass(s, cLowerName) }
func validPath(s string) bool      { return validClass(s, cPath) }
func validAuthority(s string) bool { return validClass(s, cAuthority) }
func validScheme(s string) bool    { return s != "" && validClass(s, cScheme) }

// validValue reports a field value that RFC 9113 8.2.1 allows and an
// HTTP/1.1 field-value can carry: no control characters but HTAB, no
// leading or trailing whitespace.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	if n := len(s); n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n-1] == ' ' || s[n-1] == '\t') {
		return false
	}
	return true
}

// HeaderBlock is a response head or trailer section being encoded, from
// Conn.Headers. It is owned by its Conn and reused by the next Headers
// call.
//
// Fields are encoded with HPACK's static table and Huffman coding but
// without the dynamic table (as nginx does): blocks can then be encoded
// and dropped in any order, and no field is kept, so Add can encode bytes
// the caller will reuse without copying them.
type HeaderBlock struct {
	w       outBuf
	enc     *hpack.Encoder
	scratch []byte
	status  int
	code    [3]byte
	// request: a request head from ClientConn.Request, where the one
	// connection-specific field a request may carry, "te: trailers", is
	// kept (RFC 9113 8.2.2).
	request bool
	// size is the block's size as RFC 9113 6.5.2 counts it (name and
	// value lengths plus 32 per field), for the peer's
	// SETTINGS_MAX_HEADER_LIST_SIZE.
	size int
}

func (b *HeaderBlock) init() {
	b.enc = hpack.NewEncoder(&b.w)
	b.enc.SetMaxDynamicTableSizeLimit(0)
}

// Headers starts a header block: a response head with status (100–999;
// other values are sent as 500), or trailers when status is 0. Add fields
// to it, then pass it to WriteHeaders. The block is valid until the next
// call to Headers or Feed (which answers some requests itself).
func (c *Conn) Headers(status int) *HeaderBlock {
	b := &c.hb
	b.reset(false)
	if status != 0 && (status < 100 || status > 999) {
		status = 500
	}
	b.status = status
	if status != 0 {
		b.code = [3]byte{byte('0' + status/100), byte('0' + status/10%10), byte('0' + status%10)}
		b.field(":status", bstr(b.code[:]))
	}
	return b
}

// reset empties the block for a new head (request: a request head).
func (b *HeaderBlock) reset(request bool) {
	b.w.b = b.w.b[:0]
	b.status = 0
	b.request = request
	b.size = 0
}

// field encodes one field unchecked and counts its size.
func (b *HeaderBlock) field(name, value string) {
	b.size += len(name) + len(value) + 32
	_ = b.enc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// Add appends a field. The name is lowercased; pseudo-header fields and
// the connection-specific fields RFC 9113 8.2.2 forbids (Connection,
// Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, and TE but
// "te: trailers" in a request head) are dropped. name and value are not retained. Values are not checked: they
// come from a parsed HTTP/1.1 head or from ConnX itself.
func (b *HeaderBlock) Add(name, value []byte) {
	b.scratch = append(b.scratch[:0], name...)
	for i, ch := range b.scratch {
		if 'A' <= ch && ch <= 'Z' {
			b.scratch[i] = ch + 'a' - 'A'
		}
	}
	b.add(bstr(b.scratch), bstr(value))
}

// AddString is Add for strings.
func (b *HeaderBlock) AddString(name, value string) {
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			b.Add(unsafe.Slice(unsafe.StringData(name), len(name)), unsafe.Slice(unsafe.StringData(value), len(value)))
			return
		}
	}
	b.add(name, value)
}

func (b *HeaderBlock) add(name, value string) {
	if name == "" || name[0] == ':' {
		return
	}
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return
	case "te":
		if !b.request || !strings.EqualFold(value, "trailers") {
			return
		}
	}
	b.field(name, value)
}

// Len returns the encoded size of the block so far.
func (b *HeaderBlock) Len() int { return len(b.w.b) }

// bstr views b as a string without copying. It is used only for strings
// handed to the HPACK encoder, which keeps none of them (its dynamic table
// is off).
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
