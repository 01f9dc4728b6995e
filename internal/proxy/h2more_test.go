package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2ConcurrentStreams sends 100 concurrent streams on one TLS
// connection; they spread over a pool of three backends. The client is
// strict about the server's stream limit (see TestE2EConcurrentStreams in
// internal/http2): it waits for a slot rather than dialling, so a second
// dial means ConnX closed the connection.
func TestH2ConcurrentStreams(t *testing.T) {
	var bs [3]*countingBackend
	var addrs []string
	for i := range bs {
		bs[i] = newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s", r.URL.Path)
		})
		addrs = append(addrs, bs[i].addr)
	}
	e := newTLSEnvMulti(t, addrs, nil)
	c := h2Client(t, e)
	var dials atomic.Int64
	tr := c.Transport.(*http.Transport)
	tr.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	// One request first, so that the connection exists before the burst.
	h2Do(t, c, "GET", "https://"+e.addr+"/warm", nil)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			path := "/s/" + strconv.Itoa(i)
			resp, err := c.Get("https://" + e.addr + path)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(b) != path || resp.ProtoMajor != 2 {
				errs <- fmt.Errorf("%s: %d %q %v %s", path, resp.StatusCode, b, err, resp.Proto)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := dials.Load(); d != 1 {
		t.Errorf("%d connections dialled, want 1", d)
	}
	for i, b := range bs {
		if b.requests.Load() == 0 {
			t.Errorf("backend %d got no request", i)
		}
	}
}

// newTLSEnvMulti is newTLSEnv with several backends.
func newTLSEnvMulti(t testing.TB, backends []string, tweak func(*config.Config)) *tlsEnv {
	return newTLSEnv(t, backends[0], func(c *config.Config) {
		for _, a := range backends[1:] {
			c.Backends = append(c.Backends, config.Backend{URL: "http://" + a, Weight: 1})
		}
		if tweak != nil {
			tweak(c)
		}
	})
}

// TestH2LargeBodies moves 16 MiB each way through 64 KiB stream windows,
// over TLS and h2c, with bodies of known and unknown length.
func TestH2LargeBodies(t *testing.T) {
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64); err == nil {
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			}
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.Copy(w, patternReader(n))
			w.Header().Set("X-Sum", "done")
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	}))
	e := newTLSEnv(t, backend, func(c *config.Config) { c.Server.H2C = true })
	const size = 16 << 20
	want := sha256.New()
	_, _ = io.Copy(want, patternReader(size))
	wantSum := fmt.Sprintf("%d %s", size, hex.EncodeToString(want.Sum(nil)))
	for _, mode := range []string{"tls", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			c, base := h2Client(t, e), "https://"+e.addr
			if mode == "h2c" {
				c, base = h2Client(t, nil), "http://"+e.plain
			}
			// Upload, known length and unknown length.
			req, _ := http.NewRequest("POST", base+"/up", patternReader(size))
			req.ContentLength = size
			_, body := h2DoReq(t, c, req)
			if body != wantSum {
				t.Errorf("upload with length: %q, want %q", body, wantSum)
			}
			req, _ = http.NewRequest("POST", base+"/up", io.MultiReader(patternReader(size)))
			_, body = h2DoReq(t, c, req)
			if body != wantSum {
				t.Errorf("upload without length: %q, want %q", body, wantSum)
			}
			// Download, with Content-Length and chunked (with a trailer).
			for _, q := range []string{"", "&chunked=1"} {
				resp, err := c.Get(base + "/down?n=" + strconv.Itoa(size) + q)
				if err != nil {
					t.Fatal(err)
				}
				pc := newPatternChecker()
				n, err := io.Copy(pc, resp.Body)
				resp.Body.Close()
				if err != nil || n != size {
					t.Fatalf("download%s: %d bytes, %v", q, n, err)
				}
				pc.check(t, size)
				if q != "" && resp.Trailer.Get("X-Sum") != "done" {
					t.Errorf("trailer: %v", resp.Trailer)
				}
			}
		})
	}
}

func h2DoReq(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return resp, string(b)
}

