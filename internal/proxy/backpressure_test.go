package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
)

// Backpressure tests: a fast sender and a slow receiver on either side of
// the proxy. The proxy runs in this process, so its memory shows in the
// heap; it may hold about one connection buffer per direction, never the
// stream.
const (
	bpSize       = 256 << 20
	bpConnBuffer = 256 << 10
	bpSlowRead   = 16 << 10
	bpSlowPause  = 20 * time.Millisecond
	bpSlowFor    = 3 * time.Second
	bpSamples    = 6
	// bpSlack covers the proxy's fixed per-loop and per-connection
	// buffers and the test's own: readers, the pattern block, goroutines.
	bpSlack = 1 << 20
	bpBound = bpConnBuffer + 2<<20 + bpSlack
)

// heapInuse returns the heap in use after a collection, so garbage does
// not count.
func heapInuse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func bpConfig(c *config.Config) {
	c.Limits.ConnectionBuffer = bpConnBuffer
	c.Server.EventLoops = 1
}

// TestBackpressureDownload streams 256 MiB from a fast backend to a client
// that first reads at a crawl.
func TestBackpressureDownload(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if !strings.HasPrefix(head, "GET /big ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", bpSize)
			io.Copy(c, patternReader(bpSize))
		}
	})
	srv, addr := proxyFor(t, []string{be}, bpConfig)
	rc := dialProxy(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))

	base := heapInuse()
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "response head")
	if resp.StatusCode != 200 || resp.ContentLength != bpSize {
		t.Fatalf("status %d length %d", resp.StatusCode, resp.ContentLength)
	}

	pc := newPatternChecker()
	buf := make([]byte, bpSlowRead)
	var peak, sawDetached int64
	start := time.Now()
	every := int(bpSlowFor/bpSlowPause) / bpSamples
	for i := 0; time.Since(start) < bpSlowFor; i++ {
		n, err := io.ReadFull(resp.Body, buf)
		pc.Write(buf[:n])
		mustf(t, err, "slow read")
		if i%every == every-1 {
			sawDetached += srv.detached.Load()
			peak = max(peak, heapInuse()-base)
		}
		time.Sleep(bpSlowPause)
	}
	t.Logf("slow phase: read %d KiB; heap growth peak %d KiB (bound %d KiB); detached seen %d times",
		pc.n>>10, peak>>10, bpBound>>10, sawDetached)
	if peak > bpBound {
		t.Errorf("proxy heap grew by %d KiB while the client read slowly, bound %d KiB", peak>>10, bpBound>>10)
	}

	fastStart := time.Now()
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "fast read after %d bytes", pc.n)
	pc.check(t, bpSize)
	t.Logf("rest read in %v", time.Since(fastStart))

	// The connection is still good for another request.
	if resp, body := rc.get("/again"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("next request: status %d body %q", resp.StatusCode, body)
	}
}

