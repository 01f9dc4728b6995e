package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"

	"github.com/connx/connx/internal/config"
)

// tlsIdleBound is the most heap the proxy may hold per idle TLS
// keep-alive connection (TestTLSIdleConnectionMemory).
const tlsIdleBound = 6 << 10

// TestTLSIdleConnectionMemory measures the proxy's heap per idle TLS
// keep-alive client connection (TLS 1.3, after one request) and holds
// it to tlsIdleBound. The clients run in a child process (this test
// binary, TestTLSIdleClients), so their own tls.Conns are not in the
// heap measured. CONNX_TLS_IDLE_PROFILE=FILE writes a heap profile of
// the proxy with the connections open.
func TestTLSIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 2000
	if os.Getenv("CONNX_TLS_IDLE_PROFILE") != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
	e := newTLSEnv(t, fixedBackend(t, resp), func(c *config.Config) { c.Server.TLS.MaxHandshakes = 64 })
	ca := t.TempDir() + "/ca.pem"
	mustf(t, os.WriteFile(ca, e.ca.PEM, 0o600), "CA file")

	// Warm the loops' buffers and pools with a first batch.
	warm := startTLSIdleClients(t, e.addr, ca, 200, "1.3")
	warm.stop()
	waitFor(t, "warm-up connections to close", func() bool { return e.srv.Active() == 0 })

	before := heapAlloc()
	for _, v := range []string{"1.3", "1.2"} {
		c := startTLSIdleClients(t, e.addr, ca, n, v)
		waitFor(t, "all connections open", func() bool { return e.srv.Active() == n })
		waitFullSweeps(t, e.srv, 2) // idle connections let go of their input buffers
		after := heapAlloc()
		if f := os.Getenv("CONNX_TLS_IDLE_PROFILE"); f != "" {
			out, err := os.Create(f)
			mustf(t, err, "profile")
			mustf(t, pprof.Lookup("heap").WriteTo(out, 0), "profile")
			out.Close()
		}
		c.stop()
		per := (int64(after) - int64(before)) / n
		t.Logf("TLS %s: heap per idle keep-alive connection: %d bytes (%d connections)", v, per, n)
		if per > tlsIdleBound {
			t.Errorf("TLS %s: %d bytes of heap per idle connection, want <= %d", v, per, tlsIdleBound)
		}
		waitFor(t, "the connections to close", func() bool { return e.srv.Active() == 0 })
	}
}

// waitFullSweeps waits until every loop of s has run k more full sweeps.
func waitFullSweeps(t *testing.T, s *Server, k uint64) {
	t.Helper()
	s.mu.Lock()
	loops := append([]*loop(nil), s.loops...)
	s.mu.Unlock()
	start := make([]uint64, len(loops))
	for i, lp := range loops {
		start[i] = lp.fullSweeps.Load()
	}
	waitFor(t, "full sweeps of every loop", func() bool {
		for i, lp := range loops {
			if lp.fullSweeps.Load() < start[i]+k {
				return false
			}
		}
		return true
	})
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// tlsIdleClients is a child process holding idle TLS connections.
type tlsIdleClients struct {
	cmd *exec.Cmd
	in  io.WriteCloser
}

// startTLSIdleClients starts a child that opens n TLS connections
// (version "1.2" or "1.3") to addr, makes one request on each and keeps
// them open until stop.
func startTLSIdleClients(t *testing.T, addr, ca string, n int, version string) *tlsIdleClients {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTLSIdleClients$", "-test.v")
	cmd.Env = append(os.Environ(), "CONNX_TLS_IDLE_CHILD="+addr+","+ca+","+strconv.Itoa(n)+","+version)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	mustf(t, err, "stdin")
	out, err := cmd.StdoutPipe()
	mustf(t, err, "stdout")
	mustf(t, cmd.Start(), "child")
	c := &tlsIdleClients{cmd: cmd, in: in}
	t.Cleanup(c.stop)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "ready") {
			go io.Copy(io.Discard, out)
			return c
		} else if strings.HasPrefix(line, "error") {
			t.Fatalf("TLS clients: %s", line)
		}
	}
	t.Fatalf("TLS clients ended before ready: %v", sc.Err())
	return nil
}

func (c *tlsIdleClients) stop() {
	if c.in != nil {
		c.in.Close()
		c.in = nil
		_ = c.cmd.Wait()
	}
}

// TestTLSIdleClients is the child of startTLSIdleClients; it does
// nothing in a normal run.
func TestTLSIdleClients(t *testing.T) {
	spec := os.Getenv("CONNX_TLS_IDLE_CHILD")
	if spec == "" {
		t.Skip("the child process of TestTLSIdleConnectionMemory")
	}
	f := strings.Split(spec, ",")
	addr, caFile, version := f[0], f[1], f[3]
	n, _ := strconv.Atoi(f[2])
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "example.com", NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
	if version == "1.2" {
		cfg.MaxVersion = tls.VersionTLS12
	}
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			fmt.Println("error", err)
			return
		}
		conns = append(conns, c)
		br := bufio.NewReader(c)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			fmt.Println("error", err)
			return
		}
		io.Copy(io.Discard, resp.Body)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
