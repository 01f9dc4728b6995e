package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/testcert"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcTLSBackends are grpc-go servers over TLS (ALPN h2, which grpc-go's
// credentials insist on) with certificates for "grpc.internal" from one
// private CA.
type grpcTLSBackends struct {
	ca     *testcert.CA
	caFile string
	bes    []*grpcBackend
}

func startGRPCTLSBackends(t *testing.T, n int) *grpcTLSBackends {
	t.Helper()
	g := &grpcTLSBackends{ca: testcert.NewCA(t)}
	g.caFile = t.TempDir() + "/grpc-ca.pem"
	testcert.WriteFile(t, g.caFile, g.ca.PEM)
	leaf := g.ca.Issue(t, testcert.ECDSA, false, "grpc.internal")
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	mustf(t, err, "backend pair")
	for range n {
		creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})
		g.bes = append(g.bes, startGRPCBackend(t, grpc.Creds(creds)))
	}
	return g
}

// h2Pool puts https:// backends in an h2 pool (HTTP/2 over TLS) that
// every request goes to, verified with the CA in caFile.
func h2Pool(caFile string, addrs ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.Backends = nil
		for _, a := range addrs {
			c.Backends = append(c.Backends, config.Backend{URL: "https://" + a, Weight: 1})
		}
		c.Upstream.Protocol = config.ProtocolH2
		c.BackendTLS = config.BackendTLS{CAFile: caFile, ServerName: "grpc.internal"}
	}
}

// TestGRPCH2Backends: upstream.protocol h2 — grpc-go servers over TLS
// with a private CA — serves every call kind, balances call by call, and
// its gRPC health checks run over TLS and take a NOT_SERVING backend out.
func TestGRPCH2Backends(t *testing.T) {
	g := startGRPCTLSBackends(t, 2)
	a, b := g.bes[0], g.bes[1]
	srv, addr := proxyFor(t, nil, func(c *config.Config) {
		h2Pool(g.caFile, a.addr, b.addr)(c)
		c.Server.H2C = true
		c.HealthCheck.Enabled = true
		c.HealthCheck.Interval = 100 * time.Millisecond
		c.HealthCheck.Jitter = 0
		c.HealthCheck.HealthyThreshold = 1
		c.HealthCheck.UnhealthyThreshold = 1
	})
	waitFor(t, "both backends healthy", func() bool { return availableAt(srv, 0) && availableAt(srv, 1) })
	cc := grpcDial(t, addr, nil)

	t.Run("unary, balanced", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := []byte{byte(i), 'x'}
				out, err := unaryCall(testCtx(t), cc, msg)
				if err == nil && !bytes.Equal(out, msg) {
					err = io.ErrUnexpectedEOF
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
		if na, nb := a.calls.Load(), b.calls.Load(); na+nb != 100 || na < 40 || nb < 40 {
			t.Fatalf("calls %d and %d, want about 50 each", na, nb)
		}
	})
	t.Run("trailers-only error", func(t *testing.T) {
		_, err := unaryCall(testCtx(t), cc, []byte("fail"))
		if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "no such thing" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bidi with a 16 MiB message", func(t *testing.T) {
		// TLS on both legs under -race takes several seconds: a bound
		// against a hang, not a speed test.
		ctx, cancel := context.WithTimeout(context.Background(), 6*ioTimeout)
		defer cancel()
		s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/test.Echo/Bidi")
		if err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 16<<20)
		for i := range big {
			big[i] = byte(i * 13)
		}
		for _, msg := range [][]byte{[]byte("small"), big} {
			if err := s.SendMsg(&msg); err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := s.RecvMsg(&got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
			}
		}
		_ = s.CloseSend()
		var m []byte
		if err := s.RecvMsg(&m); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	})
	t.Run("health check over TLS", func(t *testing.T) {
		a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		waitFor(t, "backend 0 out", func() bool { return !availableAt(srv, 0) })
		before := a.calls.Load()
		for range 10 {
			if _, err := unaryCall(testCtx(t), cc, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if n := a.calls.Load() - before; n != 0 {
			t.Fatalf("the NOT_SERVING backend got %d calls", n)
		}
		a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		waitFor(t, "backend 0 back", func() bool { return availableAt(srv, 0) })
	})
}

// TestGRPCH2BackendWithoutALPNH2: an https:// backend that does not
// speak ALPN (as an HTTP/1.1-only server may not) in an h2 pool: the
// connection fails as a failed connect — the call gets UNAVAILABLE from
// ConnX and the log says why — rather than HTTP/2 frames going to a
// server that did not agree to them; the gRPC health check, over TLS,
// fails for the same reason.
func TestGRPCH2BackendWithoutALPNH2(t *testing.T) {
	ca := testcert.NewCA(t)
	caFile := t.TempDir() + "/ca.pem"
	testcert.WriteFile(t, caFile, ca.PEM)
	leaf := ca.Issue(t, testcert.ECDSA, false, "grpc.internal")
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	mustf(t, err, "pair")
	beAddr := rawBackend(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}) // no ALPN
		if tc.Handshake() == nil {
			_, _ = io.Copy(io.Discard, tc)
		}
		_ = tc.Close()
	})

	lg, rec := recordingLogger(t)
	srv := startProxyLog(t, testConfig(t, nil, func(c *config.Config) {
		h2Pool(caFile, beAddr)(c)
		c.Server.H2C = true
	}), lg)
	cc := grpcDial(t, srv.Addr().String(), nil)
	_, err = unaryCall(testCtx(t), cc, []byte("x"))
	if s := status.Convert(err); s.Code() != codes.Unavailable {
		t.Fatalf("got %v", err)
	}
	if !rec.has(`backend did not negotiate h2 in ALPN (got "")`) {
		t.Fatal("the log does not say why the connection failed")
	}

	lg, rec = recordingLogger(t)
	startProxyLog(t, testConfig(t, nil, func(c *config.Config) {
		h2Pool(caFile, beAddr)(c)
		c.HealthCheck.Enabled = true
		c.HealthCheck.Interval = 100 * time.Millisecond
		c.HealthCheck.Jitter = 0
		c.HealthCheck.UnhealthyThreshold = 1
	}), lg)
	waitFor(t, "the health check to fail on ALPN", func() bool {
		return rec.has("backend unhealthy") && rec.has(`reason=first check: backend did not negotiate h2`)
	})
}
