// Package grpcwire reads the gRPC fields a proxy acts on, as the gRPC
// over HTTP/2 protocol spells them (PROTOCOL-HTTP2.md in grpc/grpc):
// grpc-timeout and grpc-status, and the status a client makes of an HTTP
// status without one. It does no I/O and allocates nothing.
package grpcwire

import "time"

// MaxTimeout is the longest grpc-timeout ParseTimeout returns; longer
// ones (up to 99,999,999 hours) are clamped to it.
const MaxTimeout = time.Duration(1<<63 - 1)

// ParseTimeout parses a grpc-timeout value: 1 to 8 ASCII digits and a
// unit, H (hours), M (minutes), S (seconds), m (milliseconds), u
// (microseconds) or n (nanoseconds). It reports false for anything else
// (a gRPC server treats such a call as having no deadline).
func ParseTimeout(v []byte) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	var n int64
	for _, c := range v[:len(v)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if n > int64(MaxTimeout/unit) {
		return MaxTimeout, true
	}
	return time.Duration(n) * unit, true
}

// ParseStatus parses a grpc-status value, a decimal code; it returns -1
// for a value that is not one (empty, signs, other characters, more
// than 9 digits).
func ParseStatus[T string | []byte](v T) int {
	if len(v) == 0 || len(v) > 9 {
		return -1
	}
	n := 0
	for i := range len(v) {
		c := v[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Status codes 0 to MaxStatus are the ones gRPC defines (OK to
// UNAUTHENTICATED).
const MaxStatus = 16

// FromHTTPStatus is the gRPC status a client gives a response with HTTP
// status code and no grpc-status (the mapping of grpc/grpc's
// http-grpc-status-mapping.md): 400 INTERNAL, 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429, 502, 503 and 504
// UNAVAILABLE, any other UNKNOWN.
func FromHTTPStatus(code int) int {
	switch code {
	case 400:
		return 13
	case 401:
		return 16
	case 403:
		return 7
	case 404:
		return 12
	case 429, 502, 503, 504:
		return 14
	}
	return 2
}
