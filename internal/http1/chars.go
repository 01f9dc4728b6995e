package http1

import (
	"encoding/binary"
	"math/bits"
)

// Byte classes, built once at package initialisation.
var (
	// tcharTab: tchar of RFC 9110 5.6.2 (token characters).
	tcharTab = makeTab(func(c byte) bool {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			return true
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			return true
		}
		return false
	})
	// valueTab: bytes allowed in a field value and a reason phrase:
	// HTAB, SP, VCHAR, obs-text.
	valueTab = makeTab(func(c byte) bool {
		return c == '\t' || c == ' ' || (0x21 <= c && c != 0x7f)
	})
	// targetTab: bytes allowed in a request-target: VCHAR except '#', and
	// obs-text.
	targetTab = makeTab(func(c byte) bool {
		return 0x21 <= c && c != 0x7f && c != '#'
	})
	// regNameTab: reg-name of RFC 3986 without pct-encoded: unreserved and
	// sub-delims.
	regNameTab = makeTab(func(c byte) bool {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			return true
		}
		switch c {
		case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
			return true
		}
		return false
	})
)

// nameTab classes a field name's bytes in one lookup: 0 not a tchar,
// nameChar a tchar, nameChar|nameUnderscore '_' (see FlagUnderscore).
var nameTab = func() (t [256]uint8) {
	for c := range t {
		if tcharTab[c] {
			t[c] = nameChar
		}
	}
	t['_'] |= nameUnderscore
	return t
}()

const (
	nameChar       = 1
	nameUnderscore = 2
)

// alnumDashTab marks ASCII letters, digits and '-', as nameEnd does.
var alnumDashTab = makeTab(func(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
})

// nameEnd returns the index of the first byte of b[i:] that is not an
// ASCII letter, digit or '-' (the bytes of nearly every field name), or
// len(b). It tests eight bytes at a time with range tests on each byte's
// low seven bits, which cannot carry into the next byte, so every flagged
// byte is exact.
func nameEnd(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i : i+8])
		t := w &^ msb
		x := t | 0x20*lsb // letters folded to lower case
		letter := (x + (0x80-'a')*lsb) &^ (x + (0x7f-'z')*lsb)
		digit := (t + (0x80-'0')*lsb) &^ (t + (0x7f-'9')*lsb)
		notDash := (t ^ '-'*lsb) + 0x7f*lsb
		if bad := ^(letter | digit | ^notDash) | w; bad&msb != 0 {
			return i + bits.TrailingZeros64(bad&msb)>>3
		}
	}
	for ; i < len(b); i++ {
		if !alnumDashTab[b[i]] {
			return i
		}
	}
	return len(b)
}

func makeTab(f func(byte) bool) (t [256]bool) {
	for i := range t {
		t[i] = f(byte(i))
	}
	return t
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// EqualFold reports whether a and s are equal under ASCII case folding.
// Bytes outside ASCII must match exactly. It does not allocate.
func EqualFold(a []byte, s string) bool {
	if len(a) != len(s) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != s[i] && lower(a[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether b starts with s under ASCII case folding.
func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && EqualFold(b[:len(s)], s)
}

// isToken reports whether b is a non-empty token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tcharTab[c] {
			return false
		}
	}
	return true
}

// trimOWS removes SP and HTAB from both ends of b.
func trimOWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t') {
		j--
	}
	return b[i:j]
}

// nextElement splits the first element off a comma-separated list
// (RFC 9110 5.6.1) and returns it with OWS trimmed, and the rest of the list
// after the comma; rest is nil after the last element, and ok is false when
// list is nil. An empty list or a trailing comma yields an empty element.
func nextElement(list []byte) (elem, rest []byte, ok bool) {
	if list == nil {
		return nil, nil, false
	}
	for i, c := range list {
		if c == ',' {
			return trimOWS(list[:i]), list[i+1 : len(list) : len(list)], true
		}
	}
	return trimOWS(list), nil, true
}

// parseDigits parses a Content-Length value: 1 to 18 ASCII digits and
// nothing else. It returns -1 when b is not such a value.
func parseDigits(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// validHostPort reports whether b is uri-host [":" port] (RFC 3986) with
// the host a reg-name without percent-encoding or a bracketed IPv6 address,
// and the port at most 65535. With needPort the port must be present and
// non-empty (CONNECT's authority-form).
func validHostPort(b []byte, needPort bool) bool {
	if len(b) == 0 {
		return false
	}
	var rest []byte
	if b[0] == '[' {
		k := -1
		for i, c := range b {
			if c == ']' {
				k = i
				break
			}
		}
		if k < 0 || !validIPv6(b[1:k]) {
			return false
		}
		rest = b[k+1:]
	} else {
		k := 0
		for k < len(b) && regNameTab[b[k]] {
			k++
		}
		if k == 0 {
			return false
		}
		rest = b[k:]
	}
	if len(rest) == 0 {
		return !needPort
	}
	if rest[0] != ':' {
		return false
	}
	port := rest[1:]
	if len(port) == 0 {
		return !needPort
	}
	if len(port) > 5 {
		return false
	}
	p := 0
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
		p = p*10 + int(c-'0')
	}
	return p <= 65535
}

