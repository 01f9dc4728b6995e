// Package breaker is a per-backend circuit breaker built for event loops:
// every call is lock-free (one 64-bit state word changed by compare-and-
// swap) and allocation-free, and time comes in as an argument, so tests
// drive it with any clock.
//
// A closed breaker admits every request and counts consecutive failures;
// [Config.MaxFailures] of them open it. An open breaker rejects every
// request until [Config.Timeout] has passed; then it is half-open and lets
// at most [Config.HalfOpenRequests] probe requests through at a time.
// [Config.HalfOpenSuccess] successful probes close it; one failed probe
// opens it again.
//
// Times are Unix times in nanoseconds (time.Now().UnixNano(), or the
// proxy's coarse loop clock); they are kept with millisecond resolution
// (seconds for the half-open safety timer). Times before 1970 count as
// 1970.
package breaker

import (
	"strconv"
	"sync/atomic"
	"time"
)

// State is a breaker state. The zero value is [Closed].
type State uint8

// Breaker states.
const (
	Closed State = iota
	Open
	HalfOpen
)

var stateNames = [...]string{Closed: "closed", Open: "open", HalfOpen: "half-open"}

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Probe identifies a request admitted by a half-open breaker. The zero value
// means "not a probe". [Breaker.Allow] returns it and [Breaker.Done] takes
// it back; it carries the half-open round, so a slow probe from an earlier
// round cannot count in a later one.
type Probe uint16

// Change describes one state transition, for logging. It is passed by value
// to the function given to [New]; it holds no references.
type Change struct {
	From, To State
	// At is the time of the transition, Unix nanoseconds.
	At int64
	// Count is the number of consecutive failures that opened a closed
	// breaker, or the number of successful probes that closed a half-open
	// one; 0 otherwise.
	Count int
	// Outcome is the request result that caused the change (Closed->Open,
	// HalfOpen->Open, HalfOpen->Closed); [Success] for changes made by the
	// clock.
	Outcome Outcome
	// Early is set on Open->HalfOpen when [Breaker.EndOpen] cut the open
	// period short.
	Early bool
}

// Reason describes why the change happened, e.g. "5 consecutive failures
// (last: connect error)". It allocates; it is meant for log lines.
func (c Change) Reason() string {
	switch {
	case c.From == Closed && c.To == Open:
		return strconv.Itoa(c.Count) + " consecutive failures (last: " + c.Outcome.String() + ")"
	case c.From == Open && c.To == HalfOpen && c.Early:
		return "open period ended early"
	case c.From == Open && c.To == HalfOpen:
		return "open timeout elapsed"
	case c.From == HalfOpen && c.To == HalfOpen:
		return "probes did not report within the open timeout; new round"
	case c.From == HalfOpen && c.To == Open:
		return "probe failed: " + c.Outcome.String()
	case c.From == HalfOpen && c.To == Closed:
		return strconv.Itoa(c.Count) + " successful probes"
	}
	return c.From.String() + " -> " + c.To.String()
}

// Breaker is one backend's circuit breaker.
//
// The zero value is a closed breaker using [DefaultConfig] and reporting no
// changes; [New] sets a configuration and a change callback. All methods
// are safe for concurrent use by any number of goroutines; Allow, Done and
// Available never lock, never allocate and never block. A Breaker must not
// be copied after first use. It lives as long as the backend it guards and
// keeps its state across [Breaker.Configure] calls.
type Breaker struct {
	// word is the whole state; see the layout below.
	word atomic.Uint64
	set  atomic.Pointer[settings]
	// since is the time of the last transition (Unix ns), 0 before the
	// first. It is written after the transition, so a reader may briefly
	// see the previous value.
	since  atomic.Int64
	notify func(Change)
}

// State word layout (bit 63 first):
//
//	state(2) gen(10) | Closed:   failures(10) lastFailureMillis(42)
//	                 | Open:     unused(10)   openedMillis(42)
//	                 | HalfOpen: inflight(10) successes(10) stampSeconds(32)
//
// gen is the half-open round, advanced each time a round starts; probes
// carry it. Milliseconds since 1970 fit 42 bits until 2109, seconds fit 32
// bits until 2106.
const (
	stateShift = 62
	genShift   = 52
	cntShift   = 42
	succShift  = 32
	mask10     = 1<<10 - 1
	mask32     = 1<<32 - 1
	mask42     = 1<<42 - 1
	probeBit   = 1 << 15
)

func stateOf(w uint64) State  { return State(w >> stateShift) }
func genOf(w uint64) uint64   { return w >> genShift & mask10 }
func cntOf(w uint64) uint64   { return w >> cntShift & mask10 }
func succOf(w uint64) uint64  { return w >> succShift & mask10 }
func millisOf(w uint64) int64 { return int64(w & mask42) }
func stampOf(w uint64) uint64 { return w & mask32 }

func closedWord(gen, fails uint64, ms int64) uint64 {
	return uint64(Closed)<<stateShift | gen<<genShift | fails<<cntShift | uint64(ms)&mask42
}

