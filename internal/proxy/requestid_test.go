package proxy

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestRequestIDHex checks the eight-at-a-time hex digits against
// strconv, over the values where the SWAR steps could go wrong (every
// nibble value in every position) and random ones.
func TestRequestIDHex(t *testing.T) {
	check := func(v uint32) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], hex8(v))
		want := strconv.FormatUint(uint64(v), 16)
		want = strings.Repeat("0", 8-len(want)) + want
		if string(b[:]) != want {
			t.Fatalf("hex8(%#x) = %q, want %q", v, b[:], want)
		}
	}
	for pos := 0; pos < 8; pos++ {
		for d := uint32(0); d < 16; d++ {
			check(d << (4 * pos))
			check(d<<(4*pos) | 0x9a9a9a9a&^(0xf<<(4*pos)))
		}
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		check(rnd.Uint32())
	}
	r := ridSource{x: 42}
	id := string(r.appendNew(nil))
	r = ridSource{x: 42}
	want := ""
	for _, v := range []uint64{r.next(), r.next()} {
		s := strconv.FormatUint(v, 16)
		want += strings.Repeat("0", 16-len(s)) + s
	}
	if id != want {
		t.Fatalf("appendNew = %q, want %q", id, want)
	}
}
