package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// rawCodec passes *[]byte messages through untouched (and protobuf
// messages as usual), so the test service needs no generated code.
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

// grpcBackend is a grpc-go server with test.Echo: Unary echoes (fails
// with NOT_FOUND for "fail", waits for "slow" until the call is
// cancelled), Stream sends as many messages as the request's first byte,
// Sink answers how many bytes its messages had, Bidi echoes every
// message. calls counts the calls it served.
type grpcBackend struct {
	addr        string
	calls       atomic.Int64
	cancelled   atomic.Int64 // "slow" calls that saw their cancellation
	unavailable atomic.Bool  // Unary and Sink answer UNAVAILABLE after reading the request
	srv         *grpc.Server
	health      *health.Server

	mu    sync.Mutex
	conns []net.Conn // accepted, for kill
}

// kill closes the backend's connections under the server's feet, as a
// process that dies would, and stops it.
func (b *grpcBackend) kill() {
	b.mu.Lock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.srv.Stop()
}

// trackingListener records the connections it accepts.
type trackingListener struct {
	net.Listener
	b *grpcBackend
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.b.mu.Lock()
		l.b.conns = append(l.b.conns, c)
		l.b.mu.Unlock()
	}
	return c, err
}

func startGRPCBackend(t *testing.T, opts ...grpc.ServerOption) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &grpcBackend{addr: ln.Addr().String()}
	opts = append(opts, grpc.ForceServerCodec(rawCodec{}), grpc.MaxRecvMsgSize(32<<20), grpc.MaxSendMsgSize(32<<20))
	b.srv = grpc.NewServer(opts...)
	b.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			b.calls.Add(1)
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			if b.unavailable.Load() {
				return nil, status.Error(codes.Unavailable, "backend unavailable")
			}
			switch string(in) {
			case "fail":
				return nil, status.Error(codes.NotFound, "no such thing")
			case "slow":
				<-ctx.Done()
				b.cancelled.Add(1)
				return nil, ctx.Err()
			}
			return &in, nil
		}}},
		Streams: []grpc.StreamDesc{
			{StreamName: "Stream", ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
				b.calls.Add(1)
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
			{StreamName: "Sink", ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
				b.calls.Add(1)
				n := 0
				for {
					var in []byte
					if err := s.RecvMsg(&in); err == io.EOF {
						break
					} else if err != nil {
						return err
					}
					n += len(in)
				}
				if b.unavailable.Load() {
					return status.Error(codes.Unavailable, "backend unavailable")
				}
				out := []byte(strconv.Itoa(n))
				return s.SendMsg(&out)
			}},
			{StreamName: "Bidi", ServerStreams: true, ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
				b.calls.Add(1)
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
		},
	}, struct{}{})
	b.health = health.NewServer()
	healthpb.RegisterHealthServer(b.srv, b.health)
	go func() { _ = b.srv.Serve(trackingListener{ln, b}) }()
	t.Cleanup(b.srv.Stop)
	return b
}

// grpcPool puts the backends in an h2c pool that every request goes to.
func grpcPool(addrs ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.Backends = nil
		for _, a := range addrs {
			c.Backends = append(c.Backends, config.Backend{URL: "http://" + a, Weight: 1})
		}
		c.Upstream.Protocol = config.ProtocolH2C
	}
}

