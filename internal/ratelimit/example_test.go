package ratelimit_test

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/connx/connx/internal/ratelimit"
)

// The proxy's side: one Request per event loop, refilled for each request
// from the parsed head, then Decide, then either forward or write the 429.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lim, err := ratelimit.New(ratelimit.Config{
		Enabled:        true,
		RequestsPerSec: 100,
		Burst:          2,
		PerClient:      true,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Exempt:         []string{"/metrics"},
	}, nil, func() time.Time { return now })
	if err != nil {
		panic(err)
	}

	headers := [][2]string{{"Host", "api.example"}, {"X-Forwarded-For", "198.51.100.7"}}
	var r ratelimit.Request // per event loop, reused
	var out []byte          // the connection's output buffer
	for i := range 3 {
		r.Reset(netip.MustParseAddr("10.0.0.1"), []byte("/items?id=1"))
		for _, h := range headers {
			lim.Collect(&r, []byte(h[0]), []byte(h[1]))
		}
		d := lim.Decide(&r)
		if d.Allowed {
			fmt.Printf("request %d: forward, %d left\n", i, d.Remaining)
			continue
		}
		out = d.AppendTooMany(out[:0], true, false)
		fmt.Printf("request %d:\n%s", i, strings.ReplaceAll(string(out), "\r\n", "\n"))
	}
	// Output:
	// request 0: forward, 1 left
	// request 1: forward, 0 left
	// request 2:
	// HTTP/1.1 429 Too Many Requests
	// Content-Type: text/plain; charset=utf-8
	// Content-Length: 22
	// Retry-After: 1
	// RateLimit-Policy: "per-client";q=100;w=1;connx-burst=2
	// RateLimit: "per-client";r=0;t=1
	// Connection: keep-alive
	//
	// 429 Too Many Requests
}
