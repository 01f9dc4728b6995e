package health

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/breaker"
)

// Limits of the outlier detection settings.
const (
	maxConsecutive = 1000
	maxMinRequests = 1_000_000
	// refusedRetry is how long a backend that crossed a threshold but
	// could not be ejected (maxEjectedPercent reached) waits before its
	// next attempt, so a fleet-wide failure does not take the pool's lock
	// on every failed request.
	refusedRetry = time.Second
)

// OutlierConfig configures passive health checking (outlier detection):
// backends that fail the requests the proxy sends them are ejected from
// the pool for a while. The zero value is disabled; start from
// [DefaultOutlierConfig]. YAML keys (section outlierDetection) are given
// with each field.
type OutlierConfig struct {
	// Enabled turns passive ejection on. Key enabled, default true.
	Enabled bool
	// ConsecutiveFailures ejects a backend after that many failures in a
	// row, 0..1000; 0 turns the rule off. Key consecutiveFailures,
	// default 5.
	ConsecutiveFailures int
	// FailureOn5xx counts every 5xx response as a failure. Without it only
	// the gateway failures count: connect errors, resets, timeouts and
	// 502, 503 and 504 responses. Key failureOn5xx, default false.
	FailureOn5xx bool
	// FailurePercent ejects a backend when at least that percentage of its
	// requests in the current Window failed, 0..100; 0 turns the rule
	// off. Key failurePercent, default 0 (off).
	FailurePercent int
	// Window is the length of the (tumbling) window in which
	// FailurePercent is measured, > 0. Key window, default 10s.
	Window time.Duration
	// MinRequests is the number of requests a window needs before
	// FailurePercent is applied, 1..1000000. Key minRequests, default 20.
	MinRequests int
	// BaseEjection is the first ejection's length, > 0. Each ejection
	// that follows within MaxEjection of the previous one's end lasts
	// twice as long as the previous one. Key baseEjection, default 30s.
	BaseEjection time.Duration
	// MaxEjection caps an ejection's length, >= BaseEjection. A backend
	// that has stayed in the pool for MaxEjection since its last
	// ejection ended starts again from BaseEjection. Key maxEjection,
	// default 5m.
	MaxEjection time.Duration
	// MaxEjectedPercent is the largest share of the pool that may be
	// ejected at once, 0..100: at most floor(members*percent/100)
	// backends (so a pool of one is never ejected at 50%). Key
	// maxEjectedPercent, default 50.
	MaxEjectedPercent int
}

// DefaultOutlierConfig returns the default configuration. The caller owns
// the result.
func DefaultOutlierConfig() OutlierConfig {
	return OutlierConfig{
		Enabled:             true,
		ConsecutiveFailures: 5,
		FailurePercent:      0,
		Window:              10 * time.Second,
		MinRequests:         20,
		BaseEjection:        30 * time.Second,
		MaxEjection:         5 * time.Minute,
		MaxEjectedPercent:   50,
	}
}

// Validate reports the first value out of range, naming its YAML key. It
// checks every field even when detection is disabled.
func (c OutlierConfig) Validate() error {
	ints := []struct {
		key       string
		n, lo, hi int
	}{
		{"consecutiveFailures", c.ConsecutiveFailures, 0, maxConsecutive},
		{"failurePercent", c.FailurePercent, 0, 100},
		{"minRequests", c.MinRequests, 1, maxMinRequests},
		{"maxEjectedPercent", c.MaxEjectedPercent, 0, 100},
	}
	for _, k := range ints {
		if k.n < k.lo || k.n > k.hi {
			return fmt.Errorf("outlierDetection.%s: must be between %d and %d, got %d", k.key, k.lo, k.hi, k.n)
		}
	}
	durations := []struct {
		key string
		d   time.Duration
	}{
		{"window", c.Window},
		{"baseEjection", c.BaseEjection},
		{"maxEjection", c.MaxEjection},
	}
	for _, k := range durations {
		if k.d <= 0 {
			return fmt.Errorf("outlierDetection.%s: must be greater than 0, got %v", k.key, k.d)
		}
	}
	if c.MaxEjection < c.BaseEjection {
		return fmt.Errorf("outlierDetection.maxEjection: must be at least outlierDetection.baseEjection (%v), got %v", c.BaseEjection, c.MaxEjection)
	}
	return nil
}

// normalized returns c with values that would break the detector (zero
// durations, counts out of range) replaced by the nearest usable ones.
func (c OutlierConfig) normalized() OutlierConfig {
	d := DefaultOutlierConfig()
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.BaseEjection <= 0 {
		c.BaseEjection = d.BaseEjection
	}
	c.MaxEjection = max(c.MaxEjection, c.BaseEjection)
	c.ConsecutiveFailures = min(max(c.ConsecutiveFailures, 0), maxConsecutive)
	c.FailurePercent = min(max(c.FailurePercent, 0), 100)
	c.MinRequests = min(max(c.MinRequests, 1), maxMinRequests)
	c.MaxEjectedPercent = min(max(c.MaxEjectedPercent, 0), 100)
	return c
}

