package proxy

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/http2"
)

// legacyClientHead is how a call's response head for the client was made
// before appendClientHead: written as HTTP/1.1, parsed, and written again
// by appendResponseHead. Kept here to compare the two.
func (g *h2call) legacyClientHead(b []byte, ev *http2.ClientEvent, noBody bool) []byte {
	cl := g.cl
	lp := cl.lp
	raw := lp.getBuf()
	raw = append(raw, "HTTP/1.1 "...)
	raw = strconv.AppendInt(raw, int64(ev.Status), 10)
	raw = append(raw, ' ')
	raw = append(raw, http.StatusText(ev.Status)...)
	raw = append(raw, "\r\n"...)
	for i := range ev.Fields {
		if f := &ev.Fields[i]; f.Name != "content-length" {
			raw = appendField(raw, f.Name, f.Value)
		}
	}
	switch {
	case g.kind == http1.BodyLength || noBody && ev.ContentLength >= 0:
		raw = append(raw, "content-length: "...)
		raw = strconv.AppendInt(raw, ev.ContentLength, 10)
		raw = append(raw, "\r\n"...)
	case ev.EndStream && !cl.isHead && ev.Status != 204 && ev.Status != 304:
		raw = append(raw, "content-length: 0\r\n"...)
	}
	raw = append(raw, "\r\n"...)
	r := lp.getResp()
	if _, err := http1.ParseResponse(raw, r, &h2RespLimits); err != nil {
		panic(err)
	}
	lp.putBuf(raw)
	b = appendResponseHead(b, r, g.kind, cl)
	lp.putResp(r)
	return b
}

// h2HeadCases are a gRPC call's response head (then its body is chunked
// for a stream client) and its trailers-only answer, with a request ID
// to return.
func h2HeadCases() (*h2call, []*http2.ClientEvent) {
	lp := &loop{srv: &Server{}}
	cl := &client{sn: &snapshot{ridHeader: "X-Request-Id"}, keepAlive: true, minor: 1, grpc: true}
	cl.peer = peer{lp: lp}
	cl.head = []byte("POST /pkg.Svc/M HTTP/1.1\r\nX-Request-Id: 0123456789abcdef\r\n\r\n")
	cl.ridOff, cl.ridEnd = 40, 56
	g := &h2call{cl: cl, kind: http1.BodyChunked, trl: true}
	head := &http2.ClientEvent{Kind: http2.EventHeaders, Status: 200, ContentLength: -1, Fields: []http2.Field{
		{Name: "content-type", Value: "application/grpc"},
		{Name: "grpc-encoding", Value: "identity"},
		{Name: "grpc-accept-encoding", Value: "gzip"},
		{Name: "date", Value: "Sat, 05 Dec 2026 21:00:00 GMT"},
	}}
	only := &http2.ClientEvent{Kind: http2.EventHeaders, Status: 200, EndStream: true, ContentLength: -1, Fields: []http2.Field{
		{Name: "content-type", Value: "application/grpc"},
		{Name: "grpc-status", Value: "5"},
		{Name: "grpc-message", Value: "no such thing"},
	}}
	return g, []*http2.ClientEvent{head, only}
}

// TestClientHeadSameAsParsed: appendClientHead writes what the parsing
// path wrote, field for field (the Content-Length name aside).
func TestClientHeadSameAsParsed(t *testing.T) {
	g, evs := h2HeadCases()
	for _, ev := range evs {
		g.kind = http1.BodyChunked
		if ev.EndStream {
			g.kind = http1.BodyNone
		}
		want := string(g.legacyClientHead(nil, ev, ev.EndStream))
		got := string(g.appendClientHead(nil, ev, ev.EndStream))
		if http1.EqualFold([]byte(got), want) == false {
			t.Errorf("direct:\n%s\nparsed:\n%s", got, want)
		}
	}
}

// BenchmarkH2ResponseHead: making a call's response head for the client,
// parsed (as before) against direct.
func BenchmarkH2ResponseHead(b *testing.B) {
	g, evs := h2HeadCases()
	var buf []byte
	for _, impl := range []struct {
		name string
		f    func([]byte, *http2.ClientEvent, bool) []byte
	}{{"parsed", g.legacyClientHead}, {"direct", g.appendClientHead}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.kind = http1.BodyChunked
				buf = impl.f(buf[:0], evs[0], false)
				g.kind = http1.BodyNone
				buf = impl.f(buf[:0], evs[1], true)
			}
		})
	}
}

// BenchmarkH2RequestHead: translating a gRPC call's forwarded head into
// its HTTP/2 request head.
func BenchmarkH2RequestHead(b *testing.B) {
	lp := &loop{srv: &Server{}}
	cl := &client{grpc: true, teTrailers: true}
	cl.peer = peer{lp: lp}
	cl.head = []byte("POST /helloworld.Greeter/SayHello HTTP/1.1\r\nHost: greeter.internal:50051\r\n" +
		"Content-Type: application/grpc\r\nTE: trailers\r\nGrpc-Timeout: 999m\r\nGrpc-Accept-Encoding: gzip\r\n" +
		"User-Agent: grpc-go/1.70.0\r\nX-Request-Id: 0123456789abcdef\r\nX-Forwarded-For: 127.0.0.1\r\n" +
		"X-Forwarded-Proto: http\r\nContent-Length: 15\r\n\r\n")
	g := &h2call{cl: cl, be: &backend{}, h: &h2up{c2: http2.NewClientConn(nil, nil)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := g.requestHead(); !ok {
			b.Fatal("not translated")
		}
	}
}
