package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/testproc"
)

// proc is a connx process under test.
type proc = testproc.Proc

// startConnx runs connx with args and waits until it listens.
func startConnx(t *testing.T, args ...string) *proc {
	t.Helper()
	return testproc.Start(t, connxBin, "", args...)
}

// namedBackend is an HTTP backend that answers with its name.
func namedBackend(t *testing.T, name string, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func configFor(algorithm string, extra string, urls ...string) string {
	var b strings.Builder
	b.WriteString("server:\n  host: 127.0.0.1\n  port: 0\n  shutdownTimeout: 5s\n")
	b.WriteString("healthCheck:\n  enabled: false\n")
	fmt.Fprintf(&b, "loadBalancing:\n  algorithm: %s\nbackends:\n", algorithm)
	for _, u := range urls {
		fmt.Fprintf(&b, "  - url: %q\n", u)
	}
	b.WriteString(extra)
	return b.String()
}

// loadGen sends requests from several clients until stopped, and records
// failures and which backend answered when.
type loadGen struct {
	*testproc.Load
	ok, fail atomic.Int64

	mu     sync.Mutex
	errs   []string
	served []served
}

type served struct {
	at      time.Time // response received
	backend string
}

// startLoad runs keepAlive keep-alive clients and fresh clients that open
// a new connection per request, each with pause between requests; it
// records failures and which backend answered when.
func startLoad(t *testing.T, addr string, keepAlive, fresh int, pause time.Duration) *loadGen {
	return startLoadURL(t, "http://"+addr+"/", nil, keepAlive, fresh, pause)
}

// startLoadURL is startLoad on url, over TLS with tc for https://.
func startLoadURL(t *testing.T, url string, tc *tls.Config, keepAlive, fresh int, pause time.Duration) *loadGen {
	g := &loadGen{}
	g.Load = testproc.StartLoadTLS(t, url, tc, keepAlive, fresh, pause, func(resp *http.Response, err error) {
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if err != nil {
			g.fail.Add(1)
			g.errs = append(g.errs, err.Error())
			return
		}
		g.ok.Add(1)
		g.served = append(g.served, served{time.Now(), resp.Header.Get("X-Backend")})
	})
	return g
}

// firstAfter returns when a backend of set first answered after t.
func (g *loadGen) firstAfter(t time.Time, set map[string]bool) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.served {
		if s.at.After(t) && set[s.backend] {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func (g *loadGen) report(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	t.Logf("load: %d ok, %d failed", g.ok.Load(), g.fail.Load())
	for i, e := range g.errs {
		if i == 10 {
			t.Logf("... %d more", len(g.errs)-10)
			break
		}
		t.Logf("failure: %s", e)
	}
}

// TestReloadUnderLoad saves the config 100 times, alternating two backend
// sets and algorithms, while clients send a steady load: no request
// fails, and traffic reaches the new set within a second of each save.
func TestReloadUnderLoad(t *testing.T) {
	sets := [2]map[string]bool{{"a": true, "b": true}, {"c": true, "d": true, "e": true}}
	urls := map[string]string{}
	for _, set := range sets {
		for name := range set {
			urls[name] = namedBackend(t, name, nil)
		}
	}
	cfgs := [2]string{
		configFor("round-robin", "", urls["a"], urls["b"]),
		configFor("least-connections", "", urls["c"], urls["d"], urls["e"]),
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "connx.yaml")
	testproc.WriteConfig(t, path, cfgs[0])
	p := startConnx(t, "-config", path)
	reloaded := p.Watch("config reloaded")
	load := startLoad(t, p.Addr, 4, 1, 2*time.Millisecond)

	const saves = 100
	var worst time.Duration
	for i := 1; i <= saves; i++ {
		set := i % 2
		saved := time.Now()
		testproc.WriteConfig(t, path, cfgs[set])
		p.Next(reloaded, fmt.Sprintf("reload %d", i))
		var at time.Time
		deadline := time.Now().Add(10 * time.Second)
		for {
			var ok bool
			if at, ok = load.firstAfter(saved, sets[set]); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("save %d: no response from the new backends", i)
			}
			time.Sleep(time.Millisecond)
		}
		worst = max(worst, at.Sub(saved))
	}
	load.Halt()
	load.report(t)
	t.Logf("%d reloads; slowest move of traffic to the new backends: %v", saves, worst)
	if n := load.fail.Load(); n != 0 {
		t.Errorf("%d requests failed during reloads", n)
	}
	if worst > time.Second {
		t.Errorf("traffic took %v to move after a save, want under 1s", worst)
	}
}

// TestReloadInvalidThenValid: an invalid save changes nothing (the old
// backends keep serving and the error names file, line and key); the next
// valid save is picked up.
func TestReloadInvalidThenValid(t *testing.T) {
	a := namedBackend(t, "a", nil)
	b := namedBackend(t, "b", nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "", a))
	p := startConnx(t, "-config", path)
	failed := p.Watch("config reload failed")
	reloaded := p.Watch("config reloaded")

	testproc.WriteConfig(t, path, configFor("round-robin", "timeouts:\n  clientIdle: -5s\n", b))
	l := p.Next(failed, "reload failure")
	if !strings.Contains(l, "connx.yaml:") || !strings.Contains(l, "timeouts.clientIdle") {
		t.Errorf("failure does not name the file and key: %s", l)
	}
	for range 5 {
		if got := getBackend(t, p.Addr); got != "a" {
			t.Fatalf("after an invalid save, served by %q, want the old backend a", got)
		}
	}
	testproc.WriteConfig(t, path, configFor("round-robin", "", b))
	p.Next(reloaded, "reload")
	if got := getBackend(t, p.Addr); got != "b" {
		t.Fatalf("after a valid save, served by %q, want b", got)
	}
}

// TestReloadSaveMethods: saving by rename, by writing in place and by
// swapping a Kubernetes-style ..data symlink each reload exactly once.
func TestReloadSaveMethods(t *testing.T) {
	var urls []string
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		urls = append(urls, namedBackend(t, n, nil))
	}
	dir := t.TempDir()
	// config.yaml -> ..data/config.yaml, ..data -> v0
	for _, v := range []string{"v0", "v1"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.yaml")
	must(t, os.WriteFile(filepath.Join(dir, "v0", "config.yaml"), []byte(configFor("round-robin", "", urls[:1]...)), 0o644))
	must(t, os.Symlink("v0", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "config.yaml"), path))
	p := startConnx(t, "-config", path)
	reloaded := p.Watch("config reloaded")

	// 1. Symlink swap: a new ..data link renamed over the old one.
	must(t, os.WriteFile(filepath.Join(dir, "v1", "config.yaml"), []byte(configFor("round-robin", "", urls[:2]...)), 0o644))
	must(t, os.Symlink("v1", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	// 2. Rename over the resolved file.
	target := filepath.Join(dir, "v1", "config.yaml")
	waitReload(t, p, reloaded, 2)
	testproc.WriteConfig(t, target, configFor("round-robin", "", urls[:3]...))
	waitReload(t, p, reloaded, 3)
	// 3. In place.
	must(t, os.WriteFile(target, []byte(configFor("round-robin", "", urls[:4]...)), 0o644))
	waitReload(t, p, reloaded, 4)
	// Sentinel: the next reload is this one, so none was doubled.
	testproc.WriteConfig(t, target, configFor("round-robin", "", urls[:5]...))
	waitReload(t, p, reloaded, 5)
}

func waitReload(t *testing.T, p *proc, c <-chan string, backends int) {
	t.Helper()
	l := p.Next(c, "reload")
	if want := fmt.Sprintf("backends=%d ", backends); !strings.Contains(l, want) {
		t.Fatalf("reload %q, want one with %s", l, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func getBackend(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Backend")
}

// TestSIGTERMDrain: under steady load with slow requests in flight,
// SIGTERM lets every accepted request complete, refuses new connections,
// and the process exits within server.shutdownTimeout.
func TestSIGTERMDrain(t *testing.T) {
	release := make(chan struct{})
	var slowStarted sync.WaitGroup
	be := namedBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowStarted.Done()
			<-release
		}
		io.WriteString(w, "ok")
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "", be))
	p := startConnx(t, "-config", path)
	load := startLoad(t, p.Addr, 4, 0, time.Millisecond)
	waitServed(t, load, 100)

	const slow = 5
	slowStarted.Add(slow)
	slowErrs := make(chan error, slow)
	for range slow {
		go func() {
			resp, err := http.Get("http://" + p.Addr + "/slow")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" {
					err = fmt.Errorf("body %q", b)
				}
			}
			slowErrs <- err
		}()
	}
	slowStarted.Wait()
	draining := p.Watch("shutting down")
	sent := time.Now()
	must(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	p.Next(draining, "drain start")
	// New connections are refused once the listeners are closed.
	waitRefused(t, p.Addr)
	load.Halt()
	close(release)
	for range slow {
		if err := <-slowErrs; err != nil {
			t.Errorf("slow request in flight at SIGTERM: %v", err)
		}
	}
	select {
	case <-p.Exited:
	case <-time.After(10 * time.Second):
		t.Fatal("connx did not exit")
	}
	took := time.Since(sent)
	if p.Err != nil {
		t.Errorf("exit: %v", p.Err)
	}
	load.report(t)
	// Keep-alive clients whose next request raced the close of an idle
	// connection see "connection refused" when they redial: refused, not
	// accepted and lost.
	load.mu.Lock()
	for _, e := range load.errs {
		if !strings.Contains(e, "connection refused") {
			t.Errorf("request failed during the drain: %s", e)
		}
	}
	load.mu.Unlock()
	t.Logf("exited %v after SIGTERM (shutdownTimeout 5s)", took.Round(time.Millisecond))
	if took > 5*time.Second+2*time.Second {
		t.Errorf("took %v to exit, shutdownTimeout is 5s", took)
	}
}

// waitRefused waits until a dial to addr is refused.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("dial: %v", err)
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				return
			}
		} else {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("connections still accepted during the drain")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestUpgradeUnderLoad: SIGUSR2 starts a successor that takes over the
// port while clients send a steady load, with keep-alive and with a new
// connection per request; the old process drains and exits; no request
// fails.
func TestUpgradeUnderLoad(t *testing.T) {
	be := namedBackend(t, "a", nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "connx.yaml")
	port := testproc.FreePort(t)
	testproc.WriteConfig(t, path, strings.Replace(configFor("round-robin", "", be), "port: 0", "port: "+port, 1))
	p := startConnx(t, "-config", path)
	load := startLoad(t, p.Addr, 4, 2, time.Millisecond)
	waitServed(t, load, 200)

	successor := p.Watch("upgrade: the successor is serving")
	must(t, p.Cmd.Process.Signal(syscall.SIGUSR2))
	l := p.Next(successor, "successor")
	_ = l
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the old process did not exit")
	}
	if p.Err != nil {
		t.Errorf("old process exit: %v", p.Err)
	}
	// The successor serves on its own.
	before := load.ok.Load()
	waitServed(t, load, before+200)
	load.Halt()
	load.report(t)
	if n := load.fail.Load(); n != 0 {
		t.Errorf("%d requests failed during the upgrade", n)
	}
	// Stop the successor: it is this test's to clean up.
	stopSuccessor(t, p)
}

