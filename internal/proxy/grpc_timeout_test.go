package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"google.golang.org/grpc"
)

// h2cBackend starts a net/http server speaking HTTP/2 in cleartext (with
// prior knowledge) and returns its address. Unlike grpc-go, it does not
// act on grpc-timeout: only a reset (or a closed connection) ends a
// request's context.
func h2cBackend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// h2cClient is a net/http client that speaks HTTP/2 in cleartext with
// prior knowledge; it does not act on grpc-timeout either. Its
// connections are closed when the test ends (CloseIdleConnections would
// miss one whose last stream the transport has not finished with yet).
func h2cClient(t *testing.T) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	var mu sync.Mutex
	var conns []net.Conn
	tr := &http.Transport{Protocols: p, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return &http.Client{Transport: tr}
}

// grpcRequest is a gRPC unary request for path with one empty message
// and the given grpc-timeout ("" for none).
func grpcRequest(t *testing.T, addr, path, timeout string) *http.Request {
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, "http://"+addr+path, bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	mustf(t, err, "request")
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	if timeout != "" {
		req.Header.Set("Grpc-Timeout", timeout)
	}
	return req
}

// TestGRPCTimeoutEnforced: ConnX enforces a call's grpc-timeout itself,
// for a client and a backend that do not (net/http on both sides): the
// client gets DEADLINE_EXCEEDED from ConnX, as a trailers-only answer
// before the response started and as trailers after, and the backend's
// stream is reset (its request context ends). upstreamResponseHeader is
// a minute: the shorter grpc-timeout wins.
func TestGRPCTimeoutEnforced(t *testing.T) {
	cancelled := make(chan string, 2)
	be := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/t.S/Started" {
			w.Header().Set("Content-Type", "application/grpc")
			w.WriteHeader(200)
			w.Write([]byte{0, 0, 0, 0, 1, 'x'})
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
		cancelled <- r.URL.Path
	})
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(be)(c)
		c.Server.H2C = true
		c.Timeouts.UpstreamResponseHeader = time.Minute
	})
	hc := h2cClient(t)

	t.Run("before the response", func(t *testing.T) {
		resp, err := hc.Do(grpcRequest(t, addr, "/t.S/Silent", "200m"))
		mustf(t, err, "call")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "4" ||
			resp.Header.Get("Grpc-Message") != grpcDeadlineMsg || len(body) != 0 {
			t.Fatalf("got %d %v %q", resp.StatusCode, resp.Header, body)
		}
		if p := <-cancelled; p != "/t.S/Silent" {
			t.Fatalf("cancelled %s", p)
		}
	})
	t.Run("after the response started", func(t *testing.T) {
		resp, err := hc.Do(grpcRequest(t, addr, "/t.S/Started", "200m"))
		mustf(t, err, "call")
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, []byte{0, 0, 0, 0, 1, 'x'}) ||
			resp.Trailer.Get("Grpc-Status") != "4" || resp.Trailer.Get("Grpc-Message") != grpcDeadlineMsg {
			t.Fatalf("got %d %q %v, trailer %v", resp.StatusCode, body, err, resp.Trailer)
		}
		if p := <-cancelled; p != "/t.S/Started" {
			t.Fatalf("cancelled %s", p)
		}
	})
	t.Run("upstreamResponseHeader shorter", func(t *testing.T) {
		_, addr := proxyFor(t, nil, func(c *config.Config) {
			grpcPool(be)(c)
			c.Server.H2C = true
			c.Timeouts.UpstreamResponseHeader = 100 * time.Millisecond
		})
		resp, err := h2cClient(t).Do(grpcRequest(t, addr, "/t.S/Silent", "1H"))
		mustf(t, err, "call")
		resp.Body.Close()
		if resp.Header.Get("Grpc-Status") != "4" || resp.Header.Get("Grpc-Message") != "connx: timeout" {
			t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
		}
		<-cancelled
	})
}

// TestGRPCStreamOutlivesTimeouts: a bidirectional call without
// grpc-timeout (a grpc-go client with no deadline) stays open, quiet,
// across many times upstreamResponseHeader, upstreamRead and clientBody
// once its response has started: those timeouts are for the exchange
// of one request, not for a stream. The wait is on ConnX's own clock
// (the sweeps that enforce the timeouts have run past them).
func TestGRPCStreamOutlivesTimeouts(t *testing.T) {
	be := startGRPCBackend(t)
	srv, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(be.addr)(c)
		c.Server.H2C = true
		c.Timeouts.UpstreamResponseHeader = 100 * time.Millisecond
		c.Timeouts.UpstreamRead = 100 * time.Millisecond
		c.Timeouts.ClientBody = 100 * time.Millisecond
	})
	cc := grpcDial(t, addr, nil)
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: no grpc-timeout
	defer cancel()
	s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/test.Echo/Bidi")
	mustf(t, err, "stream")
	for i := range 3 {
		msg := []byte{byte(i)}
		mustf(t, s.SendMsg(&msg), "send %d", i)
		var got []byte
		if err := s.RecvMsg(&got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
		from := srv.clock.Load()
		waitFor(t, "ConnX's clock to pass 10 timeouts", func() bool { return srv.clock.Load() > from+int64(time.Second) })
	}
	mustf(t, s.CloseSend(), "close")
	var m []byte
	if err := s.RecvMsg(&m); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// TestH2PoolResponseRequestID: a response from an HTTP/2 backend carries
// the request ID back to the client, as one from an HTTP/1.1 backend
// does. (It was lost: the forwarded head that holds the ID was released
// before the response head was written.)
func TestH2PoolResponseRequestID(t *testing.T) {
	be := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Request-Id"))
	})
	_, addr := proxyFor(t, nil, grpcPool(be))
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: trace-42\r\n\r\n")
	resp, body := rc.response(http.MethodGet)
	if body != "trace-42" || resp.Header.Get("X-Request-Id") != "trace-42" {
		t.Fatalf("backend saw %q, client got %q", body, resp.Header.Get("X-Request-Id"))
	}
}
