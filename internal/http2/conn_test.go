package http2

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"
)

type ruleCase struct {
	name string
	lim  *Limits
	do   func(p *peer)
	out  []string   // frames the Conn sends after do (nil: none)
	err  *ConnError // connection error expected (nil: none)
	evs  []string   // events expected, if not nil
}

func runRules(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, tc.lim)
			tc.do(p)
			p.flush()
			if tc.err == nil && p.err != nil || tc.err != nil && !errors.Is(p.err, tc.err) {
				t.Errorf("error = %v, want %v", p.err, tc.err)
			}
			out := p.out()
			if tc.err != nil {
				// The GOAWAY of the connection error ends the output.
				if len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "GOAWAY") {
					t.Errorf("out = %q, want a GOAWAY last", out)
				}
			}
			if !slices.Equal(out, tc.out) {
				t.Errorf("out = %q\nwant  %q", out, tc.out)
			}
			if evs := p.evs(); tc.evs != nil && !slices.Equal(evs, tc.evs) {
				t.Errorf("events = %q\nwant     %q", evs, tc.evs)
			}
		})
	}
}

func TestConnectionRules(t *testing.T) {
	runRules(t, []ruleCase{
		{name: "preface/invalid", do: func(p *peer) {
			p.c = NewServerConn(nil, nil)
			p.c.Output()
			p.buf.WriteString("GET / HTTP/1.1\r\n\r\n")
		}, out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrBadPreface},
		{name: "preface/first frame not SETTINGS", do: func(p *peer) {
			p.c = NewServerConn(nil, nil)
			p.c.Output()
			p.buf.WriteString(ClientPreface)
			p.fr.WritePing(false, [8]byte{})
		}, out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrFirstNotSettings},
		{name: "preface/one byte at a time", do: func(p *peer) {
			p.c = NewServerConn(nil, nil)
			p.c.Output()
			var b bytes.Buffer
			b.WriteString(ClientPreface)
			fr := xhttp2.NewFramer(&b, nil)
			fr.WriteSettings()
			fr.WritePing(false, [8]byte{1})
			for i := range b.Len() {
				p.buf.WriteByte(b.Bytes()[i])
				p.flush()
			}
		}, out: []string{"SETTINGS ACK", "PING ACK"}},
		{name: "frame size/over SETTINGS_MAX_FRAME_SIZE", do: func(p *peer) {
			p.headers(1, false, getReq...)
			p.fr.WriteData(1, false, make([]byte, 16385))
		}, out: []string{"GOAWAY 1 FRAME_SIZE_ERROR"}, err: ErrFrameTooLarge},
		{name: "frame size/exactly SETTINGS_MAX_FRAME_SIZE", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteData(1, false, make([]byte, 16384))
		}, evs: []string{"headers 1 POST /up", "data 1 16384"}},
		{name: "unknown frame type ignored", do: func(p *peer) {
			p.fr.WriteRawFrame(0xfa, 0xff, 0, []byte("x"))
			p.fr.WritePing(false, [8]byte{})
		}, out: []string{"PING ACK"}},
		{name: "unknown flags and reserved bit ignored", do: func(p *peer) {
			p.buf.Write([]byte{0, 0, 8, typePing, 0xfe, 0x80, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
		}, out: []string{"PING ACK"}},
		{name: "PUSH_PROMISE from client", do: func(p *peer) {
			p.headers(1, false, getReq...)
			p.fr.WritePushPromise(xhttp2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: p.block(getReq...), EndHeaders: true})
		}, out: []string{"GOAWAY 1 PROTOCOL_ERROR"}, err: ErrPushPromise},
	})
}

