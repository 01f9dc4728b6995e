package acl

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.168.1.1", "192.168.1.1/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::1", "::1/128"},
		{"fe80::1%eth0", "fe80::1/128"},
		{"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"},
		{"nope", ""}, {"10.0.0.0/33", ""}, {"", ""}, {" 10.0.0.1", ""}, {"10.0.0.01", ""}, {"fe80::/10%eth0", ""},
	}
	for _, tc := range tests {
		p, err := ParsePrefix(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParsePrefix(%q) = %v, want an error", tc.in, p)
			}
			continue
		}
		if err != nil || p != netip.MustParsePrefix(tc.want) {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
}

func TestParseSet(t *testing.T) {
	s, err := ParseSet([]string{"10.0.0.0/8", "2001:db8::1"})
	if err != nil || s.Len() != 2 || !s.Contains(netip.MustParseAddr("10.9.9.9")) || !s.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Fatalf("ParseSet = %+v, %v", s, err)
	}
	_, err = ParseSet([]string{"10.0.0.0/8", "nope"})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Index != 1 || pe.Value != "nope" || err.Error() != `acl: item 1 is not a CIDR or an IP address: "nope"` {
		t.Errorf("ParseSet error = %v", err)
	}
}

func set(ss ...string) Set {
	s, err := ParseSet(ss)
	if err != nil {
		panic(err)
	}
	return s
}

