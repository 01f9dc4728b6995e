package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// TestGetRoundRobin proxies GETs over several client connections to three
// backends and checks each backend gets exactly a third of them.
func TestGetRoundRobin(t *testing.T) {
	var addrs []string
	for i := range 3 {
		name := fmt.Sprintf("b%d", i)
		addrs = append(addrs, httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", name)
			io.WriteString(w, name+" "+r.URL.Path)
		})))
	}
	_, addr := proxyFor(t, addrs, nil)

	clients := []*rawClient{dialProxy(t, addr), dialProxy(t, addr), dialProxy(t, addr)}
	turns := map[string]int{}
	for i := range 30 {
		path := fmt.Sprintf("/req/%d", i)
		resp, body := clients[i%3].get(path)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		name := resp.Header.Get("X-Backend")
		if body != name+" "+path {
			t.Fatalf("request %d: body %q from backend %q", i, body, name)
		}
		turns[name]++
	}
	for i := range 3 {
		if n := turns[fmt.Sprintf("b%d", i)]; n != 10 {
			t.Errorf("turns %v, want 10 each", turns)
			break
		}
	}
}

// TestKeepAliveAndPooling sends many requests on one client connection and
// checks the backend saw them all on one upstream connection.
func TestKeepAliveAndPooling(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]int{}
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr]++
		mu.Unlock()
		io.WriteString(w, r.URL.Path)
	})
	_, addr := proxyFor(t, []string{be.addr}, nil)

	rc := dialProxy(t, addr)
	const n = 50
	for i := range n {
		path := fmt.Sprintf("/k/%d", i)
		resp, body := rc.get(path)
		if resp.StatusCode != 200 || body != path || resp.Close {
			t.Fatalf("request %d: status %d body %q close %v", i, resp.StatusCode, body, resp.Close)
		}
	}
	if got := be.requests.Load(); got != n {
		t.Errorf("backend saw %d requests, want %d", got, n)
	}
	if got := be.conns.Load(); got != 1 {
		t.Errorf("backend accepted %d connections, want 1 (pooled)", got)
	}
	mu.Lock()
	if len(remotes) != 1 {
		t.Errorf("backend saw remote addresses %v, want one", remotes)
	}
	mu.Unlock()

	// A second client connection on the proxy still works.
	resp, body := dialProxy(t, addr).get("/other")
	if resp.StatusCode != 200 || body != "/other" {
		t.Fatalf("second client: status %d body %q", resp.StatusCode, body)
	}
}

// TestPipelining writes three requests in one write and expects three
// responses, in order, on the same connection.
func TestPipelining(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}))
	_, addr := proxyFor(t, []string{be}, nil)

	rc := dialProxy(t, addr)
	rc.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"GET /four HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET /one ", "POST /two hello", "POST /three abc", "GET /four "} {
		resp, body := rc.response(http.MethodGet)
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("got status %d body %q, want %q", resp.StatusCode, body, want)
		}
	}
	// And the connection is still usable.
	if resp, body := rc.get("/five"); resp.StatusCode != 200 || body != "GET /five " {
		t.Fatalf("after pipeline: status %d body %q", resp.StatusCode, body)
	}
}

// noBodyBackend answers HEAD with a Content-Length and no body, /204 with
// 204, /304 with a 304 carrying a Content-Length, and anything else with a
// small body, over keep-alive connections.
func noBodyBackend(t *testing.T) string {
	return rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			line := head[:strings.Index(head, "\r\n")]
			var resp string
			switch {
			case strings.HasPrefix(line, "HEAD "):
				resp = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n"
			case strings.Contains(line, " /204 "):
				resp = "HTTP/1.1 204 No Content\r\nX-Status: 204\r\n\r\n"
			case strings.Contains(line, " /304 "):
				resp = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n"
			default:
				resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
			}
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
		}
	})
}

