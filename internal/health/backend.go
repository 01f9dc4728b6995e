package health

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/breaker"
)

// Active health states, kept in Backend.status.
const (
	statusUnknown   int32 = iota // no check has finished (or checks are off)
	statusHealthy                // passed the last rise threshold
	statusUnhealthy              // failed the last fall threshold
)

// Backend is the long-lived health record of one backend: its active check
// state, its passive (outlier) state and its circuit breaker. The proxy
// keeps one per backend URL and keeps it across reloads.
//
// A backend is available when it is not known to be unhealthy, not
// ejected, and its breaker admits requests. Before its first active check
// finishes, and whenever active checking is off, a backend counts as
// healthy.
//
// The zero value is not usable; call [NewBackend]. Available, Allow, Done
// and Healthy are safe for concurrent use from any number of goroutines
// (the event loops), lock-free and allocation-free (except on the rare
// calls that change state, which log). State takes a short lock and
// allocates; it is for metrics and the admin API.
type Backend struct {
	status    atomic.Int32 // statusUnknown, statusHealthy or statusUnhealthy
	lastFail  atomic.Int64 // last failed request: time (Unix ns) &^ 7 | Outcome
	nextCheck atomic.Int64 // time of the next active check (Unix ns), 0 unknown

	url  string // as configured; the name in logs
	base string // scheme://host[:port], the prefix of check URLs
	br   *breaker.Breaker
	out  *Outlier
	log  *slog.Logger

	mu          sync.Mutex // guards the active check fields below
	okRun       int        // consecutive passed checks
	failRun     int        // consecutive failed checks
	statusSince int64      // last active state change (Unix ns)
	checkedAt   int64      // last finished check (Unix ns)
	checkErr    string     // last failed check's reason
	checkErrAt  int64

	checksOK, checksFailed uint64 // finished active checks, by result

	tlsConf atomic.Pointer[tls.Config] // SetTLS; nil: CheckConfig.TLS
}

// SetTLS sets the TLS configuration of the backend's checks (an
// https:// backend with settings of its own); nil, the default, uses
// CheckConfig.TLS. conf must not be modified afterwards. Safe for
// concurrent use; a check in progress keeps the configuration it
// started with.
func (b *Backend) SetTLS(conf *tls.Config) { b.tlsConf.Store(conf) }

// NewBackend returns the health record of the backend at rawURL (an
// absolute http or https URL; its path is ignored: checks use
// CheckConfig.Path). Its outlier state belongs to pool (add it with
// [Pool.SetMembers]); its breaker starts closed with cb. Breaker
// transitions are logged to log (nil discards them); active check and
// ejection changes are logged by the [Checker] and the [Pool].
func NewBackend(rawURL string, pool *Pool, cb breaker.Config, log *slog.Logger) (*Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("health: backend URL must be http://host[:port], got " + strconv.Quote(rawURL))
	}
	if pool == nil {
		return nil, errors.New("health: NewBackend: nil pool")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{url: rawURL, base: u.Scheme + "://" + u.Host, log: log}
	b.out = NewOutlier(rawURL, pool)
	b.br = breaker.New(cb, b.breakerChanged)
	return b, nil
}

func (b *Backend) breakerChanged(c breaker.Change) {
	level := slog.LevelInfo
	if c.To == breaker.Open {
		level = slog.LevelWarn
	}
	b.log.Log(context.Background(), level, "circuit breaker "+c.To.String(),
		"backend", b.url, "from", c.From.String(), "reason", c.Reason())
}

// URL returns the backend URL as given to NewBackend.
func (b *Backend) URL() string { return b.url }

// Breaker returns the backend's circuit breaker, for Configure on reload.
func (b *Backend) Breaker() *breaker.Breaker { return b.br }

// Outlier returns the backend's passive health state, for
// [Pool.SetMembers].
func (b *Backend) Outlier() *Outlier { return b.out }

// Healthy reports whether active checks have not found the backend
// unhealthy: true before the first check and while checks are off. One
// atomic load.
func (b *Backend) Healthy() bool { return b.status.Load() != statusUnhealthy }

// Available reports, without changing anything, whether a request could be
// sent to the backend at time now (Unix ns): healthy, not ejected, and
// the breaker would admit it. It is the balancer's filter; a few atomic
// loads, no writes.
func (b *Backend) Available(now int64) bool {
	return b.status.Load() != statusUnhealthy && b.out.Available(now) && b.br.Available(now)
}

// Held reports whether passive signals hold the backend out of traffic at
// time now: it is ejected, or its breaker is open and its open timeout
// has not elapsed. A half-open breaker, which admits probes, does not
// hold it: the backend is recovering. It is the measure of the proxy's
// panic mode; two or three atomic loads.
func (b *Backend) Held(now int64) bool {
	return !b.out.Available(now) || b.br.State() == breaker.Open && !b.br.Available(now)
}

// Allow decides whether to send a request to the backend at time now. It
// checks what Available checks and then asks the breaker, which may admit
// the request as a half-open probe (p != 0). Every admitted request must be
// reported with [Backend.Done], passing p back.
func (b *Backend) Allow(now int64) (ok bool, p breaker.Probe) {
	if b.status.Load() == statusUnhealthy || !b.out.Available(now) {
		return false, 0
	}
	return b.br.Allow(now)
}