// validIPv6 reports whether b is an IPv6 address in the text form
// RFC 4291 2.2 allows (no zone), including an embedded dotted IPv4 tail.
func validIPv6(b []byte) bool {
	groups := 0
	ellipsis := false
	i := 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = true
		i = 2
	}
	for i < len(b) {
		j := i
		for j < len(b) && j-i < 5 && isHex(b[j]) {
			j++
		}
		if j < len(b) && b[j] == '.' {
			// Dotted IPv4 tail: it stands for the last two groups.
			if groups > 6 || (!ellipsis && groups != 6) || !validIPv4(b[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		i = j
		if i == len(b) {
			break
		}
		if b[i] != ':' || groups >= 8 {
			return false
		}
		i++
		if i < len(b) && b[i] == ':' {
			if ellipsis {
				return false
			}
			ellipsis = true
			i++
		} else if i == len(b) {
			return false // trailing single colon
		}
	}
	if ellipsis {
		return groups < 8
	}
	return groups == 8
}

// validIPv4 reports whether b is a dotted-decimal IPv4 address with no
// leading zeros.
func validIPv4(b []byte) bool {
	parts := 0
	i := 0
	for {
		j := i
		v := 0
		for j < len(b) && isDigit(b[j]) && j-i < 4 {
			v = v*10 + int(b[j]-'0')
			j++
		}
		n := j - i
		if n == 0 || n > 3 || v > 255 || (n > 1 && b[i] == '0') {
			return false
		}
		parts++
		if j == len(b) {
			return parts == 4
		}
		if b[j] != '.' || parts == 4 {
			return false
		}
		i = j + 1
	}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// validValue reports whether every byte of v is HTAB, SP, VCHAR or
// obs-text. It checks eight bytes at a time and falls back to the table
// for a word that holds a byte below 0x20 or a DEL.
func validValue(v []byte) bool {
	for len(v) >= 8 {
		w := binary.LittleEndian.Uint64(v)
		// (w - 0x20 in each byte) &^ w has the top bit set in each byte
		// below 0x20 (exact for the first such byte, which is enough to
		// know whether one exists); the same on w^0x7f... finds DEL.
		d := w ^ (0x7f * lsb)
		if ((w-0x20*lsb)&^w|(d-lsb)&^d)&msb != 0 {
			for _, c := range v[:8] {
				if !valueTab[c] {
					return false
				}
			}
		}
		v = v[8:]
	}
	for _, c := range v {
		if !valueTab[c] {
			return false
		}
	}
	return true
}

// valueEnd returns the index of the first byte of b[i:] that cannot be in
// a field value (a control character other than HTAB, or DEL), or len(b)
// when there is none. It tests eight bytes at a time: the lowest byte
// flagged by the two tests of validValue is exact, as a borrow only
// propagates above a byte that is itself flagged.
func valueEnd(b []byte, i int) int {
	for i+8 <= len(b) {
		w := binary.LittleEndian.Uint64(b[i : i+8])
		d := w ^ (0x7f * lsb)
		m := ((w-0x20*lsb)&^w | (d-lsb)&^d) & msb
		if m == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(m) >> 3
		if b[i] != '\t' {
			return i
		}
		i++
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return i
		}
	}
	return len(b)
}

// foldMask sets bit 5 of each byte: that maps an ASCII upper-case letter
// to its lower-case one, and leaves lower-case letters and '-' as they are.
const foldMask = 0x20 * lsb

// foldWords returns up to three little-endian words that cover b (the
// first eight bytes, the eight from the ninth, the last eight; shorter
// loads for shorter b), each with foldMask applied. Two byte strings of
// the same length have the same words if and only if they are equal after
// or-ing every byte with 0x20; for b free of CR (0x0d, which 0x20 maps to
// '-') and for s made of lower-case letters and '-', that is
// EqualFold(b, s). It is meant for len(b) <= 24.
func foldWords(b []byte) (a, m, z uint64) {
	switch n := len(b); {
	case n >= 8:
		a = binary.LittleEndian.Uint64(b[:8]) | foldMask
		z = binary.LittleEndian.Uint64(b[n-8:n]) | foldMask
		if n > 16 {
			m = binary.LittleEndian.Uint64(b[8:16]) | foldMask
		}
	case n >= 4:
		a = uint64(binary.LittleEndian.Uint32(b[:4])) | foldMask>>32
		z = uint64(binary.LittleEndian.Uint32(b[n-4:n])) | foldMask>>32
	case n >= 2:
		a = uint64(binary.LittleEndian.Uint16(b[:2])) | foldMask>>48
		z = uint64(binary.LittleEndian.Uint16(b[n-2:n])) | foldMask>>48
	case n == 1:
		a = uint64(b[0]) | 0x20
	}
	return a, m, z
}

// foldKey is a lower-case name (letters and '-') in the form of
// foldWords, for comparisons with foldEqual.
type foldKey struct {
	n       int
	a, m, z uint64
}

func makeFoldKey(s string) foldKey {
	if len(s) == 0 || len(s) > 24 {
		panic("http1: fold key " + s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '-' && (c < 'a' || c > 'z') {
			panic("http1: fold key " + s)
		}
	}
	a, m, z := foldWords([]byte(s))
	return foldKey{len(s), a, m, z}
}

// foldEqual reports whether b equals k's name under ASCII case folding,
// b holding no CR (a token, or a validated field value).
func foldEqual(b []byte, k *foldKey) bool {
	if len(b) != k.n {
		return false
	}
	a, m, z := foldWords(b)
	return a == k.a && m == k.m && z == k.z
}
