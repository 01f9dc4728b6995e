package http2

import (
	"bytes"
	"encoding/binary"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// clientCall is one unary gRPC call on a warm backend connection, the way
// the proxy will run it: the request head (fields as bytes from the
// client's request) and a 1 KiB message go out; the response head, a
// 1 KiB message, the trailers (all in the server's HPACK table, as they
// are from grpc-go's second response on) and a connection WINDOW_UPDATE
// come in.
type clientCall struct {
	c     *ClientConn
	in    []byte // the server's frames; stream IDs are patched
	msg   []byte
	names [][]byte
	vals  [][]byte
}

func newClientCall(tb testing.TB) *clientCall {
	x := &clientCall{c: NewClientConn(nil, nil), msg: grpcMsg(bytes.Repeat([]byte("m"), 1019))}
	for _, f := range []string{"content-type: application/grpc", "te: trailers", "user-agent: grpc-go/1.85.0",
		"grpc-timeout: 999m", "grpc-accept-encoding: gzip"} {
		name, value, _ := bytes.Cut([]byte(f), []byte(": "))
		x.names, x.vals = append(x.names, name), append(x.vals, value)
	}
	var eb bytes.Buffer
	enc := hpack.NewEncoder(&eb)
	block := func(fields ...string) []byte {
		eb.Reset()
		for i := 0; i < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(eb.Bytes())
	}
	response := func(w *bytes.Buffer) {
		fr := xhttp2.NewFramer(w, nil)
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200", "content-type", "application/grpc"), EndHeaders: true})
		fr.WriteData(1, false, x.msg)
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: block("grpc-status", "0", "grpc-message", ""), EndStream: true, EndHeaders: true})
		fr.WriteWindowUpdate(0, uint32(len(x.msg)))
	}
	var first, in bytes.Buffer
	xhttp2.NewFramer(&first, nil).WriteSettings()
	response(&first) // fills the HPACK table
	response(&in)
	x.in = in.Bytes()
	x.round(tb, first.Bytes())
	for range 10 {
		x.round(tb, x.in)
	}
	return x
}

func (x *clientCall) round(tb testing.TB, in []byte) {
	c := x.c
	hb := c.Request("POST", "http", "backend:50051", "/pkg.Service/Method")
	for i, name := range x.names {
		hb.Add(name, x.vals[i])
	}
	id, err := c.OpenStream(hb, false)
	if err != nil {
		tb.Fatal(err)
	}
	if n, err := c.WriteData(id, x.msg, true); n != len(x.msg) || err != nil {
		tb.Fatalf("WriteData = %d, %v", n, err)
	}
	for p := in; len(p) > 0; {
		if binary.BigEndian.Uint32(p[5:9]) != 0 {
			binary.BigEndian.PutUint32(p[5:9], id)
		}
		p = p[frameHeaderLen+(int(p[0])<<16|int(p[1])<<8|int(p[2])):]
	}
	n, evs, err := c.Feed(in)
	if n != len(in) || err != nil || len(evs) != 3 || evs[2].Kind != EventTrailers {
		tb.Fatalf("Feed = %d, %v, %v", n, evs, err)
	}
	c.Consumed(id, len(evs[1].Data))
	if len(c.Output()) == 0 || c.Streams() != 0 {
		tb.Fatal("no output or stream left open")
	}
}

// TestClientAllocs proves a call on a warm connection allocates nothing.
func TestClientAllocs(t *testing.T) {
	x := newClientCall(t)
	if a := testing.AllocsPerRun(1000, func() { x.round(t, x.in) }); a != 0 {
		t.Fatalf("%v allocations per call", a)
	}
}

func BenchmarkClientCall(b *testing.B) {
	x := newClientCall(b)
	b.ReportAllocs()
	for b.Loop() {
		x.round(b, x.in)
	}
}

// BenchmarkClientData measures the body path of a long stream: 16 KiB of
// request DATA out, 16 KiB of response DATA in, window updates both ways.
func BenchmarkClientData(b *testing.B) {
	c := NewClientConn(&Limits{ConnWindow: 1 << 20, StreamWindow: 1 << 20}, nil)
	var pre bytes.Buffer
	fr := xhttp2.NewFramer(&pre, nil)
	fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1 << 30})
	var eb bytes.Buffer
	hpack.NewEncoder(&eb).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: eb.Bytes(), EndHeaders: true})
	id, _ := c.OpenStream(c.Request("POST", "http", "b", "/"), false)
	if _, _, err := c.Feed(pre.Bytes()); err != nil {
		b.Fatal(err)
	}
	c.Output()
	var in bytes.Buffer
	fr = xhttp2.NewFramer(&in, nil)
	payload := make([]byte, 16384)
	fr.WriteData(id, false, payload)
	fr.WriteWindowUpdate(0, 16384)
	fr.WriteWindowUpdate(id, 16384)
	frames := in.Bytes()
	b.SetBytes(2 * 16384)
	b.ReportAllocs()
	for b.Loop() {
		n, evs, err := c.Feed(frames)
		if n != len(frames) || err != nil || len(evs) != 1 {
			b.Fatal(n, evs, err)
		}
		c.Consumed(id, len(evs[0].Data))
		if k, err := c.WriteData(id, payload, false); k != 16384 {
			b.Fatal(k, err)
		}
		c.Output()
	}
}

// TestRequestBytes: RequestBytes makes the block Request makes, without
// allocating.
func TestRequestBytes(t *testing.T) {
	c := NewClientConn(nil, nil)
	c.Request("GET", "http", "x", "/") // the first block also says the table size is 0
	want := string(c.Request("POST", "https", "a.example", "/pkg.S/M").w.b)
	m, a, p := []byte("POST"), []byte("a.example"), []byte("/pkg.S/M")
	if got := string(c.RequestBytes(m, "https", a, p).w.b); got != want {
		t.Fatalf("block %x, want %x", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { c.RequestBytes(m, "https", a, p) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
