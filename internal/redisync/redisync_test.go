package redisync

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/ratelimit"
	"github.com/connx/connx/internal/testproc"
)

// The example: 100 requests/s, burst 200, and a fleet of three.
const (
	rps     = 100
	burst   = 200
	clients = 3
)

// logTap is a slog.Handler that hands every message to a channel, so a
// test can wait for a state change and count them.
type logTap struct {
	ch chan string
}

func newLogTap() *logTap                                   { return &logTap{ch: make(chan string, 64)} }
func (h *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (h *logTap) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logTap) WithGroup(string) slog.Handler            { return h }
func (h *logTap) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.Key + "=" + a.Value.String()
		return true
	})
	h.ch <- msg
	return nil
}

// wait returns the next message, which must contain want, within 10 s.
func (h *logTap) wait(t *testing.T, want string) string {
	t.Helper()
	select {
	case msg := <-h.ch:
		if !strings.Contains(msg, want) {
			t.Fatalf("log %q, want one containing %q", msg, want)
		}
		return msg
	case <-time.After(10 * time.Second):
		t.Fatalf("no log containing %q within 10 s", want)
	}
	return ""
}

// none fails t if a message is waiting.
func (h *logTap) none(t *testing.T) {
	t.Helper()
	select {
	case msg := <-h.ch:
		t.Fatalf("unexpected log %q", msg)
	default:
	}
}

const (
	logShared = "rate limits shared through Redis"
	logDown   = "Redis unreachable"
)

// instance is one ConnX of a fleet: its own Client (connection, goroutine,
// instance ID) and Limiters, as another process would have them.
type instance struct {
	c         *Client
	log       *logTap
	global    *ratelimit.Limiter
	perClient *ratelimit.Limiter // StoreKey "per-client": another Limiter on the same Client
	// allowed counts, written by drive: global, then per client.
	allowed [1 + clients]atomic.Int64
	times   []time.Duration // when global requests were allowed, since the load started
	// attempts is when global requests were offered, allowed or not, on
	// the same clock as times: what an exact bucket is replayed over.
	attempts []time.Duration
	rounds   chan error // the Client's rounds, as they end (dropped when full)
}

// nextRound waits until a round that started after the call has ended.
func (in *instance) nextRound(t *testing.T) error {
	t.Helper()
	for range len(in.rounds) {
		<-in.rounds
	}
	var err error
	for range 2 { // the first may have started before the call
		select {
		case err = <-in.rounds:
		case <-time.After(10 * time.Second):
			t.Fatal("no round within 10 s")
		}
	}
	return err
}

