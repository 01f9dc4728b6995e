package balancer

import (
	"math/bits"
	"strings"
	"testing"
)

func TestHash(t *testing.T) {
	// XXH64 (seed 0) reference values; inputs under 32 bytes match it.
	vectors := []struct {
		in   string
		want uint64
	}{
		{"", 0xEF46DB3751D8E999},
		{"a", 0xD24EC4F1A98C6E5B},
		{"abc", 0x44BC2CF5AD770999},
	}
	for _, v := range vectors {
		if got := HashString(v.in); got != v.want {
			t.Errorf("HashString(%q) = %#x, want %#x", v.in, got, v.want)
		}
	}
	for n := range 80 {
		s := strings.Repeat("0123456789abcdef", 5)[:n]
		if HashBytes([]byte(s)) != HashString(s) {
			t.Fatalf("HashBytes and HashString differ at length %d", n)
		}
	}
	// Avalanche: flipping one input bit flips about half the output bits.
	in := []byte("GET /api/v1/users/12345 HTTP/1.1 x-session=abcdef")
	var flips, trials int
	h0 := HashBytes(in)
	for i := range in {
		for b := range 8 {
			in[i] ^= 1 << b
			flips += bits.OnesCount64(HashBytes(in) ^ h0)
			trials++
			in[i] ^= 1 << b
		}
	}
	if avg := float64(flips) / float64(trials); avg < 30 || avg > 34 {
		t.Errorf("one-bit change flips %.1f of 64 output bits on average", avg)
	}
	if a := testing.AllocsPerRun(100, func() { HashBytes(in); HashString("10.1.2.3") }); a != 0 {
		t.Errorf("hashing allocates %v", a)
	}
}