func TestStreamStateRules(t *testing.T) {
	runRules(t, []ruleCase{
		{name: "idle/DATA", do: func(p *peer) { p.fr.WriteData(1, true, []byte("x")) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrIdleStream},
		{name: "idle/RST_STREAM", do: func(p *peer) { p.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrIdleStream},
		{name: "idle/WINDOW_UPDATE", do: func(p *peer) { p.fr.WriteWindowUpdate(1, 100) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrIdleStream},
		{name: "idle/CONTINUATION", do: func(p *peer) { p.fr.WriteContinuation(1, true, p.block(getReq...)) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrStrayContinuation},
		{name: "idle/PRIORITY allowed", do: func(p *peer) {
			p.fr.WritePriority(3, xhttp2.PriorityParam{StreamDep: 1, Weight: 10})
			p.headers(1, true, getReq...)
		}, evs: []string{"headers 1 GET / ES"}},
		{name: "stream 0/HEADERS", do: func(p *peer) { p.headers(0, true, getReq...) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrStreamZero},
		{name: "stream 0/DATA", do: func(p *peer) { p.fr.WriteData(0, true, nil) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrStreamZero},
		{name: "stream id/even", do: func(p *peer) { p.headers(2, true, getReq...) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrEvenStream},
		{name: "stream id/decreasing", do: func(p *peer) {
			p.headers(5, true, getReq...)
			p.headers(3, true, getReq...)
		}, out: []string{"GOAWAY 5 PROTOCOL_ERROR"}, err: ErrStreamIDDecreased},
		{name: "half-closed remote/DATA", do: func(p *peer) {
			p.headers(1, true, getReq...)
			p.fr.WriteData(1, true, []byte("x"))
		}, out: []string{"RST_STREAM 1 STREAM_CLOSED"}, evs: []string{"headers 1 GET / ES", "reset 1 STREAM_CLOSED"}},
		{name: "half-closed remote/HEADERS", do: func(p *peer) {
			p.headers(1, true, getReq...)
			p.headers(1, true, "x-trailer: 1")
		}, out: []string{"RST_STREAM 1 STREAM_CLOSED"}, evs: []string{"headers 1 GET / ES", "reset 1 STREAM_CLOSED"}},
		{name: "closed/DATA after RST_STREAM", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel)
			p.fr.WriteData(1, true, []byte("x"))
		}, out: []string{"RST_STREAM 1 STREAM_CLOSED"}, evs: []string{"headers 1 POST /up", "reset 1 CANCEL"}},
		{name: "closed/HEADERS", do: func(p *peer) {
			p.headers(1, true, getReq...)
			p.flush()
			p.c.WriteHeaders(1, p.c.Headers(204), true)
			p.out()
			p.headers(1, true, getReq...)
		}, out: []string{"GOAWAY 1 STREAM_CLOSED"}, err: ErrClosedStreamHeaders},
		{name: "closed/WINDOW_UPDATE and RST_STREAM ignored", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel)
			p.fr.WriteWindowUpdate(1, 10)
			p.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel)
		}},
		{name: "concurrency/over MaxConcurrentStreams", lim: &Limits{MaxConcurrentStreams: 2}, do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.headers(3, false, postReq...)
			p.headers(5, false, postReq...)
			p.headers(7, true, getReq...)
		}, out: []string{"RST_STREAM 5 REFUSED_STREAM", "RST_STREAM 7 REFUSED_STREAM"},
			evs: []string{"headers 1 POST /up", "headers 3 POST /up"}},
		{name: "trailers", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteData(1, false, []byte("abc"))
			p.headers(1, true, "x-sum: 6", "x-n: 3")
		}, evs: []string{"headers 1 POST /up", "data 1 3", "trailers 1 2"}},
		{name: "trailers without END_STREAM", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.headers(1, false, "x-sum: 6")
		}, out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}, evs: []string{"headers 1 POST /up", "reset 1 PROTOCOL_ERROR"}},
		{name: "client RST_STREAM", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel)
		}, evs: []string{"headers 1 POST /up", "reset 1 CANCEL"}},
		{name: "RST_STREAM length", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteRawFrame(xhttp2.FrameRSTStream, 0, 1, []byte{0, 0, 0})
		}, out: []string{"GOAWAY 1 FRAME_SIZE_ERROR"}, err: ErrFrameSize},
	})
}