func newInstance(t *testing.T, o Options) *instance {
	t.Helper()
	in := &instance{log: newLogTap(), rounds: make(chan error, 16)}
	in.c = New(o, slog.New(in.log))
	in.c.afterRound = func(err error) {
		select {
		case in.rounds <- err:
		default:
		}
	}
	t.Cleanup(in.c.Close)
	var err error
	in.global, err = ratelimit.New(ratelimit.Config{Enabled: true, RequestsPerSec: rps, Burst: burst, Store: in.c}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	in.perClient, err = ratelimit.New(ratelimit.Config{Enabled: true, RequestsPerSec: rps, Burst: burst, PerClient: true,
		Store: in.c, StoreKey: "per-client"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func newFleet(t *testing.T, o Options) []*instance {
	fleet := make([]*instance, 3)
	for i := range fleet {
		fleet[i] = newInstance(t, o)
	}
	for _, in := range fleet {
		in.log.wait(t, logShared)
	}
	for _, in := range fleet {
		in.nextRound(t) // a round after all joined: each counts 3 instances
	}
	return fleet
}

// unevenLoad is what each instance is sent every 5 ms: the clients of its
// requests. The first instance gets 800 requests/s, the second 400, the
// third 200; client 0 sends 600/s, clients 1 and 2 400/s each: every
// limit is exceeded several times over, unevenly.
var unevenLoad = [][]int{{0, 0, 0, 1}, {1, 2}, {2}}

var clientAddrs = [clients]netip.Addr{
	netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::3"),
}

// drive sends fleet its load until ctx ends, from one goroutine per
// instance paced by a ticker, and returns when all have stopped.
func drive(ctx context.Context, fleet []*instance, load [][]int, start time.Time) {
	var wg sync.WaitGroup
	for i, in := range fleet {
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			r := &ratelimit.Request{Path: []byte("/")}
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				for _, cl := range load[i] {
					r.Reset(clientAddrs[cl], r.Path)
					at := time.Since(start)
					in.attempts = append(in.attempts, at)
					if in.global.Decide(r).Allowed {
						in.allowed[0].Add(1)
						in.times = append(in.times, at)
					}
					if in.perClient.Decide(r).Allowed {
						in.allowed[1+cl].Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
}

// totals sums the fleet's allowed counts.
func totals(fleet []*instance) (n [1 + clients]int64) {
	for _, in := range fleet {
		for i := range n {
			n[i] += in.allowed[i].Load()
		}
	}
	return n
}

// exact is how many of the requests offered at times ts (sorted) one
// exact token bucket admits: rate per second, size b, holding start
// tokens at the first request. It is what a limiter should have admitted
// given when requests were actually offered, however the scheduler
// spaced them.
func exact(ts []time.Duration, rate, b, start float64) int {
	tokens, n := start, 0
	for i, at := range ts {
		if i > 0 {
			tokens = min(b, tokens+rate*(at-ts[i-1]).Seconds())
		}
		if tokens >= 1 {
			tokens--
			n++
		}
	}
	return n
}

// overAdmission is the most requests the fleet allowed, in any interval,
// beyond what one exact bucket would have: max over i <= j of
// (j-i+1) - burst - rps*(t[j]-t[i]).
func overAdmission(fleet []*instance) float64 {
	var ts []time.Duration
	for _, in := range fleet {
		ts = append(ts, in.times...)
	}
	slices.Sort(ts)
	worst := math.Inf(-1)
	for i := range ts {
		for j := i; j < len(ts); j++ {
			worst = max(worst, float64(j-i+1)-burst-rps*(ts[j]-ts[i]).Seconds())
		}
	}
	return worst
}

// TestFleetAccuracy is the fleet test: three instances share one
// Redis and are loaded unevenly for 10 s; the fleet allows, globally and
// for each client, requestsPerSec × seconds + burst within ±10%.
func TestFleetAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of load")
	}
	srv := testproc.StartRedis(t)
	// A long timeout: this test is about accuracy, and a machine busy
	// with other tests must not turn a slow round into an outage.
	fleet := newFleet(t, Options{Address: srv.Addr, Timeout: 2 * time.Second})
	for _, in := range fleet {
		if st := in.c.Status(); !st.Up || st.Instances != 3 {
			t.Fatalf("status %+v, want up with 3 instances", st)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	drive(ctx, fleet, unevenLoad, start)
	secs := time.Since(start).Seconds()
	want := rps*secs + burst
	got := totals(fleet)
	for i, n := range got {
		name := "global"
		if i > 0 {
			name = clientAddrs[i-1].String()
		}
		dev := (float64(n) - want) / want
		t.Logf("%s: %d allowed in %.2f s, want %.0f: %+.2f%%", name, n, secs, want, 100*dev)
		if math.Abs(dev) > 0.10 {
			t.Errorf("%s: %d allowed, more than 10%% from %.0f", name, n, want)
		}
	}
	per := make([]int64, len(fleet))
	for i, in := range fleet {
		per[i] = in.allowed[0].Load()
	}
	t.Logf("global allowed per instance: %v; worst over-admission in any interval: %.1f requests", per, overAdmission(fleet))
	for _, in := range fleet {
		in.log.none(t) // no state change while Redis was up
	}
}

// TestRedisOutage kills Redis under load and starts it again: the fleet
// keeps serving, each instance at its share (a third), then shares the
// limit again; one log line per change.
func TestRedisOutage(t *testing.T) {
	srv := testproc.StartRedis(t)
	// Killed, Redis refuses at once: the long timeout only keeps a busy
	// machine from making a slow round an outage.
	o := Options{Address: srv.Addr, SyncInterval: 20 * time.Millisecond, Timeout: 2 * time.Second}
	fleet := newFleet(t, o)
	// Even load, 200/s per instance, so each instance's share (a third)
	// is what it gets.
	load := [][]int{{0}, {1}, {2}}
	// phase drives the fleet for d and checks that it allowed what
	// exact buckets would have over the requests actually offered, within
	// tol: one bucket of the whole limit for the fleet when shared
	// (holding start tokens at the phase's first request), or, while
	// Redis is down (share > 1), one bucket of 1/share of the rate and
	// burst per instance. The reference is replayed over the requests'
	// own times, not over the wall-clock length of the phase: on a loaded
	// machine drive's goroutines start late, miss ticks and stop late, and
	// tokens that arrive while no request is offered (before the first,
	// after the last) are no request a limiter could have admitted.
	phase := func(name string, d time.Duration, share int, start, tol float64) {
		t.Helper()
		before := totals(fleet)
		from := make([]int, len(fleet))
		for i, in := range fleet {
			from[i] = len(in.attempts)
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		t0 := time.Now()
		drive(ctx, fleet, load, t0)
		secs := time.Since(t0).Seconds()
		n := totals(fleet)[0] - before[0]
		var want int
		var all []time.Duration
		for i, in := range fleet {
			if share > 1 {
				want += exact(in.attempts[from[i]:], rps/float64(share), burst/float64(share), start)
			}
			all = append(all, in.attempts[from[i]:]...)
		}
		slices.Sort(all)
		if share <= 1 {
			want = exact(all, rps, burst, start)
		}
		if len(all) == 0 {
			t.Fatalf("%s: no request offered in %.2f s", name, secs)
		}
		offered := (all[len(all)-1] - all[0]).Seconds()
		dev := (float64(n) - float64(want)) / float64(want)
		t.Logf("%s: %d allowed; exact buckets over the %d requests offered (%.2f s of %.2f s) allow %d: %+.1f%%",
			name, n, len(all), offered, secs, want, 100*dev)
		if math.Abs(dev) > tol {
			t.Errorf("%s: %d allowed, more than %.0f%% from %d", name, n, 100*tol, want)
		}
	}
	// The first phase includes the bucket's burst.
	phase("shared", 2*time.Second, 1, burst, 0.10)
	srv.Kill()
	for _, in := range fleet {
		msg := in.log.wait(t, logDown)
		if !strings.Contains(msg, "share=1/3") {
			t.Errorf("log %q does not give the share 1/3", msg)
		}
	}
	// Each instance allows its third of the rate: the fleet's rate holds.
	phase("Redis down", 2*time.Second, 3, 0, 0.15)
	srv.Start()
	for _, in := range fleet {
		in.log.wait(t, logShared)
		if st := in.c.Status(); !st.Up || st.Failures == 0 {
			t.Errorf("status after recovery %+v, want up after failures", st)
		}
	}
	// The restarted Redis lost the buckets: it made the global bucket
	// afresh, full, at the first round that reached it (the reconnect
	// logged above), and nothing was offered since, so the bucket is full
	// at the phase's first request: a fresh burst, then the rate.
	phase("Redis back", 3*time.Second, 1, burst, 0.10)
	for _, in := range fleet {
		in.log.none(t) // exactly one line per change
	}
}

// TestSlowRedis stops Redis (SIGSTOP): rounds time out, the instance
// falls back to its share, and recovers when Redis answers again.
func TestSlowRedis(t *testing.T) {
	srv := testproc.StartRedis(t)
	in := newInstance(t, Options{Address: srv.Addr, SyncInterval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond})
	in.log.wait(t, logShared)
	if err := srv.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	msg := in.log.wait(t, logDown)
	if !strings.Contains(msg, "deadline") && !strings.Contains(msg, "timeout") {
		t.Errorf("log %q does not say the round timed out", msg)
	}
	if err := srv.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	in.log.wait(t, logShared)
}

// TestPasswordAndDB checks AUTH and SELECT: a wrong password is an
// outage with the reason logged; the right one writes to its database.
func TestPasswordAndDB(t *testing.T) {
	srv := testproc.StartRedis(t, "--requirepass", "s3cret")
	bad := newInstance(t, Options{Address: srv.Addr, Password: "wrong"})
	if msg := bad.log.wait(t, logDown); !strings.Contains(msg, "WRONGPASS") && !strings.Contains(msg, "invalid") {
		t.Errorf("log %q does not give the reason", msg)
	}
	if st := bad.c.Status(); st.Up {
		t.Errorf("status %+v with a wrong password, want down", st)
	}
	good := newInstance(t, Options{Address: srv.Addr, Password: "s3cret", DB: 3, Prefix: "test:"})
	good.log.wait(t, logShared)
	r := &ratelimit.Request{Peer: clientAddrs[0], Path: []byte("/")}
	good.global.Decide(r)
	good.perClient.Decide(r)
	if err := good.nextRound(t); err != nil { // carried the counts
		t.Fatal(err)
	}
	if got := srv.Query("s3cret", 3, "EXISTS", "test:rl::global"); got != ":1" {
		t.Errorf("db 3 EXISTS test:rl::global = %s, want :1", got)
	}
	if got := srv.Query("s3cret", 3, "EXISTS", "test:rl:per-client:00000000000000000000ffffc0000201"); got != ":1" {
		t.Errorf("db 3 has no bucket for 192.0.2.1: %s", got)
	}
	if got := srv.Query("s3cret", 0, "DBSIZE"); got != ":0" {
		t.Errorf("db 0 DBSIZE = %s, want :0", got)
	}
}

// TestClientStopsWhenUnused checks that a Client's goroutine ends once no
// Limiter uses it (Limiters are held weakly), and starts again on Join.
func TestClientStopsWhenUnused(t *testing.T) {
	srv := testproc.StartRedis(t)
	c := New(Options{Address: srv.Addr, SyncInterval: time.Millisecond}, slog.New(newLogTap()))
	defer c.Close()
	l, err := ratelimit.New(ratelimit.Config{Enabled: true, RequestsPerSec: 1, Burst: 1, Store: c}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	// Replacing the Store retires l's Shared; the goroutine sees it.
	if _, err := ratelimit.New(ratelimit.Config{Enabled: true, RequestsPerSec: 1, Burst: 1}, l, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the goroutine did not stop without Limiters")
	}
	if c.Status().Active {
		t.Error("Active without Limiters")
	}
	l2, _ := ratelimit.New(ratelimit.Config{Enabled: true, RequestsPerSec: 1, Burst: 1, Store: c}, nil, nil)
	if !c.Status().Active {
		t.Error("not Active after a new Limiter joined")
	}
	_ = l2
}

// TestFor checks that For shares one Client per Options.
func TestFor(t *testing.T) {
	if For(Options{}) != nil {
		t.Error("For without an address is not nil")
	}
	a := For(Options{Address: "127.0.0.1:1"})
	b := For(Options{Address: "127.0.0.1:1", SyncInterval: DefaultSyncInterval})
	c := For(Options{Address: "127.0.0.1:1", DB: 1})
	if a != b || a == c {
		t.Error("For does not share Clients by their options")
	}
}
