package http1

// Response is a parsed response head.
//
// The zero value is ready for ParseResponse; call Reset before parsing the
// next message (including the final response after a 1xx). A Response is
// not safe for concurrent use: it belongs to the upstream connection (and
// so the event loop) that parses into it.
//
// Reason and Headers point into the buffer passed to the ParseResponse call
// that completed the head and are valid only until the caller modifies or
// discards that buffer. The fields are meaningful only after ParseResponse
// returned a nil error.
type Response struct {
	// Minor is the HTTP minor version: 0 or 1 (HTTP/1.2 to HTTP/1.9 are
	// processed as HTTP/1.1, RFC 9110 2.5).
	Minor int
	// Status is the status code, 100 to 599.
	Status int
	// Reason is the reason phrase, possibly empty.
	Reason []byte
	// Headers holds the fields in the order received. Its backing array,
	// sized for Limits.MaxHeaders, is allocated on first use and kept by
	// Reset.
	Headers []Header
	// ContentLength is the Content-Length value, or -1 when absent.
	ContentLength int64
	// Chunked reports Transfer-Encoding: chunked.
	Chunked bool
	// KeepAlive reports whether the connection may carry another request
	// after this response (RFC 9112 9.3): HTTP/1.1 without
	// "Connection: close", HTTP/1.0 only with "Connection: keep-alive".
	// It is false for 101. A body of kind BodyUntilClose also ends the
	// connection; the caller checks BodyKind for that, as it depends on
	// the request method.
	KeepAlive bool
	// Upgrade reports a 101 (Switching Protocols) response.
	Upgrade bool
	// HeadLen is the length of the head including the final CRLF.
	HeadLen int

	h      headState
	r0, r1 int // reason phrase offsets
}

// Reset prepares r for parsing the next message. It keeps the backing
// arrays of Headers and of the internal scan state.
func (r *Response) Reset() {
	hdrs, offs := r.h.hdrs[:0], r.h.offs
	*r = Response{Headers: hdrs}
	r.h.hdrs, r.h.offs = hdrs, offs
}

// ParseResponse parses the response head at the start of buf, with the same
// contract as ParseRequest: (HeadLen, nil) when complete, (0, ErrNeedMore)
// when incomplete, (0, *Error) when invalid; every *Error it returns has
// Status 502. It is incremental, and never allocates except for the
// Headers array on r's first use. lim.MaxRequestLine bounds the status
// line.
//
// The header rules are those of requests (up to four empty lines before
// the status line are skipped likewise), except that Host is not required
// and a repeated Content-Length with the same value is accepted. As for
// requests, a transfer coding other than a single chunked is rejected
// (502): a proxy that forwarded the body without it would change the
// body's meaning, and one that forwarded it would send a coding the client
// never said it accepts (TE is hop-by-hop). HAProxy and nginx reject such
// responses likewise.
func ParseResponse(buf []byte, r *Response, lim *Limits) (n int, err error) {
	return parseHead(r, buf, lim)
}

func (r *Response) scan() (*headState, int) { return &r.h, r.HeadLen }

func (r *Response) startLine(buf []byte, start, end int) errCode {
	return r.parseStatusLine(buf, start, end)
}

func (r *Response) fail(ec errCode) error {
	r.h.phase = phaseFailed
	r.h.err = respErrors[ec]
	return r.h.err
}

// parseStatusLine parses "HTTP-version SP 3DIGIT [SP reason-phrase]".
func (r *Response) parseStatusLine(buf []byte, start, end int) errCode {
	line := buf[start:end]
	if len(line) < 12 || line[8] != ' ' {
		return ecBadStartLine
	}
	if ec := parseVersion(line[:8], &r.Minor); ec != ecNone {
		return ec
	}
	d := line[9:12]
	if !isDigit(d[0]) || !isDigit(d[1]) || !isDigit(d[2]) || d[0] < '1' || d[0] > '5' {
		return ecBadStatus
	}
	r.Status = int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	r.r0, r.r1 = start+12, start+12
	if len(line) > 12 {
		if line[12] != ' ' {
			return ecBadStatus
		}
		for _, c := range line[13:] {
			if !valueTab[c] {
				return ecBadReason
			}
		}
		r.r0 = start + 13
		r.r1 = end
	}
	return ecNone
}

// finish applies the whole-head rules and fills r's fields.
func (r *Response) finish(buf []byte) errCode {
	h := &r.h
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
	r.Upgrade = r.Status == 101
	r.KeepAlive = h.keepAlive(r.Minor) && !r.Upgrade
	r.HeadLen = h.pos
	h.rebase(buf, h.fresh)
	h.markConnectionOptions()
	h.phase = phaseDone
	r.slice(buf)
	return ecNone
}

// slice points r's []byte fields into buf.
func (r *Response) slice(buf []byte) {
	r.Reason = buf[r.r0:r.r1:r.r1]
	r.Headers = r.h.hdrs
}

// BodyKind reports how the response body is framed. reqMethodHEAD reports
// whether the request was HEAD. 1xx, 204, 304 and responses to HEAD have
// no body; then chunked, then Content-Length (BodyNone when 0) decide;
// otherwise the body lasts until the backend closes the connection.
// The caller handles a 2xx response to CONNECT, which starts a tunnel.
func (r *Response) BodyKind(reqMethodHEAD bool) BodyKind {
	switch {
	case reqMethodHEAD || r.Status < 200 || r.Status == 204 || r.Status == 304:
		return BodyNone
	case r.Chunked:
		return BodyChunked
	case r.ContentLength == 0:
		return BodyNone
	case r.ContentLength > 0:
		return BodyLength
	}
	return BodyUntilClose
}
