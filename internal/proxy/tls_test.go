package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
	"github.com/connx/connx/internal/testcert"
	"github.com/connx/connx/internal/testproc"
)

// tlsEnv is a proxy with an HTTPS listener serving two certificates: an
// ECDSA one for example.com (the default) and an RSA one for
// *.example.net.
type tlsEnv struct {
	srv     *Server
	addr    string // HTTPS
	plain   string // plaintext
	ca      *testcert.CA
	certs   []config.Certificate
	backend string
}

// protoBackend answers every request with its X-Forwarded-Proto and path.
func protoBackend(t testing.TB) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-Proto"), r.URL.Path)
	}))
}

func newTLSEnv(t testing.TB, backend string, tweak func(*config.Config)) *tlsEnv {
	t.Helper()
	e := &tlsEnv{ca: testcert.NewCA(t), backend: backend}
	dir := t.TempDir()
	cf, kf := e.ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, dir, "example.com")
	wf, wk := e.ca.Issue(t, testcert.RSA, false, "*.example.net").Write(t, dir, "wildcard")
	e.certs = []config.Certificate{{CertFile: cf, KeyFile: kf}, {CertFile: wf, KeyFile: wk}}
	cfg := testConfig(t, []string{backend}, func(c *config.Config) {
		c.Server.TLS = config.DefaultTLS()
		c.Server.TLS.Port = 0
		c.Server.TLS.Certificates = e.certs
		if tweak != nil {
			tweak(c)
		}
	})
	e.srv = startProxy(t, cfg)
	e.addr = e.srv.TLSAddr().String()
	e.plain = e.srv.Addr().String()
	return e
}

// client returns a TLS client config for server name sni trusting the
// test CA.
func (e *tlsEnv) client(sni string) *tls.Config {
	return &tls.Config{RootCAs: e.ca.Pool(), ServerName: sni, NextProtos: []string{"http/1.1"}}
}

// dial opens a TLS connection to the proxy and completes the handshake.
func (e *tlsEnv) dial(t testing.TB, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", e.addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends a GET on c and returns the status and body.
func tlsGet(t testing.TB, c net.Conn, br *bufio.Reader, path string) (int, string) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n", path); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return resp.StatusCode, string(b)
}

func TestTLSRequests(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := e.client("example.com")
		cfg.MaxVersion = v
		c := e.dial(t, cfg)
		st := c.ConnectionState()
		if st.Version != v || st.NegotiatedProtocol != "http/1.1" {
			t.Fatalf("version %x ALPN %q", st.Version, st.NegotiatedProtocol)
		}
		br := bufio.NewReader(c)
		for i := range 20 { // keep-alive
			path := fmt.Sprintf("/r%d", i)
			if code, body := tlsGet(t, c, br, path); code != 200 || body != "https "+path {
				t.Fatalf("TLS %x request %d: %d %q", v, i, code, body)
			}
		}
	}
	// The plaintext port still says http.
	rc := dialProxy(t, e.plain)
	if resp, body := rc.get("/p"); resp.StatusCode != 200 || body != "http /p" {
		t.Fatalf("plaintext: %d %q", resp.StatusCode, body)
	}
	// net/http's client, for the usual client behaviour.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.client("example.com")}, Timeout: ioTimeout}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + e.addr + "/std")
	mustf(t, err, "net/http GET")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "https /std" {
		t.Fatalf("net/http: %d %q", resp.StatusCode, b)
	}
}

// TestTLSRequestWithFinished: the first request arrives in the same
// segment as the client's Finished message, so the handshake reads it;
// the proxy must answer it without waiting for more input.
func TestTLSRequestWithFinished(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	raw, err := net.DialTimeout("tcp", e.addr, ioTimeout)
	mustf(t, err, "dial")
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(ioTimeout))
	hc := &holdConn{Conn: raw}
	cfg := e.client("example.com")
	cfg.MinVersion = tls.VersionTLS13 // 1.2's client waits for the server's Finished
	c := tls.Client(hc, cfg)
	mustf(t, c.Handshake(), "handshake")
	_, err = io.WriteString(c, "GET /first HTTP/1.1\r\nHost: example.com\r\n\r\n")
	mustf(t, err, "write")
	mustf(t, hc.flush(), "flush")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	mustf(t, err, "response")
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "https /first" {
		t.Fatalf("body %q", b)
	}
}

