package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/testproc"
)

// h2Client returns net/http's client speaking HTTP/2 only: over TLS (ALPN
// h2) to the tlsEnv's HTTPS listener, or with prior knowledge (h2c) when
// e is nil.
func h2Client(t testing.TB, e *tlsEnv) *http.Client {
	t.Helper()
	p := new(http.Protocols)
	tr := &http.Transport{Protocols: p}
	if e != nil {
		p.SetHTTP2(true)
		tr.TLSClientConfig = &tls.Config{RootCAs: e.ca.Pool(), ServerName: "example.com"}
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout}
}

// h2EchoBackend answers with the request's method, path, Host and body.
func h2EchoBackend(t testing.TB) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Cookie", r.Header.Get("Cookie"))
		fmt.Fprintf(w, "%s %s %s %d:%s", r.Method, r.URL.RequestURI(), r.Host, len(body), body)
	}))
}

func h2Do(t testing.TB, c *http.Client, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s %s: answered over %s", method, url, resp.Proto)
	}
	return resp, string(b)
}

func TestH2TLSBasic(t *testing.T) {
	e := newTLSEnv(t, h2EchoBackend(t), nil)
	c := h2Client(t, e)
	base := "https://" + e.addr
	resp, body := h2Do(t, c, "GET", base+"/hello?x=1", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /hello?x=1 ") {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Proto") != "HTTP/1.1" {
		t.Fatalf("backend saw %q", resp.Header.Get("X-Proto"))
	}
	resp, body = h2Do(t, c, "POST", base+"/post", strings.NewReader("payload"))
	if resp.StatusCode != 200 || !strings.HasSuffix(body, " 7:payload") {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	// A body of unknown length goes chunked.
	resp, body = h2Do(t, c, "PUT", base+"/put", io.MultiReader(strings.NewReader("ab"), strings.NewReader("cd")))
	if resp.StatusCode != 200 || !strings.HasSuffix(body, " 4:abcd") {
		t.Fatalf("PUT: %d %q", resp.StatusCode, body)
	}
}

func TestH2C(t *testing.T) {
	_, addr := proxyFor(t, []string{h2EchoBackend(t)}, func(c *config.Config) { c.Server.H2C = true })
	c := h2Client(t, nil)
	resp, body := h2Do(t, c, "POST", "http://"+addr+"/a", bytes.NewReader([]byte("xyz")))
	if resp.StatusCode != 200 || body != "POST /a "+addr+" 3:xyz" {
		t.Fatalf("h2c: %d %q", resp.StatusCode, body)
	}
	// HTTP/1.1 still works on the same port.
	rc := dialProxy(t, addr)
	r, b := rc.get("/h1")
	if r.StatusCode != 200 || !strings.HasPrefix(b, "GET /h1 ") {
		t.Fatalf("h1: %d %q", r.StatusCode, b)
	}
}

// h2specPath finds the h2spec binary as internal/http2's TestH2spec does.
func h2specPath() string {
	if p := os.Getenv("H2SPEC"); p != "" {
		return p
	}
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "h2spec")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

var h2specSummary = regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// TestH2specProxy runs every h2spec case (strict mode) against ConnX in
// front of an HTTP/1.1 backend, over h2c and over TLS.
func TestH2specProxy(t *testing.T) {
	bin := h2specPath()
	if bin == "" {
		t.Skip("h2spec not installed")
	}
	if testing.Short() {
		t.Skip("short")
	}
	e := newTLSEnv(t, h2EchoBackend(t), func(c *config.Config) { c.Server.H2C = true })
	for _, tc := range []struct {
		name string
		addr string
		args []string
	}{
		{"h2c", e.plain, nil},
		{"tls", e.addr, []string{"-t", "-k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(tc.addr)
			args := append([]string{"-h", host, "-p", port, "-o", "2", "-S"}, tc.args...)
			out, err := exec.Command(bin, args...).CombinedOutput()
			m := h2specSummary.FindSubmatch(out)
			if m == nil {
				t.Fatalf("h2spec: %v\n%s", err, out)
			}
			t.Logf("h2spec %s: %s", tc.name, m[0])
			if string(m[1]) != string(m[2]) || err != nil {
				t.Fatalf("h2spec: %v\n%s", err, out)
			}
		})
	}
}

// TestH2CurlPriorKnowledge: curl --http2-prior-knowledge on the plaintext
// port with server.h2c.
func TestH2CurlPriorKnowledge(t *testing.T) {
	curl := testproc.Tool(t, "curl")
	_, addr := proxyFor(t, []string{protoBackend(t)}, func(c *config.Config) { c.Server.H2C = true })
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "--http2-prior-knowledge", "-w", " %{http_version}", "http://"+addr+"/pk").CombinedOutput()
	if err != nil || string(out) != "http /pk 2" {
		t.Fatalf("curl: %v\n%s", err, out)
	}
}

// TestH2TLSOff: server.tls.http2: false offers HTTP/1.1 only.
func TestH2TLSOff(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) { c.Server.TLS.HTTP2 = false })
	cfg := e.client("example.com")
	cfg.NextProtos = []string{"h2", "http/1.1"}
	c := e.dial(t, cfg)
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("ALPN chose %q", p)
	}
}
