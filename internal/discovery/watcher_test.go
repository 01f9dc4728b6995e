package discovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func aConfig(name string, port int) Config {
	c := DefaultConfig(name)
	c.Port = port
	c.MinTTL, c.MaxTTL = 5*time.Second, time.Minute
	return c
}

func srvConfig(name string) Config {
	c := DefaultConfig(name)
	c.Type = TypeSRV
	return c
}

// TestTTLClamped: the name is resolved again when the answer's TTL runs
// out, clamped to minTTL..maxTTL; the smallest TTL of the answer counts.
func TestTTLClamped(t *testing.T) {
	h := newHarness(t, aConfig("api.test", 8080), "api.test. 30 IN A 10.0.0.1")
	h.run()
	if d := h.next(); d != 30*time.Second {
		t.Fatalf("first sleep %v, want the TTL 30s", d)
	}
	if got, want := h.update(), members("10.0.0.1:8080"); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	for _, c := range []struct {
		records []string
		want    time.Duration
	}{
		{[]string{"api.test. 1 IN A 10.0.0.1"}, 5 * time.Second},                                   // below minTTL
		{[]string{"api.test. 0 IN A 10.0.0.1"}, 5 * time.Second},                                   // TTL 0 (Consul's default)
		{[]string{"api.test. 3600 IN A 10.0.0.1"}, time.Minute},                                    // above maxTTL
		{[]string{"api.test. 3600 IN A 10.0.0.1", "api.test. 12 IN A 10.0.0.1"}, 12 * time.Second}, // the smallest
		{[]string{"api.test. 45 IN A 10.0.0.1"}, 45 * time.Second},
	} {
		h.z.set(t, c.records...)
		prev := h.clk.Now()
		last := h.w.Status().Next.Sub(prev)
		if d := h.step(last); d != c.want {
			t.Errorf("%q: sleep %v, want %v", c.records, d, c.want)
		}
		h.noUpdate() // same member every time
	}
	if n := h.z.count("api.test. A"); n != 6 {
		t.Errorf("%d queries, want 6 (one per TTL)", n)
	}
	if s := h.w.Status(); s.State != StateOK || s.Members != 1 || s.Err != nil || s.Resolutions != 6 || s.Failures != 0 {
		t.Errorf("status %+v", s)
	}
}

// TestMembersFollowRecords: changes to the records are published, sorted
// and without duplicates; an unchanged set (in any order) is not.
func TestMembersFollowRecords(t *testing.T) {
	h := newHarness(t, aConfig("api.test.", 9000),
		"api.test. 10 IN A 10.0.0.10", "api.test. 10 IN A 10.0.0.2")
	h.run()
	h.next()
	if got, want := h.update(), members("10.0.0.2:9000", "10.0.0.10:9000"); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v (numeric order)", got, want)
	}
	steps := []struct {
		records []string
		want    []Member // nil: no update
	}{
		{[]string{"api.test. 10 IN A 10.0.0.2", "api.test. 10 IN A 10.0.0.10"}, nil},
		{[]string{"api.test. 10 IN A 10.0.0.2", "api.test. 10 IN A 10.0.0.3", "api.test. 10 IN A 10.0.0.10"},
			members("10.0.0.2:9000", "10.0.0.3:9000", "10.0.0.10:9000")},
		{[]string{"api.test. 10 IN A 10.0.0.3"}, members("10.0.0.3:9000")},
		// A CNAME chain: the addresses at its end are the members.
		{[]string{"api.test. 10 IN CNAME real.test.", "real.test. 10 IN A 10.0.0.4"}, nil},
	}
	for i, s := range steps {
		h.z.set(t, s.records...)
		h.step(10 * time.Second)
		if s.want == nil {
			h.noUpdate()
			continue
		}
		if got := h.update(); !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: members %v, want %v", i, got, s.want)
		}
	}
	if !strings.Contains(h.logs.String(), "added=[10.0.0.3:9000]") {
		t.Errorf("the change log line does not list the added member:\n%s", h.logs)
	}
}