// holdConn sends its first write (the ClientHello) and holds the later
// ones until flush, so they reach the server in one segment.
type holdConn struct {
	net.Conn
	writes int
	held   []byte
}

func (h *holdConn) Write(b []byte) (int, error) {
	h.writes++
	if h.writes == 1 {
		return h.Conn.Write(b)
	}
	h.held = append(h.held, b...)
	return len(b), nil
}

func (h *holdConn) flush() error {
	_, err := h.Conn.Write(h.held)
	h.held = nil
	return err
}

func TestTLSSNI(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	for _, c := range []struct{ sni, want string }{
		{"example.com", "example.com"},
		{"www.example.net", "*.example.net"},
		{"unknown.test", "example.com"}, // the first pair is the default
	} {
		cfg := e.client(c.sni)
		cfg.InsecureSkipVerify = c.sni == "unknown.test"
		conn := e.dial(t, cfg)
		if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != c.want {
			t.Errorf("SNI %q: certificate %q, want %q", c.sni, got, c.want)
		}
	}
}

func TestTLSResumption(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := e.client("example.com")
		cfg.MaxVersion = v
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
		for i := range 3 {
			c := e.dial(t, cfg)
			// A TLS 1.3 ticket arrives after the handshake: read a
			// response so the client has it.
			if code, _ := tlsGet(t, c, bufio.NewReader(c), "/"); code != 200 {
				t.Fatalf("status %d", code)
			}
			if resumed := c.ConnectionState().DidResume; resumed != (i > 0) {
				t.Fatalf("TLS %x connection %d: resumed %v", v, i, resumed)
			}
			c.Close()
		}
	}
	st, _ := e.srv.TLSStats()
	if st.Resumed < 4 {
		t.Fatalf("stats: %d resumed handshakes, want 4", st.Resumed)
	}

	// The same counts, as the metrics and the admin API see them.
	var snap stats.Snapshot
	e.srv.Stats(&snap)
	if snap.TLS == nil {
		t.Fatal("Stats: no TLS section with server.tls")
	}
	got := map[string]uint64{}
	for _, h := range snap.TLS.Handshakes {
		got[h.Version+" "+h.Result] = h.Count
	}
	for _, k := range []string{"1.2 full", "1.2 resumed", "1.3 full", "1.3 resumed"} {
		if got[k] == 0 {
			t.Errorf("Stats: %q handshakes 0: %v", k, got)
		}
	}
	if d := snap.TLS.Duration; d.Count != got["1.2 full"]+got["1.2 resumed"]+got["1.3 full"]+got["1.3 resumed"] || d.Sum <= 0 {
		t.Errorf("Stats: duration histogram %d handshakes, sum %v; counts %v", d.Count, d.Sum, got)
	}
	if len(snap.TLS.Certificates) != 2 || snap.TLS.Certificates[1].Names[0] != "*.example.net" || snap.TLS.Certificates[0].NotAfter.IsZero() {
		t.Errorf("Stats: certificates %+v", snap.TLS.Certificates)
	}
}

func TestTLSMinVersion(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	cfg := e.client("example.com")
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	_, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", e.addr, cfg)
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.1 client: %v, want a protocol_version alert", err)
	}
	e13 := newTLSEnv(t, protoBackend(t), func(c *config.Config) { c.Server.TLS.MinVersion = "1.3" })
	cfg = e13.client("example.com")
	cfg.MaxVersion = tls.VersionTLS12
	_, err = tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", e13.addr, cfg)
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.2 client with minVersion 1.3: %v, want a protocol_version alert", err)
	}
	waitFor(t, "handshakes counted", func() bool {
		st, _ := e.srv.TLSStats()
		return st.Failed["protocol"] == 1 && st.InProgress == 0
	})
}

