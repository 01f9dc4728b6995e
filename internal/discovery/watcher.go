package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Member is one backend found in DNS.
type Member struct {
	// Addr is the member's "ip:port" ("[ip]:port" for IPv6): its dial
	// address and its identity, as config.Backend.Addr.
	Addr string
	// Weight is 1 for A and AAAA members; for SRV members it is the
	// record's weight scaled to 1-1000 (see docs/discovery.md).
	Weight int
}

// URL returns the member as a backend URL, "http://" + Addr.
func (m Member) URL() string { return "http://" + m.Addr }

// State is where a Watcher stands after its last resolution.
type State int

const (
	// StateStarting: no resolution has finished yet.
	StateStarting State = iota
	// StateOK: the last resolution found members, and they are published.
	StateOK
	// StateFailing: the last resolution failed (timeout, SERVFAIL, ...);
	// the members published before are kept, and it is retried with
	// backoff.
	StateFailing
	// StateHolding: the name answers with no members; the members
	// published before are kept until Config.EmptyGrace has passed.
	StateHolding
	// StateEmpty: the name answers with no members, and the empty list is
	// published.
	StateEmpty
)

var stateNames = [...]string{"starting", "ok", "failing", "holding", "empty"}

// String returns "starting", "ok", "failing", "holding" or "empty".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is a Watcher's state, for logs, metrics and the admin API.
type Status struct {
	State State
	// Members is the number of members published last.
	Members int
	// Err is the error of the last resolution: nil after one that found
	// members; one wrapping [ErrNoMembers] when the name had none.
	Err error
	// LastAnswer is when a nameserver last answered (with members or
	// without); zero before the first answer.
	LastAnswer time.Time
	// Next is when the name will be resolved again (by Run).
	Next time.Time
	// Resolutions and Failures count the resolutions that finished and
	// those that failed (not those that found no members), since New.
	Resolutions, Failures uint64
	// Capped reports that the last answer had more than
	// Config.MaxMembers members and a subset was published.
	Capped bool
}

// Clock is a Watcher's time source: it stamps results and waits between
// resolutions. Query timeouts are deadlines on the real clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep waits for d, or until ctx is done, and reports whether the
	// whole d passed.
	Sleep(ctx context.Context, d time.Duration) bool
}

// SystemClock returns the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryBase is the first retry's delay after a failed resolution; each
// further failure doubles it, up to Config.MaxTTL.
const retryBase = time.Second

// Watcher resolves one name and publishes its members.
//
// The zero value is not usable; call [New]. [Watcher.Resolve] and
// [Watcher.Run] may be called from any goroutine; resolutions never
// overlap. [Watcher.Status] is safe at any time, from the update callback
// too.
type Watcher struct {
	cfg        Config
	log        *slog.Logger
	update     func([]Member)
	clk        Clock
	server     string // Config.Resolver as "ip:port"; "" for resolv.conf
	resolvConf string // path of resolv.conf; tests replace it
	resolvPort string // the nameservers' port instead of 53; for tests
	seed       maphash.Seed

	mu         sync.Mutex // held for a whole resolution
	published  []Member   // nil until the first publication
	state      State
	failures   int       // consecutive failed resolutions
	emptySince time.Time // first answer with no members since the last with members
	capped     bool
	next       time.Time // zero: resolve at once

	smu    sync.Mutex
	status Status
}

// New returns a Watcher for cfg that calls update with the member list
// each time it changes. It checks cfg (see [Config.Check]) and does no
// I/O: nothing is resolved before [Watcher.Resolve] or [Watcher.Run].
//
// update is called with a new slice the callee owns, sorted by address,
// with no duplicate addresses and at most cfg.MaxMembers members (none
// when the name has no members after EmptyGrace). Calls never overlap, and
// come from the goroutine of Resolve or Run; update must not call Resolve
// (it would deadlock) and should return soon: the next resolution waits.
// The first resolution that reaches a nameserver publishes, even an empty
// list; after that only changes are published.
//
// log receives one line per change of state and per change of members
// (nil discards them); clk is the time source (nil: the real clock).
func New(cfg Config, log *slog.Logger, clk Clock, update func([]Member)) (*Watcher, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if update == nil {
		return nil, errors.New("discovery: update is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = SystemClock()
	}
	w := &Watcher{cfg: cfg, update: update, clk: clk, resolvConf: "/etc/resolv.conf", seed: maphash.MakeSeed()}
	if cfg.Resolver != "" {
		w.server, _ = resolverAddr(cfg.Resolver) // checked above
	}
	via := w.server
	if via == "" {
		via = w.resolvConf
	}
	w.log = log.With("name", cfg.Name, "type", cfg.Type, "resolver", via)
	return w, nil
}

// Resolve resolves the name now, publishes the result as Run would, and
// returns its error: nil when the name has members (in StateOK), one
// wrapping [ErrNoMembers] when it has none, another error when the
// resolution failed, ctx.Err() when ctx ended first (nothing changes
// then). It is how a caller that must not start without members makes
// the first resolution before calling Run; Run then waits for the TTL of
// this answer before the next one.
func (w *Watcher) Resolve(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.resolveLocked(ctx)
}

// Run resolves the name at once (unless Resolve has, in which case it
// waits for that answer's TTL), then again each time the TTL of the last
// answer (clamped to MinTTL..MaxTTL) runs out, or after a backoff when a
// resolution failed. It returns when ctx is done, once its resolution in
// progress, if any, has ended; it starts no goroutine that outlives it.
// Run is meant to be called once per Watcher.
func (w *Watcher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		w.mu.Lock()
		next := w.next
		w.mu.Unlock()
		if !next.IsZero() {
			if d := next.Sub(w.clk.Now()); d > 0 && !w.clk.Sleep(ctx, d) {
				return
			}
		}
		_ = w.Resolve(ctx)
	}
}

