package http2

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	xhttp2 "golang.org/x/net/http2"
)

var resp200 = []string{":status: 200"}

func TestClientPreface(t *testing.T) {
	c := NewClientConn(&Limits{ConnWindow: 1 << 20}, nil)
	out := c.Output()
	if !bytes.HasPrefix(out, []byte(ClientPreface)) {
		t.Fatalf("output does not start with the preface: %q", out)
	}
	got := describeFrames(out[len(ClientPreface):])
	want := []string{"SETTINGS", "WINDOW_UPDATE 0 +983041"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The settings: push off.
	fr := xhttp2.NewFramer(nil, bytes.NewReader(out[len(ClientPreface):]))
	f, _ := fr.ReadFrame()
	if v, ok := f.(*xhttp2.SettingsFrame).Value(xhttp2.SettingEnablePush); !ok || v != 0 {
		t.Fatalf("ENABLE_PUSH = %d, %v", v, ok)
	}
}

// TestClientRules runs one case per rule: frames from the server, the
// events the proxy sees, the frames the client sends back and the
// connection error, if any.
func TestClientRules(t *testing.T) {
	tests := []struct {
		name   string
		lim    *Limits
		run    func(s *backend)
		events []string
		out    []string // nil: not checked
		err    error
	}{
		{name: "response with body and trailers", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, ":status: 200", "content-type: text/plain", "content-length: 5")
			s.fr.WriteData(id, false, []byte("hel"))
			s.fr.WriteDataPadded(id, false, []byte("lo"), []byte{0, 0, 0})
			s.headers(id, true, "x-checksum: 1")
		}, events: []string{"headers 1 200 content-type=text/plain content-length=5", "data 1 3", "data 1 2", "trailers 1 x-checksum=1"}},
		{name: "informational heads", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, ":status: 100")
			s.headers(id, false, ":status: 103", "link: </a.css>")
			s.headers(id, true, resp200...)
		}, events: []string{"headers 1 100", "headers 1 103 link=</a.css>", "headers 1 200 ES"}},
		{name: "trailers-only gRPC error", run: func(s *backend) {
			id := s.open("POST", false, "content-type: application/grpc", "te: trailers")
			s.headers(id, true, ":status: 200", "content-type: application/grpc", "grpc-status: 14", "grpc-message: unavailable")
		}, events: []string{"headers 1 200 content-type=application/grpc grpc-status=14 grpc-message=unavailable ES"}},
		{name: "informational with END_STREAM", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 103")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}, out: []string{"HEADERS 1 :method=GET :scheme=http :authority=backend :path=/ ES", "RST_STREAM 1 PROTOCOL_ERROR"}},
		{name: "101 switching protocols", run: func(s *backend) {
			s.headers(s.open("GET", true), false, ":status: 101")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "no :status", run: func(s *backend) {
			s.headers(s.open("GET", true), true, "server: x")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "status of two digits", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 20")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "status 600", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 600")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "status not digits", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 2x0")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "two :status", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", ":status: 200")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "pseudo-header after a regular field", run: func(s *backend) {
			s.headers(s.open("GET", true), true, "server: x", ":status: 200")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "request pseudo-header in a response", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", ":path: /")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "uppercase field name", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "Server: x")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "control character in a value", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "x: a\rb")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "connection field", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "connection: close")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "transfer-encoding", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "transfer-encoding: chunked")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "te in a response", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "te: trailers")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "pseudo-header in trailers", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, resp200...)
			s.headers(id, true, ":status: 200")
		}, events: []string{"headers 1 200", "reset 1 PROTOCOL_ERROR"}},
		{name: "trailers without END_STREAM", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, resp200...)
			s.headers(id, false, "grpc-status: 0")
		}, events: []string{"headers 1 200", "reset 1 PROTOCOL_ERROR"}},
		{name: "content-length in trailers", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, resp200...)
			s.headers(id, true, "content-length: 0")
		}, events: []string{"headers 1 200", "reset 1 PROTOCOL_ERROR"}},
		{name: "more data than content-length", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, ":status: 200", "content-length: 2")
			s.fr.WriteData(id, true, []byte("abc"))
		}, events: []string{"headers 1 200 content-length=2", "reset 1 PROTOCOL_ERROR"}},
		{name: "less data than content-length", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, ":status: 200", "content-length: 4")
			s.fr.WriteData(id, true, []byte("abc"))
		}, events: []string{"headers 1 200 content-length=4", "reset 1 PROTOCOL_ERROR"}},
		{name: "content-length then END_STREAM at the head", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "content-length: 4")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "trailers before content-length is reached", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, ":status: 200", "content-length: 4")
			s.headers(id, true, "x: y")
		}, events: []string{"headers 1 200 content-length=4", "reset 1 PROTOCOL_ERROR"}},
		{name: "two different content-lengths", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "content-length: 0", "content-length: 1")
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "HEAD response with content-length and no data", run: func(s *backend) {
			s.headers(s.open("HEAD", true), true, ":status: 200", "content-length: 10")
		}, events: []string{"headers 1 200 content-length=10 ES"}},
		{name: "HEAD response with data", run: func(s *backend) {
			id := s.open("HEAD", true)
			s.headers(id, false, ":status: 200")
			s.fr.WriteData(id, true, []byte("x"))
		}, events: []string{"headers 1 200", "reset 1 PROTOCOL_ERROR"}},
		{name: "304 with content-length", run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 304", "content-length: 10")
		}, events: []string{"headers 1 304 content-length=10 ES"}},
		{name: "204 with data", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, ":status: 204")
			s.fr.WriteData(id, true, []byte("x"))
		}, events: []string{"headers 1 204", "reset 1 PROTOCOL_ERROR"}},
		{name: "data before the response head", run: func(s *backend) {
			s.fr.WriteData(s.open("GET", true), true, []byte("x"))
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "data after END_STREAM while the request goes on", run: func(s *backend) {
			id := s.open("POST", false)
			s.headers(id, true, resp200...)
			s.fr.WriteData(id, false, []byte("x"))
		}, events: []string{"headers 1 200 ES", "reset 1 STREAM_CLOSED"}},
		{name: "HEADERS after END_STREAM while the request goes on", run: func(s *backend) {
			id := s.open("POST", false)
			s.headers(id, true, resp200...)
			s.headers(id, true, "x: y")
		}, events: []string{"headers 1 200 ES", "reset 1 STREAM_CLOSED"}},
		{name: "HEADERS on a stream not opened", run: func(s *backend) {
			s.headers(1, true, resp200...)
		}, err: ErrServerStream},
		{name: "HEADERS on an even stream", run: func(s *backend) {
			s.open("GET", true)
			s.headers(2, true, resp200...)
		}, err: ErrServerStream},
		{name: "DATA on a stream not opened", run: func(s *backend) {
			s.fr.WriteData(3, true, []byte("x"))
		}, err: ErrIdleStream},
		{name: "DATA on stream 0", run: func(s *backend) {
			s.fr.WriteData(0, true, []byte("x"))
		}, err: ErrStreamZero},
		{name: "WINDOW_UPDATE on a stream not opened", run: func(s *backend) {
			s.fr.WriteWindowUpdate(1, 1)
		}, err: ErrIdleStream},
		{name: "RST_STREAM on a stream not opened", run: func(s *backend) {
			s.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel)
		}, err: ErrIdleStream},
		{name: "PUSH_PROMISE", run: func(s *backend) {
			id := s.open("GET", true)
			s.fr.WritePushPromise(xhttp2.PushPromiseParam{StreamID: id, PromiseID: 2, BlockFragment: s.block(getReq...), EndHeaders: true})
		}, err: ErrServerPush},
		{name: "SETTINGS_ENABLE_PUSH 1", run: func(s *backend) {
			s.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingEnablePush, Val: 1})
		}, err: ErrEnablePush},
		{name: "invalid SETTINGS_MAX_FRAME_SIZE", run: func(s *backend) {
			s.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 100})
		}, err: ErrBadSetting},
		{name: "SETTINGS and PING are acknowledged", run: func(s *backend) {
			s.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 0})
			s.fr.WritePing(false, [8]byte{1})
			s.fr.WritePing(true, [8]byte{2})
			s.fr.WriteSettingsAck()
		}, out: []string{"SETTINGS ACK", "PING ACK"}},
		{name: "RST_STREAM REFUSED_STREAM is unprocessed", run: func(s *backend) {
			s.fr.WriteRSTStream(s.open("GET", true), xhttp2.ErrCodeRefusedStream)
		}, events: []string{"reset 1 REFUSED_STREAM unprocessed"}, out: []string{"HEADERS 1 :method=GET :scheme=http :authority=backend :path=/ ES"}},
		{name: "RST_STREAM CANCEL", run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, resp200...)
			s.fr.WriteRSTStream(id, xhttp2.ErrCodeCancel)
			s.fr.WriteData(id, true, []byte("late"))
		}, events: []string{"headers 1 200", "reset 1 CANCEL"}},
		{name: "GOAWAY: streams above the last are unprocessed", run: func(s *backend) {
			for range 3 {
				s.open("GET", true)
			}
			s.fr.WriteGoAway(1, xhttp2.ErrCodeNo, []byte("drain"))
			s.headers(1, true, resp200...)
		}, events: []string{"goaway 1 NO_ERROR", "reset 3 REFUSED_STREAM unprocessed", "reset 5 REFUSED_STREAM unprocessed", "headers 1 200 ES"}},
		{name: "frame larger than MAX_FRAME_SIZE", run: func(s *backend) {
			s.fr.WriteData(s.open("GET", true), true, make([]byte, 16385))
		}, err: ErrFrameTooLarge},
		{name: "stream window exceeded", lim: &Limits{ConnWindow: 1 << 20}, run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, resp200...)
			for range 4 {
				s.fr.WriteData(id, false, make([]byte, 16384))
			}
		}, events: []string{"headers 1 200", "data 1 16384", "data 1 16384", "data 1 16384", "reset 1 FLOW_CONTROL_ERROR"}},
		{name: "connection window exceeded", lim: &Limits{StreamWindow: 1 << 20, ConnWindow: 65535}, run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, resp200...)
			for range 4 {
				s.fr.WriteData(id, false, make([]byte, 16384))
			}
		}, events: []string{"headers 1 200", "data 1 16384", "data 1 16384", "data 1 16384"}, err: ErrConnFlowControl},
		{name: "WINDOW_UPDATE overflow on a stream", run: func(s *backend) {
			s.fr.WriteWindowUpdate(s.open("GET", false), 1<<31-1)
		}, events: []string{"reset 1 FLOW_CONTROL_ERROR"}},
		{name: "WINDOW_UPDATE overflow on the connection", run: func(s *backend) {
			s.fr.WriteWindowUpdate(0, 1<<31-1)
		}, err: ErrWindowOverflow},
		{name: "INITIAL_WINDOW_SIZE overflow", run: func(s *backend) {
			id := s.open("GET", false)
			s.fr.WriteWindowUpdate(id, 1<<31-1-65535)
			s.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 65536})
		}, err: ErrWindowOverflow},
		{name: "response head larger than MaxHeaderListSize", lim: &Limits{MaxHeaderListSize: 100}, run: func(s *backend) {
			s.headers(s.open("GET", true), true, ":status: 200", "x: "+strings.Repeat("a", 80))
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "HPACK bomb", lim: &Limits{MaxHeaderListSize: 100}, run: func(s *backend) {
			id := s.open("GET", true)
			s.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: s.block(":status: 200", "x: "+strings.Repeat("a", 60))})
			// Indexed references to the 60-byte field: 1 byte each.
			s.fr.WriteContinuation(id, true, bytes.Repeat([]byte{0xbe}, 401))
		}, err: ErrHeaderBlockTooLarge},
		{name: "CONTINUATION flood", lim: &Limits{MaxContinuations: 2}, run: func(s *backend) {
			id := s.open("GET", true)
			s.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: s.block(resp200...)})
			for range 3 {
				s.fr.WriteContinuation(id, false, []byte{0x80 | 8})
			}
		}, err: ErrContinuationFlood},
		{name: "frame inside a header block", run: func(s *backend) {
			id := s.open("GET", true)
			s.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: s.block(resp200...)})
			s.fr.WritePing(false, [8]byte{})
		}, err: ErrExpectContinuation},
		{name: "PING flood", lim: &Limits{MaxControlFrames: 10}, run: func(s *backend) {
			for range 11 {
				s.fr.WritePing(false, [8]byte{})
			}
		}, err: ErrControlFlood},
		{name: "empty DATA flood", lim: &Limits{MaxControlFrames: 10}, run: func(s *backend) {
			id := s.open("GET", true)
			s.headers(id, false, resp200...)
			for range 11 {
				s.fr.WriteData(id, false, nil)
			}
		}, events: []string{"headers 1 200"}, err: ErrControlFlood},
		{name: "CONTINUATION split response", run: func(s *backend) {
			id := s.open("GET", true)
			blk := s.block(":status: 200", "x-a: 1", "x-b: 2")
			s.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: blk[:2], EndStream: true, Priority: xhttp2.PriorityParam{StreamDep: 0, Weight: 1}, PadLength: 3})
			s.fr.WriteContinuation(id, false, blk[2:5])
			s.fr.WriteContinuation(id, true, blk[5:])
		}, events: []string{"headers 1 200 x-a=1 x-b=2 ES"}},
		{name: "HEADERS depending on itself", run: func(s *backend) {
			id := s.open("GET", true)
			s.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: s.block(resp200...), EndStream: true, EndHeaders: true, Priority: xhttp2.PriorityParam{StreamDep: id}})
		}, events: []string{"reset 1 PROTOCOL_ERROR"}},
		{name: "bad padding", run: func(s *backend) {
			id := s.open("GET", true)
			s.fr.WriteRawFrame(xhttp2.FrameData, 0x8, id, []byte{5, 'a'})
		}, err: ErrBadPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newBackend(t, tt.lim)
			tt.run(s)
			s.flush()
			if got := s.evs(); !slices.Equal(got, tt.events) {
				t.Errorf("events %q, want %q", got, tt.events)
			}
			if !errors.Is(s.err, tt.err) || (s.err == nil) != (tt.err == nil) {
				t.Errorf("error %v, want %v", s.err, tt.err)
			}
			out := s.out()
			if tt.out != nil && !slices.Equal(out, tt.out) {
				t.Errorf("output %q, want %q", out, tt.out)
			}
			if tt.err != nil {
				var ce *ConnError
				errors.As(tt.err, &ce)
				if len(out) == 0 || out[len(out)-1] != "GOAWAY 0 "+ce.Code.String() {
					t.Errorf("output %q does not end with the GOAWAY", out)
				}
				if s.c.Streams() != 0 || s.c.Available() != 0 {
					t.Errorf("%d streams, %d available after a connection error", s.c.Streams(), s.c.Available())
				}
			}
		})
	}
}

