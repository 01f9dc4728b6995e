package proxyproto

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

type valid struct {
	name     string
	in       string
	n        int // header length; 0 means len(in)
	version  int
	cmd      Command
	proto    Protocol
	src, dst string // "" for none
	client   string // Client(); "" for none
}

var validHeaders = []valid{
	// v1, from the spec's examples and maximum lengths (section 2.1).
	{name: "v1 spec example", in: "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n",
		n: 47, version: 1, cmd: Proxy, proto: TCP4, src: "192.168.0.1:56324", dst: "192.168.0.11:443", client: "192.168.0.1:56324"},
	{name: "v1 TCP4 longest", in: maxV4Line, version: 1, cmd: Proxy, proto: TCP4,
		src: "255.255.255.255:65535", dst: "255.255.255.255:65535", client: "255.255.255.255:65535"},
	{name: "v1 TCP6 longest", in: maxV6Line, version: 1, cmd: Proxy, proto: TCP6,
		src: "[" + ffff6 + "]:65535", dst: "[" + ffff6 + "]:65535", client: "[" + ffff6 + "]:65535"},
	{name: "v1 UNKNOWN short", in: "PROXY UNKNOWN\r\n", version: 1, cmd: Proxy, proto: Unspec},
	{name: "v1 UNKNOWN 107 bytes", in: maxUnkn, version: 1, cmd: Proxy, proto: Unspec},
	{name: "v1 UNKNOWN anything", in: "PROXY UNKNOWN what\x00ever\r\n", version: 1, cmd: Proxy, proto: Unspec},
	{name: "v1 TCP6 compressed", in: "PROXY TCP6 2001:db8::1 ::1 0 8080\r\n", version: 1, cmd: Proxy, proto: TCP6,
		src: "[2001:db8::1]:0", dst: "[::1]:8080", client: "[2001:db8::1]:0"},
	{name: "v1 TCP6 upper case", in: "PROXY TCP6 2001:DB8::A 1:2:3:4:5:6:7:8 1 2\r\n", version: 1, cmd: Proxy, proto: TCP6,
		src: "[2001:db8::a]:1", dst: "[1:2:3:4:5:6:7:8]:2", client: "[2001:db8::a]:1"},
	{name: "v1 TCP6 mapped", in: "PROXY TCP6 ::ffff:10.0.0.1 ::1 1000 80\r\n", version: 1, cmd: Proxy, proto: TCP6,
		src: "[::ffff:10.0.0.1]:1000", dst: "[::1]:80", client: "10.0.0.1:1000"},

	// v2, section 2.2.
	{name: "v2 TCP4", in: string(v2(0x21, 0x11, ip4("192.168.0.1"), ip4("192.168.0.11"), port(56324), port(443))) + "GET",
		n: 28, version: 2, cmd: Proxy, proto: TCP4, src: "192.168.0.1:56324", dst: "192.168.0.11:443", client: "192.168.0.1:56324"},
	{name: "v2 UDP4", in: string(v2(0x21, 0x12, ip4("10.1.2.3"), ip4("10.3.2.1"), port(53), port(5353))),
		version: 2, cmd: Proxy, proto: UDP4, src: "10.1.2.3:53", dst: "10.3.2.1:5353", client: "10.1.2.3:53"},
	{name: "v2 TCP6", in: string(v2(0x21, 0x21, ip16("2001:db8::1"), ip16("2001:db8::2"), port(1), port(443))),
		version: 2, cmd: Proxy, proto: TCP6, src: "[2001:db8::1]:1", dst: "[2001:db8::2]:443", client: "[2001:db8::1]:1"},
	{name: "v2 TCP6 mapped", in: string(v2(0x21, 0x21, ip16("::ffff:1.2.3.4"), ip16("::1"), port(9), port(80))),
		version: 2, cmd: Proxy, proto: TCP6, src: "[::ffff:1.2.3.4]:9", dst: "[::1]:80", client: "1.2.3.4:9"},
	{name: "v2 UDP6", in: string(v2(0x21, 0x22, ip16("::2"), ip16("::3"), port(4), port(5))),
		version: 2, cmd: Proxy, proto: UDP6, src: "[::2]:4", dst: "[::3]:5", client: "[::2]:4"},
	{name: "v2 LOCAL", in: string(v2(0x20, 0x00)), version: 2, cmd: Local, proto: Unspec},
	{name: "v2 LOCAL with addresses ignored", in: string(v2(0x20, 0x11, ip4("1.1.1.1"), ip4("2.2.2.2"), port(1), port(2))),
		version: 2, cmd: Local, proto: TCP4},
	{name: "v2 LOCAL family without transport", in: string(v2(0x20, 0x10, make([]byte, 12))), version: 2, cmd: Local, proto: 0x10},
	{name: "v2 PROXY UNSPEC", in: string(v2(0x21, 0x00)), version: 2, cmd: Proxy, proto: Unspec},
	{name: "v2 PROXY UNSPEC with bytes", in: string(v2(0x21, 0x00, tlv(0x04, "pad"))), version: 2, cmd: Proxy, proto: Unspec},
	{name: "v2 UNIX stream", in: string(v2(0x21, 0x31, make([]byte, 216))), version: 2, cmd: Proxy, proto: UnixStream},
	{name: "v2 UNIX dgram", in: string(v2(0x21, 0x32, make([]byte, 216))), version: 2, cmd: Proxy, proto: UnixDgram},
	{name: "v2 longest", in: string(v2(0x21, 0x11, make([]byte, 12), tlv(0x04, strings.Repeat("x", MaxV2Len-16-12-3)))),
		version: 2, cmd: Proxy, proto: TCP4, src: "0.0.0.0:0", dst: "0.0.0.0:0", client: "0.0.0.0:0"},
	{name: "v2 CRC32C", in: string(withCRC(v2(0x21, 0x11, ip4("1.2.3.4"), ip4("5.6.7.8"), port(1), port(2), tlv(0x01, "h2")))),
		version: 2, cmd: Proxy, proto: TCP4, src: "1.2.3.4:1", dst: "5.6.7.8:2", client: "1.2.3.4:1"},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validHeaders {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.n
			if want == 0 {
				want = len(tc.in)
			}
			for _, step := range []int{len(tc.in), 1, 7} {
				n, h, err := feed([]byte(tc.in), step)
				if n != want || err != nil {
					t.Fatalf("step %d: Parse = %d, %v; want %d, nil", step, n, err, want)
				}
				if h.Version != tc.version || h.Command != tc.cmd || h.Protocol != tc.proto {
					t.Errorf("version, command, protocol = %d, %d, %#x; want %d, %d, %#x", h.Version, h.Command, h.Protocol, tc.version, tc.cmd, tc.proto)
				}
				checkAddr(t, "Source", h.Source, tc.src)
				checkAddr(t, "Destination", h.Destination, tc.dst)
				c, ok := h.Client()
				if !ok {
					c = netip.AddrPort{}
				}
				checkAddr(t, "Client", c, tc.client)
			}
		})
	}
}