func TestFrameRules(t *testing.T) {
	runRules(t, []ruleCase{
		{name: "DATA/invalid padding", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteRawFrame(xhttp2.FrameData, flagPadded, 1, []byte{5, 'a', 'b'})
		}, out: []string{"GOAWAY 1 PROTOCOL_ERROR"}, err: ErrBadPadding},
		{name: "DATA/padding returned at once", do: func(p *peer) {
			// Padding is flow-controlled but never reaches the proxy:
			// it is returned without waiting for Consumed, in batches
			// of half a window (128 frames of 255+1 bytes).
			p.headers(1, false, postReq...)
			for range 128 {
				p.fr.WriteDataPadded(1, false, []byte("abc"), make([]byte, 255))
			}
		}, out: []string{"WINDOW_UPDATE 1 +32768"}},
		{name: "HEADERS/invalid padding", do: func(p *peer) {
			blk := p.block(getReq...)
			p.fr.WriteRawFrame(xhttp2.FrameHeaders, flagPadded|flagEndHeaders, 1, append([]byte{byte(len(blk) + 1)}, blk...))
		}, out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrBadPadding},
		{name: "HEADERS/padded with priority", do: func(p *peer) {
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getReq...), EndStream: true, EndHeaders: true,
				PadLength: 3, Priority: xhttp2.PriorityParam{StreamDep: 0, Weight: 5}})
		}, evs: []string{"headers 1 GET / ES"}},
		{name: "HEADERS/priority self-dependency", do: func(p *peer) {
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getReq...), EndStream: true, EndHeaders: true,
				Priority: xhttp2.PriorityParam{StreamDep: 1}})
		}, out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}, evs: []string{}},
		{name: "PRIORITY/self-dependency", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WritePriority(1, xhttp2.PriorityParam{StreamDep: 1})
		}, out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}, evs: []string{"headers 1 POST /up", "reset 1 PROTOCOL_ERROR"}},
		{name: "PRIORITY/length", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FramePriority, 0, 1, []byte{0, 0, 0, 0}) },
			out: []string{"GOAWAY 0 FRAME_SIZE_ERROR"}, err: ErrFrameSize},
		{name: "SETTINGS/ACK with payload", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FrameSettings, flagAck, 0, make([]byte, 6)) },
			out: []string{"GOAWAY 0 FRAME_SIZE_ERROR"}, err: ErrFrameSize},
		{name: "SETTINGS/on a stream", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FrameSettings, 0, 1, nil) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrProtocol},
		{name: "SETTINGS/length not a multiple of 6", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FrameSettings, 0, 0, make([]byte, 7)) },
			out: []string{"GOAWAY 0 FRAME_SIZE_ERROR"}, err: ErrFrameSize},
		{name: "SETTINGS/ENABLE_PUSH 2", do: func(p *peer) { p.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingEnablePush, Val: 2}) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrBadSetting},
		{name: "SETTINGS/INITIAL_WINDOW_SIZE 2^31", do: func(p *peer) {
			p.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1 << 31})
		}, out: []string{"GOAWAY 0 FLOW_CONTROL_ERROR"}, err: ErrBadWindowSetting},
		{name: "SETTINGS/MAX_FRAME_SIZE too small", do: func(p *peer) { p.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 16383}) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrBadSetting},
		{name: "SETTINGS/unknown ignored", do: func(p *peer) { p.fr.WriteSettings(xhttp2.Setting{ID: 0xff, Val: 1}) },
			out: []string{"SETTINGS ACK"}},
		{name: "PING/answered", do: func(p *peer) { p.fr.WritePing(false, [8]byte{1}) }, out: []string{"PING ACK"}},
		{name: "PING/ACK not answered", do: func(p *peer) { p.fr.WritePing(true, [8]byte{1}) }},
		{name: "PING/on a stream", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FramePing, 0, 1, make([]byte, 8)) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrProtocol},
		{name: "PING/length", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FramePing, 0, 0, make([]byte, 7)) },
			out: []string{"GOAWAY 0 FRAME_SIZE_ERROR"}, err: ErrFrameSize},
		{name: "GOAWAY/on a stream", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FrameGoAway, 0, 1, make([]byte, 8)) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrProtocol},
		{name: "GOAWAY/reported", do: func(p *peer) { p.fr.WriteGoAway(0, xhttp2.ErrCodeNo, nil) },
			evs: []string{"goaway 0 NO_ERROR"}},
		{name: "WINDOW_UPDATE/0 on connection", do: func(p *peer) { p.fr.WriteWindowUpdate(0, 0) },
			out: []string{"GOAWAY 0 PROTOCOL_ERROR"}, err: ErrZeroWindowUpdate},
		{name: "WINDOW_UPDATE/0 on stream", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteWindowUpdate(1, 0)
		}, out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}},
		{name: "WINDOW_UPDATE/length", do: func(p *peer) { p.fr.WriteRawFrame(xhttp2.FrameWindowUpdate, 0, 0, make([]byte, 3)) },
			out: []string{"GOAWAY 0 FRAME_SIZE_ERROR"}, err: ErrFrameSize},
		{name: "WINDOW_UPDATE/connection overflow", do: func(p *peer) {
			p.fr.WriteWindowUpdate(0, 1<<31-1)
		}, out: []string{"GOAWAY 0 FLOW_CONTROL_ERROR"}, err: ErrWindowOverflow},
		{name: "WINDOW_UPDATE/stream overflow", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteWindowUpdate(1, 1<<31-1)
		}, out: []string{"RST_STREAM 1 FLOW_CONTROL_ERROR"}},
		{name: "SETTINGS/INITIAL_WINDOW_SIZE overflows a stream", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteWindowUpdate(1, 1<<31-1-65535)
			p.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 65536})
		}, out: []string{"GOAWAY 1 FLOW_CONTROL_ERROR"}, err: ErrWindowOverflow},
		{name: "CONTINUATION/block split", do: func(p *peer) {
			blk := p.block(getReq...)
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:3], EndStream: true})
			p.flush()
			p.fr.WriteContinuation(1, false, blk[3:5])
			p.fr.WriteContinuation(1, true, blk[5:])
		}, evs: []string{"headers 1 GET / ES"}},
		{name: "CONTINUATION/other frame inside block", do: func(p *peer) {
			blk := p.block(getReq...)
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:3], EndStream: true})
			p.fr.WritePing(false, [8]byte{})
		}, out: []string{"GOAWAY 1 PROTOCOL_ERROR"}, err: ErrExpectContinuation},
		{name: "CONTINUATION/other stream", do: func(p *peer) {
			blk := p.block(getReq...)
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:3], EndStream: true})
			p.fr.WriteContinuation(3, true, blk[3:])
		}, out: []string{"GOAWAY 1 PROTOCOL_ERROR"}, err: ErrExpectContinuation},
		{name: "CONTINUATION/after END_HEADERS", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.fr.WriteContinuation(1, true, nil)
		}, out: []string{"GOAWAY 1 PROTOCOL_ERROR"}, err: ErrStrayContinuation},
		{name: "HPACK/invalid index", do: func(p *peer) {
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0x7f}, EndStream: true, EndHeaders: true})
		}, out: []string{"GOAWAY 1 COMPRESSION_ERROR"}, err: ErrCompression},
		{name: "HPACK/truncated block", do: func(p *peer) {
			blk := p.block(getReq...)
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: append(blk, 0x40, 0x05, 'a'), EndStream: true, EndHeaders: true})
		}, out: []string{"GOAWAY 1 COMPRESSION_ERROR"}, err: ErrCompression},
		{name: "HPACK/table size update above SETTINGS", do: func(p *peer) {
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: append([]byte{0x3f, 0xe2, 0x1f}, p.block(getReq...)...), EndStream: true, EndHeaders: true})
		}, out: []string{"GOAWAY 1 COMPRESSION_ERROR"}, err: ErrCompression},
	})
}