// TestCNAMEAnswer: a server that answers a CNAME and its target's records
// together (as recursive resolvers do) gives the target's addresses.
func TestCNAMEAnswer(t *testing.T) {
	h := newHarness(t, aConfig("alias.test", 80), "alias.test. 10 IN CNAME real.test.")
	// The zone answers only the CNAME; the target's records are not in
	// the answer, so the name has no A records.
	if err := h.w.Resolve(context.Background()); !errors.Is(err, ErrNoMembers) {
		t.Fatalf("Resolve: %v, want ErrNoMembers", err)
	}
	h.z.set(t, "alias.test. 10 IN CNAME real.test.", "alias.test. 20 IN A 10.0.0.9")
	if err := h.w.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.update() // the empty list of the first answer
	if got, want := h.update(), members("10.0.0.9:80"); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
}

func TestAAAA(t *testing.T) {
	c := aConfig("v6.test", 443)
	c.Type = TypeAAAA
	h := newHarness(t, c, "v6.test. 10 IN AAAA 2001:db8::2", "v6.test. 10 IN AAAA 2001:db8::1", "v6.test. 10 IN A 10.0.0.1")
	if err := h.w.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := members("[2001:db8::1]:443", "[2001:db8::2]:443")
	if got := h.update(); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if got := want[0].URL(); got != "http://[2001:db8::1]:443" {
		t.Errorf("URL %q", got)
	}
}

// TestSRV: port and weight come from each record; the lowest priority
// wins; targets resolve through the additional section or queries.
func TestSRV(t *testing.T) {
	const name = "_http._tcp.api.test."
	for _, extra := range []bool{true, false} {
		t.Run(fmt.Sprintf("additional=%v", extra), func(t *testing.T) {
			h := newHarness(t, srvConfig(name),
				name+" 30 IN SRV 10 5 8081 a.test.",
				name+" 30 IN SRV 10 20 8082 b.test.",
				name+" 30 IN SRV 20 50 8083 backup.test.", // higher priority value: not used
				"a.test. 15 IN A 10.0.1.1",
				"b.test. 60 IN A 10.0.1.2",
				"b.test. 60 IN AAAA 2001:db8::2", // b has an A record: IPv4 first
				"backup.test. 60 IN A 10.0.9.9",
			)
			h.z.mu.Lock()
			h.z.extra = extra
			h.z.mu.Unlock()
			h.run()
			if d := h.next(); d != 15*time.Second {
				t.Errorf("sleep %v, want 15s (the target's TTL is the smallest)", d)
			}
			want := members("10.0.1.1:8081/5", "10.0.1.2:8082/20")
			if got := h.update(); !reflect.DeepEqual(got, want) {
				t.Fatalf("members %v, want %v", got, want)
			}
			queried := h.z.count("a.test. A") + h.z.count("b.test. A")
			if extra && queried != 0 {
				t.Errorf("%d target queries with the addresses in the additional section", queried)
			} else if !extra && queried != 2 {
				t.Errorf("%d target queries, want 2", queried)
			}
			if h.z.count("backup.test. A") != 0 {
				t.Error("the target of a higher priority value was resolved")
			}
		})
	}
}

