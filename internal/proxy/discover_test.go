package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/connx/connx/internal/stats"
)

// dnsZone is a tiny authoritative DNS server for tests: the records of a
// zone the test replaces at will, on 127.0.0.1 over UDP.
type dnsZone struct {
	mu   sync.Mutex
	recs map[string][]dns.RR
	addr string
	// stop shuts the server down and waits for it (once; the test's
	// cleanup calls it too).
	stop func()
}

// startZone serves records (zone-file syntax) until the test ends.
func startZone(t *testing.T, records ...string) *dnsZone {
	t.Helper()
	z := &dnsZone{}
	z.set(t, records...)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: z}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	<-started
	z.stop = sync.OnceFunc(func() {
		_ = srv.Shutdown()
		<-done
	})
	t.Cleanup(z.stop)
	return z
}

func (z *dnsZone) set(t *testing.T, records ...string) {
	t.Helper()
	recs := map[string][]dns.RR{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		n := strings.ToLower(rr.Header().Name)
		recs[n] = append(recs[n], rr)
	}
	z.mu.Lock()
	z.recs = recs
	z.mu.Unlock()
}

func (z *dnsZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	recs, ok := z.recs[strings.ToLower(q.Name)]
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range recs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
		if srv, ok := rr.(*dns.SRV); ok && q.Qtype == dns.TypeSRV {
			for _, x := range z.recs[strings.ToLower(srv.Target)] {
				m.Extra = append(m.Extra, dns.Copy(x))
			}
		}
	}
	_ = w.WriteMsg(m)
}

// portOf is the port of "127.0.0.1:port".
func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestDiscoveryPools: a named pool follows the SRV records of a name and
// the default pool the A records of another; members that appear get
// traffic, members that go away get none, and a reload that keeps the
// settings keeps the watchers and the members' state.
func TestDiscoveryPools(t *testing.T) {
	a, b, c, d := namedEcho(t, "a"), namedEcho(t, "b"), namedEcho(t, "c"), namedEcho(t, "d")
	srvRR := func(addr string) string {
		return "_http._tcp.api.test. 1 IN SRV 0 10 " + portOf(addr) + " h.test."
	}
	z := startZone(t, srvRR(a), srvRR(b), "h.test. 1 IN A 127.0.0.1", "web.test. 1 IN A 127.0.0.1")
	yaml := fmt.Sprintf(`
discovery:
  dns: {name: "web.test", port: %s, resolver: "%s", minTTL: 1s, maxTTL: 1s}
pools:
  api:
    discovery:
      dns: {name: "_http._tcp.api.test", type: SRV, resolver: "%s", minTTL: 1s, maxTTL: 1s}
routes:
  - {match: {pathPrefix: "/api/"}, pool: api}
`, portOf(d), z.addr, z.addr)
	srv := startProxy(t, routedConfig(t, yaml))
	addr := srv.Addr().String()
	seenBy := func(path string, n int) map[string]int {
		rc := dialProxy(t, addr)
		got := map[string]int{}
		for range n {
			resp, _, s := rc.do("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", path, resp.StatusCode)
			}
			got[s.Name]++
		}
		return got
	}
	if got := seenBy("/api/x", 10); got["a"] != 5 || got["b"] != 5 {
		t.Errorf("api pool from SRV: %v, want a and b 5 each", got)
	}
	if got := seenBy("/", 3); got["d"] != 3 {
		t.Errorf("default pool from A: %v", got)
	}

	// The name moves from a, b to b, c: the pool follows at the TTL.
	z.set(t, srvRR(b), srvRR(c), "h.test. 1 IN A 127.0.0.1", "web.test. 1 IN A 127.0.0.1")
	waitFor(t, "the pool to follow the records", func() bool {
		got := seenBy("/api/x", 4)
		return got["a"] == 0 && got["b"] == 2 && got["c"] == 2
	})
	srv.mu.Lock()
	beB := srv.pools["api"].backends["127.0.0.1:"+portOf(b)]
	_, stillA := srv.pools["api"].backends["127.0.0.1:"+portOf(a)]
	pw := srv.watches["api"]
	srv.mu.Unlock()
	if beB == nil || stillA {
		t.Fatalf("api pool members after the change: b %v, a still there %v", beB != nil, stillA)
	}

	// A reload with the same discovery settings keeps the watcher and the
	// members' runtime state.
	if err := srv.Reload(routedConfig(t, yaml)); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	keptW, keptB := srv.watches["api"] == pw, srv.pools["api"].backends["127.0.0.1:"+portOf(b)] == beB
	srv.mu.Unlock()
	if !keptW || !keptB {
		t.Errorf("reload: watcher kept %v, member kept %v", keptW, keptB)
	}
	if got := seenBy("/api/x", 4); got["b"] != 2 || got["c"] != 2 {
		t.Errorf("after the reload: %v", got)
	}
}

