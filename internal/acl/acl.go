// Package acl decides by a client's address whether it may connect or
// send a request: sets of address prefixes, and allow/deny policies built
// from them. It does no I/O.
//
// Addresses are compared unmapped and without their zone: an IPv4 client
// accepted on a dual-stack socket as ::ffff:10.1.2.3 is 10.1.2.3 and
// matches 10.0.0.0/8, and fe80::1%eth0 matches fe80::/10. A prefix written
// in IPv4-mapped form (::ffff:10.0.0.0/104) is the IPv4 prefix it maps
// (10.0.0.0/8). Any other IPv6 prefix, ::/0 included, matches IPv6
// addresses only; 0.0.0.0/0 is every IPv4 address.
//
// A Set or Policy is immutable once built and safe for concurrent use;
// Contains and Allowed do not allocate.
package acl

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// ParsePrefix parses an address prefix in CIDR notation ("10.0.0.0/8",
// "2001:db8::/32") or a single address ("192.168.1.1", "::1"), which is
// the /32 or /128 that holds only it. Host bits are cleared
// ("10.1.2.3/8" is 10.0.0.0/8) and a zone is dropped. It is the parser of
// every configuration key that lists prefixes.
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseError is the error of ParseSet: the list item at Index is not a
// prefix.
type ParseError struct {
	Index int
	Value string
}

// Error implements the error interface.
func (e *ParseError) Error() string {
	return "acl: item " + strconv.Itoa(e.Index) + " is not a CIDR or an IP address: " + strconv.Quote(e.Value)
}

// Set is a set of address prefixes. The zero Set is empty and contains no
// address.
type Set struct {
	v4 []net4
	v6 []net6
}

type net4 struct{ addr, mask uint32 }

type net6 struct{ hi, lo, mhi, mlo uint64 }

// NewSet returns the set of the valid prefixes in ps (invalid ones are
// ignored). ps is not retained.
func NewSet(ps []netip.Prefix) Set {
	var s Set
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		if a.Is4() {
			m := ^uint32(0) << (32 - bits)
			if bits == 0 {
				m = 0
			}
			b := a.As4()
			s.v4 = append(s.v4, net4{binary.BigEndian.Uint32(b[:]) & m, m})
			continue
		}
		b := a.As16()
		mhi, mlo := mask64(bits), mask64(bits-64)
		s.v6 = append(s.v6, net6{binary.BigEndian.Uint64(b[:8]) & mhi, binary.BigEndian.Uint64(b[8:]) & mlo, mhi, mlo})
	}
	return s
}

// mask64 is a 64-bit mask of the n leading bits, n clamped to 0..64.
func mask64(n int) uint64 {
	switch {
	case n <= 0:
		return 0
	case n >= 64:
		return ^uint64(0)
	}
	return ^uint64(0) << (64 - n)
}

// ParseSet parses each item of list with ParsePrefix and returns their
// set, or a *ParseError for the first item that is not a prefix.
func ParseSet(list []string) (Set, error) {
	ps := make([]netip.Prefix, 0, len(list))
	for i, item := range list {
		p, err := ParsePrefix(item)
		if err != nil {
			return Set{}, &ParseError{Index: i, Value: item}
		}
		ps = append(ps, p)
	}
	return NewSet(ps), nil
}

// Len returns the number of prefixes in s.
func (s *Set) Len() int { return len(s.v4) + len(s.v6) }

// Contains reports whether a, unmapped and without its zone, is in one of
// the prefixes of s. The zero Addr is in none.
func (s *Set) Contains(a netip.Addr) bool {
	if a.Is4In6() {
		a = a.Unmap()
	}
	switch {
	case a.Is4():
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		for _, n := range s.v4 {
			if x&n.mask == n.addr {
				return true
			}
		}
	case a.Is6():
		b := a.As16()
		hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		for _, n := range s.v6 {
			if hi&n.mhi == n.hi && lo&n.mlo == n.lo {
				return true
			}
		}
	}
	return false
}

// Policy is an allow list and a deny list. An address is allowed when it
// is in no deny prefix and, if the allow list is not empty, in an allow
// prefix: deny wins, and an empty allow list allows everyone. The zero
// Policy allows every address.
type Policy struct {
	allow, deny Set
}

// NewPolicy returns the policy of the given allow and deny prefixes
// (see NewSet).
func NewPolicy(allow, deny []netip.Prefix) Policy {
	return Policy{allow: NewSet(allow), deny: NewSet(deny)}
}

// Allowed reports whether p lets a in. The zero Addr is allowed only by
// a policy with an empty allow list.
func (p *Policy) Allowed(a netip.Addr) bool {
	if p.deny.Contains(a) {
		return false
	}
	return p.allow.Len() == 0 || p.allow.Contains(a)
}

// IsZero reports whether p allows every address because both of its
// lists are empty, so that a caller can skip the check.
func (p *Policy) IsZero() bool { return p.allow.Len() == 0 && p.deny.Len() == 0 }
