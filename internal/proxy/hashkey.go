package proxy

import (
	"bytes"
	"strings"

	"github.com/connx/connx/internal/balancer"
	"github.com/connx/connx/internal/http1"
)

// hashKey says what consistent-hash hashes (loadBalancing.hashKey).
type hashKey struct {
	kind byte   // 'i' client IP, 'p' path, 'h' header, 'c' cookie
	name string // header or cookie name
}

func parseHashKey(s string) hashKey {
	switch {
	case s == "path":
		return hashKey{kind: 'p'}
	case strings.HasPrefix(s, "header:"):
		return hashKey{kind: 'h', name: s[len("header:"):]}
	case strings.HasPrefix(s, "cookie:"):
		return hashKey{kind: 'c', name: s[len("cookie:"):]}
	}
	return hashKey{kind: 'i'}
}

// requestHash returns the 64-bit key for consistent-hash, or 0 when the
// policy does not use one. A request without the configured header or
// cookie hashes like one with an empty value.
func (pl *pool) requestHash(cl *client, r *http1.Request) uint64 {
	if !pl.hashed {
		return 0
	}
	switch pl.hashKey.kind {
	case 'p':
		return balancer.HashBytes(pathOnly(r.Path))
	case 'h':
		for i := range r.Headers {
			if h := &r.Headers[i]; http1.EqualFold(h.Name, pl.hashKey.name) {
				return balancer.HashBytes(h.Value)
			}
		}
		return balancer.HashBytes(nil)
	case 'c':
		return balancer.HashBytes(cookieValue(r, pl.hashKey.name))
	}
	a := cl.ip.As16()
	return balancer.HashBytes(a[:])
}

// cookieValue returns the value of cookie name in r's Cookie headers, or
// nil.
func cookieValue(r *http1.Request, name string) []byte {
	for i := range r.Headers {
		h := &r.Headers[i]
		if !http1.EqualFold(h.Name, "Cookie") {
			continue
		}
		for v := h.Value; len(v) > 0; {
			var pair []byte
			pair, v, _ = bytes.Cut(v, []byte(";"))
			pair = bytes.TrimSpace(pair)
			if k, val, ok := bytes.Cut(pair, []byte("=")); ok && string(k) == name {
				return val
			}
		}
	}
	return nil
}
