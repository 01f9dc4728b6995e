// Package balancer chooses the backend that serves a request.
//
// A [Policy] is an immutable selector built by [New] from a member list and
// [Options]. The proxy builds a new Policy on every configuration reload and
// shares it between all event loops: Pick is safe for concurrent use, takes
// no lock and allocates nothing.
//
// Runtime state that must survive a reload — the in-flight count, the
// latency estimate, the slow-start ramp — lives on a [Node], a long-lived
// object the proxy keeps per backend (keyed by URL) and hands to every
// Policy it builds. A Policy only reads nodes (apart from one-time
// bookkeeping described on [Node]); the proxy reports traffic with
// [Node.Begin] and [Node.End].
//
// Availability (health, circuit breaker, connection limits, draining, the
// backend a retry must avoid) is the proxy's decision: Pick takes a
// predicate and never returns a member the predicate rejects. Members with
// weight 0 are never returned either.
//
// Time is unix nanoseconds throughout: [Options.Now], the now arguments of
// [Node.End] and [Node.SetUp]. Any monotone int64 nanosecond clock works as
// long as all three use the same one.
package balancer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Policy chooses one member for a request.
//
// Implementations are immutable after construction (apart from the turn
// counter of the round-robin policies) and safe for concurrent use by any
// number of goroutines. Their zero values hold no members: Pick returns
// -1. A Policy holds no goroutine or other resource; drop it when a reload
// replaces it.
type Policy interface {
	// Pick returns the index, in the member list the Policy was built
	// from, of the member that should serve the next request, or -1 when
	// no member is eligible.
	//
	// key is the request's 64-bit hash for [NameConsistentHash] (see
	// [HashBytes]); the other policies ignore it. ok reports whether
	// member i may serve this request; nil means every member may. Pick
	// never returns a member for which ok is false or whose weight is 0.
	// ok may be called several times per member and from several
	// goroutines at once; it should be cheap and must not call Pick.
	//
	// Pick does not count the request: the caller calls [Node.Begin] on
	// the chosen member's node when it commits to it.
	//
	// To keep Pick free of allocations, pass a function value created
	// once (for example a method value stored in per-event-loop state),
	// not a closure literal built per request: a closure that captures
	// variables escapes to the heap when passed through this interface.
	Pick(key uint64, ok func(i int) bool) int

	// Name returns the policy's registry name, e.g. "round-robin".
	Name() string
}

// Member is one backend as a Policy sees it.
type Member struct {
	// Node is the backend's long-lived runtime state; it must not be nil,
	// and a Node may appear only once in a member list.
	Node *Node
	// Weight is the backend's relative share of traffic, 0 to
	// [MaxWeight]; 0 means the member is never picked (drain).
	// round-robin ignores weights other than 0.
	Weight int
}

// Registry names of the policies, as accepted by [New] and written in
// loadBalancing.algorithm.
const (
	NameRoundRobin         = "round-robin"
	NameWeightedRoundRobin = "weighted-round-robin"
	NameLeastConnections   = "least-connections"
	NameP2C                = "p2c"
	NameEWMA               = "ewma"
	NameConsistentHash     = "consistent-hash"
	NameRandom             = "random"
)

// Defaults and limits of [Options] and [Member].
const (
	// DefaultHashLoadFactor is the bounded-load factor c of
	// consistent-hash when Options.HashLoadFactor is 0.
	DefaultHashLoadFactor = 1.25
	// DefaultEWMADecay is the time constant of the latency estimate when
	// Options.EWMADecay is 0.
	DefaultEWMADecay = 10 * time.Second
	// MaxWeight is the largest member weight New accepts.
	MaxWeight = 1_000_000
	// MaxSlowStart is the longest slow-start window New accepts.
	MaxSlowStart = 24 * time.Hour
)

