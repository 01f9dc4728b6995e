//go:build reliability

package reliability

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outputLimits: the default connection buffer, and clientIdle longer
// than the flood, so non-reading clients are let go after it.
const outputLimits = `
timeouts:
  clientIdle: 12s
limits:
  connectionBuffer: 256KiB
`

// pipelineNonReaders opens n connections that pipeline req at 3,000
// requests a second each for d and never read; it returns once the
// writers have stopped, with how many requests connx took off the wire.
func pipelineNonReaders(t *testing.T, addr, req string, n int, d time.Duration) int64 {
	t.Helper()
	var taken atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	block := []byte(strings.Repeat(req, 30)) // every 10 ms
	for range n {
		rc := dial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for time.Now().Before(stop) {
				<-tick.C
				rc.c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				k, err := rc.c.Write(block)
				taken.Add(int64(k / len(req)))
				var ne net.Error
				if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
					return // closed by connx
				}
			}
		}()
	}
	wg.Wait()
	return taken.Load()
}

// TestPipelinedFloodNotReading: four clients pipeline GETs for a 16 KiB
// response at 3,000 a second each for 10 s and never read — proxied, and
// for the metrics answer connx makes itself. connx stops serving them
// (their input stays in the kernel) once it holds a connection buffer of
// output for each, so RSS stays flat; after clientIdle without reading
// they are closed.
func TestPipelinedFloodNotReading(t *testing.T) {
	body := strings.Repeat("r", 16<<10)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	for _, path := range []string{"/page", "/metrics"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			p, _ := run(t, config("", outputLimits, be.URL))
			if resp, _, err := dialGet(t, p.Addr, path); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %v", path, err)
			}
			base := rssKiB(p.PID())
			start := time.Now()
			taken := pipelineNonReaders(t, p.Addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n", 4, 10*time.Second)
			rss := rssKiB(p.PID())
			t.Logf("4 non-reading clients pipelining GET %s (for up to 10 s): %d requests written (connx and the kernel took them) in %v; RSS %d -> %d KiB (+%d KiB)",
				path, taken, time.Since(start).Round(100*time.Millisecond), base, rss, rss-base)
			if d := time.Since(start); d < 9*time.Second {
				t.Errorf("connx cut the clients off after %v; they should wait, parked, until clientIdle", d.Round(100*time.Millisecond))
			}
			// 4 x (256 KiB buffer + a response + a read) and the heap's
			// own slack.
			if rss-base > 16<<10 {
				t.Errorf("RSS grew by %d KiB, want < 16 MiB", rss-base)
			}
			start = time.Now()
			for n := activeClients(t, p.Addr); n > 1; n = activeClients(t, p.Addr) {
				if time.Since(start) > 20*time.Second {
					t.Fatalf("connx still has %d client connections", n)
				}
				time.Sleep(100 * time.Millisecond) // polling the process from outside
			}
			t.Logf("the clients were closed within %v after they stopped writing (clientIdle 12s)", time.Since(start).Round(100*time.Millisecond))
		})
	}
}

// activeClients reads connx_active_connections from the metrics route
// (the scrape's own connection counts).
func activeClients(t *testing.T, addr string) int {
	t.Helper()
	resp, body, err := dialGet(t, addr, "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %v", err)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "connx_active_connections "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatal("no connx_active_connections in the metrics")
	return 0
}

