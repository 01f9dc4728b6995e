package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcCalls returns srv's connx_grpc_calls_total counts as
// "backend status" -> count.
func grpcCalls(srv *Server) map[string]uint64 {
	var snap stats.Snapshot
	srv.Stats(&snap)
	m := map[string]uint64{}
	for _, g := range snap.GRPCCalls {
		m[g.Backend+" "+g.Status] += g.Count
	}
	return m
}

// TestGRPCCallMetrics: connx_grpc_calls_total counts each call of an h2c
// pool by the gRPC status its client got — from the backend's trailers,
// its trailers-only answer, ConnX's own answers (deadline, no backend) —
// and a cancelled call as CANCELLED.
func TestGRPCCallMetrics(t *testing.T) {
	be := startGRPCBackend(t)
	srv, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(be.addr)(c)
		c.Server.H2C = true
	})
	url := "http://" + be.addr
	cc := grpcDial(t, addr, nil)
	for range 3 {
		if _, err := unaryCall(testCtx(t), cc, []byte("ok")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := unaryCall(testCtx(t), cc, []byte("fail")); status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	// Server streaming: the status comes in trailers after messages.
	s, err := cc.NewStream(testCtx(t), &grpc.StreamDesc{ServerStreams: true}, "/test.Echo/Stream")
	mustf(t, err, "stream")
	req := []byte{3}
	mustf(t, s.SendMsg(&req), "send")
	mustf(t, s.CloseSend(), "close")
	for {
		var m []byte
		if err := s.RecvMsg(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// A call the client cancels.
	ctx, cancel := context.WithCancel(testCtx(t))
	before := be.cancelled.Load()
	errc := make(chan error, 1)
	go func() {
		_, err := unaryCall(ctx, cc, []byte("slow"))
		errc <- err
	}()
	waitFor(t, "the slow call at the backend", func() bool { return be.calls.Load() == 6 })
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Fatal(err)
	}
	waitFor(t, "the backend's call cancelled", func() bool { return be.cancelled.Load() > before })
	want := map[string]uint64{url + " 0": 4, url + " 5": 1, url + " 1": 1}
	waitFor(t, "the counts", func() bool { return equalCounts(grpcCalls(srv), want) })

	// ConnX's own answers: a backend that is down (connect failure, then
	// no backend available), and grpc-timeout.
	dead, daddr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(deadPort(t))(c)
		c.Server.H2C = true
	})
	dc := grpcDial(t, daddr, nil)
	for range 2 {
		if _, err := unaryCall(testCtx(t), dc, []byte("x")); status.Code(err) != codes.Unavailable {
			t.Fatal(err)
		}
	}
	var n uint64
	for k, v := range grpcCalls(dead) {
		if k[len(k)-3:] != " 14" {
			t.Fatalf("%s: %d", k, v)
		}
		n += v
	}
	if n != 2 {
		t.Fatalf("%d UNAVAILABLE calls counted, want 2: %v", n, grpcCalls(dead))
	}

	hb := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	tsrv, taddr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(hb)(c)
		c.Server.H2C = true
	})
	resp, err := h2cClient(t).Do(grpcRequest(t, taddr, "/t.S/Silent", "100m"))
	mustf(t, err, "call")
	resp.Body.Close()
	if got := grpcCalls(tsrv); !equalCounts(got, map[string]uint64{"http://" + hb + " 4": 1}) {
		t.Fatalf("deadline: %v", got)
	}
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCountGRPCAllocs: counting a call allocates nothing once the
// backend's counters exist.
func TestCountGRPCAllocs(t *testing.T) {
	var st loopStats
	st.countGRPC(3, 0)
	if n := testing.AllocsPerRun(1000, func() {
		st.countGRPC(3, 14)
		st.countGRPC(3, 99)
	}); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}
