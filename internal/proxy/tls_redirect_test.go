package proxy

import (
	"bufio"
	"net/http"
	"strconv"
	"testing"

	"github.com/connx/connx/internal/config"
)

func TestTLSRedirectHTTP(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) {
		c.Server.RedirectHTTP = true
		c.Server.RedirectHTTPExempt = []string{"/.well-known/acme-challenge/", "/healthz"}
	})
	_, port := splitPort(t, e.addr)
	rc := dialProxy(t, e.plain)
	for _, c := range []struct {
		method, target, host string
		want                 string // Location, or "" for served
	}{
		{"GET", "/a/b?x=1&y", "example.com:8080", "https://example.com:" + port + "/a/b?x=1&y"},
		{"HEAD", "/", "example.com", "https://example.com:" + port + "/"},
		{"POST", "/form", "[::1]:8080", "https://[::1]:" + port + "/form"},
		{"GET", "/.well-known/acme-challenge/tok", "example.com", ""},
		{"GET", "/healthz", "example.com", ""},
		{"GET", "/healthz/deep?x", "example.com", ""},
		// The exemption is decided on the normalised path.
		{"GET", "/.well-known/acme-challenge/../secret", "example.com", "https://example.com:" + port + "/.well-known/acme-challenge/../secret"},
		{"GET", "/metrics", "example.com", ""}, // metrics.allow has loopback
	} {
		rc.send(c.method + " " + c.target + " HTTP/1.1\r\nHost: " + c.host + "\r\nContent-Length: 0\r\n\r\n")
		resp, body := rc.response(c.method)
		switch {
		case c.want != "" && (resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != c.want || body != "" || resp.Close):
			t.Errorf("%s %s: %d Location %q body %q close %v, want 308 to %s on a kept connection",
				c.method, c.target, resp.StatusCode, resp.Header.Get("Location"), body, resp.Close, c.want)
		case c.want == "" && resp.StatusCode != http.StatusOK:
			t.Errorf("%s %s: %d %q, want it served", c.method, c.target, resp.StatusCode, body)
		case c.want == "" && c.target != "/metrics" && body != "http "+pathOnlyString(c.target):
			t.Errorf("%s %s: body %q", c.method, c.target, body)
		}
	}

	// HTTP/1.0 without Host: the address the client connected to.
	rc = dialProxy(t, e.plain)
	rc.send("GET /old HTTP/1.0\r\n\r\n")
	if resp, _ := rc.response("GET"); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://127.0.0.1:"+port+"/old" {
		t.Errorf("HTTP/1.0 without Host: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The HTTPS port serves as usual.
	c := e.dial(t, e.client("example.com"))
	if code, body := tlsGet(t, c, bufio.NewReader(c), "/a"); code != 200 || body != "https /a" {
		t.Errorf("over TLS: %d %q", code, body)
	}
}

func splitPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			if _, err := strconv.Atoi(addr[i+1:]); err == nil {
				return addr[:i], addr[i+1:]
			}
		}
	}
	t.Fatalf("no port in %q", addr)
	return "", ""
}

func pathOnlyString(target string) string { return string(pathOnly([]byte(target))) }