func TestClientFirstFrameNotSettings(t *testing.T) {
	s := newBareBackend(t, nil)
	s.fr.WritePing(false, [8]byte{})
	s.flush()
	if s.err != ErrFirstNotSettings {
		t.Fatalf("error %v", s.err)
	}
}

func TestClientRequestHead(t *testing.T) {
	s := newBackend(t, nil)
	hb := s.c.Request("POST", "http", "backend:50051", "/pkg.Svc/Method")
	hb.AddString("Content-Type", "application/grpc")
	hb.AddString("te", "trailers")
	hb.AddString("connection", "keep-alive")
	hb.AddString("transfer-encoding", "chunked")
	hb.Add([]byte("X-Id"), []byte("7"))
	id, err := s.c.OpenStream(hb, false)
	if err != nil || id != 1 {
		t.Fatal(id, err)
	}
	tr := s.c.Trailers()
	tr.AddString("x-sum", "9")
	tr.AddString("te", "trailers")
	if err := s.c.WriteTrailers(id, tr); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"HEADERS 1 :method=POST :scheme=http :authority=backend:50051 :path=/pkg.Svc/Method content-type=application/grpc te=trailers x-id=7",
		"HEADERS 1 x-sum=9 ES",
	}
	if got := s.out(); !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if _, err := s.c.WriteData(id, []byte("x"), true); err != ErrStreamClosed {
		t.Fatalf("WriteData after trailers: %v", err)
	}
	if err := s.c.WriteTrailers(id, s.c.Trailers()); err != ErrStreamClosed {
		t.Fatalf("second trailers: %v", err)
	}
	if _, err := s.c.OpenStream(s.c.Trailers(), true); err != ErrNotRequest {
		t.Fatalf("OpenStream with trailers: %v", err)
	}
	// CONNECT carries only :method and :authority.
	s.c.OpenStream(s.c.Request("CONNECT", "", "example.com:443", ""), false)
	if got := s.out(); !slices.Equal(got, []string{"HEADERS 3 :method=CONNECT :authority=example.com:443"}) {
		t.Fatalf("CONNECT: %q", got)
	}
}

