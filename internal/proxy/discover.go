package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/discovery"
	"github.com/connx/connx/internal/stats"
)

// Pools whose members come from DNS (pools[].discovery, or the top-level
// discovery for the default pool): each has a discovery.Watcher that
// resolves its name off the event loops and calls back with the members
// whenever they change. The callback only records them and asks the
// server's rediscover goroutine for a rebuild; the rebuild makes a new
// snapshot from the running configuration with the recorded members, as
// a reload does, so kept members keep their state and removed ones
// drain. Nothing here runs on an event loop.

// firstResolveTimeout bounds the resolution New and Reload wait for.
const firstResolveTimeout = 10 * time.Second

// poolWatch is a pool's DNS watcher and the members it last published.
type poolWatch struct {
	cfg     discovery.Config
	w       *discovery.Watcher
	members []config.Backend // guarded by Server.mu
	cancel  context.CancelFunc
	running bool          // Run has started
	done    chan struct{} // closed when Run has returned (running only)
}

// discoveryOf returns the discovery settings of pool p, or nil.
func discoveryOf(p *config.Pool) *config.DNSDiscovery {
	if p.Discovery == nil {
		return nil
	}
	return p.Discovery.DNS
}

// prepareDiscovery makes sure every pool of cfg with discovery has a
// watcher with cfg's settings and a first resolution: new and changed
// ones are made here and resolved at once (a failure, or no members, is
// an error unless startEmpty). It returns them by pool name (pending, for
// buildWith), commit, which installs them and stops the watchers cfg no
// longer uses (pools without discovery, or with new settings), and
// abort, which drops them; until one of the two is called nothing has
// changed. Called with reloadMu held (or from New).
func (s *Server) prepareDiscovery(cfg *config.Config) (pending map[string]*poolWatch, commit, abort func(), err error) {
	type fresh struct {
		name string
		pw   *poolWatch
	}
	var made []fresh
	abort = func() {
		for _, f := range made {
			f.pw.cancel()
		}
	}
	fail := func(e error) (map[string]*poolWatch, func(), func(), error) {
		abort()
		return nil, nil, nil, e
	}
	pools := append([]config.Pool{cfg.DefaultPool()}, cfg.Pools...)
	want := map[string]bool{}
	for i := range pools {
		p := &pools[i]
		d := discoveryOf(p)
		if d == nil {
			continue
		}
		want[p.Name] = true
		wc := d.WatcherConfig()
		s.mu.Lock()
		old := s.watches[p.Name]
		s.mu.Unlock()
		if old != nil && old.cfg == wc {
			continue
		}
		key := "discovery"
		if p.Name != config.DefaultPoolName {
			key = "pools." + p.Name + ".discovery"
		}
		pw := &poolWatch{cfg: wc}
		name := p.Name
		w, err := discovery.New(wc, s.log.With("pool", name), nil, func(ms []discovery.Member) {
			s.discovered(name, pw, ms)
		})
		if err != nil {
			return fail(fmt.Errorf("%s: %w", key, err))
		}
		pw.w = w
		ctx, cancel := context.WithCancel(context.Background())
		pw.cancel = cancel
		made = append(made, fresh{name, pw})
		rctx, rcancel := context.WithTimeout(ctx, firstResolveTimeout)
		err = w.Resolve(rctx)
		rcancel()
		if err != nil && !d.StartEmpty {
			if errors.Is(err, discovery.ErrNoMembers) {
				return fail(fmt.Errorf("%s: %s has no members (set startEmpty: true to start with an empty pool)", key, d.Name))
			}
			return fail(fmt.Errorf("%s: the first resolution of %s failed: %w (set startEmpty: true to start with an empty pool)", key, d.Name, err))
		}
	}
	pending = make(map[string]*poolWatch, len(made))
	for _, f := range made {
		pending[f.name] = f.pw
	}
	return pending, func() {
		s.mu.Lock()
		var stop []*poolWatch
		for name, pw := range s.watches {
			if !want[name] {
				stop = append(stop, pw)
				delete(s.watches, name)
			}
		}
		for _, f := range made {
			if old := s.watches[f.name]; old != nil {
				stop = append(stop, old)
			}
			s.watches[f.name] = f.pw
		}
		s.mu.Unlock()
		for _, pw := range stop {
			pw.cancel()
		}
		s.startWatches()
	}, abort, nil
}