// Options tune a Policy. The zero value is valid and selects the defaults.
type Options struct {
	// HashLoadFactor is consistent-hash's bound c: no member takes more
	// than ceil(c × its weighted share of the in-flight requests, this one
	// included). 0 means [DefaultHashLoadFactor]; otherwise it must be at
	// least 1. +Inf disables the bound (pure consistent hashing).
	HashLoadFactor float64
	// SlowStart is the time over which a node that comes back up
	// ([Node.SetUp]) ramps its effective weight linearly from 10 % to
	// 100 %. 0 (the default) disables slow start.
	SlowStart time.Duration
	// EWMADecay is the time constant (tau) of ewma's latency estimate:
	// a latency below the estimate moves it by 1-e^(-Δt/tau) of the gap.
	// 0 means [DefaultEWMADecay].
	EWMADecay time.Duration
	// MaxPenalty bounds the failure penalty ewma adds to a node's latency
	// estimate (see [Node.End]); the proxy sets the response-head
	// timeout, the longest a successful request waits. 0 means no bound
	// but the estimate itself.
	MaxPenalty time.Duration
	// Rand returns uniformly distributed 64-bit values. It is called at
	// most once per Pick (a per-call generator is seeded from it) and
	// must be safe for concurrent use. nil means math/rand/v2's Uint64,
	// the runtime's lock-free per-thread ChaCha8 generator.
	Rand func() uint64
	// Now returns the current time in unix nanoseconds (or any other
	// nanosecond clock shared with [Node.End] and [Node.SetUp]). It is
	// called at most once per Pick, and only by ewma and while some node
	// is in its slow-start window. It must be safe for concurrent use; a
	// coarse clock (an atomic refreshed every millisecond) is fine. nil
	// means time.Now().UnixNano().
	Now func() int64
}

// ErrUnknownPolicy is wrapped by the error New returns for a name that is
// not in the registry.
var ErrUnknownPolicy = errors.New("unknown load-balancing policy")

// registry lists the policies in the order [Names] reports them.
var registry = []struct {
	name  string
	build func(set, Options) Policy
}{
	{NameRoundRobin, newRoundRobin},
	{NameWeightedRoundRobin, newWeightedRoundRobin},
	{NameLeastConnections, newLeastConnections},
	{NameP2C, newP2C},
	{NameEWMA, newEWMA},
	{NameConsistentHash, newConsistentHash},
	{NameRandom, newRandom},
}

// Names returns the registry names of all policies, in a fixed order
// (round-robin first). The caller owns the returned slice.
func Names() []string {
	names := make([]string, len(registry))
	for i, r := range registry {
		names[i] = r.name
	}
	return names
}

// New builds the policy registered under name over members.
//
// The returned Policy keeps its own copy of the member list; members may
// be reused by the caller. New fails for an unknown name (the error wraps
// [ErrUnknownPolicy] and lists the valid names), a nil or repeated Node, a
// weight outside 0..[MaxWeight], invalid options, or — for consistent-hash
// only — two nodes with the same name.
//
// Building an ewma policy stores its EWMADecay and MaxPenalty on every
// member's Node (see [Node.End]). Building a policy does not otherwise write to nodes.
func New(name string, members []Member, opts Options) (Policy, error) {
	for _, r := range registry {
		if r.name != name {
			continue
		}
		if err := opts.validate(); err != nil {
			return nil, err
		}
		s, err := newSet(members, opts)
		if err != nil {
			return nil, err
		}
		if name == NameConsistentHash {
			if err := distinctNames(members); err != nil {
				return nil, err
			}
		}
		return r.build(s, opts), nil
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownPolicy, name, strings.Join(Names(), ", "))
}

// validate checks opts and fills in defaults.
func (o *Options) validate() error {
	switch {
	case o.HashLoadFactor == 0:
		o.HashLoadFactor = DefaultHashLoadFactor
	case math.IsNaN(o.HashLoadFactor) || o.HashLoadFactor < 1:
		return fmt.Errorf("balancer: hash load factor must be at least 1, got %v", o.HashLoadFactor)
	}
	if o.SlowStart < 0 || o.SlowStart > MaxSlowStart {
		return fmt.Errorf("balancer: slow start must be between 0 and %v, got %v", MaxSlowStart, o.SlowStart)
	}
	switch {
	case o.EWMADecay == 0:
		o.EWMADecay = DefaultEWMADecay
	case o.EWMADecay < 0:
		return fmt.Errorf("balancer: EWMA decay must be positive, got %v", o.EWMADecay)
	}
	if o.MaxPenalty < 0 {
		return fmt.Errorf("balancer: max penalty must not be negative, got %v", o.MaxPenalty)
	}
	if o.Rand == nil {
		o.Rand = rand.Uint64
	}
	if o.Now == nil {
		o.Now = wallClock
	}
	return nil
}

func wallClock() int64 { return time.Now().UnixNano() }

func distinctNames(members []Member) error {
	seen := make(map[string]int, len(members))
	for i, m := range members {
		if j, dup := seen[m.Node.name]; dup {
			return fmt.Errorf("balancer: members %d and %d have the same node name %q; consistent-hash places members by name", j, i, m.Node.name)
		}
		seen[m.Node.name] = i
	}
	return nil
}
