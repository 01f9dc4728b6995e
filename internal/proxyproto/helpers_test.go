package proxyproto

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"strings"
)

// v2 builds a v2 header by hand, independently of AppendV2: signature,
// the version/command and family bytes, the length of body, and body.
func v2(verCmd, fam byte, body ...[]byte) []byte {
	b := append([]byte(nil), sigV2[:]...)
	b = append(b, verCmd, fam, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[14:], uint16(len(b)-16))
	return b
}

// tlv builds one TLV.
func tlv(t byte, v string) []byte {
	return append([]byte{t, byte(len(v) >> 8), byte(len(v))}, v...)
}

// withCRC appends a PP2_TYPE_CRC32C TLV to the v2 header h and fixes its
// length and checksum, computed with hash/crc32 as the spec describes.
func withCRC(h []byte) []byte {
	h = append(h, byte(TypeCRC32C), 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(h[14:], uint16(len(h)-16))
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func ip4(s string) []byte {
	a := netip.MustParseAddr(s).As4()
	return a[:]
}

func ip16(s string) []byte {
	a := netip.MustParseAddr(s).As16()
	return a[:]
}

func port(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// feed calls Parse on data[:i] for growing i, step bytes at a time, and
// returns the first result other than ErrNeedMore, or ErrNeedMore when
// all of data is not enough.
func feed(data []byte, step int) (int, Header, error) {
	var h Header
	for i := 0; ; {
		i = min(i+step, len(data))
		n, err := Parse(data[:i], &h)
		if err != ErrNeedMore || i == len(data) {
			return n, h, err
		}
	}
}

var (
	maxV4Line = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
	ffff6     = strings.Repeat("ffff:", 7) + "ffff"
	maxV6Line = "PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 65535\r\n"
	maxUnkn   = "PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 65535\r\n"
)
