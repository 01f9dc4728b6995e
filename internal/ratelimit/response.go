package ratelimit

import (
	"math"
	"strconv"
	"time"
)

// Decision is Decide's answer for one request. It is a plain value, valid
// for as long as the caller wants; its only reference is to memory owned
// by the Limiter that made it, which is never modified.
//
// The zero Decision rejects and writes no RateLimit fields; Decide always
// sets Allowed.
type Decision struct {
	// Allowed reports whether the request may pass.
	Allowed bool
	// Limit is the bucket size (Config.Burst), or 0 when no bucket was
	// consulted: the Limiter is disabled or the path is exempt.
	Limit int
	// Remaining is the whole number of tokens left after this request.
	Remaining int
	// Reset is how long until Remaining grows by one.
	Reset time.Duration
	// RetryAfter is how long until a request would be allowed, when it
	// was not; 0 when Allowed. It equals Reset when rejected.
	RetryAfter time.Duration

	pol *policy
}

// policy is the preformatted description of a Limiter's limits.
type policy struct {
	field []byte // the whole RateLimit-Policy field line
	item  []byte // `RateLimit: "<name>";r=`
}

// newPolicy formats the RateLimit-Policy field (draft-ietf-httpapi-
// ratelimit-headers-11, section 3): the sustained rate as an integer quota
// q per integer window w seconds, and the bucket size as the vendor
// parameter connx-burst.
func newPolicy(kind keyKind, rps float64, burst int) *policy {
	name := `"per-client"`
	if kind == keyGlobal {
		name = `"global"`
	}
	q, w := quotaWindow(rps)
	f := []byte("RateLimit-Policy: " + name + ";q=")
	f = strconv.AppendInt(f, q, 10)
	f = append(f, ";w="...)
	f = strconv.AppendInt(f, w, 10)
	f = append(f, ";connx-burst="...)
	f = strconv.AppendInt(f, int64(burst), 10)
	f = append(f, "\r\n"...)
	return &policy{field: f, item: []byte("RateLimit: " + name + ";r=")}
}

// quotaWindow writes rate rps (requests per second) as q requests per w
// seconds, both integers as the draft requires: exactly if some w up to an
// hour makes rps*w whole (100 -> 100/1, 0.5 -> 1/2, 7.3 -> 73/10),
// otherwise rounded down over the shortest window that holds a request
// (an irrational 0.7071... -> 1/2).
func quotaWindow(rps float64) (q, w int64) {
	for w := int64(1); w <= 3600; w++ {
		x := rps * float64(w)
		if r := math.Round(x); r >= 1 && math.Abs(x-r) <= 1e-9*x {
			return int64(r), w
		}
	}
	w = max(1, int64(math.Ceil(1/rps)))
	return max(1, int64(rps*float64(w))), w
}

// AppendHeaders appends the RateLimit-Policy and RateLimit fields for d to
// dst, each ending in CRLF, for an allowed request's response (the proxy
// may add them or not). The RateLimit field has r, the tokens left, and t,
// the seconds (rounded up) until one more arrives: within t seconds the
// client can count on no more than r requests. It appends nothing for a
// Decision with Limit 0. It does not allocate when dst has room.
func (d Decision) AppendHeaders(dst []byte) []byte {
	if d.pol == nil {
		return dst
	}
	dst = append(dst, d.pol.field...)
	dst = append(dst, d.pol.item...)
	dst = strconv.AppendInt(dst, int64(d.Remaining), 10)
	dst = append(dst, ";t="...)
	dst = strconv.AppendInt(dst, ceilSeconds(d.Reset), 10)
	return append(dst, "\r\n"...)
}

// tooManyBody is the 429 response body.
const tooManyBody = "429 Too Many Requests\n"

// AppendTooMany appends a complete 429 response for rejected decision d to
// dst: status line; Content-Type, Content-Length, Retry-After (whole
// seconds, rounded up, at least 1), the RateLimit fields (r=0 and t equal
// to Retry-After) and Connection; then a short text body, left out when
// head is set (the answer to a HEAD request keeps its Content-Length but
// has no body). keepAlive chooses "Connection: keep-alive" (the client may
// send its next request on the connection) or "Connection: close". It does
// not allocate when dst has room (about 250 bytes).
func (d Decision) AppendTooMany(dst []byte, keepAlive, head bool) []byte {
	dst = append(dst, "HTTP/1.1 429 Too Many Requests\r\n"...)
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(tooManyBody)), 10)
	dst = append(dst, "\r\nRetry-After: "...)
	secs := max(ceilSeconds(d.RetryAfter), 1)
	dst = strconv.AppendInt(dst, secs, 10)
	dst = append(dst, "\r\n"...)
	if d.pol != nil {
		dst = append(dst, d.pol.field...)
		dst = append(dst, d.pol.item...)
		dst = append(dst, "0;t="...)
		dst = strconv.AppendInt(dst, secs, 10)
		dst = append(dst, "\r\n"...)
	}
	if keepAlive {
		dst = append(dst, "Connection: keep-alive\r\n\r\n"...)
	} else {
		dst = append(dst, "Connection: close\r\n\r\n"...)
	}
	if !head {
		dst = append(dst, tooManyBody...)
	}
	return dst
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