func TestHeaderRules(t *testing.T) {
	malformed := func(name string, fields ...string) ruleCase {
		return ruleCase{name: name, do: func(p *peer) { p.headers(1, true, fields...) },
			out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}, evs: []string{}}
	}
	req := func(extra ...string) []string { return append(slices.Clone(getReq), extra...) }
	cases := []ruleCase{
		malformed("uppercase name", req("X-Upper: 1")...),
		malformed("name with space", req("x y: 1")...),
		malformed("value with CR", req("x: a\rb")...),
		malformed("value with NUL", req("x: a\x00b")...),
		malformed("value with leading space", req("x:  a")...),
		malformed("unknown pseudo-header", req(":foo: bar")...),
		malformed(":status in request", req(":status: 200")...),
		malformed(":protocol not offered", req(":protocol: websocket")...),
		malformed("pseudo after regular", ":method: GET", ":scheme: http", "x: 1", ":path: /"),
		malformed("connection", req("connection: keep-alive")...),
		malformed("keep-alive", req("keep-alive: 5")...),
		malformed("proxy-connection", req("proxy-connection: x")...),
		malformed("transfer-encoding", req("transfer-encoding: chunked")...),
		malformed("upgrade", req("upgrade: websocket")...),
		malformed("te gzip", req("te: gzip")...),
		malformed("missing :method", ":scheme: http", ":path: /"),
		malformed("missing :scheme", ":method: GET", ":path: /"),
		malformed("missing :path", ":method: GET", ":scheme: http"),
		malformed("empty :path", ":method: GET", ":scheme: http", ":path: "),
		malformed("relative :path", ":method: GET", ":scheme: http", ":path: x"),
		malformed(":path with space", ":method: GET", ":scheme: http", ":path: /a b"),
		malformed("* for GET", ":method: GET", ":scheme: http", ":path: *"),
		malformed("duplicate :method", ":method: GET", ":method: GET", ":scheme: http", ":path: /"),
		malformed("duplicate :scheme", ":method: GET", ":scheme: http", ":scheme: http", ":path: /"),
		malformed("duplicate :path", ":method: GET", ":scheme: http", ":path: /", ":path: /"),
		malformed("method not a token", ":method: G T", ":scheme: http", ":path: /"),
		malformed("authority with userinfo", ":method: GET", ":scheme: http", ":authority: u@h", ":path: /"),
		malformed("host differs from :authority", req("host: other.example")...),
		malformed("CONNECT with :path", ":method: CONNECT", ":authority: h:443", ":path: /"),
		malformed("CONNECT without :authority", ":method: CONNECT"),
		malformed("content-length not a number", req("content-length: 1x")...),
		malformed("two content-lengths", req("content-length: 1", "content-length: 2")...),
		malformed("content-length with END_STREAM", req("content-length: 1")...),
		{name: "te trailers allowed", do: func(p *peer) { p.headers(1, true, req("te: trailers", "host: example.com")...) },
			evs: []string{"headers 1 GET / ES"}},
		{name: "OPTIONS *", do: func(p *peer) { p.headers(1, true, ":method: OPTIONS", ":scheme: http", ":path: *") },
			evs: []string{"headers 1 OPTIONS * ES"}},
		{name: "CONNECT", do: func(p *peer) { p.headers(1, false, ":method: CONNECT", ":authority: h:443") },
			evs: []string{"headers 1 CONNECT "}},
		{name: "content-length/less data", do: func(p *peer) {
			p.headers(1, false, append(slices.Clone(postReq), "content-length: 4")...)
			p.fr.WriteData(1, true, []byte("abc"))
		}, out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}, evs: []string{"headers 1 POST /up", "reset 1 PROTOCOL_ERROR"}},
		{name: "content-length/more data", do: func(p *peer) {
			p.headers(1, false, append(slices.Clone(postReq), "content-length: 4")...)
			p.fr.WriteData(1, false, []byte("abc"))
			p.fr.WriteData(1, false, []byte("de"))
		}, out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}, evs: []string{"headers 1 POST /up", "data 1 3", "reset 1 PROTOCOL_ERROR"}},
		{name: "content-length/exact", do: func(p *peer) {
			p.headers(1, false, append(slices.Clone(postReq), "content-length: 5")...)
			p.fr.WriteData(1, false, []byte("abc"))
			p.fr.WriteData(1, true, []byte("de"))
		}, evs: []string{"headers 1 POST /up", "data 1 3", "data 1 2 ES"}},
		{name: "pseudo in trailers", do: func(p *peer) {
			p.headers(1, false, postReq...)
			p.headers(1, true, ":path: /")
		}, out: []string{"RST_STREAM 1 PROTOCOL_ERROR"}, evs: []string{"headers 1 POST /up", "reset 1 PROTOCOL_ERROR"}},
		{name: "header list too large: 431", lim: &Limits{MaxHeaderListSize: 200}, do: func(p *peer) {
			p.headers(1, false, req("x-big: "+strings.Repeat("a", 200))...)
		}, out: []string{"HEADERS 1 :status=431 ES", "RST_STREAM 1 NO_ERROR"}, evs: []string{}},
	}
	runRules(t, cases)
}

