package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoBackend runs the binary on a free port: it answers with its
// name, and exits 0 on SIGTERM.
func TestDemoBackend(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "connx-demo-backend")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-name", "backend7")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "connx-demo-backend backend7 listening on ") {
		t.Fatalf("first line %q: %v", line, err)
	}
	addr := strings.TrimSpace(line[strings.LastIndex(line, " ")+1:])
	resp, err := http.Get("http://" + addr + "/x?y=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "Hello from backend7 (" + addr + "): GET /x?y=1\n"; string(body) != want || resp.Header.Get("X-Served-By") != "backend7" {
		t.Fatalf("got %q (X-Served-By %q), want %q", body, resp.Header.Get("X-Served-By"), want)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _ = io.Copy(io.Discard, stderr); done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit on SIGTERM")
	}
}
