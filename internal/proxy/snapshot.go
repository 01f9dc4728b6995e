package proxy

import (
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/http1"
)

// backend is the long-lived runtime state of one backend. Its identity is
// its URL: a reload that keeps the URL keeps the object, so counters survive.
// Fields set at creation are read-only; the atomics may be touched from any
// event loop.
type backend struct {
	id   int    // dense index into each loop's pool table; never reused
	url  string // as written in the config; the name shown to operators
	addr string // host:port to dial

	inflight atomic.Int64 // requests currently assigned to this backend
	// downUntil is a unix-nano time before which the backend is skipped after
	// a connect failure. It is the minimal passive check of the data plane;
	// active health checking replaces it.
	downUntil atomic.Int64
}

// available reports whether the backend may be picked at time now (unix ns).
func (b *backend) available(now int64) bool { return b.downUntil.Load() <= now }

// member is a backend as one snapshot sees it.
type member struct {
	*backend
	weight int
}

// snapshot is an immutable view of the configuration that the event loops
// read. A reload builds a new snapshot and swaps the pointer; requests that
// started under the old one finish with it.
type snapshot struct {
	cfg     *config.Config
	members []member
	rr      atomic.Uint32 // round-robin cursor shared by all loops: exact turns
	lim     http1.Limits

	highWater int // per-connection buffered-bytes bound (backpressure)
	lowWater  int // resume below this

	clientHeader   int64 // timeouts, in nanoseconds
	clientIdle     int64
	clientBody     int64
	upstreamHeader int64
	upstreamRead   int64
	upstreamIdle   int64
	connectTimeout time.Duration
	shutdown       time.Duration

	maxConns    int64
	maxIdle     int
	retries     int
	maxBody     int64
	preserve    bool
	metricsPath string
}

func newSnapshot(cfg *config.Config, backends []*backend) *snapshot {
	sn := &snapshot{
		cfg: cfg,
		lim: http1.Limits{
			MaxRequestLine: int(cfg.Limits.MaxRequestLine),
			MaxHeaderBytes: int(cfg.Limits.MaxHeaderBytes),
			MaxHeaders:     cfg.Limits.MaxHeaders,
		},
		highWater:      int(cfg.Limits.ConnectionBuffer),
		clientHeader:   int64(cfg.Timeouts.ClientHeader),
		clientIdle:     int64(cfg.Timeouts.ClientIdle),
		clientBody:     int64(cfg.Timeouts.ClientBody),
		upstreamHeader: int64(cfg.Timeouts.UpstreamResponseHeader),
		upstreamRead:   int64(cfg.Timeouts.UpstreamRead),
		upstreamIdle:   int64(cfg.Timeouts.UpstreamIdle),
		connectTimeout: cfg.Timeouts.UpstreamConnect,
		shutdown:       cfg.Server.ShutdownTimeout,
		maxConns:       int64(cfg.Limits.MaxConnections),
		maxIdle:        cfg.Upstream.MaxIdlePerBackend,
		retries:        cfg.Upstream.Retries,
		maxBody:        cfg.Limits.MaxRequestBody,
		preserve:       cfg.Server.PreserveHost,
		metricsPath:    cfg.Metrics.Path,
	}
	sn.lowWater = sn.highWater / 4
	for i, b := range backends {
		sn.members = append(sn.members, member{backend: b, weight: cfg.Backends[i].Weight})
	}
	return sn
}

// pick chooses the next available backend round-robin, skipping weight-0
// members and skip. It returns nil when none is available.
func (sn *snapshot) pick(lp *loop, skip *backend) *backend {
	n := uint32(len(sn.members))
	for range n {
		m := sn.members[sn.rr.Add(1)%n]
		if m.weight == 0 || m.backend == skip || !m.available(lp.now) {
			continue
		}
		return m.backend
	}
	return nil
}

// anyAvailable reports whether some backend could take a request now.
func (sn *snapshot) anyAvailable(now int64) bool {
	for _, m := range sn.members {
		if m.weight > 0 && m.available(now) {
			return true
		}
	}
	return false
}
