package proxy

import (
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// TestGRPCH2BackendOwnTLS: an h2 pool (grpc-go servers over TLS, which
// insist on ALPN h2) whose second backend has tls settings of its own
// (its own CA; the pool's trusts the first backend's only). Both its
// connections and its gRPC health checks (over TLS, ALPN h2) use the
// backend's settings, and both backends serve calls.
func TestGRPCH2BackendOwnTLS(t *testing.T) {
	ga, gb := startGRPCTLSBackends(t, 1), startGRPCTLSBackends(t, 1)
	a, b := ga.bes[0], gb.bes[0]
	srv, addr := proxyFor(t, nil, func(c *config.Config) {
		h2Pool(ga.caFile, a.addr, b.addr)(c)
		c.Backends[1].TLS = &config.BackendTLS{CAFile: gb.caFile, ServerName: "grpc.internal"}
		c.Server.H2C = true
		c.Upstream.Retries = 0
		c.HealthCheck.Enabled = true
		c.HealthCheck.Interval = 100 * time.Millisecond
		c.HealthCheck.Jitter = 0
		c.HealthCheck.HealthyThreshold = 1
		c.HealthCheck.UnhealthyThreshold = 1
	})
	var s stats.Snapshot
	waitFor(t, "a finished health check of each backend", func() bool {
		s = stats.Snapshot{}
		srv.Stats(&s)
		return s.Backends[0].Health.ChecksOK+s.Backends[0].Health.ChecksFailed > 0 &&
			s.Backends[1].Health.ChecksOK+s.Backends[1].Health.ChecksFailed > 0
	})
	for i, be := range s.Backends {
		if be.Health.ChecksFailed > 0 || !be.Health.Healthy {
			t.Fatalf("backend %d (%s): gRPC health over TLS: %+v", i, be.Name, be.Health)
		}
	}
	cc := grpcDial(t, addr, nil)
	for i := range 10 {
		if _, err := unaryCall(testCtx(t), cc, []byte{byte(i)}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if na, nb := a.calls.Load(), b.calls.Load(); na == 0 || nb == 0 {
		t.Fatalf("calls %d and %d: both backends should serve", na, nb)
	}
}
