package http1

// Request is a parsed request head.
//
// The zero value is ready for ParseRequest; call Reset before parsing the
// next message. A Request is not safe for concurrent use: it belongs to the
// connection (and so the event loop) that parses into it.
//
// Every []byte field points into the buffer passed to the ParseRequest call
// that completed the head (Path may instead point to a read-only package
// constant "/") and is valid only until the caller modifies or discards
// that buffer. The fields are meaningful only after ParseRequest returned a
// nil error.
type Request struct {
	Method []byte
	// Target is the request-target as received.
	Target []byte
	// Path is the origin-form path and query to forward: Target itself for
	// origin-form; for absolute-form "http://a.b:8/x?y" it is "/x?y" (and
	// "/" when the path is empty, "*" for OPTIONS, RFC 9112 3.2.4); "*"
	// for OPTIONS *; nil for CONNECT.
	Path []byte
	// Authority is the authority of an absolute-form or authority-form
	// (CONNECT) target, and nil otherwise. RFC 9112 3.2.2: for
	// absolute-form it, not Host, identifies the target host.
	Authority []byte
	// Minor is the HTTP minor version: 0 or 1. HTTP/1.2 to HTTP/1.9 are
	// processed as HTTP/1.1 (RFC 9110 2.5) and have Minor 1.
	Minor int
	// Headers holds the fields in the order received. Its backing array,
	// sized for Limits.MaxHeaders, is allocated on first use and kept by
	// Reset.
	Headers []Header
	// Host is the Host field value, or nil when there is none.
	Host []byte
	// ContentLength is the Content-Length value, or -1 when absent.
	ContentLength int64
	// Chunked reports Transfer-Encoding: chunked.
	Chunked bool
	// KeepAlive reports a persistent connection (RFC 9112 9.3): HTTP/1.1
	// unless "Connection: close", HTTP/1.0 only with
	// "Connection: keep-alive".
	KeepAlive bool
	// Expect100 reports "Expect: 100-continue" on an HTTP/1.1 request
	// (RFC 9110 10.1.1 says to ignore it on HTTP/1.0).
	Expect100 bool
	// Upgrade reports an HTTP/1.1 request with an Upgrade field and an
	// "upgrade" Connection option (RFC 9110 7.8 says to ignore Upgrade on
	// HTTP/1.0).
	Upgrade bool
	// HeadLen is the length of the head, including empty lines skipped
	// before the request line and the final CRLF; the body or the next
	// request starts at buf[HeadLen].
	HeadLen int

	h headState
	// Offsets of the request line parts in the buffer. p0 < 0 means Path is
	// the constant "/" (p0 == -1), nil (p0 == -2) or the constant "*"
	// (p0 == -3); a0 < 0 means no Authority.
	m0, m1, t0, t1, p0, p1, a0, a1 int
}

// slash is the Path of an absolute-form target with an empty path, and
// star that of an OPTIONS request with one.
var slash, star = []byte("/"), []byte("*")

// Reset prepares r for parsing the next message. It keeps the backing
// arrays of Headers and of the internal scan state.
func (r *Request) Reset() {
	hdrs, offs := r.h.hdrs[:0], r.h.offs
	*r = Request{Headers: hdrs}
	r.h.hdrs, r.h.offs = hdrs, offs
}

// ParseRequest parses the request head at the start of buf.
//
// It returns n == r.HeadLen and a nil error when the head is complete,
// (0, ErrNeedMore) when buf holds only part of a head, and (0, *Error) when
// the head is invalid; the error's Status is the status to answer with.
//
// ParseRequest is incremental: r remembers how far it has scanned, so a
// later call with buf extended by k bytes (and the first bytes unchanged,
// though they may have moved) costs O(k). Limits are enforced while
// scanning, before the head is complete. Once it has returned a result
// other than ErrNeedMore, r keeps returning that result until Reset. It
// never allocates, except for the Headers array on r's first use.
func ParseRequest(buf []byte, r *Request, lim *Limits) (n int, err error) {
	return parseHead(r, buf, lim)
}

func (r *Request) scan() (*headState, int) { return &r.h, r.HeadLen }

func (r *Request) startLine(buf []byte, start, end int) errCode {
	return r.parseRequestLine(buf, start, end)
}

func (r *Request) fail(ec errCode) error {
	r.h.phase = phaseFailed
	r.h.err = reqErrors[ec]
	return r.h.err
}

// parseRequestLine parses "method SP request-target SP HTTP-version".
func (r *Request) parseRequestLine(buf []byte, start, end int) errCode {
	line := buf[start:end]
	i := 0
	for i < len(line) && tcharTab[line[i]] {
		i++
	}
	if i == 0 {
		return ecBadMethod
	}
	if i == len(line) {
		return ecBadStartLine
	}
	if line[i] != ' ' {
		return ecBadMethod
	}
	method := line[:i]
	t0 := i + 1
	j := t0
	for j < len(line) && targetTab[line[j]] {
		j++
	}
	if j < len(line) && line[j] == '#' {
		return ecFragment
	}
	if j == t0 {
		return ecBadStartLine
	}
	if j == len(line) {
		return ecBadStartLine // no HTTP-version
	}
	if line[j] != ' ' {
		return ecBadTarget // a CTL or DEL
	}
	if ec := parseVersion(line[j+1:], &r.Minor); ec != ecNone {
		return ec
	}
	r.m0, r.m1 = start, start+i
	r.t0, r.t1 = start+t0, start+j
	return r.targetForm(method, line[t0:j])
}

