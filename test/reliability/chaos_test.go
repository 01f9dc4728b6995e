//go:build reliability

package reliability

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/testproc"
)

// killable is an HTTP backend on a fixed address that can be killed
// (listener and every connection closed at once, requests in flight cut)
// and restarted on the same address.
type killable struct {
	t    *testing.T
	addr string
	name string
	mu   sync.Mutex
	srv  *http.Server
}

func newKillable(t *testing.T, name string) *killable {
	k := &killable{t: t, name: name}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = ln.Addr().String()
	k.serve(ln)
	t.Cleanup(k.kill)
	return k
}

func (k *killable) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", k.name)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, k.name)
	})}
	k.mu.Lock()
	k.srv = srv
	k.mu.Unlock()
	go srv.Serve(ln)
}

func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.srv != nil {
		k.srv.Close()
		k.srv = nil
	}
}

func (k *killable) restart() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly
		if ln, err = net.Listen("tcp", k.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		k.t.Fatalf("restarting %s on %s: %v", k.name, k.addr, err)
	}
	k.serve(ln)
}

// phasedLoad is a steady GET load that counts outcomes per phase.
type phasedLoad struct {
	*testproc.Load
	phase atomic.Int32

	mu    sync.Mutex
	names []string
	ok    []int
	fail  []int
	errs  []string
}

func startPhasedLoad(t *testing.T, addr string, keepAlive, fresh int, pause time.Duration) *phasedLoad {
	g := &phasedLoad{names: []string{"start"}, ok: []int{0}, fail: []int{0}}
	g.Load = testproc.StartLoad(t, "http://"+addr+"/", keepAlive, fresh, pause, func(resp *http.Response, err error) {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		ph := int(g.phase.Load())
		g.mu.Lock()
		defer g.mu.Unlock()
		if err == nil && code == 200 {
			g.ok[ph]++
			return
		}
		g.fail[ph]++
		g.errs = append(g.errs, fmt.Sprintf("%s [%s] status %d err %v", time.Now().Format("15:04:05.000"), g.names[ph], code, err))
	})
	return g
}

func (g *phasedLoad) enter(name string) {
	g.mu.Lock()
	g.names = append(g.names, name)
	g.ok = append(g.ok, 0)
	g.fail = append(g.fail, 0)
	g.phase.Store(int32(len(g.names) - 1))
	g.mu.Unlock()
}

var successorRE = regexp.MustCompile(`upgrade: successor started.* successor_pid=(\d+)`)

// TestChaosUnderLoad: a steady GET load (four keep-alive clients, two
// opening a connection per request, about 200 requests/s) while one of
// three backends is killed and restarted, the config is reloaded five
// times and connx is upgraded with SIGUSR2. Goal: no failed request.
func TestChaosUnderLoad(t *testing.T) {
	bes := []*killable{newKillable(t, "a"), newKillable(t, "b"), newKillable(t, "c")}
	port := testproc.FreePort(t)
	hc := "healthCheck:\n  interval: 500ms\n  timeout: 200ms\n  healthyThreshold: 1\n  unhealthyThreshold: 1\n  jitter: 10ms\n"
	cfg := func(alg string, weight int) string {
		return config(port, hc+fmt.Sprintf("loadBalancing:\n  algorithm: %s\nupstream:\n  retries: 2\n", alg),
			"http://"+bes[0].addr, "http://"+bes[1].addr, "http://"+bes[2].addr) +
			fmt.Sprintf("# weight %d\n", weight)
	}
	p, path := run(t, cfg("round-robin", 0))
	var successor atomic.Int64
	t.Cleanup(func() {
		if pid := successor.Load(); pid != 0 {
			if pr, err := os.FindProcess(int(pid)); err == nil {
				pr.Signal(syscall.SIGKILL)
			}
		}
	})
	unhealthy := p.Watch("backend unhealthy")
	reloaded := p.Watch("config reloaded")
	load := startPhasedLoad(t, p.Addr, 4, 2, 25*time.Millisecond)
	steady := func() { time.Sleep(2 * time.Second) } // load runs through the phase

	load.enter("baseline")
	steady()

	load.enter("kill b")
	bes[1].kill()
	l := nextFor(t, p, unhealthy, bes[1].addr, "backend b unhealthy")
	t.Logf("killed b: %s", l)
	steady()
	load.enter("restart b")
	healthy := p.Watch("backend healthy")
	bes[1].restart()
	l = nextFor(t, p, healthy, bes[1].addr, "backend b healthy again")
	t.Logf("restarted b: %s", l)
	steady()

	load.enter("reloads")
	for i := 1; i <= 5; i++ {
		alg := []string{"round-robin", "least-connections"}[i%2]
		testproc.WriteConfig(t, path, cfg(alg, i))
		p.Next(reloaded, fmt.Sprintf("reload %d", i))
		time.Sleep(300 * time.Millisecond) // traffic between reloads
	}
	steady()

	load.enter("upgrade")
	serving := p.Watch("upgrade: the successor is serving")
	started := p.Watch("upgrade: successor started")
	if err := p.Cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if m := successorRE.FindStringSubmatch(p.Next(started, "successor start")); m != nil {
		pid, _ := strconv.Atoi(m[1])
		successor.Store(int64(pid))
	}
	p.Next(serving, "successor serving")
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		t.Error("the old process did not exit after the upgrade")
	}
	load.enter("after upgrade")
	steady()
	load.Halt()

	load.mu.Lock()
	defer load.mu.Unlock()
	total, failed := 0, 0
	for i, n := range load.names {
		t.Logf("phase %-14s ok %5d  failed %d", n, load.ok[i], load.fail[i])
		total += load.ok[i] + load.fail[i]
		failed += load.fail[i]
	}
	t.Logf("chaos: %d requests, %d failed", total, failed)
	for i, e := range load.errs {
		if i == 20 {
			t.Logf("... %d more", len(load.errs)-20)
			break
		}
		t.Logf("failure: %s", e)
	}
	if failed > 0 {
		t.Errorf("%d idempotent requests failed under chaos (goal 0): first %s", failed, strings.SplitN(load.errs[0], "\n", 2)[0])
	}
	if pid := successor.Load(); pid != 0 {
		pr, _ := os.FindProcess(int(pid))
		pr.Signal(syscall.SIGTERM)
	}
}

// nextFor waits for the next line on c that mentions addr.
func nextFor(t *testing.T, p *proc, c <-chan string, addr, what string) string {
	t.Helper()
	for {
		if l := p.Next(c, what); strings.Contains(l, addr) {
			return l
		}
	}
}
