// Package discovery finds a pool's members in DNS: the A or AAAA records
// of a name with a fixed port, or the SRV records of a name (port and
// weight from each record). A [Watcher] resolves the name, re-resolves it
// when the answer's TTL runs out (clamped between two bounds), and hands
// the member list to a callback each time it changes.
//
// The package knows nothing of gnet, the proxy or the YAML schema: the
// proxy turns each published list into backends and builds a snapshot
// from them as a reload does. It queries the nameservers itself (with
// github.com/miekg/dns) because net.Resolver does not give TTLs.
//
// Failure policy (docs/discovery.md): a failed resolution (timeout,
// SERVFAIL, REFUSED, a network error, an unreadable answer) keeps the last
// members and retries with backoff; an answer that says the name has no
// members (NXDOMAIN, or no records of the type) keeps the last members for
// Config.EmptyGrace and then publishes the empty list. Each change of
// state is logged once.
package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Record types a Watcher can resolve.
const (
	TypeA    = "A"
	TypeAAAA = "AAAA"
	TypeSRV  = "SRV"
)

// Defaults of the Config fields, as config.Parse fills them in.
const (
	DefaultType       = TypeA
	DefaultMinTTL     = 5 * time.Second
	DefaultMaxTTL     = time.Minute
	DefaultTimeout    = 2 * time.Second
	DefaultEmptyGrace = time.Minute
	DefaultMaxMembers = 256
)

// Bounds of the Config fields.
const (
	// MinMinTTL is the smallest MinTTL: a name is never resolved more
	// often than once a second while it answers.
	MinMinTTL = time.Second
	// MaxMaxTTL is the largest MaxTTL.
	MaxMaxTTL = 24 * time.Hour
	// MaxTimeout is the largest Timeout.
	MaxTimeout = time.Minute
	// MaxMembersLimit is the largest MaxMembers.
	MaxMembersLimit = 10000
)

// Config says what a [Watcher] resolves and how. The zero value is not
// valid; start from [DefaultConfig]. A Config is a plain value: New copies
// it.
type Config struct {
	// Name is the DNS name to resolve, a host name such as
	// "api.service.consul" or "_http._tcp.api.default.svc.cluster.local";
	// it is always taken as fully qualified (no search domains), with or
	// without the final ".". Required.
	Name string
	// Type is TypeA, TypeAAAA or TypeSRV. Default TypeA.
	Type string
	// Port is the members' port for A and AAAA, 1-65535 (required); it
	// must be 0 for SRV, whose records carry the port.
	Port int
	// Resolver is the nameserver to ask, "ip" or "ip:port" (port 53 by
	// default; IPv6 in brackets when a port is given). "" (the default)
	// asks the nameservers of /etc/resolv.conf, read again at each
	// resolution, in order.
	Resolver string
	// MinTTL and MaxTTL clamp the TTL of an answer: the name is resolved
	// again MinTTL..MaxTTL after an answer. MinTTL >= 1s (default 5s);
	// MaxTTL >= MinTTL, at most 24h (default 1m).
	MinTTL, MaxTTL time.Duration
	// Timeout bounds one query to one nameserver, > 0 and at most 1m.
	// Default 2s.
	Timeout time.Duration
	// EmptyGrace is how long the last members are kept after the name
	// starts to answer with no members (NXDOMAIN, or no records), before
	// the empty list is published; 0 publishes it at once. Default 1m.
	EmptyGrace time.Duration
	// MaxMembers caps the members published, 1-10000. Default 256. A
	// larger answer is cut to a subset that stays the same from one
	// resolution to the next and differs between Watchers (so between
	// ConnX instances).
	MaxMembers int
}

// DefaultConfig returns a Config for name with every other field at its
// default. Port must still be set for A and AAAA.
func DefaultConfig(name string) Config {
	return Config{
		Name:       name,
		Type:       DefaultType,
		MinTTL:     DefaultMinTTL,
		MaxTTL:     DefaultMaxTTL,
		Timeout:    DefaultTimeout,
		EmptyGrace: DefaultEmptyGrace,
		MaxMembers: DefaultMaxMembers,
	}
}

// ConfigError is one problem with a Config. Key is the field's YAML key
// (name, type, port, resolver, minTTL, maxTTL, timeout, emptyGrace,
// maxMembers), so that the config package can report it where the file
// wrote it.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return "discovery: " + e.Key + ": " + e.Msg }

// Check returns nil when c is valid, or an errors.Join of one
// *ConfigError per problem.
func (c *Config) Check() error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if msg := checkName(c.Name); msg != "" {
		fail("name", "%s", msg)
	}
	switch c.Type {
	case TypeA, TypeAAAA:
		if c.Port < 1 || c.Port > 65535 {
			if c.Port == 0 {
				fail("port", "is required with type %s: the records carry no port", c.Type)
			} else {
				fail("port", "must be between 1 and 65535, got %d", c.Port)
			}
		}
	case TypeSRV:
		if c.Port != 0 {
			fail("port", "must not be set with type SRV: each record carries its port")
		}
	default:
		fail("type", "must be A, AAAA or SRV, got %q", c.Type)
	}
	if c.Resolver != "" {
		if _, err := resolverAddr(c.Resolver); err != nil {
			fail("resolver", "%v", err)
		}
	}
	if c.MinTTL < MinMinTTL {
		fail("minTTL", "must be at least %s, got %s", short(MinMinTTL), short(c.MinTTL))
	}
	if c.MaxTTL < c.MinTTL || c.MaxTTL > MaxMaxTTL {
		fail("maxTTL", "must be between minTTL (%s) and %s, got %s", short(c.MinTTL), short(MaxMaxTTL), short(c.MaxTTL))
	}
	if c.Timeout <= 0 || c.Timeout > MaxTimeout {
		fail("timeout", "must be greater than 0 and at most %s, got %s", short(MaxTimeout), short(c.Timeout))
	}
	if c.EmptyGrace < 0 {
		fail("emptyGrace", "must be at least 0s, got %s", short(c.EmptyGrace))
	}
	if c.MaxMembers < 1 || c.MaxMembers > MaxMembersLimit {
		fail("maxMembers", "must be between 1 and %d, got %d", MaxMembersLimit, c.MaxMembers)
	}
	return errors.Join(errs...)
}

// checkName returns "" when name is a host name to resolve.
func checkName(name string) string {
	if name == "" {
		return `is required: the DNS name to resolve, e.g. "api.service.consul"`
	}
	n := strings.TrimSuffix(name, ".")
	if _, err := netip.ParseAddr(n); err == nil {
		return fmt.Sprintf("must be a DNS name, not an address: list addresses under backends, got %q", name)
	}
	if len(n) > 253 || n == "" {
		return fmt.Sprintf("must be a DNS name of at most 253 characters, got %q", name)
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return fmt.Sprintf("must be a DNS name (labels of letters, digits, \"-\" and \"_\"), got %q", name)
		}
	}
	return ""
}

// resolverAddr turns a Resolver value into "ip:port".
func resolverAddr(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf(`must be an IP address or "ip:port", e.g. "127.0.0.1:8600", got %q`, s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf(`must be an IP address or "ip:port" (a nameserver is not looked up by name), got %q`, s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("port must be between 1 and 65535, got %q", port)
	}
	return net.JoinHostPort(a.String(), port), nil
}

// short formats d without zero minutes and seconds: "24h", "1m", "1m30s".
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
