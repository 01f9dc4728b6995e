package proxy

import (
	"io"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// TestH2ConnectGRPCTimeout: a gRPC call whose HTTP/2 backend connection
// is still connecting ends at its grpc-timeout (DEADLINE_EXCEEDED from
// ConnX), not when the connect gives up: the sweep runs the calls'
// timeouts of a connection whose connect is in progress on the loop
// (loop.connect) as it did while a dial goroutine connected.
func TestH2ConnectGRPCTimeout(t *testing.T) {
	hole := blackHole(t)
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		grpcPool(hole)(c)
		c.Server.H2C = true
		c.Timeouts.UpstreamConnect = time.Minute
		c.Upstream.Retries = 0
	})
	resp, err := h2cClient(t).Do(grpcRequest(t, addr, "/t.S/Silent", "200m"))
	mustf(t, err, "call")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "4" || len(body) != 0 {
		t.Fatalf("got %d %v %q, want DEADLINE_EXCEEDED (grpc-status 4)", resp.StatusCode, resp.Header, body)
	}
}