func waitServed(t *testing.T, g *loadGen, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for g.ok.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests served, want %d", g.ok.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

var successorRE = regexp.MustCompile(`upgrade: successor started.* successor_pid=(\d+)`)

func stopSuccessor(t *testing.T, p *proc) {
	for _, l := range p.Log() {
		if m := successorRE.FindStringSubmatch(l); m != nil {
			var pid int
			fmt.Sscan(m[1], &pid)
			if pr, err := os.FindProcess(pid); err == nil {
				_ = pr.Signal(syscall.SIGTERM)
			}
		}
	}
}

// TestReloadMovesListener: a save that changes server.port starts a
// successor on the new port before the old port closes; the old process
// drains and exits.
func TestReloadMovesListener(t *testing.T) {
	be := namedBackend(t, "a", nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "connx.yaml")
	oldPort, newPort := testproc.FreePort(t), testproc.FreePort(t)
	cfg := func(port string) string {
		return strings.Replace(configFor("round-robin", "", be), "port: 0", "port: "+port, 1)
	}
	testproc.WriteConfig(t, path, cfg(oldPort))
	p := startConnx(t, "-config", path)
	moved := p.Watch("listen address moved")
	testproc.WriteConfig(t, path, cfg(newPort))
	p.Next(moved, "listener move")
	// By the time the old process gives up its port, the new one serves.
	if got := getBackend(t, "127.0.0.1:"+newPort); got != "a" {
		t.Fatalf("new port served by %q", got)
	}
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the old process did not exit")
	}
	if _, err := net.Dial("tcp", "127.0.0.1:"+oldPort); err == nil {
		t.Error("the old port still accepts connections")
	}
	stopSuccessor(t, p)
}

