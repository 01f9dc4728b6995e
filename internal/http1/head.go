package http1

import (
	"bytes"
	"encoding/binary"
)

// maxEmptyLines is how many empty lines before a start line are skipped
// (RFC 9112 2.2); one more is an error.
const maxEmptyLines = 4

// Phases of headState.
const (
	phaseStart  uint8 = iota // before the start line, skipping empty lines
	phaseFields              // start line parsed, reading field lines
	phaseDone                // head complete
	phaseFailed              // head invalid; err is sticky
)

// Header flags, set in Header.Flags.
const (
	// FlagHopByHop marks a field that must not be forwarded as is:
	// Connection, Keep-Alive, Proxy-Connection, TE, Upgrade,
	// Transfer-Encoding, and any field named by a token of a Connection
	// header (except Host and Content-Length, which a Connection token never
	// strips, so that a client cannot make the proxy drop framing or
	// routing fields). Trailer is end-to-end (RFC 9110 6.6.2): it is not
	// marked, unless a Connection token names it.
	FlagHopByHop uint8 = 1 << iota
	FlagHost
	FlagXForwardedFor
	FlagXForwardedProto
	FlagXForwardedHost
	FlagContentLength
	FlagTransferEncoding
	// FlagUnderscore marks a field whose name contains "_". A CGI-style
	// backend maps "_" and "-" to the same variable, so Content_Length
	// and Transfer_Encoding could frame a request differently there; the
	// proxy drops such fields unless configured not to (as nginx's
	// underscores_in_headers off does).
	FlagUnderscore
)

// Field kinds that need processing beyond their flags.
const (
	kindOther uint8 = iota
	kindHost
	kindContentLength
	kindTransferEncoding
	kindConnection
	kindUpgrade
	kindExpect
	kindTrailer
)

// Header is one header field. Name and Value point into the buffer passed to
// the parse call that completed the head and are valid only until the caller
// modifies or discards that buffer; their capacity is clipped to their
// length, so appending to them copies.
type Header struct {
	Name  []byte // as received, case kept
	Value []byte // SP and HTAB trimmed at both ends
	Flags uint8  // Flag* bits
}

// offset locates a field's name and value inside the buffer, so that a
// head scanned across calls can be re-sliced from the buffer of the last
// call (the lengths are those of the Header's slices).
type offset struct{ n0, v0 int32 }

// headState is the incremental scan state shared by Request and Response.
// Its zero value is ready to scan a new head.
type headState struct {
	phase   uint8
	empties uint8
	pos     int   // offset of the first unprocessed line
	scanned int   // buf[pos:scanned] holds no LF
	err     error // set in phaseFailed
	work    int   // bytes examined, for the linearity test

	// hdrs holds the fields recorded so far, sliced from the buffer of
	// the call that recorded them, and offs their offsets (offs has the
	// length of hdrs' capacity). hdrs[:fresh] come from earlier calls.
	// The array of hdrs, allocated once, is the Headers array of the
	// Request or Response.
	hdrs  []Header
	offs  []offset
	fresh int
	resp  bool // parsing a response

	cl                                         int64
	clCount, teLines, chunkedCount             int
	teOther                                    bool
	connClose, connKeepAlive, connUpgrade      bool
	connOther, upgradeHeader, expect100, hosts bool
	hostIdx                                    int
}

// begin is called before scanning: it allocates the field arrays on first
// use and checks the caller kept the buffer.
func (h *headState) begin(buf []byte, maxFields int, resp bool) errCode {
	if cap(h.hdrs) < maxFields {
		h.hdrs = append(make([]Header, 0, maxFields), h.hdrs...)
		offs := make([]offset, maxFields)
		copy(offs, h.offs)
		h.offs = offs
	}
	if len(buf) < h.scanned {
		return ecBufferShrank
	}
	h.fresh = len(h.hdrs)
	h.resp = resp
	return ecNone
}

// rebase re-slices hdrs[:n] from buf, where the caller may have moved the
// head since they were recorded.
func (h *headState) rebase(buf []byte, n int) {
	for i := range h.hdrs[:n] {
		f, o := &h.hdrs[i], h.offs[i]
		n1, v1 := int(o.n0)+len(f.Name), int(o.v0)+len(f.Value)
		f.Name = buf[o.n0:n1:n1]
		f.Value = buf[o.v0:v1:v1]
	}
}

