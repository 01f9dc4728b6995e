package acl

import (
	"fmt"
	"net/netip"
	"testing"
)

func BenchmarkAllowed(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		var allow []netip.Prefix
		for i := range n {
			allow = append(allow, netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i)))
		}
		pol := NewPolicy(allow, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")})
		for _, a := range []string{"10.0.0.1", "203.0.113.1", "2001:db8::1"} {
			addr := netip.MustParseAddr(a)
			b.Run(fmt.Sprintf("%d/%s", n, a), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					pol.Allowed(addr)
				}
			})
		}
	}
}
