package discovery

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hangGuard bounds every wait of a test: reaching it is a hang, not a
// timing assertion.
const hangGuard = 30 * time.Second

// fakeClock is a Clock whose time moves only when the test says so. Each
// Sleep is recorded, which is how a test knows that a resolution has
// finished: Run sleeps again only after publishing.
type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers []*sleeper
	delays   []time.Duration // every Sleep request, in order
	changed  chan struct{}   // closed and replaced at each Sleep and wake
}

type sleeper struct {
	at   time.Time
	wake chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), changed: make(chan struct{})}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) bool {
	f.mu.Lock()
	s := &sleeper{at: f.now.Add(d), wake: make(chan struct{})}
	f.sleepers = append(f.sleepers, s)
	f.delays = append(f.delays, d)
	f.signalLocked()
	f.mu.Unlock()
	select {
	case <-s.wake:
		return true
	case <-ctx.Done():
		f.mu.Lock()
		if i := slices.Index(f.sleepers, s); i >= 0 {
			f.sleepers = slices.Delete(f.sleepers, i, i+1)
		}
		f.signalLocked()
		f.mu.Unlock()
		return false
	}
}

func (f *fakeClock) signalLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// advance moves time by d and wakes every sleeper that is due.
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.sleepers = slices.DeleteFunc(f.sleepers, func(s *sleeper) bool {
		if s.at.After(f.now) {
			return false
		}
		close(s.wake)
		return true
	})
	f.signalLocked()
}

// waitSleep waits for Sleep call number n (1-based) and returns its
// duration.
func (f *fakeClock) waitSleep(t *testing.T, n int) time.Duration {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		f.mu.Lock()
		got, ch := len(f.delays), f.changed
		var d time.Duration
		if got >= n {
			d = f.delays[n-1]
		}
		f.mu.Unlock()
		if got >= n {
			return d
		}
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("waiting for sleep #%d; %d happened", n, got)
		}
	}
}

// zone is an in-process DNS server's data, which tests change while it
// serves. Names are lower-case and fully qualified.
type zone struct {
	mu      sync.Mutex
	records map[string][]dns.RR // by owner name
	// mode: "" answers; "servfail" and "refused" answer with that
	// rcode; "drop" never answers; "truncate" answers over UDP with TC
	// set and no records (TCP gets the answer).
	mode string
	// extra adds the A and AAAA records of SRV targets to the additional
	// section.
	extra bool
	// queries counts the queries received, per "name type" and per
	// network ("udp", "tcp").
	queries map[string]int
	arrived chan struct{} // closed and replaced at each query
}

func newZone() *zone {
	return &zone{records: map[string][]dns.RR{}, queries: map[string]int{}, arrived: make(chan struct{})}
}

// set replaces every record of the zone with rrs, in zone-file syntax
// ("api.test. 30 IN A 10.0.0.1").
func (z *zone) set(t *testing.T, rrs ...string) {
	t.Helper()
	recs := map[string][]dns.RR{}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		n := strings.ToLower(rr.Header().Name)
		recs[n] = append(recs[n], rr)
	}
	z.mu.Lock()
	z.records = recs
	z.mu.Unlock()
}

func (z *zone) setMode(mode string) {
	z.mu.Lock()
	z.mode = mode
	z.mu.Unlock()
}

func (z *zone) count(key string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[key]
}

// waitQuery waits until the zone has received n queries in all.
func (z *zone) waitQuery(t *testing.T, n int) {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for {
		z.mu.Lock()
		got, ch := z.queries["all"], z.arrived
		z.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("waiting for query #%d; %d arrived", n, got)
		}
	}
}

