package http2

import (
	"encoding/binary"

	"golang.org/x/net/http2/hpack"
)

// clientBlock is the response header block being received: a HEADERS
// frame and its CONTINUATION frames, decoded as fragments arrive.
type clientBlock struct {
	active bool // CONTINUATION expected
	id     uint32
	// st is the stream; nil when ConnX has reset it and the block is
	// decoded only to keep the HPACK table in step.
	st        *clientStream
	code      ErrCode // a stream error known at HEADERS, or 0
	trailers  bool    // st has its final response head
	endStream bool
	frames    int
	size      int // encoded bytes
	listSize  int // decoded size, RFC 9113 6.5.2
	tooLarge  bool
	malformed bool
	regular   bool // a regular field was seen
	hasStatus bool
	status    int
	first     int // index of the block's first field in ClientConn.fields

	contentLength int64
}

func (c *ClientConn) onHeaders(flags byte, id uint32, p []byte) *ConnError {
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

	st := c.stream(id)
	if st == nil && c.idle(id) {
		return ErrServerStream
	}
	b := &c.in
	*b = clientBlock{id: id, st: st, endStream: flags&flagEndStream != 0, first: len(c.fields), contentLength: -1}
	if st != nil {
		b.trailers = st.gotFinal
		switch {
		case st.remoteDone:
			b.code = ErrCodeStreamClosed
		case selfDep:
			b.code = ErrCodeProtocol
		}
	}
	c.dec.SetEmitEnabled(st != nil && b.code == 0)
	return c.fragment(p, flags&flagEndHeaders != 0)
}

// fragment decodes one piece of the header block and finishes the block
// at END_HEADERS.
func (c *ClientConn) fragment(p []byte, end bool) *ConnError {
	b := &c.in
	if err := decodeFragment(c.dec, &b.size, &b.active, c.lim.MaxHeaderListSize, p, end); err != nil || !end {
		return err
	}
	return c.endBlock()
}

// onField is the hpack.Decoder's emit function: it validates one response
// field (RFC 9113 8.2, 8.3.2) and collects it.
func (c *ClientConn) onField(f hpack.HeaderField) {
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
		// :status is the only response pseudo-header field; it comes
		// first, once, and not in trailers.
		if name != ":status" || b.trailers || b.regular || b.hasStatus {
			b.malformed = true
			return
		}
		status, ok := parseStatus(value)
		if !ok {
			b.malformed = true
			return
		}
		b.hasStatus, b.status = true, status
		return
	}
	b.regular = true
	if !validName(name) {
		b.malformed = true
		return
	}
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te":
		// RFC 9113 8.2.2; "te" may be sent only in a request.
		b.malformed = true
		return
	case "content-length":
		n, ok := parseContentLength(value)
		if !ok || b.trailers || b.contentLength >= 0 && b.contentLength != n {
			b.malformed = true
			return
		}
		b.contentLength = n
	}
	c.fields = append(c.fields, Field{Name: name, Value: value})
}

// parseStatus parses a :status value: three digits, 100 to 599 (RFC 9110
// 15).
func parseStatus(s string) (int, bool) {
	if len(s) != 3 || s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0'), true
}

// endBlock acts on a complete response header block.
func (c *ClientConn) endBlock() *ConnError {
	b := &c.in
	st := b.st
	if st == nil || c.stream(b.id) != st {
		// ConnX reset the stream before or while the block arrived.
		return nil
	}
	if b.code != 0 {
		return c.streamError(st, b.code)
	}
	if b.tooLarge || b.malformed {
		return c.streamError(st, ErrCodeProtocol)
	}
	fields := c.fields[b.first:len(c.fields):len(c.fields)]
	if b.trailers {
		if !b.endStream || !st.noContent && st.contentLength >= 0 && st.received != st.contentLength {
			return c.streamError(st, ErrCodeProtocol)
		}
		c.events = append(c.events, ClientEvent{Kind: EventTrailers, Stream: b.id, EndStream: true,
			ContentLength: -1, Fields: fields})
		c.closeRemote(st)
		return nil
	}
	switch {
	case !b.hasStatus, b.status == 101: // RFC 9113 8.6: no Upgrade in HTTP/2
		return c.streamError(st, ErrCodeProtocol)
	case b.status < 200:
		// RFC 9113 8.1: an informational head does not end the stream.
		if b.endStream {
			return c.streamError(st, ErrCodeProtocol)
		}
		c.events = append(c.events, ClientEvent{Kind: EventHeaders, Stream: b.id, Status: b.status,
			ContentLength: -1, Fields: fields})
		return nil
	}
	st.gotFinal = true
	st.noContent = st.headReq || b.status == 204 || b.status == 304
	if !st.noContent {
		// RFC 9113 8.1.1: content-length must match the DATA.
		if b.endStream && b.contentLength > 0 {
			return c.streamError(st, ErrCodeProtocol)
		}
		st.contentLength = b.contentLength
	}
	c.events = append(c.events, ClientEvent{Kind: EventHeaders, Stream: b.id, Status: b.status,
		EndStream: b.endStream, ContentLength: st.contentLength, Fields: fields})
	if b.endStream {
		c.closeRemote(st)
	}
	return nil
}
