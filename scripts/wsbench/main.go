// Command wsbench measures the throughput of WebSocket tunnels through one
// or more HTTP proxies, and the CPU time each proxy spends on it.
//
// It starts a WebSocket echo backend on 127.0.0.1 in this process. The
// proxies under test are started by the caller (scripts/ws-bench.sh) with
// that backend as their upstream, and named with -target. For each variant
// (a message size and the bytes each client sends), each round, and each
// target in turn (the order rotates every round), wsbench opens -clients
// WebSocket connections through the proxy; each client sends its bytes in
// binary messages of the variant's size while reading the echoes, so every
// payload byte crosses the proxy twice (once each way). Every echo is
// checked byte for byte. A run fails when no echo arrives for -stall
// (10 s): its connections are then closed with a TCP reset, so that a
// proxy that stopped reading them still learns they are gone.
//
// Per run it reads the proxy's CPU time (utime+stime of its processes, from
// /proc/PID/stat, as ../shared/bench/peers.sh does) before and after, and
// reports:
//
//	wall_s    time from the first byte sent to the last echo read
//	MB/s      payload bytes both ways / wall, MB = 10^6 bytes
//	cpu_s     the proxy's CPU seconds over the run
//	MB/cpu_s  payload bytes both ways / proxy CPU seconds: the efficiency
//	gen_s     CPU seconds of this process (clients and backend), to show
//	          when the load generator, not the proxy, is the limit
//
// Each run is printed on stderr; the medians over the rounds that completed
// go to stdout, with the number of failed rounds and ratio lines (-ratios;
// by default the first target against each other).
//
// Usage:
//
//	go run ./scripts/wsbench -backend 127.0.0.1:19301 \
//	    -target connx=127.0.0.1:19383@4242 -target nginx=127.0.0.1:19381@4250,4251
//
// A target is NAME=HOST:PORT@PID[,PID...]; the PIDs are the processes whose
// CPU counts (ConnX's process; nginx's workers, not its master).
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// target is a proxy under test.
type target struct {
	name string
	addr string
	pids []int
}

// variant is one message size and the bytes each client sends with it.
type variant struct {
	label string
	size  int   // bytes per message
	total int64 // bytes each client sends
}

// result is one measured run.
type result struct {
	wall, cpu, gen float64 // seconds
	bytes          int64   // payload bytes, both directions
	err            error
}

func (r result) mbps() float64 { return float64(r.bytes) / 1e6 / r.wall }

func (r result) eff() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return float64(r.bytes) / 1e6 / r.cpu
}

type targetList []target

func (l *targetList) String() string { return fmt.Sprint(*l) }

func (l *targetList) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=HOST:PORT@PID[,PID...], got %q", s)
	}
	addr, pidList, ok := strings.Cut(rest, "@")
	if !ok {
		return fmt.Errorf("%s: no @PID", name)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	t := target{name: name, addr: addr}
	for _, p := range strings.Split(pidList, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || pid <= 0 {
			return fmt.Errorf("%s: bad pid %q", name, p)
		}
		t.pids = append(t.pids, pid)
	}
	*l = append(*l, t)
	return nil
}

