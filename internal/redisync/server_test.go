package redisync

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// redisServer is a redis-server the test started on a free loopback port.
// It dies with the test binary (Pdeathsig) and at the test's end.
type redisServer struct {
	t    testing.TB
	path string
	addr string
	args []string
	cmd  *exec.Cmd
}

// startRedis starts redis-server with extra arguments (for example
// "--requirepass", "x"). Without redis-server the test is skipped, or
// fails when CONNX_CI=1 (.ci/run installs it).
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatalf("redis-server not found (apt-get install redis-server): %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{t: t, path: path, addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "notice"}, extra...)
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start runs the server and returns once it accepts connections (it says
// so on its log), within 10 seconds.
func (s *redisServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.path, s.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var log strings.Builder
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				ready <- nil
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
		ready <- &startError{log.String()}
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		s.kill()
		s.t.Fatal("redis-server did not start within 10 s")
	}
}

type startError struct{ log string }

func (e *startError) Error() string { return "redis-server exited:\n" + e.log }

// kill stops the server at once (SIGKILL), as a crash would.
func (s *redisServer) kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// query sends AUTH (if password is set), SELECT db and then args on one
// new connection (RESP) and returns the first line of the last reply, for
// checks that do not go through the code under test.
func (s *redisServer) query(password string, db int, args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var cmds [][]string
	if password != "" {
		cmds = append(cmds, []string{"AUTH", password})
	}
	cmds = append(cmds, []string{"SELECT", strconv.Itoa(db)}, args)
	var b strings.Builder
	for _, cmd := range cmds {
		b.WriteString("*" + strconv.Itoa(len(cmd)) + "\r\n")
		for _, a := range cmd {
			b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
		}
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		s.t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var line string
	for range cmds {
		if line, err = r.ReadString('\n'); err != nil {
			s.t.Fatal(err)
		}
	}
	return strings.TrimSpace(line)
}
