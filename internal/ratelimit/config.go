package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
)

// Defaults applied by New to zero fields of Config.
const (
	DefaultMaxClients = 100_000
	DefaultIdleTTL    = time.Minute
	DefaultIPv6Prefix = 64
)

// MaxRequestsPerSec is the largest accepted rate: one token per nanosecond.
const MaxRequestsPerSec = 1e9

// Config is one configuration of a Limiter. It is a plain value: New copies
// what it needs and never keeps the slices.
//
// The zero value is a disabled limiter. Zero MaxClients, IdleTTL and
// IPv6Prefix mean their defaults, and an empty Key means "client-ip".
type Config struct {
	// Enabled turns limiting on. When false every request is allowed and
	// no other field is used or checked.
	Enabled bool
	// RequestsPerSec is the refill rate in tokens per second, > 0 and at
	// most MaxRequestsPerSec; fractions are allowed (0.5 is one request
	// every two seconds).
	RequestsPerSec float64
	// Burst is the bucket size, >= 1: how many requests may arrive at once
	// after a quiet period. Burst/RequestsPerSec must be at most 1e9
	// seconds.
	Burst int
	// PerClient keeps one bucket per client key; false keeps one bucket
	// for all traffic. (The seed's rateLimit.perIP.)
	PerClient bool
	// Key says how a client is identified when PerClient is set:
	// "client-ip" (or "") is its IP address, see TrustedProxies and
	// IPv6Prefix; "header:Name" is the value of request header Name (for
	// example an API key), falling back to the IP address when the
	// header is absent or empty.
	Key string
	// TrustedProxies are the networks of proxies in front of ConnX. When
	// the TCP peer is in one of them the client address is taken from
	// X-Forwarded-For: the right-most address not in these networks.
	TrustedProxies []netip.Prefix
	// IPv6Prefix is how many leading bits of an IPv6 client address form
	// its key, 1-128; default 64, because one host usually owns a whole
	// /64 and could otherwise rotate through 2^64 fresh buckets. IPv4
	// addresses always use all 32 bits.
	IPv6Prefix int
	// MaxClients bounds the per-client table, >= 1; default 100000. When
	// it is full the least recently used client's bucket is dropped.
	MaxClients int
	// IdleTTL is how long a client's bucket must have been full (fully
	// refilled) before it is dropped, > 0; default one minute. Dropping
	// happens lazily, during later requests to the same table shard.
	IdleTTL time.Duration
	// Exempt lists request paths that are never limited nor counted
	// against a bucket: exact paths ("/metrics"), or prefixes ending in
	// "*" ("/health/*"). The query string is ignored. A prefix does not
	// match a path with "%", "\" or a "." or ".." segment, so that
	// "/health/../admin" is not exempt.
	Exempt []string
	// Store, when not nil, shares the buckets with the other ConnX
	// instances that use the same store, so that the limit holds for the
	// fleet (see Store). Decide stays local and never waits for it. Nil
	// limits this instance alone.
	Store Store
	// StoreKey keeps this Limiter's buckets apart from other Limiters'
	// in the same Store ("" for the top-level rateLimit, a route's name
	// for a route's). Limiters with the same key on different instances
	// share buckets.
	StoreKey string
}

// keyKind is how Decide turns a request into a table key.
type keyKind uint8

const (
	keyGlobal   keyKind = iota // one bucket; no key
	keyClientIP                // the client address
	keyHeader                  // a header's value, else the client address
)

// normalized returns c with defaults filled in, or the first problem found.
// It does not look at the other fields when c is disabled.
func (c Config) normalized() (Config, error) {
	if !c.Enabled {
		return Config{}, nil
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.IdleTTL == 0 {
		c.IdleTTL = DefaultIdleTTL
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.Key == "" {
		c.Key = "client-ip"
	}
	return c, c.Validate()
}

// Validate reports every problem with c, joined, naming each field as the
// configuration file does (rateLimit.burst). Zero MaxClients, IdleTTL and
// IPv6Prefix are valid (defaults), an empty Key too. Validate checks c as
// if it were enabled, so that enabling it by a reload cannot fail; New
// checks only enabled configurations.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("rateLimit.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	rps := c.RequestsPerSec
	if !(rps > 0) || rps > MaxRequestsPerSec {
		bad("requestsPerSec", "must be greater than 0 and at most %g, got %v", float64(MaxRequestsPerSec), rps)
	}
	if c.Burst < 1 {
		bad("burst", "must be at least 1, got %d", c.Burst)
	} else if rps > 0 && float64(c.Burst)/rps > 1e9 {
		bad("burst", "must be at most 1e9 seconds' worth of requests (%.0f at %v/s), got %d",
			math.Floor(1e9*rps), rps, c.Burst)
	}
	if err := CheckKey(c.Key); err != nil && c.Key != "" {
		bad("key", "%v", err)
	}
	for i, p := range c.TrustedProxies {
		if !p.IsValid() {
			bad(fmt.Sprintf("trustedProxies[%d]", i), "invalid network")
		}
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		bad("ipv6Prefix", "must be between 1 and 128, got %d", c.IPv6Prefix)
	}
	if c.MaxClients < 0 {
		bad("maxClients", "must be at least 1, got %d", c.MaxClients)
	}
	if c.IdleTTL < 0 {
		bad("idleTTL", "must be greater than 0, got %v", c.IdleTTL)
	}
	for i, e := range c.Exempt {
		if err := CheckExempt(e); err != nil {
			bad(fmt.Sprintf("exempt[%d]", i), "%v", err)
		}
	}
	return errors.Join(errs...)
}

// CheckKey reports whether s is a valid Config.Key: "client-ip" or
// "header:Name" with Name an HTTP field name (RFC 9110 section 5.1).
func CheckKey(s string) error {
	if s == "client-ip" {
		return nil
	}
	name, ok := strings.CutPrefix(s, "header:")
	if !ok {
		return fmt.Errorf(`must be "client-ip" or "header:Name", got %q`, s)
	}
	if name == "" {
		return fmt.Errorf(`"header:" needs a header name, got %q`, s)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("%q is not a valid header name", name)
		}
	}
	return nil
}

// CheckExempt reports whether s is a valid exemption: a path starting with
// "/", with no "?" and with "*" only as its last byte.
func CheckExempt(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf(`must start with "/", got %q`, s)
	}
	if strings.IndexByte(s, '?') >= 0 {
		return fmt.Errorf(`must not contain "?" (the query is ignored), got %q`, s)
	}
	if i := strings.IndexByte(s, '*'); i >= 0 && i != len(s)-1 {
		return fmt.Errorf(`"*" is allowed only at the end, got %q`, s)
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP token (tchar).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
