package admin

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/connx/connx/internal/stats"
)

// The JSON documents of the API. Field names are snake_case and stable;
// docs/admin.md shows an example of each. Times are RFC 3339 in UTC, null
// when the event has not happened.

// Backend states, the value of Backend.State, from the most to the least
// severe: the first that applies wins.
const (
	StateDown     = "down"      // failing active checks, or not available for another reason
	StateEjected  = "ejected"   // ejected by outlier detection
	StateOpen     = "open"      // circuit breaker open
	StateHalfOpen = "half-open" // circuit breaker admitting probes
	StateDraining = "draining"  // weight 0: receives no new requests, so never up
	StateUp       = "up"
)

// Backend is one element of GET /api/backends: one member of one pool.
// The same URL in two pools is two Backends with their own state.
type Backend struct {
	Name   string `json:"name"`   // the URL as configured
	Pool   string `json:"pool"`   // the pool's name; "default" for the top-level backends
	Addr   string `json:"addr"`   // host:port dialled
	Weight int    `json:"weight"` // 0 drains
	// State summarises the fields below in one word: one of the State*
	// constants.
	State string `json:"state"`
	// Up is whether the balancer may pick the backend now: weight above
	// 0 and available, or healthy while the pool is in panic mode.
	Up bool `json:"up"`

	Healthy      bool       `json:"healthy"`       // active check verdict; true before the first check and when checks are off
	Checked      bool       `json:"checked"`       // an active check has finished
	HealthSince  *time.Time `json:"health_since"`  // last change of healthy
	LastCheck    *time.Time `json:"last_check"`    // last finished active check
	ChecksOK     uint64     `json:"checks_ok"`     // active checks passed
	ChecksFailed uint64     `json:"checks_failed"` // active checks failed

	Ejected      bool       `json:"ejected"`       // ejected by outlier detection now
	EjectedUntil *time.Time `json:"ejected_until"` // end of the current ejection; null when not ejected
	Ejections    int        `json:"ejections"`     // ejections in the current run

	Breaker         string     `json:"breaker"`          // "closed", "open", "half-open" or "disabled"
	BreakerSince    *time.Time `json:"breaker_since"`    // last breaker transition
	BreakerFailures int        `json:"breaker_failures"` // consecutive failures counted by a closed breaker

	InFlight  int64   `json:"in_flight"`  // requests and tunnels in progress
	LatencyMS float64 `json:"latency_ms"` // the balancer's moving average of response-head latency; 0 if none yet
	// PenaltyMS is what recent gateway failures add to latency_ms in the
	// ewma policy's cost (at most latency_ms; it fades within a few
	// loadBalancing.ewmaDecay); 0 if none.
	PenaltyMS float64 `json:"latency_penalty_ms"`
	IdleConns int64   `json:"idle_conns"` // pooled idle upstream connections
	OpenConns int64   `json:"open_conns"` // open upstream connections

	Requests uint64 `json:"requests"` // finished requests, cumulative
	Errors   uint64 `json:"errors"`   // of those, answered with a 5xx status

	LastError   string     `json:"last_error"`    // most recent problem, from an active check or a request; "" if none
	LastErrorAt *time.Time `json:"last_error_at"` // when
}

// Readiness is the body of GET /readyz. Without a pool parameter it
// covers every pool; with ?pool=NAME, that pool alone (Pools has it only).
type Readiness struct {
	// Ready is whether a request can be forwarded now: at least one
	// backend is up. A configuration without backends, whose routes all
	// redirect or respond, is ready. With ?pool=NAME: a backend of that
	// pool is up.
	Ready      bool `json:"ready"`
	BackendsUp int  `json:"backends_up"` // backends that may be picked now
	Backends   int  `json:"backends"`    // backends configured
	Panic      bool `json:"panic"`       // a pool is in panic mode (loadBalancing.panicThreshold)
	// Pools has each pool's part, the default pool first; never null.
	Pools []PoolState `json:"pools"`
}

// PoolState is one pool's readiness, in /readyz and GET /api/pools.
type PoolState struct {
	Name       string `json:"name"`        // "default" for the top-level backends
	Ready      bool   `json:"ready"`       // at least one of its backends is up
	BackendsUp int    `json:"backends_up"` // its backends that may be picked now
	Backends   int    `json:"backends"`    // its backends configured
	Panic      bool   `json:"panic"`       // in panic mode now: breakers and ejection are ignored
}

