package http1

import "math"

// maxChunkExt bounds a chunk extension, from ';' (or the whitespace
// before it) to the CRLF.
const maxChunkExt = 4096

// States of ChunkedScanner.
const (
	csSizeStart   uint8 = iota // first hex digit of a chunk-size
	csSize                     // more hex digits, or what ends the size
	csSizeWS                   // BWS after the size: only ';' may follow
	csExt                      // chunk extension, up to CR
	csSizeLF                   // LF ending the chunk-size line
	csData                     // chunk data; size bytes left
	csDataCR                   // CR after chunk data
	csDataLF                   // LF after chunk data
	csTrailerLine              // start of a trailer line, or of the final CRLF
	csTrName                   // trailer field name
	csTrValue                  // trailer field value
	csTrLF                     // LF ending a trailer field line
	csEndLF                    // LF of the final CRLF
	csDone
	csFailed
)

// ChunkedScanner validates a chunked body (RFC 9112 7.1) as it streams
// past, without decoding it: the proxy forwards the validated bytes as
// they are.
//
// The zero value is ready to scan a body; call Reset before scanning
// another. A ChunkedScanner is not safe for concurrent use. It keeps no
// reference to the buffers passed to Scan.
type ChunkedScanner struct {
	state   uint8
	digits  uint8
	nameLen uint8
	name    [17]byte // lower-cased start of the current trailer name
	size    uint64   // chunk-size being read, then data bytes left
	payload uint64   // sum of the complete chunk-size lines' sizes
	chunks  int      // complete chunk-size lines
	ext     int      // bytes of the current chunk extension
	trailer int      // bytes of the trailer section so far
	fields  int      // trailer fields so far
	err     *Error
	work    int    // bytes examined one at a time, for the linearity test
	forbid  string // a further trailer name to refuse (Forbid)
	fmatch  bool   // the current trailer name matches forbid so far
}

// Forbid makes s refuse a trailer field named name (compared
// case-insensitively), as it refuses Content-Length: for a field that
// only the proxy may set, which a client must not slip in after the
// body. Reset forgets it.
func (s *ChunkedScanner) Forbid(name string) { s.forbid = name }

// Reset prepares s for the next body.
func (s *ChunkedScanner) Reset() { *s = ChunkedScanner{} }

