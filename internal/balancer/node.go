package balancer

import (
	"math"
	"sync/atomic"
	"time"
)

// Node is the runtime state of one backend that must outlive a Policy: its
// in-flight request count, its latency estimate and its slow-start ramp.
// The proxy keeps one Node per backend (keyed by the backend's identity,
// its address) for as long as the backend is in the configuration and
// passes it to every Policy it builds, so the state survives reloads.
//
// The zero value is a usable node with an empty name that is up, has no
// request in flight and no latency estimate. Use [NewNode] to give it a
// name (consistent-hash needs distinct names).
//
// All methods are safe for concurrent use. A Node must not be copied after
// first use. Policies only read a node, except to clear a slow-start ramp
// that has run its course and, when an ewma policy is built, to store its
// decay time constant.
type Node struct {
	// Read on every pick, written rarely.
	name  string
	id    uint64       // HashString(name): consistent-hash ring positions
	state atomic.Int64 // 0: up, steady; stateDown; otherwise the ramp start
	decay atomic.Int64 // ewma time constant in ns; 0: DefaultEWMADecay

	// Written on every request; kept off the line above so that policies
	// that only read state do not miss cache on every Begin/End elsewhere.
	_        [64]byte
	inflight atomic.Int64
	rtt      atomic.Uint64 // packed latency estimate, see packRTT; 0: none
	_        [48]byte
}

// stateDown marks a node that is down (between SetDown and SetUp).
const stateDown = math.MinInt64

// NewNode returns a node named name, normally the backend's canonical
// address (config.Backend.Addr, "host:port"). The name places the node on
// the consistent-hash ring, so a backend keeps its keys across restarts
// and reloads as long as its name is the same.
func NewNode(name string) *Node {
	return &Node{name: name, id: HashString(name)}
}

// Name returns the name given to NewNode ("" for a zero Node).
func (n *Node) Name() string { return n.name }

// Begin counts a request (or an open tunnel) assigned to the node. Every
// Begin must be matched by exactly one End.
func (n *Node) Begin() { n.inflight.Add(1) }

// End counts the end of a request that Begin counted, at time now (unix
// ns, the same clock as Options.Now), and feeds its latency to the node's
// latency estimate.
//
// latency is the time from sending the request head to receiving the
// response head (for a tunnel: to the 101 or 2xx answer, even though End is
// called when the tunnel closes); a negative latency records nothing, for
// requests that never got an answer for reasons not the backend's (client
// gone). failed reports a request the backend failed (connect error, reset,
// timeout, 5xx if the caller counts those): an existing estimate then at
// least doubles, so a backend that fails fast does not attract traffic
// under ewma.
//
// The estimate is a peak EWMA: a latency above the current estimate
// replaces it at once; a lower one moves it by 1-e^(-Δt/tau) of the gap,
// where Δt is the time since the previous update and tau is the
// EWMADecay of the last ewma policy built over this node
// ([DefaultEWMADecay] if none). Updates from several goroutines are
// serialised with compare-and-swap on one word, so none is lost.
func (n *Node) End(now int64, latency time.Duration, failed bool) {
	n.inflight.Add(-1)
	if latency < 0 {
		return
	}
	tau := float64(n.decay.Load())
	if tau <= 0 {
		tau = float64(DefaultEWMADecay)
	}
	sample := float64(latency)
	unit := stampOf(now)
	for {
		old := n.rtt.Load()
		next, stamp := sample, unit
		if old != 0 {
			est, last := unpackRTT(old)
			w := 1.0
			if dt := int32(unit - last); dt > 0 {
				w = expNeg(float64(dt) * stampUnit / tau)
			} else {
				stamp = last // an older clock reading from another loop
			}
			if sample < est {
				next = est*w + sample*(1-w)
			}
			if failed {
				next = max(next, 2*est*w)
			}
		}
		if n.rtt.CompareAndSwap(old, packRTT(next, stamp)) {
			return
		}
	}
}

// InFlight returns the number of requests counted by Begin and not yet by
// End.
func (n *Node) InFlight() int64 { return n.inflight.Load() }

// Latency returns the latency estimate as of the last End, without the
// decay ewma applies at pick time, or 0 when no latency was recorded yet.
func (n *Node) Latency() time.Duration {
	v := n.rtt.Load()
	if v == 0 {
		return 0
	}
	est, _ := unpackRTT(v)
	return time.Duration(est)
}

// SetDown records that the node went down (failed health checks, open
// circuit). The policies do not read this: availability is the Pick
// predicate's business. It arms slow start: the next SetUp starts the ramp.
func (n *Node) SetDown() { n.state.Store(stateDown) }

// SetUp records that the node is up again at time now. If it was down,
// its effective weight ramps from 10 % to 100 % over Options.SlowStart
// starting at now (policies built without SlowStart ignore the ramp). It
// reports whether the node was down. Calling SetUp on a node that is up
// does nothing, so the proxy may call it on every passing health check.
//
// A zero or new Node is up and steady. For a backend that joins a running
// proxy and should ramp up, call SetDown when creating its node and SetUp
// when it is first found healthy (or at once).
func (n *Node) SetUp(now int64) bool {
	if now == 0 || now == stateDown {
		now++ // 0 and stateDown are reserved
	}
	return n.state.CompareAndSwap(stateDown, now)
}

// Up reports whether the node is up: SetDown was not called, or SetUp was
// called after it.
func (n *Node) Up() bool { return n.state.Load() != stateDown }

// The latency estimate is packed into one word so that End can update it
// with a single compare-and-swap: the high 32 bits hold the estimate in
// nanoseconds as a float32, the low 32 bits the time of the update in
// units of 2^20 ns (about 1 ms), which wraps every 52 days; differences are
// taken modulo 2^32 and read as signed.
const (
	stampShift = 20
	stampUnit  = 1 << stampShift // ns
	minRTT     = 1               // ns; keeps a packed estimate non-zero
	maxRTT     = float64(time.Hour)
)

func stampOf(now int64) uint32 { return uint32(now >> stampShift) }

func packRTT(est float64, stamp uint32) uint64 {
	est = min(max(est, minRTT), maxRTT)
	return uint64(math.Float32bits(float32(est)))<<32 | uint64(stamp)
}

func unpackRTT(v uint64) (est float64, stamp uint32) {
	return float64(math.Float32frombits(uint32(v >> 32))), uint32(v)
}

// rttAt returns the node's latency estimate decayed towards 0 for the time
// since its last update (k is stampUnit/tau), and whether it has one. The
// decay lets a backend that was penalised and then left idle be tried
// again.
func (n *Node) rttAt(unit uint32, k float64) (float64, bool) {
	v := n.rtt.Load()
	if v == 0 {
		return 0, false
	}
	est, last := unpackRTT(v)
	if dt := int32(unit - last); dt > 0 {
		est *= expNeg(float64(dt) * k)
	}
	return est, true
}

// load returns the in-flight count, never negative (an End racing ahead of
// its Begin on another loop can make the counter dip briefly).
func (n *Node) load() int64 { return max(n.inflight.Load(), 0) }

// expNeg returns e^-x for x >= 0. Δt is usually milliseconds against a tau
// of seconds, so x is small; there a Taylor polynomial is within 3e-9 of
// math.Exp and several times cheaper.
func expNeg(x float64) float64 {
	if x < 1.0/64 {
		return 1 - x*(1-x*(0.5-x/6))
	}
	return math.Exp(-x)
}