func run(args []string) int {
	fs := flag.NewFlagSet("wsbench", flag.ContinueOnError)
	backendAddr := fs.String("backend", "127.0.0.1:0", "listen address of the in-process WebSocket echo backend")
	var targets targetList
	fs.Var(&targets, "target", "a proxy to measure, NAME=HOST:PORT@PID[,PID...] (repeatable; the first is compared with the others)")
	clients := fs.Int("clients", 4, "parallel WebSocket connections per run")
	variants := fs.String("variants", "64KiB:256MiB,1MiB:256MiB,1KiB:32MiB",
		"comma-separated MSGSIZE:BYTES_PER_CLIENT pairs (units B, KiB, MiB)")
	rounds := fs.Int("rounds", 3, "runs per target and variant; medians are reported")
	warmup := fs.String("warmup", "16MiB", "bytes per client sent through each target (64 KiB messages) before measuring; 0 for none")
	hz := fs.Int("hz", 100, "clock ticks per second of /proc/PID/stat (getconf CLK_TCK)")
	timeout := fs.Duration("timeout", 5*time.Minute, "limit for one run")
	stall := fs.Duration("stall", 10*time.Second, "a run fails when no echo arrives for this long")
	ratios := fs.String("ratios", "", "comma-separated A/B pairs of target names to print ratios for (default: the first target against each other)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(targets) == 0 || *clients < 1 || *rounds < 1 || *hz < 1 || *stall < time.Second {
		fmt.Fprintln(os.Stderr, "wsbench: need at least one -target, -clients ≥ 1, -rounds ≥ 1, -stall ≥ 1s")
		return 2
	}
	pairs, err := parseRatios(*ratios, targets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench: -ratios:", err)
		return 2
	}
	vs, err := parseVariants(*variants)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench: -variants:", err)
		return 2
	}
	warm, err := parseSize(*warmup)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench: -warmup:", err)
		return 2
	}

	ln, err := net.Listen("tcp", *backendAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench: backend:", err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintf(os.Stderr, "# backend on %s; %d clients, %d rounds\n", ln.Addr(), *clients, *rounds)

	b := &bench{clients: *clients, hz: float64(*hz), timeout: *timeout, stall: *stall}
	failed := false
	for _, t := range targets {
		if err := b.waitReady(t); err != nil {
			fmt.Fprintf(os.Stderr, "wsbench: %s: %v\n", t.name, err)
			return 1
		}
		if warm > 0 {
			if r := b.measure(t, variant{label: "warmup", size: 64 << 10, total: warm}); r.err != nil {
				// Measured runs will tell; count it as a failure.
				failed = true
				fmt.Fprintf(os.Stderr, "warm-up %-8s: ERROR %v\n", t.name, r.err)
			}
		}
	}

	res := map[string][]result{} // by target name + "/" + variant label
	for _, v := range vs {
		for round := range *rounds {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				r := b.measure(t, v)
				key := t.name + "/" + v.label
				res[key] = append(res[key], r)
				if r.err != nil {
					failed = true
					fmt.Fprintf(os.Stderr, "run %-6s %-8s round %d: ERROR %v\n", v.label, t.name, round+1, r.err)
					continue
				}
				fmt.Fprintf(os.Stderr, "run %-6s %-8s round %d: wall %.2fs %7.1f MB/s cpu %.2fs %7.1f MB/cpu_s gen %.2fs\n",
					v.label, t.name, round+1, r.wall, r.mbps(), r.cpu, r.eff(), r.gen)
			}
		}
	}

	fmt.Printf("%-8s %-6s %9s %7s %8s %6s %9s %6s %6s\n",
		"proxy", "msg", "MiB/conn", "wall_s", "MB/s", "cpu_s", "MB/cpu_s", "gen_s", "errors")
	type med struct{ mbps, eff float64 }
	meds := map[string]med{} // only for target/variant pairs with a completed run
	for _, v := range vs {
		for _, t := range targets {
			rs := res[t.name+"/"+v.label]
			var wall, mbps, cpu, eff, gen []float64
			errs := 0
			for _, r := range rs {
				if r.err != nil {
					errs++
					continue
				}
				wall, mbps, cpu = append(wall, r.wall), append(mbps, r.mbps()), append(cpu, r.cpu)
				eff, gen = append(eff, r.eff()), append(gen, r.gen)
			}
			if len(wall) == 0 {
				fmt.Printf("%-8s %-6s %9d %7s %8s %6s %9s %6s %6d\n",
					t.name, v.label, v.total>>20, "-", "-", "-", "-", "-", errs)
				continue
			}
			m := med{median(mbps), median(eff)}
			meds[t.name+"/"+v.label] = m
			fmt.Printf("%-8s %-6s %9d %7.2f %8.1f %6.2f %9.1f %6.2f %6d\n",
				t.name, v.label, v.total>>20, median(wall), m.mbps, median(cpu), m.eff, median(gen), errs)
		}
	}
	for _, pr := range pairs {
		line := fmt.Sprintf("ratio %s/%s", pr[0], pr[1])
		for _, v := range vs {
			a, aok := meds[pr[0]+"/"+v.label]
			p, pok := meds[pr[1]+"/"+v.label]
			if !aok || !pok {
				line += fmt.Sprintf(" mbps_%s=n/a eff_%s=n/a", v.label, v.label)
				continue
			}
			line += fmt.Sprintf(" mbps_%s=%s eff_%s=%s", v.label, ratio(a.mbps, p.mbps), v.label, ratio(a.eff, p.eff))
		}
		fmt.Println(line)
	}
	if failed {
		return 1
	}
	return 0
}

// echo is the backend: it sends every message back as one frame.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	ctx := r.Context()
	buf := make([]byte, 0, 64<<10)
	for {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return
		}
		if buf, err = readAll(rd, buf[:0]); err != nil {
			return
		}
		if err := c.Write(ctx, typ, buf); err != nil {
			return
		}
	}
}

