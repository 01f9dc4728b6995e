// Package proxy is ConnX's data plane: a gnet event handler that accepts
// HTTP/1.1 clients and forwards each request to a backend over pooled
// upstream connections that live on the client's own event loop. It is the
// only package that imports gnet.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/accesslog"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/health"
	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"golang.org/x/sys/unix"
)

// Server runs the data plane for one configuration. Create it with New,
// run it with Serve; all methods are safe for concurrent use.
type Server struct {
	gnet.BuiltinEventEngine

	log  *slog.Logger
	snap atomic.Pointer[snapshot]

	mu       sync.Mutex
	loops    []*loop               // guarded by mu; one per event loop seen
	pools    map[string]*poolState // by name; guarded by mu
	nextID   int                   // the next backend (or pool) statistics id; guarded by mu
	routeIDs routeIDs              // route statistics ids by name; guarded by mu
	checkCtx context.Context       // Serve's context for health checkers, nil before; guarded by mu
	watches  map[string]*poolWatch // DNS watchers by pool name; guarded by mu
	// rediscover asks rediscoverLoop for a rebuild with new members.
	rediscover chan struct{}

	eng      gnet.Engine
	addr     net.Addr
	ready    chan struct{}
	started  time.Time
	active   atomic.Int64  // open client connections
	conns    atomic.Uint64 // client connections accepted: numbers them (client.connID)
	detached atomic.Int64  // peers parked for backpressure, all loops
	flushing atomic.Int64  // closing clients waiting for a flush, all loops
	clock    atomic.Int64  // coarse unix-ns clock for the balancer, set by OnTick
	upOpen   atomic.Int64  // open upstream connections, all loops
	dialing  atomic.Int64  // upstream dials in flight (each holds a second descriptor for a while)
	owing    atomic.Int64  // peers with owed output bytes, all loops
	fdLimit  atomic.Int64  // RLIMIT_NOFILE; new clients are refused near it

	metrics atomic.Pointer[func(dst []byte) ([]byte, error)] // renders the metrics route

	accessLog  atomic.Pointer[accesslog.Logger] // nil: off
	logRetired [2]atomic.Uint64                 // lines written, dropped by replaced loggers

	reloadMu sync.Mutex  // serialises Reload and Shutdown
	draining atomic.Bool // Shutdown has begun
	// headHook, when set (tests only), runs on the loop when a request's
	// head has been read and its keep-alive decided.
	headHook atomic.Pointer[func()]
	stopping atomic.Bool   // Stop or Shutdown was called
	unbound  chan struct{} // closed once Shutdown has closed the listeners
	join     bool          // share the port with a running ConnX (upgrade)

	tls       *tlsFront // the HTTPS listener (tls.go); nil without server.tls
	pp        ppStats   // refused PROXY protocol headers (proxyproto.go)
	plainAddr string    // the plaintext listener's host:port, as given to gnet
}

// SetAccessLog makes l (nil: none) the access log and closes the one it
// replaces, after which it no longer counts in Stats but its totals do.
// Requests that end while the old one closes may go unlogged (counted as
// dropped).
func (s *Server) SetAccessLog(l *accesslog.Logger) {
	old := s.accessLog.Swap(l)
	if old == nil {
		return
	}
	_ = old.Close()
	w, d := old.Stats()
	s.logRetired[0].Add(w)
	s.logRetired[1].Add(d)
}

// JoinListeners makes Serve bind its listening sockets next to those of
// a running ConnX on the same address (SO_REUSEPORT) instead of refusing
// a busy port: for a zero-downtime upgrade, where the old process closes
// its listeners once this one is ready. Call it before Serve.
func (s *Server) JoinListeners() { s.join = true }

// SetMetrics sets the function that renders the main-port metrics route
// (metrics.path): it appends the text exposition to dst. It is called on
// its own goroutine, never on an event loop. Without it the route serves
// a minimal built-in exposition.
func (s *Server) SetMetrics(render func(dst []byte) ([]byte, error)) {
	s.metrics.Store(&render)
}