// nextLine returns the bounds of the next complete line of buf, without its
// CRLF. In phaseStart it first skips up to maxEmptyLines empty lines. It
// scans each byte of buf once over all calls, and enforces the line and
// head limits before the line is complete. With failFast, a byte that can
// start neither a request line nor an empty line is rejected as soon as it
// is in buf (see lineStart).
func (h *headState) nextLine(buf []byte, maxLine, maxHead int, failFast bool) (start, end int, ec errCode) {
	for {
		if failFast && h.phase == phaseStart {
			if ec := lineStart(buf, h.pos); ec != ecNone {
				return 0, 0, ec
			}
		}
		limit := len(buf)
		if limit > maxHead {
			limit = maxHead
		}
		i := -1
		if h.scanned < limit {
			i = bytes.IndexByte(buf[h.scanned:limit], '\n')
			if i >= 0 {
				i += h.scanned
				h.work += i + 1 - h.scanned
			} else {
				h.work += limit - h.scanned
				h.scanned = limit
			}
		}
		if i < 0 {
			if h.phase == phaseStart && h.scanned-h.pos > maxLine+1 {
				return 0, 0, ecLineTooLong
			}
			if len(buf) >= maxHead {
				return 0, 0, ecHeadTooLarge
			}
			return 0, 0, ecNeedMore
		}
		start = h.pos
		if h.phase == phaseStart && i-start > maxLine+1 {
			return 0, 0, ecLineTooLong
		}
		if i == start || buf[i-1] != '\r' {
			return 0, 0, ecBareLF
		}
		end = i - 1
		h.pos = i + 1
		h.scanned = h.pos
		// A CR inside the line needs no check of its own: no start line or
		// field line grammar admits one, so the line parsers reject it
		// (and lineError names it).
		h.work += end - start
		if h.phase == phaseStart && end == start {
			h.empties++
			if h.empties > maxEmptyLines {
				return 0, 0, ecTooManyEmptyLines
			}
			continue
		}
		return start, end, ecNone
	}
}

// lineStart checks the first bytes of a request line, or of an empty line
// before it, at buf[pos:]: a method token starts with a tchar, and an
// empty line is CRLF. Anything else is an error however the line goes on,
// so it is reported at once rather than when a line end arrives, which a
// client that sent one stray byte (or a TLS handshake) may never send.
// The error is the one the complete line would get, a CR inside the line
// excepted (reported as invalid method here rather than as bare CR).
func lineStart(buf []byte, pos int) errCode {
	if pos >= len(buf) {
		return ecNone
	}
	switch c := buf[pos]; {
	case tcharTab[c]:
		return ecNone
	case c == '\r':
		if pos+1 < len(buf) && buf[pos+1] != '\n' {
			return ecBareCR
		}
		return ecNone
	case c == '\n':
		return ecBareLF
	}
	return ecBadMethod
}

// parseField splits the field line buf[start:end] and records it. resp
// selects the response rules.
func (h *headState) parseField(buf []byte, start, end, maxFields int) errCode {
	line := buf[start:end]
	if line[0] == ' ' || line[0] == '\t' {
		return ecObsFold
	}
	i := 0
	var seen uint8 // the name's byte classes, or-ed (nameTab)
	for i < len(line) {
		c := nameTab[line[i]]
		if c == 0 {
			break
		}
		seen |= c
		i++
	}
	if i == len(line) {
		return ecNoColon
	}
	if c := line[i]; c != ':' {
		if c == ' ' || c == '\t' {
			return ecSpaceBeforeColon
		}
		return ecBadName
	}
	if i == 0 {
		return ecEmptyName
	}
	if !validValue(line[i+1:]) {
		return ecBadValue
	}
	if len(h.hdrs) >= maxFields {
		return ecTooManyHeaders
	}
	value := trimOWS(line[i+1:])
	v0 := start + i + 1
	for v0 < end && (buf[v0] == ' ' || buf[v0] == '\t') {
		v0++
	}
	return h.addField(buf, start, start+i, v0, v0+len(value), underscoreFlag(seen))
}