// Pool is the set of backends among which ejections are limited by
// MaxEjectedPercent, and the holder of the outlier configuration they
// share. The proxy has one Pool.
//
// Its zero value is not usable; call [NewPool]. All methods are safe for
// concurrent use. Ejection decisions and membership changes take the
// pool's mutex; they are rare (a backend crossing a threshold), so the
// per-request path ([Outlier.Record], [Outlier.Available]) never does.
type Pool struct {
	cfg atomic.Pointer[OutlierConfig]
	log *slog.Logger

	mu      sync.Mutex
	members []*Outlier // guarded by mu; each has member set
}

// NewPool returns an empty pool with configuration cfg (see
// [Pool.Configure]). Ejections are logged to log; nil discards them.
func NewPool(cfg OutlierConfig, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{log: log}
	p.Configure(cfg)
	return p
}

// Configure replaces the configuration. Current ejections keep their end
// time; counters are kept. Values out of range are clamped; use
// [OutlierConfig.Validate] first to reject them instead.
func (p *Pool) Configure(cfg OutlierConfig) {
	c := cfg.normalized()
	p.cfg.Store(&c)
}

// Config returns the configuration in use (after clamping).
func (p *Pool) Config() OutlierConfig { return *p.cfg.Load() }

// SetMembers replaces the pool's members, for example on a reload. Only
// members are ever ejected and only they count toward MaxEjectedPercent.
// A backend that leaves the pool keeps its state (an ejection in progress
// runs to its end) and has it again if it comes back. Every Outlier must
// have been created with this pool; SetMembers panics otherwise.
func (p *Pool) SetMembers(ms []*Outlier) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.members {
		m.member = false
	}
	p.members = make([]*Outlier, 0, len(ms))
	for _, m := range ms {
		if m.pool != p {
			panic("health: Pool.SetMembers: Outlier belongs to another Pool")
		}
		if !m.member {
			m.member = true
			p.members = append(p.members, m)
		}
	}
}

// Len returns the number of members.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.members)
}

// Ejected returns how many members are ejected at time now (Unix ns).
func (p *Pool) Ejected(now int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ejectedLocked(now)
}

func (p *Pool) ejectedLocked(now int64) int {
	n := 0
	for _, m := range p.members {
		if now < m.until.Load() {
			n++
		}
	}
	return n
}

// Outlier is one backend's passive health state: its recent request
// results and its ejection.
//
// The zero value is not usable; call [NewOutlier]. Record and Available
// are safe for concurrent use by any number of goroutines, lock-free and
// allocation-free (except when they eject, which is rare and logs). An
// Outlier lives as long as its backend, across reloads.
type Outlier struct {
	pool *Pool
	name string

	until   atomic.Int64  // ejected before this time (Unix ns); 0: never ejected
	consec  atomic.Int32  // consecutive failures
	win     atomic.Uint64 // window: valid(1) index(15) requests(24) failures(24)
	retryAt atomic.Int64  // no ejection attempt before this time
	capped  atomic.Bool   // a refusal has been logged for this failure run

	ejectedAt atomic.Int64
	ejections atomic.Int32 // length multiplier: 1 for the first ejection

	member bool // guarded by pool.mu
}

const (
	winValid    = 1 << 63
	winIdxShift = 48
	winReqShift = 24
	mask15      = 1<<15 - 1
	mask24      = 1<<24 - 1
)

// NewOutlier returns the passive health state of the backend called name
// (used in log lines), in pool. It is not a member until
// [Pool.SetMembers] lists it.
func NewOutlier(name string, pool *Pool) *Outlier {
	return &Outlier{pool: pool, name: name}
}

// Available reports whether the backend is not ejected at time now (Unix
// ns). It is one atomic load.
func (o *Outlier) Available(now int64) bool { return now >= o.until.Load() }

// EjectedUntil returns the end of the current or last ejection (Unix ns),
// 0 if the backend was never ejected.
func (o *Outlier) EjectedUntil() int64 { return o.until.Load() }

// EjectedAt returns the start of the current or last ejection (Unix ns),
// 0 if the backend was never ejected.
func (o *Outlier) EjectedAt() int64 { return o.ejectedAt.Load() }

// Ejections returns the number of ejections in the current run, which sets
// the length of the next: BaseEjection * 2^(Ejections) (capped).
func (o *Outlier) Ejections() int { return int(o.ejections.Load()) }

