package proxy

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/connx/connx/internal/http1"
)

// failure classifies why an exchange could not produce a backend response.
// statusFor maps each to the status the client sees, in one place.
type failure uint8

const (
	failNoBackend     failure = iota + 1 // nothing available to pick
	failConnect                          // dial failed or timed out
	failUpstreamReset                    // connection died before any response byte
	failTimeout                          // response head did not arrive in time
	failBadResponse                      // backend sent a malformed response
	failUpstreamIdle                     // response body stalled
	failLocal                            // dial failed for lack of local resources (descriptors, ports)
	failUnsupported                      // a well-formed response ConnX cannot pass on (a transfer coding)
	failEarlySwitch                      // 101 to an upgrade whose client had not sent all of its body
)

func (f failure) String() string {
	switch f {
	case failNoBackend:
		return "no_backend"
	case failConnect:
		return "connect"
	case failUpstreamReset:
		return "upstream_reset"
	case failTimeout:
		return "timeout"
	case failBadResponse:
		return "bad_response"
	case failUpstreamIdle:
		return "upstream_read_timeout"
	case failLocal:
		return "local_resources"
	case failUnsupported:
		return "unsupported_response"
	case failEarlySwitch:
		return "early_switch"
	}
	return "unknown"
}

// statusFor is the only place that decides which status a failure becomes.
func statusFor(f failure) int {
	switch f {
	case failNoBackend, failLocal:
		return http.StatusServiceUnavailable
	case failTimeout:
		return http.StatusGatewayTimeout
	case failEarlySwitch:
		return http.StatusBadRequest
	default:
		return http.StatusBadGateway
	}
}

// statusOfParseError maps a request parse error to the status to answer.
func statusOfParseError(err error) int {
	var pe *http1.Error
	if errors.As(err, &pe) && pe.Status != 0 {
		return pe.Status
	}
	return http.StatusBadRequest
}

// canned holds the complete error responses, built once. Every one closes
// the connection: after an error ConnX does not trust the framing that
// follows.
var canned = func() map[int][]byte {
	m := make(map[int][]byte)
	for _, code := range []int{400, 403, 404, 405, 408, 413, 414, 417, 429, 431, 500, 501, 502, 503, 504, 505} {
		m[code] = buildCanned(code)
	}
	return m
}()

func buildCanned(code int) []byte {
	text := strconv.Itoa(code) + " " + http.StatusText(code)
	body := text + "\n"
	b := []byte("HTTP/1.1 " + text + "\r\n")
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\n"...)
	b = append(b, "Content-Length: "+strconv.Itoa(len(body))+"\r\n"...)
	if code == http.StatusServiceUnavailable {
		b = append(b, "Retry-After: 1\r\n"...)
	}
	b = append(b, "Connection: close\r\n\r\n"...)
	return append(b, body...)
}

// errorResponse returns the full response bytes for status code.
func errorResponse(code int) []byte {
	if b, ok := canned[code]; ok {
		return b
	}
	return canned[http.StatusInternalServerError]
}