// Status returns the Watcher's current status.
func (w *Watcher) Status() Status {
	w.smu.Lock()
	defer w.smu.Unlock()
	return w.status
}

// resolveLocked is Resolve with w.mu held.
func (w *Watcher) resolveLocked(ctx context.Context) error {
	ans, err := w.lookup(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now := w.clk.Now()
	prev := w.state
	var delay time.Duration
	switch {
	case err != nil:
		err = fmt.Errorf("discovery: %w", err) // it names the query that failed
		w.failures++
		delay = min(retryBase<<min(w.failures-1, 30), w.cfg.MaxTTL)
		if w.published == nil {
			w.state = StateFailing
			if prev != StateFailing {
				w.log.Warn("dns discovery: resolution failed; no members yet, retrying", "err", err, "retry", delay)
			}
			break
		}
		if prev != StateFailing {
			w.log.Warn("dns discovery: resolution failed; keeping the last members, retrying", "members", len(w.published), "err", err, "retry", delay)
		}
		// A pool that was Empty stays empty; Holding keeps its members.
		w.state = StateFailing

	case len(ans.members) == 0:
		err = fmt.Errorf("discovery: %s %s: %s: %w", w.cfg.Type, w.cfg.Name, ans.why, ErrNoMembers)
		w.failures = 0
		delay = w.clamp(ans.ttl)
		if w.emptySince.IsZero() {
			w.emptySince = now
		}
		until := w.emptySince.Add(w.cfg.EmptyGrace)
		if len(w.published) > 0 && now.Before(until) {
			if prev != StateHolding {
				w.log.Warn("dns discovery: the name has no members; keeping the last ones for emptyGrace", "members", len(w.published), "err", err, "until", until)
			}
			w.state = StateHolding
			delay = min(delay, until.Sub(now))
			break
		}
		if prev != StateEmpty {
			w.log.Warn("dns discovery: the name has no members; the pool is empty", "err", err)
		}
		w.state = StateEmpty
		w.capped = false
		w.publish([]Member{})

	default:
		w.failures = 0
		w.emptySince = time.Time{}
		delay = w.clamp(ans.ttl)
		ms, capped := w.cap(ans.members)
		normalizeWeights(ms)
		if capped && !w.capped {
			w.log.Warn("dns discovery: more members than maxMembers; publishing a subset", "found", len(ans.members), "maxMembers", w.cfg.MaxMembers)
		}
		w.capped = capped
		if prev != StateOK && prev != StateStarting {
			w.log.Info("dns discovery: resolving again", "was", prev.String(), "members", len(ms))
		}
		w.state = StateOK
		w.publish(ms)
	}
	w.next = now.Add(delay)

	w.smu.Lock()
	s := &w.status
	s.State, s.Members, s.Err, s.Next, s.Capped = w.state, len(w.published), err, w.next, w.capped
	s.Resolutions++
	if w.state == StateFailing {
		s.Failures++
	} else {
		s.LastAnswer = now
	}
	w.smu.Unlock()
	return err
}

// clamp bounds an answer's TTL to MinTTL..MaxTTL.
func (w *Watcher) clamp(ttl time.Duration) time.Duration {
	return min(max(ttl, w.cfg.MinTTL), w.cfg.MaxTTL)
}

// cap returns at most MaxMembers of ms (sorted, no duplicates): those
// whose addresses hash lowest under the Watcher's seed, so the subset is
// the same at each resolution of one Watcher and differs between
// Watchers. The result is sorted by address.
func (w *Watcher) cap(ms []Member) ([]Member, bool) {
	if len(ms) <= w.cfg.MaxMembers {
		return ms, false
	}
	sub := slices.Clone(ms)
	slices.SortFunc(sub, func(a, b Member) int {
		return cmp.Compare(maphash.String(w.seed, a.Addr), maphash.String(w.seed, b.Addr))
	})
	sub = sub[:w.cfg.MaxMembers]
	slices.SortFunc(sub, compareMembers)
	return sub, true
}

// publish calls update when ms differs from the list published last (or
// nothing was published yet), and logs the change.
func (w *Watcher) publish(ms []Member) {
	if w.published != nil && slices.Equal(ms, w.published) {
		return
	}
	added, removed := diff(w.published, ms)
	if w.published == nil {
		w.log.Info("dns discovery: members", "members", len(ms), "addrs", sample(added))
	} else {
		w.log.Info("dns discovery: members changed", "members", len(ms),
			"added", sample(added), "removed", sample(removed))
	}
	w.published = ms
	w.update(slices.Clone(ms))
}

// diff returns the addresses of b not in a, and of a not in b (both
// sorted by address).
func diff(a, b []Member) (added, removed []string) {
	in := func(list []Member, addr string) bool {
		_, ok := slices.BinarySearchFunc(list, addr, func(m Member, t string) int {
			return compareMembers(m, Member{Addr: t})
		})
		return ok
	}
	for _, m := range b {
		if !in(a, m.Addr) {
			added = append(added, m.Addr)
		}
	}
	for _, m := range a {
		if !in(b, m.Addr) {
			removed = append(removed, m.Addr)
		}
	}
	return added, removed
}

// sample bounds a list of addresses for a log line.
func sample(addrs []string) []string {
	const most = 8
	if len(addrs) > most {
		return append(addrs[:most:most], fmt.Sprintf("(%d more)", len(addrs)-most))
	}
	return addrs
}
