package ratelimit

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func lines(ss ...string) [][]byte {
	var bs [][]byte
	for _, s := range ss {
		bs = append(bs, []byte(s))
	}
	return bs
}

func TestClientAddr(t *testing.T) {
	trusted := prefixes("10.0.0.0/8", "2001:db8:ffff::/48")
	tests := []struct {
		name    string
		peer    string
		xff     [][]byte
		trusted []netip.Prefix
		want    string
	}{
		{"no trusted proxies: the peer", "203.0.113.7", lines("198.51.100.1"), nil, "203.0.113.7"},
		{"spoofed header from an untrusted peer is ignored", "203.0.113.7", lines("198.51.100.1"), trusted, "203.0.113.7"},
		{"trusted peer, one hop", "10.0.0.1", lines("198.51.100.1"), trusted, "198.51.100.1"},
		{"trusted peer without the header", "10.0.0.1", nil, trusted, "10.0.0.1"},
		{"client-written entries left of the first untrusted are ignored",
			"10.0.0.1", lines("1.1.1.1, 198.51.100.1, 10.9.9.9"), trusted, "198.51.100.1"},
		{"several header lines read as one list, last line last",
			"10.0.0.1", lines("1.1.1.1, 198.51.100.1", "10.1.1.1", "10.2.2.2"), trusted, "198.51.100.1"},
		{"right-most untrusted is in the last line",
			"10.0.0.1", lines("1.1.1.1", "198.51.100.9"), trusted, "198.51.100.9"},
		{"all entries trusted: the left-most", "10.0.0.1", lines("10.3.3.3, 10.2.2.2"), trusted, "10.3.3.3"},
		{"malformed entry: the last trusted address reached",
			"10.0.0.1", lines("198.51.100.1, unknown, 10.2.2.2"), trusted, "10.2.2.2"},
		{"malformed right-most entry: the peer", "10.0.0.1", lines("198.51.100.1, 1.2.3"), trusted, "10.0.0.1"},
		{"obfuscated identifier: the peer", "10.0.0.1", lines("_hidden"), trusted, "10.0.0.1"},
		{"zone is malformed", "10.0.0.1", lines("fe80::1%eth0"), trusted, "10.0.0.1"},
		{"empty elements and whitespace", "10.0.0.1", lines(" 198.51.100.1 ,\t, ", ""), trusted, "198.51.100.1"},
		{"IPv6 entries", "2001:db8:ffff::1", lines("2001:db8:1::5, 2001:db8:ffff::2"), trusted, "2001:db8:1::5"},
		{"IPv4 with port", "10.0.0.1", lines("198.51.100.1:4711"), trusted, "198.51.100.1"},
		{"bracketed IPv6 with port", "10.0.0.1", lines("[2001:db8:1::5]:443"), trusted, "2001:db8:1::5"},
		{"bracketed IPv6 without port", "10.0.0.1", lines("[2001:db8:1::5]"), trusted, "2001:db8:1::5"},
		{"bad port", "10.0.0.1", lines("198.51.100.1:http"), trusted, "10.0.0.1"},
		{"bracketed IPv4 is malformed", "10.0.0.1", lines("[198.51.100.1]"), trusted, "10.0.0.1"},
		{"IPv4-mapped peer matches an IPv4 network", "::ffff:10.0.0.1", lines("198.51.100.1"), trusted, "198.51.100.1"},
		{"IPv4-mapped entry is unmapped", "10.0.0.1", lines("::ffff:198.51.100.1"), trusted, "198.51.100.1"},
		{"IPv4-mapped trusted entry", "10.0.0.1", lines("198.51.100.1, ::ffff:10.2.2.2"), trusted, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clientAddr(netip.MustParseAddr(tt.peer), tt.xff, tt.trusted)
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddrKey(t *testing.T) {
	tests := []struct {
		name   string
		a, b   string
		bits   int
		sameOK bool
	}{
		{"IPv4 uses all 32 bits", "192.0.2.1", "192.0.2.2", 64, false},
		{"IPv6 in the same /64 share a key", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 64, true},
		{"IPv6 in other /64s do not", "2001:db8:1:2::1", "2001:db8:1:3::1", 64, false},
		{"/128 keeps whole addresses", "2001:db8::1", "2001:db8::2", 128, false},
		{"/60 groups 16 /64s", "2001:db8:0:10::1", "2001:db8:0:1f::1", 60, true},
		{"/60 boundary", "2001:db8:0:10::1", "2001:db8:0:20::1", 60, false},
		{"/1", "2001::1", "7fff::1", 1, true},
		{"IPv4 never equals an IPv6 key", "0.0.0.1", "::1", 128, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := addrKey(netip.MustParseAddr(tt.a), tt.bits)
			b := addrKey(netip.MustParseAddr(tt.b), tt.bits)
			if (a == b) != tt.sameOK {
				t.Errorf("keys %x and %x: same = %v, want %v", a, b, a == b, tt.sameOK)
			}
		})
	}
	if k := addrKey(netip.Addr{}, 64); k != (key{}) {
		t.Errorf("no peer: key %x, want zero", k)
	}
}

func TestHeaderKey(t *testing.T) {
	s := testSeeds()
	a := headerKey([]byte("key-a"), s[0], s[1])
	b := headerKey([]byte("key-b"), s[0], s[1])
	if a == b {
		t.Error("distinct values share a key")
	}
	if a != headerKey([]byte("key-a"), s[0], s[1]) {
		t.Error("same value, different key")
	}
	if a[0] != 0xff {
		t.Errorf("header key %x does not start with 0xff", a)
	}
}

func TestParseAddrAllocs(t *testing.T) {
	inputs := lines("192.0.2.1", "2001:db8::1", "::ffff:1.2.3.4", "garbage", "1.2.3", "fe80::1%eth0", "[::1]:80")
	if n := testing.AllocsPerRun(100, func() {
		for _, in := range inputs {
			parseHop(in)
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzParseAddr checks that parseAddr agrees with netip.ParseAddr on every
// input without a zone, and rejects every input with one.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3",
		"::", "::1", "1::", "2001:db8::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::",
		"::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4", "12345::", "0001:2::",
		"fe80::1%eth0", ":::", "1:::2", "1::2::3", ":1", "1:", "", ".", ":",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseAddr([]byte(s))
		if strings.IndexByte(s, '%') >= 0 {
			if ok {
				t.Fatalf("parseAddr(%q) accepted a zone: %v", s, got)
			}
			return
		}
		want, err := netip.ParseAddr(s)
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("parseAddr(%q) = %v, %v; netip.ParseAddr = %v, %v", s, got, ok, want, err)
		}
	})
}

// FuzzClientAddr checks that no X-Forwarded-For content makes clientAddr
// panic or return an address from an untrusted peer's header.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1", "198.51.100.1, 10.2.2.2")
	f.Add("203.0.113.9", "1.1.1.1")
	f.Add("10.0.0.1", "[::1]:80,,unknown")
	trusted := prefixes("10.0.0.0/8")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := clientAddr(p, bytes.Split([]byte(xff), []byte("\n")), trusted)
		if !isTrusted(p.Unmap(), trusted) && got != p.Unmap() {
			t.Fatalf("untrusted peer %v keyed as %v", p, got)
		}
		// A zone can only be the peer's own (link-local); addrKey drops it.
		if got.Is4In6() || (got.Zone() != "" && got != p.Unmap()) {
			t.Fatalf("key address %v not normalized", got)
		}
	})
}
