package proxy

import (
	"io"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"golang.org/x/sys/unix"
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

// TestUpstreamConnectFailsAtOnce: a connect the kernel refuses in the
// connect call itself (ENETUNREACH for a broadcast address) is failed
// after the current callback (loop.connect's el.Execute), retried on the
// next backend, and leaves no upstream connection counted.
func TestUpstreamConnectFailsAtOnce(t *testing.T) {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	srv, addr := proxyFor(t, []string{"255.255.255.255:80", be.addr}, func(c *config.Config) {
		c.Upstream.Retries = 1
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, addr)
	for range 4 {
		if resp, _ := rc.get("/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200 from the retry", resp.StatusCode)
		}
	}
	waitFor(t, "no upstream but the pooled one", func() bool { return srv.upOpen.Load() == 1 })
}

// TestUpstreamKeepAlive: upstream connections have TCP keep-alive on, as
// they had when Go's dialer made them (net.Dialer turns it on by default,
// 15 s idle and interval): a pooled or tunnelled connection to a backend
// host that vanished without a reset is found out by the kernel.
func TestUpstreamKeepAlive(t *testing.T) {
	var local atomic.Value
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { local.Store(r.RemoteAddr) }))
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	if resp, _ := rc.get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want, _ := local.Load().(string)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		a, ok := sa.(*unix.SockaddrInet4)
		if !ok || netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String() != want {
			continue
		}
		on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		mustf(t, err, "SO_KEEPALIVE")
		if on == 0 {
			t.Fatalf("the upstream connection (%s) has no TCP keep-alive", want)
		}
		return
	}
	t.Fatalf("no socket of this process has local address %q", want)
}
