package proxy

// Regression tests for the defects outside testing found (issue 13, items
// 1–5): output queued to a client is bounded whatever produces it, a
// parked connection always has a way back, a tunnel keeps its flow
// control after unread output, a close-delimited response survives a
// parked client, and request and response bodies stream both ways at once.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// floodNonReaders opens n connections to addr that pipeline req at about
// 3,000 requests a second each, for d, and never read a byte. It returns
// when d is over and every writer has stopped; the connections stay open.
func floodNonReaders(t *testing.T, addr, req string, n int, d time.Duration) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	block := []byte(strings.Repeat(req, 30)) // every 10 ms
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for time.Now().Before(stop) {
				<-tick.C
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				if _, err := c.Write(block); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue // the proxy is not taking input: good
					}
					return // closed by the proxy
				}
			}
		}()
	}
	wg.Wait()
	return conns
}

// TestPipelinedNonReadersBounded: clients that pipeline requests and never
// read their responses must not make the proxy queue output without
// bound, for proxied responses and for answers the proxy makes itself
// (metrics); once they have not read for clientIdle they are closed.
func TestPipelinedNonReadersBounded(t *testing.T) {
	const (
		clients = 4
		buffer  = 256 << 10
	)
	body := strings.Repeat("r", 16<<10)
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	for _, tc := range []struct{ name, path string }{
		{"proxied", "/page"},
		{"metrics", "/metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
				c.Limits.ConnectionBuffer = buffer
				c.Timeouts.ClientIdle = 2 * time.Second
				c.Server.EventLoops = 1
			})
			if tc.name == "metrics" {
				big := []byte("# " + strings.Repeat("m", 16<<10) + "\n")
				srv.SetMetrics(func(dst []byte) ([]byte, error) { return append(dst, big...), nil })
			}
			base := heapInuse()
			req := "GET " + tc.path + " HTTP/1.1\r\nHost: a\r\n\r\n"
			floodNonReaders(t, addr, req, clients, 3*time.Second)
			growth := heapInuse() - base
			// Per client: the output bound, one more response, and what
			// gnet read before the client was parked (one read).
			bound := int64(clients*(buffer+32<<10+64<<10) + 2<<20)
			t.Logf("heap growth %d KiB (bound %d KiB), parked %d", growth>>10, bound>>10, srv.detached.Load())
			if growth > bound {
				t.Errorf("heap grew by %d KiB for %d clients that do not read, bound %d KiB", growth>>10, clients, bound>>10)
			}
			// They never read: clientIdle after their output stalled,
			// the proxy lets them go.
			waitFor(t, "the proxy to close the non-reading clients", func() bool { return srv.Active() == 0 })
		})
	}
}

// TestLocalAnswerThenOversizedHead: a metrics request followed in the same
// write by a request whose head is too large. The client gets the metrics
// answer and a 431; if it closes at once instead of reading, the proxy
// must not keep the connection.
func TestLocalAnswerThenOversizedHead(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Server.EventLoops = 1
	})
	input := "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nX-Big: " +
		strings.Repeat("b", 20<<10) + "\r\n\r\n"
	t.Run("reads", func(t *testing.T) {
		rc := dialProxy(t, addr)
		rc.send(input)
		resp, body := rc.response(http.MethodGet)
		if resp.StatusCode != 200 || !strings.Contains(body, "connx_active_connections") {
			t.Fatalf("metrics: status %d body %.80q", resp.StatusCode, body)
		}
		rc.expectStatusAndClose(http.MethodGet, http.StatusRequestHeaderFieldsTooLarge)
	})
	t.Run("closes", func(t *testing.T) {
		for range 20 {
			rc := dialProxy(t, addr)
			rc.send(input)
			rc.c.Close()
		}
		waitFor(t, "the proxy to let go of the closed clients", func() bool {
			return srv.Active() == 0 && srv.detached.Load() == 0
		})
	})
}

