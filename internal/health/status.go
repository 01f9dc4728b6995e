package health

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusSet is a set of HTTP status codes 100-599, parsed from a list such
// as "200-399" or "200,204,300-302" by [ParseStatusSet]. The zero value is
// the empty set. A StatusSet is a small comparable value, safe to copy and
// to read from any goroutine.
type StatusSet struct {
	bits [8]uint64 // bit c-100 is set for code c
	text string
}

// ParseStatusSet parses a comma-separated list of status codes (200),
// inclusive ranges (200-399) and classes (2xx). Spaces around items are
// ignored. Every code must be between 100 and 599, and the list must not
// be empty.
func ParseStatusSet(s string) (StatusSet, error) {
	var set StatusSet
	items := strings.Split(s, ",")
	for i, item := range items {
		item = strings.TrimSpace(item)
		items[i] = item
		lo, hi, err := parseStatusItem(item)
		if err != nil {
			return StatusSet{}, fmt.Errorf("invalid status list %q: %w", s, err)
		}
		for c := lo; c <= hi; c++ {
			set.bits[(c-100)/64] |= 1 << ((c - 100) % 64)
		}
	}
	set.text = strings.Join(items, ",")
	return set, nil
}

func parseStatusItem(item string) (lo, hi int, err error) {
	if item == "" {
		return 0, 0, fmt.Errorf("empty item")
	}
	if len(item) == 3 && item[1:] == "xx" && item[0] >= '1' && item[0] <= '5' {
		lo = int(item[0]-'0') * 100
		return lo, lo + 99, nil
	}
	a, b, isRange := strings.Cut(item, "-")
	if lo, err = parseCode(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parseCode(b); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("range %q runs backwards", item)
		}
	}
	return lo, hi, nil
}

func parseCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	c, err := strconv.Atoi(s)
	if err != nil || c < 100 || c > 599 {
		return 0, fmt.Errorf("%q is not a status code between 100 and 599", s)
	}
	return c, nil
}

// MustParseStatusSet is like [ParseStatusSet] but panics on error; it is
// for constants.
func MustParseStatusSet(s string) StatusSet {
	set, err := ParseStatusSet(s)
	if err != nil {
		panic(err)
	}
	return set
}

// Contains reports whether code is in the set.
func (s StatusSet) Contains(code int) bool {
	if code < 100 || code > 599 {
		return false
	}
	return s.bits[(code-100)/64]&(1<<((code-100)%64)) != 0
}

// Empty reports whether the set holds no code.
func (s StatusSet) Empty() bool { return s.bits == [8]uint64{} }

// String returns the list the set was parsed from, without spaces.
func (s StatusSet) String() string { return s.text }