func (s *Server) metricsRender() func([]byte) ([]byte, error) {
	if p := s.metrics.Load(); p != nil {
		return *p
	}
	return func(dst []byte) ([]byte, error) { return append(dst, s.renderMetrics()...), nil }
}

// New builds a server for cfg, which must have passed validation.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:        log,
		pools:      make(map[string]*poolState),
		watches:    make(map[string]*poolWatch),
		rediscover: make(chan struct{}, 1),
		routeIDs:   make(routeIDs),
		ready:      make(chan struct{}),
		unbound:    make(chan struct{}),
		started:    time.Now(),
	}
	s.clock.Store(s.started.UnixNano())
	s.fdLimit.Store(fdLimit())
	s.checkFDLimit(cfg, log)
	if cfg.Server.TLS != nil {
		var err error
		if s.tls, err = newTLSFront(cfg, log); err != nil {
			return nil, err
		}
	}
	pending, commit, abort, err := s.prepareDiscovery(cfg)
	if err != nil {
		return nil, err
	}
	sn, err := s.buildWith(cfg, pending)
	if err != nil {
		abort()
		return nil, err
	}
	commit()
	s.snap.Store(sn)
	s.apply(sn)
	return s, nil
}

// build makes a snapshot for cfg, reusing the runtime state of pools and
// backends that keep their names and addresses.
func (s *Server) build(cfg *config.Config) (*snapshot, error) {
	return s.buildWith(cfg, nil)
}

// buildWith is build with the members of pending DNS watchers (see
// prepareDiscovery). Nothing changes unless it succeeds: the pools'
// runtime state is committed once the whole snapshot is built, and the
// statistics ids a failed build took are given back.
func (s *Server) buildWith(cfg *config.Config, pending map[string]*poolWatch) (sn *snapshot, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nextID := s.nextID
	defer func() {
		if err != nil {
			s.nextID = nextID // nothing holds the ids taken
		}
	}()
	pools := make([]*pool, 0, 1+len(cfg.Pools))
	def := s.withDiscovered(cfg.DefaultPool(), pending)
	pl, err := s.buildPool(cfg, &def)
	if err != nil {
		return nil, err
	}
	pools = append(pools, pl)
	for i := range cfg.Pools {
		p := s.withDiscovered(cfg.Pools[i], pending)
		pl, err := s.buildPool(cfg, &p)
		if err != nil {
			return nil, err
		}
		pools = append(pools, pl)
	}
	ids := maps.Clone(s.routeIDs) // new routes' ids, kept on success
	sn, err = newSnapshot(cfg, pools, s.snap.Load(), ids)
	if err != nil {
		return nil, err
	}
	s.routeIDs = ids
	for _, pl := range pools {
		s.commit(pl)
	}
	if sn.maxConns == 0 {
		sn.maxConns = autoMaxConns(s.fdLimit.Load())
	}
	return sn, nil
}

// Serve listens on the configured address and runs the event loops until
// Stop is called or the engine fails.
func (s *Server) Serve() error {
	sn := s.snap.Load()
	addr := sn.cfg.ListenAddr()
	// Each loop accepts on its own SO_REUSEPORT socket (no hand-off between
	// goroutines per connection). SO_REUSEPORT would also let a second
	// ConnX share the port silently, so first make sure nobody has it.
	// With port 0 that probe is also what picks the port: every loop must
	// bind the same one, not a free port of its own.
	if anyPort := sn.cfg.Server.Port == 0; !s.join || anyPort {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("server: cannot listen on %s: %w", addr, err)
		}
		if anyPort {
			addr = net.JoinHostPort(sn.cfg.Server.Host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		}
		_ = ln.Close()
	}
	addrs := []string{"tcp://" + addr}
	if ta, err := s.tlsListen(sn); err != nil {
		return err
	} else if ta != "" {
		addrs = append(addrs, ta)
	}
	s.plainAddr = addr
	loops := sn.cfg.Server.EventLoops
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithTicker(true),
		gnet.WithReuseAddr(true),
		gnet.WithReusePort(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(quietLogger{s.log}),
	}
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0) // gnet's own default is NumCPU
	}
	opts = append(opts, gnet.WithNumEventLoop(loops))
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.checkCtx = ctx
	for _, st := range s.pools {
		if st.checker != nil { // nil for a pool apply has not reached yet: apply starts it
			st.checker.Start(ctx)
		}
	}
	s.mu.Unlock()
	s.startWatches()
	go s.rediscoverLoop(ctx)
	defer func() {
		cancel()
		s.stopWatches()
		s.mu.Lock()
		var cs []*health.Checker
		for _, st := range s.pools {
			if st.checker != nil {
				cs = append(cs, st.checker)
			}
		}
		s.mu.Unlock()
		for _, c := range cs {
			c.Stop()
		}
	}()
	if s.tls != nil {
		watching := make(chan struct{})
		go s.tls.run(ctx, watching)
		<-watching
	}
	err := gnet.Rotate(s, addrs, opts...)
	if err == nil && !s.stopping.Load() {
		// gnet stops every loop when one fails (a listener that accept(2)
		// calls broken, for one); the reason is in the log.
		err = errors.New("server: the event loops stopped unexpectedly (see the log above)")
	}
	return err
}