func TestClientLargeHeadIsSplit(t *testing.T) {
	s := newBackend(t, nil)
	hb := s.c.Request("GET", "http", "b", "/")
	for i := range 8 {
		hb.AddString("x-big", strings.Repeat(string(rune('a'+i)), 4000))
	}
	s.c.OpenStream(hb, true)
	fr := xhttp2.NewFramer(nil, bytes.NewReader(s.c.Output()))
	var types []string
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		types = append(types, f.Header().Type.String())
	}
	if len(types) < 2 || types[0] != "HEADERS" || slices.ContainsFunc(types[1:], func(s string) bool { return s != "CONTINUATION" }) {
		t.Fatalf("frames %q, want HEADERS and CONTINUATION", types)
	}
}

func TestClientMaxConcurrentStreams(t *testing.T) {
	s := newBackend(t, nil, xhttp2.Setting{ID: xhttp2.SettingMaxConcurrentStreams, Val: 2})
	if s.c.Available() != 2 {
		t.Fatalf("available %d", s.c.Available())
	}
	a := s.open("GET", true)
	s.open("GET", true)
	if _, err := s.c.OpenStream(s.c.Request("GET", "http", "b", "/"), true); err != ErrNoStreamAvailable {
		t.Fatalf("third stream: %v", err)
	}
	s.headers(a, true, resp200...)
	s.flush()
	if s.c.Available() != 1 || s.c.Streams() != 1 {
		t.Fatalf("available %d, streams %d", s.c.Available(), s.c.Streams())
	}
	// Our own cap applies as well.
	s = newBackend(t, &Limits{MaxConcurrentStreams: 1})
	s.open("GET", true)
	if s.c.Available() != 0 {
		t.Fatalf("available %d with MaxConcurrentStreams 1", s.c.Available())
	}
	// Before the server's SETTINGS, 100 are assumed.
	c := NewClientConn(nil, nil)
	if c.Available() != assumedMaxStreams {
		t.Fatalf("available before SETTINGS: %d", c.Available())
	}
}

