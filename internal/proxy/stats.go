package proxy

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/grpcwire"
	"github.com/connx/connx/internal/ratelimit"
	"github.com/connx/connx/internal/stats"
)

// Requests are counted per event loop, by the loop alone, in counters that
// a scrape reads and sums (Server.Stats): no lock, no shared cache line and
// no label lookup per request. Each counter is an atomic only so that the
// scrape's reads are well defined; the loop is its single writer.

// loopStats are one loop's counters.
type loopStats struct {
	errors   [stats.NumErrorKinds]atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	tunnels  atomic.Int64
	refused  atomic.Uint64 // connections refused at limits.maxConnections or the fd limit
	denied   atomic.Uint64 // connections and requests refused by allow/deny
	dropped  atomic.Uint64 // request header fields dropped (underscore in the name)

	h2conns   atomic.Int64  // open HTTP/2 client connections
	h2streams atomic.Uint64 // HTTP/2 streams (requests) opened, ever

	// slots holds the per-backend counters by slot: a backend's id + 1,
	// a pool's noneID + 1 for its requests no backend took, 0 for requests
	// ConnX answered before choosing a pool. It grows copy-on-write, on
	// the loop, when a new slot is first used.
	slots atomic.Pointer[[]*slotStats]
	// routes holds the per-route counters by route id (routeIDs), grown
	// the same way.
	routes atomic.Pointer[[]*routeStats]
}

// routeStats count the requests of one route on one loop.
type routeStats struct {
	classes [5]atomic.Uint64 // by status class, 1xx-5xx
	hist    [numBuckets]atomic.Uint64
	sumNs   atomic.Int64
}

// slotStats count the requests of one backend (or of none) on one loop,
// by protocol (an index in stats.Protocols).
type slotStats struct {
	codes [numProtocols][len(stats.Methods)]atomic.Pointer[codeCounts] // by method index, made on first use
	grpc  atomic.Pointer[grpcCounts]                                   // gRPC calls on HTTP/2 pools, made on first use
	hist  [numProtocols][numBuckets]atomic.Uint64                      // request durations, not cumulative
	sumNs [numProtocols]atomic.Int64
}

// numProtocols is len(stats.Protocols): protoHTTP1 and protoH2 index it.
const (
	protoHTTP1 = iota
	protoH2
	numProtocols
)

// The indexes above match stats.Protocols (a compile-time check).
var _ = [1]struct{}{}[numProtocols-len(stats.Protocols)]

// codeCounts counts requests by status code 100-599.
type codeCounts [500]atomic.Uint64

// grpcCounts counts gRPC calls by status: 0-16, then "other".
type grpcCounts [grpcwire.MaxStatus + 2]atomic.Uint64

// grpcOther is grpcCounts' index for a status gRPC does not define, or
// none.
const grpcOther = grpcwire.MaxStatus + 1

// grpcLabels are the grpc_status labels of grpcCounts' entries.
var grpcLabels = func() (l [grpcOther + 1]string) {
	for i := range grpcOther {
		l[i] = strconv.Itoa(i)
	}
	l[grpcOther] = "other"
	return l
}()

const numBuckets = 15 // len(stats.DurationBuckets) + 1

// bucketBounds are stats.DurationBuckets in nanoseconds.
var bucketBounds = func() [numBuckets - 1]int64 {
	var b [numBuckets - 1]int64
	if len(stats.DurationBuckets) != len(b) {
		panic("proxy: numBuckets does not match stats.DurationBuckets")
	}
	for i, s := range stats.DurationBuckets {
		b[i] = int64(s * float64(time.Second))
	}
	return b
}()

// methodOther is the index of "OTHER" in stats.Methods.
const methodOther = uint8(len(stats.Methods) - 1)

// methodIndex maps a request method to its index in stats.Methods.
func methodIndex(m []byte) uint8 {
	switch string(m) {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodDelete:
		return 4
	case http.MethodPatch:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodTrace:
		return 7
	case http.MethodConnect:
		return 8
	}
	return methodOther
}

// slot returns the counters of slot i on this loop, making them on first
// use. It runs on the loop.
func (st *loopStats) slot(i int) *slotStats {
	if p := st.slots.Load(); p != nil && i < len(*p) && (*p)[i] != nil {
		return (*p)[i]
	}
	var old []*slotStats
	if p := st.slots.Load(); p != nil {
		old = *p
	}
	grown := make([]*slotStats, max(len(old), i+1))
	copy(grown, old)
	grown[i] = new(slotStats)
	st.slots.Store(&grown)
	return grown[i]
}

