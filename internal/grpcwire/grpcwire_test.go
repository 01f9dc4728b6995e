package grpcwire

import (
	"testing"
	"time"
)

func TestParseTimeout(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1H", time.Hour, true},
		{"2M", 2 * time.Minute, true},
		{"30S", 30 * time.Second, true},
		{"250m", 250 * time.Millisecond, true},
		{"1500u", 1500 * time.Microsecond, true},
		{"99999999n", 99999999, true},
		{"0m", 0, true},
		{"00000007S", 7 * time.Second, true},
		{"99999999H", MaxTimeout, true}, // clamped, not overflowed
		{"", 0, false},
		{"S", 0, false},
		{"10", 0, false},
		{"10s", 0, false},  // units are case-sensitive: s is not one
		{"10h", 0, false},  // nor h
		{"1.5S", 0, false}, // no fractions
		{"-1S", 0, false},
		{"+1S", 0, false},
		{" 1S", 0, false},
		{"123456789S", 0, false}, // 9 digits: at most 8
	} {
		got, ok := ParseTimeout([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]int{
		"0": 0, "4": 4, "14": 14, "16": 16, "17": 17, "007": 7,
		"": -1, "-1": -1, "1 ": -1, "x": -1, "1234567890": -1,
	} {
		if got := ParseStatus([]byte(in)); got != want {
			t.Errorf("ParseStatus(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestFromHTTPStatus(t *testing.T) {
	for code, want := range map[int]int{400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14, 500: 2, 200: 2} {
		if got := FromHTTPStatus(code); got != want {
			t.Errorf("FromHTTPStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

func TestAllocs(t *testing.T) {
	v, s := []byte("250m"), []byte("14")
	if n := testing.AllocsPerRun(100, func() {
		_, _ = ParseTimeout(v)
		_ = ParseStatus(s)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"1H", "250m", "99999999H", "x", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := ParseTimeout(b)
		if ok && d < 0 {
			t.Fatalf("%q: negative %v", b, d)
		}
		if !ok && d != 0 {
			t.Fatalf("%q: %v with false", b, d)
		}
	})
}
