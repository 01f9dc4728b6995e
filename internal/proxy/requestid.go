package proxy

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"

	"github.com/connx/connx/internal/http1"
)

// Request IDs (requestId in the config). Each forwarded request carries
// one in the configured field: the client's own value when it is a
// plausible ID, otherwise a new random one. The backend gets it, the
// client gets it back with the response (unless the backend's response
// has the field already) and the access log records it. The ID is
// written into the forwarded head, which the client keeps until the
// response head arrives; the client records where (ridOff, ridEnd), so
// an idle connection holds nothing for it.

// ridMax is the longest client-supplied ID kept.
const ridMax = 64

// validRequestID reports whether v may be passed on as a request ID: 1 to
// ridMax letters, digits or "-_.:+/=" (nothing that could split a log
// line or a header).
func validRequestID(v []byte) bool {
	if len(v) == 0 || len(v) > ridMax {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return true
}

// ridSource makes random IDs on one loop: 128 bits of a SplitMix64
// stream seeded from crypto/rand, written as 32 hex digits. IDs need to
// be unique, not secret.
type ridSource struct{ x uint64 }

func newRIDSource() ridSource {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return ridSource{x: binary.LittleEndian.Uint64(b[:])}
}

func (r *ridSource) next() uint64 {
	r.x += 0x9e3779b97f4a7c15
	z := r.x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// appendNew appends a new ID to b: 32 hex digits, eight at a time.
func (r *ridSource) appendNew(b []byte) []byte {
	var id [32]byte
	hi, lo := r.next(), r.next()
	binary.LittleEndian.PutUint64(id[0:], hex8(uint32(hi>>32)))
	binary.LittleEndian.PutUint64(id[8:], hex8(uint32(hi)))
	binary.LittleEndian.PutUint64(id[16:], hex8(uint32(lo>>32)))
	binary.LittleEndian.PutUint64(id[24:], hex8(uint32(lo)))
	return append(b, id[:]...)
}

// hex8 returns v as eight lower-case hex digits, the first in the low
// byte (for a little-endian store): each nibble is spread into a byte of
// its own, then 0-9 become '0'-'9' and 10-15 'a'-'f' in all bytes at once.
func hex8(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f                           // nibble i in byte i
	x = bits.ReverseBytes64(x)                                    // the most significant first
	letters := (x + 0x0606060606060606) >> 4 & 0x0101010101010101 // 1 where >= 10
	return x + 0x3030303030303030 + letters*('a'-'0'-10)
}

// appendRequestID appends the request-ID field to the forwarded head b:
// the client's value in, if valid, else a new one. It records where the
// value is in cl.head (b is cl.head from its start).
func appendRequestID(b []byte, cl *client, sn *snapshot, in []byte) []byte {
	b = append(b, sn.ridHeader...)
	b = append(b, ": "...)
	cl.ridOff = int32(len(b))
	if validRequestID(in) {
		b = append(b, in...)
	} else {
		b = cl.lp.rid.appendNew(b)
	}
	cl.ridEnd = int32(len(b))
	return append(b, "\r\n"...)
}

// requestID is the current request's ID, while the forwarded head is
// kept (until the response head arrives), else nil.
func (cl *client) requestID() []byte {
	if cl.ridEnd == 0 || int(cl.ridEnd) > len(cl.head) {
		return nil
	}
	return cl.head[cl.ridOff:cl.ridEnd]
}

// appendResponseID appends the request-ID field to a response head for
// the client unless the backend's response r carries it already.
func appendResponseID(b []byte, r *http1.Response, cl *client) []byte {
	id := cl.requestID()
	if id == nil {
		return b
	}
	name := cl.sn.ridHeader
	for i := range r.Headers {
		if h := &r.Headers[i]; len(h.Name) == len(name) && http1.EqualFold(h.Name, name) {
			return b
		}
	}
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, id...)
	return append(b, "\r\n"...)
}