// grpcDial connects a grpc-go client to ConnX: h2c with prior knowledge,
// or TLS with ALPN h2 when tc is set.
func grpcDial(t *testing.T, addr string, tc *tls.Config) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}), grpc.MaxCallRecvMsgSize(32<<20), grpc.MaxCallSendMsgSize(32<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func unaryCall(ctx context.Context, cc *grpc.ClientConn, msg []byte) ([]byte, error) {
	var out []byte
	err := cc.Invoke(ctx, "/test.Echo/Unary", &msg, &out)
	return out, err
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestGRPCCalls runs grpc-go calls through ConnX to grpc-go backends in
// an h2c pool, the client over h2c and over TLS (ALPN h2).
func TestGRPCCalls(t *testing.T) {
	be := startGRPCBackend(t)
	e := newTLSEnv(t, be.addr, func(c *config.Config) {
		grpcPool(be.addr)(c)
		c.Server.H2C = true
	})
	tlsCfg := &tls.Config{RootCAs: e.ca.Pool(), ServerName: "example.com", NextProtos: []string{"h2"}}
	for _, tc := range []struct {
		name string
		cc   *grpc.ClientConn
	}{
		{"h2c", grpcDial(t, e.plain, nil)},
		{"tls", grpcDial(t, e.addr, tlsCfg)},
	} {
		cc := tc.cc
		t.Run(tc.name+"/unary", func(t *testing.T) {
			out, err := unaryCall(testCtx(t), cc, []byte("hello"))
			if err != nil || string(out) != "hello" {
				t.Fatalf("got %q, %v", out, err)
			}
		})
		t.Run(tc.name+"/trailers-only error", func(t *testing.T) {
			_, err := unaryCall(testCtx(t), cc, []byte("fail"))
			if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "no such thing" {
				t.Fatalf("got %v", err)
			}
		})
		t.Run(tc.name+"/server streaming", func(t *testing.T) {
			s, err := cc.NewStream(testCtx(t), &grpc.StreamDesc{ServerStreams: true}, "/test.Echo/Stream")
			if err != nil {
				t.Fatal(err)
			}
			req := []byte{40}
			if err := s.SendMsg(&req); err != nil {
				t.Fatal(err)
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				var m []byte
				err := s.RecvMsg(&m)
				if err == io.EOF {
					if i != 40 {
						t.Fatalf("%d messages", i)
					}
					break
				}
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(m, bytes.Repeat([]byte{byte(i)}, 1000*i)) {
					t.Fatalf("message %d differs", i)
				}
			}
		})
		t.Run(tc.name+"/bidi with a 16 MiB message", func(t *testing.T) {
			s, err := cc.NewStream(testCtx(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/test.Echo/Bidi")
			if err != nil {
				t.Fatal(err)
			}
			big := make([]byte, 16<<20)
			for i := range big {
				big[i] = byte(i * 7)
			}
			for _, msg := range [][]byte{[]byte("small"), big, []byte("after")} {
				if err := s.SendMsg(&msg); err != nil {
					t.Fatal(err)
				}
				var got []byte
				if err := s.RecvMsg(&got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes differs (%d bytes)", len(msg), len(got))
				}
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var m []byte
			if err := s.RecvMsg(&m); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
		})
		t.Run(tc.name+"/deadline exceeded", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
			defer cancel()
			before := be.cancelled.Load()
			_, err := unaryCall(ctx, cc, []byte("slow"))
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("got %v", err)
			}
			// The client's RST_STREAM reached the backend as a reset.
			waitFor(t, "the backend's call cancelled", func() bool { return be.cancelled.Load() > before })
			// The connection still serves calls.
			if out, err := unaryCall(testCtx(t), cc, []byte("again")); err != nil || string(out) != "again" {
				t.Fatalf("after: %q, %v", out, err)
			}
		})
	}
}

// TestGRPCPerCallBalancing: 1,000 concurrent calls on one client
// connection are spread over three backends call by call (round-robin:
// the counts differ by at most one per event loop), where a connection
// balancer would pin them all to one.
func TestGRPCPerCallBalancing(t *testing.T) {
	bes := []*grpcBackend{startGRPCBackend(t), startGRPCBackend(t), startGRPCBackend(t)}
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(bes[0].addr, bes[1].addr, bes[2].addr)(c)
		c.Server.H2C = true
	})
	cc := grpcDial(t, addr, nil)
	ctx := testCtx(t)
	const calls = 1000
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := []byte{byte(i), byte(i >> 8)}
			out, err := unaryCall(ctx, cc, msg)
			if err == nil && !bytes.Equal(out, msg) {
				err = errors.New("wrong echo")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var total int64
	for i, b := range bes {
		n := b.calls.Load()
		total += n
		t.Logf("backend %d: %d calls", i, n)
		if n < calls/3-2 || n > calls/3+2 {
			t.Errorf("backend %d served %d of %d calls, want about %d", i, n, calls, calls/3)
		}
	}
	if total != calls {
		t.Errorf("backends served %d calls, want %d", total, calls)
	}
}

// TestGRPCBackendDown: a call to a pool whose only backend is down gets
// UNAVAILABLE from ConnX, as a gRPC status (HTTP 200, trailers-only).
func TestGRPCBackendDown(t *testing.T) {
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(deadPort(t))(c)
		c.Server.H2C = true
	})
	cc := grpcDial(t, addr, nil)
	for range 3 { // a connect failure, then the backend marked down
		_, err := unaryCall(testCtx(t), cc, []byte("x"))
		if s := status.Convert(err); s.Code() != codes.Unavailable || s.Message() == "" {
			t.Fatalf("got %v", err)
		}
	}
}