// TestBackpressureUpload streams 256 MiB from a fast client to a backend
// that first reads at a crawl.
func TestBackpressureUpload(t *testing.T) {
	fast := make(chan struct{})
	type result struct {
		n   int64
		bad int64
		err error
	}
	got := make(chan result, 1)
	be := rawBackend(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		head, err := readHead(br)
		if err != nil {
			got <- result{err: err}
			return
		}
		if !strings.Contains(head, "Content-Length: "+strconv.Itoa(bpSize)+"\r\n") {
			got <- result{err: fmt.Errorf("head %q", head)}
			return
		}
		pc := newPatternChecker()
		body := io.LimitReader(br, bpSize)
		buf := make([]byte, bpSlowRead)
	slow:
		for {
			select {
			case <-fast:
				break slow
			default:
			}
			n, err := io.ReadFull(body, buf)
			pc.Write(buf[:n])
			if err != nil {
				got <- result{pc.n, pc.bad, err}
				return
			}
			time.Sleep(bpSlowPause)
		}
		_, err = io.Copy(pc, body)
		got <- result{pc.n, pc.bad, err}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(strconv.Itoa(int(pc.n))), pc.n)
	})
	srv, addr := proxyFor(t, []string{be}, bpConfig)
	rc := dialProxy(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))

	base := heapInuse()
	werr := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(rc.c, "PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", bpSize)
		if err == nil {
			_, err = io.Copy(rc.c, patternReader(bpSize))
		}
		werr <- err
	}()

	var peak, sawDetached int64
	tick := time.NewTicker(bpSlowFor / bpSamples)
	for range bpSamples {
		<-tick.C
		sawDetached += srv.detached.Load()
		peak = max(peak, heapInuse()-base)
	}
	tick.Stop()
	close(fast)
	t.Logf("slow phase: heap growth peak %d KiB (bound %d KiB); detached seen %d times", peak>>10, bpBound>>10, sawDetached)
	if peak > bpBound {
		t.Errorf("proxy heap grew by %d KiB while the backend read slowly, bound %d KiB", peak>>10, bpBound>>10)
	}

	r := <-got
	if r.err != nil || r.n != bpSize || r.bad >= 0 {
		t.Fatalf("backend got %d bytes (first bad chunk at %d, err %v), want %d intact", r.n, r.bad, r.err, bpSize)
	}
	mustf(t, <-werr, "upload")
	resp, body := rc.response("PUT")
	if resp.StatusCode != 200 || body != strconv.Itoa(bpSize) {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

// TestPipelineFlood writes far more pipelined requests than one head limit
// in one go; the proxy parks the extra input and must still answer every
// request, in order.
func TestPipelineFlood(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.MaxHeaderBytes = 1024
		c.Limits.MaxRequestLine = 512
		c.Limits.ConnectionBuffer = 16 << 10
	})
	rc := dialProxy(t, addr)
	const n = 500
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "GET /p/%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("x", 64))
	}
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(rc.c, sb.String())
		werr <- err
	}()
	for i := range n {
		resp, body, err := rc.tryResponse(http.MethodGet)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if want := fmt.Sprintf("/p/%d", i); resp.StatusCode != 200 || body != want {
			t.Fatalf("response %d: status %d body %q, want %q", i, resp.StatusCode, body, want)
		}
	}
	mustf(t, <-werr, "write")
}

// TestPipelineBehindSlowResponse pipelines requests behind a large
// response that the client does not read yet: the proxy must not lose or
// reorder response bytes while it parks the pipelined input.
func TestPipelineBehindSlowResponse(t *testing.T) {
	const big = 8 << 20
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("Content-Length", strconv.Itoa(big))
			io.Copy(w, patternReader(big))
			return
		}
		io.WriteString(w, r.URL.Path)
	}))
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.MaxHeaderBytes = 1024
		c.Limits.MaxRequestLine = 512
		c.Limits.ConnectionBuffer = 64 << 10
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, addr)
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	// Let the response fill the buffers before the pipelined requests
	// arrive.
	waitFor(t, "the proxy to park the upstream", func() bool { return srv.detached.Load() > 0 })
	const n = 100
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "GET /p/%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("x", 64))
	}
	rc.send(sb.String())

	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "big head")
	pc := newPatternChecker()
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "big body after %d bytes", pc.n)
	pc.check(t, big)
	for i := range n {
		resp, body, err := rc.tryResponse(http.MethodGet)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if want := fmt.Sprintf("/p/%d", i); resp.StatusCode != 200 || body != want {
			t.Fatalf("response %d: status %d body %q, want %q", i, resp.StatusCode, body, want)
		}
	}
}

// TestEarlyResponseDuringUpload has the backend refuse an upload before
// reading it while the proxy has parked the client for backpressure: the
// client must get the backend's answer.
func TestEarlyResponseDuringUpload(t *testing.T) {
	const size = 32 << 20
	done := make(chan struct{})
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		// Take part of the upload, then refuse it and stop reading, so
		// the proxy's buffers towards the backend stay full and the
		// client stays parked.
		io.CopyN(io.Discard, br, 1<<20)
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied")
		<-done
	})
	t.Cleanup(func() { close(done) })
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 10
		c.Timeouts.UpstreamResponseHeader = 3 * time.Second
	})
	rc := dialProxy(t, addr)
	go func() {
		fmt.Fprintf(rc.c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
		io.Copy(rc.c, patternReader(size)) // fails once the proxy closes
	}()
	resp, body := rc.response("POST")
	if resp.StatusCode != 403 || body != "denied" || !resp.Close {
		t.Fatalf("status %d body %q close %v, want the backend's 403 and a close", resp.StatusCode, body, resp.Close)
	}
}

