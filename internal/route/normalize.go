package route

import "bytes"

// PathError says why [Normalize] refused a request-target. The proxy
// answers every PathError with 400 Bad Request.
//
// Every *PathError returned by this package is a predeclared package-level
// value, so returning one never allocates; compare with ==. Callers must
// not modify them.
type PathError struct {
	Reason string
}

// Error implements the error interface.
func (e *PathError) Error() string { return "route: " + e.Reason }

// The refusals of Normalize.
var (
	errNotOriginForm  = &PathError{"request-target is neither a path nor \"*\""}
	errBadByte        = &PathError{"control byte, space or backslash in the path"}
	errBadEscape      = &PathError{"malformed percent-escape in the path"}
	errEncodedSlash   = &PathError{"encoded slash or backslash (%2F, %5C) in the path"}
	errEncodedControl = &PathError{"encoded control byte (%00-%1F, %7F) in the path"}
	errAboveRoot      = &PathError{"\"..\" climbs above the root"}
	errDotParams      = &PathError{"\".\" or \"..\" segment with \";\" parameters"}
)

// Byte classes of a request path, for Normalize.
const (
	cPlain  = iota // kept as it is: unreserved, sub-delims, ":", "@"
	cSlash         // "/"
	cPct           // "%"
	cEncode        // percent-encoded in the output: not allowed raw in a path by RFC 3986
	cBad           // refused: controls, space, DEL, backslash
)

var (
	pathClass = func() (t [256]uint8) {
		for c := range t {
			switch {
			case c >= 0x80:
				t[c] = cEncode
			case unreservedTab[c]:
				t[c] = cPlain
			default:
				t[c] = cBad // controls, space, DEL, backslash
			}
		}
		for _, c := range []byte("!$&'()*+,;=:@") {
			t[c] = cPlain
		}
		for _, c := range []byte("\"#<>?[]^`{|}") {
			t[c] = cEncode
		}
		t['/'] = cSlash
		t['%'] = cPct
		return t
	}()
	// unreservedTab: ALPHA DIGIT "-" "." "_" "~" (RFC 3986 2.3).
	unreservedTab = func() (t [256]bool) {
		for c := range t {
			t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
				c == '-' || c == '.' || c == '_' || c == '~'
		}
		return t
	}()
	// hexVal maps a hex digit to its value and every other byte to 0xff.
	hexVal = func() (t [256]byte) {
		for c := range t {
			switch {
			case '0' <= c && c <= '9':
				t[c] = byte(c - '0')
			case 'a' <= c && c <= 'f':
				t[c] = byte(c - 'a' + 10)
			case 'A' <= c && c <= 'F':
				t[c] = byte(c - 'A' + 10)
			default:
				t[c] = 0xff
			}
		}
		return t
	}()
)

const upperHex = "0123456789ABCDEF"

// Normalize splits an origin-form request-target (path and optional
// "?query", as in http1.Request.Path) into its normalised path and its
// query, or refuses it with a *PathError. It returns:
//
//   - path: the normalised path. When the target's path is already
//     normal (the usual case) path is a sub-slice of target, with its
//     capacity clipped so that appending to it copies, and nothing is
//     copied. Otherwise the normalised path is appended to dst[:0] and
//     path shares dst's array unless dst was too small; the normalised
//     path is at most 3 × the length of target's path (raw bytes that
//     must be percent-encoded triple), so a dst with that capacity is
//     never grown. dst must not overlap target.
//   - query: target from its first "?" to the end, "?" included, exactly
//     as received; nil when there is no "?". The target to forward is
//     path followed by query.
//
// path and query point into target or dst, and are valid as long as
// neither is modified. The target "*" (OPTIONS *) is returned unchanged as
// path, with a nil query. Anything else that does not start with "/" is
// refused.
//
// Normalize applies these rules to the path, in one pass, left to right
// (docs/routing.md has them with examples):
//
//   - a percent-escape of an unreserved character (ALPHA DIGIT - . _ ~) is
//     decoded; other escapes stay, with upper-case hex (RFC 3986 6.2.2);
//   - bytes that RFC 3986 does not allow raw in a path (non-ASCII bytes
//     and " # < > [ ] ^ ` { | }) are percent-encoded;
//   - repeated slashes are merged into one;
//   - "." and ".." segments, also when spelled with %2E, are resolved as
//     RFC 3986 5.2.4 does ("/a/b/.." is "/a/", "/a/." is "/a/");
//   - refused: a malformed escape, %2F and %5C, an escaped control byte
//     (%00-%1F, %7F), a raw control byte, space, DEL or backslash, a ".."
//     that would climb above the root, and a "." or ".." segment followed
//     by ";" parameters ("/..;/", which servlet containers resolve as
//     "..").
//
// Normalize is idempotent. It does not allocate unless dst must grow.
func Normalize(dst, target []byte) (path, query []byte, err error) {
	if len(target) == 1 && target[0] == '*' {
		return target[:1:1], nil, nil
	}
	if len(target) == 0 || target[0] != '/' {
		return nil, nil, errNotOriginForm
	}
	p := target
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		p, query = target[:i:i], target[i:len(target):len(target)]
	}
	if isNormal(p) {
		return p[:len(p):len(p)], query, nil
	}
	path, err = normalizeSlow(dst[:0], p)
	if err != nil {
		return nil, nil, err
	}
	return path, query, nil
}