// count records one finished request of protocol proto in slot i.
func (st *loopStats) count(i, proto int, method uint8, code int, durNs int64) {
	s := st.slot(i)
	cc := s.codes[proto][method].Load()
	if cc == nil {
		cc = new(codeCounts)
		s.codes[proto][method].Store(cc)
	}
	if code < 100 || code > 599 {
		code = 599
	}
	cc[code-100].Add(1)
	b := bucketOf(durNs)
	s.hist[proto][b].Add(1)
	s.sumNs[proto].Add(durNs)
}

// countGRPC records one finished gRPC call in slot i with gRPC status
// code (any other value than 0-16: "other").
func (st *loopStats) countGRPC(i int, code int) {
	s := st.slot(i)
	gc := s.grpc.Load()
	if gc == nil {
		gc = new(grpcCounts)
		s.grpc.Store(gc)
	}
	if code < 0 || code > grpcwire.MaxStatus {
		code = grpcOther
	}
	gc[code].Add(1)
}

func bucketOf(durNs int64) int {
	b := 0
	for b < len(bucketBounds) && durNs > bucketBounds[b] {
		b++
	}
	return b
}

// countRoute records one finished request of route id.
func (st *loopStats) countRoute(id int, code int, durNs int64) {
	var rs *routeStats
	if p := st.routes.Load(); p != nil && id < len(*p) && (*p)[id] != nil {
		rs = (*p)[id]
	} else {
		var old []*routeStats
		if p != nil {
			old = *p
		}
		grown := make([]*routeStats, max(len(old), id+1))
		copy(grown, old)
		rs = new(routeStats)
		grown[id] = rs
		st.routes.Store(&grown)
	}
	c := code/100 - 1
	if c < 0 || c > 4 {
		c = 4
	}
	rs.classes[c].Add(1)
	rs.hist[bucketOf(durNs)].Add(1)
	rs.sumNs.Add(durNs)
}

// Stats fills snap with the server's current state. It is a stats.Source:
// safe from any goroutine, and it does not wait for the event loops.
func (s *Server) Stats(snap *stats.Snapshot) {
	now := time.Now()
	sn := s.snap.Load()
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()

	snap.Time = now
	snap.Started = s.started
	snap.Active = s.active.Load()
	snap.Parked = s.detached.Load()
	snap.Closing = s.flushing.Load()
	for _, lp := range loops {
		st := &lp.st
		for k := range snap.Errors {
			snap.Errors[k] += st.errors[k].Load()
		}
		snap.BytesIn += st.bytesIn.Load()
		snap.BytesOut += st.bytesOut.Load()
		snap.Tunnels += st.tunnels.Load()
		snap.Refused += st.refused.Load()
		snap.Denied += st.denied.Load()
		snap.DroppedHeaders += st.dropped.Load()
	}
	for i := range snap.ProxyProtocolErrors {
		snap.ProxyProtocolErrors[i] = s.pp[i].Load()
	}

	s.collectSlot(snap, loops, 0, stats.NoBackend, "")
	ns := now.UnixNano()
	for _, pl := range sn.pools {
		ps := stats.Pool{Name: pl.name, Backends: len(pl.members), Panic: pl.panicking(), Panics: pl.pn.entered.Load(),
			Discovery: s.discoveryStatus(pl.name)}
		for i := range pl.members {
			m := &pl.members[i]
			up := pl.usable(m, ns)
			if up {
				ps.Up++
			}
			snap.Backends = append(snap.Backends, stats.Backend{
				Pool:           pl.name,
				Name:           m.url,
				Addr:           m.addr,
				Weight:         m.weight,
				Health:         m.hb.State(ns),
				Up:             up,
				InFlight:       m.node.InFlight(),
				Latency:        m.node.Latency(),
				LatencyPenalty: m.node.Penalty(ns),
				IdleConns:      m.idleConns.Load(),
				OpenConns:      m.openConns.Load(),
			})
			s.collectSlot(snap, loops, m.id+1, m.url, pl.name)
		}
		s.collectSlot(snap, loops, pl.st.noneID+1, stats.NoBackend, pl.name)
		if pl == sn.def {
			snap.Pool = ps
		}
		snap.Pools = append(snap.Pools, ps)
	}
	for i := range sn.acts {
		snap.Routes = append(snap.Routes, s.collectRoute(loops, &sn.acts[i]))
	}
	if sn.limiter != nil {
		snap.RateLimit = limiterStats(sn.limiter)
	}
	if lg := s.accessLog.Load(); lg != nil {
		snap.AccessLog.Enabled = true
		snap.AccessLog.Written, snap.AccessLog.Dropped = lg.Stats()
	}
	snap.AccessLog.Written += s.logRetired[0].Load()
	snap.AccessLog.Dropped += s.logRetired[1].Load()
	s.tlsSnapshot(snap)
}