// Ready is closed once the listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the bound listen address; valid after Ready.
func (s *Server) Addr() net.Addr { return s.addr }

// Stop shuts the engine down, closing every connection.
func (s *Server) Stop(ctx context.Context) error {
	<-s.ready
	s.stopping.Store(true)
	return s.eng.Stop(ctx)
}

// Active is the number of open client connections.
func (s *Server) Active() int64 { return s.active.Load() }

// OnBoot records the engine and the bound address.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	if fd, err := s.dupPlainListener(eng); err == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			s.addr = sockaddrTCP(sa)
		}
		_ = unix.Close(fd)
	}
	if s.tls != nil {
		// The bound address ("::" for host ""), which closing or handing
		// over the listeners looks for.
		if fd, err := eng.DupListener("tcp", s.tls.listen); err == nil {
			if sa, err := unix.Getsockname(fd); err == nil {
				s.tls.addr = sockaddrTCP(sa)
			}
			_ = unix.Close(fd)
		}
	}
	close(s.ready)
	s.log.Info("connx listening", "addr", fmt.Sprint(s.addr))
	return gnet.None
}

// loopFor returns the state of el, creating it on first use. It is called
// on el's goroutine.
func (s *Server) loopFor(el gnet.EventLoop) *loop {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lp := range s.loops {
		if lp.el == el {
			return lp
		}
	}
	lp := newLoop(s, el)
	s.loops = append(s.loops, lp)
	return lp
}

// OnOpen starts a client, or continues an upstream or a resumed peer.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	switch x := c.Context().(type) {
	case *upstream:
		lp := x.lp
		lp.enter(c)
		x.connecting = nil
		if x.isDetached() {
			x.reattached(c)
			if x.closeMe || x.cl == nil {
				x.closeMe = true
				return nil, lp.leave(&x.peer)
			}
			x.onTraffic()
			if x.state == usTunnel && x.cl != nil && x.cl.attached() {
				x.cl.pump() // the client's input waited for this side
			}
		} else {
			x.opened(c)
		}
		return nil, lp.leave(&x.peer)
	case *h2up:
		x.lp.enter(c)
		x.connecting = nil
		x.opened(c)
		return nil, x.lp.leave(&x.peer)
	case *client:
		lp := x.lp
		lp.enter(c)
		x.reattached(c)
		// A response that arrived while the client was parked waits in
		// the upstream's buffer: pass it on first, or process() could
		// park the client again in front of it (an upload the backend
		// answered early, a parked pipelined client).
		if up := x.up; !x.closeMe && up != nil && (up.eof || up.attached() && up.buffered() > 0) {
			up.onTraffic()
		}
		if !x.closeMe {
			x.process()
		}
		return nil, lp.leave(&x.peer)
	}
	lp := s.loopFor(c.EventLoop())
	sn := s.snap.Load()
	tc, refused := s.tlsOpen(c, lp, sn)
	if refused {
		return nil, gnet.Close
	}
	if tc == nil && (s.active.Load() >= sn.maxConns || s.nearFDLimit()) {
		lp.st.refused.Add(1)
		return errorResponse(503), gnet.Close
	}
	// A client of a PROXY protocol listener sends its header first (on
	// the HTTPS listener, before its handshake); the listener's
	// allow/deny waits for its address.
	pp := sn.pp != nil
	if pp && !sn.pp.trustedPeer(c) {
		s.pp.fail(ppUntrusted)
		if tc != nil {
			s.tls.release()
		}
		return nil, gnet.Close
	}
	ip, ppc := clientAddr(c, pp || sn.ppOut)
	if !pp && tc == nil && !sn.access.IsZero() && !sn.access.Allowed(ip) {
		lp.st.denied.Add(1)
		return errorResponse(http.StatusForbidden), gnet.Close
	}
	cl := &client{state: csIdle, sn: sn, ip: ip, pp: ppc, connID: s.conns.Add(1)}
	cl.to = &sn.to
	cl.peer = peer{lp: lp, c: c, fd: -1, self: cl, isClient: true, tls: tc}
	cl.deadline = lp.now + sn.clientHeader
	if tc != nil {
		cl.state = csHandshake
		cl.startNs = time.Now().UnixNano()
		cl.deadline = s.tlsDeadline(cl.startNs)
	}
	if pp {
		cl.state = csProxy
		cl.deadline = lp.now + int64(sn.pp.timeout)
	}
	cl.stallAt = lp.now
	c.SetContext(cl)
	lp.clients.push(cl)
	s.active.Add(1)
	return nil, gnet.None
}