// TestNoBodyResponses checks HEAD, 204 and 304 responses carry no body and
// the connection goes on with the next request.
func TestNoBodyResponses(t *testing.T) {
	_, addr := proxyFor(t, []string{noBodyBackend(t)}, nil)
	rc := dialProxy(t, addr)

	rc.send("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := rc.response(http.MethodHead)
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "1234" {
		t.Fatalf("HEAD: status %d body %q Content-Length %q", resp.StatusCode, body, resp.Header.Get("Content-Length"))
	}
	for _, tc := range []struct {
		path string
		code int
	}{{"/204", 204}, {"/304", 304}, {"/plain", 200}, {"/204", 204}} {
		resp, body := rc.get(tc.path)
		if resp.StatusCode != tc.code || resp.Close {
			t.Fatalf("%s: status %d close %v", tc.path, resp.StatusCode, resp.Close)
		}
		if tc.code != 200 && body != "" {
			t.Fatalf("%s: body %q", tc.path, body)
		}
		if tc.code == 200 && body != "hello" {
			t.Fatalf("%s: body %q", tc.path, body)
		}
	}
	// Pipelined HEAD then GET: the GET's response must not be taken for a
	// HEAD body.
	rc.send("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := rc.response(http.MethodHead); resp.StatusCode != 200 {
		t.Fatalf("pipelined HEAD: status %d", resp.StatusCode)
	}
	if resp, body := rc.response(http.MethodGet); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("GET after HEAD: status %d body %q", resp.StatusCode, body)
	}
}

// TestMetricsRoute checks the main-port metrics route is answered by the
// proxy itself.
func TestMetricsRoute(t *testing.T) {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	_, addr := proxyFor(t, []string{be.addr}, nil)
	rc := dialProxy(t, addr)
	for range 2 { // keep-alive works after it
		resp, body := rc.get("/metrics")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q", ct)
		}
		if !strings.Contains(body, "connx_active_connections 1\n") {
			t.Errorf("body %q lacks the active connection gauge", body)
		}
	}
	if resp, _ := rc.get("/metrics?name=connx_uptime_seconds"); resp.StatusCode != 200 {
		t.Fatalf("/metrics with a query: status %d", resp.StatusCode)
	}
	rc.send("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := rc.response(http.MethodHead); resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD /metrics: status %d body %q", resp.StatusCode, body)
	}
	if n := be.requests.Load(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
	if n := be.conns.Load(); n != 0 {
		t.Errorf("backend saw %d connections", n)
	}
}

// TestMetricsAllow checks that metrics.allow decides who gets the metrics
// route: a client outside it has its /metrics request proxied like any
// other, and a reload that lets it in answers it at once.
func TestMetricsAllow(t *testing.T) {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app metrics for "+r.URL.Path)
	})
	srv, addr := proxyFor(t, []string{be.addr}, func(c *config.Config) {
		c.Metrics.Allow = []string{"10.0.0.0/8", "::1"} // not 127.0.0.1
	})
	rc := dialProxy(t, addr)
	for _, path := range []string{"/metrics", "/metrics?x=1"} {
		resp, body := rc.get(path)
		if resp.StatusCode != 200 || body != "app metrics for /metrics" {
			t.Fatalf("GET %s from 127.0.0.1 outside metrics.allow: status %d body %q, want the backend's answer", path, resp.StatusCode, body)
		}
	}
	if n := be.requests.Load(); n != 2 {
		t.Fatalf("backend saw %d requests, want 2", n)
	}

	cfg := testConfig(t, []string{be.addr}, func(c *config.Config) { c.Metrics.Allow = []string{"127.0.0.1"} })
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	resp, body := rc.get("/metrics")
	if resp.StatusCode != 200 || !strings.Contains(body, "connx_active_connections") {
		t.Fatalf("after the reload: status %d body %q, want metrics", resp.StatusCode, body)
	}
	if n := be.requests.Load(); n != 2 {
		t.Fatalf("backend saw %d requests, want 2", n)
	}
}