func TestClientHeaderListSize(t *testing.T) {
	s := newBackend(t, nil, xhttp2.Setting{ID: xhttp2.SettingMaxHeaderListSize, Val: 200})
	hb := s.c.Request("GET", "http", "b", "/")
	hb.AddString("x", strings.Repeat("a", 100))
	if _, err := s.c.OpenStream(hb, true); err != ErrHeaderListTooLarge {
		t.Fatalf("OpenStream: %v", err)
	}
	if len(s.c.Output()) != 0 || s.c.Streams() != 0 {
		t.Fatal("a refused head was sent")
	}
	id := s.open("GET", false)
	tr := s.c.Trailers()
	tr.AddString("x", strings.Repeat("a", 200))
	if err := s.c.WriteTrailers(id, tr); err != ErrHeaderListTooLarge {
		t.Fatalf("WriteTrailers: %v", err)
	}
}

func TestClientStreamIDsExhausted(t *testing.T) {
	s := newBackend(t, nil)
	s.c.nextID = 1<<31 - 1
	if id := s.open("GET", true); id != 1<<31-1 {
		t.Fatalf("id %d", id)
	}
	if _, err := s.c.OpenStream(s.c.Request("GET", "http", "b", "/"), true); err != ErrStreamIDsExhausted {
		t.Fatalf("OpenStream: %v", err)
	}
	if s.c.Available() != 0 {
		t.Fatal("available after exhaustion")
	}
}

