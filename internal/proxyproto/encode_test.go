package proxyproto

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestAppendV1(t *testing.T) {
	tests := []struct {
		src, dst netip.AddrPort
		want     string
	}{
		{ap("192.168.0.1:56324"), ap("192.168.0.11:443"), "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
		{ap("255.255.255.255:65535"), ap("255.255.255.255:65535"), maxV4Line},
		{ap("[" + ffff6 + "]:65535"), ap("[" + ffff6 + "]:65535"), maxV6Line},
		{ap("[2001:db8::1]:0"), ap("[::1]:80"), "PROXY TCP6 2001:db8::1 ::1 0 80\r\n"},
		// Mapped addresses are unmapped; mixed families go as IPv6.
		{ap("[::ffff:10.0.0.1]:1"), ap("[::ffff:10.0.0.2]:2"), "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"},
		{ap("10.0.0.1:1"), ap("[2001:db8::2]:2"), "PROXY TCP6 ::ffff:10.0.0.1 2001:db8::2 1 2\r\n"},
		{ap("[fe80::1%eth0]:1"), ap("[fe80::2]:2"), "PROXY TCP6 fe80::1 fe80::2 1 2\r\n"},
		{netip.AddrPort{}, ap("1.2.3.4:5"), "PROXY UNKNOWN\r\n"},
		{ap("1.2.3.4:5"), netip.AddrPort{}, "PROXY UNKNOWN\r\n"},
	}
	for _, tc := range tests {
		got := AppendV1([]byte("x"), tc.src, tc.dst)
		if string(got) != "x"+tc.want {
			t.Errorf("AppendV1(%v, %v) = %q, want %q", tc.src, tc.dst, got[1:], tc.want)
		}
	}
}

func TestAppendV2(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.AddrPort
		tlvs     []TLV
		want     []byte
	}{
		{"TCP4", ap("192.168.0.1:56324"), ap("192.168.0.11:443"), nil,
			v2(0x21, 0x11, ip4("192.168.0.1"), ip4("192.168.0.11"), port(56324), port(443))},
		{"TCP6", ap("[2001:db8::1]:1"), ap("[2001:db8::2]:443"), nil,
			v2(0x21, 0x21, ip16("2001:db8::1"), ip16("2001:db8::2"), port(1), port(443))},
		{"mapped", ap("[::ffff:1.2.3.4]:1"), ap("5.6.7.8:2"), nil,
			v2(0x21, 0x11, ip4("1.2.3.4"), ip4("5.6.7.8"), port(1), port(2))},
		{"mixed", ap("1.2.3.4:1"), ap("[::1]:2"), nil,
			v2(0x21, 0x21, ip16("::ffff:1.2.3.4"), ip16("::1"), port(1), port(2))},
		{"LOCAL", netip.AddrPort{}, netip.AddrPort{}, nil, v2(0x20, 0x00)},
		{"TLVs", ap("1.2.3.4:1"), ap("5.6.7.8:2"), []TLV{{TypeALPN, []byte("h2")}, {TypeAuthority, []byte("example.com")}, {TypeNoop, nil}},
			v2(0x21, 0x11, ip4("1.2.3.4"), ip4("5.6.7.8"), port(1), port(2), tlv(1, "h2"), tlv(2, "example.com"), tlv(4, ""))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendV2([]byte("x"), tc.src, tc.dst, tc.tlvs...)
			if !bytes.Equal(got[1:], tc.want) || got[0] != 'x' {
				t.Errorf("AppendV2 = % x\nwant       % x", got[1:], tc.want)
			}
		})
	}
}

func TestAppendV2TooLong(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AppendV2 with a 4096-byte TLV did not panic")
		}
	}()
	AppendV2(nil, ap("1.2.3.4:1"), ap("1.2.3.4:2"), TLV{TypeNoop, []byte(strings.Repeat("x", MaxV2Len-16-12-2))})
}

// TestRoundTrip checks that what AppendV1 and AppendV2 write parses back
// to the same client and destination.
func TestRoundTrip(t *testing.T) {
	addrs := []string{"0.0.0.0:0", "1.2.3.4:80", "[::ffff:1.2.3.4]:81", "[::1]:65535", "[2001:db8:0:1::ab]:1", "[fe80::1%lo]:2"}
	for _, s := range addrs {
		for _, d := range addrs {
			roundTrip(t, ap(s), ap(d), nil)
		}
	}
	roundTrip(t, ap("1.2.3.4:1"), ap("1.2.3.4:2"), []TLV{{TypeAuthority, []byte("a.example")}, {0xe0, make([]byte, 3000)}})
}

func roundTrip(t *testing.T, src, dst netip.AddrPort, tlvs []TLV) {
	t.Helper()
	unmap := func(a netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
	}
	for v, b := range [][]byte{AppendV1(nil, src, dst), AppendV2(nil, src, dst, tlvs...)} {
		var h Header
		n, err := Parse(append(b, "rest"...), &h)
		if n != len(b) || err != nil {
			t.Fatalf("v%d %v -> %v: Parse(%q) = %d, %v", v+1, src, dst, b, n, err)
		}
		c, ok := h.Client()
		if !ok || c != unmap(src) || unmap(h.Destination) != unmap(dst) || h.Version != v+1 || h.Command != Proxy {
			t.Errorf("v%d %v -> %v: parsed %+v", v+1, src, dst, h)
		}
		if v == 1 {
			i := 0
			for typ, val := range h.All() {
				if i >= len(tlvs) || typ != tlvs[i].Type || !bytes.Equal(val, tlvs[i].Value) {
					t.Errorf("TLV %d = %#x %q", i, typ, val)
				}
				i++
			}
			if i != len(tlvs) {
				t.Errorf("%d TLVs, want %d", i, len(tlvs))
			}
		}
	}
}