// TestSRVWeights: SRV weights (0-65535) become ConnX weights (1-1000) in
// proportion; records sharing an address add up; an IPv6-only target is
// used; "." means no service.
func TestSRVWeights(t *testing.T) {
	const name = "_svc._tcp.w.test."
	cases := []struct {
		records []string
		want    []Member
	}{
		{[]string{name + " 5 IN SRV 0 0 80 a.test.", name + " 5 IN SRV 0 0 81 a.test."},
			members("10.0.0.1:80/1", "10.0.0.1:81/1")},
		{[]string{name + " 5 IN SRV 0 0 80 a.test.", name + " 5 IN SRV 0 300 81 a.test."},
			members("10.0.0.1:80/1", "10.0.0.1:81/300")},
		{[]string{name + " 5 IN SRV 0 65535 80 a.test.", name + " 5 IN SRV 0 6553 81 a.test."},
			members("10.0.0.1:80/1000", "10.0.0.1:81/100")},
		{[]string{name + " 5 IN SRV 0 10 80 a.test.", name + " 5 IN SRV 0 15 80 a.test."},
			members("10.0.0.1:80/25")},
		{[]string{name + " 5 IN SRV 0 7 80 v6only.test."},
			members("[2001:db8::6]:80/7")},
		{[]string{name + " 5 IN SRV 0 7 80 .", name + " 5 IN SRV 0 7 81 a.test."},
			members("10.0.0.1:81/7")},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			records := append([]string{"a.test. 5 IN A 10.0.0.1", "v6only.test. 5 IN AAAA 2001:db8::6"}, c.records...)
			h := newHarness(t, srvConfig(name), records...)
			if err := h.w.Resolve(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := h.update(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("members %v, want %v", got, c.want)
			}
		})
	}
	h := newHarness(t, srvConfig(name), name+" 5 IN SRV 0 1 80 .")
	if err := h.w.Resolve(context.Background()); !errors.Is(err, ErrNoMembers) || !strings.Contains(err.Error(), `"."`) {
		t.Errorf("target \".\": %v, want ErrNoMembers saying why", err)
	}
}

// TestFailureKeepsLastGood: SERVFAIL, REFUSED and no answer at all keep
// the members, retry with a doubling backoff capped at maxTTL, log once,
// and recover.
func TestFailureKeepsLastGood(t *testing.T) {
	for _, mode := range []string{"servfail", "refused", "drop"} {
		t.Run(mode, func(t *testing.T) {
			c := aConfig("api.test", 80)
			c.MaxTTL = 10 * time.Second
			c.Timeout = 50 * time.Millisecond // "drop": each query waits for it
			h := newHarness(t, c, "api.test. 10 IN A 10.0.0.1")
			h.run()
			h.next()
			h.update()

			h.z.setMode(mode)
			d := h.step(10 * time.Second)
			var backoff []time.Duration
			for range 5 {
				backoff = append(backoff, d)
				d = h.step(d)
			}
			if want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second}; !reflect.DeepEqual(backoff, want) {
				t.Errorf("retries after %v, want %v", backoff, want)
			}
			h.noUpdate()
			s := h.w.Status()
			if s.State != StateFailing || s.Members != 1 || s.Err == nil || errors.Is(s.Err, ErrNoMembers) || s.Failures != 6 {
				t.Errorf("status %+v", s)
			}
			if n := h.logs.count("resolution failed"); n != 1 {
				t.Errorf("%d log lines about the failure, want 1:\n%s", n, h.logs)
			}

			// Recovery: the same member is not published again; a new
			// one is.
			h.z.setMode("")
			h.z.set(t, "api.test. 10 IN A 10.0.0.1", "api.test. 10 IN A 10.0.0.2")
			if d := h.step(d); d != 10*time.Second {
				t.Errorf("sleep after recovery %v, want the TTL", d)
			}
			if got, want := h.update(), members("10.0.0.1:80", "10.0.0.2:80"); !reflect.DeepEqual(got, want) {
				t.Errorf("members %v, want %v", got, want)
			}
			if n := h.logs.count("resolving again"); n != 1 {
				t.Errorf("%d recovery log lines, want 1:\n%s", n, h.logs)
			}
			if s := h.w.Status(); s.State != StateOK || s.Err != nil {
				t.Errorf("status after recovery %+v", s)
			}
		})
	}
}

// TestFailureBeforeFirstAnswer: with nothing published yet a failure
// publishes nothing; Resolve reports it.
func TestFailureBeforeFirstAnswer(t *testing.T) {
	h := newHarness(t, aConfig("api.test", 80), "api.test. 10 IN A 10.0.0.1")
	h.z.setMode("servfail")
	err := h.w.Resolve(context.Background())
	if err == nil || errors.Is(err, ErrNoMembers) || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("Resolve: %v, want a SERVFAIL failure", err)
	}
	h.noUpdate()
	// Run retries after the backoff, not at once.
	h.run()
	if d := h.next(); d != time.Second {
		t.Errorf("first sleep of Run %v, want the backoff after Resolve's failure, 1s", d)
	}
}