func TestClientSendFlowControl(t *testing.T) {
	s := newBackend(t, nil, xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1000}, xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 20000})
	id := s.open("POST", false)
	body := make([]byte, 70000)
	if n, err := s.c.WriteData(id, body, true); n != 1000 || err != nil {
		t.Fatalf("WriteData = %d, %v", n, err)
	}
	if s.c.SendWindow(id) != 0 {
		t.Fatal("window left")
	}
	// A stream WINDOW_UPDATE opens the stream; the connection window
	// (65535) now limits.
	s.fr.WriteWindowUpdate(id, 100000)
	s.flush()
	if got := s.evs(); !slices.Equal(got, []string{"window 1"}) {
		t.Fatalf("events %q", got)
	}
	if n, _ := s.c.WriteData(id, body[1000:], true); n != 64535 {
		t.Fatalf("WriteData = %d", n)
	}
	// Frames are cut at the server's MAX_FRAME_SIZE.
	want := []string{"HEADERS 1 :method=POST :scheme=http :authority=backend :path=/", "DATA 1 1000", "DATA 1 20000", "DATA 1 20000", "DATA 1 20000", "DATA 1 4535"}
	if got := s.out(); !slices.Equal(got, want) {
		t.Fatalf("output %q", got)
	}
	s.fr.WriteWindowUpdate(0, 10000)
	s.flush()
	if got := s.evs(); !slices.Equal(got, []string{"window 1"}) {
		t.Fatalf("events %q", got)
	}
	if n, _ := s.c.WriteData(id, body[65535:], true); n != 4465 {
		t.Fatalf("WriteData = %d", n)
	}
	if s.c.Streams() != 1 || !slices.Equal(s.out(), []string{"DATA 1 4465 ES"}) {
		t.Fatal("request not ended")
	}
	// A smaller INITIAL_WINDOW_SIZE makes open windows negative; a
	// larger one wakes blocked streams.
	id = s.open("POST", false)
	s.fr.WriteWindowUpdate(0, 100000)
	s.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 0})
	s.flush()
	if n, _ := s.c.WriteData(id, body, false); n != 0 {
		t.Fatalf("WriteData with a zero window = %d", n)
	}
	s.fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 10})
	s.flush()
	if got := s.evs(); !slices.Equal(got, []string{"window 3"}) || s.c.SendWindow(id) != 10 {
		t.Fatalf("events %q, window %d", got, s.c.SendWindow(id))
	}
}

