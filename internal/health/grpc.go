package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// gRPC health checks (CheckConfig.GRPC): one unary call of
// grpc.health.v1.Health/Check over HTTP/2 — in cleartext for an http://
// backend, over TLS with ALPN h2 for an https:// one —, made with
// net/http's HTTP/2 client rather than grpc-go, which the binary does not
// otherwise need. The messages are fixed: the request is an empty
// HealthCheckRequest (service "", the server as a whole), and a SERVING
// answer is the HealthCheckResponse with field 1 (status) = 1.
var (
	grpcCheckRequest = []byte{0, 0, 0, 0, 0}          // uncompressed, length 0
	grpcServing      = []byte{0, 0, 0, 0, 2, 0x08, 1} // uncompressed, length 2, status SERVING
)

const grpcHealthPath = "/grpc.health.v1.Health/Check"

// newH2CClient returns a client that speaks only HTTP/2 with prior
// knowledge, dialling with dial, one connection per check.
func newH2CClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		Protocols:              p,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}}
}

// newH2TLSClient returns a client that speaks only HTTP/2 over TLS,
// dialling (and shaking hands) with dial, one connection per check.
func newH2TLSClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	p := new(http.Protocols)
	p.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Proxy:                  nil,
		DialTLSContext:         dial,
		Protocols:              p,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}}
}

// dialH2TLS is dialTLS with ALPN h2, which the backend must choose.
func (c *Checker) dialH2TLS(ctx context.Context, network, addr string, base *tls.Config) (net.Conn, error) {
	conn, err := c.dialTLS(ctx, network, addr, base, "h2")
	if err != nil {
		return nil, err
	}
	if p := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "h2" {
		_ = conn.Close()
		return nil, fmt.Errorf("backend did not negotiate h2 in ALPN (got %q)", p)
	}
	return conn, nil
}

func (c *Checker) checkGRPC(ctx context.Context, b *Backend, cfg *CheckConfig) (ok bool, detail string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+grpcHealthPath, bytes.NewReader(grpcCheckRequest))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", userAgent)
	req.ContentLength = int64(len(grpcCheckRequest))
	hc := c.h2c
	if strings.HasPrefix(b.base, "https:") {
		hc = c.h2tls
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, "timeout after " + cfg.Timeout.String()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, err.Error()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, "status " + strconv.Itoa(resp.StatusCode) + ", expected 200"
	}
	if err != nil {
		return false, err.Error()
	}
	st := resp.Trailer.Get("Grpc-Status")
	if st == "" {
		st = resp.Header.Get("Grpc-Status") // trailers-only
	}
	switch {
	case st != "0":
		return false, "grpc-status " + st + " " + resp.Trailer.Get("Grpc-Message") + resp.Header.Get("Grpc-Message")
	case !bytes.Equal(body, grpcServing):
		return false, "not SERVING"
	}
	return true, "SERVING"
}