// TestH2Routing routes each stream of one connection on its own: pools,
// a respond route, a redirect, 404, and a backend that fails (502 for its
// streams only).
func TestH2Routing(t *testing.T) {
	api, web := namedEcho(t, "api"), namedEcho(t, "web")
	broken := rawBackend(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		c.Close() // no answer
	})
	cfg := serverConfig(t, "h2c: true", fmt.Sprintf(`
pools:
  api: {backends: [{url: "http://%s"}]}
  web: {backends: [{url: "http://%s"}]}
  broken: {backends: [{url: "http://%s"}]}
routes:
  - {match: {pathPrefix: "/api"}, pool: api, stripPrefix: "/api"}
  - {match: {path: "/broken"}, pool: broken}
  - {match: {path: "/hello"}, respond: {status: 200, body: "hi\n"}}
  - {match: {path: "/old"}, redirect: {location: "/new"}}
  - {match: {pathPrefix: "/"}, pool: web}
healthCheck: {enabled: false}
circuitBreaker: {enabled: false}
outlierDetection: {enabled: false}
`, api, web, broken))
	srv := startProxy(t, cfg)
	c := h2Client(t, nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := "http://" + srv.Addr().String()
	var wg sync.WaitGroup
	for range 5 {
		for _, tc := range []struct {
			path   string
			status int
			want   string
		}{
			{"/api/x?q=1", 200, `"Name":"api","Target":"/x?q=1"`},
			{"/page", 200, `"Name":"web"`},
			{"/hello", 200, "hi\n"},
			{"/old", 302, ""},
			{"/broken", 502, ""},
		} {
			wg.Go(func() {
				resp, err := c.Get(base + tc.path)
				if err != nil {
					t.Errorf("%s: %v", tc.path, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
					t.Errorf("%s: %d %q", tc.path, resp.StatusCode, b)
				}
				if tc.status == 302 && resp.Header.Get("Location") != "/new" {
					t.Errorf("%s: Location %q", tc.path, resp.Header.Get("Location"))
				}
			})
		}
	}
	wg.Wait()
}

// TestH2ClientResetMidResponse resets a stream while its response is
// being forwarded: the upstream connection is closed, not pooled, and
// the next streams are answered correctly.
func TestH2ClientResetMidResponse(t *testing.T) {
	ts := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = io.Copy(w, patternReader(64<<20))
			return
		}
		fmt.Fprint(w, "small")
	})
	_, addr := proxyFor(t, []string{ts.addr}, func(c *config.Config) { c.Server.H2C = true })
	c := h2Client(t, nil)
	base := "http://" + addr
	for range 3 {
		resp, err := c.Get(base + "/big")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256<<10)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // RST_STREAM(CANCEL)
		for range 5 {
			_, body := h2Do(t, c, "GET", base+"/small", nil)
			if body != "small" {
				t.Fatalf("after a reset: %q", body)
			}
		}
	}
	// Each reset cost its upstream connection: the small requests never
	// shared one with a response cut short.
	if n := ts.conns.Load(); n < 4 {
		t.Errorf("backend connections %d: a reset stream's connection was reused", n)
	}
}

// rawH2 is a minimal HTTP/2 client on a Framer, for tests that look at
// frames.
type rawH2 struct {
	t   testing.TB
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialH2(t testing.TB, addr string) *rawH2 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	h := &rawH2{t: t, c: c, fr: http2.NewFramer(c, c)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *rawH2) get(id uint32, path string) {
	h.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "example.com"}, {":path", path}} {
		_ = h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
}

// TestH2GracefulShutdown: a drain sends GOAWAY with the last stream ID,
// lets that stream finish (a reload meanwhile does not disturb it), and
// then closes the connection.
func TestH2GracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		fmt.Fprint(w, "finished")
	}))
	cfg := testConfig(t, []string{backend}, func(c *config.Config) { c.Server.H2C = true })
	srv := startProxy(t, cfg)
	h := dialH2(t, srv.Addr().String())
	h.get(1, "/slow")
	<-arrived
	if err := srv.Reload(testConfig(t, []string{backend}, func(c *config.Config) { c.Server.H2C = true })); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	var goAway *http2.GoAwayFrame
	var status string
	var body []byte
	ended := false
	for !ended {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("read: %v (goaway %v, status %q, body %q)", err, goAway, status, body)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goAway = f
			close(release) // the stream finishes after the GOAWAY
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
			ended = f.StreamEnded()
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			ended = f.StreamEnded()
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		}
	}
	if goAway == nil || goAway.LastStreamID != 1 || goAway.ErrCode != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %+v", goAway)
	}
	if status != "200" || string(body) != "finished" {
		t.Fatalf("stream 1: %q %q", status, body)
	}
	// Then the connection closes.
	for {
		if _, err := h.fr.ReadFrame(); err != nil {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestH2IdleGoAway: a connection without streams for timeouts.clientIdle
// gets GOAWAY and is closed.
func TestH2IdleGoAway(t *testing.T) {
	cfg := testConfig(t, []string{namedEcho(t, "a")}, func(c *config.Config) {
		c.Server.H2C = true
		c.Timeouts.ClientIdle = 200 * time.Millisecond
	})
	srv := startProxy(t, cfg)
	h := dialH2(t, srv.Addr().String())
	h.get(1, "/")
	var goAway *http2.GoAwayFrame
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			break
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			goAway = g
		}
	}
	if goAway == nil || goAway.LastStreamID != 1 {
		t.Fatalf("GOAWAY %+v before the close", goAway)
	}
}

// TestH2BackpressureWindow: a stream whose client opens no window stops
// ConnX reading its backend (the upstream is parked); opening the
// window resumes it and every byte arrives.
func TestH2BackpressureWindow(t *testing.T) {
	const size = 32 << 20
	var sent atomic.Int64
	be := rawBackend(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		_, _ = io.Copy(countWriter{c, &sent}, patternReader(size))
	})
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) { c.Server.H2C = true })
	h := dialH2(t, addr)
	_ = h.c.SetDeadline(time.Now().Add(time.Minute))
	h.get(1, "/big")
	// Read what the initial 64 KiB window lets through.
	got := 0
	for got < 65535 {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
		}
	}
	stalled := waitStalled(t, "backend to stall", &sent, 300*time.Millisecond)
	t.Logf("backend stalled after %d bytes; the client took %d", stalled, got)
	if stalled > 16<<20 {
		t.Errorf("backend sent %d bytes for a client that took %d", stalled, got)
	}
	if srv.detached.Load() == 0 {
		t.Error("the stream's upstream is not parked")
	}
	// Open the windows and take the rest.
	_ = h.fr.WriteWindowUpdate(0, 1<<30)
	_ = h.fr.WriteWindowUpdate(1, 1<<30)
	total := 0
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got+total, err)
		}
		d, ok := f.(*http2.DataFrame)
		if !ok {
			continue
		}
		total += len(d.Data())
		if d.StreamEnded() {
			break
		}
	}
	if got+total != size {
		t.Fatalf("got %d bytes, want %d", got+total, size)
	}
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
