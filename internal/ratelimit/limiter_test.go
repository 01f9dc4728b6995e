package ratelimit

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGlobal(t *testing.T) {
	c := &clock{}
	l := newLimiter(t, global(10, 3), nil, c)
	a, b := req("192.0.2.1", "/"), req("192.0.2.2", "/")
	want := []Decision{
		{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * time.Millisecond},
		{Allowed: true, Limit: 3, Remaining: 1, Reset: 100 * time.Millisecond},
		{Allowed: true, Limit: 3, Remaining: 0, Reset: 100 * time.Millisecond},
		{Allowed: false, Limit: 3, Remaining: 0, Reset: 100 * time.Millisecond, RetryAfter: 100 * time.Millisecond},
	}
	for i, w := range want {
		r := a
		if i%2 == 1 {
			r = b // clients share the one bucket
		}
		got := l.Decide(r)
		got.pol = nil
		if got != w {
			t.Fatalf("request %d: %+v, want %+v", i, got, w)
		}
	}
	c.advance(250 * time.Millisecond) // 2.5 tokens
	if n := drain(l, a); n != 2 {
		t.Errorf("after 250ms: %d allowed, want 2", n)
	}
	if d := l.Decide(a); d.RetryAfter != 50*time.Millisecond {
		t.Errorf("RetryAfter = %v, want 50ms", d.RetryAfter)
	}
	st := l.Stats()
	if st.Allowed != 5 || st.Rejected != 3 || st.Keys != 0 {
		t.Errorf("Stats = %+v, want 5 allowed, 3 rejected, 0 keys", st)
	}
}

func TestPerClientIsolation(t *testing.T) {
	c := &clock{}
	l := newLimiter(t, perClient(1, 5), nil, c)
	a, b := req("192.0.2.1", "/"), req("2001:db8::1", "/")
	if n := drain(l, a); n != 5 {
		t.Fatalf("client a: %d allowed, want the burst 5", n)
	}
	if n := drain(l, b); n != 5 {
		t.Errorf("client b after a was drained: %d allowed, want 5", n)
	}
	// Another address in b's /64 is the same client.
	if d := l.Decide(req("2001:db8::ffff", "/")); d.Allowed {
		t.Error("same /64 got a fresh bucket")
	}
	c.advance(2 * time.Second)
	if n := drain(l, a); n != 2 {
		t.Errorf("client a after 2s: %d allowed, want 2", n)
	}
	if st := l.Stats(); st.Keys != 2 {
		t.Errorf("Keys = %d, want 2", st.Keys)
	}
}

func TestTrustedProxyKeys(t *testing.T) {
	c := &clock{}
	cfg := perClient(1, 2)
	cfg.TrustedProxies = prefixes("::ffff:10.0.0.0/104") // as 10.0.0.0/8
	l := newLimiter(t, cfg, nil, c)
	viaProxy := func(client string) *Request {
		r := req("10.0.0.1", "/")
		l.Collect(r, []byte("X-Forwarded-For"), []byte(client))
		return r
	}
	if n := drain(l, viaProxy("198.51.100.1")); n != 2 {
		t.Fatalf("client behind proxy: %d allowed, want 2", n)
	}
	if n := drain(l, viaProxy("198.51.100.2")); n != 2 {
		t.Errorf("second client behind the same proxy: %d allowed, want its own 2", n)
	}
	// An untrusted client cannot pick its bucket with the header.
	spoof := req("203.0.113.5", "/")
	l.Collect(spoof, []byte("x-forwarded-for"), []byte("198.51.100.77"))
	if n := drain(l, spoof); n != 2 {
		t.Fatalf("spoofer: %d allowed, want 2", n)
	}
	spoof2 := req("203.0.113.5", "/")
	l.Collect(spoof2, []byte("X-FORWARDED-FOR"), []byte("198.51.100.78"))
	if d := l.Decide(spoof2); d.Allowed {
		t.Error("spoofer got a fresh bucket by changing X-Forwarded-For")
	}
}

