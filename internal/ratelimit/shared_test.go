package ratelimit

import (
	"testing"
	"time"
)

// fakeStore records the Shared values that join it.
type fakeStore struct{ joined []*Shared }

func (f *fakeStore) Join(s *Shared) { f.joined = append(f.joined, s) }

func shared(cfg Config, st Store) Config {
	cfg.Store = st
	return cfg
}

// TestSharedGlobal checks the round trip of a global bucket: counts out,
// the shared state back in, including requests allowed in between.
func TestSharedGlobal(t *testing.T) {
	c := &clock{}
	fs := &fakeStore{}
	l := newLimiter(t, shared(global(10, 5), fs), nil, c)
	if len(fs.joined) != 1 || fs.joined[0] != l.sh {
		t.Fatalf("joined %v, want the limiter's Shared", fs.joined)
	}
	s := fs.joined[0]
	r := req("192.0.2.1", "/")
	for range 3 {
		l.Decide(r)
	}
	items := s.Collect(nil)
	if len(items) != 1 || !items[0].Global || items[0].Count != 3 || items[0].Interval != 100*time.Millisecond || items[0].Burst != 5 {
		t.Fatalf("Collect = %+v, want one global item counting 3 at 100ms, burst 5", items)
	}
	l.Decide(r) // between Collect and Apply: counted in the next round
	// The fleet has used 4 of 5 tokens: one left, less this instance's
	// request since the Collect.
	items[0].Deficit = 400 * time.Millisecond
	s.Apply(items)
	if d := l.Decide(r); d.Allowed {
		t.Fatalf("allowed after the shared bucket was spent: %+v", d)
	}
	if again := s.Collect(nil); again[0].Count != 1 {
		t.Fatalf("second Collect counted %d, want 1", again[0].Count)
	}
	// Debt beyond the burst is kept: 2 s of it.
	items[0].Deficit = 2 * time.Second
	s.Apply(items)
	c.advance(1500 * time.Millisecond)
	if l.Decide(r).Allowed {
		t.Fatal("allowed while the fleet's debt is not repaid")
	}
	c.advance(1000 * time.Millisecond)
	if !l.Decide(r).Allowed {
		t.Fatal("refused after the debt was repaid")
	}
}

// TestSharedTable checks that only clients with requests are collected,
// each once per round, and that Apply reaches the right bucket.
func TestSharedTable(t *testing.T) {
	c := &clock{}
	fs := &fakeStore{}
	l := newLimiter(t, shared(perClient(1, 3), fs), nil, c)
	s := fs.joined[0]
	a, b := req("192.0.2.1", "/"), req("2001:db8::1", "/")
	l.Decide(a)
	l.Decide(a)
	l.Decide(b)
	items := s.Collect(nil)
	if len(items) != 2 {
		t.Fatalf("Collect = %+v, want two clients", items)
	}
	counts := map[[16]byte]int64{}
	for _, it := range items {
		counts[it.Key] = it.Count
	}
	ka, kb := addrKey(a.Peer, 64), addrKey(b.Peer, 64)
	if counts[ka] != 2 || counts[kb] != 1 {
		t.Fatalf("counts = %v, want a:2 b:1", counts)
	}
	if again := s.Collect(nil); len(again) != 0 {
		t.Fatalf("second Collect = %+v, want nothing", again)
	}
	for i := range items {
		if items[i].Key == ka {
			items[i].Deficit = 3 * time.Second // spent elsewhere
		}
	}
	s.Apply(items)
	if l.Decide(a).Allowed {
		t.Error("a allowed after the fleet spent its bucket")
	}
	if !l.Decide(b).Allowed {
		t.Error("b refused")
	}
	// A client evicted between Collect and Apply is skipped.
	l2 := newLimiter(t, shared(withMax(perClient(1, 3), 1), &fakeStore{}), nil, c)
	l2.Decide(a)
	items = l2.sh.Collect(nil)
	l2.Decide(b) // evicts a
	items[0].Deficit = time.Hour
	l2.sh.Apply(items)
	if !l2.Decide(a).Allowed {
		t.Error("Apply reached an evicted client's entry")
	}
}

// TestSharedShare checks the local share: with n instances each request
// costs n tokens.
func TestSharedShare(t *testing.T) {
	c := &clock{}
	fs := &fakeStore{}
	l := newLimiter(t, shared(global(100, 8), fs), nil, c)
	fs.joined[0].SetShare(4)
	r := req("192.0.2.1", "/")
	if n := drain(l, r); n != 2 {
		t.Fatalf("burst at a share of 1/4 = %d, want 2", n)
	}
	allowed := 0
	for range 1000 {
		c.advance(time.Millisecond)
		if l.Decide(r).Allowed {
			allowed++
		}
	}
	if allowed != 25 {
		t.Fatalf("%d allowed in 1 s at a share of 1/4 of 100/s, want 25", allowed)
	}
	// A burst smaller than the fleet still lets one request through.
	l1 := newLimiter(t, shared(global(1, 1), fs), nil, c)
	fs.joined[1].SetShare(3)
	if n := drain(l1, r); n != 1 {
		t.Fatalf("burst 1 at a share of 1/3 = %d, want 1", n)
	}
	fs.joined[0].SetShare(1)
	c.advance(time.Second)
	if n := drain(l, r); n != 8 {
		t.Fatalf("burst back at full share = %d, want 8", n)
	}
}

// TestSharedReload checks which Shared a reload keeps.
func TestSharedReload(t *testing.T) {
	c := &clock{}
	fs, other := &fakeStore{}, &fakeStore{}
	l1 := newLimiter(t, shared(perClient(1, 3), fs), nil, c)
	l2 := newLimiter(t, shared(perClient(2, 3), fs), l1, c)
	if l2.sh != l1.sh || len(fs.joined) != 1 {
		t.Fatal("a reload with the same Store did not keep its Shared")
	}
	l3 := newLimiter(t, shared(perClient(2, 3), other), l2, c)
	if l3.sh == l2.sh || !l2.sh.Retired() || len(other.joined) != 1 {
		t.Fatal("a new Store did not get a new Shared, retiring the old")
	}
	cfg := shared(perClient(2, 3), other)
	cfg.StoreKey = "route:a"
	l4 := newLimiter(t, cfg, l3, c)
	if l4.sh == l3.sh || !l3.sh.Retired() || l4.sh.Name() != "route:a" {
		t.Fatal("a new StoreKey did not get a new Shared")
	}
	l5 := newLimiter(t, perClient(2, 3), l4, c)
	if l5.sh != nil || !l4.sh.Retired() {
		t.Fatal("dropping the Store did not retire the Shared")
	}
}

// TestFleetHeaderKeys checks that a header value has the same key in two
// processes' Limiters (different seeds) when shared.
func TestFleetHeaderKeys(t *testing.T) {
	c := &clock{}
	cfg := shared(withKey(perClient(1, 1), "header:X-Key"), &fakeStore{})
	l1, l2 := newLimiter(t, cfg, nil, c), newLimiter(t, cfg, nil, c)
	r := req("192.0.2.1", "/")
	r.Key = []byte("k-123")
	if k1, k2 := l1.key(r), l2.key(r); k1 != k2 || k1[0] != 0xff {
		t.Fatalf("keys %x and %x, want equal, starting 0xff", k1, k2)
	}
}
