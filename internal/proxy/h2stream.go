package proxy

import (
	"bytes"
	"strconv"

	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/http2"
)

// A stream client is a *client with st set and no socket of its own. The
// HTTP/1.1 data path drives it unchanged through three seams:
//
//   - input: the stream's request head is written into its stash as an
//     HTTP/1.1 head (Host from :authority, cookie crumbs joined,
//     Content-Length, or chunked framing for a body of unknown length),
//     and DATA follows there, so readHead and forwardBody parse, route,
//     limit and forward it as they do for HTTP/1.1;
//   - output: client.write turns what is written to it as HTTP/1.1 (a
//     response head parsed again, then its body, chunked decoded; or a
//     complete answer of ConnX's own) into HEADERS, DATA and trailers;
//   - ends: exchangeDone, closeGracefully and abort end the stream
//     instead of the connection.
//
// Flow control: response payload the send windows do not take waits in
// the stream client's owed bytes (as a slow socket's output does), and
// the upstream is parked at once; the window's EventWindow resumes it.
// Request body bytes are returned to the client's windows (Consumed)
// only once forwardBody has written them to the upstream.

// h2stream is the HTTP/2 state of a stream client.
type h2stream struct {
	h  *h2conn
	cl *client // the stream client
	id uint32

	// Request side.
	chunked bool  // the body is forwarded chunked (no content-length)
	reqDone bool  // the client ended its side
	unacked int64 // request payload received and not yet returned with Consumed

	// Response side.
	headDone bool // the final response head was written
	kind     http1.BodyKind
	left     int64 // of a BodyLength body
	dec      chunkDecoder
	end      bool   // the response is complete: END_STREAM follows the owed bytes
	hasTrl   bool   // trl holds trailers to send with END_STREAM
	trl      []byte // response trailer lines, as HTTP/1.1
	ended    bool   // END_STREAM or RST_STREAM was sent
	gone     bool   // the codec's stream is gone: no frame may be written

	xdone bool // the exchange is over
}

// h2RespLimits bounds heads written to a stream client; they were parsed
// (and limited) once already, as the upstream's response or made by
// ConnX, and may have grown by the fields a route and the request ID add.
var h2RespLimits = http1.Limits{MaxRequestLine: 64 << 10, MaxHeaderBytes: 1 << 20, MaxHeaders: 1000}

// newStreamClient makes the client of a new stream from its head.
func newStreamClient(h *h2conn, ev *http2.Event) *client {
	conn := h.cl
	lp := conn.lp
	sn := lp.srv.snap.Load()
	s := &client{state: csIdle, sn: sn, ip: conn.ip, minor: 1, served: true, connID: conn.connID}
	s.to = &sn.to
	// tls marks the request as received over TLS (X-Forwarded-Proto);
	// nothing is ever written through it: client.write takes the output.
	s.peer = peer{lp: lp, fd: -1, self: s, tls: conn.tls}
	st := &h2stream{h: h, cl: s, id: ev.Stream, reqDone: ev.EndStream}
	s.st = st
	s.stash = st.appendHead(make([]byte, 0, 256), ev)
	s.deadline = lp.now + sn.clientHeader
	s.stallAt = lp.now
	return s
}

