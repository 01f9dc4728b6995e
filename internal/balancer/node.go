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
	name   string
	id     uint64       // HashString(name): consistent-hash ring positions
	state  atomic.Int64 // 0: up, steady; stateDown; otherwise the ramp start
	decay  atomic.Int64 // ewma time constant in ns; 0: DefaultEWMADecay
	penCap atomic.Int64 // ewma's Options.MaxPenalty in ns; 0: none

	// Written on every request; kept off the line above so that policies
	// that only read state do not miss cache on every Begin/End elsewhere.
	_        [64]byte
	inflight atomic.Int64
	rtt      atomic.Uint64 // packed latency estimate, see packRTT; 0: none
	pen      atomic.Uint64 // packed failure penalty, same format; 0: none
	_        [40]byte
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
// called when the tunnel closes), or, for a failed request, to the
// failure; a negative latency records no sample, for requests that never
// got an answer (client gone, connection refused before sending).
//
// The estimate is a peak EWMA of the latencies the backend answered
// with: a latency above the current estimate replaces it at once; a lower
// one moves it by 1-e^(-Δt/tau) of the gap, where Δt is the time since
// the previous update and tau is the EWMADecay of the last ewma policy
// built over this node ([DefaultEWMADecay] if none).
//
// failed reports a request the backend failed (a gateway failure:
// connect error, reset, timeout, 502/503/504). A failure's latency can
// raise the estimate (a timeout is a real observation) but never lowers
// it, so a backend that fails fast does not look fast; and it sets the
// node's failure penalty, which ewma adds to the estimate, to the
// estimate itself: the cost of a failing backend doubles. The penalty is
// bounded: it never exceeds the estimate (itself never above the slowest
// answer observed) nor the MaxPenalty of the last ewma policy built over
// the node, and further failures renew it without adding to it. It
// decays towards 0 with time constant tau, also while the node is idle,
// so the cost returns to the real latency a few tau after the last
// failure.
//
// Updates from several goroutines are serialised with compare-and-swap on
// one word each, so none is lost.
func (n *Node) End(now int64, latency time.Duration, failed bool) {
	n.inflight.Add(-1)
	if latency < 0 && !failed {
		return
	}
	tau := n.tau()
	unit := stampOf(now)
	est := 0.0
	if latency >= 0 {
		est = n.observe(unit, float64(latency), failed, tau)
	} else if v := n.rtt.Load(); v != 0 {
		est, _ = unpackRTT(v)
	}
	if failed && est > 0 {
		p := est * failurePenalty
		if c := n.penCap.Load(); c > 0 {
			p = min(p, float64(c))
		}
		n.penalize(unit, p, tau)
	}
}

// failurePenalty is a failure's penalty as a multiple of the latency
// estimate.
const failurePenalty = 1.0

// tau is the node's time constant in ns.
func (n *Node) tau() float64 {
	if tau := float64(n.decay.Load()); tau > 0 {
		return tau
	}
	return float64(DefaultEWMADecay)
}

// observe feeds one latency sample to the estimate at time unit and
// returns the new estimate. A failed request's sample only raises it.
func (n *Node) observe(unit uint32, sample float64, failed bool, tau float64) float64 {
	for {
		old := n.rtt.Load()
		next, stamp := sample, unit
		if old != 0 {
			est, last := unpackRTT(old)
			if failed && sample <= est {
				return est
			}
			w := 1.0
			if dt := int32(unit - last); dt > 0 {
				w = expNeg(float64(dt) * stampUnit / tau)
			} else {
				stamp = last // an older clock reading from another loop
			}
			if sample < est {
				next = est*w + sample*(1-w)
			}
		}
		v := packRTT(next, stamp)
		if n.rtt.CompareAndSwap(old, v) {
			est, _ := unpackRTT(v)
			return est
		}
	}
}

// penalize raises the failure penalty, decayed to time unit, to at least p.
func (n *Node) penalize(unit uint32, p float64, tau float64) {
	for {
		old := n.pen.Load()
		if old != 0 {
			cur, last := unpackRTT(old)
			if dt := int32(unit - last); dt > 0 {
				cur *= expNeg(float64(dt) * stampUnit / tau)
			}
			if cur >= p {
				return
			}
		}
		if n.pen.CompareAndSwap(old, packRTT(p, unit)) {
			return
		}
	}
}

// InFlight returns the number of requests counted by Begin and not yet by
// End.
func (n *Node) InFlight() int64 { return n.inflight.Load() }

// Latency returns the latency estimate as of the last End, without the
// decay ewma applies at pick time and without the failure penalty, or 0
// when no latency was recorded yet.
func (n *Node) Latency() time.Duration {
	v := n.rtt.Load()
	if v == 0 {
		return 0
	}
	est, _ := unpackRTT(v)
	return time.Duration(est)
}

// Penalty returns the failure penalty (see [Node.End]) at time now (unix
// ns): what ewma adds to the latency estimate of a backend that failed
// recently. It is 0 for a node that never failed and decays towards 0
// with the node's time constant.
func (n *Node) Penalty(now int64) time.Duration {
	p, _ := n.penAt(stampOf(now), stampUnit/n.tau())
	return time.Duration(p)
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
// decay lets a backend that was slow and then left idle be tried again.
func (n *Node) rttAt(unit uint32, k float64) (float64, bool) {
	return decayedAt(n.rtt.Load(), unit, k)
}

// penAt returns the node's failure penalty decayed to time unit, and
// whether it has one.
func (n *Node) penAt(unit uint32, k float64) (float64, bool) {
	return decayedAt(n.pen.Load(), unit, k)
}

// decayedAt unpacks v (0: none) and decays it towards 0 for the time from
// its stamp to unit.
func decayedAt(v uint64, unit uint32, k float64) (float64, bool) {
	if v == 0 {
		return 0, false
	}
	x, last := unpackRTT(v)
	if dt := int32(unit - last); dt > 0 {
		x *= expNeg(float64(dt) * k)
	}
	return x, true
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