func TestContains(t *testing.T) {
	tests := []struct {
		set  []string
		addr string
		want bool
	}{
		{[]string{"10.0.0.0/8"}, "10.255.0.1", true},
		{[]string{"10.0.0.0/8"}, "11.0.0.1", false},
		{[]string{"10.0.0.0/8"}, "::ffff:10.1.2.3", true}, // dual-stack socket
		{[]string{"192.168.1.1"}, "192.168.1.1", true},
		{[]string{"192.168.1.1"}, "192.168.1.2", false},
		{[]string{"0.0.0.0/0"}, "203.0.113.9", true},
		{[]string{"0.0.0.0/0"}, "2001:db8::1", false},
		{[]string{"::/0"}, "2001:db8::1", true},
		{[]string{"::/0"}, "203.0.113.9", false},
		{[]string{"::/0"}, "::ffff:203.0.113.9", false},
		{[]string{"::ffff:10.0.0.0/104"}, "10.1.2.3", true}, // mapped prefix is IPv4
		{[]string{"::ffff:10.0.0.0/104"}, "11.1.2.3", false},
		{[]string{"::ffff:0:0/96"}, "1.2.3.4", true},
		{[]string{"2001:db8::/32"}, "2001:db8:ffff::1", true},
		{[]string{"2001:db8::/32"}, "2001:db9::1", false},
		{[]string{"2001:db8::/127"}, "2001:db8::1", true},
		{[]string{"2001:db8::/127"}, "2001:db8::2", false},
		{[]string{"2001:db8:0:0:8000::/65"}, "2001:db8::8000:0:0:1", true},
		{[]string{"2001:db8:0:0:8000::/65"}, "2001:db8::7fff:0:0:1", false},
		{[]string{"fe80::/10"}, "fe80::1%eth0", true},
		{[]string{"::1"}, "::1", true},
		{[]string{"::1"}, "127.0.0.1", false},
		{[]string{"10.0.0.0/8", "::1"}, "", false},
		{nil, "10.0.0.1", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.set, tc.addr), func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			s := set(tc.set...)
			if got := s.Contains(a); got != tc.want {
				t.Errorf("Contains = %v, want %v", got, tc.want)
			}
			if got := reference(tc.set, a); got != tc.want {
				t.Errorf("reference = %v, want %v (test is wrong)", got, tc.want)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	p := func(allow, deny []string) Policy {
		return Policy{allow: set(allow...), deny: set(deny...)}
	}
	tests := []struct {
		name        string
		allow, deny []string
		addr        string
		want        bool
	}{
		{"zero policy allows all", nil, nil, "203.0.113.1", true},
		{"empty allow is everyone", nil, []string{"10.0.0.0/8"}, "203.0.113.1", true},
		{"deny", nil, []string{"10.0.0.0/8"}, "10.0.0.1", false},
		{"allow hit", []string{"10.0.0.0/8"}, nil, "10.0.0.1", true},
		{"allow miss", []string{"10.0.0.0/8"}, nil, "11.0.0.1", false},
		{"deny wins over allow", []string{"10.0.0.0/8"}, []string{"10.0.0.0/24"}, "10.0.0.7", false},
		{"allow outside the deny", []string{"10.0.0.0/8"}, []string{"10.0.0.0/24"}, "10.0.1.7", true},
		{"deny wins when same", []string{"192.168.1.1"}, []string{"192.168.1.1"}, "192.168.1.1", false},
		{"mapped client allowed", []string{"10.0.0.0/8"}, nil, "::ffff:10.0.0.1", true},
		{"mapped client denied", nil, []string{"10.0.0.0/8"}, "::ffff:10.0.0.1", false},
		{"IPv6 allow", []string{"2001:db8::/32"}, nil, "2001:db8::5", true},
		{"IPv4 client with IPv6-only allow", []string{"2001:db8::/32"}, nil, "10.0.0.1", false},
		{"zero addr with allow list", []string{"0.0.0.0/0"}, nil, "", false},
		{"zero addr without allow list", nil, []string{"0.0.0.0/0"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			pol := p(tc.allow, tc.deny)
			if got := pol.Allowed(a); got != tc.want {
				t.Errorf("Allowed(%v) = %v, want %v", a, got, tc.want)
			}
			pp := NewPolicy(prefixes(tc.allow), prefixes(tc.deny))
			if got := pp.Allowed(a); got != tc.want {
				t.Errorf("NewPolicy: Allowed(%v) = %v, want %v", a, got, tc.want)
			}
			if pol.IsZero() != (len(tc.allow)+len(tc.deny) == 0) {
				t.Errorf("IsZero = %v", pol.IsZero())
			}
		})
	}
}

func prefixes(ss []string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		p, _ := ParsePrefix(s)
		ps = append(ps, p)
	}
	return ps
}

// reference is Contains written plainly with netip.Prefix.Contains.
func reference(list []string, a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			continue
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// FuzzContains checks Set.Contains against the reference with netip.
func FuzzContains(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0}, uint8(8), []byte{10, 1, 2, 3})
	f.Add(netip.MustParseAddr("::ffff:10.0.0.0").AsSlice(), uint8(104), []byte{10, 1, 2, 3})
	f.Add(netip.MustParseAddr("2001:db8::").AsSlice(), uint8(33), netip.MustParseAddr("2001:db8:8000::1").AsSlice())
	f.Fuzz(func(t *testing.T, pb []byte, bits uint8, ab []byte) {
		pa, ok1 := netip.AddrFromSlice(pb)
		a, ok2 := netip.AddrFromSlice(ab)
		if !ok1 || !ok2 || int(bits) > pa.BitLen() {
			return
		}
		p := netip.PrefixFrom(pa, int(bits)).Masked()
		s := NewSet([]netip.Prefix{p})
		if got, want := s.Contains(a), reference([]string{p.String()}, a); got != want {
			t.Errorf("%v contains %v = %v, reference %v", p, a, got, want)
		}
	})
}

func TestAllocs(t *testing.T) {
	pol := NewPolicy(prefixes([]string{"10.0.0.0/8", "2001:db8::/32"}), prefixes([]string{"10.0.0.0/24"}))
	addrs := []netip.Addr{netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0")}
	if a := testing.AllocsPerRun(100, func() {
		for _, a := range addrs {
			pol.Allowed(a)
		}
	}); a != 0 {
		t.Errorf("%v allocs per run, want 0", a)
	}
}
