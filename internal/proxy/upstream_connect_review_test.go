package proxy

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
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

// TestUpstreamConnectOutlivesClient: a client that leaves while its
// upstream connection is still connecting (on the loop) does not end the
// connect; once it completes, the connection is pooled and the next
// request is sent over it, and the count of open upstream connections
// is right throughout.
func TestUpstreamConnectOutlivesClient(t *testing.T) {
	// A listener whose accept queue is full: the proxy's connect waits
	// (its SYN is dropped) until the queue has room again.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	mustf(t, err, "socket")
	unix.CloseOnExec(fd)
	mustf(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}), "bind")
	mustf(t, unix.Listen(fd, 0), "listen")
	f := os.NewFile(uintptr(fd), "backend")
	ln, err := net.FileListener(f)
	f.Close()
	mustf(t, err, "FileListener")
	beAddr := ln.Addr().String()
	var fillers []net.Conn
	for i := 0; ; i++ {
		if i == 16 {
			t.Fatal("the accept queue did not fill")
		}
		c, err := net.DialTimeout("tcp", beAddr, 300*time.Millisecond)
		if err != nil {
			break
		}
		fillers = append(fillers, c)
	}
	filler := map[string]bool{}
	for _, c := range fillers {
		filler[c.LocalAddr().String()] = true
	}

	srv, addr := proxyFor(t, []string{beAddr}, func(c *config.Config) {
		c.Timeouts.UpstreamConnect = time.Minute
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, "the connect", func() bool { return srv.upOpen.Load() == 1 })
	rc.c.Close()
	waitFor(t, "the client to go", func() bool { return srv.Active() == 0 })
	if n := srv.upOpen.Load(); n != 1 {
		t.Fatalf("upOpen = %d while the connect is in progress, want 1", n)
	}

	// The backend starts: the queue empties and the proxy's retransmitted
	// SYN is accepted.
	var proxyConns atomic.Int64
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew && !filler[c.RemoteAddr().String()] {
				proxyConns.Add(1)
			}
		}}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	for _, c := range fillers {
		c.Close()
	}
	waitFor(t, "the connect to complete", func() bool { return proxyConns.Load() == 1 })
	rc2 := dialProxy(t, addr)
	if resp, _ := rc2.get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := proxyConns.Load(); n != 1 {
		t.Fatalf("the proxy opened %d connections to the backend, want 1 (the pooled one reused)", n)
	}
	if n := srv.upOpen.Load(); n != 1 {
		t.Fatalf("upOpen = %d, want 1", n)
	}
}

// TestUpstreamLinkLocal: a backend at an IPv6 link-local address with
// its zone ([fe80::...%eth0]:port) is reached, as Go's dialer reached it:
// the zone is the interface the connect goes out of.
func TestUpstreamLinkLocal(t *testing.T) {
	ifs, _ := net.Interfaces()
	var ll string
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsLinkLocalUnicast() {
				ll = n.IP.String() + "%" + ifc.Name
			}
		}
	}
	if ll == "" {
		t.Skip("no IPv6 link-local address")
	}
	ln, err := net.Listen("tcp", "["+ll+"]:0")
	if err != nil {
		t.Skipf("listen on %s: %v", ll, err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, addr := proxyFor(t, nil, func(c *config.Config) {
		c.Backends = []config.Backend{{URL: "http://[" + strings.Replace(ll, "%", "%25", 1) + "]:" + port, Weight: 1}}
	})
	rc := dialProxy(t, addr)
	if resp, _ := rc.get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 from the backend at %s", resp.StatusCode, ln.Addr())
	}
}