// TestEmptyAnswer: NXDOMAIN or no records keep the last members for
// emptyGrace, then the empty list is published; members coming back are
// published.
func TestEmptyAnswer(t *testing.T) {
	for _, empty := range []string{"nxdomain", "nodata"} {
		t.Run(empty, func(t *testing.T) {
			c := aConfig("api.test", 80)
			c.EmptyGrace = 30 * time.Second
			h := newHarness(t, c, "api.test. 10 IN A 10.0.0.1")
			h.run()
			h.next()
			h.update()

			if empty == "nxdomain" {
				h.z.set(t)
			} else {
				h.z.set(t, "api.test. 10 IN TXT \"no address\"")
			}
			var waited time.Duration
			d := h.step(10 * time.Second)
			for waited < c.EmptyGrace {
				if d != 10*time.Second && waited+d != c.EmptyGrace {
					t.Fatalf("sleep %v while holding, want the SOA's negative TTL (10s) or the rest of the grace", d)
				}
				h.noUpdate()
				if s := h.w.Status(); s.State != StateHolding || s.Members != 1 || !errors.Is(s.Err, ErrNoMembers) {
					t.Fatalf("status while holding %+v", s)
				}
				waited += d
				d = h.step(d)
			}
			if got := h.update(); len(got) != 0 {
				t.Fatalf("after emptyGrace: members %v, want none", got)
			}
			if s := h.w.Status(); s.State != StateEmpty || s.Members != 0 {
				t.Errorf("status after the grace %+v", s)
			}
			h.z.set(t, "api.test. 10 IN A 10.0.0.5")
			h.step(d)
			if got, want := h.update(), members("10.0.0.5:80"); !reflect.DeepEqual(got, want) {
				t.Errorf("members %v, want %v", got, want)
			}
			for _, line := range []string{"keeping the last ones for emptyGrace", "the pool is empty", "resolving again"} {
				if n := h.logs.count(line); n != 1 {
					t.Errorf("%d log lines %q, want 1:\n%s", n, line, h.logs)
				}
			}
		})
	}
}

// TestEmptyGraceZero: with emptyGrace 0 the empty list is published at
// the first empty answer; a member list that comes and goes is published
// each time.
func TestEmptyGraceZero(t *testing.T) {
	c := aConfig("api.test", 80)
	c.EmptyGrace = 0
	h := newHarness(t, c, "api.test. 10 IN A 10.0.0.1")
	ctx := context.Background()
	if err := h.w.Resolve(ctx); err != nil {
		t.Fatal(err)
	}
	h.update()
	h.z.set(t)
	if err := h.w.Resolve(ctx); !errors.Is(err, ErrNoMembers) || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("Resolve: %v", err)
	}
	if got := h.update(); len(got) != 0 {
		t.Fatalf("members %v, want none", got)
	}
	if err := h.w.Resolve(ctx); !errors.Is(err, ErrNoMembers) {
		t.Fatal(err)
	}
	h.noUpdate()
}

// TestFailureWhileHolding: a failure while holding keeps the members, and
// the grace runs from the first empty answer, not from the last.
func TestFailureWhileHolding(t *testing.T) {
	c := aConfig("api.test", 80)
	c.EmptyGrace = 15 * time.Second
	h := newHarness(t, c, "api.test. 10 IN A 10.0.0.1")
	h.run()
	h.next()
	h.update()
	h.z.set(t)
	d := h.step(10 * time.Second) // holding; empty since now
	if d != 10*time.Second {
		t.Fatalf("sleep %v", d)
	}
	h.z.setMode("servfail")
	d = h.step(d) // failing, 10s into the grace
	h.noUpdate()
	h.z.setMode("")
	h.step(d) // 11s into the grace: still holding
	h.noUpdate()
	if s := h.w.Status(); s.State != StateHolding {
		t.Fatalf("status %+v", s)
	}
	h.step(4 * time.Second) // 15s: empty
	if got := h.update(); len(got) != 0 {
		t.Fatalf("members %v, want none", got)
	}
}