// underscoreFlag returns FlagUnderscore when a name's or-ed byte classes
// (nameTab) hold '_'.
func underscoreFlag(seen uint8) uint8 {
	if seen&nameUnderscore != 0 {
		return FlagUnderscore
	}
	return 0
}

// fastFields parses field lines from h.pos for as long as each is
// complete in b (buf cut at the head limit) and plainly valid: a token, a
// colon, and a value of valid bytes, ending in CRLF. It reports whether
// it reached the empty line that ends the head (and consumed it), or the
// error of a field it parsed. It scans each byte once, where nextLine and
// parseField scan a line twice. Such a line holds no other CR or LF, so
// the general path would find the same line end and take the same steps,
// and fastFields gives the same result (including the error of a field
// that breaks the framing rules, or of one field too many). At any other
// line (an invalid one, or one not complete yet) it stops, with nothing
// of that line recorded but h.work, and leaves it to the general path.
// The caller calls it only before that path has scanned part of the line,
// so every byte is still examined a bounded number of times.
func (h *headState) fastFields(b []byte, maxFields int) (end bool, ec errCode) {
	for {
		pos := h.pos
		if pos+2 <= len(b) && binary.LittleEndian.Uint16(b[pos:pos+2]) == crlf {
			h.pos += 2
			h.scanned = h.pos
			h.work += 2
			return true, ecNone
		}
		// The name: letters, digits and '-' eight bytes at a time, then
		// any other tchars one at a time.
		p := nameEnd(b, pos)
		var seen uint8 // the name's byte classes, or-ed (nameTab)
		for p < len(b) {
			c := nameTab[b[p]]
			if c == 0 {
				break
			}
			seen |= c
			p++
		}
		h.work += p - pos
		if p == pos || p == len(b) || b[p] != ':' {
			return false, ecNone
		}
		v0 := p + 1
		for v0 < len(b) && (b[v0] == ' ' || b[v0] == '\t') {
			v0++
		}
		cr := valueEnd(b, v0)
		h.work += cr - p
		if cr+2 > len(b) || binary.LittleEndian.Uint16(b[cr:cr+2]) != crlf {
			return false, ecNone
		}
		v1 := cr
		for v1 > v0 && (b[v1-1] == ' ' || b[v1-1] == '\t') {
			v1--
		}
		h.pos = cr + 2
		h.scanned = h.pos
		h.work += 2
		if len(h.hdrs) >= maxFields {
			return false, ecTooManyHeaders
		}
		if ec := h.addField(b, pos, p, v0, v1, underscoreFlag(seen)); ec != ecNone {
			return false, ec
		}
	}
}

// crlf is "\r\n" as a little-endian 16-bit word.
const crlf = '\n'<<8 | '\r'

// addField classifies the field named buf[n0:n1] with the value
// buf[v0:v1], applies its rules and records it with flags added to its
// own. The caller has checked that there is room for it.
func (h *headState) addField(buf []byte, n0, n1, v0, v1 int, flags uint8) errCode {
	name, value := buf[n0:n1:n1], buf[v0:v1:v1]
	var f, kind uint8 // classified by knownFor and match
	if k := knownFor(name); k != nil {
		f, kind = k.match(name)
	}
	if kind != kindOther {
		if ec := h.fieldSemantics(kind, value); ec != ecNone {
			return ec
		}
		if kind == kindHost {
			h.hostIdx = len(h.hdrs)
		}
	}
	h.offs[len(h.hdrs)] = offset{int32(n0), int32(v0)}
	h.hdrs = append(h.hdrs, Header{Name: name, Value: value, Flags: flags | f})
	return ecNone
}

// lineError refines the error ec found in the line buf[start:end]: a CR
// inside the line is reported as such, whatever rule it broke first.
func lineError(buf []byte, start, end int, ec errCode) errCode {
	if bytes.IndexByte(buf[start:end], '\r') >= 0 {
		return ecBareCR
	}
	return ec
}

// knownField is a field name addField recognises, with its flags and
// kind.
type knownField struct {
	key         foldKey
	flags, kind uint8
}