// Scan consumes the next bytes of the body, buf being what follows the
// bytes given to earlier calls. n is how many bytes of buf belong to the
// body: all of buf until the body ends, and then done is true and buf[n:]
// belongs to the next message. After done, Scan returns (0, true, nil)
// until Reset.
//
// On a malformed body it returns (0, false, *Error) with Status 400, and
// the same error on every later call. It checks: chunk-size of 1 to 16 hex
// digits, below 2^63; a chunk extension of at most 4096 bytes without control
// characters other than HTAB; CRLF (never a bare LF or CR) after the size
// line, after chunk data and after each trailer line; trailer fields that
// follow the header field rules, do not name Content-Length,
// Transfer-Encoding or Host, and fit in lim.MaxHeaders fields and
// lim.MaxHeaderBytes bytes. A nil lim means DefaultLimits.
//
// Scan runs in O(len(buf)), skipping chunk data in bulk, and gives the
// same results however the body is split across calls. It never
// allocates.
func (s *ChunkedScanner) Scan(buf []byte, lim *Limits) (n int, done bool, err error) {
	switch s.state {
	case csFailed:
		return 0, false, s.err
	case csDone:
		return 0, true, nil
	}
	_, maxTrailer, maxFields := lim.resolved()
	i := 0
	for i < len(buf) {
		if s.state == csData {
			k := uint64(len(buf) - i)
			if k > s.size {
				k = s.size
			}
			i += int(k)
			s.size -= k
			if s.size == 0 {
				s.state = csDataCR
			}
			continue
		}
		c := buf[i]
		i++
		s.work++
		if s.state >= csTrailerLine {
			s.trailer++
			if s.trailer > maxTrailer {
				return s.fail(errTrailerTooLarge)
			}
		}
		switch s.state {
		case csSizeStart:
			if !isHex(c) {
				if c == '\n' {
					return s.fail(errChunkBareLF)
				}
				return s.fail(errChunkSize)
			}
			s.size = uint64(unhex(c))
			s.digits = 1
			s.state = csSize
		case csSize:
			switch {
			case isHex(c):
				if s.digits == 16 {
					return s.fail(errChunkSizeTooLong)
				}
				s.size = s.size<<4 | uint64(unhex(c))
				s.digits++
				if s.size >= 1<<63 {
					// A backend that reads sizes as signed 64-bit numbers
					// would see a negative one (nginx and HAProxy refuse
					// them too).
					return s.fail(errChunkSizeTooLarge)
				}
			case c == '\r':
				s.state = csSizeLF
			case c == ';':
				s.ext = 1
				s.state = csExt
			case c == ' ' || c == '\t':
				s.ext = 1
				s.state = csSizeWS
			case c == '\n':
				return s.fail(errChunkBareLF)
			default:
				return s.fail(errChunkSize)
			}
		case csSizeWS:
			s.ext++
			if s.ext > maxChunkExt {
				return s.fail(errChunkExtTooLong)
			}
			switch c {
			case ' ', '\t':
			case ';':
				s.state = csExt
			case '\n':
				return s.fail(errChunkBareLF)
			default:
				return s.fail(errChunkLine)
			}
		case csExt:
			switch {
			case c == '\r':
				s.state = csSizeLF
			case c == '\n':
				return s.fail(errChunkBareLF)
			case (c < 0x20 && c != '\t') || c == 0x7f:
				return s.fail(errChunkExtChar)
			default:
				s.ext++
				if s.ext > maxChunkExt {
					return s.fail(errChunkExtTooLong)
				}
			}
		case csSizeLF:
			if c != '\n' {
				return s.fail(errChunkBareCR)
			}
			s.chunks++
			s.payload += s.size
			if s.payload > math.MaxInt64 || s.payload < s.size {
				s.payload = math.MaxInt64
			}
			if s.size == 0 {
				s.state = csTrailerLine
			} else {
				s.state = csData
			}
		case csDataCR:
			if c != '\r' {
				return s.fail(errChunkDataCRLF)
			}
			s.state = csDataLF
		case csDataLF:
			if c != '\n' {
				return s.fail(errChunkDataCRLF)
			}
			s.state = csSizeStart
		case csTrailerLine:
			switch {
			case c == '\r':
				s.state = csEndLF
			case c == '\n':
				return s.fail(errChunkBareLF)
			case c == ' ' || c == '\t':
				return s.fail(errTrailerObsFold)
			case tcharTab[c]:
				s.fields++
				if s.fields > maxFields {
					return s.fail(errTrailerTooMany)
				}
				s.name[0] = lower(c)
				s.nameLen = 1
				s.fmatch = len(s.forbid) > 0 && lower(s.forbid[0]) == lower(c)
				s.state = csTrName
			default:
				return s.fail(errTrailerName)
			}
		case csTrName:
			switch {
			case tcharTab[c]:
				if int(s.nameLen) < len(s.name) {
					s.name[s.nameLen] = lower(c)
				}
				if s.fmatch {
					s.fmatch = int(s.nameLen) < len(s.forbid) && lower(s.forbid[s.nameLen]) == lower(c)
				}
				if s.nameLen < 255 {
					s.nameLen++
				}
			case c == ':':
				if s.forbiddenTrailer() {
					return s.fail(errTrailerForbidden)
				}
				s.state = csTrValue
			default:
				return s.fail(errTrailerName)
			}
		case csTrValue:
			switch {
			case c == '\r':
				s.state = csTrLF
			case c == '\n':
				return s.fail(errChunkBareLF)
			case !valueTab[c]:
				return s.fail(errTrailerValue)
			}
		case csTrLF:
			if c != '\n' {
				return s.fail(errChunkBareCR)
			}
			s.state = csTrailerLine
		case csEndLF:
			if c != '\n' {
				return s.fail(errChunkBareCR)
			}
			s.state = csDone
			return i, true, nil
		}
	}
	return len(buf), false, nil
}

// Payload is the size of the body's payload so far: the sum of the sizes
// of the chunks whose size line has been scanned, each counted in full as
// soon as its size line is complete (before its data arrives). Chunk size
// lines, extensions, CRLFs and trailer fields are framing, not payload.
// It saturates at math.MaxInt64.
func (s *ChunkedScanner) Payload() int64 { return int64(s.payload) }

// Chunks is the number of complete chunk-size lines scanned, the last
// chunk's (size 0) included. A proxy can hold a request head until
// Chunks is 1, so that a body malformed from its first byte is refused
// before anything is sent on.
func (s *ChunkedScanner) Chunks() int { return s.chunks }

func (s *ChunkedScanner) fail(e *Error) (int, bool, error) {
	s.state = csFailed
	s.err = e
	return 0, false, e
}

// forbiddenTrailer reports whether the trailer field name just read is
// one that frames or routes a message (RFC 9110 6.5.1), or the one given
// to Forbid.
func (s *ChunkedScanner) forbiddenTrailer() bool {
	if s.fmatch && int(s.nameLen) == len(s.forbid) {
		return true
	}
	if int(s.nameLen) > len(s.name) {
		return false
	}
	switch string(s.name[:s.nameLen]) {
	case "content-length", "transfer-encoding", "host":
		return true
	}
	return false
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
