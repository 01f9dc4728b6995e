package proxy

import (
	"bytes"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIdleConnectionMemory measures the proxy's heap per idle keep-alive
// client connection (after one request) and holds it to the project's
// bound. The clients are raw sockets, so the test's side adds nothing to
// the Go heap.
func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 2000
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
	srv := startProxy(t, testConfig(t, []string{fixedBackend(t, resp)}, nil))
	ap, err := netip.ParseAddrPort(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	req := []byte("GET / HTTP/1.1\r\nHost: idle\r\n\r\n")
	buf := make([]byte, 256)

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	open := func(count int) []int {
		fds := make([]int, 0, count)
		for range count {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			fds = append(fds, fd)
			if err := unix.Connect(fd, sa); err != nil {
				t.Fatal(err)
			}
			if _, err := unix.Write(fd, req); err != nil {
				t.Fatal(err)
			}
			got := 0
			for !bytes.HasSuffix(buf[:got], []byte("hello\n")) {
				k, err := unix.Read(fd, buf[got:])
				if err != nil || k == 0 {
					t.Fatalf("read: %v", err)
				}
				got += k
			}
		}
		return fds
	}
	closeAll := func(fds []int) {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
	// Warm the loops' pools, parsers and maps with a first batch.
	warm := open(200)
	closeAll(warm)
	waitFor(t, "warm-up connections to close", func() bool { return srv.Active() == 0 })

	before := heap()
	fds := open(n)
	t.Cleanup(func() { closeAll(fds) })
	waitFor(t, "all connections open", func() bool { return srv.Active() == n })
	after := heap()
	per := (int64(after) - int64(before)) / n
	t.Logf("heap per idle keep-alive connection: %d bytes (%d connections)", per, n)
	if per > 1024 {
		t.Fatalf("%d bytes of heap per idle connection, want <= 1024", per)
	}
}
