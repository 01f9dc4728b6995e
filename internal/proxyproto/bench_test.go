package proxyproto

import (
	"net/netip"
	"testing"
)

func benchParse(b *testing.B, in []byte) {
	var h Header
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(in, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseV1TCP4(b *testing.B) {
	benchParse(b, []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n"))
}

func BenchmarkParseV1TCP6(b *testing.B) {
	benchParse(b, []byte("PROXY TCP6 2001:db8:85a3::8a2e:370:7334 2001:db8::1 56324 443\r\n"))
}

func BenchmarkParseV2TCP4(b *testing.B) {
	benchParse(b, v2(0x21, 0x11, ip4("203.0.113.7"), ip4("10.0.0.1"), port(56324), port(443)))
}

func BenchmarkParseV2TLVsCRC(b *testing.B) {
	benchParse(b, withCRC(v2(0x21, 0x21, ip16("2001:db8::1"), ip16("2001:db8::2"), port(1), port(443),
		tlv(0x01, "h2"), tlv(0x02, "www.example.com"), tlv(0xea, "\x01vpce-0123456789abcdef0"))))
}

var (
	benchSrc = netip.MustParseAddrPort("203.0.113.7:56324")
	benchDst = netip.MustParseAddrPort("10.0.0.1:443")
)

func BenchmarkAppendV1(b *testing.B) {
	buf := make([]byte, 0, MaxV1Len)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendV1(buf[:0], benchSrc, benchDst)
	}
}

func BenchmarkAppendV2(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendV2(buf[:0], benchSrc, benchDst)
	}
}
