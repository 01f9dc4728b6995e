package ratelimit

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
)

// key identifies one client's bucket. For addresses it is the address in
// 16-byte form (IPv4 as ::ffff:a.b.c.d), IPv6 masked to Config.IPv6Prefix.
// For header values it is 0xff followed by 120 bits of two seeded hashes of
// the value; 0xff starts only multicast IPv6 addresses, which are never a
// TCP peer, so the two kinds cannot meet.
type key [16]byte

// clientAddr is the address a request is keyed by: the TCP peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For address that
// is not trusted. Each trusted hop appended the address it received the
// request from, so everything left of the first untrusted address (reading
// from the right) was written by the client and is ignored. An entry that
// is not an IP address ends the walk, as does running out of entries: the
// key is then the last address reached, a trusted one. xff holds the
// field's lines in the order received; a line may hold several entries.
func clientAddr(peer netip.Addr, xff [][]byte, trusted []netip.Prefix) netip.Addr {
	a := peer.Unmap()
	if !isTrusted(a, trusted) {
		return a
	}
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for end := len(v); end >= 0; {
			start := bytes.LastIndexByte(v[:end], ',') + 1
			elem := trimOWS(v[start:end])
			end = start - 1
			if len(elem) == 0 {
				continue // empty list elements are allowed (RFC 9110 5.6.1)
			}
			hop, ok := parseHop(elem)
			if !ok {
				return a
			}
			a = hop.Unmap()
			if !isTrusted(a, trusted) {
				return a
			}
		}
	}
	return a
}

// isTrusted reports whether a is in one of the trusted networks. a must be
// unmapped: an IPv4 network does not contain ::ffff:a.b.c.d.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrKey is the key of client address a (already unmapped). IPv6
// addresses keep their first v6bits bits. The zero Addr (no peer) has the
// all-zero key.
func addrKey(a netip.Addr, v6bits int) key {
	if !a.IsValid() {
		return key{}
	}
	k := key(a.As16())
	if a.Is6() && v6bits < 128 {
		full, rest := v6bits/8, v6bits%8
		if rest != 0 {
			k[full] &= ^byte(0xff >> rest)
			full++
		}
		clear(k[full:])
	}
	return k
}

// headerKey is the key of header value v. Distinct values collide with
// probability about n²/2^121 among n keys (3e-27 at n = 100k); the seeds are
// random per process and never revealed, so collisions cannot be aimed.
func headerKey(v []byte, s1, s2 maphash.Seed) key {
	var k key
	binary.LittleEndian.PutUint64(k[0:], maphash.Bytes(s1, v))
	binary.LittleEndian.PutUint64(k[8:], maphash.Bytes(s2, v))
	k[0] = 0xff
	return k
}

// trimOWS removes spaces and tabs at both ends of b.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseHop parses one X-Forwarded-For entry: an IP address, optionally
// with a port as some proxies write it ("192.0.2.1:5000",
// "[2001:db8::1]:5000"). Anything else ("unknown", obfuscated identifiers,
// zones) is rejected.
func parseHop(b []byte) (netip.Addr, bool) {
	if len(b) > 0 && b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 || !isPort(b[end+1:], true) {
			return netip.Addr{}, false
		}
		a, ok := parseAddr(b[1:end])
		return a, ok && a.Is6()
	}
	if c := bytes.IndexByte(b, ':'); c >= 0 && bytes.IndexByte(b[c+1:], ':') < 0 {
		// One colon: IPv4 with a port (IPv6 has at least two colons).
		if !isPort(b[c:], false) {
			return netip.Addr{}, false
		}
		b = b[:c]
	}
	return parseAddr(b)
}

// isPort reports whether b is ":" followed by 1-5 digits, or, if optional,
// empty.
func isPort(b []byte, optional bool) bool {
	if len(b) == 0 {
		return optional
	}
	if b[0] != ':' || len(b) < 2 || len(b) > 6 {
		return false
	}
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseAddr parses an IPv4 or IPv6 address without zone exactly as
// netip.ParseAddr does (the fuzz test checks), but from bytes and without
// allocating, even for bad input.
func parseAddr(b []byte) (netip.Addr, bool) {
	for _, c := range b {
		switch c {
		case '.':
			var f [4]byte
			if !parseIPv4(b, f[:]) {
				return netip.Addr{}, false
			}
			return netip.AddrFrom4(f), true
		case ':':
			return parseIPv6(b)
		}
	}
	return netip.Addr{}, false
}

// parseIPv4 parses dotted-quad b into f: four decimal fields 0-255 without
// leading zeros.
func parseIPv4(b []byte, f []byte) bool {
	val, pos, digits := 0, 0, 0
	for i, c := range b {
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.':
			if i == 0 || i == len(b)-1 || b[i-1] == '.' || pos == 3 {
				return false
			}
			f[pos] = byte(val)
			pos++
			val, digits = 0, 0
		default:
			return false
		}
	}
	if pos < 3 {
		return false
	}
	f[3] = byte(val)
	return true
}

// parseIPv6 parses b: up to eight groups of 1-4 hex digits separated by
// colons, at most one "::" standing for one or more zero groups, and
// optionally an IPv4 address in place of the last two groups.
func parseIPv6(b []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // byte offset in ip where "::" stands
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
		if len(b) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, 0
		for ; off < len(b); off++ {
			d := hexVal(b[off])
			if d < 0 {
				break
			}
			if off > 3 {
				return netip.Addr{}, false // five or more digits
			}
			acc = acc<<4 | d
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(b) && b[off] == '.' {
			if (ellipsis < 0 && i != 12) || i+4 > 16 || !parseIPv4(b, ip[i:i+4]) {
				return netip.Addr{}, false
			}
			b = nil
			i += 4
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		b = b[off:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return netip.Addr{}, false
		}
		b = b[1:]
		if b[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false // a second "::"
			}
			ellipsis = i
			b = b[1:]
			if len(b) == 0 {
				break
			}
		}
	}
	if len(b) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}

// hexVal is the value of hex digit c, or -1.
func hexVal(c byte) int {
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