// TestTLSHostileInput: plaintext HTTP, garbage, a ClientHello cut in the
// middle, and silence on the HTTPS port are all closed in bounded time,
// while a normal client is served meanwhile.
func TestTLSHostileInput(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) { c.Timeouts.TLSHandshake = 300 * time.Millisecond })
	// A real ClientHello to cut.
	var hello []byte
	{
		raw, err := net.Dial("tcp", e.addr)
		mustf(t, err, "dial")
		rec := &recordConn{Conn: raw}
		_ = tls.Client(rec, e.client("example.com")).Handshake()
		raw.Close()
		hello = rec.first
	}
	if len(hello) < 100 {
		t.Fatalf("ClientHello of %d bytes", len(hello))
	}
	cases := map[string][]byte{
		"plaintext HTTP":  []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		"garbage":         bytes.Repeat([]byte{0x16, 0xff, 0x00, 0x41}, 300),
		"cut ClientHello": hello[:len(hello)/2],
		"silence":         nil,
	}
	var wg sync.WaitGroup
	for name, input := range cases {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", e.addr, ioTimeout)
			if err != nil {
				t.Errorf("%s: dial: %v", name, err)
				return
			}
			defer c.Close()
			start := time.Now()
			_ = c.SetDeadline(start.Add(ioTimeout))
			if len(input) > 0 {
				if _, err := c.Write(input); err != nil {
					t.Errorf("%s: write: %v", name, err)
					return
				}
			}
			_, err = io.Copy(io.Discard, c) // until the proxy closes
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("%s: not closed within %v", name, ioTimeout)
			}
			t.Logf("%s: closed after %v (%v)", name, time.Since(start).Round(time.Millisecond), err)
		})
	}
	// A normal client meanwhile.
	c := e.dial(t, e.client("example.com"))
	if code, body := tlsGet(t, c, bufio.NewReader(c), "/ok"); code != 200 || body != "https /ok" {
		t.Fatalf("normal client: %d %q", code, body)
	}
	c.Close()
	wg.Wait()
	waitFor(t, "no handshakes in progress", func() bool {
		st, _ := e.srv.TLSStats()
		return st.InProgress == 0 && st.Failed["timeout"] >= 2 && st.Failed["protocol"] >= 2
	})
}

// recordConn records the first write (the ClientHello) and fails the
// handshake after it.
type recordConn struct {
	net.Conn
	first []byte
}

func (r *recordConn) Write(b []byte) (int, error) {
	if r.first == nil {
		r.first = append([]byte(nil), b...)
	}
	return 0, io.ErrClosedPipe
}

// TestTLSHandshakeBound: beyond server.tls.maxHandshakes, connections are
// closed at once; the slow ones time out; then service is normal.
func TestTLSHandshakeBound(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) {
		c.Server.TLS.MaxHandshakes = 4
		c.Timeouts.TLSHandshake = time.Second
	})
	var slow []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", e.addr)
		mustf(t, err, "dial")
		defer c.Close()
		slow = append(slow, c)
	}
	waitFor(t, "4 handshakes in progress", func() bool { st, _ := e.srv.TLSStats(); return st.InProgress == 4 })
	_, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", e.addr, e.client("example.com"))
	if err == nil {
		t.Fatal("a fifth handshake went through")
	}
	for _, c := range slow {
		_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("slow handshake: %v, want EOF", err)
		}
	}
	c := e.dial(t, e.client("example.com"))
	if code, _ := tlsGet(t, c, bufio.NewReader(c), "/"); code != 200 {
		t.Fatalf("after the slow handshakes: %d", code)
	}
}

