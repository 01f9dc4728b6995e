package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// AppendV1 appends a v1 header line for a connection from src to dst
// (the client's address and the address it connected to) to b and
// returns the extended buffer; it does not allocate when b has room for
// MaxV1Len more bytes.
//
// Addresses are sent unmapped and without a zone: "TCP4" when both are
// IPv4, "TCP6" otherwise (an IPv4 address then goes as IPv4-mapped IPv6,
// which keeps the client's address where "UNKNOWN" would lose it).
// When either is invalid (the zero AddrPort) the line is
// "PROXY UNKNOWN\r\n", which tells the receiver to use the connection's
// own addresses.
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	s, d, v4, ok := pair(src, dst)
	if !ok {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	if v4 {
		b = append(b, "PROXY TCP4 "...)
	} else {
		b = append(b, "PROXY TCP6 "...)
	}
	b = s.AppendTo(b)
	b = append(b, ' ')
	b = d.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(src.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, '\r', '\n')
}

// AppendV2 appends a v2 header for a connection from src to dst, with
// the given TLVs in order, to b and returns the extended buffer. It does
// not allocate when b has room (V2FixedLen + 36 bytes, plus 3 and the
// value's length per TLV).
//
// The command is PROXY with TCP over IPv4 when both addresses are IPv4
// (after unmapping) and TCP over IPv6 otherwise (IPv4 as IPv4-mapped).
// When either address is invalid (the zero AddrPort) the header is a
// LOCAL one with no address, which a receiver accepts as "use the
// connection's own addresses": what a health check sends.
//
// AppendV2 panics if the header would be longer than MaxV2Len: the TLVs
// are the caller's own and must be bounded by it.
func AppendV2(b []byte, src, dst netip.AddrPort, tlvs ...TLV) []byte {
	start := len(b)
	b = append(b, sigV2[:]...)
	s, d, v4, ok := pair(src, dst)
	switch {
	case !ok:
		b = append(b, 0x20|byte(Local), byte(Unspec), 0, 0)
	case v4:
		sa, da := s.As4(), d.As4()
		b = append(b, 0x20|byte(Proxy), byte(TCP4), 0, 0)
		b = append(b, sa[:]...)
		b = append(b, da[:]...)
	default:
		sa, da := s.As16(), d.As16()
		b = append(b, 0x20|byte(Proxy), byte(TCP6), 0, 0)
		b = append(b, sa[:]...)
		b = append(b, da[:]...)
	}
	if ok {
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
	}
	for _, t := range tlvs {
		if len(t.Value) > MaxV2Len {
			panic("proxyproto: AppendV2: TLV value too long")
		}
		b = append(b, byte(t.Type))
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Value)))
		b = append(b, t.Value...)
	}
	n := len(b) - start
	if n > MaxV2Len {
		panic("proxyproto: AppendV2: header longer than MaxV2Len")
	}
	binary.BigEndian.PutUint16(b[start+14:], uint16(n-V2FixedLen))
	return b
}

// pair returns the addresses of src and dst as they are sent: unmapped
// and without a zone when both are IPv4 (v4 true), else both as 16-byte
// IPv6. ok is false when either is invalid.
func pair(src, dst netip.AddrPort) (s, d netip.Addr, v4, ok bool) {
	if !src.IsValid() || !dst.IsValid() {
		return s, d, false, false
	}
	s, d = src.Addr().Unmap().WithZone(""), dst.Addr().Unmap().WithZone("")
	if s.Is4() && d.Is4() {
		return s, d, true, true
	}
	return netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16()), false, true
}