// TestPipelinedUploadBehindSlowResponse pipelines an upload behind a large
// response the client reads slowly. The proxy cannot park the client
// while the response is queued for it, so it may take an upload that fits
// its bound and must complete it; a larger one may cost the connection,
// but the response must never be corrupted.
func TestPipelinedUploadBehindSlowResponse(t *testing.T) {
	const big = 8 << 20
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("Content-Length", strconv.Itoa(big))
			io.Copy(w, patternReader(big))
			return
		}
		pc := newPatternChecker()
		io.Copy(pc, r.Body)
		fmt.Fprintf(w, "%d %d", pc.n, pc.bad)
	}))
	_, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 10
		c.Server.EventLoops = 1
	})
	for _, tc := range []struct {
		name   string
		size   int
		mustOK bool
	}{{"fits", 96 << 10, true}, {"exceeds", 4 << 20, false}} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialProxy(t, addr)
			werr := make(chan error, 1)
			go func() {
				_, err := fmt.Fprintf(rc.c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\nPOST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", tc.size)
				if err == nil {
					_, err = io.Copy(rc.c, patternReader(int64(tc.size)))
				}
				werr <- err
			}()
			resp, err := http.ReadResponse(rc.br, nil)
			mustf(t, err, "big head")
			pc := newPatternChecker()
			buf := make([]byte, 16<<10)
			for range 50 { // a slow start
				var n int
				n, err = io.ReadFull(resp.Body, buf)
				pc.Write(buf[:n])
				if err != nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err == nil {
				_, err = io.Copy(pc, resp.Body)
			}
			if pc.bad >= 0 {
				t.Fatalf("response corrupted at %d", pc.bad)
			}
			if err != nil && !tc.mustOK {
				t.Logf("cut off after %d response bytes: %v", pc.n, err)
				rc.expectClosed()
				return
			}
			mustf(t, err, "big body after %d bytes", pc.n)
			pc.check(t, big)
			resp, body := rc.response("POST")
			if want := fmt.Sprintf("%d -1", tc.size); resp.StatusCode != 200 || body != want {
				t.Fatalf("upload: status %d body %q, want %q", resp.StatusCode, body, want)
			}
			mustf(t, <-werr, "write")
		})
	}
}