// Pool is one element of GET /api/pools.
type Pool struct {
	PoolState
	Panics uint64 `json:"panics"` // times the pool entered panic mode since start
	// Requests counts the finished requests sent to the pool, including
	// the 503s ConnX answered when none of its backends was available;
	// Errors counts those answered with a 5xx status.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Discovery is the state of the pool's DNS discovery; absent for a
	// pool with a fixed backend list.
	Discovery *Discovery `json:"discovery,omitempty"`
}

// Discovery is a pool's DNS discovery in GET /api/pools.
type Discovery struct {
	Name string `json:"name"` // the name resolved
	Type string `json:"type"` // "A", "AAAA" or "SRV"
	// State is "starting", "ok", "failing" (the last members are kept),
	// "holding" (the name has no members; the last ones are kept for
	// emptyGrace) or "empty".
	State       string     `json:"state"`
	Members     int        `json:"members"`     // members published last
	Resolutions uint64     `json:"resolutions"` // finished resolutions
	Failures    uint64     `json:"failures"`    // of those, the ones that failed
	LastAnswer  *time.Time `json:"last_answer"` // when a nameserver last answered; null before the first answer
	LastError   string     `json:"last_error"`  // the last resolution's error; "" after one that found members
}

// Route is one element of GET /api/routes.
type Route struct {
	Name   string `json:"name"`   // the route's name, or "routes[i]"
	Action string `json:"action"` // "pool", "redirect" or "respond"
	Pool   string `json:"pool"`   // the pool of a pool route; "" otherwise
	// Requests counts the route's finished requests; Responses splits it
	// by status class (499 counts as 4xx).
	Requests  uint64        `json:"requests"`
	Responses StatusClasses `json:"responses"`
	RateLimit RateLimit     `json:"rate_limit"` // the route's own limiter; enabled false without one
}

// Summary is the body of GET /api/stats: the process as a whole.
type Summary struct {
	Time          time.Time  `json:"time"`           // when the snapshot was taken
	Started       *time.Time `json:"started"`        // process start
	UptimeSeconds float64    `json:"uptime_seconds"` // Time - Started

	Connections Connections `json:"connections"`
	// Requests counts every finished request, including those ConnX
	// answered itself (backend "none"); Responses splits it by status
	// class.
	Requests  uint64            `json:"requests"`
	Responses StatusClasses     `json:"responses"`
	Errors    map[string]uint64 `json:"errors"` // failures by kind, every kind present: no_backend, connect, timeout, ...
	BytesIn   uint64            `json:"bytes_in"`
	BytesOut  uint64            `json:"bytes_out"`

	Backends  BackendCount `json:"backends"`
	RateLimit RateLimit    `json:"rate_limit"`
	AccessLog AccessLog    `json:"access_log"`
	Reloads   Reloads      `json:"reloads"`
}

// Connections counts client connections now open.
type Connections struct {
	Active  int64 `json:"active"`  // open client connections
	Parked  int64 `json:"parked"`  // parked for backpressure
	Closing int64 `json:"closing"` // flushing their last response
	Tunnels int64 `json:"tunnels"` // upgraded (WebSocket) tunnels
}

// StatusClasses counts finished requests by status class; 499 (client
// went away) counts as 4xx.
type StatusClasses struct {
	C1xx uint64 `json:"1xx"`
	C2xx uint64 `json:"2xx"`
	C3xx uint64 `json:"3xx"`
	C4xx uint64 `json:"4xx"`
	C5xx uint64 `json:"5xx"`
}

// BackendCount counts configured backends and those up, and gives the
// pools' panic mode, over every pool.
type BackendCount struct {
	Total  int    `json:"total"`
	Up     int    `json:"up"`
	Panic  bool   `json:"panic"`  // a pool is in panic mode now: its breakers and ejection are ignored
	Panics uint64 `json:"panics"` // times pools entered panic mode since start, summed
}

// RateLimit is the rate limiter's counters.
type RateLimit struct {
	Enabled  bool   `json:"enabled"`
	Allowed  uint64 `json:"allowed"`
	Rejected uint64 `json:"rejected"`
	Exempt   uint64 `json:"exempt"`
	Keys     int    `json:"keys"` // client buckets held
	Evicted  uint64 `json:"evicted"`
}

// AccessLog is the access log writer's counters.
type AccessLog struct {
	Enabled bool   `json:"enabled"`
	Written uint64 `json:"written"`
	Dropped uint64 `json:"dropped"` // queue full
}