func TestClientReceiveFlowControl(t *testing.T) {
	s := newBackend(t, nil) // stream window 65535, connection 1 MiB
	id := s.open("GET", true)
	s.out()
	s.headers(id, false, resp200...)
	for range 2 {
		s.fr.WriteData(id, false, make([]byte, 16384))
	}
	s.flush()
	s.evs()
	// Nothing goes back until the proxy consumes, then in batches of
	// half a window.
	if got := s.out(); len(got) != 0 {
		t.Fatalf("output before Consumed: %q", got)
	}
	s.c.Consumed(id, 16384)
	if got := s.out(); len(got) != 0 {
		t.Fatalf("output after a quarter: %q", got)
	}
	s.c.Consumed(id, 16384)
	if got := s.out(); !slices.Equal(got, []string{"WINDOW_UPDATE 1 +32768"}) {
		t.Fatalf("output %q", got)
	}
	// A reset stream's unconsumed bytes go back to the connection; DATA
	// the server sent before it saw the reset is ignored but counted.
	s.fr.WriteData(id, false, make([]byte, 16384))
	s.flush()
	s.c.Reset(id, ErrCodeCancel)
	s.fr.WriteData(id, false, make([]byte, 16384))
	s.headers(id, true, "grpc-status: 1")
	s.flush()
	if got := s.evs(); !slices.Equal(got, []string{"data 1 16384"}) {
		t.Fatalf("events %q", got)
	}
	if got := s.out(); !slices.Equal(got, []string{"RST_STREAM 1 CANCEL"}) {
		t.Fatalf("output %q", got)
	}
	if s.c.connCredit != 65536 || s.err != nil {
		t.Fatalf("connection credit %d, err %v", s.c.connCredit, s.err)
	}
}