// OnTraffic dispatches input to the connection's state machine.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	switch x := c.Context().(type) {
	case *client:
		x.lp.enter(c)
		x.lp.h2batch = true
		if x.tls != nil {
			x.tlsTraffic()
		} else {
			x.onTraffic()
		}
		x.lp.endH2Batch()
		return x.lp.leave(&x.peer)
	case *upstream:
		x.lp.enter(c)
		x.onTraffic()
		return x.lp.leave(&x.peer)
	case *h2up:
		x.lp.enter(c)
		x.lp.h2batch = true
		x.onTraffic()
		x.lp.endH2Batch()
		return x.lp.leave(&x.peer)
	}
	return gnet.Close
}

// OnClose finishes a connection unless the close was a detach.
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	var p *peer
	switch x := c.Context().(type) {
	case *client:
		p = &x.peer
	case *upstream:
		if x.connecting != nil && x.connecting == c {
			connectFailed(&x.peer, &x.why, err)
			return gnet.None
		}
		if err != nil && x.c == c && !x.detaching && x.keepTail(c) {
			return gnet.None // the backend closed; its last bytes wait for the client
		}
		p = &x.peer
	case *h2up:
		if x.connecting != nil && x.connecting == c {
			connectFailed(&x.peer, &x.why, err)
			return gnet.None
		}
		p = &x.peer
	default:
		return gnet.None
	}
	if p.c != c {
		return gnet.None // a stale gnet.Conn of a resumed peer
	}
	if p.detaching {
		p.detaching = false
		p.closeMe = false
		p.c = nil
		return gnet.None
	}
	p.lp.gone(p)
	return gnet.None
}

// OnTick posts a sweep to every loop: every 2 ms while some connection is
// parked or flushing, else every 100 ms.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, lp := range loops {
		_ = lp.el.Execute(context.Background(), lp.sweepTask)
	}
	// Tell the balancer about availability changes, so a backend that
	// comes back ramps up over loadBalancing.slowStart, and enter or leave
	// panic mode.
	now := time.Now().UnixNano()
	s.clock.Store(now)
	s.snap.Load().tickPools(now)
	if s.detached.Load() > 0 || s.flushing.Load() > 0 || s.owing.Load() > 0 {
		return 2 * time.Millisecond, gnet.None
	}
	return 100 * time.Millisecond, gnet.None
}

