package proxyproto

import (
	"encoding/binary"
	"iter"
	"net/netip"
)

// Header lengths.
const (
	// MaxV1Len is the longest v1 line, CRLF included, as the spec sets it:
	// "PROXY UNKNOWN" with two full IPv6 addresses and two 5-digit ports.
	MaxV1Len = 107
	// MaxV2Len is the longest v2 header Parse accepts: 16 fixed bytes,
	// the address block and TLVs. The format allows 16+65535; 4096 is
	// nginx's limit and far above what senders put there (the largest
	// address block is 216 bytes, an authority at most 255, a unique ID
	// at most 128).
	MaxV2Len = 4096
	// V2FixedLen is the length of a v2 header's fixed part: signature,
	// version and command, family and protocol, length.
	V2FixedLen = 16
)

// Command is what a v2 header says the connection is. A v1 header is
// always Proxy.
type Command uint8

// Commands.
const (
	// Local: the sender opened the connection on its own behalf (a
	// health check); the receiver uses the connection's own addresses.
	Local Command = 0x0
	// Proxy: the connection is relayed; the header carries the original
	// endpoints.
	Proxy Command = 0x1
)

// Protocol is the address family and transport of the proxied connection,
// with the value of a v2 header's 14th byte.
type Protocol uint8

// Protocols. A v1 header is TCP4, TCP6 or Unspec ("UNKNOWN").
const (
	Unspec     Protocol = 0x00
	TCP4       Protocol = 0x11
	UDP4       Protocol = 0x12
	TCP6       Protocol = 0x21
	UDP6       Protocol = 0x22
	UnixStream Protocol = 0x31
	UnixDgram  Protocol = 0x32
)

// addrLen is the length of p's address block in a v2 header.
func (p Protocol) addrLen() int {
	switch p >> 4 {
	case 1:
		return 12
	case 2:
		return 36
	case 3:
		return 216
	}
	return 0
}

// Header is a parsed PROXY protocol header. Its zero value is an empty
// header (version 0). Parse overwrites every field.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Command is Local or Proxy.
	Command Command
	// Protocol is the family and transport the header announces.
	Protocol Protocol
	// Source and Destination are the original connection's endpoints,
	// exactly as sent (an IPv4-mapped IPv6 address stays mapped). They
	// are the zero AddrPort unless Command is Proxy and Protocol is TCP4,
	// UDP4, TCP6 or UDP6. Use [Header.Client] for the address to act on.
	Source, Destination netip.AddrPort
	// TLVs is the TLV area of a v2 header (after the address block), nil
	// for v1. Parse has checked that every TLV fits it exactly. It
	// points into the buffer given to Parse.
	TLVs []byte
}

// Client returns the client's address to use instead of the
// connection's peer: Source with an IPv4-mapped address unmapped, and
// true, when the header carries an IP source (Command Proxy, Protocol
// TCP4, UDP4, TCP6 or UDP6). Otherwise (LOCAL, UNKNOWN, UNSPEC, AF_UNIX)
// it returns false, and the receiver uses the connection's own peer
// address, as the spec says.
func (h *Header) Client() (netip.AddrPort, bool) {
	if !h.Source.IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port()), true
}

// TLVType is the type of a v2 TLV.
type TLVType uint8

// TLV types of the spec (PP2_TYPE_*, PP2_SUBTYPE_SSL_*).
const (
	TypeALPN      TLVType = 0x01
	TypeAuthority TLVType = 0x02
	TypeCRC32C    TLVType = 0x03
	TypeNoop      TLVType = 0x04
	TypeUniqueID  TLVType = 0x05
	TypeSSL       TLVType = 0x20
	TypeNetNS     TLVType = 0x30

	SubtypeSSLVersion TLVType = 0x21
	SubtypeSSLCN      TLVType = 0x22
	SubtypeSSLCipher  TLVType = 0x23
	SubtypeSSLSigAlg  TLVType = 0x24
	SubtypeSSLKeyAlg  TLVType = 0x25
)