// limiterStats are lim's counters.
func limiterStats(lim *ratelimit.Limiter) stats.RateLimit {
	ls := lim.Stats()
	return stats.RateLimit{
		Enabled: true, Allowed: ls.Allowed, Rejected: ls.Rejected,
		Exempt: ls.Exempt, Keys: ls.Keys, Evicted: ls.Evicted,
	}
}

// collectRoute sums route a's counters over loops.
func (s *Server) collectRoute(loops []*loop, a *routeAct) stats.Route {
	r := stats.Route{Name: a.label, Duration: stats.Histogram{Counts: make([]uint64, numBuckets)}}
	switch a.action {
	case actPool:
		r.Action, r.Pool = "pool", a.pool.name
	case actRedirect:
		r.Action = "redirect"
	case actRespond:
		r.Action = "respond"
	}
	var sumNs int64
	for _, lp := range loops {
		p := lp.st.routes.Load()
		if p == nil || a.id >= len(*p) || (*p)[a.id] == nil {
			continue
		}
		rs := (*p)[a.id]
		for c := range rs.classes {
			r.Requests[c] += rs.classes[c].Load()
		}
		for b := range rs.hist {
			r.Duration.Counts[b] += rs.hist[b].Load()
		}
		sumNs += rs.sumNs.Load()
	}
	for _, n := range r.Duration.Counts {
		r.Duration.Count += n
	}
	r.Duration.Sum = float64(sumNs) / float64(time.Second)
	if a.limiter != nil {
		r.RateLimit = limiterStats(a.limiter)
	}
	return r
}

// collectSlot adds the request counts and durations of slot i, summed over
// loops, to snap under the backend name and pool: per protocol, the
// "http1" histogram always (for a backend; for none once it counted a
// request), the "h2" one once it counted an HTTP/2 request.
func (s *Server) collectSlot(snap *stats.Snapshot, loops []*loop, i int, name, pool string) {
	var codes [numProtocols][len(stats.Methods)]*[500]uint64
	var hs [numProtocols]stats.Histogram
	var sumNs [numProtocols]int64
	for p := range hs {
		hs[p] = stats.Histogram{Backend: name, Pool: pool, Protocol: stats.Protocols[p], Counts: make([]uint64, numBuckets)}
	}
	seen := false
	for _, lp := range loops {
		ptr := lp.st.slots.Load()
		if ptr == nil || i >= len(*ptr) || (*ptr)[i] == nil {
			continue
		}
		seen = true
		sl := (*ptr)[i]
		for p := range sl.codes {
			for m := range sl.codes[p] {
				cc := sl.codes[p][m].Load()
				if cc == nil {
					continue
				}
				if codes[p][m] == nil {
					codes[p][m] = new([500]uint64)
				}
				for c := range cc {
					codes[p][m][c] += cc[c].Load()
				}
			}
			for b := range sl.hist[p] {
				hs[p].Counts[b] += sl.hist[p][b].Load()
			}
			sumNs[p] += sl.sumNs[p].Load()
		}
	}
	if !seen && name == stats.NoBackend {
		return // no request without a backend: no "none" series
	}
	var calls [grpcOther + 1]uint64
	for _, lp := range loops {
		if p := lp.st.slots.Load(); p != nil && i < len(*p) && (*p)[i] != nil {
			if gc := (*p)[i].grpc.Load(); gc != nil {
				for c := range gc {
					calls[c] += gc[c].Load()
				}
			}
		}
	}
	for c, n := range calls {
		if n > 0 {
			snap.GRPCCalls = append(snap.GRPCCalls, stats.GRPCCount{Status: grpcLabels[c], Backend: name, Pool: pool, Count: n})
		}
	}
	for p := range codes {
		for m, cc := range codes[p] {
			if cc == nil {
				continue
			}
			for c, n := range cc {
				if n > 0 {
					snap.Requests = append(snap.Requests, stats.RequestCount{
						Method: stats.Methods[m], Code: c + 100, Backend: name, Pool: pool,
						Protocol: stats.Protocols[p], Count: n,
					})
				}
			}
		}
		h := &hs[p]
		for _, n := range h.Counts {
			h.Count += n
		}
		h.Sum = float64(sumNs[p]) / float64(time.Second)
		if p == protoHTTP1 || h.Count > 0 {
			snap.Durations = append(snap.Durations, *h)
		}
	}
}