func openWord(gen uint64, ms int64) uint64 {
	return uint64(Open)<<stateShift | gen<<genShift | uint64(ms)&mask42
}

func halfWord(gen, inflight, succ, sec uint64) uint64 {
	return uint64(HalfOpen)<<stateShift | gen<<genShift | inflight<<cntShift | succ<<succShift | sec&mask32
}

func millis(now int64) int64 { return max(now, 0) / int64(time.Millisecond) & mask42 }
func seconds(now int64) uint64 {
	return uint64(max(now, 0)/int64(time.Second)) & mask32
}

// elapsed returns to-from, or 0 when from is later: event loops read
// coarse clocks that may differ slightly, so time can appear to run
// backwards between two callers.
func elapsed(to, from uint64) uint64 {
	if to < from {
		return 0
	}
	return to - from
}

func probeOf(gen uint64) Probe { return Probe(probeBit | gen) }

// New returns a closed breaker with configuration cfg (see
// [Breaker.Configure]). notify, if not nil, is called after every state
// transition, synchronously on the goroutine whose Allow, Done or Configure
// call made it (an event loop): it must be quick and must not call back
// into the breaker. Transitions are rare (they need MaxFailures failures or
// a timeout), so logging from it is fine.
func New(cfg Config, notify func(Change)) *Breaker {
	b := &Breaker{notify: notify}
	b.set.Store(newSettings(cfg))
	return b
}

// Configure replaces the configuration without losing state: a closed
// breaker keeps its failure count, an open one its open time, a half-open
// one its probes. New limits apply from the next call on. Disabling the
// breaker closes it at once and forgets its counts; that is a
// configuration change, not a transition, so it is not reported to the
// change callback and does not move Since.
// Counts out of range are clamped to 1..MaxCount; use [Config.Validate]
// first to reject them instead.
func (b *Breaker) Configure(cfg Config) {
	b.set.Store(newSettings(cfg))
	if cfg.Enabled {
		return
	}
	for {
		w := b.word.Load()
		// A new gen makes every concurrent CompareAndSwap fail, so no
		// call that loaded the old settings can still change the word.
		nw := closedWord((genOf(w)+1)&mask10, 0, 0)
		if b.word.CompareAndSwap(w, nw) {
			return
		}
	}
}

// Config returns the configuration in use (as given to Configure, before
// clamping).
func (b *Breaker) Config() Config { return b.settings().cfg }

func (b *Breaker) settings() *settings {
	if s := b.set.Load(); s != nil {
		return s
	}
	return defaults
}

// Available reports, without changing anything, whether [Breaker.Allow]
// would admit a request at time now: the breaker is closed, or open with
// its timeout elapsed, or half-open with a free probe slot. It is the
// balancer's filter: one atomic load when closed, two otherwise.
func (b *Breaker) Available(now int64) bool {
	w := b.word.Load()
	switch stateOf(w) {
	case Closed:
		return true
	case Open:
		return millis(now) >= millisOf(w)+int64(b.settings().openMillis)
	default:
		s := b.settings()
		return cntOf(w) < s.halfRequests || elapsed(seconds(now), stampOf(w)) >= s.staleSecs
	}
}

// Allow asks whether a request may be sent to the backend at time now.
// When ok is false the request must go elsewhere (or fail with 503). When
// ok is true and p is not zero the request is a half-open probe. Every
// admitted request should be reported with [Breaker.Done], passing p back;
// for a probe this is required (use [Canceled] when the outcome says
// nothing about the backend), or its slot stays taken until the safety
// timer (Config.Timeout) starts a new round.
//
// A closed breaker admits with one atomic load. An open breaker whose
// timeout has elapsed turns half-open and admits the caller as the first
// probe.
func (b *Breaker) Allow(now int64) (ok bool, p Probe) {
	for {
		w := b.word.Load()
		switch stateOf(w) {
		case Closed:
			return true, 0
		case Open:
			s := b.settings()
			if millis(now) < millisOf(w)+int64(s.openMillis) {
				return false, 0
			}
			g := (genOf(w) + 1) & mask10
			if b.word.CompareAndSwap(w, halfWord(g, 1, 0, seconds(now))) {
				b.changed(Change{From: Open, To: HalfOpen, At: now, Early: millisOf(w) == 0})
				return true, probeOf(g)
			}
		default:
			s := b.settings()
			g, n, sec := genOf(w), cntOf(w), seconds(now)
			var nw uint64
			stale := false
			switch {
			case n < s.halfRequests:
				nw = halfWord(g, n+1, succOf(w), sec)
			case elapsed(sec, stampOf(w)) >= s.staleSecs:
				// Every slot is taken and no probe has reported for a
				// whole open timeout: the probes are lost (or hung).
				// Start a new round; their reports will not match it.
				g = (g + 1) & mask10
				nw = halfWord(g, 1, 0, sec)
				stale = true
			default:
				return false, 0
			}
			if b.word.CompareAndSwap(w, nw) {
				if stale {
					b.changed(Change{From: HalfOpen, To: HalfOpen, At: now})
				}
				return true, probeOf(g)
			}
		}
	}
}

