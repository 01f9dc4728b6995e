package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// TestRequestCounters sends a known mix of requests and checks that the
// counters Server.Stats reports match it exactly, by method, status and
// backend, and that the duration histograms count the same requests.
func TestRequestCounters(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/err":
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = io.WriteString(w, "body")
	})
	a, b := httpBackend(t, h), httpBackend(t, h)
	srv, addr := proxyFor(t, []string{a, b}, nil)
	c := &http.Client{}
	t.Cleanup(c.CloseIdleConnections)
	send := func(method, path string, n int) {
		for range n {
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequest(method, "http://"+addr+path, body)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	// Round-robin alternates, and every run is even: each backend gets
	// exactly half of each kind.
	send(http.MethodGet, "/ok", 10)
	send(http.MethodPost, "/ok", 4)
	send(http.MethodGet, "/missing", 2)
	send(http.MethodGet, "/err", 2)
	for range 2 {
		rc := dialProxy(t, addr)
		rc.send("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
		rc.expectStatusAndClose(http.MethodGet, http.StatusBadRequest)
	}

	// A request is counted just after its last bytes are handed to the
	// kernel, so the client may see the response first.
	snap := settledStats(t, srv, 20)
	got := map[stats.RequestCount]bool{}
	for _, rc := range snap.Requests {
		got[rc] = true
	}
	want := []stats.RequestCount{{Method: "OTHER", Code: 400, Backend: "none", Protocol: "http1", Count: 2}}
	for _, be := range []string{"http://" + a, "http://" + b} {
		want = append(want,
			stats.RequestCount{Method: "GET", Code: 200, Backend: be, Pool: "default", Protocol: "http1", Count: 5},
			stats.RequestCount{Method: "POST", Code: 200, Backend: be, Pool: "default", Protocol: "http1", Count: 2},
			stats.RequestCount{Method: "GET", Code: 404, Backend: be, Pool: "default", Protocol: "http1", Count: 1},
			stats.RequestCount{Method: "GET", Code: 500, Backend: be, Pool: "default", Protocol: "http1", Count: 1})
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing %+v", w)
		}
	}
	if len(snap.Requests) != len(want) {
		t.Errorf("got %d request series, want %d: %+v", len(snap.Requests), len(want), snap.Requests)
	}
	hist := map[string]uint64{}
	for _, h := range snap.Durations {
		var sum uint64
		for _, n := range h.Counts {
			sum += n
		}
		if sum != h.Count || h.Sum <= 0 {
			t.Errorf("histogram %s: buckets sum to %d, count %d, sum %v", h.Backend, sum, h.Count, h.Sum)
		}
		hist[h.Backend] = h.Count
		if h.Protocol != "http1" {
			t.Errorf("histogram %s for protocol %q: no HTTP/2 request was made", h.Backend, h.Protocol)
		}
	}
	if hist["http://"+a] != 9 || hist["http://"+b] != 9 || hist["none"] != 2 {
		t.Errorf("histogram counts %v, want 9 per backend and 2 for none", hist)
	}
	if n := snap.Errors[stats.ErrBadRequest]; n != 2 {
		t.Errorf("bad_request errors = %d, want 2", n)
	}
	for k, n := range snap.Errors {
		if stats.ErrorKind(k) != stats.ErrBadRequest && n != 0 {
			t.Errorf("%s errors = %d, want 0", stats.ErrorKind(k), n)
		}
	}
	if snap.BytesIn == 0 || snap.BytesOut == 0 {
		t.Errorf("bytes in/out = %d/%d", snap.BytesIn, snap.BytesOut)
	}
	if len(snap.Backends) != 2 || !snap.Backends[0].Up || snap.Backends[0].OpenConns < 1 {
		t.Errorf("backends: %+v", snap.Backends)
	}
}

// TestErrorCounters provokes each upstream failure kind once and checks
// its counter and the status it was recorded with.
func TestErrorCounters(t *testing.T) {
	dead := deadPort(t)
	srv, addr := proxyFor(t, []string{dead}, func(c *config.Config) { c.Upstream.Retries = 0 })
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var snap stats.Snapshot
	srv.Stats(&snap)
	if snap.Errors[stats.ErrConnect] != 1 {
		t.Errorf("connect errors = %d, want 1", snap.Errors[stats.ErrConnect])
	}
	found := false
	for _, rc := range snap.Requests {
		if rc.Code == resp.StatusCode && rc.Count == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("no request recorded with status %d: %+v", resp.StatusCode, snap.Requests)
	}
}

// TestProtocolLabel: requests are counted, and timed, by the protocol
// the client spoke: HTTP/1.1 and HTTP/2 (h2c and TLS) on one backend
// make separate series (TestRequestCounters: without HTTP/2 requests
// there is no h2 histogram).
func TestProtocolLabel(t *testing.T) {
	a := h2EchoBackend(t)
	e := newTLSEnv(t, a, func(c *config.Config) { c.Server.H2C = true })
	for range 3 {
		rc := dialProxy(t, e.plain)
		if r, _ := rc.get("/h1"); r.StatusCode != 200 {
			t.Fatalf("HTTP/1.1: %d", r.StatusCode)
		}
	}
	h2c, tlsc := h2Client(t, nil), h2Client(t, e)
	for range 2 {
		h2Do(t, h2c, "GET", "http://"+e.plain+"/c", nil)
		h2Do(t, tlsc, "POST", "https://"+e.addr+"/t", strings.NewReader("x"))
	}
	snap := settledStats(t, e.srv, 7)
	be := "http://" + a
	got := map[stats.RequestCount]bool{}
	for _, rc := range snap.Requests {
		got[rc] = true
	}
	for _, w := range []stats.RequestCount{
		{Method: "GET", Code: 200, Backend: be, Pool: "default", Protocol: "http1", Count: 3},
		{Method: "GET", Code: 200, Backend: be, Pool: "default", Protocol: "h2", Count: 2},
		{Method: "POST", Code: 200, Backend: be, Pool: "default", Protocol: "h2", Count: 2},
	} {
		if !got[w] {
			t.Errorf("missing %+v in %+v", w, snap.Requests)
		}
	}
	hist := map[[2]string]uint64{}
	for _, h := range snap.Durations {
		hist[[2]string{h.Backend, h.Protocol}] = h.Count
	}
	want := map[[2]string]uint64{{be, "http1"}: 3, {be, "h2"}: 4}
	if len(hist) != len(want) {
		t.Errorf("histograms %v, want %v", hist, want)
	}
	for k, n := range want {
		if c, ok := hist[k]; !ok || c != n {
			t.Errorf("histogram %v: %d (%v), want %d", k, c, ok, n)
		}
	}
}

// settledStats waits until srv has counted n requests and returns its
// stats.
func settledStats(t *testing.T, srv *Server, n uint64) stats.Snapshot {
	t.Helper()
	var snap stats.Snapshot
	waitFor(t, "requests counted", func() bool {
		snap = stats.Snapshot{}
		srv.Stats(&snap)
		var total uint64
		for _, rc := range snap.Requests {
			total += rc.Count
		}
		return total >= n
	})
	return snap
}

// BenchmarkRecord is the per-request cost of the metrics: the two clock
// reads of begin and end, and the counters.
func BenchmarkRecord(b *testing.B) {
	var st loopStats
	be := &backend{id: 3}
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now().UnixNano()
		st.count(be.id+1, protoHTTP1, 0, 200, time.Now().UnixNano()-start)
	}
}