// TestTLSCertReload replaces a certificate pair while a connection made
// with the old one is open: new handshakes get the new certificate, the
// open connection keeps working.
func TestTLSCertReload(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	old := e.dial(t, e.client("example.com"))
	br := bufio.NewReader(old)
	if code, _ := tlsGet(t, old, br, "/before"); code != 200 {
		t.Fatal(code)
	}
	serial := old.ConnectionState().PeerCertificates[0].SerialNumber
	leaf := e.ca.Issue(t, testcert.RSA, false, "example.com", "renewed.example.com")
	testcert.WriteFile(t, e.certs[0].KeyFile, leaf.KeyPEM)
	testcert.WriteFile(t, e.certs[0].CertFile, leaf.CertPEM)
	waitFor(t, "the renewed certificate", func() bool {
		c, err := tls.Dial("tcp", e.addr, e.client("renewed.example.com"))
		if err != nil {
			return false
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(serial) != 0
	})
	if code, body := tlsGet(t, old, br, "/after"); code != 200 || body != "https /after" {
		t.Fatalf("old connection after the reload: %d %q", code, body)
	}
	// A bad pair keeps the renewed one.
	testcert.WriteFile(t, e.certs[0].CertFile, []byte("not a certificate"))
	waitFor(t, "the failed reload", func() bool { return e.srv.tls.store.Load().Reload() != nil })
	c := e.dial(t, e.client("renewed.example.com"))
	if code, _ := tlsGet(t, c, bufio.NewReader(c), "/"); code != 200 {
		t.Fatalf("after a bad pair: %d", code)
	}
}

// TestTLSBackpressureDownload is TestBackpressureDownload over TLS: a
// client that reads slowly costs the proxy the connection buffer plus
// TLS's record buffers, never the stream.
func TestTLSBackpressureDownload(t *testing.T) {
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
	e := newTLSEnv(t, be, bpConfig)
	c := e.dial(t, e.client("example.com"))
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)

	base := heapInuse()
	_, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	mustf(t, err, "request")
	resp, err := http.ReadResponse(br, nil)
	mustf(t, err, "response head")
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
			sawDetached += e.srv.detached.Load()
			peak = max(peak, heapInuse()-base)
		}
		time.Sleep(bpSlowPause)
	}
	t.Logf("slow phase: read %d KiB; heap growth peak %d KiB (bound %d KiB); detached seen %d times",
		pc.n>>10, peak>>10, bpBound>>10, sawDetached)
	if peak > bpBound {
		t.Errorf("proxy heap grew by %d KiB while the TLS client read slowly, bound %d KiB", peak>>10, bpBound>>10)
	}
	if sawDetached == 0 {
		t.Error("the upstream was never parked")
	}
	_, err = io.Copy(pc, resp.Body)
	mustf(t, err, "fast read after %d bytes", pc.n)
	pc.check(t, bpSize)
	if code, body := tlsGet(t, c, br, "/again"); code != 200 || body != "ok" {
		t.Fatalf("next request: %d %q", code, body)
	}
}

// TestTLSCloseNotify: a response the backend ends by closing reaches the
// client with a close_notify, so a TLS client reads it as complete.
func TestTLSCloseNotify(t *testing.T) {
	be := rawBackend(t, func(c net.Conn) {
		defer c.Close()
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited body")
	})
	e := newTLSEnv(t, be, nil)
	c := e.dial(t, e.client("example.com"))
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	mustf(t, err, "request")
	all, err := io.ReadAll(c) // io.EOF only after close_notify
	mustf(t, err, "read to close_notify")
	if !bytes.HasSuffix(all, []byte("close-delimited body")) {
		t.Fatalf("got %q", all)
	}
}

