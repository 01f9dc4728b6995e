package proxyproto

// parseIPv4 parses a dotted-quad address: four decimal numbers 0-255
// without leading zeros, as netip.ParseAddr and the spec want.
func parseIPv4(b []byte) (ip [4]byte, ok bool) {
	i := 0
	for k := range ip {
		if k > 0 {
			if i >= len(b) || b[i] != '.' {
				return ip, false
			}
			i++
		}
		start, v := i, 0
		for i < len(b) && i-start < 3 && '0' <= b[i] && b[i] <= '9' {
			v = v*10 + int(b[i]-'0')
			i++
		}
		if i == start || v > 255 || (b[start] == '0' && i-start > 1) {
			return ip, false
		}
		ip[k] = byte(v)
	}
	return ip, i == len(b)
}

// parseIPv6 parses an IPv6 address without a zone: groups of 1 to 4 hex
// digits, at most one "::" standing for at least one zero group, and an
// optional dotted-quad tail, as netip.ParseAddr accepts them.
func parseIPv6(s []byte) (ip [16]byte, ok bool) {
	ellipsis := -1 // index in ip where "::" stands
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return ip, true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, 0
	digits:
		for ; off < len(s); off++ {
			c := s[off]
			switch {
			case '0' <= c && c <= '9':
				acc = acc<<4 | int(c-'0')
			case 'a' <= c && c <= 'f':
				acc = acc<<4 | int(c-'a'+10)
			case 'A' <= c && c <= 'F':
				acc = acc<<4 | int(c-'A'+10)
			default:
				break digits
			}
			if off == 4 {
				return ip, false // more than 4 digits
			}
		}
		if off == 0 {
			return ip, false
		}
		if off < len(s) && s[off] == '.' {
			// A dotted-quad tail takes the last 4 bytes.
			if (ellipsis < 0 && i != 12) || i > 12 {
				return ip, false
			}
			v4, ok := parseIPv4(s)
			if !ok {
				return ip, false
			}
			copy(ip[i:], v4[:])
			i += 4
			s = nil
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return ip, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return ip, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return ip, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return ip, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return ip, false // "::" must stand for at least one group
	}
	return ip, true
}

// parsePort parses a decimal port 0-65535 without leading zeros.
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 65535 {
		return 0, false
	}
	return uint16(v), true
}