// TestMetricsAllowDefault checks the default metrics.allow: loopback and
// private ranges get metrics, public addresses do not.
func TestMetricsAllowDefault(t *testing.T) {
	sn := &snapshot{metricsFrom: config.Default().Metrics.AllowPrefixes()}
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"10.1.2.3": true, "172.16.0.1": true, "172.31.255.255": true, "192.168.1.1": true,
		"fd00::1": true, "fe80::1": true, "169.254.1.1": true,
		"8.8.8.8": false, "172.32.0.1": false, "192.0.2.1": false, "100.64.0.1": false,
		"2001:db8::1": false, "::ffff:8.8.8.8": false,
	} {
		if got := sn.metricsFor(netip.MustParseAddr(addr)); got != want {
			t.Errorf("metricsFor(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestMaxConnections checks a connection over limits.maxConnections gets
// 503 and is closed while the others keep working.
func TestMaxConnections(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Limits.MaxConnections = 2 })

	a, b := dialProxy(t, addr), dialProxy(t, addr)
	for _, rc := range []*rawClient{a, b} {
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	}
	third := dialProxy(t, addr)
	resp := third.expectStatusAndClose(http.MethodGet, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	for _, rc := range []*rawClient{a, b} {
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("after the refused one: status %d body %q", resp.StatusCode, body)
		}
	}
	// Closing one makes room again.
	a.c.Close()
	waitFor(t, "the closed client to be released", func() bool { return srv.Active() == 1 })
	if resp, body := dialProxy(t, addr).get("/"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after a close: status %d body %q", resp.StatusCode, body)
	}
}

// TestByteAtATime sends a request and a response one byte per write, so
// every parser state sees its input split everywhere.
func TestByteAtATime(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
	be := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			if strings.Contains(head, "Content-Length: 5\r\n") {
				io.CopyN(io.Discard, br, 5)
			}
			for i := range len(resp) {
				if _, err := c.Write([]byte{resp[i]}); err != nil {
					return
				}
			}
		}
	})
	_, addr := proxyFor(t, []string{be}, nil)
	rc := dialProxy(t, addr)
	req := "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
	for range 2 {
		for i := range len(req) {
			rc.send(req[i : i+1])
		}
		r, body := rc.response("POST")
		if r.StatusCode != 200 || body != "abcde" || r.Header.Get("X-A") != "b" || r.Trailer.Get("X-T") != "1" {
			t.Fatalf("status %d body %q header %v trailer %v", r.StatusCode, body, r.Header, r.Trailer)
		}
	}
}

// TestUpstreamPoolLifecycle checks pooled connections are closed after
// upstreamIdle, and that one the backend closed is not used again.
func TestUpstreamPoolLifecycle(t *testing.T) {
	var mu sync.Mutex
	states := map[string]http.ConnState{}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	ts.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		states[c.RemoteAddr().String()] = s
		mu.Unlock()
	}
	ts.Start()
	t.Cleanup(ts.Close)
	count := func(s http.ConnState) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range states {
			if v == s {
				n++
			}
		}
		return n
	}
	_, addr := proxyFor(t, []string{ts.Listener.Addr().String()}, func(c *config.Config) {
		c.Timeouts.UpstreamIdle = 300 * time.Millisecond
	})
	rc := dialProxy(t, addr)
	if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	waitFor(t, "the idle upstream connection to be closed", func() bool { return count(http.StateClosed) == 1 })
	if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after idle close: status %d body %q", resp.StatusCode, body)
	}
	// The backend closes its idle connections.
	ts.Config.SetKeepAlivesEnabled(false) // closes idle connections now, and after each response
	waitFor(t, "the backend to close the pooled connection", func() bool { return count(http.StateClosed) == 2 })
	for i := range 3 {
		if resp, body := rc.get("/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d after backend close: status %d body %q", i, resp.StatusCode, body)
		}
	}
}

// TestFDLimitRefuses: near the descriptor limit a new connection gets 503
// and is closed, and the connections already open keep working.
func TestFDLimitRefuses(t *testing.T) {
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv, addr := proxyFor(t, []string{be}, nil)
	first := dialProxy(t, addr)
	if resp, body := first.get("/"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first: %d %q", resp.StatusCode, body)
	}
	// One client and one upstream connection are open: pretend the limit
	// leaves no room for more.
	srv.fdLimit.Store(fdReserve + 2)
	second := dialProxy(t, addr)
	second.expectStatusAndClose(http.MethodGet, http.StatusServiceUnavailable)
	if resp, body := first.get("/again"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("existing connection after a refusal: %d %q", resp.StatusCode, body)
	}
	var s stats.Snapshot
	srv.Stats(&s)
	if s.Refused != 1 {
		t.Errorf("refused = %d, want 1", s.Refused)
	}
}

// TestAutoMaxConnections checks the limits.maxConnections an unset key
// gets: the default, or what the descriptor limit can hold.
func TestAutoMaxConnections(t *testing.T) {
	for limit, want := range map[int64]int64{
		1 << 40: config.DefaultMaxConnections,
		20064:   config.DefaultMaxConnections,
		20000:   9968,
		1024:    480,
		64:      1,
	} {
		if got := autoMaxConns(limit); got != want {
			t.Errorf("autoMaxConns(%d) = %d, want %d", limit, got, want)
		}
	}
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	srv, _ := proxyFor(t, []string{be.addr}, func(c *config.Config) { c.Limits.MaxConnections = 0 })
	if got, want := srv.snap.Load().maxConns, autoMaxConns(fdLimit()); got != want {
		t.Errorf("maxConns = %d, want %d", got, want)
	}
}
