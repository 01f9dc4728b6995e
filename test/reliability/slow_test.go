//go:build reliability

package reliability

import (
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

const slowTimeouts = "timeouts:\n  clientHeader: 2s\n  clientBody: 2s\n"

// TestSlowloris: connections that send their head a byte a second get 408
// at timeouts.clientHeader (2s), counted from the connection's open, and
// are closed.
func TestSlowloris(t *testing.T) {
	be := newBackend(t, nil)
	p, _ := run(t, config("", slowTimeouts, be.URL))
	const n = 50
	type result struct {
		status int
		took   time.Duration
		closed bool
		err    error
	}
	res := make(chan result, n)
	for range n {
		go func() {
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				res <- result{err: err}
				return
			}
			defer c.Close()
			start := time.Now()
			head := "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("a", 30)
			done := make(chan result, 1)
			go func() {
				buf := make([]byte, 4096)
				var got []byte
				c.SetReadDeadline(time.Now().Add(15 * time.Second))
				var r result
				for {
					k, err := c.Read(buf)
					got = append(got, buf[:k]...)
					if k > 0 && r.status == 0 {
						r.took = time.Since(start)
						fmt.Sscanf(string(got), "HTTP/1.1 %d", &r.status)
					}
					if err != nil {
						r.closed = err == io.EOF || strings.Contains(err.Error(), "reset")
						if !r.closed {
							r.err = err
						}
						done <- r
						return
					}
				}
			}()
			for i := 0; ; i++ {
				if i < len(head) {
					c.Write([]byte{head[i]})
				}
				select {
				case r := <-done:
					res <- r
					return
				case <-time.After(time.Second): // the attacker's pace
				}
			}
		}()
	}
	var took []time.Duration
	for range n {
		r := <-res
		if r.err != nil || r.status != 408 || !r.closed {
			t.Errorf("slowloris connection: status %d closed %v err %v", r.status, r.closed, r.err)
			continue
		}
		took = append(took, r.took)
	}
	p50, p90, p99, mx := percentiles(took)
	t.Logf("%d slowloris connections: %d got 408 and were closed; time to 408 p50 %v p90 %v p99 %v max %v (clientHeader 2s)",
		n, len(took), p50.Round(time.Millisecond), p90.Round(time.Millisecond), p99.Round(time.Millisecond), mx.Round(time.Millisecond))
	for _, d := range took {
		if d < 1900*time.Millisecond || d > 5*time.Second {
			t.Errorf("408 after %v, want at the 2s header timeout", d)
			break
		}
	}
}

// TestSlowlorisLateFirstByte: timeouts.clientHeader covers the first
// request "from connection open" (docs/configuration.md), so a connection
// whose first byte comes 1.5s after the open, then a byte a second, must
// get its 408 at 2s after the open — not 2s after the first byte.
func TestSlowlorisLateFirstByte(t *testing.T) {
	be := newBackend(t, nil)
	p, _ := run(t, config("", slowTimeouts, be.URL))
	rc := dial(t, p.Addr)
	start := time.Now()
	got := make(chan time.Duration, 1)
	go func() {
		rc.c.SetReadDeadline(time.Now().Add(15 * time.Second))
		rc.br.Peek(1)
		got <- time.Since(start)
	}()
	time.Sleep(1500 * time.Millisecond) // the attacker's pace: first byte late
	var took time.Duration
feed:
	for _, b := range []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaa") {
		rc.c.Write([]byte{b})
		select {
		case took = <-got:
			break feed
		case <-time.After(time.Second): // the attacker's pace
		}
	}
	if took == 0 {
		took = <-got
	}
	resp, _, err := rc.response(http.MethodGet, 5*time.Second)
	if err != nil {
		t.Fatalf("no 408: %v", err)
	}
	t.Logf("first byte 1.5s after the open, then a byte a second: %d after %v from the open (clientHeader 2s)", resp.StatusCode, took.Round(time.Millisecond))
	if resp.StatusCode != 408 {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if took > 3*time.Second {
		t.Errorf("regression (fixed in 6a3996a): the header timeout of the first request runs from its first byte, not from the connection's open: 408 came %v after the open (%v after the first byte), so a client holds a connection for up to 2 x clientHeader", took.Round(time.Millisecond), (took - 1500*time.Millisecond).Round(time.Millisecond))
	}
}

// TestSlowBody: a POST whose body stalls gets 408 at timeouts.clientBody
// (2s, the longest pause) and a close. A body trickled a byte every
// second (pauses below clientBody) is logged: clientBody bounds pauses,
// not the whole body.
func TestSlowBody(t *testing.T) {
	be := newBackend(t, nil)
	p, _ := run(t, config("", slowTimeouts, be.URL))

	rc := dial(t, p.Addr)
	start := time.Now()
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
	resp, _, err := rc.response(http.MethodPost, 10*time.Second)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("stalled body: %v", err)
	}
	closed, _ := rc.closed(5 * time.Second)
	t.Logf("stalled body: %d after %v, closed=%v (clientBody 2s)", resp.StatusCode, took.Round(time.Millisecond), closed)
	if resp.StatusCode != 408 || !closed {
		t.Errorf("stalled body: status %d closed %v, want 408 and closed", resp.StatusCode, closed)
	}
	if took < 1900*time.Millisecond || took > 5*time.Second {
		t.Errorf("408 after %v, want at the 2s body timeout", took)
	}

	// Trickle: a byte a second for 6 s.
	rc = dial(t, p.Addr)
	rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n")
	for range 6 {
		time.Sleep(time.Second) // the attacker's pace
		rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := rc.c.Write([]byte("x")); err != nil {
			t.Logf("trickled body: write failed: %v", err)
			break
		}
	}
	resp, _, err = rc.response(http.MethodPost, 5*time.Second)
	if err != nil {
		t.Logf("trickled body (a byte a second): %v", err)
	} else {
		t.Logf("trickled body (a byte a second, 6 s): status %d — clientBody bounds each pause, not the body", resp.StatusCode)
	}
}

// TestSlowReader: clients that do not read a large response hold only
// bounded memory in connx (backpressure: the backend is stopped from
// writing), and get the complete body when they read it.
func TestSlowReader(t *testing.T) {
	const size = 32 << 20
	chunk := []byte(strings.Repeat("x", 64<<10))
	var written sync.Map // per request: *atomic.Int64
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		n := new(atomic.Int64)
		written.Store(r.URL.Query().Get("id"), n)
		for n.Load() < size {
			k, err := w.Write(chunk)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	})
	p, _ := run(t, config("", "", be.URL))
	base := rssKiB(p.PID())
	const n = 20
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dial(t, p.Addr)
		conns[i].send(fmt.Sprintf("GET /?id=%d HTTP/1.1\r\nHost: a\r\n\r\n", i))
	}
	// Wait until the backends' writes have stalled: no progress for 1 s.
	total := func() (s int64) {
		written.Range(func(_, v any) bool { s += v.(*atomic.Int64).Load(); return true })
		return
	}
	last := int64(-1)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		cur := total()
		if cur == last {
			break
		}
		last = cur
		time.Sleep(time.Second) // polling for quiescence
	}
	rss := rssKiB(p.PID())
	perConn := last / n
	t.Logf("%d clients not reading a %d MiB response: backends wrote %.1f MiB per connection before backpressure stopped them; connx RSS %d MiB (was %d MiB)",
		n, size>>20, float64(perConn)/(1<<20), rss>>10, base>>10)
	if rss > 200<<10 {
		t.Errorf("RSS %d MiB with %d slow readers, want < 200 MiB", rss>>10, n)
	}
	if perConn > size/2 {
		t.Errorf("backends wrote %d bytes per slow reader: no backpressure", perConn)
	}
	var wg sync.WaitGroup
	for i, rc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, err := rc.response(http.MethodGet, 60*time.Second)
			if err != nil || resp.StatusCode != 200 || len(body) != size {
				t.Errorf("reader %d: err %v, got %d bytes", i, err, len(body))
			}
		}()
	}
	wg.Wait()
}

// TestSlowlorisFlood: 2000 slowloris connections held open at once
// (each reconnects when connx closes it) while normal clients send
// requests: every normal request is answered; their latency percentiles
// and connx's RSS are logged; RSS stays under 200 MiB.
func TestSlowlorisFlood(t *testing.T) {
	be := newBackend(t, nil)
	p, _ := run(t, config("", slowTimeouts, be.URL))
	const attackers = 2000
	const attack = 10 * time.Second
	stop := make(chan struct{})
	var open, maxOpen, got408 atomic.Int64
	var wg sync.WaitGroup
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the dials over the first second.
			time.Sleep(time.Duration(i) * time.Second / attackers)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", p.Addr)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				cur := open.Add(1)
				for m := maxOpen.Load(); cur > m && !maxOpen.CompareAndSwap(m, cur); m = maxOpen.Load() {
				}
				closed := make(chan struct{})
				go func() {
					b := make([]byte, 512)
					for {
						k, err := c.Read(b)
						if k > 0 && strings.HasPrefix(string(b[:k]), "HTTP/1.1 408") {
							got408.Add(1)
						}
						if err != nil {
							close(closed)
							return
						}
					}
				}()
				head := "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa"
			feed:
				for j := 0; ; j++ {
					if j < len(head) {
						c.Write([]byte{head[j]})
					}
					select {
					case <-stop:
						break feed
					case <-closed:
						break feed
					case <-time.After(time.Second): // the attacker's pace
					}
				}
				c.Close()
				<-closed
				open.Add(-1)
			}
		}()
	}
	// Let the flood build, then measure normal clients during it.
	for open.Load() < attackers*9/10 {
		time.Sleep(10 * time.Millisecond)
	}
	var lat []time.Duration
	var mu sync.Mutex
	var fails []string
	var cwg sync.WaitGroup
	end := time.Now().Add(attack)
	var peakRSS int64
	for k := range 6 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			tr := &http.Transport{DisableKeepAlives: k >= 4}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for time.Now().Before(end) {
				s := time.Now()
				code, err := get(c, "http://"+p.Addr+"/")
				d := time.Since(s)
				mu.Lock()
				if err != nil || code != 200 {
					fails = append(fails, fmt.Sprintf("%v status %d err %v", time.Now().Format("15:04:05.000"), code, err))
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // the load's pace
			}
		}()
	}
	for time.Now().Before(end) {
		peakRSS = max(peakRSS, rssKiB(p.PID()))
		time.Sleep(500 * time.Millisecond) // sampling
	}
	cwg.Wait()
	peakRSS = max(peakRSS, rssKiB(p.PID()))
	fds := fdCount(p.PID())
	close(stop)
	wg.Wait()
	p50, p90, p99, mx := percentiles(lat)
	t.Logf("flood: %d attackers, peak %d slowloris connections open at once, %d got 408; connx fds at the end of the flood %d; peak RSS %d MiB",
		attackers, maxOpen.Load(), got408.Load(), fds, peakRSS>>10)
	t.Logf("normal clients during the flood: %d ok, %d failed; latency p50 %v p90 %v p99 %v max %v",
		len(lat), len(fails), p50.Round(time.Microsecond), p90.Round(time.Microsecond), p99.Round(time.Microsecond), mx.Round(time.Microsecond))
	for i, f := range fails {
		if i == 10 {
			break
		}
		t.Errorf("normal request failed: %s", f)
	}
	if len(lat) == 0 {
		t.Error("no normal request was answered")
	}
	if peakRSS > 200<<10 {
		t.Errorf("peak RSS %d MiB, want < 200 MiB", peakRSS>>10)
	}
	if !p.Alive() {
		t.Errorf("connx exited: %v", p.Err)
	}
}