// TestTLSCurl: curl (OpenSSL) over TLS 1.2 and 1.3, with SNI through
// --resolve and the test CA.
func TestTLSCurl(t *testing.T) {
	curl := testproc.Tool(t, "curl")
	e := newTLSEnv(t, protoBackend(t), nil)
	ca := t.TempDir() + "/ca.pem"
	mustf(t, os.WriteFile(ca, e.ca.PEM, 0o600), "CA file")
	_, port, _ := net.SplitHostPort(e.addr)
	for _, c := range []struct {
		args []string
		sni  string
		want string
	}{
		{[]string{"--tlsv1.2", "--tls-max", "1.2", "--http1.1"}, "example.com", "https /curl 1.1"},
		{[]string{"--tlsv1.3", "--http1.1"}, "example.com", "https /curl 1.1"},
		{[]string{"--tlsv1.3", "--http1.1"}, "a.example.net", "https /curl 1.1"},
		{[]string{"--tlsv1.3", "--http2"}, "example.com", "https /curl 2"},
		{[]string{"--tlsv1.2", "--tls-max", "1.2", "--http2"}, "a.example.net", "https /curl 2"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		args := append([]string{"-sS", "--cacert", ca, "--resolve", c.sni + ":" + port + ":127.0.0.1",
			"-w", " %{http_version} %{ssl_verify_result}"}, c.args...)
		out, err := exec.CommandContext(ctx, curl, append(args, "https://"+c.sni+":"+port+"/curl")...).CombinedOutput()
		cancel()
		if err != nil || string(out) != c.want+" 0" {
			t.Errorf("curl %v %s: %v\n%s", c.args, c.sni, err, out)
		}
	}
}

// TestTLSOpenSSL: openssl s_client's view: ALPN, a refused TLS 1.1, and
// session resumption with a saved session.
func TestTLSOpenSSL(t *testing.T) {
	openssl := testproc.Tool(t, "openssl")
	e := newTLSEnv(t, protoBackend(t), nil)
	dir := t.TempDir()
	ca := dir + "/ca.pem"
	mustf(t, os.WriteFile(ca, e.ca.PEM, 0o600), "CA file")
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, append([]string{"s_client", "-connect", e.addr, "-servername", "example.com", "-CAfile", ca, "-ign_eof"}, args...)...)
		cmd.Stdin = strings.NewReader("GET /ossl HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := run("-alpn", "h2,http/1.1", "-tls1_3"); !strings.Contains(out, "ALPN protocol: h2") {
		t.Errorf("s_client offering h2: %s", out)
	}
	out := run("-alpn", "http/1.1", "-tls1_3")
	for _, want := range []string{"ALPN protocol: http/1.1", "Verify return code: 0 (ok)", "https /ossl", "TLSv1.3"} {
		if !strings.Contains(out, want) {
			t.Errorf("s_client output lacks %q:\n%s", want, out)
		}
	}
	if out := run("-tls1_1"); !strings.Contains(out, "alert protocol version") && !strings.Contains(out, "no protocols available") {
		t.Errorf("TLS 1.1: want a refusal:\n%s", out)
	}
	sess := dir + "/sess"
	run("-tls1_2", "-sess_out", sess)
	if out := run("-tls1_2", "-sess_in", sess); !strings.Contains(out, "Reused, TLSv1.2") {
		t.Errorf("TLS 1.2 session not resumed:\n%s", out)
	}
}

// TestTLSUnderLoadReload: certificate replacement while clients keep
// making requests; not one fails.
func TestTLSUnderLoadReload(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	var failed, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			tr := &http.Transport{TLSClientConfig: e.client("example.com"), MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: ioTimeout}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%5 == 0 {
					tr.CloseIdleConnections() // new handshakes too
				}
				resp, err := hc.Get("https://" + e.addr + "/load")
				if err != nil {
					failed.Add(1)
					t.Log(err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "https /load" {
					failed.Add(1)
				}
				done.Add(1)
			}
		})
	}
	for i := range 5 {
		leaf := e.ca.Issue(t, testcert.ECDSA, false, "example.com")
		testcert.WriteFile(t, e.certs[0].KeyFile, leaf.KeyPEM)
		testcert.WriteFile(t, e.certs[0].CertFile, leaf.CertPEM)
		waitFor(t, fmt.Sprintf("renewal %d served", i), func() bool {
			return e.srv.tls.store.Load().Certificates()[0].NotAfter.Equal(leaf.Cert.NotAfter) &&
				bytes.Equal(mustServe(e), leaf.Cert.Raw)
		})
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed", done.Load(), failed.Load())
	if failed.Load() > 0 || done.Load() == 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), done.Load())
	}
}

// mustServe returns the raw leaf certificate a new connection gets.
func mustServe(e *tlsEnv) []byte {
	c, err := tls.Dial("tcp", e.addr, e.client("example.com"))
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// TestTLSAdmitExact: loops take handshake slots concurrently, and
// server.tls.maxHandshakes holds exactly: checking and taking a slot are
// one step.
func TestTLSAdmitExact(t *testing.T) {
	f := &tlsFront{}
	f.max.Store(5)
	var wg sync.WaitGroup
	var got atomic.Int64
	start := make(chan struct{})
	for range 64 {
		wg.Go(func() {
			<-start
			for range 100 {
				if f.admit() {
					got.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got.Load() != 5 || f.inFlight.Load() != 5 {
		t.Fatalf("%d slots taken (in flight %d), want 5", got.Load(), f.inFlight.Load())
	}
	f.release()
	if !f.admit() || f.admit() {
		t.Fatal("a released slot is not taken exactly once")
	}
}