func checkAddr(t *testing.T, what string, got netip.AddrPort, want string) {
	t.Helper()
	if want == "" {
		if got.IsValid() {
			t.Errorf("%s = %v, want none", what, got)
		}
		return
	}
	if w := netip.MustParseAddrPort(want); got != w {
		t.Errorf("%s = %v, want %v", what, got, w)
	}
}

var invalidHeaders = []struct {
	name string
	in   string
	err  error
}{
	{"HTTP request", "GET / HTTP/1.1\r\n", ErrSignature},
	{"TLS ClientHello", "\x16\x03\x01\x00\xa5\x01", ErrSignature},
	{"v1 lower case", "proxy TCP4", ErrSignature},
	{"v1 no space", "PROXY\r\n", ErrSignature},
	{"v1 bad signature early", "PROXX", ErrSignature},
	{"v2 bad signature early", "\r\n\r\n\x01", ErrSignature},
	{"v2 bad signature last byte", "\r\n\r\n\x00\r\nQUIT\r", ErrSignature},

	{"v1 bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ErrV1LineEnd},
	{"v1 bare CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", ErrV1LineEnd},
	{"v1 CR inside UNKNOWN", "PROXY UNKNOWN a\rb\r\n", ErrV1LineEnd},
	{"v1 108 bytes", "PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 655355\r\n", ErrV1TooLong},
	{"v1 107 bytes without CRLF", strings.Repeat("PROXY UNKNOWN ", 8)[:107], ErrV1TooLong},
	{"v1 CR as byte 107", "PROXY UNKNOWN " + strings.Repeat("x", 92) + "\r\n", ErrV1TooLong},
	{"v1 TCP5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", ErrV1Protocol},
	{"v1 tcp4", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", ErrV1Protocol},
	{"v1 UNKNOWNX", "PROXY UNKNOWNX\r\n", ErrV1Protocol},
	{"v1 two spaces after PROXY", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ErrV1Protocol},
	{"v1 TCP4 alone", "PROXY TCP4\r\n", ErrV1Protocol},
	{"v1 two spaces", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", ErrV1Fields},
	{"v1 missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ErrV1Fields},
	{"v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", ErrV1Fields},
	{"v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", ErrV1Fields},
	{"v1 tab", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", ErrV1Fields},
	{"v1 leading zero", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", ErrV1Address},
	{"v1 octet 256", "PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", ErrV1Address},
	{"v1 three octets", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", ErrV1Address},
	{"v1 TCP4 with IPv6", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", ErrV1Address},
	{"v1 TCP6 with IPv4", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", ErrV1Address},
	{"v1 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", ErrV1Address},
	{"v1 brackets", "PROXY TCP6 [::1] ::1 1 2\r\n", ErrV1Address},
	{"v1 two ellipses", "PROXY TCP6 1::2::3 ::1 1 2\r\n", ErrV1Address},
	{"v1 port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", ErrV1Port},
	{"v1 port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", ErrV1Port},
	{"v1 port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", ErrV1Port},
	{"v1 port hex", "PROXY TCP4 1.2.3.4 5.6.7.8 1 0x2\r\n", ErrV1Port},

	{"v2 version 1", string(v2(0x11, 0x11, make([]byte, 12))), ErrV2Version},
	{"v2 version 3", string(v2(0x31, 0x11, make([]byte, 12))), ErrV2Version},
	{"v2 command 2", string(v2(0x22, 0x11, make([]byte, 12))), ErrV2Command},
	{"v2 command 15", string(v2(0x2f, 0x00)), ErrV2Command},
	{"v2 family 4", string(v2(0x21, 0x41, make([]byte, 12))), ErrV2Family},
	{"v2 transport 3", string(v2(0x21, 0x13, make([]byte, 12))), ErrV2Family},
	{"v2 LOCAL family 15", string(v2(0x20, 0xf0)), ErrV2Family},
	{"v2 PROXY INET without transport", string(v2(0x21, 0x10, make([]byte, 12))), ErrV2Family},
	{"v2 PROXY STREAM without family", string(v2(0x21, 0x01, make([]byte, 12))), ErrV2Family},
	{"v2 length 65535", string(sigV2[:]) + "\x21\x11\xff\xff", ErrV2TooLong},
	{"v2 one byte over the limit", string(sigV2[:]) + "\x21\x11\x0f\xf1", ErrV2TooLong},
	{"v2 TCP4 in 11 bytes", string(v2(0x21, 0x11, make([]byte, 11))), ErrV2Length},
	{"v2 TCP6 in 12 bytes", string(v2(0x21, 0x21, make([]byte, 12))), ErrV2Length},
	{"v2 UNIX in 36 bytes", string(v2(0x21, 0x31, make([]byte, 36))), ErrV2Length},
	{"v2 LOCAL TCP6 in 12 bytes", string(v2(0x20, 0x21, make([]byte, 12))), ErrV2Length},
	{"v2 TLV header truncated", string(v2(0x21, 0x11, make([]byte, 12), []byte{1, 0})), ErrV2TLV},
	{"v2 TLV over the length", string(v2(0x21, 0x11, make([]byte, 12), []byte{1, 0, 3, 'h', '2'})), ErrV2TLV},
	{"v2 TLV after a good one", string(v2(0x21, 0x11, make([]byte, 12), tlv(1, "h2"), []byte{2})), ErrV2TLV},
	{"v2 SSL too short", string(v2(0x21, 0x11, make([]byte, 12), tlv(0x20, "\x01\x00\x00\x00"))), ErrV2TLV},
	{"v2 SSL sub-TLV over", string(v2(0x21, 0x11, make([]byte, 12), tlv(0x20, "\x01\x00\x00\x00\x00\x21\x00\x09TLSv1.3"))), ErrV2TLV},
	{"v2 unique ID 129", string(v2(0x21, 0x11, make([]byte, 12), tlv(0x05, strings.Repeat("u", 129)))), ErrV2TLV},
	{"v2 CRC32C of 3 bytes", string(v2(0x21, 0x11, make([]byte, 12), tlv(0x03, "abc"))), ErrV2TLV},
	{"v2 CRC32C wrong", string(v2(0x21, 0x11, make([]byte, 12), tlv(0x03, "abcd"))), ErrV2Checksum},
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidHeaders {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{len(tc.in), 1, 5} {
				n, _, err := feed([]byte(tc.in), step)
				if n != 0 || err != tc.err {
					t.Fatalf("step %d: Parse = %d, %v; want 0, %v", step, n, err, tc.err)
				}
			}
			var e *Error
			if !errors.As(tc.err, &e) || e.Code == "" || !strings.HasPrefix(e.Error(), "proxyproto: ") {
				t.Errorf("%v is not an *Error with a code", tc.err)
			}
		})
	}
}

// TestParseNeedMore checks that every proper prefix of a valid header
// asks for more, and a few prefixes the spec's identification rules
// leave open.
func TestParseNeedMore(t *testing.T) {
	for _, in := range []string{"", "P", "PROXY", "PROXY ", "PROXY TCP4 1.2.3.4", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
		"PROXY UNKNOWN " + strings.Repeat("x", 91) + "\r", "\r", "\r\n\r\n\x00\r\nQUIT\n", "\r\n\r\n\x00\r\nQUIT\n\x21",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x0f", string(sigV2[:]) + "\x21\x11\x0f\xf0"} {
		var h Header
		if n, err := Parse([]byte(in), &h); n != 0 || err != ErrNeedMore {
			t.Errorf("Parse(%q) = %d, %v; want ErrNeedMore", in, n, err)
		}
	}
	for _, tc := range validHeaders {
		in := []byte(tc.in)
		n, _, _ := feed(in, len(in))
		for i := range n {
			var h Header
			if _, err := Parse(in[:i], &h); err != ErrNeedMore {
				t.Fatalf("%s: Parse(first %d bytes) = %v, want ErrNeedMore", tc.name, i, err)
			}
		}
	}
}

// TestParseOverwrites checks that Parse resets a Header used before.
func TestParseOverwrites(t *testing.T) {
	var h Header
	if _, err := Parse([]byte(validHeaders[len(validHeaders)-1].in), &h); err != nil || h.TLVs == nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte("PROXY UNKNOWN\r\n"), &h); err != nil {
		t.Fatal(err)
	}
	if h.TLVs != nil || h.Source.IsValid() || h.Destination.IsValid() || h.Version != 1 || h.Command != Proxy || h.Protocol != Unspec {
		t.Errorf("header after UNKNOWN = %+v", h)
	}
}

func TestTLVs(t *testing.T) {
	ssl := "\x07\x00\x00\x00\x00" + string(tlv(0x21, "TLSv1.3")) + string(tlv(0x22, "client.example")) +
		string(tlv(0x23, "TLS_AES_128_GCM_SHA256")) + string(tlv(0x24, "RSA-SHA256")) + string(tlv(0x25, "RSA2048")) + string(tlv(0x26, "?"))
	in := withCRC(v2(0x21, 0x11, ip4("1.2.3.4"), ip4("5.6.7.8"), port(1), port(2),
		tlv(0x04, ""), tlv(0x01, "h2"), tlv(0x02, "www.example.com"), tlv(0x05, "id-1"),
		tlv(0x20, ssl), tlv(0xea, "\x01vpce-0123"), tlv(0x01, "http/1.1")))
	var h Header
	if n, err := Parse(in, &h); n != len(in) || err != nil {
		t.Fatalf("Parse = %d, %v", n, err)
	}
	if string(h.ALPN()) != "h2" || string(h.Authority()) != "www.example.com" || string(h.UniqueID()) != "id-1" {
		t.Errorf("ALPN, Authority, UniqueID = %q, %q, %q", h.ALPN(), h.Authority(), h.UniqueID())
	}
	if v, ok := h.TLV(0xea); !ok || string(v) != "\x01vpce-0123" {
		t.Errorf("TLV(0xea) = %q, %v", v, ok)
	}
	if v, ok := h.TLV(TypeNoop); !ok || len(v) != 0 {
		t.Errorf("TLV(NOOP) = %q, %v", v, ok)
	}
	if _, ok := h.TLV(TypeNetNS); ok {
		t.Error("TLV(NETNS) found")
	}
	s, ok := h.SSL()
	want := SSL{Client: ClientSSL | ClientCertConn | ClientCertSess, Version: []byte("TLSv1.3"), CN: []byte("client.example"),
		Cipher: []byte("TLS_AES_128_GCM_SHA256"), SigAlg: []byte("RSA-SHA256"), KeyAlg: []byte("RSA2048")}
	if !ok || s.Client != want.Client || s.Verify != 0 || !bytes.Equal(s.Version, want.Version) || !bytes.Equal(s.CN, want.CN) ||
		!bytes.Equal(s.Cipher, want.Cipher) || !bytes.Equal(s.SigAlg, want.SigAlg) || !bytes.Equal(s.KeyAlg, want.KeyAlg) {
		t.Errorf("SSL() = %+v, %v", s, ok)
	}
	var types []TLVType
	for typ := range h.All() {
		types = append(types, typ)
	}
	if want := []TLVType{4, 1, 2, 5, 0x20, 0xea, 1, 3}; !bytes.Equal(tlvTypes(types), tlvTypes(want)) {
		t.Errorf("All() types = %v, want %v", types, want)
	}
	var none Header
	if _, err := Parse([]byte(maxV4Line), &none); err != nil || none.ALPN() != nil || none.TLVs != nil {
		t.Errorf("v1 header has TLVs: %v %q", err, none.TLVs)
	}
	if _, ok := none.SSL(); ok {
		t.Error("v1 header has SSL")
	}
}

func tlvTypes(ts []TLVType) []byte {
	b := make([]byte, len(ts))
	for i, t := range ts {
		b[i] = byte(t)
	}
	return b
}

func TestParseIPv6(t *testing.T) {
	for _, s := range []string{
		"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "2001:db8::1",
		"::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "fe80::", "ABCD:EF01::", "0:0:0:0:0:0:0:0",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":1::", "1:::2", "1::2::3", "12345::", "::ffff:1.2.3",
		"::ffff:1.2.3.04", "::ffff:256.1.1.1", "1:2:3:4:5:6:7:1.2.3.4", "1.2.3.4", "", ":", "1:", ":1",
		"g::", "::1.2.3.4:1", "1:2:3:4:5:6::1.2.3.4", "1::1.2.3.4.5", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
		"fe80::1%eth0", "00000::1", "0000::1", "::a.2.3.4", "1::2:", "1:2:3:4:5:6:7:8:",
	} {
		checkIPv6(t, s)
	}
}

func checkIPv6(t *testing.T, s string) {
	t.Helper()
	a, err := netip.ParseAddr(s)
	want := err == nil && a.Is6() && a.Zone() == ""
	got, ok := parseIPv6([]byte(s))
	if ok != want || ok && got != a.As16() {
		t.Errorf("parseIPv6(%q) = %v, %v; netip says %v, %v", s, got, ok, a, err)
	}
}

func TestParseIPv4(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "1.2.3.4", "255.255.255.255", "256.0.0.0", "1.2.3", "1.2.3.4.5", "01.2.3.4",
		"1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", "1234.1.1.1", "1.2.3.0004", "a.b.c.d", ""} {
		a, err := netip.ParseAddr(s)
		want := err == nil && a.Is4()
		got, ok := parseIPv4([]byte(s))
		if ok != want || ok && got != a.As4() {
			t.Errorf("parseIPv4(%q) = %v, %v; netip says %v, %v", s, got, ok, a, err)
		}
	}
}