// Reloads counts configuration reloads.
type Reloads struct {
	Success     uint64     `json:"success"`
	Failure     uint64     `json:"failure"`
	LastSuccess *time.Time `json:"last_success"`
	LastFailure *time.Time `json:"last_failure"`
	LastError   string     `json:"last_error"` // the last failure's message; "" after a success
}

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) serveReadyz(w http.ResponseWriter, req *http.Request) {
	snap := s.snapshot()
	r := readiness(snap)
	if q := req.URL.Query(); q.Has("pool") {
		name := q.Get("pool")
		i := slices.IndexFunc(r.Pools, func(p PoolState) bool { return p.Name == name })
		if i < 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no pool " + strconv.Quote(name)})
			return
		}
		p := r.Pools[i]
		r = Readiness{Ready: p.Ready, BackendsUp: p.BackendsUp, Backends: p.Backends, Panic: p.Panic, Pools: []PoolState{p}}
	}
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

// readiness is the body of /readyz without a pool parameter. Ready needs
// one backend up in any pool, not in every pool: a pool whose backends
// are all down fails only the requests routed to it, and taking the
// whole proxy out of a load balancer's rotation (every replica sees the
// same backends) would fail the other pools' requests too. Probe one
// pool with ?pool=NAME.
func readiness(snap *stats.Snapshot) Readiness {
	var r Readiness
	for _, p := range snap.PoolList() {
		ps := poolState(&p)
		r.Pools = append(r.Pools, ps)
		r.Backends += ps.Backends
		r.BackendsUp += ps.BackendsUp
		r.Panic = r.Panic || ps.Panic
	}
	r.Ready = r.BackendsUp > 0 || (r.Backends == 0 && len(snap.Routes) > 0)
	return r
}

func poolState(p *stats.Pool) PoolState {
	return PoolState{Name: p.Name, Ready: p.Up > 0, BackendsUp: p.Up, Backends: p.Backends, Panic: p.Panic}
}

func (s *Server) serveBackends(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, backends(s.snapshot()))
}

func (s *Server) servePools(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, pools(s.snapshot()))
}

func (s *Server) serveRoutes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, routes(s.snapshot()))
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, summary(s.snapshot()))
}