func TestHeaderKeys(t *testing.T) {
	c := &clock{}
	cfg := perClient(1, 2)
	cfg.Key = "header:X-Api-Key"
	l := newLimiter(t, cfg, nil, c)
	withKey := func(peer, k string) *Request {
		r := req(peer, "/")
		l.Collect(r, []byte("x-api-key"), []byte(k))
		l.Collect(r, []byte("X-API-KEY"), []byte("second value ignored"))
		return r
	}
	if n := drain(l, withKey("192.0.2.1", "alpha")); n != 2 {
		t.Fatalf("key alpha: %d allowed, want 2", n)
	}
	// The same key from another address shares the bucket.
	if d := l.Decide(withKey("192.0.2.99", "alpha")); d.Allowed {
		t.Error("key alpha from a second address got a fresh bucket")
	}
	if n := drain(l, withKey("192.0.2.1", "beta")); n != 2 {
		t.Errorf("key beta: %d allowed, want 2", n)
	}
	// Without the header (or with an empty one) the client IP is the key.
	if n := drain(l, req("192.0.2.1", "/")); n != 2 {
		t.Errorf("no header: %d allowed, want 2 (by IP)", n)
	}
	if d := l.Decide(withKey("192.0.2.1", "")); d.Allowed {
		t.Error("empty header value did not fall back to the drained IP bucket")
	}
	if st := l.Stats(); st.Keys != 3 {
		t.Errorf("Keys = %d, want 3", st.Keys)
	}
}

func TestExempt(t *testing.T) {
	c := &clock{}
	cfg := global(1, 1)
	cfg.Exempt = []string{"/metrics", "/health/*", "/livez*"}
	l := newLimiter(t, cfg, nil, c)
	l.Decide(req("192.0.2.1", "/")) // the bucket is now empty
	tests := []struct {
		path   string
		exempt bool
	}{
		{"/metrics", true},
		{"/metrics?format=prometheus", true},
		{"/metrics/", false},
		{"/metricsx", false},
		{"/health/", true},
		{"/health/ready", true},
		{"/health", false},
		{"/livez", true},
		{"/livez/deep?x=1", true},
		{"/health/../admin", false},
		{"/health/./x", false},
		{"/health/..", false},
		{"/health/%2e%2e/admin", false},
		{"/health\\..\\admin", false},
		{"/health/..x/y", true}, // not a dot segment
		{"/api", false},
		{"", false},
		{"*", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			d := l.Decide(req("192.0.2.1", tt.path))
			if d.Allowed != tt.exempt {
				t.Errorf("Allowed = %v, want %v", d.Allowed, tt.exempt)
			}
			if tt.exempt && (d.Limit != 0 || len(d.AppendHeaders(nil)) != 0) {
				t.Errorf("exempt decision %+v carries limits", d)
			}
		})
	}
	if st := l.Stats(); st.Exempt != 7 {
		t.Errorf("Exempt = %d, want 7", st.Exempt)
	}
}