// knownFields are the names addField recognises, and knownIdx finds the
// one a name may be by its length and first byte: knownIdx[len][c|0x20&31]
// is its index in knownFields plus one, or 0. No two known names share a
// length and a first letter.
var knownFields, knownIdx = func() (fs []knownField, idx [18][32]uint8) {
	for _, f := range []struct {
		name        string
		flags, kind uint8
	}{
		{"te", FlagHopByHop, kindOther},
		{"host", FlagHost, kindHost},
		{"expect", 0, kindExpect},
		{"upgrade", FlagHopByHop, kindUpgrade},
		{"trailer", 0, kindTrailer},
		{"connection", FlagHopByHop, kindConnection},
		{"keep-alive", FlagHopByHop, kindOther},
		{"content-length", FlagContentLength, kindContentLength},
		{"x-forwarded-for", FlagXForwardedFor, kindOther},
		{"x-forwarded-host", FlagXForwardedHost, kindOther},
		{"proxy-connection", FlagHopByHop, kindOther},
		{"x-forwarded-proto", FlagXForwardedProto, kindOther},
		{"transfer-encoding", FlagHopByHop | FlagTransferEncoding, kindTransferEncoding},
	} {
		i := &idx[len(f.name)][f.name[0]&31]
		if *i != 0 {
			panic("http1: another known name has the length and first letter of " + f.name)
		}
		fs = append(fs, knownField{makeFoldKey(f.name), f.flags, f.kind})
		*i = uint8(len(fs))
	}
	return fs, idx
}()

// knownFor returns the known name that name (a token, see foldWords)
// may be, judging by its length and first letter, or nil.
func knownFor(name []byte) *knownField {
	if uint(len(name)) < uint(len(knownIdx)) && len(name) > 0 {
		if i := knownIdx[len(name)][(name[0]|0x20)&31]; i != 0 {
			return &knownFields[i-1]
		}
	}
	return nil
}

// match returns k's flags and kind if name is k's name under ASCII case
// folding (name being a token of the same length), and 0, kindOther
// otherwise.
func (k *knownField) match(name []byte) (flags, kind uint8) {
	if a, m, z := foldWords(name); a == k.key.a && m == k.key.m && z == k.key.z {
		return k.flags, k.kind
	}
	return 0, kindOther
}

// Keys of the Connection options fieldSemantics looks for first, and of
// Connection itself (markConnectionOptions).
var (
	keyKeepAlive  = makeFoldKey("keep-alive")
	keyClose      = makeFoldKey("close")
	keyConnection = makeFoldKey("connection")
)

// fieldSemantics applies the rules of the fields that frame or route a
// message, one field line at a time.
func (h *headState) fieldSemantics(kind uint8, value []byte) errCode {
	resp := h.resp
	switch kind {
	case kindHost:
		if resp {
			return ecNone
		}
		if h.hosts {
			return ecDupHost
		}
		h.hosts = true
		if len(value) > 0 && !validHostPort(value, false) {
			return ecBadHost
		}
	case kindContentLength:
		n := parseDigits(value)
		if n < 0 {
			return ecBadCL
		}
		if h.clCount > 0 && (!resp || n != h.cl) {
			return ecDupCL
		}
		h.clCount++
		h.cl = n
	case kindTransferEncoding:
		h.teLines++
		if len(value) == 0 {
			return ecBadTE
		}
		for elem, rest, ok := nextElement(value); ok; elem, rest, ok = nextElement(rest) {
			switch {
			case len(elem) == 0:
				return ecBadTE
			case EqualFold(elem, "chunked"):
				h.chunkedCount++
			default:
				h.teOther = true
			}
		}
	case kindConnection:
		// The common values first: one option, which the loop below
		// would take the same way.
		switch {
		case foldEqual(value, &keyKeepAlive):
			h.connKeepAlive = true
			return ecNone
		case foldEqual(value, &keyClose):
			h.connClose = true
			return ecNone
		}
		for elem, rest, ok := nextElement(value); ok; elem, rest, ok = nextElement(rest) {
			switch {
			case len(elem) == 0:
				// Empty list elements are allowed (RFC 9110 5.6.1).
			case !isToken(elem):
				return ecBadConnection
			case EqualFold(elem, "close"):
				h.connClose = true
			case EqualFold(elem, "keep-alive"):
				h.connKeepAlive = true
			case EqualFold(elem, "upgrade"):
				h.connUpgrade = true
			default:
				h.connOther = true
			}
		}
	case kindUpgrade:
		h.upgradeHeader = true
	case kindExpect:
		if EqualFold(value, "100-continue") {
			h.expect100 = true
		}
	case kindTrailer:
		for elem, rest, ok := nextElement(value); ok; elem, rest, ok = nextElement(rest) {
			if EqualFold(elem, "content-length") || EqualFold(elem, "transfer-encoding") ||
				EqualFold(elem, "trailer") || EqualFold(elem, "host") {
				return ecBadTrailerDecl
			}
		}
	}
	return ecNone
}