// TestDiscoveryStart: a first resolution that fails or finds nothing
// refuses New (and Reload), unless startEmpty, where the pool starts
// empty (503) and fills in when the name appears.
func TestDiscoveryStart(t *testing.T) {
	be := namedEcho(t, "a")
	z := startZone(t, "other.test. 1 IN A 127.0.0.1")
	pool := func(extra string) string {
		return fmt.Sprintf(`
pools:
  api:
    discovery:
      dns: {name: "api.test", port: %s, resolver: "%s", minTTL: 1s, maxTTL: 1s%s}
routes:
  - {match: {pathPrefix: "/api/"}, pool: api}
`, portOf(be), z.addr, extra)
	}
	_, err := New(routedConfig(t, pool("")), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "pools.api.discovery: api.test has no members (set startEmpty: true") {
		t.Fatalf("New with a name that does not exist: %v", err)
	}
	srv := startProxy(t, routedConfig(t, fmt.Sprintf("backends: [\"http://%s\"]\n", be)))
	if err := srv.Reload(routedConfig(t, pool(""))); err == nil {
		t.Fatal("Reload with a name that does not exist succeeded")
	}
	if err := srv.Reload(routedConfig(t, pool(", startEmpty: true, emptyGrace: 0s"))); err != nil {
		t.Fatal(err)
	}
	rc := dialProxy(t, srv.Addr().String())
	rc.send("GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n")
	rc.expectStatusAndClose("GET", 503)
	z.set(t, "api.test. 1 IN A 127.0.0.1")
	waitFor(t, "the pool to fill in", func() bool {
		rc := dialProxy(t, srv.Addr().String())
		rc.send("GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _ := rc.response("GET")
		return resp.StatusCode == 200
	})
}

// discoveryLoad is clients sending requests through the proxy without
// pause, each on its own keep-alive connection, counting the responses
// by the backend that sent them and every request that did not get a
// 200.
type discoveryLoad struct {
	mu     sync.Mutex
	by     map[string]int // 200s by X-Backend
	ok     int
	failed []string // the first failures, for the report
	nfail  int
	stop   atomic.Bool
	wg     sync.WaitGroup
}

func startDiscoveryLoad(t *testing.T, url string, clients int) *discoveryLoad {
	l := &discoveryLoad{by: map[string]int{}}
	for range clients {
		tr := &http.Transport{MaxIdleConnsPerHost: 1}
		c := &http.Client{Transport: tr, Timeout: ioTimeout}
		l.wg.Go(func() {
			defer tr.CloseIdleConnections()
			for !l.stop.Load() {
				resp, err := c.Get(url)
				var name string
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					name = resp.Header.Get("X-Backend")
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				l.mu.Lock()
				if err != nil {
					l.nfail++
					if len(l.failed) < 10 {
						l.failed = append(l.failed, err.Error())
					}
				} else {
					l.ok++
					l.by[name]++
				}
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(l.halt)
	return l
}

// halt stops the clients and waits for them.
func (l *discoveryLoad) halt() {
	l.stop.Store(true)
	l.wg.Wait()
}

// counts returns the 200s so far, in all and from backend name.
func (l *discoveryLoad) counts(name string) (ok, from int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.by[name]
}

// more waits until n more requests have succeeded.
func (l *discoveryLoad) more(t *testing.T, n int) {
	t.Helper()
	from, _ := l.counts("")
	waitFor(t, fmt.Sprintf("%d more successful requests", n), func() bool {
		ok, _ := l.counts("")
		return ok >= from+n
	})
}

// TestDiscoveryUnderLoad: clients send requests through a pool whose
// members come from SRV records while the records change — a member
// added, one removed, one replaced — and then the DNS server stops
// answering altogether. The pool follows each change (the added member
// gets traffic, the removed one none), keeps its last members once DNS
// is gone, and not one request fails throughout.
func TestDiscoveryUnderLoad(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	addrs := map[string]string{}
	for _, n := range names {
		addrs[n] = namedEcho(t, n)
	}
	records := func(members ...string) []string {
		rrs := []string{"h.test. 1 IN A 127.0.0.1"}
		for _, m := range members {
			rrs = append(rrs, "_http._tcp.api.test. 1 IN SRV 0 10 "+portOf(addrs[m])+" h.test.")
		}
		return rrs
	}
	z := startZone(t, records("a", "b")...)
	srv := startProxy(t, routedConfig(t, fmt.Sprintf(`
pools:
  api:
    discovery:
      dns: {name: "_http._tcp.api.test", type: SRV, resolver: "%s", minTTL: 1s, maxTTL: 1s}
routes:
  - {match: {pathPrefix: "/api/"}, pool: api}
`, z.addr)))
	// pool returns the names of the api pool's members in the snapshot
	// in force, and its discovery state.
	pool := func() ([]string, stats.Discovery) {
		var snap stats.Snapshot
		srv.Stats(&snap)
		var ms []string
		for _, b := range snap.Backends {
			if b.Pool == "api" {
				for n, a := range addrs {
					if b.Addr == a {
						ms = append(ms, n)
					}
				}
			}
		}
		slices.Sort(ms)
		for _, p := range snap.Pools {
			if p.Name == "api" {
				return ms, p.Discovery
			}
		}
		t.Fatal("no pool api in the stats")
		return nil, stats.Discovery{}
	}
	if ms, d := pool(); !slices.Equal(ms, []string{"a", "b"}) || d.State != "ok" || d.Members != 2 || d.Type != "SRV" {
		t.Fatalf("at start: members %v, discovery %+v", ms, d)
	}

	const clients = 4
	load := startDiscoveryLoad(t, "http://"+srv.Addr().String()+"/api/x", clients)
	load.more(t, 50)

	// Each step changes the records, waits for the snapshot to have the
	// new members, for every one of them to get traffic, and for a
	// member that left to get none.
	for _, step := range []struct {
		what    string
		members []string
		gone    string
	}{
		{"c added", []string{"a", "b", "c"}, ""},
		{"a removed", []string{"b", "c"}, "a"},
		{"b replaced by d", []string{"c", "d"}, "b"},
	} {
		z.set(t, records(step.members...)...)
		waitFor(t, "the pool to follow: "+step.what, func() bool {
			ms, _ := pool()
			return slices.Equal(ms, step.members)
		})
		for _, m := range step.members {
			_, from := load.counts(m)
			waitFor(t, step.what+": traffic to "+m, func() bool {
				_, n := load.counts(m)
				return n > from
			})
		}
		if step.gone != "" {
			// Requests that picked it before the change may still be
			// finishing; after them, it gets nothing.
			load.more(t, 100)
			_, before := load.counts(step.gone)
			load.more(t, 200)
			if _, after := load.counts(step.gone); after != before {
				t.Errorf("%s: %s got %d requests after it left the pool", step.what, step.gone, after-before)
			}
		}
	}

	// The DNS server goes away: resolutions fail, the pool keeps c and d,
	// and requests keep succeeding.
	z.stop()
	_, d := pool()
	failures := d.Failures
	waitFor(t, "two failed resolutions", func() bool {
		_, d := pool()
		return d.State == "failing" && d.Failures >= failures+2
	})
	load.more(t, 200)
	ms, d := pool()
	if !slices.Equal(ms, []string{"c", "d"}) || d.Members != 2 || d.State != "failing" || d.LastError == "" {
		t.Errorf("DNS gone: members %v, discovery %+v; want c and d kept, failing", ms, d)
	}
	_, fromC := load.counts("c")
	_, fromD := load.counts("d")
	load.more(t, 100)
	if _, c := load.counts("c"); c == fromC {
		t.Error("DNS gone: c gets no more traffic")
	}
	if _, n := load.counts("d"); n == fromD {
		t.Error("DNS gone: d gets no more traffic")
	}

	load.halt()
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("%d requests succeeded (%v), %d failed", load.ok, load.by, load.nfail)
	if load.nfail > 0 {
		t.Errorf("%d requests failed while members changed; first: %q", load.nfail, load.failed)
	}
}

// TestDiscoveryWatchersEndWithServe: once Serve has returned, no DNS
// watcher is left running, not even one waiting for a nameserver that
// does not answer.
func TestDiscoveryWatchersEndWithServe(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	queries := make(chan struct{}, 64)
	go func() { // a nameserver that reads queries and never answers
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case queries <- struct{}{}:
			default:
			}
		}
	}()
	cfg := routedConfig(t, fmt.Sprintf(`
pools:
  api:
    discovery:
      dns: {name: "api.test", port: 80, resolver: "%s", timeout: 200ms, startEmpty: true}
routes:
  - {match: {pathPrefix: "/"}, pool: api}
`, pc.LocalAddr()))
	srv, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	<-srv.Ready()
	<-queries // New's query
	<-queries // the watcher's: it waits in it (or in its backoff) now
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	go func() { _ = srv.Stop(ctx) }()
	select {
	case <-done:
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return")
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "discovery.(*Watcher).Run") {
		t.Fatalf("a DNS watcher outlived Serve:\n%s", stacks)
	}
}