// TestPipelineFloodWhileNotReading floods pipelined input at a client
// connection whose response is stuck because the client does not read:
// the proxy must stop reading it (the flood stays in the kernel) rather
// than buffer it.
func TestPipelineFloodWhileNotReading(t *testing.T) {
	const big = 64 << 20
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(big))
		io.Copy(w, patternReader(big))
	}))
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 10
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, addr)
	base := heapInuse()
	rc.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the proxy to park the upstream", func() bool { return srv.detached.Load() > 0 })
	var sent atomic.Int64
	go func() {
		req := []byte(strings.Repeat("GET /p HTTP/1.1\r\nHost: a\r\n\r\n", 64))
		for sent.Load() < 64<<20 {
			n, err := rc.c.Write(req)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	last := waitStalled(t, "the flood to stall", &sent, 300*time.Millisecond)
	if last >= 64<<20 {
		t.Fatal("the proxy took 64 MiB of pipelined requests from a client that does not read")
	}
	if g := heapInuse() - base; g > 4<<20 {
		t.Errorf("heap grew by %d KiB", g>>10)
	}
	if srv.detached.Load() < 2 {
		t.Errorf("parked %d connections, want the client and the upstream", srv.detached.Load())
	}
	t.Logf("the flood stalled after %d KiB", last>>10)
}

// TestPeerResetWhileParked resets parked connections, a client during an
// upload and a backend during a download: the proxy must notice when it
// tries to resume them and release everything.
func TestPeerResetWhileParked(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		drain := make(chan struct{})
		be := rawBackend(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if _, err := readHead(br); err != nil {
				return
			}
			<-drain
			io.Copy(io.Discard, br)
		})
		t.Cleanup(func() {
			select {
			case <-drain:
			default:
				close(drain)
			}
		})
		srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
			c.Limits.ConnectionBuffer = 64 << 10
		})
		rc := dialProxy(t, addr)
		go func() {
			fmt.Fprintf(rc.c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 64<<20)
			io.Copy(rc.c, patternReader(64<<20))
		}()
		waitFor(t, "the proxy to park the client", func() bool { return srv.detached.Load() > 0 })
		rc.c.(*net.TCPConn).SetLinger(0)
		rc.c.Close()
		close(drain)
		waitFor(t, "the proxy to release the client", func() bool {
			return srv.Active() == 0 && srv.detached.Load() == 0
		})
	})
	t.Run("backend", func(t *testing.T) {
		reset := make(chan struct{})
		be := rawBackend(t, func(c net.Conn) {
			if _, err := readHead(bufio.NewReader(c)); err != nil {
				return
			}
			go func() {
				<-reset
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}()
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 64<<20)
			io.Copy(c, patternReader(64<<20))
		})
		srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
			c.Limits.ConnectionBuffer = 64 << 10
		})
		rc := dialProxy(t, addr)
		rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		waitFor(t, "the proxy to park the backend", func() bool { return srv.detached.Load() > 0 })
		close(reset)
		// Read on: the response must end short, and the client be closed.
		resp, err := http.ReadResponse(rc.br, nil)
		mustf(t, err, "head")
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n >= 64<<20 {
			t.Fatalf("read %d bytes, err %v: want a short response", n, err)
		}
		rc.expectClosed()
		waitFor(t, "the proxy to release everything", func() bool {
			return srv.Active() == 0 && srv.detached.Load() == 0
		})
	})
}

// TestEarlyLargeResponseSlowClient has the backend answer an upload early
// with a large response and stop reading the request, while the client
// reads slowly: the proxy must still bound what it holds and deliver the
// whole response.
func TestEarlyLargeResponseSlowClient(t *testing.T) {
	const big = 32 << 20
	done := make(chan struct{})
	answer := make(chan struct{})
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		io.CopyN(io.Discard, br, 1<<20)
		// Answer once the request bytes back up in the proxy.
		select {
		case <-answer:
		case <-done:
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", big)
		io.Copy(c, patternReader(big))
		<-done
	})
	t.Cleanup(func() { close(done) })
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.ConnectionBuffer = 64 << 10
		c.Server.EventLoops = 1
		// The backend never reads the rest of the body: the exchange
		// ends when sending it times out.
		c.Timeouts.UpstreamRead = 2 * time.Second
	})
	rc := dialProxy(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
	base := heapInuse()
	var sent atomic.Int64
	go func() {
		fmt.Fprintf(rc.c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 64<<20)
		// Fails once the proxy closes.
		io.CopyBuffer(writerFunc(func(b []byte) (int, error) {
			n, err := rc.c.Write(b)
			sent.Add(int64(n))
			return n, err
		}), patternReader(64<<20), make([]byte, 16<<10))
	}()
	// Once the upload stalls, every buffer on its way is full, including
	// the proxy's output towards the backend.
	waitFor(t, "the proxy to park the client", func() bool { return srv.detached.Load() > 0 })
	waitStalled(t, "the upload to stall", &sent, 200*time.Millisecond)
	close(answer)
	// The answer does not say the backend closes, so the body keeps
	// flowing to it (full duplex): the head cannot announce a close.
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "head")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	pc := newPatternChecker()
	buf := make([]byte, 16<<10)
	var peak int64
	for i := range 100 {
		n, err := io.ReadFull(resp.Body, buf)
		pc.Write(buf[:n])
		mustf(t, err, "slow read")
		if i%25 == 24 {
			peak = max(peak, heapInuse()-base)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if peak > 4<<20 {
		t.Errorf("heap grew by %d KiB while the client read slowly", peak>>10)
	}
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "body after %d bytes", pc.n)
	pc.check(t, big)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestResponseThenCloseWhileClientParked has the backend send a complete
// response and close at once while the proxy has the client parked: the
// response must still reach the client (and a GET must not be sent
// twice).
func TestResponseThenCloseWhileClientParked(t *testing.T) {
	t.Run("upload answered early", func(t *testing.T) {
		answer := make(chan struct{})
		be := rawBackend(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			if _, err := readHead(br); err != nil {
				return
			}
			<-answer
			io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, br) // let the proxy's close, not ours, end it
		})
		srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
			c.Limits.ConnectionBuffer = 64 << 10
			c.Server.EventLoops = 1
		})
		t.Cleanup(func() {
			select {
			case <-answer:
			default:
				close(answer)
			}
		})
		rc := dialProxy(t, addr)
		go func() {
			fmt.Fprintf(rc.c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 64<<20)
			io.Copy(rc.c, patternReader(64<<20)) // fails once the proxy closes
		}()
		waitFor(t, "the proxy to park the client", func() bool { return srv.detached.Load() > 0 })
		close(answer)
		resp, body := rc.response("POST")
		if resp.StatusCode != 413 || body != "too big\n" {
			t.Fatalf("status %d body %q, want the backend's 413", resp.StatusCode, body)
		}
	})
	t.Run("pipelined GET", func(t *testing.T) {
		var gets, firsts atomic.Int64
		answer := make(chan struct{})
		be := rawBackend(t, func(c net.Conn) {
			head, err := readHead(bufio.NewReader(c))
			if err != nil {
				return
			}
			gets.Add(1)
			if strings.HasPrefix(head, "GET /first ") {
				firsts.Add(1)
			}
			<-answer
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfirst")
		})
		srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
			c.Limits.MaxHeaderBytes = 1024
			c.Limits.MaxRequestLine = 512
			c.Server.EventLoops = 1
		})
		t.Cleanup(func() {
			select {
			case <-answer:
			default:
				close(answer)
			}
		})
		rc := dialProxy(t, addr)
		var sb strings.Builder
		sb.WriteString("GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
		for i := range 40 {
			fmt.Fprintf(&sb, "GET /p/%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("x", 64))
		}
		rc.send(sb.String())
		waitFor(t, "the proxy to park the client", func() bool { return srv.detached.Load() > 0 && gets.Load() == 1 })
		close(answer)
		resp, body := rc.response(http.MethodGet)
		if resp.StatusCode != 200 || body != "first" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		// The pipelined GETs may follow at once; /first must not be sent
		// twice.
		if n := firsts.Load(); n != 1 {
			t.Errorf("the backend got GET /first %d times", n)
		}
	})
}