// Done reports how a request admitted by [Breaker.Allow] ended, at time
// now; p is the probe Allow returned (0 when it was not a probe).
//
// In the closed state a failure (a gateway failure, or any 5xx with
// Config.FailureOn5xx; see [Outcome.Failure]) adds to the consecutive-failure count, which opens
// the breaker at MaxFailures; a success resets the count. A success when
// the count is already 0 is one atomic load and no write. In the half-open
// state only probes of the current round count: a success moves toward
// closing, a failure reopens, [Canceled] frees the slot. In the open state,
// and for stale probes, reports are ignored.
func (b *Breaker) Done(now int64, o Outcome, p Probe) {
	for {
		w := b.word.Load()
		switch stateOf(w) {
		case Closed:
			if o == Canceled || o == Success && cntOf(w) == 0 {
				return
			}
			s := b.settings()
			if !s.cfg.Enabled {
				return
			}
			g, n := genOf(w), cntOf(w)
			var nw uint64
			if !o.Failure(s.cfg.FailureOn5xx) {
				if n == 0 {
					return
				}
				nw = closedWord(g, 0, 0)
			} else {
				ms, last := millis(now), millisOf(w)
				if n == 0 || ms-last >= int64(s.resetMillis) {
					n = 1
				} else if n < mask10 {
					n++
				}
				ms = max(ms, last) // a loop whose clock lags must not move it back
				if n >= s.maxFailures {
					if b.word.CompareAndSwap(w, openWord(g, ms)) {
						b.changed(Change{From: Closed, To: Open, At: now, Count: int(n), Outcome: o})
						return
					}
					continue
				}
				nw = closedWord(g, n, ms)
			}
			if b.word.CompareAndSwap(w, nw) {
				return
			}
		case Open:
			return
		default:
			if p == 0 || uint64(p)&mask10 != genOf(w) {
				return
			}
			s := b.settings()
			g, n, succ := genOf(w), cntOf(w), succOf(w)
			if n > 0 {
				n--
			}
			var nw uint64
			var ch Change
			switch {
			case o == Canceled:
				nw = halfWord(g, n, succ, seconds(now))
			case o.Failure(s.cfg.FailureOn5xx):
				nw = openWord(g, millis(now))
				ch = Change{From: HalfOpen, To: Open, At: now, Outcome: o}
			case succ+1 >= s.halfSuccess:
				nw = closedWord(g, 0, 0)
				ch = Change{From: HalfOpen, To: Closed, At: now, Count: int(succ + 1), Outcome: o}
			default:
				nw = halfWord(g, n, succ+1, seconds(now))
			}
			if b.word.CompareAndSwap(w, nw) {
				if ch.From != ch.To {
					b.changed(ch)
				}
				return
			}
		}
	}
}

// EndOpen ends an open period early (for example because an active health
// check passed): the next [Breaker.Allow] turns the breaker half-open and
// admits a probe, reporting a change with Early set. It does nothing
// unless the breaker is open.
func (b *Breaker) EndOpen() {
	for {
		w := b.word.Load()
		if stateOf(w) != Open || b.word.CompareAndSwap(w, openWord(genOf(w), 0)) {
			return
		}
	}
}

// State returns the current state. An open breaker whose timeout has
// elapsed stays Open until the next Allow; see [Breaker.Available].
func (b *Breaker) State() State { return stateOf(b.word.Load()) }

// Failures returns the consecutive failures counted by a closed breaker,
// 0 in the other states.
func (b *Breaker) Failures() int {
	w := b.word.Load()
	if stateOf(w) != Closed {
		return 0
	}
	return int(cntOf(w))
}

// Since returns the time of the last state transition (Unix ns), or 0 if
// there has been none. It may lag a concurrent transition briefly.
func (b *Breaker) Since() int64 { return b.since.Load() }

// ReadyAt returns the earliest time (Unix ns) at which Allow may admit a
// request, given time now: now when the breaker is closed or has a free
// probe slot, the end of the open timeout when open, the end of the probe
// safety timer when every half-open slot is taken. It is meant for a
// Retry-After hint.
func (b *Breaker) ReadyAt(now int64) int64 {
	w := b.word.Load()
	s := b.settings()
	var at int64
	switch stateOf(w) {
	case Open:
		at = (millisOf(w) + int64(s.openMillis)) * int64(time.Millisecond)
	case HalfOpen:
		if cntOf(w) >= s.halfRequests {
			at = int64(stampOf(w)+s.staleSecs) * int64(time.Second)
		}
	}
	return max(at, now)
}

func (b *Breaker) changed(c Change) {
	for {
		old := b.since.Load()
		if c.At <= old || b.since.CompareAndSwap(old, c.At) {
			break
		}
	}
	if b.notify != nil {
		b.notify(c)
	}
}
