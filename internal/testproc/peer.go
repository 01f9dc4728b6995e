package testproc

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Peer processes for interop tests: nginx, HAProxy, curl, openssl and
// the like, found on PATH, started on sockets the test binds itself (so
// a connection made before the peer is ready waits in the backlog and
// nothing polls for readiness), and stopped when the test ends.

// Tool returns the path of the program name, or skips the test when it
// is not installed; with CONNX_CI=1 (CI installs every tool) it fails
// instead.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if p, err = exec.LookPath("/usr/sbin/" + name); err == nil {
			return p
		}
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatalf("%s not found (CONNX_CI=1): apt-get install -y %s", name, name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// ListenFile returns a listening loopback socket as a file to pass to a
// child process, and its address. The test's copy is closed when the
// test ends.
func ListenFile(t testing.TB) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, ln.Addr().String()
}

// RunPeer starts the program name with files as its descriptors 3, 4, ...
// and env added to the environment, and stops it when the test ends:
// SIGTERM to its PID (nginx's master takes its workers down), SIGKILL if
// it has not exited 10 seconds later. Its output is logged if the test
// failed.
func RunPeer(t testing.TB, files []*os.File, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.ExtraFiles = files
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

// NginxProxyProtocolEcho starts nginx listening with `proxy_protocol`,
// answering every request with the addresses the PROXY header gave it:
// "client-addr client-port server-addr server-port\n". It returns its
// address.
func NginxProxyProtocolEcho(t testing.TB) string {
	t.Helper()
	bin := Tool(t, "nginx")
	f, addr := ListenFile(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "nginx.conf")
	err := os.WriteFile(cfg, []byte(`daemon off;
pid `+dir+`/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path `+dir+`/body;
  proxy_temp_path `+dir+`/proxy;
  fastcgi_temp_path `+dir+`/fastcgi;
  uwsgi_temp_path `+dir+`/uwsgi;
  scgi_temp_path `+dir+`/scgi;
  server {
    listen `+addr+` proxy_protocol;
    location / {
      default_type text/plain;
      return 200 "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port\n";
    }
  }
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// NGINX lists inherited listening sockets: nginx uses fd 3 for the
	// listen directive with the same address. (Its master process keeps
	// the socket; with master_process off nginx closes it.)
	RunPeer(t, []*os.File{f}, []string{"NGINX=3;"}, bin, "-p", dir, "-e", "stderr", "-c", cfg)
	return addr
}
