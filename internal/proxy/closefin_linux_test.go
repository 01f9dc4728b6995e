package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/connx/connx/internal/config"
	"github.com/panjf2000/gnet/v2"
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

// TestCloseFINUnreadInput: the last bytes of a response held back for
// the FIN (peer.last) must still reach a client that sent more than
// ConnX read. Closing a socket with unread input resets the connection,
// and the kernel then drops what it held back: the client would get no
// response at all, where a response already sent is read before the
// reset. The loop is held while the backend answers and the client sends
// a pipelined request, so that both wait in the kernel and the response
// is handled before that input is read.
func TestCloseFINUnreadInput(t *testing.T) {
	const body = "hello\n"
	gotReq, respond, written := make(chan struct{}), make(chan struct{}), make(chan struct{})
	be := rawBackend(t, func(c net.Conn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		close(gotReq)
		<-respond
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		close(written)
		_, _ = io.Copy(io.Discard, c) // until the proxy closes
	})
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Server.EventLoops = 1 })
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	<-gotReq

	srv.mu.Lock()
	loops := srv.loops
	srv.mu.Unlock()
	held, release := make(chan struct{}), make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	for _, lp := range loops {
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			held <- struct{}{}
			<-release
			return nil
		}))
	}
	for range loops {
		<-held
	}
	close(respond)
	<-written
	rc.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	close(release)

	b, err := io.ReadAll(rc.c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 ") || !strings.HasSuffix(string(b), "\r\n\r\n"+body) {
		t.Fatalf("client got %q (%v), want the whole response", b, err)
	}
}

// TestOwedNotHeldBack: bytes a socket did not take at first (owed) are
// written later without MSG_MORE, as docs/design.md says: only the write
// that a close or shutdown follows in the same callback may be held back
// for the FIN (peer.last). A closing client's owed bytes are also
// flushed by its input events (onTraffic), which close nothing: bytes
// held back there would wait for the next sweep.
func TestOwedNotHeldBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustf(t, err, "listen")
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	mustf(t, err, "dial")
	defer c.Close()
	s, err := ln.Accept()
	mustf(t, err, "accept")
	f, err := s.(*net.TCPConn).File()
	mustf(t, err, "File")
	defer f.Close()
	_ = s.Close()
	fd := int(f.Fd())

	p := &peer{lp: &loop{srv: &Server{}}, fd: fd, last: true}
	p.owed = []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	p.lp.srv.owing.Add(1)
	if !p.flushOwed() || len(p.owed) != 0 {
		t.Fatalf("flushOwed: %d bytes still owed", len(p.owed))
	}
	unsent, err := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
	mustf(t, err, "SIOCOUTQNSD")
	if unsent != 0 {
		t.Fatalf("%d owed bytes written but held back in the socket (MSG_MORE)", unsent)
	}
}
