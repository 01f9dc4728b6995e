package proxy

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// dnsZone is a tiny authoritative DNS server for tests: the records of a
// zone the test replaces at will, on 127.0.0.1 over UDP.
type dnsZone struct {
	mu   sync.Mutex
	recs map[string][]dns.RR
	addr string
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
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
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
