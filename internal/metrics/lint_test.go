package metrics

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestPromlint lints the exposition in-process with promlint, the linter
// behind `promtool check metrics` (promtool v3.x at the same
// client_golang version runs exactly these checks), so it runs
// everywhere.
func TestPromlint(t *testing.T) {
	text, _ := scrape(t, New(Options{Version: "test", Source: fixed(sampleSnapshot())}))
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestPromtool runs `promtool check metrics` on the exposition. Without
// promtool (in PATH or in $(go env GOPATH)/bin) it skips, unless
// CONNX_CI=1, where a missing promtool is a failure.
func TestPromtool(t *testing.T) {
	bin := findPromtool()
	if bin == "" {
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatal("promtool not found in PATH or $(go env GOPATH)/bin, and CONNX_CI=1")
		}
		t.Skip("promtool not found in PATH or $(go env GOPATH)/bin")
	}
	text, _ := scrape(t, New(Options{Version: "test", Source: fixed(sampleSnapshot())}))
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s check metrics: %v\n%s", bin, err, out)
	}
	t.Logf("%s check metrics: ok %s", bin, bytes.TrimSpace(out))
}

func findPromtool() string {
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	for dir := range strings.SplitSeq(strings.TrimSpace(string(out)), string(filepath.ListSeparator)) {
		p := filepath.Join(dir, "bin", "promtool")
		if _, err := os.Stat(p); err == nil {
			return p
		} else if !errors.Is(err, os.ErrNotExist) {
			return p // let running it report the problem
		}
	}
	return ""
}
