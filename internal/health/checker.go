package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/proxyproto"
)

// Limits of the active check settings.
const (
	maxThreshold = 100
	// maxDrain is how much of a check response's body is read before the
	// connection is closed.
	maxDrain = 64 << 10
	// userAgent is sent with every check.
	userAgent = "ConnX-HealthCheck/1"
)

// CheckConfig configures active health checks. YAML keys (section
// healthCheck) are given with each field. The zero value is disabled;
// start from [DefaultCheckConfig]. A Checker given zero or out-of-range
// fields uses the nearest usable value (a zero Interval becomes the
// default); use [CheckConfig.Validate] to reject them instead.
type CheckConfig struct {
	// Enabled turns active checks on. When off, every backend counts as
	// healthy. Key enabled, default true.
	Enabled bool
	// Interval is the time between the end of one check of a backend and
	// the start of the next (give or take Jitter), > 0. Key interval,
	// default 30s.
	Interval time.Duration
	// Timeout bounds one check (connect, request, response head and
	// drained body), > 0. It may equal or exceed Interval: checks of one
	// backend never overlap, the next starting Interval after one ends. A
	// check that times out fails. Key timeout, default 5s.
	Timeout time.Duration
	// Path is the request target checked on every backend; it must start
	// with "/" and may have a query. Key path, default "/".
	Path string
	// Method is GET or HEAD. Key method, default "GET".
	Method string
	// ExpectedStatus is the set of status codes that pass. Redirects are
	// never followed: a 302 passes only if 302 is in the set. Key
	// expectedStatus, a list such as "200-399" or "200,204", default
	// "200-399".
	ExpectedStatus StatusSet
	// HealthyThreshold is the number of consecutive passed checks that
	// makes an unhealthy backend healthy (rise), 1..100. Key
	// healthyThreshold, default 2.
	HealthyThreshold int
	// UnhealthyThreshold is the number of consecutive failed checks that
	// makes a healthy backend unhealthy (fall), 1..100. Key
	// unhealthyThreshold, default 3.
	UnhealthyThreshold int
	// Host, if not empty, is sent as the Host header instead of the
	// backend's host:port. Key host, default "".
	Host string
	// Jitter spreads checks: the first check of each backend starts after
	// a random delay in [0, Jitter), and each later one Interval +/-
	// Jitter/2 after the previous, so backends are not all probed in the
	// same millisecond, 0..Interval. Key jitter, default 1s.
	Jitter time.Duration
	// ProxyProtocol, 1 or 2, sends a PROXY protocol header of that
	// version first on every check connection, for backends that require
	// one: a v2 LOCAL or v1 UNKNOWN header, which carries no client (the
	// check is the sender's own). 0 (the default) sends none. Not a
	// healthCheck key: the pool's upstream.proxyProtocol sets it.
	ProxyProtocol int
	// TLS is the configuration of checks of https:// backends: CAs,
	// client certificate, sessions. A ServerName of "" is taken from each
	// backend's URL. Nil: the system's CAs and the URL's host. It must
	// not be modified after it is passed in.
	TLS *tls.Config
	// GRPC makes a check the gRPC health check,
	// grpc.health.v1.Health/Check for the whole server (an empty service
	// name), over HTTP/2 in cleartext with prior knowledge; it passes
	// when the backend answers SERVING. Path, Method, ExpectedStatus and
	// Host do not apply. The proxy sets it from healthCheck.kind.
	GRPC bool
}

// DefaultCheckConfig returns the default configuration. The caller owns
// the result.
func DefaultCheckConfig() CheckConfig {
	return CheckConfig{
		Enabled:            true,
		Interval:           30 * time.Second,
		Timeout:            5 * time.Second,
		Path:               "/",
		Method:             http.MethodGet,
		ExpectedStatus:     MustParseStatusSet("200-399"),
		HealthyThreshold:   2,
		UnhealthyThreshold: 3,
		Jitter:             time.Second,
	}
}

// Validate reports the first value out of range, naming its YAML key. It
// checks every field even when checks are disabled.
func (c CheckConfig) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("healthCheck.interval: must be greater than 0, got %v", c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("healthCheck.timeout: must be greater than 0, got %v", c.Timeout)
	case c.Jitter < 0 || c.Jitter > c.Interval:
		return fmt.Errorf("healthCheck.jitter: must be between 0 and healthCheck.interval (%v), got %v", c.Interval, c.Jitter)
	case c.Method != http.MethodGet && c.Method != http.MethodHead:
		return fmt.Errorf("healthCheck.method: must be GET or HEAD, got %q", c.Method)
	case c.ExpectedStatus.Empty():
		return errors.New("healthCheck.expectedStatus: must list at least one status code")
	case c.HealthyThreshold < 1 || c.HealthyThreshold > maxThreshold:
		return fmt.Errorf("healthCheck.healthyThreshold: must be between 1 and %d, got %d", maxThreshold, c.HealthyThreshold)
	case c.UnhealthyThreshold < 1 || c.UnhealthyThreshold > maxThreshold:
		return fmt.Errorf("healthCheck.unhealthyThreshold: must be between 1 and %d, got %d", maxThreshold, c.UnhealthyThreshold)
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "#") || hasCTLOrSpace(c.Path) {
		return fmt.Errorf("healthCheck.path: must start with \"/\" and contain no spaces, control characters or \"#\", got %q", c.Path)
	}
	if strings.ContainsAny(c.Host, "/?#@\\") || hasCTLOrSpace(c.Host) {
		return fmt.Errorf("healthCheck.host: must be a host name or host:port, got %q", c.Host)
	}
	return nil
}

func hasCTLOrSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// normalized returns c with values that would break the checker replaced
// by the nearest usable ones.
func (c CheckConfig) normalized() CheckConfig {
	d := DefaultCheckConfig()
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.Timeout <= 0 {
		c.Timeout = min(d.Timeout, c.Interval)
	}
	c.Jitter = min(max(c.Jitter, 0), c.Interval)
	if c.Method != http.MethodHead {
		c.Method = http.MethodGet
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.ExpectedStatus.Empty() {
		c.ExpectedStatus = d.ExpectedStatus
	}
	c.HealthyThreshold = min(max(c.HealthyThreshold, 1), maxThreshold)
	c.UnhealthyThreshold = min(max(c.UnhealthyThreshold, 1), maxThreshold)
	return c
}

// Clock is the time source of a [Checker]: it schedules checks and stamps
// results. The per-check timeout is not scheduled with it: it is a
// net/http deadline on the real clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep waits for d, or until ctx is done, and reports whether the
	// whole d passed. It is called from the checker's goroutines.
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

// Checker runs active health checks: one goroutine per backend, never on
// an event loop, each sending a request, reading the status, and feeding
// the result to its [Backend]. A backend's first check starts when the
// checker starts (after at most Jitter), not one Interval later.
//
// The zero value is not usable; call [NewChecker]. Its methods are safe
// for concurrent use. Start runs it once; Stop ends it for good and waits
// for its goroutines.
type Checker struct {
	clk    Clock
	log    *slog.Logger
	client *http.Client
	h2c    *http.Client // gRPC checks of http:// backends (grpc.go)
	h2tls  *http.Client // gRPC checks of https:// backends
	cfg    atomic.Pointer[CheckConfig]
	// randN returns a random number in [0, n); n > 0. Tests replace it
	// before Start.
	randN func(n int64) int64

	mu       sync.Mutex
	backends []*Backend
	ctx      context.Context // from Start; nil before
	cancel   context.CancelFunc
	stopped  bool
	running  map[*Backend]context.CancelFunc
	wg       sync.WaitGroup
}

// NewChecker returns a checker for backends with configuration cfg. It
// does nothing until [Checker.Start]. State changes are logged to log (nil
// discards them); clk schedules the checks (nil: the real clock).
func NewChecker(cfg CheckConfig, backends []*Backend, log *slog.Logger, clk Clock) *Checker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = SystemClock()
	}
	var c *Checker
	tr := &http.Transport{
		Proxy: nil, // never through HTTP_PROXY: check the backend itself
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.dial(ctx, network, addr)
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conf := c.cfg.Load().TLS
		if bc, ok := ctx.Value(backendTLSKey{}).(*tls.Config); ok {
			conf = bc
		}
		return c.dialTLS(ctx, network, addr, conf, "http/1.1")
	}
	c = &Checker{
		clk: clk,
		log: log,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		randN:   rand.Int64N,
		running: make(map[*Backend]context.CancelFunc),
	}
	c.h2c = newH2CClient(func(ctx context.Context, network, addr string) (net.Conn, error) {
		return c.dial(ctx, network, addr)
	})
	c.h2tls = newH2TLSClient(func(ctx context.Context, network, addr string) (net.Conn, error) {
		conf := c.cfg.Load().TLS
		if bc, ok := ctx.Value(backendTLSKey{}).(*tls.Config); ok {
			conf = bc
		}
		return c.dialH2TLS(ctx, network, addr, conf)
	})
	n := cfg.normalized()
	c.cfg.Store(&n)
	c.backends = append([]*Backend(nil), backends...)
	return c
}

// Start starts checking, with goroutines that end when ctx is done or Stop
// is called. Calls after the first, and after Stop, do nothing.
func (c *Checker) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx != nil || c.stopped {
		return
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.syncLocked()
}

// Stop stops every check and waits for the goroutines to return. The
// backends keep their last state. Stop may be called more than once, and
// before Start.
func (c *Checker) Stop() {
	c.mu.Lock()
	c.stopped = true
	if c.cancel != nil {
		c.cancel()
	}
	clear(c.running)
	c.mu.Unlock()
	c.wg.Wait()
	c.client.CloseIdleConnections()
}