// TestGRPCTimeoutFromConnX: when the backend does not answer within
// upstreamResponseHeader, ConnX fails the call with DEADLINE_EXCEEDED.
func TestGRPCTimeoutFromConnX(t *testing.T) {
	be := startGRPCBackend(t)
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(be.addr)(c)
		c.Server.H2C = true
		c.Timeouts.UpstreamResponseHeader = 100 * time.Millisecond
	})
	cc := grpcDial(t, addr, nil)
	_, err := unaryCall(testCtx(t), cc, []byte("slow"))
	if s := status.Convert(err); s.Code() != codes.DeadlineExceeded || s.Message() != "connx: timeout" {
		t.Fatalf("got %v", err)
	}
}

// TestGRPCRateLimited: a call ConnX refuses for the rate limit gets
// RESOURCE_EXHAUSTED, not HTTP 429.
func TestGRPCRateLimited(t *testing.T) {
	be := startGRPCBackend(t)
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(be.addr)(c)
		c.Server.H2C = true
		c.RateLimit.Enabled = true
		c.RateLimit.RequestsPerSec = 0.001 // no refill during the test
		c.RateLimit.Burst = 1
	})
	cc := grpcDial(t, addr, nil)
	if _, err := unaryCall(testCtx(t), cc, []byte("a")); err != nil {
		t.Fatal(err)
	}
	_, err := unaryCall(testCtx(t), cc, []byte("b"))
	if s := status.Convert(err); s.Code() != codes.ResourceExhausted || s.Message() != "connx: rate limited" {
		t.Fatalf("got %v", err)
	}
}

// TestH2CPoolHTTP1Client: an HTTP/1.1 client's requests to an h2c pool
// (a net/http HTTP/2 backend): a body both ways, and the response's
// trailers as a chunked trailer section for a client that sent
// "TE: trailers", dropped for one that did not.
func TestH2CPoolHTTP1Client(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-TE", r.Header.Get("Te"))
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
		w.Header().Set("X-Sum", strconv.Itoa(len(body)))
	}))
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)
	_, addr := proxyFor(t, nil, grpcPool(ts.Listener.Addr().String()))

	rc := dialProxy(t, addr)
	body := strings.Repeat("x", 300<<10) // more than the stream window
	rc.send("POST /up HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	resp, got := rc.response(http.MethodPost)
	if resp.StatusCode != 200 || got != "POST /up 307200" || resp.Header.Get("X-Proto") != "HTTP/2.0" ||
		resp.Header.Get("X-TE") != "trailers" || resp.Trailer.Get("X-Sum") != "307200" {
		t.Fatalf("got %d %q, header %v, trailer %v", resp.StatusCode, got, resp.Header, resp.Trailer)
	}
	// Chunked upload, no TE: trailers: the trailers are dropped.
	rc.send("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
	resp, got = rc.response(http.MethodPost)
	if resp.StatusCode != 200 || got != "POST /c 5" || len(resp.Trailer) != 0 || resp.Header.Get("X-TE") != "" {
		t.Fatalf("got %d %q, header %v, trailer %v", resp.StatusCode, got, resp.Header, resp.Trailer)
	}
	// Expect: 100-continue: the backend's 100 is relayed.
	rc.send("PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if line, err := rc.br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, %v; want a 100 Continue", line, err)
	}
	if line, _ := rc.br.ReadString('\n'); line != "\r\n" {
		t.Fatalf("100 Continue followed by %q", line)
	}
	rc.send("abcd")
	resp, got = rc.response(http.MethodPut)
	if resp.StatusCode != 200 || got != "PUT /e 4" {
		t.Fatalf("got %d %q", resp.StatusCode, got)
	}
	// And the connection is kept.
	resp, got = rc.get("/g")
	if resp.StatusCode != 200 || got != "GET /g 0" {
		t.Fatalf("got %d %q", resp.StatusCode, got)
	}
}

