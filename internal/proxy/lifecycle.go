package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connx/connx/internal/config"
)

// Reload replaces the running configuration with cfg, which must have
// passed validation. It builds a complete new snapshot first: on error
// nothing changes. Then it swaps the snapshot in (new requests use it at
// once; requests in progress finish under the old one), hands each pool's
// health checker its new settings and backends, and retires removed
// backends and pools: they get no new requests, their requests in flight
// finish, and their idle pooled connections are closed.
//
// Pools that stay (same name) keep their panic state and outlier group;
// backends that stay in their pool (same host:port) keep their runtime
// state: requests in flight, latency estimate, breaker, health and
// outlier state. Added backends ramp up over loadBalancing.slowStart.
//
// server.host and server.port are ignored (the listener stays where it
// is; connx moves it by starting a successor); server.eventLoops needs a
// restart and is logged as such.
// Reload is safe for concurrent use; reloads are serialised.
func (s *Server) Reload(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.draining.Load() {
		return errors.New("server: shutting down")
	}
	// Everything that can fail comes first; then the TLS settings, the
	// DNS watchers and the snapshot change together.
	applyTLS, err := s.prepareTLS(cfg)
	if err != nil {
		return err
	}
	pending, commit, abort, err := s.prepareDiscovery(cfg)
	if err != nil {
		return err
	}
	old := s.snap.Load()
	sn, err := s.buildWith(cfg, pending)
	if err != nil {
		abort()
		return err
	}
	commit()
	applyTLS()
	s.snap.Store(sn)
	s.apply(sn)
	if cfg.Limits.MaxConnections != old.cfg.Limits.MaxConnections {
		s.checkFDLimit(cfg, s.log)
	}
	if cfg.Server.EventLoops != old.cfg.Server.EventLoops {
		s.log.Warn("server.eventLoops changed; it applies after a restart or upgrade (SIGUSR2)",
			"running", old.cfg.Server.EventLoops, "configured", cfg.Server.EventLoops)
	}
	// server.host and server.port are the caller's business: a Server
	// listens where it started (connx moves the listener by starting a
	// successor process).
	return nil
}

// dropPool closes the idle pooled connections to be, on the loop.
func (lp *loop) dropPool(be *backend) {
	if be.id >= len(lp.pools) {
		return
	}
	for {
		up := lp.idle(be)
		if up == nil {
			return
		}
		up.state = usIdle
		lp.closeConn(&up.peer)
	}
}

// Shutdown drains the server gracefully and stops it. At once the
// listening sockets close, so new connections are refused; idle keep-alive
// connections are closed; requests in progress finish, and every response
// from then on carries "Connection: close" and ends its connection
// (requests already received are answered). Shutdown returns when the
// last client connection is gone and the engine has stopped, or when ctx
// ends, whichever is first; then whatever is left is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.shutdown(ctx, 0)
}

// HandOver is Shutdown for a zero-downtime upgrade: a successor has bound
// m listening sockets next to this server's (see JoinListeners). New
// connections are steered to the successor's sockets, and this server's
// listeners close once their accept queues are empty, so no connection
// is reset; then the server drains as with Shutdown.
func (s *Server) HandOver(ctx context.Context, m int) error {
	return s.shutdown(ctx, m)
}

func (s *Server) shutdown(ctx context.Context, successor int) error {
	<-s.ready
	if s.draining.Swap(true) {
		return errors.New("server: already shutting down")
	}
	s.reloadMu.Lock() // no reload from now on
	defer s.reloadMu.Unlock()
	s.stopping.Store(true)
	var err error
	if successor > 0 {
		err = handOverListeners(ctx, s.addr, successor)
	} else {
		err = closeListeners(s.addr)
	}
	if err != nil {
		s.log.Warn("closing the listeners", "err", err)
	}
	s.closeTLSListeners(ctx, successor)
	close(s.unbound)
	s.drainLoops()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	err = nil
	// Handshakes in progress become clients (and are drained like them)
	// or fail; at the deadline they are cut off.
	handshaking := func() int64 {
		if s.tls == nil {
			return 0
		}
		return s.tls.inFlight.Load()
	}
wait:
	for s.active.Load() > 0 || handshaking() > 0 {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("server: %d connections left at the shutdown deadline: %w", s.active.Load()+handshaking(), ctx.Err())
			break wait
		case <-tick.C:
			s.drainLoops() // connections that were mid-head become idle
		}
	}
	// gnet's Stop closes whatever is left. It polls for the engine's end
	// every 500 ms; Serve returns as soon as the engine is down.
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := s.eng.Stop(stopCtx); serr != nil && err == nil && !errors.Is(serr, context.DeadlineExceeded) {
		err = serr
	}
	return err
}

// Unbound is closed once Shutdown has closed the listening sockets: from
// then on new connections are refused.
func (s *Server) Unbound() <-chan struct{} { return s.unbound }

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// drainLoops posts the drain step to every loop.
func (s *Server) drainLoops() {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, lp := range loops {
		_ = lp.el.Execute(context.Background(), lp.drainTask)
	}
}

// drain runs on the loop while the server shuts down: idle clients close,
// busy ones close after their current response.
func (lp *loop) drain() {
	for cl := lp.clients.first(); cl != nil; cl = lp.clients.next() {
		cl.drain()
	}
}

// drain closes an idle client. A busy one finishes its exchange; its
// response says "Connection: close" unless a pipelined request already
// waits, which is answered (with "Connection: close") before the close.
// Requests read from now on are answered likewise (see readHead), and
// exchangeDone closes a client that has nothing more to answer.
func (cl *client) drain() {
	if cl.h2 != nil {
		cl.h2.drain()
		return
	}
	if cl.closed || cl.state == csClosing || !cl.attached() || cl.isDetached() {
		return
	}
	switch {
	case cl.buffered() > 0:
	case cl.state == csIdle && len(cl.owed) > 0:
		cl.keepAlive = false
		cl.closeGracefully() // it is still reading its last response
	case cl.state == csIdle:
		cl.abort()
	case !cl.respStarted:
		cl.keepAlive = false
	}
}