// dialGet sends one GET for path on a new connection.
func dialGet(t *testing.T, addr, path string) (*http.Response, string, error) {
	rc := dial(t, addr)
	rc.send("GET " + path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	return rc.response(http.MethodGet, 5*time.Second)
}

// TestLocalAnswerThenOversizedHead: a metrics request followed in the same
// write by a request with a 20 KB header, then a close, 200 times, with
// limits.maxConnections at 50. Each connection must be let go: afterwards
// a client is served, not refused with 503, and connx holds no more
// descriptors than before.
func TestLocalAnswerThenOversizedHead(t *testing.T) {
	be := newBackend(t, nil)
	p, _ := run(t, config("", "limits:\n  maxConnections: 50\n", be.URL))
	input := "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nX-Big: " +
		strings.Repeat("b", 20<<10) + "\r\n\r\n"
	for range 200 {
		rc := dial(t, p.Addr)
		rc.send(input)
		rc.c.Close()
	}
	// They are released within a sweep or two of their close; until
	// then a new client may be refused.
	start := time.Now()
	for {
		rc := dial(t, p.Addr)
		rc.send(input)
		resp, _, err := rc.response(http.MethodGet, 5*time.Second)
		if err == nil && resp.StatusCode == 200 {
			resp, _, err = rc.response(http.MethodGet, 5*time.Second)
			if err != nil || resp.StatusCode != 431 {
				t.Fatalf("oversized head after metrics: %v %v", resp, err)
			}
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("new clients still refused 5 s after the closing clients left: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the process from outside
	}
	t.Logf("200 closed metrics+oversized connections: a new client was served %v later", time.Since(start).Round(10*time.Millisecond))
	for n := activeClients(t, p.Addr); n > 1; n = activeClients(t, p.Addr) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("connx still has %d client connections", n)
		}
		time.Sleep(20 * time.Millisecond) // polling the process from outside
	}
}

// TestTunnelAfterUnreadOutput: a client that has not read its previous
// response (6 MiB, more than the kernel's socket buffers hold) upgrades to
// a WebSocket tunnel and streams 256 MiB into it while the backend does
// not read. connx must stop reading the client, and deliver every byte
// once the backend reads.
func TestTunnelAfterUnreadOutput(t *testing.T) {
	const (
		first  = 6 << 20
		stream = 256 << 20
	)
	read := make(chan struct{})
	got := make(chan int64, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			head, err := readRequestHead(br)
			if err != nil {
				return
			}
			if !strings.Contains(head, "Upgrade: ") {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", first)
				c.Write(make([]byte, first))
				continue
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			<-read
			n, _ := io.Copy(io.Discard, io.LimitReader(br, stream))
			got <- n
			return
		}
	}()
	p, _ := run(t, config("", "limits:\n  connectionBuffer: 8MiB\n", "http://"+ln.Addr().String()))
	base := rssKiB(p.PID())
	rc := dial(t, p.Addr)
	var sent atomic.Int64
	werr := make(chan error, 1)
	go func() {
		rc.c.SetWriteDeadline(time.Now().Add(time.Minute))
		_, err := io.WriteString(rc.c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"+
			"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		buf := make([]byte, 64<<10)
		for err == nil && sent.Load() < stream {
			var k int
			k, err = rc.c.Write(buf[:min(len(buf), int(stream-sent.Load()))])
			sent.Add(int64(k))
		}
		werr <- err
	}()
	last, lastAt := sent.Load(), time.Now()
	for time.Since(lastAt) < 500*time.Millisecond {
		time.Sleep(20 * time.Millisecond) // polling for the stall
		if n := sent.Load(); n != last {
			last, lastAt = n, time.Now()
		}
		if n := sent.Load(); n >= stream {
			t.Fatalf("connx read the whole %d MiB stream while the backend did not read", stream>>20)
		}
	}
	rss := rssKiB(p.PID())
	t.Logf("client's stream stalled after %d MiB; connx RSS %d -> %d KiB", last>>20, base, rss)
	if rss-base > 64<<10 {
		t.Errorf("RSS grew by %d KiB, want < 64 MiB (8 MiB buffers)", rss-base)
	}
	close(read)
	resp, _, err := rc.response(http.MethodGet, 30*time.Second)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first response: %v", err)
	}
	if resp, err = http.ReadResponse(rc.br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("101: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("stream: %v", err)
	}
	if n := <-got; n != stream {
		t.Fatalf("the backend got %d bytes, want %d", n, stream)
	}
}

// readRequestHead reads one request head through its blank line.
func readRequestHead(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" {
			return sb.String(), nil
		}
	}
}