// discovered records the members a watcher published and asks for a
// rebuild (which a New or Reload in progress makes anyway).
func (s *Server) discovered(name string, pw *poolWatch, ms []discovery.Member) {
	bs := make([]config.Backend, len(ms))
	for i, m := range ms {
		bs[i] = config.Backend{URL: m.URL(), Addr: m.Addr, Weight: m.Weight}
	}
	s.mu.Lock()
	pw.members = bs
	live := s.watches[name] == pw
	s.mu.Unlock()
	if live {
		select {
		case s.rediscover <- struct{}{}:
		default: // a rebuild is pending already
		}
	}
}

// startWatches starts the Run loop of every watcher not yet running, once
// Serve has started.
func (s *Server) startWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checkCtx == nil {
		return
	}
	for _, pw := range s.watches {
		if pw.running {
			continue
		}
		pw.running = true
		ctx, cancel := context.WithCancel(s.checkCtx)
		prev := pw.cancel
		pw.cancel = func() { cancel(); prev() }
		pw.done = make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			pw.w.Run(ctx)
		}(pw.done)
	}
}

// stopWatches stops every watcher and waits for them (Serve's end): a
// cancelled query ends at once (discovery moves its deadline), so no
// watcher outlives Serve.
func (s *Server) stopWatches() {
	s.mu.Lock()
	ws := s.watches
	s.watches = map[string]*poolWatch{}
	s.mu.Unlock()
	for _, pw := range ws {
		pw.cancel()
	}
	for _, pw := range ws {
		if pw.done != nil {
			<-pw.done
		}
	}
}

// withDiscovered returns cfg's pool p with the members its watcher last
// published in place of its backends, when it has discovery: the pending
// watcher of p (prepareDiscovery), else the installed one. s.mu is held.
func (s *Server) withDiscovered(p config.Pool, pending map[string]*poolWatch) config.Pool {
	if discoveryOf(&p) == nil {
		return p
	}
	p.Backends = nil
	pw := pending[p.Name]
	if pw == nil {
		pw = s.watches[p.Name]
	}
	if pw != nil {
		p.Backends = pw.members
	}
	return p
}

// discoveryStatus is the state of pool's DNS discovery for Server.Stats:
// its watcher's Status, or zero when the pool has no watcher.
func (s *Server) discoveryStatus(pool string) stats.Discovery {
	s.mu.Lock()
	pw := s.watches[pool]
	s.mu.Unlock()
	if pw == nil {
		return stats.Discovery{}
	}
	st := pw.w.Status()
	d := stats.Discovery{
		Active: true, Name: pw.cfg.Name, Type: pw.cfg.Type, State: st.State.String(),
		Members: st.Members, Resolutions: st.Resolutions, Failures: st.Failures, LastAnswer: st.LastAnswer,
	}
	if st.Err != nil {
		d.LastError = st.Err.Error()
	}
	return d
}

// rediscoverLoop rebuilds the snapshot when a watcher published new
// members, until ctx ends.
func (s *Server) rediscoverLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.rediscover:
		}
		s.reloadMu.Lock()
		if !s.draining.Load() {
			sn, err := s.build(s.snap.Load().cfg)
			if err != nil {
				s.log.Error("discovery: the new members were not applied", "err", err)
			} else {
				s.snap.Store(sn)
				s.apply(sn)
			}
		}
		s.reloadMu.Unlock()
	}
}