// parseVersion parses HTTP-version. HTTP/1.0 is minor 0; HTTP/1.1 and any
// later HTTP/1.x are minor 1: RFC 9110 2.5 says to process a message of a
// higher minor version as one of the highest this recipient implements.
// Another major version is ecVersionNotSupported.
func parseVersion(v []byte, minor *int) errCode {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return ecBadVersion
	}
	if v[5] != '1' {
		return ecVersionNotSupported
	}
	*minor = 1
	if v[7] == '0' {
		*minor = 0
	}
	return ecNone
}

// targetForm checks the request-target form (RFC 9112 3.2) against the
// method and records Path and Authority.
func (r *Request) targetForm(method, target []byte) errCode {
	connect := string(method) == "CONNECT"
	r.a0, r.a1 = -1, -1
	switch {
	case target[0] == '/':
		if connect {
			return ecBadTarget
		}
		r.p0, r.p1 = r.t0, r.t1
	case len(target) == 1 && target[0] == '*':
		if string(method) != "OPTIONS" {
			return ecBadTarget
		}
		r.p0, r.p1 = r.t0, r.t1
	case hasPrefixFold(target, "http://") || hasPrefixFold(target, "https://"):
		if connect {
			return ecBadTarget
		}
		a := 7
		if target[4] != ':' {
			a = 8
		}
		e := a
		for e < len(target) && target[e] != '/' && target[e] != '?' {
			e++
		}
		// No userinfo (RFC 9110 4.2.4), and a "?" right after the
		// authority would need a "/" inserted to make an origin-form.
		if e == len(target) || target[e] == '/' {
			if !validHostPort(target[a:e], false) {
				return ecBadTarget
			}
		} else {
			return ecBadTarget
		}
		r.a0, r.a1 = r.t0+a, r.t0+e
		switch {
		case e == len(target) && string(method) == "OPTIONS":
			r.p0 = -3 // RFC 9112 3.2.4: "*", not "/"
		case e == len(target):
			r.p0 = -1
		default:
			r.p0, r.p1 = r.t0+e, r.t1
		}
	case connect:
		if !validHostPort(target, true) {
			return ecBadTarget
		}
		r.a0, r.a1 = r.t0, r.t1
		r.p0 = -2
	default:
		return ecBadTarget
	}
	return ecNone
}

// finish applies the whole-head rules and fills r's fields.
func (r *Request) finish(buf []byte) errCode {
	h := &r.h
	if !h.hosts && r.Minor == 1 {
		return ecMissingHost
	}
	if h.teLines > 0 {
		switch {
		case r.Minor == 0:
			return ecTEOnHTTP10
		case h.clCount > 0:
			return ecCLAndTE
		case h.chunkedCount > 1:
			return ecDupChunked
		case h.teOther:
			return ecUnsupportedTE
		}
		r.Chunked = true
	}
	r.ContentLength = -1
	if h.clCount > 0 {
		r.ContentLength = h.cl
	}
	r.KeepAlive = h.keepAlive(r.Minor)
	r.Expect100 = r.Minor == 1 && h.expect100
	r.Upgrade = r.Minor == 1 && h.connUpgrade && h.upgradeHeader
	r.HeadLen = h.pos
	h.rebase(buf, h.fresh)
	h.markConnectionOptions()
	h.phase = phaseDone
	r.slice(buf)
	return ecNone
}

// slice points r's []byte fields into buf.
func (r *Request) slice(buf []byte) {
	r.Method = buf[r.m0:r.m1:r.m1]
	r.Target = buf[r.t0:r.t1:r.t1]
	switch r.p0 {
	case -1:
		r.Path = slash[:1:1]
	case -2:
		r.Path = nil
	case -3:
		r.Path = star[:1:1]
	default:
		r.Path = buf[r.p0:r.p1:r.p1]
	}
	r.Authority = nil
	if r.a0 >= 0 {
		r.Authority = buf[r.a0:r.a1:r.a1]
	}
	r.Host = nil
	if r.h.hosts {
		r.Host = r.h.hdrs[r.h.hostIdx].Value
	}
	r.Headers = r.h.hdrs
}

// BodyKind reports how the request body is framed: BodyChunked,
// BodyLength for a positive Content-Length, and BodyNone otherwise
// (a request body is never delimited by closing the connection).
func (r *Request) BodyKind() BodyKind {
	switch {
	case r.Chunked:
		return BodyChunked
	case r.ContentLength > 0:
		return BodyLength
	}
	return BodyNone
}

// BodyKind says how the body of a message is framed.
type BodyKind uint8

const (
	BodyNone       BodyKind = iota // no body
	BodyLength                     // ContentLength bytes
	BodyChunked                    // chunked; walk it with ChunkedScanner
	BodyUntilClose                 // response body ends when the backend closes
)
