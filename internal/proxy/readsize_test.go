package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"golang.org/x/sys/unix"
)

// dialRcvBuf connects to addr with the given receive buffer, set before
// the connect so that the window follows it.
func dialRcvBuf(t *testing.T, addr string, size int) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

// largeReadState reports, on the loop, whether the one upstream in a
// response body has its reads enlarged (readLarge), once the proxy has
// passed on everything the backend sent so far (its own input read and
// either written or owed to the client); ok is false until then.
func largeReadState(srv *Server) (large, ok bool) {
	onLoops(srv, func(lp *loop) {
		for up := lp.upstreams.head; up != nil; up = up.lk.next {
			if up.state != usBody || !up.attached() || up.buffered() > 0 || up.cl == nil {
				continue
			}
			ok = true
			large = up.bigOn != nil && up.bigOn == up.c
		}
	})
	return large, ok
}

// TestLargeReads checks that a backend's response body is read in reads
// above gnet's 64 KiB while the client owes nothing (it takes what it is
// sent), that the upstream reads as usual again once pooled, and that the
// body arrives intact.
func TestLargeReads(t *testing.T) {
	const first, total = 512 << 10, 4 << 20
	paused := make(chan struct{}, 1)
	resume := make(chan struct{}, 1)
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := readHead(br); err != nil {
				return
			}
			body := patternReader(total)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", total)
			if _, err := io.CopyN(c, body, first); err != nil {
				return
			}
			paused <- struct{}{}
			<-resume
			if _, err := io.Copy(c, body); err != nil {
				return
			}
		}
	})
	srv, addr := proxyFor(t, []string{be}, nil)
	// The client's window takes the whole first part: the proxy's writes
	// complete and it owes nothing.
	rc := dialRcvBuf(t, addr, 8<<20)
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	<-paused
	var large bool
	waitFor(t, "the proxy to pass on the first part", func() (ok bool) {
		large, ok = largeReadState(srv)
		return ok
	})
	if !large {
		t.Errorf("after the first part, large reads off, want on: %s", dumpConns(srv))
	}
	resume <- struct{}{}
	readPatternResponse(t, rc, total)
	// The pooled upstream reads as usual again.
	onLoops(srv, func(lp *loop) {
		for up := lp.upstreams.head; up != nil; up = up.lk.next {
			if up.bigOn != nil {
				t.Errorf("an upstream in state %d still has large reads", up.state)
			}
		}
	})
}

// TestLargeReadsSlowClient checks that a client that does not read makes
// the proxy hold no more than limits.connectionBuffer plus one 64 KiB
// read for it, large reads or not: a read that follows bytes already
// owed is an ordinary one.
func TestLargeReadsSlowClient(t *testing.T) {
	const total = 64 << 20
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", total)
		_, _ = io.Copy(c, patternReader(total))
	})
	var highWater int
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) { highWater = int(c.Limits.ConnectionBuffer) })
	rc := dialRcvBuf(t, addr, 4<<10)
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	owed := 0
	waitFor(t, "the upstream to be parked", func() (parked bool) {
		onLoops(srv, func(lp *loop) {
			for up := lp.upstreams.head; up != nil; up = up.lk.next {
				if up.cl != nil && up.isDetached() {
					parked, owed = true, len(up.cl.owed)
				}
			}
		})
		return parked
	})
	if bound := highWater + 64<<10; owed > bound {
		t.Errorf("the client owes %d KiB, bound %d KiB", owed>>10, bound>>10)
	}
	t.Logf("parked with %d KiB owed (connectionBuffer %d KiB)", owed>>10, highWater>>10)
	readPatternResponse(t, rc, total)
}

// readPatternResponse reads a GET's response whose body is the first
// total bytes of the pattern stream, and checks the body.
func readPatternResponse(t *testing.T, rc *rawClient, total int64) {
	t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: http.MethodGet})
	mustf(t, err, "response head")
	pc := newPatternChecker()
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "body")
	pc.check(t, total)
}
