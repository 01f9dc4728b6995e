package proxy

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkH2Stream measures one small GET as an HTTP/2 stream through
// the proxy (h2c, one loop) on a warm connection: HEADERS in, an
// HTTP/1.1 exchange with the backend, HEADERS and DATA out. The client
// writes precomputed frames (its header block uses no HPACK table, so
// only the stream ID changes) and reads raw frame headers: it allocates
// nothing, so allocs/op are the proxy's.
func BenchmarkH2Stream(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
	addr := startBenchProxy(b, fixedBackend(b, resp), func(c *config.Config) { c.Server.H2C = true })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	fr := http2.NewFramer(c, br)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		b.Fatal(err)
	}
	_ = fr.WriteSettings()
	_ = fr.WriteSettingsAck()
	_ = fr.WriteWindowUpdate(0, 1<<31-1-65535)

	var blk []byte
	{
		var hb headerBuf
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "bench"}, {":path", "/"},
			{"user-agent", "connx-bench"}, {"accept", "*/*"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
		}
		blk = hb.b
	}
	// HEADERS frame: END_STREAM | END_HEADERS.
	req := make([]byte, 9+len(blk))
	req[0], req[1], req[2] = byte(len(blk)>>16), byte(len(blk)>>8), byte(len(blk))
	req[3], req[4] = 0x1, 0x1|0x4
	copy(req[9:], blk)
	id := uint32(1)
	var hdr [9]byte
	payload := make([]byte, 16<<10)
	roundTrip := func() {
		binary.BigEndian.PutUint32(req[5:9], id)
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				b.Fatal(err)
			}
			n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
			if _, err := io.ReadFull(br, payload[:n]); err != nil {
				b.Fatal(err)
			}
			typ, flags, sid := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:9])&0x7fffffff
			if typ == 0x7 || typ == 0x3 && sid == id {
				b.Fatalf("GOAWAY or RST_STREAM: %x", payload[:n])
			}
			if sid == id && (typ == 0x0 || typ == 0x1) && flags&0x1 != 0 {
				break
			}
		}
		id += 2
	}
	for range 100 {
		roundTrip()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
}

type headerBuf struct{ b []byte }

func (h *headerBuf) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }
