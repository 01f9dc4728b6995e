package proxy

// Fault injection between the proxy and its backends with Toxiproxy, run
// in-process as a library: each test puts a Toxiproxy listener on
// 127.0.0.1 in front of a Go backend, points ConnX at that listener and
// adds toxics (latency, reset, black hole, slicing, bandwidth, cut) to the
// backend-to-proxy stream. Toxiproxy dials the backend once per connection
// ConnX opens, so a backend's connection count is ConnX's upstream
// connection count.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/connx/connx/internal/config"
)

// toxiFor starts a Toxiproxy proxy on an ephemeral 127.0.0.1 port in front
// of upstream and returns it; its address is p.Listen. It is stopped, with
// every connection it holds, when the test ends.
func toxiFor(t *testing.T, upstream string) *toxiproxy.Proxy {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(api, "to-"+upstream, "127.0.0.1:0", upstream)
	if err := api.Collection.Add(p, true); err != nil {
		t.Fatalf("toxiproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// addToxic adds a toxic to p on stream ("downstream": backend to proxy,
// "upstream": proxy to backend) and returns its name. Toxiproxy applies
// it to the connections it already has as well as to new ones. A toxic
// with toxicity 0 is present but does nothing.
func addToxic(t *testing.T, p *toxiproxy.Proxy, typ, stream string, toxicity float32, attrs any) string {
	t.Helper()
	name := typ + "_" + stream
	spec, err := json.Marshal(map[string]any{
		"name": name, "type": typ, "stream": stream, "toxicity": toxicity, "attributes": attrs,
	})
	mustf(t, err, "toxic spec")
	if _, err := p.Toxics.AddToxicJson(bytes.NewReader(spec)); err != nil {
		t.Fatalf("adding toxic %s: %v", spec, err)
	}
	return name
}

// getOnce sends one GET on a new connection, with an X-Req header, and
// returns the response and its body.
func getOnce(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	rc := dialProxy(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: a\r\nX-Req: " + req + "\r\n\r\n")
	resp, body := rc.response(http.MethodGet)
	rc.c.Close()
	return resp, body
}

// TestToxiLatencyTimesOut puts a long latency on the only backend's
// responses: the request must end with 504 from upstreamResponseHeader,
// and once the latency is gone the next request must be served on a new
// upstream connection, not on the one the late response is still due on.
func TestToxiLatencyTimesOut(t *testing.T) {
	var mu sync.Mutex
	via := map[string]string{} // X-Req -> the backend connection that served it
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		via[r.Header.Get("X-Req")] = r.RemoteAddr
		mu.Unlock()
		io.WriteString(w, r.Header.Get("X-Req"))
	})
	tp := toxiFor(t, be.addr)
	// Far longer than the header timeout: a 200 for the first request can
	// only mean the timeout did not fire.
	latency := addToxic(t, tp, "latency", "downstream", 1, map[string]any{"latency": 8000})
	_, addr := proxyFor(t, []string{tp.Listen}, func(c *config.Config) {
		c.Timeouts.UpstreamResponseHeader = 300 * time.Millisecond
	})

	rc := dialProxy(t, addr)
	start := time.Now()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\nX-Req: first\r\n\r\n")
	rc.expectStatusAndClose(http.MethodGet, http.StatusGatewayTimeout)
	t.Logf("504 after %v", time.Since(start))

	mustf(t, tp.Toxics.RemoveToxic(context.Background(), latency), "removing the latency")
	resp, body := getOnce(t, addr, "second")
	if resp.StatusCode != 200 || body != "second" {
		t.Fatalf("after the latency is removed: status %d body %q, want 200 %q", resp.StatusCode, body, "second")
	}
	mu.Lock()
	defer mu.Unlock()
	if via["first"] == "" || via["first"] == via["second"] {
		t.Fatalf("backend connections: first request on %q, second on %q; the timed-out connection was reused",
			via["first"], via["second"])
	}
	if n := be.conns.Load(); n != 2 {
		t.Errorf("backend saw %d connections, want 2", n)
	}
}

// TestToxiResetBeforeResponse resets backend A's connections when its
// response starts (the request has reached A): a GET must be retried on B
// and answered 200, a POST with a body must get 502 and not reach B.
func TestToxiResetBeforeResponse(t *testing.T) {
	var aGets, aPosts, bPosts atomic.Int64
	a := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			aPosts.Add(1)
		} else {
			aGets.Add(1)
		}
		io.WriteString(w, "0")
	}))
	b := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			bPosts.Add(1)
		}
		io.WriteString(w, "1")
	}))
	tp := toxiFor(t, a)
	addToxic(t, tp, "reset_peer", "downstream", 1, map[string]any{"timeout": 0})
	_, addr := proxyFor(t, []string{tp.Listen, b}, func(c *config.Config) {
		c.Upstream.Retries = 1
	})

	for i := range 4 {
		if resp, body := getOnce(t, addr, strconv.Itoa(i)); resp.StatusCode != 200 || body != "1" {
			t.Fatalf("GET %d: status %d body %q, want 200 from backend 1", i, resp.StatusCode, body)
		}
	}
	if aGets.Load() == 0 {
		t.Fatal("no GET reached backend 0: the reset was never exercised")
	}

	// Round-robin sends one of two POSTs to A; send until one has.
	for i := 0; aPosts.Load() == 0; i++ {
		if i == 6 {
			t.Fatal("no POST reached backend 0 in 6 tries")
		}
		beforeB := bPosts.Load()
		rc := dialProxy(t, addr)
		rc.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
		resp, body := rc.response(http.MethodPost)
		switch {
		case aPosts.Load() == 0 && (resp.StatusCode != 200 || body != "1"):
			t.Fatalf("POST %d to backend 1: status %d body %q", i, resp.StatusCode, body)
		case aPosts.Load() == 0:
			continue
		case resp.StatusCode != http.StatusBadGateway:
			t.Fatalf("POST reset by backend 0: status %d body %q, want 502", resp.StatusCode, body)
		case bPosts.Load() != beforeB:
			t.Fatal("POST reset by backend 0 was sent again to backend 1")
		case !resp.Close:
			t.Error("502 without Connection: close")
		}
		rc.expectClosed()
	}
}

// TestToxiBlackHoleEjects drops everything backend A sends while holding
// its connections open: each request to A ends with 504, and with
// outlierDetection.consecutiveFailures 2 the second ejects A, after which
// every request goes to B.
func TestToxiBlackHoleEjects(t *testing.T) {
	a := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "0") })
	b := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "1") }))
	tp := toxiFor(t, a.addr)
	addToxic(t, tp, "timeout", "downstream", 1, map[string]any{"timeout": 0})
	srv, addr := proxyFor(t, []string{tp.Listen, b}, func(c *config.Config) {
		c.Timeouts.UpstreamResponseHeader = 300 * time.Millisecond
		c.Outlier.Enabled = true
		c.Outlier.ConsecutiveFailures = 2
		c.Outlier.BaseEjection = 30 * time.Second
		c.Outlier.MaxEjection = 60 * time.Second
	})
	stateA := func() string {
		st := srv.snap.Load().def.members[0].hb.State(time.Now().UnixNano())
		return fmt.Sprintf("ejected=%v available=%v last error %q", st.Ejected, st.Available, st.LastError)
	}
	ejected := func() bool { return srv.snap.Load().def.members[0].hb.State(time.Now().UnixNano()).Ejected }

	timeouts := 0
	for i := 0; timeouts < 2; i++ {
		if i == 8 {
			t.Fatalf("only %d of 8 requests timed out on backend 0", timeouts)
		}
		rc := dialProxy(t, addr)
		rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := rc.response(http.MethodGet)
		switch {
		case resp.StatusCode == http.StatusGatewayTimeout:
			timeouts++
			if !resp.Close {
				t.Error("504 without Connection: close")
			}
			rc.expectClosed()
			if timeouts == 1 && ejected() {
				t.Fatalf("backend 0 ejected after one failure (consecutiveFailures 2): %s", stateA())
			}
		case resp.StatusCode != 200 || body != "1":
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
		rc.c.Close()
	}
	if n := a.requests.Load(); n != 2 {
		t.Fatalf("backend 0 received %d requests for 2 timeouts", n)
	}
	waitFor(t, "backend 0 ejected after 2 timeouts", ejected)
	t.Logf("backend 0: %s", stateA())

	got := tally(t, addr, 20, 2, nil)
	if got[0] != 0 || got[1] != 20 {
		t.Fatalf("with backend 0 ejected: answers %v, want all 20 from backend 1", got[:2])
	}
	if n := a.requests.Load(); n != 2 {
		t.Fatalf("ejected backend 0 received %d more requests", n-2)
	}
	if !ejected() {
		t.Fatalf("backend 0 no longer ejected: %s", stateA())
	}
}