// renderMetrics is the built-in exposition of the main-port metrics route
// for a Server without SetMetrics (tests); connx sets the full exporter.
func (s *Server) renderMetrics() []byte {
	b := []byte("# HELP connx_active_connections Open client connections.\n# TYPE connx_active_connections gauge\nconnx_active_connections ")
	b = strconv.AppendInt(b, s.active.Load(), 10)
	b = append(b, "\n# HELP connx_parked_connections Connections parked in the kernel for backpressure.\n# TYPE connx_parked_connections gauge\nconnx_parked_connections "...)
	b = strconv.AppendInt(b, s.detached.Load(), 10)
	b = append(b, "\n# HELP connx_closing_connections Client connections flushing their last response before closing.\n# TYPE connx_closing_connections gauge\nconnx_closing_connections "...)
	b = strconv.AppendInt(b, s.flushing.Load(), 10)
	b = append(b, "\n# HELP connx_uptime_seconds Seconds since start.\n# TYPE connx_uptime_seconds gauge\nconnx_uptime_seconds "...)
	b = strconv.AppendFloat(b, time.Since(s.started).Seconds(), 'f', 3, 64)
	return append(b, '\n')
}

// fdReserve is the number of descriptors kept free below RLIMIT_NOFILE:
// clients are refused well before the limit (gnet would pause accepting
// at EMFILE, and a dial or health check would fail), leaving room for
// accepts in flight on every loop, dials, parked connections'
// duplicates, health checks and the admin listener.
const fdReserve = 64

// autoMaxConns is limits.maxConnections when the config leaves it at 0:
// config.DefaultMaxConnections, or fewer when the descriptor limit fdLimit
// cannot hold a client and an upstream connection for each besides
// fdReserve.
func autoMaxConns(fdLimit int64) int64 {
	return max(1, min(config.DefaultMaxConnections, (fdLimit-fdReserve)/2))
}

// checkFDLimit logs what the descriptor limit means for
// limits.maxConnections: a warning when an explicit setting may need more
// descriptors than the limit (a client and an upstream connection each),
// a note when the automatic one had to be sized below its default.
func (s *Server) checkFDLimit(cfg *config.Config, log *slog.Logger) {
	limit := s.fdLimit.Load()
	if n := cfg.Limits.MaxConnections; n > 0 {
		if need := 2*int64(n) + fdReserve; need > limit {
			log.Warn("the file descriptor limit is below what limits.maxConnections may need (a client and an upstream connection each); "+
				"new connections will be refused with 503 near the limit. Raise it (ulimit -n, LimitNOFILE=) to at least the value shown, "+
				"or leave limits.maxConnections unset to size it from the limit",
				"fd_limit", limit, "limits.maxConnections", n, "needed", need)
		}
		return
	}
	if n := autoMaxConns(limit); n < config.DefaultMaxConnections {
		log.Info("limits.maxConnections is not set: sized from the file descriptor limit",
			"fd_limit", limit, "max_connections", n)
	}
}

// fdLimit is the process's descriptor limit (Go raises the soft limit to
// the hard one at start).
func fdLimit() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<40 {
		return 1 << 40
	}
	return int64(rl.Cur)
}

// nearFDLimit reports whether the descriptors in use (clients, upstream
// connections, parked duplicates) come within fdReserve of the limit.
func (s *Server) nearFDLimit() bool {
	// Each backend also has a health-check connection open.
	extra := int64(fdReserve + s.snap.Load().backendCount())
	return s.active.Load()+s.upOpen.Load()+s.dialing.Load()+s.detached.Load()+extra >= s.fdLimit.Load()
}

func sockaddrTCP(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return nil
}

// quietLogger routes gnet's logging to slog at debug level, except errors
// (its warnings are about events for connections closed in the same poll
// batch, which are expected).
type quietLogger struct{ l *slog.Logger }

var _ logging.Logger = quietLogger{}

func (q quietLogger) Debugf(f string, a ...any) { q.l.Debug(fmt.Sprintf(f, a...)) }
func (q quietLogger) Infof(f string, a ...any)  { q.l.Debug(fmt.Sprintf(f, a...)) }
func (q quietLogger) Warnf(f string, a ...any)  { q.l.Debug(fmt.Sprintf(f, a...)) }
func (q quietLogger) Errorf(f string, a ...any) { q.l.Error(fmt.Sprintf(f, a...)) }
func (q quietLogger) Fatalf(f string, a ...any) { q.l.Error(fmt.Sprintf(f, a...)) }
