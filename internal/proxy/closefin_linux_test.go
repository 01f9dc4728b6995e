package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/sys/unix"
)

// nonDataSegments sends one request with "Connection: close" on a new
// connection to addr, reads the response to the server's FIN, and returns
// how many segments without data the client received (the SYN-ACK, pure
// ACKs, and a FIN that came on its own).
func nonDataSegments(t *testing.T, addr string) uint32 {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	mustf(t, err, "dial %s", addr)
	defer c.Close()
	_, err = fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	mustf(t, err, "send")
	b, err := io.ReadAll(c)
	mustf(t, err, "read to EOF")
	if len(b) == 0 {
		t.Fatalf("%s: empty response", addr)
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	mustf(t, err, "SyscallConn")
	var ti *unix.TCPInfo
	err = rc.Control(func(fd uintptr) { ti, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	mustf(t, err, "TCP_INFO")
	return ti.Segs_in - ti.Data_segs_in
}

// TestCloseFINWithLastBytes checks that a response on a connection ConnX
// closes leaves with the FIN in its last segment (peer.last, MSG_MORE),
// where a server that writes and then closes sends the FIN apart. The
// reference is Go's own HTTP server on the same machine, so the kernel's
// ACK habits count the same on both sides.
func TestCloseFINWithLastBytes(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello\n")
	}))
	_, addr := proxyFor(t, []string{be}, nil)
	const n = 20
	var direct, proxied uint32
	for i := 0; i < n; i++ {
		direct += nonDataSegments(t, be)
		proxied += nonDataSegments(t, addr)
	}
	t.Logf("segments without data over %d connections: Go server %d, ConnX %d", n, direct, proxied)
	if proxied+n/2 > direct {
		t.Fatalf("ConnX's responses did not carry the FIN: %d segments without data over %d connections, Go's server %d (a FIN apart costs one each)", proxied, n, direct)
	}
}
