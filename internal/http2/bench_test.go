package http2

import (
	"bytes"
	"encoding/binary"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// exchange is one request/response round on a warmed-up connection, the
// way the proxy will run it: a browser-like GET (its fields all in the
// HPACK dynamic table already, as they are from a browser's second
// request on) and the client's WINDOW_UPDATE for the previous response
// come in; the response head (fields taken from an HTTP/1.1 response as
// bytes) and a 1 KiB body go out.
type exchange struct {
	c     *Conn
	in    []byte // HEADERS + WINDOW_UPDATE; the stream ID is patched
	id    uint32
	body  []byte
	names [][]byte
	vals  [][]byte
}

func newExchange(tb testing.TB) *exchange {
	x := &exchange{c: NewServerConn(nil, nil), id: 1, body: bytes.Repeat([]byte("b"), 1024)}
	x.c.Output()
	var eb bytes.Buffer
	enc := hpack.NewEncoder(&eb)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "www.example.com"}, {Name: ":path", Value: "/search?q=connx&lang=en"},
		{Name: "user-agent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"},
		{Name: "accept", Value: "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
		{Name: "accept-language", Value: "en-US,en;q=0.9"},
		{Name: "accept-encoding", Value: "gzip, deflate, br, zstd"},
		{Name: "cookie", Value: "session=0123456789abcdef"}, {Name: "cookie", Value: "theme=dark"},
	}
	encode := func() []byte {
		eb.Reset()
		for _, f := range fields {
			enc.WriteField(f)
		}
		return bytes.Clone(eb.Bytes())
	}
	var first, in bytes.Buffer
	first.WriteString(ClientPreface)
	fr := xhttp2.NewFramer(&first, nil)
	fr.WriteSettings()
	fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: encode(), EndStream: true, EndHeaders: true})
	fr = xhttp2.NewFramer(&in, nil)
	fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: encode(), EndStream: true, EndHeaders: true})
	fr.WriteWindowUpdate(0, uint32(len(x.body)))
	x.in = in.Bytes()
	// The first request fills the dynamic table.
	x.round(tb, first.Bytes())
	for _, h := range []string{"Date: Mon, 01 Jul 2024 12:00:00 GMT", "Server: backend",
		"Content-Type: text/html; charset=utf-8", "Content-Length: 1024",
		"Cache-Control: private, max-age=0", "Vary: Accept-Encoding",
		"X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736"} {
		name, value, _ := bytes.Cut([]byte(h), []byte(": "))
		x.names = append(x.names, name)
		x.vals = append(x.vals, value)
	}
	for range 10 {
		x.next(tb)
	}
	return x
}

func (x *exchange) next(tb testing.TB) {
	x.id += 2
	binary.BigEndian.PutUint32(x.in[5:9], x.id)
	x.round(tb, x.in)
}

func (x *exchange) round(tb testing.TB, in []byte) {
	c := x.c
	n, evs, err := c.Feed(in)
	if n != len(in) || err != nil || len(evs) != 1 || evs[0].Kind != EventHeaders {
		tb.Fatalf("Feed = %d, %v, %v", n, evs, err)
	}
	id := evs[0].Stream
	hb := c.Headers(200)
	for i, name := range x.names {
		hb.Add(name, x.vals[i])
	}
	if err := c.WriteHeaders(id, hb, false); err != nil {
		tb.Fatal(err)
	}
	if n, err := c.WriteData(id, x.body, true); n != len(x.body) || err != nil {
		tb.Fatalf("WriteData = %d, %v", n, err)
	}
	if len(c.Output()) == 0 || c.Streams() != 0 {
		tb.Fatal("no output or stream left open")
	}
}

// TestAllocs proves the per-request path allocates nothing once warm.
func TestAllocs(t *testing.T) {
	x := newExchange(t)
	if a := testing.AllocsPerRun(1000, func() { x.next(t) }); a != 0 {
		t.Fatalf("%v allocations per request", a)
	}
}

func BenchmarkRequestResponse(b *testing.B) {
	x := newExchange(b)
	b.ReportAllocs()
	for b.Loop() {
		x.next(b)
	}
}

// BenchmarkData measures the body path: 16 KiB of request DATA in, 16 KiB
// of response DATA out, with window updates both ways.
func BenchmarkData(b *testing.B) {
	c := NewServerConn(&Limits{ConnWindow: 1 << 20, StreamWindow: 1 << 20}, nil)
	var pre bytes.Buffer
	pre.WriteString(ClientPreface)
	fr := xhttp2.NewFramer(&pre, nil)
	fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1 << 30})
	var eb bytes.Buffer
	hpack.NewEncoder(&eb).WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	hpack.NewEncoder(&eb).WriteField(hpack.HeaderField{Name: ":scheme", Value: "http"})
	hpack.NewEncoder(&eb).WriteField(hpack.HeaderField{Name: ":path", Value: "/"})
	fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: eb.Bytes(), EndHeaders: true})
	if _, _, err := c.Feed(pre.Bytes()); err != nil {
		b.Fatal(err)
	}
	c.WriteHeaders(1, c.Headers(200), false)
	c.Output()
	var in bytes.Buffer
	fr = xhttp2.NewFramer(&in, nil)
	payload := make([]byte, 16384)
	fr.WriteData(1, false, payload)
	fr.WriteWindowUpdate(0, 16384)
	fr.WriteWindowUpdate(1, 16384)
	frames := in.Bytes()
	b.SetBytes(2 * 16384)
	b.ReportAllocs()
	for b.Loop() {
		n, evs, err := c.Feed(frames)
		if n != len(frames) || err != nil || len(evs) != 1 {
			b.Fatal(n, evs, err)
		}
		c.Consumed(1, len(evs[0].Data))
		if k, _ := c.WriteData(1, evs[0].Data, false); k != 16384 {
			b.Fatal(k)
		}
		c.Output()
	}
}
