package proxy

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusingBackend is an HTTP/2 server (cleartext, prior knowledge) that
// refuses every stream with RST_STREAM REFUSED_STREAM, as a server at
// its limit or shutting down may: nothing of the call was processed.
func refusingBackend(t *testing.T, refused *atomic.Int64) string {
	return rawBackend(t, func(c net.Conn) {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		if fr.WriteSettings() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				refused.Add(1)
				_ = fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
			}
		}
	})
}

// grpcRetryPool is grpcPool with a retry budget that never runs out
// during the test, so that every retry the rules allow happens.
func grpcRetryPool(addrs ...string) func(*config.Config) {
	return func(c *config.Config) {
		grpcPool(addrs...)(c)
		c.Server.H2C = true
		c.LoadBalancing.RetryBudget = 100
		c.Upstream.Retries = 1
	}
}

// TestGRPCRetryRefusedStream: a backend that refuses the stream
// (REFUSED_STREAM) processed nothing, so ConnX sends the call — head and
// message, kept for this — to another backend. Every call with a 20 KiB
// message succeeds although half of them went to the refusing backend
// first.
func TestGRPCRetryRefusedStream(t *testing.T) {
	var refused atomic.Int64
	good := startGRPCBackend(t)
	_, addr := proxyFor(t, nil, grpcRetryPool(refusingBackend(t, &refused), good.addr))
	cc := grpcDial(t, addr, nil)
	msg := bytes.Repeat([]byte("0123456789"), 2048)
	for i := range 10 {
		msg[0] = byte(i)
		out, err := unaryCall(testCtx(t), cc, msg)
		if err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("call %d: %d bytes, %v", i, len(out), err)
		}
	}
	if refused.Load() == 0 || good.calls.Load() != 10 {
		t.Fatalf("refused %d, served %d", refused.Load(), good.calls.Load())
	}
}

// TestGRPCRetryUnavailable: a trailers-only UNAVAILABLE (the backend
// answered nothing else) is retried on another backend, with the
// request's messages sent again — while they fit the replay copy
// (grpcReplayMax). A client-streaming call that sent more is not
// retried: its client gets the backend's UNAVAILABLE.
func TestGRPCRetryUnavailable(t *testing.T) {
	down, up := startGRPCBackend(t), startGRPCBackend(t)
	down.unavailable.Store(true)
	_, addr := proxyFor(t, nil, grpcRetryPool(down.addr, up.addr))
	cc := grpcDial(t, addr, nil)

	t.Run("unary, retried", func(t *testing.T) {
		msg := bytes.Repeat([]byte("x"), 20<<10)
		for i := range 10 {
			if out, err := unaryCall(testCtx(t), cc, msg); err != nil || !bytes.Equal(out, msg) {
				t.Fatalf("call %d: %d bytes, %v", i, len(out), err)
			}
		}
		if down.calls.Load() == 0 || up.calls.Load() != 10 {
			t.Fatalf("down %d, up %d", down.calls.Load(), up.calls.Load())
		}
	})
	sink := func(total, each int) (string, error) {
		s, err := cc.NewStream(testCtx(t), &grpc.StreamDesc{ClientStreams: true}, "/test.Echo/Sink")
		if err != nil {
			return "", err
		}
		m := bytes.Repeat([]byte("y"), each)
		for sent := 0; sent < total; sent += each {
			if err := s.SendMsg(&m); err != nil {
				break // the error comes with RecvMsg
			}
		}
		if err := s.CloseSend(); err != nil {
			return "", err
		}
		var out []byte
		err = s.RecvMsg(&out)
		return string(out), err
	}
	t.Run("client streaming within the replay copy, retried", func(t *testing.T) {
		for i := range 4 {
			out, err := sink(40<<10, 4<<10)
			if err != nil || out != strconv.Itoa(40<<10) {
				t.Fatalf("call %d: %q, %v", i, out, err)
			}
		}
	})
	t.Run("client streaming beyond the replay copy, not retried", func(t *testing.T) {
		before := down.calls.Load()
		var failed int
		for i := range 4 {
			out, err := sink(256<<10, 16<<10)
			switch {
			case err == nil && out == strconv.Itoa(256<<10):
			case status.Code(err) == codes.Unavailable && status.Convert(err).Message() == "backend unavailable":
				failed++
			default:
				t.Fatalf("call %d: %q, %v", i, out, err)
			}
		}
		if n := down.calls.Load() - before; failed == 0 || int64(failed) != n {
			t.Fatalf("%d calls failed with the backend's UNAVAILABLE, %d went to it", failed, n)
		}
	})
}