// TestTunnelAfterUnreadOutput upgrades a connection whose previous
// response the client has not read yet, then streams into the tunnel
// faster than the backend reads: the proxy must stop reading the client
// (it cannot hand its queued output to gnet and park it) instead of
// buffering the stream, and deliver everything once the backend reads.
func TestTunnelAfterUnreadOutput(t *testing.T) {
	const (
		buffer = 8 << 20
		first  = 6 << 20 // more than the kernel's socket buffers take
		stream = 128 << 20
	)
	read := make(chan struct{})
	got := make(chan int64, 1)
	be := rawBackend(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(slowTimeout))
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if !strings.Contains(head, "Upgrade: ") {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", first)
				io.Copy(c, patternReader(first))
				continue
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			<-read // not reading the tunnel yet
			pc := newPatternChecker()
			io.Copy(pc, io.LimitReader(br, stream))
			if pc.bad >= 0 {
				pc.n = -pc.bad
			}
			got <- pc.n
			return
		}
	})
	// A test that fails before the backend may read must still let its
	// handler go, or rawBackend's cleanup waits for it forever.
	var once sync.Once
	release := func() { once.Do(func() { close(read) }) }
	t.Cleanup(release)
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = buffer
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(slowTimeout))
	base := heapInuse()
	var sent atomic.Int64
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(rc.c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"+
			"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		if err == nil {
			_, err = io.CopyBuffer(writerFunc(func(b []byte) (int, error) {
				n, err := rc.c.Write(b)
				sent.Add(int64(n))
				return n, err
			}), patternReader(stream), make([]byte, 64<<10))
		}
		werr <- err
	}()
	// Neither the client nor the backend reads: once the tunnel's
	// backend owes the connection buffer the proxy must park the client
	// and read no more of it. A quiet spell in the client's writes alone
	// does not show that on a loaded machine: the proxy pauses reading the
	// client before the upgrade too (its first response is unread) and a
	// descheduled loop looks the same, so the heap was at times measured
	// after 4 MiB instead of 17. Wait for the parked tunnel itself (the
	// stream takes longer than ioTimeout to get there on a loaded machine
	// under the race detector, so slowTimeout), then for the writes to stop.
	waitForWithin(t, "the proxy to park the tunnel's client", slowTimeout, func() bool {
		if sent.Load() >= stream {
			t.Fatalf("the proxy read the whole %d MiB stream while the backend did not read", stream>>20)
		}
		return tunnelClientParked(srv)
	})
	last := waitStalled(t, "the client's stream to stall", &sent, 300*time.Millisecond)
	growth := heapInuse() - base
	t.Logf("client stalled after %d KiB; heap growth %d KiB", last>>10, growth>>10)
	if bound := int64(3*buffer + 2<<20); growth > bound {
		t.Errorf("heap grew by %d KiB while the tunnel's backend did not read, bound %d KiB", growth>>10, bound>>10)
	}
	release()
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "first head")
	pc := newPatternChecker()
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "first body")
	pc.check(t, first)
	resp, err = http.ReadResponse(rc.br, nil)
	mustf(t, err, "101 head")
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	mustf(t, <-werr, "stream into the tunnel")
	if n := <-got; n != stream {
		t.Fatalf("the backend got %d intact bytes, want %d", n, stream)
	}
}

// tunnelClientParked reports whether a client of srv is in a tunnel and
// parked because its backend owes at least the connection buffer: from
// then on the proxy reads no more of the client until the backend reads.
func tunnelClientParked(srv *Server) bool {
	parked := false
	onLoops(srv, func(lp *loop) {
		for cl := lp.clients.head; cl != nil; cl = cl.lk.next {
			if cl.state == csTunnel && cl.isDetached() && cl.up != nil && len(cl.up.owed) >= cl.sn.highWater {
				parked = true
			}
		}
	})
	return parked
}

