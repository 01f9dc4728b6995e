package proxy

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testsslDeadline bounds the scan: it fails the test, it measures
// nothing.
const testsslDeadline = 5 * time.Minute

// testsslFinding is one entry of testssl.sh's flat JSON output.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// TestTestsslScan runs Debian's testssl.sh against the HTTPS listener
// serving the test certificates: protocols (-p), every cipher the local
// OpenSSL knows (-e) and the vulnerability checks (-U), in --fast mode.
// It checks that no finding is rated HIGH or CRITICAL, that only TLS 1.2
// and 1.3 are offered, and that every cipher accepted is an AEAD, with
// ECDHE on TLS 1.2 (docs/tls.md, "What is offered"). The certificate
// checks (-S) are left out: they rate the test certificate (a private
// CA, one day of validity), not ConnX. CONNX_TESTSSL_OUT=dir keeps the
// log and JSON there. The name keeps it out of -run TLS: a scan takes
// about a minute.
func TestTestsslScan(t *testing.T) {
	bin := findTestssl(t)
	e := newTLSEnv(t, protoBackend(t), nil)
	_, port, _ := net.SplitHostPort(e.addr)
	dir := os.Getenv("CONNX_TESTSSL_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	jsonFile, logFile := filepath.Join(dir, "testssl.json"), filepath.Join(dir, "testssl.log")
	_ = os.Remove(jsonFile)
	_ = os.Remove(logFile)
	ctx, cancel := context.WithTimeout(context.Background(), testsslDeadline)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "--fast", "--quiet", "--color", "0", "--warnings", "off",
		"--nodns", "none", "--ip", "127.0.0.1", "--connect-timeout", "5", "--openssl-timeout", "5",
		"-p", "-e", "-U", "--jsonfile", jsonFile, "--logfile", logFile, "example.com:"+port)
	out, err := cmd.CombinedOutput()
	t.Logf("testssl.sh took %v", time.Since(start).Round(time.Second))
	if ctx.Err() != nil {
		t.Fatalf("testssl.sh did not finish within %v:\n%s", testsslDeadline, out)
	}
	// testssl.sh's exit status counts findings of any kind; the JSON is
	// what is checked.
	raw, rerr := os.ReadFile(jsonFile)
	if rerr != nil {
		t.Fatalf("testssl.sh wrote no JSON (%v, exit %v):\n%s", rerr, err, out)
	}
	var findings []testsslFinding
	if err := json.Unmarshal(raw, &findings); err != nil {
		t.Fatalf("testssl.sh JSON: %v", err)
	}
	byID := map[string]testsslFinding{}
	for _, f := range findings {
		byID[f.ID] = f
		switch f.Severity {
		case "HIGH", "CRITICAL":
			t.Errorf("%s finding %s: %s", f.Severity, f.ID, f.Finding)
		}
	}
	for id, want := range map[string]string{
		"SSLv2": "not offered", "SSLv3": "not offered", "TLS1": "not offered", "TLS1_1": "not offered",
		"TLS1_2": "offered", "TLS1_3": "offered",
	} {
		if got := byID[id].Finding; !strings.HasPrefix(got, want) {
			t.Errorf("protocol %s: %q, want %q", id, got, want)
		}
	}
	// Every cipher accepted, one finding each ("xc02b   ECDHE-ECDSA-AES128-GCM-SHA256 ...").
	var ciphers []string
	for _, f := range findings {
		if !strings.HasPrefix(f.ID, "cipher_x") {
			continue
		}
		fields := strings.Fields(f.Finding)
		if len(fields) < 2 {
			t.Errorf("cipher finding %s: %q", f.ID, f.Finding)
			continue
		}
		name := fields[1]
		ciphers = append(ciphers, name)
		if !strings.Contains(name, "GCM") && !strings.Contains(name, "CHACHA20-POLY1305") && name != "TLS_CHACHA20_POLY1305_SHA256" {
			t.Errorf("cipher below the floor (not AEAD): %s", f.Finding)
		}
		if !strings.HasPrefix(name, "TLS_") && !strings.HasPrefix(name, "ECDHE-") {
			t.Errorf("TLS 1.2 cipher without ECDHE: %s", f.Finding)
		}
	}
	t.Logf("ciphers accepted: %v", ciphers)
	if len(ciphers) == 0 {
		t.Errorf("no cipher listed in the JSON; ids: %v", slices.Sorted(func(yield func(string) bool) {
			for id := range byID {
				if !yield(id) {
					return
				}
			}
		}))
	}
	for _, f := range findings {
		if f.Severity != "INFO" && f.Severity != "OK" && f.Severity != "DEBUG" {
			t.Logf("%s %s: %s", f.Severity, f.ID, f.Finding)
		}
	}
}

// findTestssl returns the testssl.sh command (Debian installs it as
// testssl), skipping the test when it is missing (failing with
// CONNX_CI=1).
func findTestssl(t *testing.T) string {
	for _, name := range []string{"testssl", "testssl.sh"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CONNX_CI") == "1" {
		t.Fatal("testssl.sh not found and CONNX_CI=1; install it with: apt-get install -y testssl.sh")
	}
	t.Skip("testssl.sh not installed; apt-get install -y testssl.sh")
	return ""
}
