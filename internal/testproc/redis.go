package testproc

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server a test started on a free loopback port. It dies
// with the test binary (Pdeathsig) and at the test's end. Its methods are
// for the test's goroutine.
type Redis struct {
	t    testing.TB
	path string
	// Addr is "127.0.0.1:port".
	Addr string
	args []string
	// Cmd is the running server; nil after Kill.
	Cmd *exec.Cmd
}

// StartRedis starts redis-server with extra arguments (for example
// "--requirepass", "x"). Without redis-server the test is skipped, or
// fails when CONNX_CI=1 (.ci/run installs it).
func StartRedis(t testing.TB, extra ...string) *Redis {
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
	s := &Redis{t: t, path: path, Addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "notice"}, extra...)
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start runs the server (again, after Kill, on the same port) and returns
// once it accepts connections (it says so on its log), within 10 seconds.
func (s *Redis) Start() {
	s.t.Helper()
	cmd := exec.Command(s.path, s.args...)
	cmd.SysProcAttr = dieWithParent()
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.Cmd = cmd
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
		s.Kill()
		s.t.Fatal("redis-server did not start within 10 s")
	}
}

type startError struct{ log string }

func (e *startError) Error() string { return "redis-server exited:\n" + e.log }

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Redis) Kill() {
	if s.Cmd != nil {
		_ = s.Cmd.Process.Kill()
		_ = s.Cmd.Wait()
		s.Cmd = nil
	}
}

// Query sends AUTH (if password is set), SELECT db and then args on one
// new connection (RESP) and returns the first line of the last reply, for
// checks that do not go through the code under test.
func (s *Redis) Query(password string, db int, args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr)
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