// TestCloseDelimitedToParkedClient: the backend sends a response framed
// by its close while the client is parked (it pipelined more than a head's
// worth behind its request). The client must get every byte and a clean
// close, not a reset, and the closing gauge must not go negative.
func TestCloseDelimitedToParkedClient(t *testing.T) {
	const size = 100000
	answer := make(chan struct{})
	be := rawBackend(t, func(c net.Conn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		<-answer
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
		io.Copy(c, patternReader(size))
	})
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.MaxHeaderBytes = 1024
		c.Limits.MaxRequestLine = 512
		c.Server.EventLoops = 1
	})
	for round := range 3 {
		rc := dialProxy(t, addr)
		var sb strings.Builder
		sb.WriteString("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
		for i := range 40 {
			fmt.Fprintf(&sb, "GET /p/%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("x", 64))
		}
		rc.send(sb.String())
		waitFor(t, "the proxy to park the client", func() bool { return srv.detached.Load() > 0 })
		answer <- struct{}{}
		// Read slowly at first, so the backend's close arrives while
		// the response is still on its way.
		time.Sleep(100 * time.Millisecond)
		resp, err := http.ReadResponse(rc.br, nil)
		mustf(t, err, "round %d head", round)
		pc := newPatternChecker()
		_, err = io.Copy(pc, resp.Body)
		mustf(t, err, "round %d body after %d bytes", round, pc.n)
		pc.check(t, size)
		rc.expectClosed()
		waitFor(t, "the client to be released", func() bool { return srv.Active() == 0 })
		if n := srv.flushing.Load(); n != 0 {
			t.Fatalf("round %d: closing connections gauge %d after every client left", round, n)
		}
	}
}

// TestFullDuplexExchange: the backend answers at once and keeps reading
// the request body (a streaming echo; an early 202 while it reads an
// upload). The proxy must keep forwarding the body both ways at once.
func TestFullDuplexExchange(t *testing.T) {
	t.Run("streaming echo", func(t *testing.T) {
		be := rawBackend(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			head, err := readHead(br)
			if err != nil {
				return
			}
			n, _ := strconv.Atoi(headerValue(head, "Content-Length"))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
			buf := make([]byte, 4096)
			for n > 0 {
				k, err := br.Read(buf[:min(len(buf), n)])
				if k > 0 {
					fmt.Fprintf(c, "%x\r\n%s\r\n", k, buf[:k])
					n -= k
				}
				if err != nil {
					return
				}
			}
			io.WriteString(c, "0\r\n\r\n")
		})
		_, addr := proxyFor(t, []string{be}, nil)
		rc := dialProxy(t, addr)
		const parts = 10
		rc.send(fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", parts*5))
		resp, err := http.ReadResponse(rc.br, &http.Request{Method: http.MethodPost})
		mustf(t, err, "response head before the body is complete")
		// Each part comes back before the next is sent: only a proxy
		// that streams both ways at once can pass this.
		for i := range parts {
			part := fmt.Sprintf("p%03d|", i)
			rc.send(part)
			got := make([]byte, len(part))
			_ = rc.c.SetReadDeadline(time.Now().Add(ioTimeout))
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != part {
				t.Fatalf("part %d: echo %q, %v", i, got, err)
			}
		}
		if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
			t.Fatalf("end of echo: %q, %v", rest, err)
		}
		if resp, body := rc.get("/again"); resp.StatusCode != 200 || body != "" {
			t.Fatalf("next request on the connection: status %d", resp.StatusCode)
		}
	})
	t.Run("early 202", func(t *testing.T) {
		const size = 8 << 20
		got := make(chan int64, 4)
		var conns atomic.Int64
		be := rawBackend(t, func(c net.Conn) {
			conns.Add(1)
			br := bufio.NewReader(c)
			for {
				head, err := readHead(br)
				if err != nil {
					return
				}
				n, _ := strconv.ParseInt(headerValue(head, "Content-Length"), 10, 64)
				io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
				pc := newPatternChecker()
				k, _ := io.Copy(pc, io.LimitReader(br, n))
				if pc.bad >= 0 {
					k = -1
				}
				got <- k
			}
		})
		_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
			c.Limits.ConnectionBuffer = 64 << 10
		})
		rc := dialProxy(t, addr)
		_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
		werr := make(chan error, 1)
		go func() {
			_, err := fmt.Fprintf(rc.c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
			if err == nil {
				_, err = io.Copy(rc.c, patternReader(size))
			}
			werr <- err
		}()
		resp, body := rc.response(http.MethodPost)
		if resp.StatusCode != 202 || resp.Close {
			t.Fatalf("status %d close %v body %q", resp.StatusCode, resp.Close, body)
		}
		mustf(t, <-werr, "upload")
		checkUploadThenNext(t, rc, got, size)
	})
}

// checkUploadThenNext checks that an early-202 backend read all size
// bytes of an upload intact (got: what it read per request, -1 if
// corrupted), and that the exchange ended cleanly both ways: the next
// request on rc goes to the backend with no body.
func checkUploadThenNext(t *testing.T, rc *rawClient, got <-chan int64, size int64) {
	t.Helper()
	if n := <-got; n != size {
		t.Fatalf("the backend read %d intact body bytes, want %d", n, size)
	}
	if resp, _ := rc.get("/next"); resp.StatusCode != 202 {
		t.Fatalf("next request: status %d", resp.StatusCode)
	}
	if n := <-got; n != 0 {
		t.Fatalf("the backend read %d body bytes for a GET", n)
	}
}

// headerValue returns the value of the first field called name in head.
func headerValue(head, name string) string {
	for _, line := range strings.Split(head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestPartialHeadThenClose: a backend that sends part of a response head
// and closes must give the client a 502, not leave it waiting (a head
// can no longer complete once the backend has closed).
func TestPartialHeadThenClose(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
	})
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
	rc.expectStatusAndClose(http.MethodPost, http.StatusBadGateway)
}