// isNormal reports whether normalizeSlow would return p unchanged. p
// starts with "/" and holds no "?".
func isNormal(p []byte) bool {
	seg := 1 // start of the current segment
	for i := 1; i < len(p); i++ {
		switch pathClass[p[i]] {
		case cPlain:
		case cSlash:
			if !normalSegment(p[seg:i]) {
				return false
			}
			seg = i + 1
		case cPct:
			if i+2 >= len(p) {
				return false
			}
			hi, lo := p[i+1], p[i+2]
			// Not hex, or lower-case hex (which would be upper-cased).
			if hexVal[hi] > 15 || hexVal[lo] > 15 || hi >= 'a' || lo >= 'a' {
				return false
			}
			if !keptEscape(hexVal[hi]<<4 | hexVal[lo]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	last := p[seg:]
	return len(last) == 0 || normalSegment(last)
}

// normalSegment reports whether a segment between two slashes of a path is
// kept as it is: it is not empty, not "." or "..", and not "." or ".."
// followed by ";".
func normalSegment(s []byte) bool {
	return len(s) > 0 && (s[0] != '.' || !dotSegment(s) && !dotParams(s))
}

func dotSegment(s []byte) bool {
	return len(s) == 1 && s[0] == '.' || len(s) == 2 && s[0] == '.' && s[1] == '.'
}

func dotParams(s []byte) bool {
	return len(s) >= 2 && s[0] == '.' && (s[1] == ';' || len(s) >= 3 && s[1] == '.' && s[2] == ';')
}

// keptEscape reports whether the escape %XX of byte v stays an escape in
// a normal path: it is neither decoded (unreserved) nor refused.
func keptEscape(v byte) bool {
	return !unreservedTab[v] && v >= 0x20 && v != 0x7f && v != '/' && v != '\\'
}

// normalizeSlow appends the normalised form of p to out (empty) and
// returns it. p starts with "/" and holds no "?".
//
// The output always ends in "/" between segments, so a segment is written
// first and then dropped (".", empty) or resolved ("..") by truncating.
func normalizeSlow(out, p []byte) ([]byte, error) {
	out = append(out, '/')
	for i := 1; i <= len(p); i++ { // i++ steps over the "/" ending a segment
		start := len(out)
		for ; i < len(p) && p[i] != '/'; i++ {
			c := p[i]
			switch pathClass[c] {
			case cPlain:
				out = append(out, c)
			case cPct:
				if i+2 >= len(p) || hexVal[p[i+1]] > 15 || hexVal[p[i+2]] > 15 {
					return nil, errBadEscape
				}
				v := hexVal[p[i+1]]<<4 | hexVal[p[i+2]]
				switch {
				case unreservedTab[v]:
					out = append(out, v)
				case v == '/' || v == '\\':
					return nil, errEncodedSlash
				case v < 0x20 || v == 0x7f:
					return nil, errEncodedControl
				default:
					out = append(out, '%', upperHex[v>>4], upperHex[v&15])
				}
				i += 2
			case cEncode:
				out = append(out, '%', upperHex[c>>4], upperHex[c&15])
			default:
				return nil, errBadByte
			}
		}
		seg := out[start:]
		switch {
		case len(seg) == 0:
			// "//" merged, or the path ends in "/" (out already does).
		case len(seg) == 1 && seg[0] == '.':
			out = out[:start]
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if start == 1 {
				return nil, errAboveRoot
			}
			// out[:start] is ".../prev/"; keep up to the "/" before prev.
			out = out[:bytes.LastIndexByte(out[:start-1], '/')+1]
		case dotParams(seg):
			return nil, errDotParams
		case i < len(p):
			out = append(out, '/')
		}
	}
	return out, nil
}