// TestTruncatedAnswerOverTCP: a truncated UDP answer is asked again over
// TCP.
func TestTruncatedAnswerOverTCP(t *testing.T) {
	h := newHarness(t, aConfig("api.test", 80), "api.test. 10 IN A 10.0.0.1")
	h.z.setMode("truncate")
	if err := h.w.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := h.update(), members("10.0.0.1:80"); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if u, tc := h.z.count("udp"), h.z.count("tcp"); u != 1 || tc != 1 {
		t.Errorf("%d UDP and %d TCP queries, want 1 and 1", u, tc)
	}
}

// TestResolvConf: with no resolver the nameservers of resolv.conf are
// asked in order, the next one when one fails.
func TestResolvConf(t *testing.T) {
	c := aConfig("api.test", 80)
	z := newZone()
	z.set(t, "api.test. 10 IN A 10.0.0.1")
	addr := serve(t, z)
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	// 127.0.0.2: nothing listens there on the port (UDP: connection refused).
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.2\nnameserver 127.0.0.1\noptions timeout:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []Member
	w, err := New(c, nil, newFakeClock(), func(ms []Member) { got = ms })
	if err != nil {
		t.Fatal(err)
	}
	w.resolvConf, w.resolvPort = conf, port
	if err := w.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := members("10.0.0.1:80"); !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	w.resolvConf = filepath.Join(t.TempDir(), "missing")
	if err := w.Resolve(context.Background()); err == nil || !strings.Contains(err.Error(), "reading the nameservers") {
		t.Fatalf("missing resolv.conf: %v", err)
	}
}

// TestMaxMembers: a larger answer is cut to maxMembers members, the same
// subset at each resolution; different Watchers take different subsets.
func TestMaxMembers(t *testing.T) {
	var records []string
	for i := range 12 {
		records = append(records, fmt.Sprintf("big.test. 10 IN A 10.0.0.%d", i+1))
	}
	c := aConfig("big.test", 80)
	c.MaxMembers = 3
	h := newHarness(t, c, records...)
	c.Resolver = h.addr
	h.run()
	h.next()
	first := h.update()
	if len(first) != 3 {
		t.Fatalf("%d members, want 3", len(first))
	}
	for range 3 {
		h.step(10 * time.Second)
	}
	h.noUpdate() // the same subset each time
	if s := h.w.Status(); !s.Capped || s.Members != 3 {
		t.Errorf("status %+v", s)
	}
	if n := h.logs.count("more members than maxMembers"); n != 1 {
		t.Errorf("%d log lines about the cap, want 1", n)
	}
	subsets := map[string]bool{}
	for range 20 {
		var got []Member
		w, err := New(c, nil, newFakeClock(), func(ms []Member) { got = ms })
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Resolve(context.Background()); err != nil {
			t.Fatal(err)
		}
		subsets[fmt.Sprint(got)] = true
	}
	if len(subsets) < 2 {
		t.Errorf("20 Watchers took the same subset: %v", subsets)
	}
}

// TestStopNoLeak: cancelling Run ends it while it sleeps and while a
// query waits for an answer (well before the query's timeout), and leaves
// no goroutine behind.
func TestStopNoLeak(t *testing.T) {
	t.Run("sleeping", func(t *testing.T) {
		h := newHarness(t, aConfig("api.test", 80), "api.test. 10 IN A 10.0.0.1")
		h.run()
		h.next()
		h.stop()
		if g := watcherGoroutines(); len(g) > 0 {
			t.Fatalf("goroutines left after Run returned:\n%s", strings.Join(g, "\n\n"))
		}
	})
	t.Run("querying", func(t *testing.T) {
		c := aConfig("api.test", 80)
		c.Timeout = MaxTimeout // longer than the hang guard: only cancelling ends the query in time
		h := newHarness(t, c, "api.test. 10 IN A 10.0.0.1")
		h.z.setMode("drop")
		h.run()
		h.z.waitQuery(t, 1)
		h.stop()
		if g := watcherGoroutines(); len(g) > 0 {
			t.Fatalf("goroutines left after Run returned:\n%s", strings.Join(g, "\n\n"))
		}
		if s := h.w.Status(); s.Resolutions != 0 || s.State != StateStarting {
			t.Errorf("a cancelled resolution changed the status: %+v", s)
		}
		h.noUpdate()
	})
}