// readAll appends r's bytes to buf, growing it only when full.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// bench holds what every run shares.
type bench struct {
	clients int
	hz      float64
	timeout time.Duration // for one run
	stall   time.Duration // a run fails after this long without an echo
}

// wsConn is a client connection and its TCP socket.
type wsConn struct {
	*websocket.Conn
	tcp *net.TCPConn
}

// resetOnClose makes closing the socket send an RST (SO_LINGER 0), so
// that a proxy holding the other end learns at once that the client is
// gone, even if it is not reading.
func (c wsConn) resetOnClose() {
	if c.tcp != nil {
		_ = c.tcp.SetLinger(0)
	}
}

// reset closes the connection with an RST.
func (c wsConn) reset() {
	c.resetOnClose()
	_ = c.CloseNow()
}

func (b *bench) dial(ctx context.Context, addr string) (wsConn, error) {
	var tcp *net.TCPConn
	d := &net.Dialer{}
	tr := &http.Transport{
		Proxy: nil, // only the proxy under test, none from the environment
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, a)
			if err == nil {
				tcp, _ = nc.(*net.TCPConn)
			}
			return nc, err
		},
	}
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: tr},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return wsConn{}, err
	}
	c.SetReadLimit(-1)
	return wsConn{Conn: c, tcp: tcp}, nil
}

// waitReady dials t until a WebSocket echo works through it (the proxy
// may have been started just before the backend).
func (b *bench) waitReady(t target) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := func() error {
			c, err := b.dial(ctx, t.addr)
			if err != nil {
				return err
			}
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
				return err
			}
			_, m, err := c.Read(ctx)
			if err == nil && string(m) != "ping" {
				err = fmt.Errorf("echo %q", m)
			}
			if err == nil {
				err = c.Close(websocket.StatusNormalClosure, "")
			}
			return err
		}()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no WebSocket echo through %s: %w", t.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// measure runs one variant through t with b.clients connections. A run in
// which no echo arrives for b.stall fails as stalled; its connections are
// reset.
func (b *bench) measure(t target, v variant) result {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	conns := make([]wsConn, b.clients)
	for i := range conns {
		c, err := b.dial(ctx, t.addr)
		if err != nil {
			return result{err: fmt.Errorf("dial: %w", err)}
		}
		defer c.CloseNow()
		conns[i] = c
	}
	count := int(v.total / int64(v.size))
	if count < 1 {
		count = 1
	}
	payload := make([]byte, v.size)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(payload)

	cpu0, err := procTicks(t.pids)
	if err != nil {
		return result{err: err}
	}
	gen0 := selfCPU()
	start := time.Now()
	errs := make(chan error, 2*len(conns)+1)
	var (
		wg     sync.WaitGroup
		echoed atomic.Int64 // messages echoed, all connections
	)
	for _, c := range conns {
		p := slices.Clone(payload) // its first 8 bytes are this sender's
		wg.Add(2)
		go func() { defer wg.Done(); errs <- send(ctx, c.Conn, p, count) }()
		go func() { defer wg.Done(); errs <- receive(ctx, c.Conn, p, count, &echoed) }()
	}
	watchDone := make(chan struct{})
	go func() { errs <- watch(ctx, watchDone, &echoed, int64(count*len(conns)), b.stall) }()
	var first error
	for range 2 * len(conns) {
		if err := <-errs; err != nil && first == nil {
			first = err
			// Cancelling makes the library close the sockets; make those
			// closes resets first.
			for _, c := range conns {
				c.resetOnClose()
			}
			cancel() // unblock the others
		}
	}
	close(watchDone)
	if err := <-errs; err != nil && first == nil {
		first = err
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	cpu1, err := procTicks(t.pids)
	if first == nil {
		first = err
	}
	gen := selfCPU() - gen0
	if first != nil {
		for _, c := range conns {
			c.reset()
		}
		return result{err: first}
	}
	for _, c := range conns {
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
	return result{
		wall:  wall,
		cpu:   float64(cpu1-cpu0) / b.hz,
		gen:   gen,
		bytes: 2 * int64(len(conns)) * int64(count) * int64(v.size),
	}
}

// watch fails when no message is echoed for stall, and returns nil once
// done is closed.
func watch(ctx context.Context, done <-chan struct{}, echoed *atomic.Int64, want int64, stall time.Duration) error {
	tick := time.NewTicker(stall / 10)
	defer tick.Stop()
	last, at := echoed.Load(), time.Now()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return nil // a failure elsewhere, or the run's timeout
		case now := <-tick.C:
			if n := echoed.Load(); n != last {
				last, at = n, now
			} else if now.Sub(at) >= stall {
				return fmt.Errorf("stalled: no echo for %v, %d of %d messages echoed", stall, n, want)
			}
		}
	}
}

