package proxyproto

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzParse checks that Parse never panics, that it gives the same
// result however the input is split (a complete header is never refused
// for arriving in pieces), and that a header it accepts encodes back to
// one that parses to the same client and destination.
func FuzzParse(f *testing.F) {
	for _, tc := range validHeaders {
		f.Add([]byte(tc.in))
	}
	for _, tc := range invalidHeaders {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2*MaxV2Len {
			return
		}
		n, h, err := feed(data, len(data)+1)
		if err != nil {
			if n != 0 {
				t.Fatalf("Parse = %d, %v", n, err)
			}
		} else if n < 15 || n > len(data) || n > MaxV2Len {
			t.Fatalf("Parse = %d for %d bytes", n, len(data))
		}
		for _, step := range []int{1, 3, 16} {
			sn, sh, serr := feed(data, step)
			if sn != n || serr != err || !sameHeader(&sh, &h) {
				t.Fatalf("step %d: %d, %v, %+v\nwhole: %d, %v, %+v", step, sn, serr, sh, n, err, h)
			}
		}
		if err != nil {
			return
		}
		// Every proper prefix of an accepted header asks for more.
		for i := range n {
			var ph Header
			if _, perr := Parse(data[:i], &ph); perr != ErrNeedMore {
				t.Fatalf("Parse(first %d of %d header bytes) = %v", i, n, perr)
			}
		}
		c, ok := h.Client()
		if !ok {
			return
		}
		var tlvs []TLV
		for typ, v := range h.All() {
			if typ != TypeCRC32C {
				tlvs = append(tlvs, TLV{typ, v})
			}
		}
		for _, enc := range [][]byte{AppendV1(nil, h.Source, h.Destination), AppendV2(nil, h.Source, h.Destination, tlvs...)} {
			var h2 Header
			if n2, err2 := Parse(enc, &h2); n2 != len(enc) || err2 != nil {
				t.Fatalf("re-encoded %q: Parse = %d, %v", enc, n2, err2)
			}
			c2, ok2 := h2.Client()
			if !ok2 || c2 != c || h2.Destination.Addr().Unmap() != h.Destination.Addr().Unmap() || h2.Destination.Port() != h.Destination.Port() {
				t.Fatalf("re-encoded %q: %+v, want client %v from %+v", enc, h2, c, h)
			}
		}
	})
}

func sameHeader(a, b *Header) bool {
	return a.Version == b.Version && a.Command == b.Command && a.Protocol == b.Protocol &&
		a.Source == b.Source && a.Destination == b.Destination && bytes.Equal(a.TLVs, b.TLVs)
}

// FuzzRoundTrip checks that any pair of addresses, and any TLVs, encoded
// by AppendV1 and AppendV2 parse back unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add(netip.MustParseAddr("1.2.3.4").AsSlice(), netip.MustParseAddr("::1").AsSlice(), uint16(1), uint16(2), []byte("\x01\x00\x02h2"))
	f.Add(netip.MustParseAddr("::ffff:1.2.3.4").AsSlice(), netip.MustParseAddr("5.6.7.8").AsSlice(), uint16(0), uint16(65535), []byte(nil))
	f.Fuzz(func(t *testing.T, s, d []byte, sp, dp uint16, raw []byte) {
		sa, ok1 := netip.AddrFromSlice(s)
		da, ok2 := netip.AddrFromSlice(d)
		if !ok1 || !ok2 || len(raw) > 2048 {
			return
		}
		// raw is cut into TLVs: a type, a length byte, that many bytes.
		var tlvs []TLV
		for len(raw) >= 2 {
			l := min(int(raw[1]), len(raw)-2)
			typ := TLVType(raw[0])
			switch typ {
			case TypeCRC32C, TypeSSL:
				typ = TypeNoop
			case TypeUniqueID:
				l = min(l, MaxUniqueID)
			}
			tlvs = append(tlvs, TLV{typ, raw[2 : 2+l]})
			raw = raw[2+l:]
		}
		roundTrip(t, netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp), tlvs)
	})
}

// FuzzIPv6 checks the IPv6 parser against netip.ParseAddr.
func FuzzIPv6(f *testing.F) {
	for _, s := range []string{"::1", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1::2::3", "1:2:3:4:5:6:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkIPv6(t, s)
		a, err := netip.ParseAddr(s)
		got, ok := parseIPv4([]byte(s))
		if want := err == nil && a.Is4(); ok != want || ok && got != a.As4() {
			t.Errorf("parseIPv4(%q) = %v, %v; netip says %v, %v", s, got, ok, a, err)
		}
	})
}
