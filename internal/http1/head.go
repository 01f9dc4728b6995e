package http1

import "bytes"

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

// span locates one field inside the buffer by offsets, so that a head
// scanned across calls can be re-sliced from the buffer of the last call.
type span struct {
	n0, n1, v0, v1 int32
	flags, kind    uint8
}

// headState is the incremental scan state shared by Request and Response.
// Its zero value is ready to scan a new head.
type headState struct {
	phase   uint8
	empties uint8
	pos     int   // offset of the first unprocessed line
	scanned int   // buf[pos:scanned] holds no LF
	err     error // set in phaseFailed
	work    int   // bytes examined, for the linearity test

	spans []span

	cl                                         int64
	clCount, teLines, chunkedCount             int
	teOther                                    bool
	connClose, connKeepAlive, connUpgrade      bool
	connOther, upgradeHeader, expect100, hosts bool
	hostIdx                                    int
}

// reset prepares h for a new head, keeping the spans array.
func (h *headState) reset() {
	*h = headState{spans: h.spans[:0]}
}

// begin is called before scanning: it allocates spans on first use and
// checks the caller kept the buffer.
func (h *headState) begin(buf []byte, maxFields int) errCode {
	if cap(h.spans) < maxFields {
		h.spans = append(make([]span, 0, maxFields), h.spans...)
	}
	if len(buf) < h.scanned {
		return ecBufferShrank
	}
	return ecNone
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
func (h *headState) parseField(buf []byte, start, end, maxFields int, resp bool) errCode {
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
	if len(h.spans) >= maxFields {
		return ecTooManyHeaders
	}
	value := trimOWS(line[i+1:])
	v0 := start + i + 1
	for v0 < end && (buf[v0] == ' ' || buf[v0] == '\t') {
		v0++
	}
	return h.addField(line[:i], start, value, v0, seen, resp)
}

// Results of fastLine.
const (
	fastNo    uint8 = iota // not taken: use nextLine and parseField
	fastField              // a field line, parsed and recorded (or an error)
	fastEnd                // the empty line that ends the head
)

// fastLine parses the line at h.pos in phaseFields when it is complete in
// b (buf cut at the head limit) and plainly valid: the empty line, or a
// token, a colon, and a value of valid bytes, ending in CRLF. It scans
// each byte once, where nextLine and parseField scan the line twice. Such
// a line holds no other CR or LF, so the general path would find the same
// line end and take the same steps, and fastLine gives the same result
// (including the error of a field that breaks the framing rules, or one
// too many). Any other line (an invalid one, or one not complete yet) is
// left to the general path, with nothing but h.work changed; the caller
// tries fastLine only before that path has scanned part of the line, so
// every byte is still examined a bounded number of times.
func (h *headState) fastLine(b []byte, maxFields int, resp bool) (uint8, errCode) {
	pos := h.pos
	if pos+1 < len(b) && b[pos] == '\r' && b[pos+1] == '\n' {
		h.pos += 2
		h.scanned = h.pos
		h.work += 2
		return fastEnd, ecNone
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
		return fastNo, ecNone
	}
	v0 := p + 1
	for v0 < len(b) && (b[v0] == ' ' || b[v0] == '\t') {
		v0++
	}
	cr := valueEnd(b, v0)
	h.work += cr - p
	if cr+1 >= len(b) || b[cr] != '\r' || b[cr+1] != '\n' {
		return fastNo, ecNone
	}
	v1 := cr
	for v1 > v0 && (b[v1-1] == ' ' || b[v1-1] == '\t') {
		v1--
	}
	h.pos = cr + 2
	h.scanned = h.pos
	h.work += 2
	if len(h.spans) >= maxFields {
		return fastField, ecTooManyHeaders
	}
	return fastField, h.addField(b[pos:p], pos, b[v0:v1], v0, seen, resp)
}

// addField classifies the field name (at buf[n0:]) with value (at
// buf[v0:]), applies its rules and records it. seen is the name's byte
// classes, or-ed.
func (h *headState) addField(name []byte, n0 int, value []byte, v0 int, seen uint8, resp bool) errCode {
	flags, kind := classify(name)
	if seen&nameUnderscore != 0 {
		flags |= FlagUnderscore
	}
	if ec := h.fieldSemantics(kind, value, resp); ec != ecNone {
		return ec
	}
	if kind == kindHost {
		h.hostIdx = len(h.spans)
	}
	h.spans = append(h.spans, span{
		n0: int32(n0), n1: int32(n0 + len(name)),
		v0: int32(v0), v1: int32(v0 + len(value)),
		flags: flags, kind: kind,
	})
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

// knownField is a field name classify recognises, with its flags and
// kind.
type knownField struct {
	key         foldKey
	flags, kind uint8
}

// knownByLen holds the names classify recognises by length.
var knownByLen = func() (t [18][]knownField) {
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
		t[len(f.name)] = append(t[len(f.name)], knownField{makeFoldKey(f.name), f.flags, f.kind})
	}
	return t
}()

// Keys of the Connection options fieldSemantics looks for first.
var keyKeepAlive, keyClose = makeFoldKey("keep-alive"), makeFoldKey("close")

// classify returns the flags and kind of a field name, which must be a
// token (see foldWords): one length lookup, and for the lengths of known
// names one comparison of up to three words per candidate.
func classify(name []byte) (flags, kind uint8) {
	if len(name) >= len(knownByLen) {
		return 0, kindOther
	}
	cands := knownByLen[len(name)]
	if len(cands) == 0 {
		return 0, kindOther
	}
	a, m, z := foldWords(name)
	for i := range cands {
		if k := &cands[i]; a == k.key.a && m == k.key.m && z == k.key.z {
			return k.flags, k.kind
		}
	}
	return 0, kindOther
}

// fieldSemantics applies the rules of the fields that frame or route a
// message, one field line at a time.
func (h *headState) fieldSemantics(kind uint8, value []byte, resp bool) errCode {
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
func (h *headState) markConnectionOptions(buf []byte) {
	if !h.connOther {
		return
	}
	for _, c := range h.spans {
		if c.kind != kindConnection {
			continue
		}
		value := buf[c.v0:c.v1]
		for elem, rest, ok := nextElement(value); ok; elem, rest, ok = nextElement(rest) {
			if len(elem) == 0 || EqualFold(elem, "close") ||
				EqualFold(elem, "keep-alive") || EqualFold(elem, "upgrade") {
				continue
			}
			for k := range h.spans {
				s := &h.spans[k]
				if s.flags&(FlagHost|FlagContentLength) == 0 && equalFoldBytes(buf[s.n0:s.n1], elem) {
					s.flags |= FlagHopByHop
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

// appendHeaders appends the recorded fields, sliced from buf, to hs, whose
// capacity must hold them.
func (h *headState) appendHeaders(hs []Header, buf []byte) []Header {
	n := len(hs)
	hs = hs[:n+len(h.spans)]
	for i := range h.spans {
		s := &h.spans[i]
		p := &hs[n+i]
		p.Name = buf[s.n0:s.n1:s.n1]
		p.Value = buf[s.v0:s.v1:s.v1]
		p.Flags = s.flags
	}
	return hs
}

// message is what the shared head parser needs of a Request or Response.
type message interface {
	// scan returns the scan state, the Headers slice and HeadLen.
	scan() (*headState, *[]Header, int)
	startLine(buf []byte, start, end int) errCode
	finish(buf []byte) errCode
	fail(ec errCode) error
	slice(buf []byte)
}

// parseHead drives ParseRequest and ParseResponse: it scans lines
// incrementally, parses the start line and each field, and finishes the
// message once the empty line arrives.
func parseHead(m message, buf []byte, lim *Limits) (int, error) {
	h, hdrs, headLen := m.scan()
	switch h.phase {
	case phaseFailed:
		return 0, h.err
	case phaseDone:
		if len(buf) < headLen {
			return 0, m.fail(ecBufferShrank)
		}
		m.slice(buf)
		return headLen, nil
	}
	_, isResponse := m.(*Response)
	maxLine, maxHead, maxFields := lim.resolved()
	if ec := h.begin(buf, maxFields); ec != ecNone {
		return 0, m.fail(ec)
	}
	if cap(*hdrs) < maxFields {
		*hdrs = make([]Header, 0, maxFields)
	}
	fast := buf[:min(len(buf), maxHead)]
	for {
		if h.phase == phaseFields && h.scanned == h.pos {
			st, ec := h.fastLine(fast, maxFields, isResponse)
			if st == fastEnd {
				break
			}
			if st == fastField {
				if ec != ecNone {
					return 0, m.fail(ec)
				}
				continue
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
		if ec := h.parseField(buf, start, end, maxFields, isResponse); ec != ecNone {
			return 0, m.fail(lineError(buf, start, end, ec))
		}
	}
	if ec := m.finish(buf); ec != ecNone {
		return 0, m.fail(ec)
	}
	_, _, headLen = m.scan()
	return headLen, nil
}