func TestClientShutdown(t *testing.T) {
	s := newBackend(t, nil)
	id := s.open("GET", true)
	s.c.Shutdown()
	if got := s.out(); !slices.Equal(got, []string{"HEADERS 1 :method=GET :scheme=http :authority=backend :path=/ ES", "GOAWAY 0 NO_ERROR"}) {
		t.Fatalf("output %q", got)
	}
	if _, err := s.c.OpenStream(s.c.Request("GET", "http", "b", "/"), true); err != ErrGoingAway {
		t.Fatalf("OpenStream after Shutdown: %v", err)
	}
	if s.c.Done() {
		t.Fatal("done with a stream open")
	}
	s.headers(id, true, resp200...)
	s.flush()
	if !s.c.Done() {
		t.Fatal("not done")
	}
}

func TestClientGoAwayThenDone(t *testing.T) {
	s := newBackend(t, nil)
	a := s.open("GET", true)
	s.open("GET", true)
	s.fr.WriteGoAway(a, xhttp2.ErrCodeNo, nil)
	s.fr.WriteGoAway(5, xhttp2.ErrCodeNo, nil) // may not raise the last stream
	s.flush()
	want := []string{"goaway 1 NO_ERROR", "reset 3 REFUSED_STREAM unprocessed", "goaway 1 NO_ERROR"}
	if got := s.evs(); !slices.Equal(got, want) {
		t.Fatalf("events %q", got)
	}
	if _, err := s.c.OpenStream(s.c.Request("GET", "http", "b", "/"), true); err != ErrGoingAway {
		t.Fatalf("OpenStream after GOAWAY: %v", err)
	}
	s.headers(a, true, resp200...)
	s.flush()
	if !s.c.Done() {
		t.Fatal("not done")
	}
}

// TestClientByteAtATime feeds a response one byte at a time: the events
// are those of the whole.
func TestClientByteAtATime(t *testing.T) {
	build := func(s *backend) []byte {
		id := s.open("POST", true)
		s.headers(id, false, ":status: 200", "content-type: application/grpc")
		s.fr.WriteData(id, false, []byte("hello"))
		s.fr.WritePing(false, [8]byte{})
		blk := s.block("grpc-status: 0", "grpc-message: ok")
		s.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: blk[:3], EndStream: true})
		s.fr.WriteContinuation(id, true, blk[3:])
		return bytes.Clone(s.buf.Bytes())
	}
	whole := newBackend(t, nil)
	build(whole)
	whole.flush()
	want := whole.evs()

	s := newBackend(t, nil)
	in := build(s)
	s.buf.Reset()
	var got []string
	for i := 1; i <= len(in); i++ {
		// The buffer grows by one byte; Feed consumes whole frames.
		s.buf.Write(in[i-1 : i])
		s.flush()
		got = append(got, s.evs()...)
	}
	if !slices.Equal(got, want) || s.err != nil || s.buf.Len() != 0 {
		t.Fatalf("got %q, want %q (err %v)", got, want, s.err)
	}
}