// TestAccessLogReopen: after the access log file is moved away (as
// logrotate does), SIGUSR1 makes connx write to a new file at the
// configured path.
func TestAccessLogReopen(t *testing.T) {
	be := namedBackend(t, "a", nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "connx.yaml")
	logPath := filepath.Join(dir, "access.log")
	testproc.WriteConfig(t, path, configFor("round-robin", "accessLog:\n  enabled: true\n  output: "+logPath+"\n", be))
	p := startConnx(t, "-config", path)
	getBackend(t, p.Addr)
	must(t, os.Rename(logPath, logPath+".1"))
	reopened := p.Watch("access log reopened")
	must(t, p.Cmd.Process.Signal(syscall.SIGUSR1))
	p.Next(reopened, "reopen")
	getBackend(t, p.Addr)
	var fresh []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(fresh) == 0 && time.Now().Before(deadline) {
		fresh, _ = os.ReadFile(logPath) // the writer flushes when its queue is empty
		time.Sleep(10 * time.Millisecond)
	}
	old, _ := os.ReadFile(logPath + ".1")
	if strings.Count(string(old), "\n") != 1 || strings.Count(string(fresh), "\n") != 1 {
		t.Fatalf("rotated file has %q, new file %q; want one line each", old, fresh)
	}
}