// send writes count binary messages; each carries its sequence number in
// its first 8 bytes (when it has 8), the rest is payload's.
func send(ctx context.Context, c *websocket.Conn, payload []byte, count int) error {
	for i := range count {
		if len(payload) >= 8 {
			binary.LittleEndian.PutUint64(payload[:8], uint64(i))
		}
		if err := c.Write(ctx, websocket.MessageBinary, payload); err != nil {
			return fmt.Errorf("write message %d: %w", i, err)
		}
	}
	return nil
}

// receive reads count echoes and checks each against what was sent. The
// sender changes only payload[:8] meanwhile; receive reads only the rest.
func receive(ctx context.Context, c *websocket.Conn, payload []byte, count int, echoed *atomic.Int64) error {
	buf := make([]byte, len(payload))
	var extra [1]byte
	for i := range count {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return fmt.Errorf("read message %d: %w", i, err)
		}
		if typ != websocket.MessageBinary {
			return fmt.Errorf("message %d: type %v", i, typ)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read message %d: %w", i, err)
		}
		if n, err := r.Read(extra[:]); n != 0 || !errors.Is(err, io.EOF) {
			return fmt.Errorf("message %d: longer than %d bytes", i, len(buf))
		}
		tail := 0
		if len(buf) >= 8 {
			if seq := binary.LittleEndian.Uint64(buf[:8]); seq != uint64(i) {
				return fmt.Errorf("message %d: got sequence number %d", i, seq)
			}
			tail = 8
		}
		if !bytes.Equal(buf[tail:], payload[tail:]) {
			return fmt.Errorf("message %d: echo differs from what was sent", i)
		}
		echoed.Add(1)
	}
	return nil
}

// procTicks sums utime+stime (fields 14 and 15 of /proc/PID/stat, in clock
// ticks) over pids.
func procTicks(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, fmt.Errorf("proxy CPU: %w", err)
		}
		// The command name (field 2) is in parentheses and may hold
		// spaces; fields after it are separated by single spaces.
		i := bytes.LastIndexByte(b, ')')
		var f []string
		if i >= 0 {
			f = strings.Fields(string(b[i+1:])) // f[0] is field 3
		}
		if len(f) < 13 {
			return 0, fmt.Errorf("proxy CPU: /proc/%d/stat: unexpected format", pid)
		}
		for _, s := range f[11:13] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("proxy CPU: /proc/%d/stat: %v", pid, err)
			}
			total += n
		}
	}
	return total, nil
}

// selfCPU is this process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// parseRatios reads "A/B,C/D"; "" is the first target against each other.
func parseRatios(s string, targets []target) ([][2]string, error) {
	var out [][2]string
	if s == "" {
		for _, t := range targets[1:] {
			out = append(out, [2]string{targets[0].name, t.name})
		}
		return out, nil
	}
	known := func(n string) bool {
		return slices.ContainsFunc(targets, func(t target) bool { return t.name == n })
	}
	for _, p := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || !known(a) || !known(b) {
			return nil, fmt.Errorf("%q: want A/B with two -target names", p)
		}
		out = append(out, [2]string{a, b})
	}
	return out, nil
}

func parseVariants(s string) ([]variant, error) {
	var vs []variant
	for _, p := range strings.Split(s, ",") {
		size, total, ok := strings.Cut(strings.TrimSpace(p), ":")
		if !ok {
			return nil, fmt.Errorf("want MSGSIZE:BYTES, got %q", p)
		}
		n, err := parseSize(size)
		if err != nil {
			return nil, err
		}
		t, err := parseSize(total)
		if err != nil {
			return nil, err
		}
		if n < 1 || n > 1<<30 || t < n {
			return nil, fmt.Errorf("%q: need 1 B ≤ message ≤ 1 GiB and message ≤ bytes per client", p)
		}
		vs = append(vs, variant{label: strings.TrimSpace(size), size: int(n), total: t})
	}
	return vs, nil
}

// parseSize reads an integer with an optional unit B, KiB, MiB or GiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}