// TestH2CPoolSlowClient: a client that does not read its response holds
// the backend's HTTP/2 windows — ConnX returns response bytes to them only
// as the client takes them — so what the backend manages to write stays
// bounded; once the client reads, every byte arrives intact.
func TestH2CPoolSlowClient(t *testing.T) {
	const total = 64 << 20
	var sent atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 32<<10)
		src := patternReader(total)
		for {
			n, _ := src.Read(buf)
			if n == 0 {
				return
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			sent.Add(int64(n))
		}
	}))
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)
	_, addr := proxyFor(t, nil, grpcPool(ts.Listener.Addr().String()))

	rc := dialProxy(t, addr)
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	stalled := waitStalled(t, "the backend to stall", &sent, 300*time.Millisecond)
	t.Logf("the backend stalled after %d KiB", stalled>>10)
	// Socket buffers on both sides, connectionBuffer, the stream window
	// and net/http's own buffers: a few MiB, not the response.
	if stalled > 16<<20 {
		t.Fatalf("the backend wrote %d MiB to a client that reads nothing", stalled>>20)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.c.SetReadDeadline(time.Now().Add(ioTimeout))
	pc := newPatternChecker()
	if _, err := io.Copy(pc, resp.Body); err != nil {
		t.Fatal(err)
	}
	pc.check(t, total)
}

// TestGRPCHealthCheck: the active checks of an h2c pool are gRPC health
// checks (healthCheck.kind auto): a backend that answers NOT_SERVING is
// taken out, and calls go to the other one; SERVING brings it back.
func TestGRPCHealthCheck(t *testing.T) {
	a, b := startGRPCBackend(t), startGRPCBackend(t)
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	srv, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(a.addr, b.addr)(c)
		c.Server.H2C = true
		c.HealthCheck.Enabled = true
		c.HealthCheck.Interval = 100 * time.Millisecond
		c.HealthCheck.Jitter = 0
		c.HealthCheck.HealthyThreshold = 1
		c.HealthCheck.UnhealthyThreshold = 1
	})
	waitFor(t, "backend 0 out, backend 1 in", func() bool { return !availableAt(srv, 0) && availableAt(srv, 1) })
	cc := grpcDial(t, addr, nil)
	for range 20 {
		if _, err := unaryCall(testCtx(t), cc, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls.Load() != 0 || b.calls.Load() != 20 {
		t.Fatalf("calls: NOT_SERVING backend %d, SERVING backend %d", a.calls.Load(), b.calls.Load())
	}
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	waitFor(t, "backend 0 back", func() bool { return availableAt(srv, 0) })
}

// TestGRPCBackendKilledMidStream: the backend of a bidirectional call
// dies after the first echo; the client gets UNAVAILABLE (trailers from
// ConnX), and nothing hangs.
func TestGRPCBackendKilledMidStream(t *testing.T) {
	be := startGRPCBackend(t)
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(be.addr)(c)
		c.Server.H2C = true
	})
	cc := grpcDial(t, addr, nil)
	s, err := cc.NewStream(testCtx(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/test.Echo/Bidi")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("one")
	if err := s.SendMsg(&msg); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := s.RecvMsg(&got); err != nil || string(got) != "one" {
		t.Fatalf("echo %q, %v", got, err)
	}
	be.kill()
	err = s.RecvMsg(&got)
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "connx: backend connection lost" {
		t.Fatalf("after the backend died: %v", err)
	}
	// The client connection still works: the next call finds no backend.
	if _, err := unaryCall(testCtx(t), cc, []byte("x")); status.Code(err) != codes.Unavailable {
		t.Fatalf("next call: %v", err)
	}
}