// Done reports how a request admitted by Allow ended at time now, to the
// breaker and the outlier detector. Report [breaker.Canceled] when the
// outcome says nothing about the backend (client gone, shutdown).
func (b *Backend) Done(now int64, o breaker.Outcome, p breaker.Probe) {
	b.br.Done(now, o, p)
	b.out.Record(now, o)
	if o != breaker.Success && o != breaker.Canceled {
		b.lastFail.Store(now&^7 | int64(o))
	}
}

// AvailableAt returns the earliest time (Unix ns, at least now) at which
// the backend may be available, as far as is known: the end of its
// ejection, of its breaker's open period, and, when it is unhealthy, its
// next active check. It is a hint for Retry-After when no backend is
// available.
func (b *Backend) AvailableAt(now int64) int64 {
	at := max(now, b.out.EjectedUntil(), b.br.ReadyAt(now))
	if b.status.Load() == statusUnhealthy {
		at = max(at, b.nextCheck.Load())
	}
	return at
}

// report applies one active check result at time now. It is called by the
// Checker's goroutine for this backend.
func (b *Backend) report(now int64, c *CheckConfig, ok bool, detail string, log *slog.Logger) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checkedAt = now
	if ok {
		b.checksOK++
		b.okRun++
		b.failRun = 0
	} else {
		b.checksFailed++
		b.failRun++
		b.okRun = 0
		b.checkErr, b.checkErrAt = detail, now
	}
	from := b.status.Load()
	to := from
	why := detail
	switch {
	case from == statusUnknown && ok:
		to, why = statusHealthy, "first check: "+detail
	case from == statusUnknown:
		to, why = statusUnhealthy, "first check: "+detail
	case from == statusHealthy && !ok && b.failRun >= c.UnhealthyThreshold:
		to = statusUnhealthy
	case from == statusUnhealthy && ok && b.okRun >= c.HealthyThreshold:
		to = statusHealthy
	}
	if to == from {
		return
	}
	b.status.Store(to)
	b.statusSince = now
	if to == statusUnhealthy {
		log.Warn("backend unhealthy", "backend", b.url, "reason", why, "checks", b.failRun)
		return
	}
	log.Info("backend healthy", "backend", b.url, "reason", why, "checks", b.okRun)
	if from == statusUnhealthy {
		// The backend answers checks again: let traffic find out at once
		// instead of waiting for a passive ejection or an open breaker.
		b.out.Uneject(now, "active health check passed")
		b.br.EndOpen()
	}
}

// resetActive forgets the active check state (checks were turned off).
func (b *Backend) resetActive(now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status.Swap(statusUnknown) != statusUnknown {
		b.statusSince = now
	}
	b.okRun, b.failRun = 0, 0
	b.nextCheck.Store(0)
}

// BackendState is a read-only snapshot of one backend's health, for
// metrics and the admin API. Times are zero when the event has not
// happened. It holds no references into the Backend.
type BackendState struct {
	URL string
	// Available is Healthy && !Ejected && the breaker admits requests, at
	// the time of the snapshot.
	Available bool

	// Healthy is the active check verdict; true before the first check
	// and when checks are off. Checked is false until a check finishes.
	Healthy     bool
	Checked     bool
	HealthSince time.Time // last change of Healthy (the first check counts)
	LastCheck   time.Time

	Ejected      bool      // passive: ejected at the time of the snapshot
	EjectedAt    time.Time // start of the current or last ejection
	EjectedUntil time.Time // end of the current or last ejection
	Ejections    int       // ejections in the current run (sets the next length)

	Breaker      string    // "closed", "open", "half-open" or "disabled"
	BreakerSince time.Time // last breaker transition
	Failures     int       // consecutive failures counted by a closed breaker

	// LastError is the most recent problem seen, by an active check
	// ("active check: status 500, expected 200-399") or a request
	// ("request: connect error"), and when.
	LastError   string
	LastErrorAt time.Time

	ChecksOK     uint64 // active checks passed since the backend was added
	ChecksFailed uint64 // active checks failed since the backend was added
}

// State returns a snapshot of the backend's health at time now (Unix ns).
func (b *Backend) State(now int64) BackendState {
	s := BackendState{
		URL:          b.url,
		Available:    b.Available(now),
		Healthy:      b.Healthy(),
		Ejected:      !b.out.Available(now),
		EjectedAt:    unixTime(b.out.EjectedAt()),
		EjectedUntil: unixTime(b.out.EjectedUntil()),
		Ejections:    b.out.Ejections(),
		Breaker:      b.br.State().String(),
		BreakerSince: unixTime(b.br.Since()),
		Failures:     b.br.Failures(),
	}
	if !b.br.Config().Enabled {
		s.Breaker = "disabled"
	}
	var errAt int64
	if lf := b.lastFail.Load(); lf != 0 {
		s.LastError = "request: " + breaker.Outcome(lf&7).String()
		errAt = lf &^ 7
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s.Checked = b.checkedAt != 0
	s.ChecksOK, s.ChecksFailed = b.checksOK, b.checksFailed
	s.HealthSince = unixTime(b.statusSince)
	s.LastCheck = unixTime(b.checkedAt)
	if b.checkErrAt != 0 && b.checkErrAt >= errAt {
		s.LastError = "active check: " + b.checkErr
		errAt = b.checkErrAt
	}
	s.LastErrorAt = unixTime(errAt)
	return s
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
