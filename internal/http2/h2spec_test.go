package http2

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// h2specPath finds the h2spec binary: $H2SPEC, then PATH, then
// $(go env GOPATH)/bin. Install it with
//
//	go install github.com/summerwind/h2spec/cmd/h2spec@latest
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

// TestH2spec runs every h2spec case against the test server over cleartext
// HTTP/2 with prior knowledge and requires all to pass.
func TestH2spec(t *testing.T) {
	bin := h2specPath()
	if bin == "" {
		t.Skip("h2spec not installed")
	}
	if testing.Short() {
		t.Skip("short")
	}
	s := startTestServer(t, nil)
	host, port, _ := net.SplitHostPort(s.addr())
	out, err := exec.Command(bin, "-h", host, "-p", port, "-o", "2", "-S").CombinedOutput()
	m := h2specSummary.FindSubmatch(out)
	if m == nil {
		t.Fatalf("h2spec: %v\n%s", err, out)
	}
	total, _ := strconv.Atoi(string(m[1]))
	passed, _ := strconv.Atoi(string(m[2]))
	t.Logf("h2spec: %s", m[0])
	if passed != total || err != nil {
		t.Fatalf("h2spec: %v\n%s", err, out)
	}
}