func (s *Server) serveConfig(w http.ResponseWriter, _ *http.Request) {
	if s.opt.Config != nil {
		if c := s.opt.Config(); c != nil {
			writeJSON(w, http.StatusOK, redacted(c))
			return
		}
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no configuration loaded"})
}

// writeJSON writes v indented, for people reading the API with curl.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "admin: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// poolMember identifies a backend: the same URL in two pools is two
// members.
type poolMember struct{ pool, name string }

// counts are finished requests and, of those, 5xx answers.
type counts struct{ requests, errors uint64 }

func (c *counts) add(code int, n uint64) {
	c.requests += n
	if code >= 500 && code <= 599 {
		c.errors += n
	}
}

// backends renders the backends of snap, in snap's order (pool by pool,
// the default pool first). It never returns nil, so an empty list
// encodes as [].
func backends(snap *stats.Snapshot) []Backend {
	byMember := make(map[poolMember]counts, len(snap.Backends))
	for _, rc := range snap.Requests {
		k := poolMember{stats.PoolOf(rc.Pool, rc.Backend), rc.Backend}
		c := byMember[k]
		c.add(rc.Code, rc.Count)
		byMember[k] = c
	}
	out := make([]Backend, 0, len(snap.Backends))
	for i := range snap.Backends {
		b := &snap.Backends[i]
		h := &b.Health
		pool := stats.PoolOf(b.Pool, b.Name)
		c := byMember[poolMember{pool, b.Name}]
		j := Backend{
			Name:            b.Name,
			Pool:            pool,
			Addr:            b.Addr,
			Weight:          b.Weight,
			State:           state(b),
			Up:              b.Up,
			Healthy:         h.Healthy,
			Checked:         h.Checked,
			HealthSince:     timeOrNil(h.HealthSince),
			LastCheck:       timeOrNil(h.LastCheck),
			ChecksOK:        h.ChecksOK,
			ChecksFailed:    h.ChecksFailed,
			Ejected:         h.Ejected,
			Ejections:       h.Ejections,
			Breaker:         h.Breaker,
			BreakerSince:    timeOrNil(h.BreakerSince),
			BreakerFailures: h.Failures,
			InFlight:        b.InFlight,
			LatencyMS:       millis(b.Latency),
			PenaltyMS:       millis(b.LatencyPenalty),
			IdleConns:       b.IdleConns,
			OpenConns:       b.OpenConns,
			Requests:        c.requests,
			Errors:          c.errors,
			LastError:       h.LastError,
			LastErrorAt:     timeOrNil(h.LastErrorAt),
		}
		if h.Ejected {
			j.EjectedUntil = timeOrNil(h.EjectedUntil)
		}
		out = append(out, j)
	}
	return out
}

// pools renders the pools of snap, the default pool first; never nil.
func pools(snap *stats.Snapshot) []Pool {
	byPool := make(map[string]counts)
	for _, rc := range snap.Requests {
		if p := stats.PoolOf(rc.Pool, rc.Backend); p != "" {
			c := byPool[p]
			c.add(rc.Code, rc.Count)
			byPool[p] = c
		}
	}
	list := snap.PoolList()
	out := make([]Pool, 0, len(list))
	for i := range list {
		p := &list[i]
		c := byPool[p.Name]
		out = append(out, Pool{PoolState: poolState(p), Panics: p.Panics, Requests: c.requests, Errors: c.errors,
			Discovery: discoveryOf(&p.Discovery)})
	}
	return out
}

// discoveryOf renders a pool's DNS discovery; nil when it has none.
func discoveryOf(d *stats.Discovery) *Discovery {
	if !d.Active {
		return nil
	}
	return &Discovery{Name: d.Name, Type: d.Type, State: d.State, Members: d.Members,
		Resolutions: d.Resolutions, Failures: d.Failures, LastAnswer: timeOrNil(d.LastAnswer), LastError: d.LastError}
}

// routes renders the routes of snap in configuration order; never nil.
func routes(snap *stats.Snapshot) []Route {
	out := make([]Route, 0, len(snap.Routes))
	for i := range snap.Routes {
		r := &snap.Routes[i]
		j := Route{Name: r.Name, Action: r.Action, Pool: r.Pool, RateLimit: rateLimit(&r.RateLimit)}
		for c, n := range r.Requests {
			j.Requests += n
			j.Responses.add(c+1, n)
		}
		out = append(out, j)
	}
	return out
}

// add counts n responses of status class class (1 for 1xx ... 5 for
// 5xx); other classes are not counted.
func (sc *StatusClasses) add(class int, n uint64) {
	switch class {
	case 1:
		sc.C1xx += n
	case 2:
		sc.C2xx += n
	case 3:
		sc.C3xx += n
	case 4:
		sc.C4xx += n
	case 5:
		sc.C5xx += n
	}
}

func rateLimit(rl *stats.RateLimit) RateLimit {
	return RateLimit{
		Enabled:  rl.Enabled,
		Allowed:  rl.Allowed,
		Rejected: rl.Rejected,
		Exempt:   rl.Exempt,
		Keys:     rl.Keys,
		Evicted:  rl.Evicted,
	}
}

// state is Backend.State: the most severe condition that applies.
func state(b *stats.Backend) string {
	h := &b.Health
	switch {
	case !h.Healthy:
		return StateDown
	case h.Ejected:
		return StateEjected
	case h.Breaker == "open":
		return StateOpen
	case h.Breaker == "half-open":
		return StateHalfOpen
	case b.Weight == 0:
		return StateDraining
	case !b.Up:
		return StateDown
	}
	return StateUp
}

func summary(snap *stats.Snapshot) Summary {
	s := Summary{
		Time:    snap.Time.UTC(),
		Started: timeOrNil(snap.Started),
		Connections: Connections{
			Active:  snap.Active,
			Parked:  snap.Parked,
			Closing: snap.Closing,
			Tunnels: snap.Tunnels,
		},
		Errors:    make(map[string]uint64, stats.NumErrorKinds),
		BytesIn:   snap.BytesIn,
		BytesOut:  snap.BytesOut,
		RateLimit: rateLimit(&snap.RateLimit),
		AccessLog: AccessLog{
			Enabled: snap.AccessLog.Enabled,
			Written: snap.AccessLog.Written,
			Dropped: snap.AccessLog.Dropped,
		},
		Reloads: Reloads{
			Success:     snap.Reloads.Success,
			Failure:     snap.Reloads.Failure,
			LastSuccess: timeOrNil(snap.Reloads.LastSuccess),
			LastFailure: timeOrNil(snap.Reloads.LastFailure),
			LastError:   snap.Reloads.LastError,
		},
	}
	if !snap.Started.IsZero() {
		s.UptimeSeconds = math.Round(snap.Time.Sub(snap.Started).Seconds()*1000) / 1000
	}
	for _, rc := range snap.Requests {
		s.Requests += rc.Count
		s.Responses.add(rc.Code/100, rc.Count)
	}
	for _, p := range snap.PoolList() {
		s.Backends.Total += p.Backends
		s.Backends.Up += p.Up
		s.Backends.Panic = s.Backends.Panic || p.Panic
		s.Backends.Panics += p.Panics
	}
	for k := range stats.NumErrorKinds {
		s.Errors[k.String()] = snap.Errors[k]
	}
	return s
}

// timeOrNil is t in UTC, or nil when t is zero, so JSON says null.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// millis is d in milliseconds, truncated to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
