package http2

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// rawCodec passes *[]byte messages through untouched and marshals
// protobuf messages (the health service's) as usual, so the test service
// needs no generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	return proto.Unmarshal(data, v.(proto.Message))
}

func (rawCodec) Name() string { return "proto" }

// echoService is test.Echo: Unary echoes (or fails for "fail"), Stream
// sends as many messages as the request's first byte, Bidi echoes every
// message, Early fails before reading anything.
var echoService = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		if string(in) == "fail" {
			return nil, status.Error(codes.NotFound, "no such thing")
		}
		return &in, nil
	}}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Stream", ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			var in []byte
			if err := s.RecvMsg(&in); err != nil {
				return err
			}
			for i := range int(in[0]) {
				msg := bytes.Repeat([]byte{byte(i)}, 1000*i)
				if err := s.SendMsg(&msg); err != nil {
					return err
				}
			}
			return nil
		}},
		{StreamName: "Bidi", ServerStreams: true, ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			for {
				var in []byte
				if err := s.RecvMsg(&in); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := s.SendMsg(&in); err != nil {
					return err
				}
			}
		}},
		{StreamName: "Early", ServerStreams: true, ClientStreams: true, Handler: func(any, grpc.ServerStream) error {
			return status.Error(codes.Aborted, "early")
		}},
	},
}