// TestToxiSlicedResponses has Toxiproxy cut every response into 1-5 byte
// pieces with pauses between them, on one pooled upstream connection:
// heads, Content-Length and chunked bodies, a 204 and a HEAD must arrive
// complete and byte-exact, and each response must end exactly where it
// ends (the next one on the connection parses).
func TestToxiSlicedResponses(t *testing.T) {
	const (
		clSize      = 6000
		chunkedSize = 3000
	)
	long := strings.Repeat("v", 300)
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Long", long)
		w.Header().Set("X-Path", r.URL.Path)
		switch r.URL.Path {
		case "/cl":
			w.Header().Set("Content-Length", strconv.Itoa(clSize))
			io.Copy(w, patternReader(clSize))
		case "/chunked":
			// Chunks of 1, 2, 3, ... bytes, each flushed on its own.
			f := w.(http.Flusher)
			src := patternReader(chunkedSize)
			for n := 1; ; n++ {
				if k, _ := io.CopyN(w, src, int64(n)); k == 0 {
					break
				}
				f.Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	tp := toxiFor(t, be.addr)
	addToxic(t, tp, "slicer", "downstream", 1, map[string]any{"average_size": 3, "size_variation": 2, "delay": 20})
	_, addr := proxyFor(t, []string{tp.Listen}, func(c *config.Config) { c.Server.EventLoops = 1 })

	rc := dialProxy(t, addr)
	for round := range 2 {
		for _, tc := range []struct {
			method, path string
			status       int
			size         int64 // pattern bytes in the body
		}{
			{"GET", "/cl", 200, clSize},
			{"GET", "/chunked", 200, chunkedSize},
			{"GET", "/empty", 204, 0},
			{"HEAD", "/cl", 200, 0},
		} {
			rc.send(tc.method + " " + tc.path + " HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := rc.response(tc.method)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Path") != tc.path || resp.Header.Get("X-Long") != long {
				t.Fatalf("round %d %s %s: status %d, X-Path %q, X-Long of %d bytes",
					round, tc.method, tc.path, resp.StatusCode, resp.Header.Get("X-Path"), len(resp.Header.Get("X-Long")))
			}
			if tc.method == "HEAD" && resp.ContentLength != clSize {
				t.Fatalf("round %d HEAD: Content-Length %d, want %d", round, resp.ContentLength, clSize)
			}
			pc := newPatternChecker()
			pc.Write([]byte(body))
			pc.check(t, tc.size)
		}
	}
	t.Logf("backend connections: %d", be.conns.Load())
}

// TestToxiBandwidthLargeBody streams a 1 MiB response through a 400 KB/s
// link (about 2.6 s): longer in total than upstreamRead, which bounds a
// pause, not the transfer. The body must arrive complete and byte-exact.
func TestToxiBandwidthLargeBody(t *testing.T) {
	const size = 1 << 20
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.Copy(w, patternReader(size))
	}))
	tp := toxiFor(t, be)
	addToxic(t, tp, "bandwidth", "downstream", 1, map[string]any{"rate": 400})
	_, addr := proxyFor(t, []string{tp.Listen}, func(c *config.Config) {
		// Toxiproxy pauses about 80 ms between 32 KiB pieces.
		c.Timeouts.UpstreamRead = 1500 * time.Millisecond
	})
	rc := dialProxy(t, addr)
	start := time.Now()
	rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	mustf(t, err, "head")
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("status %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	pc := newPatternChecker()
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "body after %d bytes", pc.n)
	pc.check(t, size)
	t.Logf("1 MiB in %v", time.Since(start))
}

// TestToxiCutMidBody lets 200 000 bytes of a 1 MiB response through and
// then closes the backend side, gracefully (FIN) or with a reset (RST):
// the client must get the head, an intact prefix shorter than the body
// and then the end of the connection, never a complete message. With the
// toxics gone, the next request on a new connection gets all of it.
func TestToxiCutMidBody(t *testing.T) {
	const (
		size  = 1 << 20
		limit = 200_000
	)
	for _, tc := range []struct {
		name    string
		chunked bool
		reset   bool
	}{
		{"content-length/fin", false, false},
		{"content-length/rst", false, true},
		{"chunked/fin", true, false},
		{"chunked/rst", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(size))
				}
				io.CopyBuffer(struct{ io.Writer }{w}, patternReader(size), make([]byte, 16<<10))
			}))
			tp := toxiFor(t, be)
			addToxic(t, tp, "limit_data", "downstream", 1, map[string]any{"bytes": limit})
			if tc.reset {
				// A reset_peer toxic present when a connection starts
				// makes Toxiproxy close it with SO_LINGER 0 (a reset);
				// with toxicity 0 it does nothing else.
				addToxic(t, tp, "reset_peer", "downstream", 0, map[string]any{"timeout": 0})
			}
			_, addr := proxyFor(t, []string{tp.Listen}, nil)

			rc := dialProxy(t, addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(rc.br, nil)
			mustf(t, err, "head")
			if resp.StatusCode != 200 || tc.chunked != (resp.ContentLength == -1) {
				t.Fatalf("status %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
			}
			pc := newPatternChecker()
			_, err = io.Copy(pc, resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
				t.Fatalf("body read ended with %v after %d of %d bytes; want an incomplete message", err, pc.n, size)
			}
			if pc.n >= limit || pc.bad >= 0 {
				t.Fatalf("got %d bytes (first bad chunk at %d) through a %d-byte cut", pc.n, pc.bad, limit)
			}
			t.Logf("cut after %d body bytes: %v", pc.n, err)
			if !isReset(err) {
				rc.expectClosed()
			}

			tp.Toxics.ResetToxics(context.Background())
			rc = dialProxy(t, addr)
			rc.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err = http.ReadResponse(rc.br, nil)
			mustf(t, err, "head after the cut")
			pc = newPatternChecker()
			_, err = io.Copy(pc, resp.Body)
			mustf(t, err, "body after the cut, %d bytes in", pc.n)
			if resp.StatusCode != 200 {
				t.Fatalf("after the cut: status %d", resp.StatusCode)
			}
			pc.check(t, size)
		})
	}
}