// Update replaces the configuration and the set of backends, for a
// reload. Backends that stay keep their goroutine and their rise/fall
// counts; the new configuration applies from their next check. Added
// backends get a first check at once (after at most Jitter); removed ones
// stop being checked and keep their last state. Turning checks off stops
// them all and makes every backend count as healthy; turning them on
// starts them all.
func (c *Checker) Update(cfg CheckConfig, backends []*Backend) {
	n := cfg.normalized()
	c.cfg.Store(&n)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backends = append(c.backends[:0:0], backends...)
	c.syncLocked()
}

// syncLocked makes the running goroutines match c.backends and the
// configuration. c.mu must be held.
func (c *Checker) syncLocked() {
	if c.ctx == nil || c.stopped {
		return
	}
	cfg := c.cfg.Load()
	want := make(map[*Backend]bool, len(c.backends))
	if cfg.Enabled {
		for _, b := range c.backends {
			want[b] = true
		}
	}
	for b, cancel := range c.running {
		if !want[b] {
			cancel()
			delete(c.running, b)
		}
	}
	if !cfg.Enabled {
		now := c.clk.Now().UnixNano()
		for _, b := range c.backends {
			b.resetActive(now)
		}
		return
	}
	// Every first delay is drawn before any goroutine starts, in list
	// order, so a test's random source maps onto the backends.
	type start struct {
		b     *Backend
		delay time.Duration
	}
	var starts []start
	for _, b := range c.backends {
		if _, ok := c.running[b]; !ok && !slices.ContainsFunc(starts, func(s start) bool { return s.b == b }) {
			starts = append(starts, start{b, c.jitter(cfg.Jitter)})
		}
	}
	for _, s := range starts {
		ctx, cancel := context.WithCancel(c.ctx)
		c.running[s.b] = cancel
		c.wg.Add(1)
		go c.run(ctx, s.b, s.delay)
	}
}

// run checks one backend until ctx is done, the first time after delay.
func (c *Checker) run(ctx context.Context, b *Backend, delay time.Duration) {
	defer c.wg.Done()
	for {
		b.nextCheck.Store(c.clk.Now().Add(delay).UnixNano())
		if delay > 0 && !c.clk.Sleep(ctx, delay) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		cfg := c.cfg.Load()
		ok, detail := c.check(ctx, b, cfg)
		if ctx.Err() != nil {
			return // stopped or removed: the result may be an artefact
		}
		b.report(c.clk.Now().UnixNano(), cfg, ok, detail, c.log)
		delay = cfg.Interval - cfg.Jitter/2 + c.jitter(cfg.Jitter)
	}
}

func (c *Checker) jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	return time.Duration(c.randN(int64(j)))
}

// check sends one check request and reports whether it passed, with a
// short description of the result for logs.
// dial connects to a backend for a check and sends the PROXY header the
// configuration asks for.
func (c *Checker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	var h []byte
	switch c.cfg.Load().ProxyProtocol {
	case 1:
		h = proxyproto.AppendV1(nil, netip.AddrPort{}, netip.AddrPort{})
	case 2:
		h = proxyproto.AppendV2(nil, netip.AddrPort{}, netip.AddrPort{})
	default:
		return conn, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	if _, err := conn.Write(h); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

func (c *Checker) check(ctx context.Context, b *Backend, cfg *CheckConfig) (ok bool, detail string) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if conf := b.tlsConf.Load(); conf != nil {
		ctx = context.WithValue(ctx, backendTLSKey{}, conf) // for DialTLSContext
	}
	if cfg.GRPC {
		return c.checkGRPC(ctx, b, cfg)
	}
	req, err := http.NewRequestWithContext(ctx, cfg.Method, b.base+cfg.Path, nil)
	if err != nil {
		return false, err.Error()
	}
	if cfg.Host != "" {
		req.Host = cfg.Host
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, "timeout after " + cfg.Timeout.String()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, err.Error()
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
	if !cfg.ExpectedStatus.Contains(resp.StatusCode) {
		return false, "status " + strconv.Itoa(resp.StatusCode) + ", expected " + cfg.ExpectedStatus.String()
	}
	return true, "status " + strconv.Itoa(resp.StatusCode)
}

// backendTLSKey is the context key of a backend's own TLS
// configuration (Backend.SetTLS) on its way to the dial.
type backendTLSKey struct{}

// dialTLS connects to addr and runs a TLS handshake with base (nil: the
// defaults), naming the server by addr's host unless base names it, and
// offering alpn (an h2 pool's base offers h2, which an HTTP check does
// not speak).
func (c *Checker) dialTLS(ctx context.Context, network, addr string, base *tls.Config, alpn string) (net.Conn, error) {
	conn, err := c.dial(ctx, network, addr) // the PROXY header, if any, goes first
	if err != nil {
		return nil, err
	}
	var conf *tls.Config
	if base != nil {
		conf = base.Clone()
	} else {
		conf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conf.NextProtos = []string{alpn}
	if conf.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			conf.ServerName = host
		}
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return tc, nil
}