func TestDisabled(t *testing.T) {
	var nilL *Limiter
	off := newLimiter(t, Config{}, nil, &clock{})
	for name, l := range map[string]*Limiter{"nil": nilL, "disabled": off} {
		t.Run(name, func(t *testing.T) {
			r := req("192.0.2.1", "/")
			l.Collect(r, []byte("X-Forwarded-For"), []byte("1.2.3.4"))
			for range 1000 {
				if d := l.Decide(r); !d.Allowed || d.Limit != 0 {
					t.Fatalf("Decide = %+v", d)
				}
			}
			if r.ForwardedFor != nil {
				t.Error("collected a header it does not need")
			}
			if st := l.Stats(); st != (Stats{}) {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := perClient(10, 20)
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings, one per error
	}{
		{"valid", func(*Config) {}, nil},
		{"defaults are zero", func(c *Config) { c.MaxClients, c.IdleTTL, c.IPv6Prefix, c.Key = 0, 0, 0, "" }, nil},
		{"rate", func(c *Config) { c.RequestsPerSec = 0 }, []string{"rateLimit.requestsPerSec: must be greater than 0"}},
		{"rate too high", func(c *Config) { c.RequestsPerSec = 2e9 }, []string{"at most 1e+09"}},
		{"burst", func(c *Config) { c.Burst = 0 }, []string{"rateLimit.burst: must be at least 1, got 0"}},
		{"burst too long", func(c *Config) { c.RequestsPerSec, c.Burst = 0.001, 1e9 }, []string{"rateLimit.burst: must be at most 1e9 seconds"}},
		{"key", func(c *Config) { c.Key = "cookie" }, []string{`rateLimit.key: must be "client-ip" or "header:Name", got "cookie"`}},
		{"key header name", func(c *Config) { c.Key = "header:X Api" }, []string{`"X Api" is not a valid header name`}},
		{"empty header name", func(c *Config) { c.Key = "header:" }, []string{"needs a header name"}},
		{"trusted", func(c *Config) { c.TrustedProxies = []netip.Prefix{{}} }, []string{"rateLimit.trustedProxies[0]: invalid network"}},
		{"ipv6Prefix", func(c *Config) { c.IPv6Prefix = 129 }, []string{"rateLimit.ipv6Prefix: must be between 1 and 128, got 129"}},
		{"maxClients", func(c *Config) { c.MaxClients = -1 }, []string{"rateLimit.maxClients: must be at least 1"}},
		{"idleTTL", func(c *Config) { c.IdleTTL = -time.Second }, []string{"rateLimit.idleTTL: must be greater than 0"}},
		{"exempt", func(c *Config) { c.Exempt = []string{"/ok", "metrics", "/a*b", "/x?y"} }, []string{
			`rateLimit.exempt[1]: must start with "/"`, `rateLimit.exempt[2]: "*" is allowed only at the end`,
			`rateLimit.exempt[3]: must not contain "?"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			err := cfg.Validate()
			_, newErr := New(cfg, nil, nil)
			if len(tt.want) == 0 {
				if err != nil || newErr != nil {
					t.Fatalf("Validate: %v; New: %v", err, newErr)
				}
				return
			}
			if err == nil || newErr == nil {
				t.Fatalf("Validate: %v; New: %v; want errors", err, newErr)
			}
			msgs := strings.Split(err.Error(), "\n")
			if len(msgs) != len(tt.want) {
				t.Fatalf("errors:\n%v\nwant %d", err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(msgs[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, msgs[i], w)
				}
			}
		})
	}
	// A disabled configuration always builds.
	if _, err := New(Config{Burst: -1}, nil, nil); err != nil {
		t.Errorf("disabled: %v", err)
	}
}

func TestReload(t *testing.T) {
	a, b := req("192.0.2.1", "/"), req("192.0.2.2", "/")
	tests := []struct {
		name       string
		from, to   Config
		drainFirst bool // drain a before the reload
		wantA      int  // a's requests allowed right after the reload
		wantB      int  // b's (untouched, full) requests allowed
	}{
		{"same limits keep a drained client drained", perClient(1, 5), perClient(1, 5), true, 0, 5},
		{"same global limits", global(1, 5), global(1, 5), true, 0, 0},
		{"higher burst: drained stays drained, new clients get it", perClient(1, 5), perClient(1, 10), true, 0, 10},
		{"lower burst caps the tokens", perClient(1, 5), perClient(1, 2), false, 2, 2},
		{"new rate applies from now", perClient(1, 5), perClient(100, 5), true, 0, 5},
		{"trusted proxies change keeps buckets", perClient(1, 5), withTrusted(perClient(1, 5)), true, 0, 5},
		{"global ignores per-client settings", global(1, 5), withV6(withKey(global(1, 5), "header:K"), 56), true, 0, 0},
		{"per-client to global starts afresh", perClient(1, 5), global(1, 5), true, 5, 0},
		{"key change starts afresh", perClient(1, 5), withKey(perClient(1, 5), "header:X-Key"), true, 5, 5},
		{"IPv6 prefix change starts afresh", perClient(1, 5), withV6(perClient(1, 5), 56), true, 5, 5},
		{"maxClients change copies the buckets", perClient(1, 5), withMax(perClient(1, 5), 1000), true, 0, 5},
		{"disabled then enabled starts afresh", perClient(1, 5), Config{}, true, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{}
			old := newLimiter(t, tt.from, nil, c)
			if tt.drainFirst {
				drain(old, a)
			} else {
				old.Decide(a) // a holds burst-1 tokens
				c.advance(time.Hour)
			}
			l := newLimiter(t, tt.to, old, c)
			if !tt.to.Enabled {
				l = newLimiter(t, tt.from, l, c)
			}
			if n := drain(l, a); n != tt.wantA {
				t.Errorf("client a: %d allowed after reload, want %d", n, tt.wantA)
			}
			if n := drain(l, b); n != tt.wantB {
				t.Errorf("client b: %d allowed after reload, want %d", n, tt.wantB)
			}
		})
	}
}

func withTrusted(c Config) Config       { c.TrustedProxies = prefixes("10.0.0.0/8"); return c }
func withKey(c Config, k string) Config { c.Key = k; return c }
func withV6(c Config, bits int) Config  { c.IPv6Prefix = bits; return c }
func withMax(c Config, n int) Config    { c.MaxClients = n; return c }

// TestReloadRate checks that after a rate change a drained client refills
// at the new rate, and that counters carry over.
func TestReloadRate(t *testing.T) {
	c := &clock{}
	a := req("192.0.2.1", "/")
	old := newLimiter(t, perClient(1, 5), nil, c)
	drain(old, a)
	l := newLimiter(t, perClient(10, 5), old, c)
	c.advance(300 * time.Millisecond)
	if n := drain(l, a); n != 3 {
		t.Errorf("300ms at 10/s: %d allowed, want 3", n)
	}
	if st := l.Stats(); st.Allowed != 8 || st.Rejected != 2 {
		t.Errorf("Stats = %+v, want 8 allowed and 2 rejected over both", st)
	}
}

// TestAbortedReload checks that building a Limiter that is never used (a
// reload that failed elsewhere) changes nothing for the running one.
func TestAbortedReload(t *testing.T) {
	for _, cfg := range []Config{global(1, 5), perClient(1, 5)} {
		t.Run(fmt.Sprint(cfg.PerClient), func(t *testing.T) {
			c := &clock{}
			a := req("192.0.2.1", "/")
			l := newLimiter(t, cfg, nil, c)
			l.Decide(a)
			aborted := cfg
			aborted.RequestsPerSec, aborted.Burst = 1000, 1
			newLimiter(t, aborted, l, c)
			if n := drain(l, a); n != 4 {
				t.Errorf("%d allowed, want 4: the unused Limiter changed the buckets", n)
			}
		})
	}
}

// TestMigrateKeepsRecent checks that shrinking MaxClients keeps the most
// recently used buckets.
func TestMigrateKeepsRecent(t *testing.T) {
	c := &clock{}
	old := newLimiter(t, withMax(perClient(1, 2), 100), nil, c)
	for i := range 100 {
		drain(old, req(fmt.Sprintf("192.0.2.%d", i), "/"))
	}
	l := newLimiter(t, withMax(perClient(1, 2), 10), old, c)
	if k := l.Stats().Keys; k != 10 {
		t.Fatalf("Keys = %d, want 10", k)
	}
	for i := 90; i < 100; i++ {
		if l.Decide(req(fmt.Sprintf("192.0.2.%d", i), "/")).Allowed {
			t.Errorf("recent client %d lost its drained bucket", i)
		}
	}
}

// TestConcurrent runs Decide, Stats and reloads from several goroutines
// (run it with -race). With the clock stopped, every bucket must allow
// exactly its burst however the requests interleave.
func TestConcurrent(t *testing.T) {
	const goroutines, clients, burst = 8, 50, 20
	for _, cfg := range []Config{global(1, burst), perClient(1, burst)} {
		t.Run(fmt.Sprint(cfg.PerClient), func(t *testing.T) {
			c := &clock{}
			l := newLimiter(t, cfg, nil, c)
			var mu sync.Mutex
			allowed := map[int]int{}
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					var r Request
					for i := range 2000 {
						cl := (g + i) % clients
						r.Reset(netip.AddrFrom4([4]byte{192, 0, 2, byte(cl)}), []byte("/"))
						l.Collect(&r, []byte("X-Forwarded-For"), []byte("1.2.3.4"))
						if l.Decide(&r).Allowed {
							mu.Lock()
							allowed[cl]++
							mu.Unlock()
						}
						if i%500 == 0 {
							_ = l.Stats()
						}
					}
				})
			}
			// A reload with the same limits, mid-flight.
			wg.Go(func() { _ = newLimiter(t, cfg, l, c) })
			wg.Wait()
			total := 0
			for cl, n := range allowed {
				total += n
				if cfg.PerClient && n != burst {
					t.Errorf("client %d: %d allowed, want %d", cl, n, burst)
				}
			}
			want := burst
			if cfg.PerClient {
				want = clients * burst
			}
			if total != want {
				t.Errorf("%d allowed in all, want %d", total, want)
			}
			if st := l.Stats(); st.Allowed+st.Rejected != goroutines*2000 {
				t.Errorf("Stats %+v do not add up to %d", st, goroutines*2000)
			}
		})
	}
}

// TestDecideAllocs proves that Decide does not allocate on any path,
// with and without a Store.
func TestDecideAllocs(t *testing.T) {
	c := &clock{}
	xff, apiKey, health := []byte("2001:db8::1, 10.1.1.1"), []byte("some-api-key-0123456789"), []byte("/health/ready?x")
	xffCfg := withTrusted(perClient(1e9, 1))
	hdrCfg := withKey(perClient(1e9, 1), "header:X-Key")
	exCfg := global(1, 1)
	exCfg.Exempt = []string{"/metrics", "/health/*"}
	tests := []struct {
		name string
		cfg  Config
		fill func(l *Limiter, r *Request, i int)
	}{
		{"global", global(1e9, 1), func(*Limiter, *Request, int) {}},
		{"per-client existing key", perClient(1e9, 1), func(*Limiter, *Request, int) {}},
		{"per-client new key with eviction", withMax(perClient(1e9, 1), 10), func(_ *Limiter, r *Request, i int) {
			r.Peer = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		}},
		{"trusted proxy", xffCfg, func(l *Limiter, r *Request, i int) {
			r.Reset(netip.MustParseAddr("10.0.0.1"), r.Path)
			l.Collect(r, []byte("X-Forwarded-For"), xff)
		}},
		{"header key", hdrCfg, func(l *Limiter, r *Request, i int) {
			r.Key = nil
			l.Collect(r, []byte("x-key"), apiKey)
		}},
		{"exempt", exCfg, func(_ *Limiter, r *Request, _ int) { r.Path = health }},
		{"rejected", global(1, 1), func(*Limiter, *Request, int) {}},
	}
	for _, tt := range tests {
		for _, shared := range []bool{false, true} {
			name := tt.name
			if shared {
				tt.cfg.Store = &fakeStore{}
				name += " shared"
			}
			t.Run(name, func(t *testing.T) {
				decideAllocs(t, c, tt.cfg, tt.fill)
			})
		}
	}
}

// decideAllocs fails t if Decide allocates on a Limiter for cfg, with
// fill preparing each request.
func decideAllocs(t *testing.T, c *clock, cfg Config, fill func(l *Limiter, r *Request, i int)) {
	t.Helper()
	l := newLimiter(t, cfg, nil, c)
	r := req("192.0.2.1", "/api")
	i := 0
	fill(l, r, i) // grow r.ForwardedFor once
	if n := testing.AllocsPerRun(1000, func() {
		i++
		c.advance(time.Microsecond)
		fill(l, r, i)
		l.Decide(r)
	}); n != 0 {
		t.Errorf("%v allocations per Decide", n)
	}
}