// soa is the zone's SOA, with a negative TTL of 10s.
var soa = &dns.SOA{Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
	Ns: "ns.test.", Mbox: "admin.test.", Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 10}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	q := req.Question[0]
	network := w.LocalAddr().Network()
	z.queries[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]++
	z.queries[network]++
	z.queries["all"]++
	close(z.arrived)
	z.arrived = make(chan struct{})

	m := new(dns.Msg)
	m.SetReply(req)
	switch z.mode {
	case "drop":
		return
	case "servfail":
		m.Rcode = dns.RcodeServerFailure
	case "refused":
		m.Rcode = dns.RcodeRefused
	case "truncate":
		if network == "udp" {
			m.Truncated = true
			break
		}
		fallthrough
	default:
		recs, exists := z.records[strings.ToLower(q.Name)]
		for _, rr := range recs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
			if srv, ok := rr.(*dns.SRV); ok && q.Qtype == dns.TypeSRV && z.extra {
				for _, x := range z.records[strings.ToLower(srv.Target)] {
					if t := x.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
						m.Extra = append(m.Extra, dns.Copy(x))
					}
				}
			}
		}
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{dns.Copy(soa)}
		}
	}
	_ = w.WriteMsg(m)
}

// serve starts a DNS server for z on 127.0.0.1, UDP and TCP on one port,
// stopped when the test ends. It returns "127.0.0.1:port".
func serve(t *testing.T, z *zone) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // the TCP port of a free UDP port may be taken
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: ln, Handler: z}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			_ = s.Shutdown()
			<-done
		})
	}
	return pc.LocalAddr().String()
}

// harness runs a Watcher on a fake clock against a zone.
type harness struct {
	t       *testing.T
	z       *zone
	addr    string
	clk     *fakeClock
	w       *Watcher
	updates chan []Member
	logs    *syncBuffer
	sleeps  int // Sleep calls seen
	cancel  context.CancelFunc
	done    chan struct{}
}

func newHarness(t *testing.T, cfg Config, records ...string) *harness {
	t.Helper()
	h := &harness{t: t, z: newZone(), clk: newFakeClock(), updates: make(chan []Member, 100), logs: &syncBuffer{}}
	h.z.set(t, records...)
	h.addr = serve(t, h.z)
	if cfg.Resolver == "" {
		cfg.Resolver = h.addr
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w, err := New(cfg, log, h.clk, func(ms []Member) { h.updates <- ms })
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	return h
}

// run starts Run; the test's end stops it and checks that it returned.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.w.Run(ctx)
	}()
	h.t.Cleanup(h.stop)
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(hangGuard):
		h.t.Fatal("Run did not return after its context was cancelled")
	}
}

// next waits until Run has finished its next resolution and sleeps, and
// returns how long it sleeps.
func (h *harness) next() time.Duration {
	h.t.Helper()
	h.sleeps++
	return h.clk.waitSleep(h.t, h.sleeps)
}

// step lets the current sleep (of d) run out and waits for the next one.
func (h *harness) step(d time.Duration) time.Duration {
	h.t.Helper()
	h.clk.advance(d)
	return h.next()
}

// update returns the update published since the last call; the test
// fails when there is none. Call it after next or step: updates are
// published before Run sleeps.
func (h *harness) update() []Member {
	h.t.Helper()
	select {
	case ms := <-h.updates:
		return ms
	default:
		h.t.Fatal("no update was published")
		return nil
	}
}

// noUpdate fails the test when an update was published.
func (h *harness) noUpdate() {
	h.t.Helper()
	select {
	case ms := <-h.updates:
		h.t.Fatalf("unexpected update %v", ms)
	default:
	}
}

// syncBuffer is a bytes.Buffer for a logger used from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// count returns how many log lines contain substr.
func (s *syncBuffer) count(substr string) int {
	return strings.Count(s.String(), substr)
}

// members builds a member list from "addr/weight" strings.
func members(specs ...string) []Member {
	ms := make([]Member, 0, len(specs))
	for _, s := range specs {
		addr, w, _ := strings.Cut(s, "/")
		m := Member{Addr: addr, Weight: 1}
		if w != "" {
			m.Weight = atoi(w)
		}
		ms = append(ms, m)
	}
	return ms
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// watcherGoroutines lists the stacks of goroutines running code of this
// package's Watcher or of the DNS client.
func watcherGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "discovery.(*Watcher)") || strings.Contains(g, "miekg/dns.(*Client)") {
			found = append(found, g)
		}
	}
	return found
}
