// Package testproc runs the connx binary as a real process for tests: it
// builds the binary, starts it, follows its log and lets a test wait for
// log lines. It is imported only by tests (cmd/connx and the reliability
// suite).
package testproc

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/connx into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := dir + "/connx"
	out, err := exec.Command("go", "build", "-o", bin, "github.com/connx/connx/cmd/connx").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building connx: %v\n%s", err, out)
	}
	return bin, nil
}

// Proc is a connx process under test, with its log lines fanned out to
// watchers. Its methods may be called from any goroutine.
type Proc struct {
	t   *testing.T
	Cmd *exec.Cmd
	// Addr is the address connx listens on (from its log).
	Addr string
	// Exited is closed when the process has exited; Err is then its
	// exit error.
	Exited chan struct{}
	Err    error

	mu    sync.Mutex
	lines []string
	subs  []chan string
}

// listenRE finds the address in the "connx listening" line, in the text
// or the JSON log format.
var listenRE = regexp.MustCompile(`msg"?[=:]"connx listening".*?\baddr"?[=:]"?([^"\s,}]+)`)

// Start runs bin with args and waits until it listens. A non-empty
// shellPrefix runs it as `sh -c 'PREFIX; exec bin args...'` (e.g.
// "ulimit -n 256"). The process is killed when the test ends; if the test
// failed, the end of its log is logged.
func Start(t *testing.T, bin, shellPrefix string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Exited: make(chan struct{})}
	if shellPrefix != "" {
		p.Cmd = exec.Command("sh", append([]string{"-c", shellPrefix + `; exec "$0" "$@"`, bin}, args...)...)
	} else {
		p.Cmd = exec.Command(bin, args...)
	}
	// A pipe of our own rather than StderrPipe: an upgrade's successor
	// inherits it and keeps logging after this process exits.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.Cmd.Stdout, p.Cmd.Stderr = w, w
	listening := p.Watch("connx listening")
	err = p.Cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			p.line(sc.Text())
		}
	}()
	go func() {
		p.Err = p.Cmd.Wait()
		close(p.Exited)
	}()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.Exited
		if t.Failed() {
			l := p.Log()
			if len(l) > 200 {
				l = l[len(l)-200:]
			}
			t.Logf("connx log (last %d lines):\n%s", len(l), strings.Join(l, "\n"))
		}
	})
	select {
	case l := <-listening:
		p.Addr = listenRE.FindStringSubmatch(l)[1]
	case <-p.Exited:
		t.Fatalf("connx exited: %v\n%s", p.Err, strings.Join(p.Log(), "\n"))
	case <-time.After(20 * time.Second):
		t.Fatal("connx did not start listening")
	}
	return p
}

// PID is the process's pid (with a shell prefix, the shell execs connx,
// so it is connx's).
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

func (p *Proc) line(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, l)
	for _, c := range p.subs {
		select {
		case c <- l:
		default:
		}
	}
}

// Log returns every line logged so far.
func (p *Proc) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Watch returns a channel that receives every later log line containing
// s.
func (p *Proc) Watch(s string) <-chan string {
	all := make(chan string, 4096)
	out := make(chan string, 1024)
	p.mu.Lock()
	p.subs = append(p.subs, all)
	p.mu.Unlock()
	go func() {
		for l := range all {
			if strings.Contains(l, s) {
				out <- l
			}
		}
	}()
	return out
}

// Next waits (20 s at most) for the next line on c, a channel from Watch.
func (p *Proc) Next(c <-chan string, what string) string {
	p.t.Helper()
	select {
	case l := <-c:
		return l
	case <-p.Exited:
		p.t.Fatalf("connx exited waiting for %s: %v", what, p.Err)
	case <-time.After(20 * time.Second):
		p.t.Fatalf("no %s in the log", what)
	}
	return ""
}

// WaitLog waits until a log line containing s has been written (before
// or after the call) and returns it.
func (p *Proc) WaitLog(s string) string {
	p.t.Helper()
	c := p.Watch(s)
	for _, l := range p.Log() {
		if strings.Contains(l, s) {
			return l
		}
	}
	return p.Next(c, s)
}

// Alive reports whether the process is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.Exited:
		return false
	default:
		return true
	}
}

// WriteConfig writes a config file by rename, as editors do.
func WriteConfig(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// Load is a steady GET load on one URL, for tests that change the proxy
// under traffic.
type Load struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// StartLoad runs keepAlive clients that reuse one connection each and
// fresh clients that open a new connection per request, each pausing
// pause between requests, until Halt (or the end of the test). Every
// result goes to record, called from the clients' goroutines: the
// response (body read and closed; headers and status valid) or the error.
func StartLoad(t *testing.T, url string, keepAlive, fresh int, pause time.Duration, record func(*http.Response, error)) *Load {
	return StartLoadTLS(t, url, nil, keepAlive, fresh, pause, record)
}

// StartLoadTLS is StartLoad for an https:// url, with the clients'
// TLS configuration tc (nil: Go's default). Fresh clients then run a
// full or resumed handshake per request.
func StartLoadTLS(t *testing.T, url string, tc *tls.Config, keepAlive, fresh int, pause time.Duration, record func(*http.Response, error)) *Load {
	l := &Load{stop: make(chan struct{})}
	run := func(tr *http.Transport) {
		defer l.wg.Done()
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			resp, err := c.Get(url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			record(resp, err)
			time.Sleep(pause) // the load's pace, not synchronisation
		}
	}
	for range keepAlive {
		l.wg.Add(1)
		go run(&http.Transport{MaxIdleConnsPerHost: 1, TLSClientConfig: tc})
	}
	for range fresh {
		l.wg.Add(1)
		go run(&http.Transport{DisableKeepAlives: true, TLSClientConfig: tc})
	}
	t.Cleanup(l.Halt)
	return l
}

// Halt stops the clients and waits for them.
func (l *Load) Halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}
