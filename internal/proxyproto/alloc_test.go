package proxyproto

import (
	"net/netip"
	"testing"
)

// TestAllocs proves that parsing, the TLV accessors and encoding into a
// buffer with room do not allocate.
func TestAllocs(t *testing.T) {
	v1 := []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\nGET / HTTP/1.1\r\n")
	v1u := []byte(maxUnkn)
	v2b := withCRC(v2(0x21, 0x21, ip16("2001:db8::1"), ip16("2001:db8::2"), port(1), port(443),
		tlv(0x01, "h2"), tlv(0x02, "www.example.com"), tlv(0x20, "\x01\x00\x00\x00\x00"+string(tlv(0x21, "TLSv1.3")))))
	bad := []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n")
	src, dst := netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[::ffff:10.0.0.1]:443")
	buf := make([]byte, 0, 256)
	alpn := []byte("h2")
	var h Header
	tests := []struct {
		name string
		f    func()
	}{
		{"Parse v1", func() {
			if n, err := Parse(v1, &h); n != 46 || err != nil {
				t.Fatalf("Parse = %d, %v", n, err)
			}
		}},
		{"Parse v1 UNKNOWN", func() { Parse(v1u, &h) }},
		{"Parse v1 byte at a time", func() {
			for i := range 47 {
				Parse(v1[:i], &h)
			}
		}},
		{"Parse v2 with TLVs and CRC32C", func() {
			if n, err := Parse(v2b, &h); n != len(v2b) || err != nil {
				t.Fatalf("Parse = %d, %v", n, err)
			}
		}},
		{"Parse error", func() {
			if _, err := Parse(bad, &h); err != ErrV1Port {
				t.Fatalf("Parse = %v", err)
			}
		}},
		{"accessors", func() {
			Parse(v2b, &h)
			h.Client()
			h.ALPN()
			h.Authority()
			h.SSL()
			for range h.All() {
			}
		}},
		{"AppendV1", func() { buf = AppendV1(buf[:0], src, dst) }},
		{"AppendV2", func() { buf = AppendV2(buf[:0], src, dst) }},
		{"AppendV2 TLV", func() { buf = AppendV2(buf[:0], src, dst, TLV{TypeALPN, alpn}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(100, tc.f); a != 0 {
				t.Errorf("%v allocs per run, want 0", a)
			}
		})
	}
}
