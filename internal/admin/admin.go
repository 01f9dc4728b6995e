// Package admin serves ConnX's admin listener: liveness and readiness
// probes, a read-only JSON API over the proxy's [stats.Snapshot] and its
// active configuration, a live status page and, optionally, metrics.
//
// It is plain net/http on its own port. Nothing here runs on, or blocks,
// the event loops: every request takes a fresh snapshot through
// [Options.Stats], which the data plane fills from counters it already
// keeps.
//
// The admin port has no authentication. Bind it to localhost or a private
// network; /api/config redacts secrets, but the rest of the API describes
// the deployment in detail.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// DefaultRefresh is the status page's poll interval when
// Options.Refresh is zero.
const DefaultRefresh = time.Second

// Timeouts of the admin listener. The page and the API answer from memory,
// so these are generous for a client and short for an attacker holding
// connections open.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second // a large /metrics on a slow link
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Options configure a Server. Only Addr is needed to listen; every other
// field has a working zero value.
type Options struct {
	// Addr is the "host:port" to listen on; port 0 picks a free port (see
	// [Server.Addr]).
	Addr string
	// Stats fills a snapshot for each API call and page poll. It may be
	// called concurrently and must not block on the event loops. Nil
	// reports an empty snapshot: no backends, so /readyz answers 503.
	Stats stats.Source
	// Config returns the active configuration, which changes on reload;
	// the returned value is only read. Nil, or a nil result, makes
	// /api/config answer 503.
	Config func() *config.Config
	// Metrics is served at /metrics when non-nil.
	Metrics http.Handler
	// Log receives the listener's start and serve errors; nil discards.
	Log *slog.Logger
	// Refresh is the status page's poll interval. Zero means
	// DefaultRefresh; values below 10ms are raised to 10ms.
	Refresh time.Duration
	// Join binds the address next to a running ConnX's admin listener
	// (SO_REUSEPORT) instead of failing when it is busy: for the
	// successor of a zero-downtime upgrade.
	Join bool
}

// Server is the admin listener. Build it with [New]; its zero value is not
// usable.
//
// Start and Shutdown are meant to be called once each, from the goroutine
// that owns the Server; Handler and Addr may be called from any
// goroutine.
type Server struct {
	opt     Options
	log     *slog.Logger
	handler http.Handler // what Start serves; tests may wrap it first
	page    []byte       // the status page with Refresh filled in

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when the serve goroutine returns
}

// New returns a Server for o. It does not listen; call [Server.Start].
func New(o Options) *Server {
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	o.Refresh = max(o.Refresh, 10*time.Millisecond)
	s := &Server{opt: o, log: o.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.page = renderPage(o.Refresh, o.Metrics != nil)
	s.handler = s.routes()
	return s
}

// Handler returns the admin routes, for tests and for embedding in
// another server. It is safe for concurrent use.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Options.Addr and serves in a background goroutine. The
// error, if any, names the address. Calling Start twice is an error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("admin: already started")
	}
	ln, err := listen(s.opt.Addr, s.opt.Join)
	if err != nil {
		return fmt.Errorf("admin: listen on %q: %w", s.opt.Addr, err)
	}
	ln = &limitListener{Listener: ln, sem: make(chan struct{}, maxConns)}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.srv, s.ln, s.done = srv, ln, make(chan struct{})
	s.log.Info("admin listening", "addr", ln.Addr().String())
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr returns the address the Server listens on, with the port the
// kernel chose for port 0; nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops listening, waits for requests in progress to finish
// until ctx is done, then closes what is left and returns ctx's error. It
// returns once the serve goroutine has exited. Shutdown before Start does
// nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
}

// routes builds the handler: Go 1.22 patterns give 405 (with Allow) for a
// known path with another method and 404 for unknown paths.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveStatusPage)
	mux.HandleFunc("GET /healthz", serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.HandleFunc("GET /api/backends", s.serveBackends)
	mux.HandleFunc("GET /api/pools", s.servePools)
	mux.HandleFunc("GET /api/routes", s.serveRoutes)
	mux.HandleFunc("GET /api/stats", s.serveStats)
	mux.HandleFunc("GET /api/tls", s.serveTLS)
	mux.HandleFunc("GET /api/config", s.serveConfig)
	if s.opt.Metrics != nil {
		mux.Handle("GET /metrics", s.opt.Metrics)
	}
	return commonHeaders(mux)
}

// commonHeaders sets the headers every admin response carries, errors
// included: nothing here may be cached, and nothing may be sniffed into
// another type.
func commonHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// snapshot takes a snapshot through Options.Stats, with Time set.
func (s *Server) snapshot() *stats.Snapshot {
	snap := &stats.Snapshot{}
	if s.opt.Stats != nil {
		s.opt.Stats(snap)
	}
	if snap.Time.IsZero() {
		snap.Time = time.Now()
	}
	return snap
}

// listen binds addr with SO_REUSEPORT, so that the successor of a
// zero-downtime upgrade can bind it while this process still serves. Unless
// join is set, it first makes sure no one else holds the port (which
// SO_REUSEPORT would otherwise share silently).
func listen(addr string, join bool) (net.Listener, error) {
	if !join {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		addr = ln.Addr().String() // port 0 stays the port just found
		_ = ln.Close()
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// maxConns bounds the admin listener's open connections, so that it
// cannot use up the file descriptors the data plane counts on (the proxy
// keeps a small reserve for it). Connections beyond it wait in the
// kernel's accept queue.
const maxConns = 32

// limitListener accepts a connection only while fewer than cap(sem) are
// open.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
