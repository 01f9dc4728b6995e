package ratelimit

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// rejected returns a rejection from a fresh limiter with cfg.
func rejected(t *testing.T, cfg Config, wait time.Duration) Decision {
	t.Helper()
	c := &clock{}
	l := newLimiter(t, cfg, nil, c)
	r := req("192.0.2.1", "/")
	drain(l, r)
	d := l.Decide(r)
	if d.Allowed || d.RetryAfter != wait {
		t.Fatalf("setup: %+v, want a rejection with RetryAfter %v", d, wait)
	}
	return d
}

func TestAppendTooMany(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Config
		wait         time.Duration
		keepAlive    bool
		head         bool
		retryAfter   string
		policy, rate string
	}{
		{"global keep-alive", global(100, 100), 10 * time.Millisecond, true, false,
			"1", `"global";q=100;w=1;connx-burst=100`, `"global";r=0;t=1`},
		{"per-client close", perClient(100, 200), 10 * time.Millisecond, false, false,
			"1", `"per-client";q=100;w=1;connx-burst=200`, `"per-client";r=0;t=1`},
		{"slow rate rounds Retry-After up", perClient(0.4, 1), 2500 * time.Millisecond, true, false,
			"3", `"per-client";q=2;w=5;connx-burst=1`, `"per-client";r=0;t=3`},
		{"HEAD has no body", global(1, 1), time.Second, true, true,
			"1", `"global";q=1;w=1;connx-burst=1`, `"global";r=0;t=1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := rejected(t, tt.cfg, tt.wait)
			prefix := []byte("leading bytes")
			b := d.AppendTooMany(bytes.Clone(prefix), tt.keepAlive, tt.head)
			if !bytes.HasPrefix(b, prefix) {
				t.Fatal("dst was overwritten")
			}
			// Two responses back to back prove the framing: the reader
			// must find the second exactly where the first ends.
			stream := append(bytes.Clone(b[len(prefix):]), b[len(prefix):]...)
			br := bufio.NewReader(bytes.NewReader(stream))
			method := http.MethodGet
			if tt.head {
				method = http.MethodHead
			}
			for i := range 2 {
				resp, err := http.ReadResponse(br, &http.Request{Method: method})
				if err != nil {
					t.Fatalf("response %d: %v\n%s", i, err, stream)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				checks := []struct{ name, got, want string }{
					{"status", resp.Status, "429 Too Many Requests"},
					{"Content-Type", resp.Header.Get("Content-Type"), "text/plain; charset=utf-8"},
					{"Content-Length", resp.Header.Get("Content-Length"), strconv.Itoa(len(tooManyBody))},
					{"Retry-After", resp.Header.Get("Retry-After"), tt.retryAfter},
					{"RateLimit-Policy", resp.Header.Get("RateLimit-Policy"), tt.policy},
					{"RateLimit", resp.Header.Get("RateLimit"), tt.rate},
					{"close", fmt.Sprint(resp.Close), fmt.Sprint(!tt.keepAlive)},
				}
				if !tt.head {
					checks = append(checks, struct{ name, got, want string }{"body", string(body), tooManyBody})
				} else if len(body) != 0 {
					t.Errorf("HEAD response has a body %q", body)
				}
				for _, c := range checks {
					if c.got != c.want {
						t.Errorf("response %d: %s = %q, want %q", i, c.name, c.got, c.want)
					}
				}
			}
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Errorf("%d bytes left after two responses: %q", len(rest), rest)
			}
		})
	}
}

func TestAppendTooManyAllocs(t *testing.T) {
	d := rejected(t, perClient(100, 200), 10*time.Millisecond)
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() {
		buf = d.AppendTooMany(buf[:0], true, false)
		buf = d.AppendHeaders(buf)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	if n := len(d.AppendTooMany(nil, false, false)); n > 256 {
		t.Errorf("the 429 is %d bytes; the doc promises about 250", n)
	}
}

func TestAppendHeaders(t *testing.T) {
	c := &clock{}
	l := newLimiter(t, perClient(2, 10), nil, c)
	r := req("192.0.2.1", "/")
	tests := []struct {
		advance time.Duration
		want    string
	}{
		{0, "RateLimit-Policy: \"per-client\";q=2;w=1;connx-burst=10\r\nRateLimit: \"per-client\";r=9;t=1\r\n"},
		{0, "RateLimit-Policy: \"per-client\";q=2;w=1;connx-burst=10\r\nRateLimit: \"per-client\";r=8;t=1\r\n"},
		{200 * time.Millisecond, "RateLimit-Policy: \"per-client\";q=2;w=1;connx-burst=10\r\nRateLimit: \"per-client\";r=7;t=1\r\n"},
	}
	for i, tt := range tests {
		c.advance(tt.advance)
		if got := string(l.Decide(r).AppendHeaders(nil)); got != tt.want {
			t.Errorf("request %d:\n%q\nwant\n%q", i, got, tt.want)
		}
	}
	if got := (Decision{Allowed: true}).AppendHeaders([]byte("x")); string(got) != "x" {
		t.Errorf("no-limit decision appended %q", got)
	}
}

func TestQuotaWindow(t *testing.T) {
	tests := []struct {
		rps  float64
		q, w int64
	}{
		{100, 100, 1}, {1, 1, 1}, {0.5, 1, 2}, {2.5, 5, 2}, {0.4, 2, 5}, {1.0 / 3, 1, 3},
		{7.3, 73, 10}, {1e9, 1e9, 1}, {1.0 / 86400, 1, 86400}, {1e-6, 1, 1e6}, {0.7071067811865476, 1, 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rps), func(t *testing.T) {
			if q, w := quotaWindow(tt.rps); q != tt.q || w != tt.w {
				t.Errorf("quotaWindow(%v) = q=%d w=%d, want q=%d w=%d", tt.rps, q, w, tt.q, tt.w)
			}
		})
	}
}