// keepAlive applies RFC 9112 9.3 to the Connection options seen.
func (h *headState) keepAlive(minor int) bool {
	if h.connClose {
		return false
	}
	return minor == 1 || h.connKeepAlive
}

// markConnectionOptions sets FlagHopByHop on every field named by a
// Connection option other than close, keep-alive and upgrade. Host and
// Content-Length are never marked.
func (h *headState) markConnectionOptions() {
	if !h.connOther {
		return
	}
	for _, c := range h.hdrs {
		if !foldEqual(c.Name, &keyConnection) {
			continue
		}
		for elem, rest, ok := nextElement(c.Value); ok; elem, rest, ok = nextElement(rest) {
			if len(elem) == 0 || EqualFold(elem, "close") ||
				EqualFold(elem, "keep-alive") || EqualFold(elem, "upgrade") {
				continue
			}
			for k := range h.hdrs {
				f := &h.hdrs[k]
				if f.Flags&(FlagHost|FlagContentLength) == 0 && equalFoldBytes(f.Name, elem) {
					f.Flags |= FlagHopByHop
				}
			}
		}
	}
}

// equalFoldBytes is EqualFold for two byte slices.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// message is what the shared head parser needs of a Request or Response.
type message interface {
	// scan returns the scan state and HeadLen.
	scan() (*headState, int)
	startLine(buf []byte, start, end int) errCode
	finish(buf []byte) errCode
	fail(ec errCode) error
	slice(buf []byte)
}

// parseHead drives ParseRequest and ParseResponse: it scans lines
// incrementally, parses the start line and each field, and finishes the
// message once the empty line arrives.
func parseHead(m message, buf []byte, lim *Limits) (int, error) {
	h, headLen := m.scan()
	switch h.phase {
	case phaseFailed:
		return 0, h.err
	case phaseDone:
		if len(buf) < headLen {
			return 0, m.fail(ecBufferShrank)
		}
		h.rebase(buf, len(h.hdrs))
		m.slice(buf)
		return headLen, nil
	}
	_, isResponse := m.(*Response)
	maxLine, maxHead, maxFields := lim.resolved()
	if ec := h.begin(buf, maxFields, isResponse); ec != ecNone {
		return 0, m.fail(ec)
	}
	fast := buf[:min(len(buf), maxHead)]
	for {
		if h.phase == phaseFields && h.scanned == h.pos {
			end, ec := h.fastFields(fast, maxFields)
			if ec != ecNone {
				return 0, m.fail(ec)
			}
			if end {
				break
			}
		}
		start, end, ec := h.nextLine(buf, maxLine, maxHead, !isResponse)
		if ec == ecNeedMore {
			return 0, ErrNeedMore
		}
		if ec != ecNone {
			return 0, m.fail(ec)
		}
		if h.phase == phaseStart {
			if ec := m.startLine(buf, start, end); ec != ecNone {
				return 0, m.fail(lineError(buf, start, end, ec))
			}
			h.phase = phaseFields
			continue
		}
		if start == end {
			break
		}
		if ec := h.parseField(buf, start, end, maxFields); ec != ecNone {
			return 0, m.fail(lineError(buf, start, end, ec))
		}
	}
	if ec := m.finish(buf); ec != ecNone {
		return 0, m.fail(ec)
	}
	_, headLen = m.scan()
	return headLen, nil
}