func startGRPC(t *testing.T) (*grpc.Server, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.MaxRecvMsgSize(32<<20), grpc.MaxSendMsgSize(32<<20))
	srv.RegisterService(&echoService, struct{}{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return srv, ln.Addr().String()
}

// grpcMsg frames one gRPC message (uncompressed).
func grpcMsg(p []byte) []byte {
	b := make([]byte, 5+len(p))
	binary.BigEndian.PutUint32(b[1:], uint32(len(p)))
	copy(b[5:], p)
	return b
}

// grpcMsgs splits a response body into its messages.
func grpcMsgs(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var msgs [][]byte
	for len(body) > 0 {
		if len(body) < 5 || int(binary.BigEndian.Uint32(body[1:])) > len(body)-5 {
			t.Fatalf("truncated gRPC message")
		}
		n := 5 + int(binary.BigEndian.Uint32(body[1:]))
		msgs = append(msgs, body[5:n])
		body = body[n:]
	}
	return msgs
}

// unary makes a unary call: one message, end of request, whole response.
func unary(t *testing.T, tc *testClient, addr, method string, req []byte) response {
	t.Helper()
	c, err := tc.open(grpcHead(addr, method), false)
	if err != nil {
		t.Fatal(err)
	}
	c.send(grpcMsg(req), true)
	return c.readResponse()
}

func TestClientE2EGRPC(t *testing.T) {
	srv, addr := startGRPC(t)
	tc := dialTestClient(t, addr, nil)

	t.Run("health check", func(t *testing.T) {
		req, _ := proto.Marshal(&healthpb.HealthCheckRequest{})
		r := unary(t, tc, addr, "/grpc.health.v1.Health/Check", req)
		if r.status != 200 || fieldValue(r.head, "content-type") != "application/grpc" || fieldValue(r.trailers, "grpc-status") != "0" {
			t.Fatalf("got %+v", r)
		}
		var resp healthpb.HealthCheckResponse
		if msgs := grpcMsgs(t, r.body); len(msgs) != 1 || proto.Unmarshal(msgs[0], &resp) != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("body %x", r.body)
		}
	})
	t.Run("health check of an unknown service is trailers-only", func(t *testing.T) {
		req, _ := proto.Marshal(&healthpb.HealthCheckRequest{Service: "nope"})
		r := unary(t, tc, addr, "/grpc.health.v1.Health/Check", req)
		if r.status != 200 || r.trailers != nil || fieldValue(r.head, "grpc-status") != "5" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("unary", func(t *testing.T) {
		r := unary(t, tc, addr, "/test.Echo/Unary", []byte("hello"))
		if msgs := grpcMsgs(t, r.body); len(msgs) != 1 || string(msgs[0]) != "hello" || fieldValue(r.trailers, "grpc-status") != "0" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("trailers-only error", func(t *testing.T) {
		r := unary(t, tc, addr, "/test.Echo/Unary", []byte("fail"))
		if r.status != 200 || len(r.body) != 0 || r.trailers != nil ||
			fieldValue(r.head, "grpc-status") != "5" || fieldValue(r.head, "grpc-message") != "no such thing" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		r := unary(t, tc, addr, "/test.Echo/Stream", []byte{40})
		msgs := grpcMsgs(t, r.body)
		if len(msgs) != 40 || fieldValue(r.trailers, "grpc-status") != "0" {
			t.Fatalf("%d messages, trailers %v", len(msgs), r.trailers)
		}
		for i, m := range msgs {
			if !bytes.Equal(m, bytes.Repeat([]byte{byte(i)}, 1000*i)) {
				t.Fatalf("message %d differs", i)
			}
		}
	})
	t.Run("bidi with a 16 MiB message", func(t *testing.T) {
		c, _ := tc.open(grpcHead(addr, "/test.Echo/Bidi"), false)
		big := make([]byte, 16<<20)
		for i := range big {
			big[i] = byte(i * 7)
		}
		for _, msg := range [][]byte{[]byte("small"), big} {
			c.send(grpcMsg(msg), false)
			var got []byte
			for len(got) < 5+len(msg) {
				ev := c.recv()
				if ev.Kind == EventReset || ev.EndStream {
					t.Fatalf("event %+v", ev)
				}
				got = append(got, ev.Data...)
			}
			if m := grpcMsgs(t, got); len(m) != 1 || !bytes.Equal(m[0], msg) {
				t.Fatalf("echo of %d bytes differs", len(msg))
			}
		}
		c.send(nil, true)
		if r := c.readResponse(); fieldValue(r.trailers, "grpc-status") != "0" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("RST_STREAM from the server", func(t *testing.T) {
		// The handler returns while the request is still open: grpc-go
		// sends a trailers-only response, then RST_STREAM(NO_ERROR).
		c, _ := tc.open(grpcHead(addr, "/test.Echo/Early"), false)
		r := c.readResponse()
		if fieldValue(r.head, "grpc-status") != "10" {
			t.Fatalf("got %+v", r)
		}
		if ev := c.recv(); ev.Kind != EventReset || ev.Code != ErrCodeNo || ev.Unprocessed {
			t.Fatalf("event %+v", ev)
		}
	})
	t.Run("GOAWAY", func(t *testing.T) {
		c, _ := tc.open(grpcHead(addr, "/test.Echo/Bidi"), false)
		c.send(grpcMsg([]byte("ping")), false)
		if ev := c.recv(); ev.Kind != EventHeaders {
			t.Fatalf("event %+v", ev)
		}
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		// The first GOAWAY (last stream 2^31-1) stops new streams.
		if ev := tc.waitGoAway(t, 1); ev.Code != ErrCodeNo {
			t.Fatalf("GOAWAY %+v", ev)
		}
		if _, err := tc.open(grpcHead(addr, "/test.Echo/Unary"), true); err != ErrGoingAway {
			t.Fatalf("OpenStream after GOAWAY: %v", err)
		}
		// The stream in progress runs to its end.
		c.send(nil, true)
		r := c.readResponse()
		if msgs := grpcMsgs(t, r.body); len(msgs) != 1 || fieldValue(r.trailers, "grpc-status") != "0" {
			t.Fatalf("got %+v", r)
		}
		if ev := tc.waitGoAway(t, 2); ev.Stream != c.id {
			t.Fatalf("second GOAWAY %+v, want last stream %d", ev, c.id)
		}
		var done bool
		tc.exec(func() { done = tc.cc.Done() })
		if !done {
			t.Fatal("connection not done")
		}
		<-stopped
	})
}

// waitGoAway waits for the n-th GOAWAY and returns it.
func (tc *testClient) waitGoAway(t *testing.T, n int) ClientEvent {
	t.Helper()
	timeout := time.After(hangLimit)
	for {
		tc.mu.Lock()
		evs := tc.goAways
		tc.mu.Unlock()
		if len(evs) >= n {
			return evs[n-1]
		}
		select {
		case <-tc.goAwayCh:
		case <-tc.ended:
			tc.mu.Lock()
			evs = tc.goAways
			tc.mu.Unlock()
			if len(evs) >= n {
				return evs[n-1]
			}
			t.Fatalf("connection ended (%v) before GOAWAY %d", tc.err, n)
		case <-timeout:
			t.Fatalf("no GOAWAY %d", n)
		}
	}
}