func TestCheck(t *testing.T) {
	ok := aConfig("api.test", 80)
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		edit func(*Config)
		key  string
		msg  string
	}{
		{func(c *Config) { c.Name = "" }, "name", "is required"},
		{func(c *Config) { c.Name = "10.0.0.1" }, "name", "not an address"},
		{func(c *Config) { c.Name = "a..b" }, "name", "must be a DNS name"},
		{func(c *Config) { c.Type = "MX" }, "type", `must be A, AAAA or SRV, got "MX"`},
		{func(c *Config) { c.Port = 0 }, "port", "is required with type A"},
		{func(c *Config) { c.Port = 70000 }, "port", "between 1 and 65535"},
		{func(c *Config) { c.Type = TypeSRV }, "port", "must not be set with type SRV"},
		{func(c *Config) { c.Resolver = "dns.google:53" }, "resolver", "not looked up by name"},
		{func(c *Config) { c.Resolver = "127.0.0.1:0" }, "resolver", "port must be"},
		{func(c *Config) { c.MinTTL = 0 }, "minTTL", "at least 1s"},
		{func(c *Config) { c.MaxTTL = time.Second }, "maxTTL", "between minTTL"},
		{func(c *Config) { c.Timeout = 0 }, "timeout", "greater than 0"},
		{func(c *Config) { c.EmptyGrace = -1 }, "emptyGrace", "at least 0s"},
		{func(c *Config) { c.MaxMembers = 0 }, "maxMembers", "between 1 and 10000"},
	}
	for _, tc := range cases {
		c := ok
		tc.edit(&c)
		err := c.Check()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
			t.Errorf("%s: got %v, want %s: ...%s...", tc.key, err, tc.key, tc.msg)
		}
	}
	for _, r := range []string{"127.0.0.1", "127.0.0.1:8600", "::1", "[::1]:53"} {
		c := ok
		c.Resolver = r
		if err := c.Check(); err != nil {
			t.Errorf("resolver %q: %v", r, err)
		}
	}
	if _, err := New(Config{}, nil, nil, func([]Member) {}); err == nil {
		t.Error("New accepted a zero Config")
	}
}

func TestNormalizeWeights(t *testing.T) {
	for _, c := range []struct{ in, want []int }{
		{[]int{0, 0}, []int{1, 1}},
		{[]int{0, 5}, []int{1, 5}},
		{[]int{1000, 1}, []int{1000, 1}},
		{[]int{2000, 1000, 1}, []int{1000, 500, 1}},
		{[]int{65535, 65535}, []int{1000, 1000}},
	} {
		ms := make([]Member, len(c.in))
		for i, w := range c.in {
			ms[i].Weight = w
		}
		normalizeWeights(ms)
		got := make([]int, len(ms))
		for i, m := range ms {
			got[i] = m.Weight
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v -> %v, want %v", c.in, got, c.want)
		}
	}
}

// TestErrorMessages: errors name the query and the nameserver's answer.
func TestErrorMessages(t *testing.T) {
	h := newHarness(t, aConfig("api.test", 80))
	h.z.setMode("servfail")
	err := h.w.Resolve(context.Background())
	if want := "discovery: A api.test.: " + h.addr + ": SERVFAIL"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	h.z.setMode("")
	err = h.w.Resolve(context.Background())
	if want := "discovery: A api.test: NXDOMAIN (no such name): no members"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