func TestEventFields(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, true, ":method: GET", ":scheme: https", ":authority: a.example:8443", ":path: /x?y=1",
		"cookie: a=1", "cookie: b=2", "user-agent: test")
	p.flush()
	if len(p.events) != 1 {
		t.Fatalf("events = %v", p.evs())
	}
	ev := p.events[0]
	want := []Field{{"cookie", "a=1"}, {"cookie", "b=2"}, {"user-agent", "test"}}
	if ev.Method != "GET" || ev.Scheme != "https" || ev.Authority != "a.example:8443" || ev.Path != "/x?y=1" ||
		ev.ContentLength != -1 || !slices.Equal(ev.Fields, want) {
		t.Fatalf("event = %+v", ev)
	}
}

// TestFlowControlReceive: request bytes are returned to the client's
// windows only when the proxy consumed them.
func TestFlowControlReceive(t *testing.T) {
	p := newPeer(t, &Limits{ConnWindow: 100000})
	p.headers(1, false, postReq...)
	p.fr.WriteData(1, false, make([]byte, 16384))
	p.fr.WriteData(1, false, make([]byte, 16384))
	p.fr.WriteData(1, false, make([]byte, 16384))
	p.fr.WriteData(1, false, make([]byte, 16383))
	p.flush()
	if out := p.out(); len(out) != 0 || p.err != nil {
		t.Fatalf("before Consumed: out %q, err %v", out, p.err)
	}
	// The stream window (65535) is used up: one more byte is an error.
	p.c.Consumed(1, 1000)
	if out := p.out(); len(out) != 0 {
		t.Fatalf("Consumed(1000) sent %q", out)
	}
	p.c.Consumed(1, 40000)
	if out := p.out(); !slices.Equal(out, []string{"WINDOW_UPDATE 1 +41000"}) {
		t.Fatalf("Consumed(40000) sent %q", out)
	}
	p.c.Consumed(1, 1<<20) // more than received: capped
	// The stream is owed 24535 (under half its window): not yet sent.
	if out := p.out(); !slices.Equal(out, []string{"WINDOW_UPDATE 0 +65535"}) {
		t.Fatalf("Consumed(rest) sent %q", out)
	}
	// Over the stream window (41000).
	p.fr.WriteData(1, false, make([]byte, 16384))
	p.fr.WriteData(1, false, make([]byte, 16384))
	p.fr.WriteData(1, false, make([]byte, 16384))
	p.flush()
	if out := p.out(); !slices.Equal(out, []string{"RST_STREAM 1 FLOW_CONTROL_ERROR"}) {
		t.Fatalf("over the stream window: %q", out)
	}
	// The connection window: the reset stream's unconsumed data was
	// returned when it closed, but only in batches.
	p.headers(3, false, postReq...)
	for range 6 {
		p.fr.WriteData(3, false, make([]byte, 16384))
	}
	p.flush()
	if !errors.Is(p.err, ErrConnFlowControl) {
		t.Fatalf("over the connection window: err %v, out %q", p.err, p.out())
	}
}