// TestListenAnyPort: with -listen HOST:0 and several event loops, the
// kernel picks one port and every loop listens on it (each loop has its
// own SO_REUSEPORT socket), and the "connx listening" line names it.
func TestListenAnyPort(t *testing.T) {
	const loops = 4
	a := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, fmt.Sprintf("server:\n  port: 8080\n  eventLoops: %d\nhealthCheck:\n  enabled: false\nbackends:\n  - url: %q\n", loops, a))
	p := startConnx(t, "-config", path, "-listen", "127.0.0.1:0")
	_, port, err := net.SplitHostPort(p.Addr)
	if err != nil || port == "0" || port == "8080" {
		t.Fatalf("logged address %q, want 127.0.0.1 and the port picked", p.Addr)
	}
	var n int
	deadline := time.Now().Add(5 * time.Second)
	for {
		n = listeningSockets(t, p.PID(), port)
		if n == loops || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n != loops {
		t.Fatalf("%d listening sockets on the logged port %s, want one per event loop (%d)", n, port, loops)
	}
	for range 16 {
		if got := getBackend(t, p.Addr); got != "a" {
			t.Fatalf("served by %q", got)
		}
	}
}

// listeningSockets counts the listening TCP sockets of process pid on
// port (decimal), from /proc.
func listeningSockets(t *testing.T, pid int, port string) int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var p int
	fmt.Sscan(port, &p)
	want := fmt.Sprintf(":%04X", p)
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// local_address rem_address st ... inode is field 9.
			if len(f) > 9 && strings.HasSuffix(f[1], want) && f[3] == "0A" && inodes[f[9]] {
				n++
			}
		}
	}
	return n
}

// TestSignalsCaughtFromStart: a signal sent as soon as connx says it is
// listening is handled, not fatal (SIGUSR1's and SIGHUP's default action
// ends a process; they were caught only after the listener was up).
func TestSignalsCaughtFromStart(t *testing.T) {
	be := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "", be))
	for i := range 5 {
		p := startConnx(t, "-config", path)
		reloaded := p.Watch("SIGHUP: reloading the config")
		must(t, p.Cmd.Process.Signal(syscall.SIGHUP))
		p.Next(reloaded, fmt.Sprintf("start %d: the reload", i))
		if got := getBackend(t, p.Addr); got != "a" {
			t.Fatalf("start %d: served by %q", i, got)
		}
		must(t, p.Cmd.Process.Signal(syscall.SIGTERM))
		<-p.Exited
	}
}