// appendHead writes the HTTP/1.1 form of the request head ev.
func (st *h2stream) appendHead(b []byte, ev *http2.Event) []byte {
	b = append(b, ev.Method...)
	b = append(b, ' ')
	if ev.Method == "CONNECT" {
		b = append(b, ev.Authority...) // answered with 405
	} else {
		b = append(b, ev.Path...)
	}
	b = append(b, " HTTP/1.1\r\n"...)
	if ev.Authority != "" {
		b = append(b, "host: "...)
		b = append(b, ev.Authority...)
		b = append(b, "\r\n"...)
	}
	cookies := 0
	for i := range ev.Fields {
		f := &ev.Fields[i]
		switch f.Name {
		case "host":
			if ev.Authority != "" {
				continue // the same authority (the codec checked)
			}
		case "cookie":
			cookies++
			continue
		case "content-length":
			continue // te (only "trailers") is kept: it says the client takes trailers
		}
		b = appendField(b, f.Name, f.Value)
	}
	if cookies > 0 {
		// RFC 9113 8.2.3: crumbs are joined with "; " for HTTP/1.1.
		b = append(b, "cookie: "...)
		n := 0
		for i := range ev.Fields {
			if f := &ev.Fields[i]; f.Name == "cookie" {
				if n > 0 {
					b = append(b, "; "...)
				}
				b = append(b, f.Value...)
				n++
			}
		}
		b = append(b, "\r\n"...)
	}
	switch {
	case ev.ContentLength >= 0:
		b = append(b, "content-length: "...)
		b = strconv.AppendInt(b, ev.ContentLength, 10)
		b = append(b, "\r\n"...)
	case !ev.EndStream:
		b = append(b, "transfer-encoding: chunked\r\n"...)
		st.chunked = true
	}
	return append(b, "\r\n"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// data takes request body bytes (p points into the connection's input).
func (st *h2stream) data(p []byte, end bool) {
	s := st.cl
	st.unacked += int64(len(p))
	if end {
		st.reqDone = true
	}
	if st.xdone || s.closed {
		st.credit()
		return
	}
	if st.chunked {
		if len(p) > 0 {
			s.stash = strconv.AppendInt(s.stash, int64(len(p)), 16)
			s.stash = append(s.stash, "\r\n"...)
			s.stash = append(s.stash, p...)
			s.stash = append(s.stash, "\r\n"...)
		}
		if end {
			s.stash = append(s.stash, "0\r\n\r\n"...)
		}
	} else {
		s.stash = append(s.stash, p...)
	}
	st.pump()
}

// trailers takes the request's trailers: forwarded as a chunked body's
// trailer section; a body with a content-length has no room for them.
func (st *h2stream) trailers(fields []http2.Field) {
	s := st.cl
	st.reqDone = true
	if st.xdone || s.closed || !st.chunked {
		st.credit()
		return
	}
	s.stash = append(s.stash, "0\r\n"...)
	for i := range fields {
		s.stash = appendField(s.stash, fields[i].Name, fields[i].Value)
	}
	s.stash = append(s.stash, "\r\n"...)
	st.pump()
}

// pump runs the stream's request through the HTTP/1.1 state machine as
// far as its stash allows.
func (st *h2stream) pump() {
	s := st.cl
loop:
	for !s.closed && !st.xdone {
		switch s.state {
		case csIdle, csHead:
			if !s.readHead() {
				break loop
			}
		case csBody:
			if !s.forwardBody() {
				break loop
			}
		default:
			break loop
		}
	}
	st.credit()
	st.h.flush()
}

// credit returns to the client's windows the request payload that has
// left the stash. The stash holds the payload not yet forwarded plus its
// chunked framing, so at least unacked-len(stash) bytes of payload have
// gone; all of it once the stash is empty or no longer wanted.
func (st *h2stream) credit() {
	s := st.cl
	if st.xdone || s.closed || s.dropBody {
		s.stash = nil
	}
	k := st.unacked - int64(len(s.stash))
	if k > 0 {
		st.h.c.Consumed(st.id, int(k))
		st.unacked -= k
	}
}

// write is client.write for a stream client: b is HTTP/1.1 output — a
// response head (1xx, then the final one), then its body as framed on
// the wire — and becomes frames. It reports false when the stream is
// gone.
func (st *h2stream) write(b []byte) bool {
	s := st.cl
	if s.closed || st.gone {
		return false
	}
	c := st.h.c
	for !st.headDone {
		if len(b) == 0 {
			return true
		}
		lp := s.lp
		r := lp.getResp()
		n, err := http1.ParseResponse(b, r, &h2RespLimits)
		if err != nil {
			lp.putResp(r)
			st.reset(http2.ErrCodeInternal)
			return false
		}
		if r.Status < 200 {
			if r.Status != 101 {
				hb := c.Headers(r.Status)
				st.addFields(hb, r)
				_ = c.WriteHeaders(st.id, hb, false)
			}
			lp.putResp(r)
			b = b[n:]
			continue
		}
		hb := c.Headers(r.Status)
		st.addFields(hb, r)
		st.kind = r.BodyKind(s.isHead)
		st.left = r.ContentLength
		lp.putResp(r)
		st.headDone = true
		st.dec = chunkDecoder{}
		if st.kind == http1.BodyNone {
			st.end = true
			st.ended = true
		}
		if err := c.WriteHeaders(st.id, hb, st.ended); err != nil {
			st.gone = true
			return false
		}
		b = b[n:]
	}
	if !st.ended && !st.end {
		switch st.kind {
		case http1.BodyLength:
			k := int(min(int64(len(b)), st.left))
			st.send(b[:k])
			st.left -= int64(k)
			st.end = st.left == 0
		case http1.BodyChunked:
			st.decode(b)
		default:
			st.send(b)
		}
	}
	st.flush()
	if st.gone {
		return false
	}
	if !st.end && len(s.owed) > 0 {
		if up := s.up; up != nil && up.attached() && !up.detaching {
			up.park() // the window is closed: stop reading the backend
		}
	}
	return true
}

// addFields adds r's end-to-end fields to hb (the codec drops the
// connection-specific ones).
func (st *h2stream) addFields(hb *http2.HeaderBlock, r *http1.Response) {
	for i := range r.Headers {
		if h := &r.Headers[i]; h.Flags&http1.FlagHopByHop == 0 {
			hb.Add(h.Name, h.Value)
		}
	}
}

// send queues response payload: to the codec as far as the windows
// allow, the rest in the stream's owed bytes.
func (st *h2stream) send(p []byte) {
	s := st.cl
	s.sent += int64(len(p))
	if len(s.owed) == 0 && !st.gone && !st.h.congestedNow() {
		n, err := st.h.c.WriteData(st.id, p, false)
		if err != nil {
			st.gone = true
			return
		}
		p = p[n:]
	}
	if len(p) > 0 {
		s.owed = append(s.owed, p...)
	}
}

// flush moves owed payload to the codec as the windows allow, ends the
// stream once the response is complete and sent, and resumes a parked
// upstream once everything went.
func (st *h2stream) flush() {
	s := st.cl
	if s.closed {
		return
	}
	c := st.h.c
	if !st.gone && !st.ended && len(s.owed) > 0 && !st.h.congestedNow() {
		last := st.end && !st.hasTrl
		n, err := c.WriteData(st.id, s.owed, last)
		switch {
		case err != nil:
			st.gone = true
		case n == len(s.owed):
			s.owed = nil
			st.ended = last
		default:
			s.owed = s.owed[n:]
		}
	}
	if !st.gone && !st.ended && st.end && len(s.owed) == 0 {
		if st.hasTrl {
			hb := c.Headers(0)
			for rest := st.trl; len(rest) > 0; {
				var line []byte
				line, rest, _ = bytes.Cut(rest, []byte("\n"))
				name, value, ok := bytes.Cut(bytes.TrimRight(line, "\r"), []byte(":"))
				if ok {
					hb.Add(bytes.TrimSpace(name), bytes.TrimSpace(value))
				}
			}
			_ = c.WriteHeaders(st.id, hb, true)
		} else {
			_, _ = c.WriteData(st.id, nil, true)
		}
		st.ended = true
		st.trl = nil
	}
	st.h.flush()
	switch {
	case st.gone:
		if !st.xdone {
			st.abort()
		} else {
			st.release()
		}
	case st.ended:
		if st.xdone {
			st.finish()
		}
	case len(s.owed) == 0:
		if g := s.gc; g != nil {
			g.drained()
		}
		if up := s.up; up != nil && up.isDetached() && !up.resuming && !st.h.congested {
			up.resume(up)
		}
	}
}

// mayResume reports whether a parked upstream of this stream may be
// read again: its output went to the codec.
func (st *h2stream) mayResume() bool {
	return len(st.cl.owed) == 0 && !st.h.congested
}

// exchangeDone runs when the stream's exchange is over (the response was
// written in full, or ConnX answered).
func (st *h2stream) exchangeDone() {
	if st.xdone {
		return
	}
	st.xdone = true
	if st.headDone && st.kind == http1.BodyUntilClose {
		st.end = true // the backend's close ended the body
	}
	if !st.end {
		// Nothing complete to send: the stream cannot end well.
		st.reset(http2.ErrCodeInternal)
		st.release()
		return
	}
	st.credit()
	st.flush()
}

// finish forgets a stream whose response was sent in full and whose
// exchange is over. A request body still coming is refused with
// RST_STREAM(NO_ERROR) (RFC 9113 8.1).
func (st *h2stream) finish() {
	if !st.reqDone && !st.gone {
		st.h.c.Reset(st.id, http2.ErrCodeNo)
		st.h.flush()
	}
	st.release()
}

// reset resets the stream on ConnX's behalf.
func (st *h2stream) reset(code http2.ErrCode) {
	if !st.gone {
		st.gone = true
		st.h.c.Reset(st.id, code)
		st.h.flush()
	}
}

// resetByPeer runs for an EventReset: the client reset the stream (or
// broke a rule on it).
func (st *h2stream) resetByPeer() {
	st.gone = true
	st.abort()
}

// abort ends the stream at once: the response is cut short with
// RST_STREAM, the upstream (if any) closed rather than pooled.
func (st *h2stream) abort() {
	s := st.cl
	if s.closed {
		return
	}
	if s.inReq {
		code := s.status
		if code == 0 {
			code = statusClientGone
		}
		s.end(code, s.be, errClientAbort)
	}
	if up := s.up; up != nil {
		s.up = nil
		up.abandon()
	}
	s.dropCall()
	st.reset(http2.ErrCodeInternal)
	st.release()
}

// release forgets the stream client.
func (st *h2stream) release() {
	s := st.cl
	if s.closed {
		return
	}
	s.closed = true
	lp := s.lp
	lp.putBuf(s.head)
	s.head = nil
	s.releaseReq()
	s.stash, s.owed = nil, nil
	st.h.removed(st.id)
}

// tick runs from the connection's tick: a stream whose client takes none
// of its response for clientIdle (its window stays closed) is reset, as
// an HTTP/1.1 client that stops reading is dropped; then the request
// timeouts (clientBody, a head held for its first chunk), and body bytes
// that waited for the upstream to drain.
func (st *h2stream) tick(now int64, full bool) {
	s := st.cl
	if s.closed {
		return
	}
	if full && s.stalled(now) {
		st.abort()
		return
	}
	if st.xdone {
		return
	}
	switch s.state {
	case csHead, csBody:
		if full && now > s.deadline {
			s.reject(408)
			return
		}
		if s.state == csBody && len(s.stash) > 0 {
			st.pump()
		}
	}
}

// busy reports whether the stream needs the 2 ms sweep: body bytes wait
// for the upstream to drain.
func (st *h2stream) busy() bool {
	s := st.cl
	return !s.closed && !st.xdone && s.state == csBody && len(s.stash) > 0
}

// write is peer.write for an HTTP/1.1 connection, and the translation
// into HTTP/2 frames for a stream client (h2stream.write).
func (cl *client) write(b []byte) bool {
	if cl.st != nil {
		return cl.st.write(b)
	}
	return cl.peer.write(b)
}

// chunkDecoder takes the payload out of a chunked body that
// http1.ChunkedScanner has already validated, in pieces of any size.
type chunkDecoder struct {
	state uint8
	size  int64
}

const (
	cdSize    = iota // chunk-size digits
	cdExt            // extensions and CRLF after the size
	cdData           // chunk data
	cdDataEnd        // CRLF after the data
	cdTrailer        // trailer section
)

// decode passes the payload in b on with send, collects trailer lines,
// and sets end at the end of the body.
func (st *h2stream) decode(b []byte) {
	d := &st.dec
	for len(b) > 0 && !st.end {
		switch d.state {
		case cdSize:
			c := b[0]
			if v := unhexDigit(c); v >= 0 {
				d.size = d.size<<4 | int64(v)
				b = b[1:]
				continue
			}
			d.state = cdExt
		case cdExt:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return
			}
			b = b[i+1:]
			if d.size == 0 {
				d.state = cdTrailer
			} else {
				d.state = cdData
			}
		case cdData:
			k := int(min(int64(len(b)), d.size))
			st.send(b[:k])
			d.size -= int64(k)
			b = b[k:]
			if d.size == 0 {
				d.state = cdDataEnd
			}
		case cdDataEnd:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return
			}
			b = b[i+1:]
			d.state, d.size = cdSize, 0
		case cdTrailer:
			i := bytes.IndexByte(b, '\n')
			line := b
			if i >= 0 {
				line = b[:i+1]
			}
			st.trl = append(st.trl, line...)
			b = b[len(line):]
			if i < 0 {
				return
			}
			// A line is complete: the section ends with an empty one.
			t := st.trl
			if bytes.HasSuffix(t, []byte("\n\r\n")) || bytes.HasSuffix(t, []byte("\n\n")) || string(t) == "\r\n" || string(t) == "\n" {
				st.end = true
				st.trl = bytes.TrimRight(t, "\r\n")
				st.hasTrl = len(st.trl) > 0
			}
		}
	}
}

func unhexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