// TestFlowControlSend: WriteData takes what the windows allow and an
// EventWindow says when to go on.
func TestFlowControlSend(t *testing.T) {
	p := newPeer(t, nil)
	p.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 10})
	p.headers(1, true, getReq...)
	p.headers(3, true, getReq...)
	p.flush()
	p.evs()
	p.out()
	c := p.c
	for _, id := range []uint32{1, 3} {
		if err := c.WriteHeaders(id, c.Headers(200), false); err != nil {
			t.Fatal(err)
		}
	}
	if w := c.SendWindow(1); w != 10 {
		t.Fatalf("SendWindow = %d", w)
	}
	if n, err := c.WriteData(1, make([]byte, 100), true); n != 10 || err != nil {
		t.Fatalf("WriteData = %d, %v", n, err)
	}
	if n, _ := c.WriteData(1, make([]byte, 90), true); n != 0 {
		t.Fatalf("WriteData on a closed window = %d", n)
	}
	if out := p.out(); !slices.Equal(out, []string{"HEADERS 1 :status=200", "HEADERS 3 :status=200", "DATA 1 10"}) {
		t.Fatalf("out %q", out)
	}
	p.fr.WriteWindowUpdate(1, 100)
	p.fr.WriteWindowUpdate(3, 100) // stream 3 never blocked: no event
	p.flush()
	if evs := p.evs(); !slices.Equal(evs, []string{"window 1"}) {
		t.Fatalf("events %q", evs)
	}
	if n, _ := c.WriteData(1, make([]byte, 90), true); n != 90 {
		t.Fatalf("WriteData after the update = %d", n)
	}
	// Connection window: 65535 - 100 left; stream 3 has 110.
	p.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1 << 20})
	p.flush()
	p.out()
	if n, _ := c.WriteData(3, make([]byte, 100000), false); n != 65535-100 {
		t.Fatalf("WriteData bounded by the connection window = %d", n)
	}
	p.fr.WriteWindowUpdate(0, 1000)
	p.flush()
	if evs := p.evs(); !slices.Equal(evs, []string{"window 3"}) {
		t.Fatalf("events %q", evs)
	}
	// Frames are cut at the client's SETTINGS_MAX_FRAME_SIZE.
	if n, _ := c.WriteData(3, make([]byte, 1000), true); n != 1000 {
		t.Fatalf("n = %d", n)
	}
	want := []string{"DATA 3 16384", "DATA 3 16384", "DATA 3 16384", "DATA 3 16283", "DATA 3 1000 ES"}
	if out := p.out(); !slices.Equal(out, want) {
		t.Fatalf("out %q", out)
	}
	if c.Streams() != 0 {
		t.Fatalf("%d streams left", c.Streams())
	}
}