// MaxUniqueID is the longest PP2_TYPE_UNIQUE_ID value the spec allows;
// Parse rejects longer ones.
const MaxUniqueID = 128

// TLV is one type-length-value entry, for AppendV2.
type TLV struct {
	Type  TLVType
	Value []byte
}

// All iterates over the TLVs of h in order (SSL sub-TLVs are inside the
// value of the TypeSSL entry; see [Header.SSL]).
func (h *Header) All() iter.Seq2[TLVType, []byte] {
	return tlvs(h.TLVs)
}

// tlvs iterates over a validated TLV area.
func tlvs(b []byte) iter.Seq2[TLVType, []byte] {
	return func(yield func(TLVType, []byte) bool) {
		for len(b) >= 3 {
			n := 3 + int(binary.BigEndian.Uint16(b[1:3]))
			if n > len(b) {
				return
			}
			if !yield(TLVType(b[0]), b[3:n:n]) {
				return
			}
			b = b[n:]
		}
	}
}

// TLV returns the value of the first TLV of type t, and whether there is
// one.
func (h *Header) TLV(t TLVType) ([]byte, bool) {
	return lookup(h.TLVs, t)
}

func lookup(b []byte, t TLVType) ([]byte, bool) {
	for typ, v := range tlvs(b) {
		if typ == t {
			return v, true
		}
	}
	return nil, false
}

// ALPN returns the PP2_TYPE_ALPN value (the protocol the client
// negotiated, e.g. "h2"), or nil.
func (h *Header) ALPN() []byte {
	v, _ := h.TLV(TypeALPN)
	return v
}

// Authority returns the PP2_TYPE_AUTHORITY value (the host name the
// client asked for: its TLS SNI), or nil.
func (h *Header) Authority() []byte {
	v, _ := h.TLV(TypeAuthority)
	return v
}

// UniqueID returns the PP2_TYPE_UNIQUE_ID value (at most 128 bytes), or
// nil.
func (h *Header) UniqueID() []byte {
	v, _ := h.TLV(TypeUniqueID)
	return v
}

// SSL is the content of a PP2_TYPE_SSL TLV: what the sender knows of the
// client's TLS connection. Byte slices point into the parsed buffer and
// are nil when the sub-TLV is absent.
type SSL struct {
	// Client is a bit field: ClientSSL, ClientCertConn, ClientCertSess.
	Client uint8
	// Verify is 0 when the client presented a certificate that was
	// verified, non-zero otherwise.
	Verify  uint32
	Version []byte // e.g. "TLSv1.3"
	CN      []byte // the client certificate's Common Name
	Cipher  []byte // e.g. "ECDHE-RSA-AES128-GCM-SHA256"
	SigAlg  []byte // e.g. "RSA-SHA256"
	KeyAlg  []byte // e.g. "RSA2048"
}

// Bits of SSL.Client.
const (
	ClientSSL      = 0x01
	ClientCertConn = 0x02
	ClientCertSess = 0x04
)

// SSL returns the first PP2_TYPE_SSL TLV of h, and whether there is one.
func (h *Header) SSL() (SSL, bool) {
	v, ok := h.TLV(TypeSSL)
	if !ok || len(v) < 5 {
		return SSL{}, false
	}
	s := SSL{Client: v[0], Verify: binary.BigEndian.Uint32(v[1:5])}
	for t, sv := range tlvs(v[5:]) {
		var dst *[]byte
		switch t {
		case SubtypeSSLVersion:
			dst = &s.Version
		case SubtypeSSLCN:
			dst = &s.CN
		case SubtypeSSLCipher:
			dst = &s.Cipher
		case SubtypeSSLSigAlg:
			dst = &s.SigAlg
		case SubtypeSSLKeyAlg:
			dst = &s.KeyAlg
		default:
			continue
		}
		if *dst == nil {
			*dst = sv
		}
	}
	return s, true
}