// Record reports how one request to the backend ended, at time now (Unix
// ns). It counts failures (connect errors, timeouts, 502/503/504, and
// every 5xx with FailureOn5xx) and ejects the backend when a threshold is crossed and the
// pool allows it. Results that arrive while the backend is ejected (from
// requests sent before) are ignored, and so is [breaker.Canceled].
//
// "Consecutive" is approximate under concurrency: a success from one event
// loop and a failure from another may be counted in either order.
func (o *Outlier) Record(now int64, r breaker.Outcome) {
	if r == breaker.Canceled || now < o.until.Load() {
		return
	}
	c := o.pool.cfg.Load()
	if !c.Enabled {
		return
	}
	failed := r.Failure(c.FailureOn5xx)
	why := reason{last: r}
	if !failed {
		if o.consec.Load() != 0 {
			o.consec.Store(0)
			o.capped.Store(false)
		}
	} else if c.ConsecutiveFailures > 0 {
		if n := o.consec.Add(1); int(n) >= c.ConsecutiveFailures {
			why.consecutive = int(n)
		}
	}
	if c.FailurePercent > 0 {
		req, bad := o.count(now, failed, c.Window)
		if failed && why.consecutive == 0 && req >= c.MinRequests && bad*100 >= c.FailurePercent*req {
			why.requests, why.failures, why.window = req, bad, c.Window
		}
	}
	if why.consecutive > 0 || why.requests > 0 {
		o.eject(now, c, why)
	}
}

// count adds one request to the current window and returns the window's
// requests and failures.
func (o *Outlier) count(now int64, failed bool, window time.Duration) (req, bad int) {
	idx := uint64(max(now, 0)/int64(window)) & mask15
	add := uint64(1) << winReqShift
	if failed {
		add |= 1
	}
	for {
		w := o.win.Load()
		cur := w >> winIdxShift & mask15
		// The window only moves forward: a caller whose clock lags a
		// little adds to the newer window instead of resetting it. The
		// difference of two 15-bit indexes is signed in bit 14.
		current := w&winValid != 0 && int16(uint16(cur-idx)<<1) >= 0
		if current && w>>winReqShift&mask24 < 1<<23 {
			w = o.win.Add(add)
			return int(w >> winReqShift & mask24), int(w & mask24)
		}
		if o.win.CompareAndSwap(w, winValid|idx<<winIdxShift|add) {
			return 1, int(add & 1)
		}
	}
}

// reason is why a backend is being ejected. It is built without
// allocating; String is called only when logging.
type reason struct {
	last        breaker.Outcome
	consecutive int // > 0: the consecutive-failures rule
	requests    int // > 0: the failure-percentage rule
	failures    int
	window      time.Duration
}

func (r reason) String() string {
	if r.consecutive > 0 {
		return strconv.Itoa(r.consecutive) + " consecutive failures (last: " + r.last.String() + ")"
	}
	return fmt.Sprintf("%d of %d requests failed (%d%%) in the %v window", r.failures, r.requests, r.failures*100/r.requests, r.window)
}

// eject ejects o unless it is not a member, already ejected, or the pool
// has reached MaxEjectedPercent.
func (o *Outlier) eject(now int64, c *OutlierConfig, why reason) {
	if now < o.retryAt.Load() {
		return
	}
	p := o.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if !o.member || now < o.until.Load() {
		return
	}
	ejected, size := p.ejectedLocked(now), len(p.members)
	if allowed := size * c.MaxEjectedPercent / 100; ejected >= allowed {
		o.retryAt.Store(now + int64(refusedRetry))
		if !o.capped.Swap(true) {
			p.log.Warn("backend not ejected: too many ejected", "backend", o.name, "reason", why.String(),
				"ejected", ejected, "pool", size, "maxEjectedPercent", c.MaxEjectedPercent)
		}
		return
	}
	n := o.ejections.Load()
	if prev := o.until.Load(); prev != 0 && now-prev >= int64(c.MaxEjection) {
		n = 0 // back long enough: start again from the base time
	}
	n++
	d := ejectionTime(c.BaseEjection, c.MaxEjection, int(n))
	o.ejections.Store(n)
	o.ejectedAt.Store(now)
	o.until.Store(now + int64(d))
	o.consec.Store(0)
	o.win.Store(0)
	o.capped.Store(false)
	p.log.Warn("backend ejected", "backend", o.name, "reason", why.String(), "duration", d,
		"until", time.Unix(0, now+int64(d)).UTC(), "ejections", n, "ejected", ejected+1, "pool", size)
}

// ejectionTime returns base * 2^(n-1), capped at max.
func ejectionTime(base, limit time.Duration, n int) time.Duration {
	if n > 62 || base > limit>>(n-1) {
		return limit
	}
	return min(base<<(n-1), limit)
}

// Uneject ends a current ejection at time now, logging why. It does
// nothing if the backend is not ejected. The ejection still counts toward
// the length of the next one.
func (o *Outlier) Uneject(now int64, why string) {
	for {
		u := o.until.Load()
		if now >= u {
			return
		}
		if o.until.CompareAndSwap(u, now) {
			o.pool.log.Info("backend ejection ended early", "backend", o.name, "reason", why)
			return
		}
	}
}