func TestWriteOrder(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, false, postReq...)
	p.flush()
	c := p.c
	if _, err := c.WriteData(1, []byte("x"), false); err != ErrHeaderOrder {
		t.Fatalf("data before head: %v", err)
	}
	if err := c.WriteHeaders(1, c.Headers(0), true); err != ErrHeaderOrder {
		t.Fatalf("trailers before head: %v", err)
	}
	if err := c.WriteHeaders(1, c.Headers(100), false); err != nil {
		t.Fatalf("100 Continue: %v", err)
	}
	hb := c.Headers(200)
	hb.Add([]byte("Content-Type"), []byte("text/plain"))
	hb.Add([]byte("Connection"), []byte("close"))
	hb.AddString("Transfer-Encoding", "chunked")
	hb.AddString("x-ok", "1")
	if err := c.WriteHeaders(1, hb, false); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteHeaders(1, c.Headers(200), false); err != ErrHeaderOrder {
		t.Fatalf("second final head: %v", err)
	}
	tb := c.Headers(0)
	tb.AddString("X-Sum", "1")
	if err := c.WriteHeaders(1, tb, false); err != ErrHeaderOrder {
		t.Fatalf("trailers without END_STREAM: %v", err)
	}
	if err := c.WriteHeaders(1, tb, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteData(1, nil, true); err != ErrStreamClosed {
		t.Fatalf("after the end: %v", err)
	}
	want := []string{"HEADERS 1 :status=100", "HEADERS 1 :status=200 content-type=text/plain x-ok=1", "HEADERS 1 x-sum=1 ES"}
	if out := p.out(); !slices.Equal(out, want) {
		t.Fatalf("out %q\nwant %q", out, want)
	}
	// Half-closed (local): the request body still flows.
	p.fr.WriteData(1, true, []byte("abc"))
	p.flush()
	if evs := p.evs(); !slices.Equal(evs, []string{"headers 1 POST /up", "data 1 3 ES"}) {
		t.Fatalf("events %q", evs)
	}
	if c.Streams() != 0 {
		t.Fatalf("%d streams", c.Streams())
	}
}

func TestLargeHeaderBlockUsesContinuation(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, true, getReq...)
	p.flush()
	hb := p.c.Headers(200)
	for i := range 40 {
		hb.AddString("x-field-"+strings.Repeat("n", i), strings.Repeat("v", 1000))
	}
	if err := p.c.WriteHeaders(1, hb, true); err != nil {
		t.Fatal(err)
	}
	raw := p.c.Output()
	fr := xhttp2.NewFramer(nil, bytes.NewReader(raw))
	var types []xhttp2.FrameType
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		types = append(types, f.Header().Type)
	}
	if len(types) < 3 || types[0] != xhttp2.FrameHeaders || types[1] != xhttp2.FrameContinuation {
		t.Fatalf("frames %v", types)
	}
	p.c.out.b = append(p.c.out.b, raw...)
	if out := p.out(); len(out) != 1 || !strings.HasSuffix(out[0], " ES") {
		t.Fatalf("decoded %d frames", len(out))
	}
}

func TestShutdown(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, false, postReq...)
	p.flush()
	p.c.Shutdown()
	p.headers(3, true, getReq...) // after GOAWAY: ignored
	p.fr.WriteData(1, true, []byte("x"))
	p.flush()
	if evs := p.evs(); !slices.Equal(evs, []string{"headers 1 POST /up", "data 1 1 ES"}) {
		t.Fatalf("events %q", evs)
	}
	if p.c.Done() {
		t.Fatal("Done with stream 1 open")
	}
	p.c.WriteHeaders(1, p.c.Headers(204), true)
	if !p.c.Done() {
		t.Fatal("not Done")
	}
	if out := p.out(); !slices.Equal(out, []string{"GOAWAY 1 NO_ERROR", "HEADERS 1 :status=204 ES"}) {
		t.Fatalf("out %q", out)
	}
}

