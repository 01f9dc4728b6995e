package proxyproto

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// sigV1 starts a v1 header; sigV2 a v2 one.
const sigV1 = "PROXY "

var sigV2 = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Parse reads a PROXY protocol header, v1 or v2, at the start of buf and
// fills in *h. It returns the header's length in bytes (the caller
// discards that many; what follows is the proxied stream), or
// ErrNeedMore while buf holds the start of a header that is not complete,
// or an *Error as soon as buf cannot start a valid one.
//
// Parse keeps no state between calls: call it again with the longer
// buffer. A v1 line is decoded only once its CRLF is there (spec 2.1); a
// v2 header once all its announced bytes are. Limits apply before that: a
// v1 line with no CRLF in MaxV1Len bytes, and a v2 length over MaxV2Len,
// are refused at once.
//
// h.TLVs points into buf. Parse does not allocate.
func Parse(buf []byte, h *Header) (int, error) {
	*h = Header{}
	if len(buf) == 0 {
		return 0, ErrNeedMore
	}
	switch buf[0] {
	case sigV1[0]:
		return parseV1(buf, h)
	case sigV2[0]:
		return parseV2(buf, h)
	}
	return 0, ErrSignature
}

func parseV1(buf []byte, h *Header) (int, error) {
	if n := min(len(buf), len(sigV1)); string(buf[:n]) != sigV1[:n] {
		return 0, ErrSignature
	}
	end := -1
	for i := len(sigV1); i < len(buf) && i < MaxV1Len; i++ {
		if c := buf[i]; c == '\n' {
			return 0, ErrV1LineEnd
		} else if c == '\r' {
			switch {
			case i+1 >= MaxV1Len:
				return 0, ErrV1TooLong
			case i+1 == len(buf):
				return 0, ErrNeedMore
			case buf[i+1] != '\n':
				return 0, ErrV1LineEnd
			}
			end = i
			break
		}
	}
	if end < 0 {
		if len(buf) >= MaxV1Len {
			return 0, ErrV1TooLong
		}
		return 0, ErrNeedMore
	}
	line := buf[len(sigV1):end]
	n := end + 2
	h.Version, h.Command = 1, Proxy

	var fam Protocol
	switch {
	case hasPrefix(line, "UNKNOWN"):
		// The rest of the line, if any, is ignored (spec 2.1).
		if len(line) > 7 && line[7] != ' ' {
			return 0, ErrV1Protocol
		}
		return n, nil
	case hasPrefix(line, "TCP4 "):
		fam = TCP4
	case hasPrefix(line, "TCP6 "):
		fam = TCP6
	default:
		return 0, ErrV1Protocol
	}
	var f [4][]byte
	rest := line[5:]
	for k := range f {
		i := 0
		for i < len(rest) && rest[i] != ' ' {
			i++
		}
		if i == 0 || (k < 3) != (i < len(rest)) {
			return 0, ErrV1Fields
		}
		f[k] = rest[:i]
		if i < len(rest) {
			rest = rest[i+1:]
		}
	}
	var src, dst netip.Addr
	if fam == TCP4 {
		s, ok1 := parseIPv4(f[0])
		d, ok2 := parseIPv4(f[1])
		if !ok1 || !ok2 {
			return 0, ErrV1Address
		}
		src, dst = netip.AddrFrom4(s), netip.AddrFrom4(d)
	} else {
		s, ok1 := parseIPv6(f[0])
		d, ok2 := parseIPv6(f[1])
		if !ok1 || !ok2 {
			return 0, ErrV1Address
		}
		src, dst = netip.AddrFrom16(s), netip.AddrFrom16(d)
	}
	sp, ok1 := parsePort(f[2])
	dp, ok2 := parsePort(f[3])
	if !ok1 || !ok2 {
		return 0, ErrV1Port
	}
	h.Protocol = fam
	h.Source, h.Destination = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return n, nil
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

func parseV2(buf []byte, h *Header) (int, error) {
	if n := min(len(buf), len(sigV2)); string(buf[:n]) != string(sigV2[:n]) {
		return 0, ErrSignature
	}
	if len(buf) < 13 {
		return 0, ErrNeedMore
	}
	if buf[12]>>4 != 2 {
		return 0, ErrV2Version
	}
	cmd := Command(buf[12] & 0x0f)
	if cmd != Local && cmd != Proxy {
		return 0, ErrV2Command
	}
	if len(buf) < 14 {
		return 0, ErrNeedMore
	}
	p := Protocol(buf[13])
	switch {
	case p>>4 > 3 || p&0x0f > 2:
		return 0, ErrV2Family
	case cmd == Proxy && p != Unspec && (p>>4 == 0 || p&0x0f == 0):
		// PROXY with a family but no transport, or the reverse: not
		// one of the combinations the spec lists.
		return 0, ErrV2Family
	}
	if len(buf) < V2FixedLen {
		return 0, ErrNeedMore
	}
	total := V2FixedLen + int(binary.BigEndian.Uint16(buf[14:16]))
	if total > MaxV2Len {
		return 0, ErrV2TooLong
	}
	al := p.addrLen()
	if total-V2FixedLen < al {
		return 0, ErrV2Length
	}
	if len(buf) < total {
		return 0, ErrNeedMore
	}
	hdr := buf[:total]
	if err := checkTLVs(hdr, V2FixedLen+al); err != nil {
		return 0, err
	}
	h.Version, h.Command, h.Protocol = 2, cmd, p
	if t := hdr[V2FixedLen+al:]; len(t) > 0 {
		h.TLVs = t
	}
	if cmd != Proxy {
		return total, nil
	}
	a := hdr[V2FixedLen:]
	switch p >> 4 {
	case 1:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:12]))
	case 2:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:36]))
	}
	return total, nil
}

// checkTLVs checks the TLVs of the v2 header hdr, which start at off:
// each must fit, a PP2_TYPE_SSL value must hold its 5 fixed bytes and
// sub-TLVs that fit it, a unique ID must be at most MaxUniqueID bytes, and
// a PP2_TYPE_CRC32C must be 4 bytes and match the header's checksum.
func checkTLVs(hdr []byte, off int) error {
	for off < len(hdr) {
		if len(hdr)-off < 3 {
			return ErrV2TLV
		}
		t, l := TLVType(hdr[off]), int(binary.BigEndian.Uint16(hdr[off+1:off+3]))
		v := off + 3
		if l > len(hdr)-v {
			return ErrV2TLV
		}
		switch t {
		case TypeCRC32C:
			if l != 4 {
				return ErrV2TLV
			}
			sum := crc32.Update(0, castagnoli, hdr[:v])
			sum = crc32.Update(sum, castagnoli, zero4[:])
			sum = crc32.Update(sum, castagnoli, hdr[v+4:])
			if sum != binary.BigEndian.Uint32(hdr[v:v+4]) {
				return ErrV2Checksum
			}
		case TypeUniqueID:
			if l > MaxUniqueID {
				return ErrV2TLV
			}
		case TypeSSL:
			if l < 5 || !subTLVsFit(hdr[v+5:v+l]) {
				return ErrV2TLV
			}
		}
		off = v + l
	}
	return nil
}

var zero4 [4]byte

// subTLVsFit reports whether b is a sequence of TLVs that fills it exactly.
func subTLVsFit(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 3 {
			return false
		}
		n := 3 + int(binary.BigEndian.Uint16(b[1:3]))
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return true
}