// TestParkedPipelinedClientLargeResponse parks a client for its pipelined
// input, then streams a large response to it at full speed while it reads
// slowly: what the proxy holds stays bounded and every byte arrives.
func TestParkedPipelinedClientLargeResponse(t *testing.T) {
	const big = 64 << 20
	answer := make(chan struct{})
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if !strings.HasPrefix(head, "GET /big ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			<-answer
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", big)
			io.Copy(c, patternReader(big))
		}
	})
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Limits.MaxHeaderBytes = 1024
		c.Limits.MaxRequestLine = 512
		c.Limits.ConnectionBuffer = 64 << 10
		c.Server.EventLoops = 1
	})
	rc := dialProxy(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
	var sb strings.Builder
	sb.WriteString("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	const n = 40
	for i := range n {
		fmt.Fprintf(&sb, "GET /p/%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n", i, strings.Repeat("x", 64))
	}
	base := heapInuse()
	rc.send(sb.String())
	waitFor(t, "the proxy to park the client", func() bool { return srv.detached.Load() > 0 })
	close(answer)
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "head")
	pc := newPatternChecker()
	buf := make([]byte, 16<<10)
	var peak int64
	for i := range 60 {
		k, err := io.ReadFull(resp.Body, buf)
		pc.Write(buf[:k])
		mustf(t, err, "slow read")
		if i%15 == 14 {
			peak = max(peak, heapInuse()-base)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("heap growth peak %d KiB", peak>>10)
	if peak > 4<<20 {
		t.Errorf("heap grew by %d KiB while the client read slowly", peak>>10)
	}
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "body after %d bytes", pc.n)
	pc.check(t, big)
	for i := range n {
		if resp, body := rc.response(http.MethodGet); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("pipelined %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
}