func TestAttackLimits(t *testing.T) {
	lim := &Limits{MaxResets: 10, MaxControlFrames: 20, MaxContinuations: 4, FloodWindow: time.Second}
	runRules(t, []ruleCase{
		{name: "rapid reset", lim: lim, do: func(p *peer) {
			for i := range 11 {
				id := uint32(2*i + 1)
				p.headers(id, false, postReq...)
				p.fr.WriteRSTStream(id, xhttp2.ErrCodeCancel)
			}
		}, out: []string{"GOAWAY 21 ENHANCE_YOUR_CALM"}, err: ErrRapidReset},
		{name: "rapid reset/spread over windows", lim: lim, do: func(p *peer) {
			for i := range 30 {
				id := uint32(2*i + 1)
				p.headers(id, false, postReq...)
				p.fr.WriteRSTStream(id, xhttp2.ErrCodeCancel)
				if i%5 == 4 {
					p.flush()
					p.clk.t = p.clk.t.Add(2 * time.Second)
				}
			}
		}},
		{name: "provoked resets count too", lim: lim, do: func(p *peer) {
			for i := range 10 {
				p.headers(uint32(2*i+1), true, ":method: GET")
			}
			p.flush()
			p.out() // 10 RST_STREAMs
			p.headers(21, true, ":method: GET")
		}, out: []string{"RST_STREAM 21 PROTOCOL_ERROR", "GOAWAY 21 ENHANCE_YOUR_CALM"}, err: ErrRapidReset},
		{name: "PING flood", lim: lim, do: func(p *peer) {
			for range 19 { // and newPeer's SETTINGS
				p.fr.WritePing(false, [8]byte{})
			}
			p.flush()
			p.out() // 19 PING ACKs
			p.fr.WritePing(false, [8]byte{})
		}, out: []string{"GOAWAY 0 ENHANCE_YOUR_CALM"}, err: ErrControlFlood},
		{name: "SETTINGS flood", lim: lim, do: func(p *peer) {
			for range 19 { // and the one newPeer sent
				p.fr.WriteSettings()
			}
			p.flush()
			p.out() // 19 SETTINGS ACKs
			p.fr.WriteSettings()
		}, out: []string{"GOAWAY 0 ENHANCE_YOUR_CALM"}, err: ErrControlFlood},
		{name: "empty DATA flood", lim: lim, do: func(p *peer) {
			p.headers(1, false, postReq...)
			for range 21 {
				p.fr.WriteData(1, false, nil)
			}
		}, out: []string{"GOAWAY 1 ENHANCE_YOUR_CALM"}, err: ErrControlFlood},
		{name: "PRIORITY flood", lim: lim, do: func(p *peer) {
			for i := range 20 {
				p.fr.WritePriority(uint32(2*i+1), xhttp2.PriorityParam{Weight: 1})
			}
		}, out: []string{"GOAWAY 0 ENHANCE_YOUR_CALM"}, err: ErrControlFlood},
		{name: "CONTINUATION flood", lim: lim, do: func(p *peer) {
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getReq...)})
			for range 5 {
				p.fr.WriteContinuation(1, false, p.block("x-a: b"))
			}
		}, out: []string{"GOAWAY 1 ENHANCE_YOUR_CALM"}, err: ErrContinuationFlood},
		{name: "header block too large", lim: &Limits{MaxHeaderListSize: 1000, MaxContinuations: 100}, do: func(p *peer) {
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: p.block(getReq...)})
			for i := range 10 {
				p.fr.WriteContinuation(1, false, p.block("x-a: "+strings.Repeat(string(rune('a'+i)), 900)))
			}
		}, out: []string{"GOAWAY 1 ENHANCE_YOUR_CALM"}, err: ErrHeaderBlockTooLarge},
		{name: "HPACK bomb: 431, decoding stops collecting", lim: &Limits{MaxHeaderListSize: 16 << 10}, do: func(p *peer) {
			// One 4000-byte entry in the dynamic table, then the
			// same one-byte index 1000 times: 4 MB decoded from 1 KB.
			p.headers(1, true, append(slices.Clone(getReq), "x-bomb: "+strings.Repeat("b", 4000))...)
			p.flush()
			p.evs()
			p.out()
			blk := p.block(getReq...)
			for range 1000 {
				blk = append(blk, 0xbe) // dynamic table index 62
			}
			p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 3, BlockFragment: blk, EndStream: true, EndHeaders: true})
		}, out: []string{"HEADERS 3 :status=431 ES"}, evs: []string{}},
	})
}

// TestResetDuringTrailers: the proxy resets a stream between the HEADERS
// and the CONTINUATION of its trailers; the block is decoded and dropped.
func TestResetDuringTrailers(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, false, postReq...)
	blk := p.block("x-a: 1", "x-b: 2")
	p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:2], EndStream: true})
	p.flush()
	p.c.Reset(1, ErrCodeCancel)
	p.fr.WriteContinuation(1, true, blk[2:])
	p.headers(3, true, getReq...)
	p.flush()
	if evs := p.evs(); p.err != nil || !slices.Equal(evs, []string{"headers 1 POST /up", "headers 3 GET / ES"}) {
		t.Fatalf("events %q, err %v", evs, p.err)
	}
}