// TestShutdownFlushesOwedOutput: a graceful shutdown must let an idle
// client that has not yet read its complete last response have it.
func TestShutdownFlushesOwedOutput(t *testing.T) {
	const size = 16 << 20
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.Copy(w, patternReader(size))
	}))
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 20 // the whole response fits: the exchange completes
		c.Server.EventLoops = 1
	})
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	mustf(t, err, "dial")
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the response to be queued for the client", func() bool {
		_, inflight := tunnelStats(srv)
		return srv.owing.Load() > 0 && inflight == 0
	})
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	mustf(t, err, "head")
	pc := newPatternChecker()
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "body after %d bytes", pc.n)
	pc.check(t, size)
	mustf(t, <-done, "shutdown")
}

// TestIdleTimerWhileReading: the keep-alive idle time starts when the
// last response is written, not when it is queued: a client still reading
// it is not cut off.
func TestIdleTimerWhileReading(t *testing.T) {
	const size = 16 << 20
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.Copy(w, patternReader(size))
	}))
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 20
		c.Timeouts.ClientIdle = 500 * time.Millisecond
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "head")
	pc := newPatternChecker()
	buf := make([]byte, 64<<10) // 64 KiB every 5 ms: well over clientIdle in all
	for pc.n < size {
		n, err := resp.Body.Read(buf)
		pc.Write(buf[:n])
		if err == io.EOF {
			break
		}
		mustf(t, err, "body after %d bytes", pc.n)
		time.Sleep(5 * time.Millisecond) // a reader slower than the backend, never stalled
	}
	pc.check(t, size)
}

// TestDuplexClientPauseNotBlamedOnBackend: after a complete early answer,
// a client that pauses its body (within clientBody) is not cut off by
// upstreamRead, and the backend that took every byte is not blamed.
func TestDuplexClientPauseNotBlamedOnBackend(t *testing.T) {
	got := make(chan int64, 1)
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
		n, _ := io.Copy(io.Discard, io.LimitReader(br, 10))
		got <- n
	})
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Timeouts.UpstreamRead = 300 * time.Millisecond
		c.Timeouts.ClientBody = 10 * time.Second
	})
	rc := dialProxy(t, addr)
	rc.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
	if resp, _ := rc.response(http.MethodPost); resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rc.send("hello")
	time.Sleep(time.Second) // the client pauses longer than upstreamRead
	rc.send("world")
	if n := <-got; n != 10 {
		t.Fatalf("the backend got %d body bytes, want 10", n)
	}
	var st stats.Snapshot
	srv.Stats(&st)
	for k, n := range st.Errors {
		if n > 0 {
			t.Errorf("%d errors of kind %v counted", n, stats.ErrorKind(k))
		}
	}
}

// TestEarlyResponseBodyStillOwed: a backend that answers before reading
// the body, when ConnX has read the whole body from the client but still
// owes the backend part of it, gets all of it, and the connection is
// pooled after. finish pooled or closed the connection at once, so the
// bytes still owed were lost and the backend read a truncated body (seen
// as a rare failure of TestFullDuplexExchange under load).
func TestEarlyResponseBodyStillOwed(t *testing.T) {
	const size = 3 << 20
	// A small receive buffer on the backend: most of the body stays in
	// ConnX, whose connection buffer (8 MiB here) can hold all of it.
	answer := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(answer) }) }
	got := make(chan int64, 2)
	be := rawBackendOn(t, smallBufferListener(t), func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			n, _ := strconv.ParseInt(headerValue(head, "Content-Length"), 10, 64)
			if n > 0 {
				<-answer // the body waits in ConnX meanwhile
			}
			io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
			pc := newPatternChecker()
			k, _ := io.Copy(pc, io.LimitReader(br, n))
			if pc.bad >= 0 {
				k = -1
			}
			got <- k
		}
	})
	t.Cleanup(release) // before rawBackendOn's: the handler returns
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 8 << 20
	})
	rc := dialProxy(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
	rc.send(fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size))
	if _, err := io.Copy(rc.c, patternReader(size)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the whole body read from the client, part of it still owed to the backend", func() (yes bool) {
		onLoops(srv, func(lp *loop) {
			for up := lp.upstreams.head; up != nil; up = up.lk.next {
				if up.cl != nil && up.cl.state == csWait && len(up.owed) > 0 {
					yes = true
				}
			}
		})
		return yes
	})
	release()
	if resp, _ := rc.response(http.MethodPost); resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkUploadThenNext(t, rc, got, size)
}
