package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// connxBin is the binary under test, built once by TestMain.
var connxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "connx-bin")
	if err != nil {
		panic(err)
	}
	connxBin = filepath.Join(dir, "connx")
	out, err := exec.Command("go", "build", "-o", connxBin, ".").CombinedOutput()
	if err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// TestVersion: -version prints the version, commit and build date that
// -ldflags stamp (as make build and make release do).
func TestVersion(t *testing.T) {
	out, err := exec.Command(connxBin, "-version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "connx dev (commit ") {
		t.Fatalf("-version: %v %q", err, out)
	}
	bin := filepath.Join(t.TempDir(), "connx")
	ldflags := "-X main.version=v9.8.7 -X main.commit=0123456789ab -X main.date=2026-12-05T17:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "-version").CombinedOutput()
	want := "connx v9.8.7 (commit 0123456789ab, built 2026-12-05T17:00:00Z, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if err != nil || string(out) != want {
		t.Fatalf("stamped -version: %v\n got %q\nwant %q", err, out, want)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("server:\n  prot: 8080\nbackends:\n  - url: \"http://a:1\"\n    weight: -2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		wantCode int
		want     []string
	}{
		{"default config", "../../configs/config.yaml", 0, []string{"ok"}},
		{"seed example", "../../configs/examples/full-features.yaml", 0, []string{"ok"}},
		{"invalid", bad, 1, []string{bad + ":2:3: server.prot: unknown key", bad + ":5:5: backends[0].weight"}},
		{"missing file", filepath.Join(dir, "nope.yaml"), 1, []string{"nope.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(connxBin, "-check", "-config", tt.path).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestDemo runs `connx -demo` (on a free port instead of 8080) and checks
// that it answers at once and that the three backends take turns.
func TestDemo(t *testing.T) {
	cmd := exec.Command(connxBin, "-demo", "-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("connx did not exit on SIGTERM")
		}
	})
	addrs := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`connx listening.* addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-exited:
		t.Fatalf("connx exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("connx did not start listening")
	}
	seen := map[string]int{}
	for range 6 {
		resp, err := http.Get("http://" + addr + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "GET /hello") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		seen[resp.Header.Get("X-Served-By")]++
	}
	if len(seen) != 3 {
		t.Fatalf("backends seen: %v, want three taking turns", seen)
	}
	for b, n := range seen {
		if n != 2 {
			t.Errorf("%s served %d of 6", b, n)
		}
	}
}
