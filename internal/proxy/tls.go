package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/stats"
	"github.com/connx/connx/internal/tlsterm"
	"github.com/panjf2000/gnet/v2"
)

// TLS termination (docs/tls.md, docs/design.md#tls).
//
// The HTTPS listener is a second gnet listener on every event loop. A
// connection accepted on it is a client from the start, in state
// csHandshake (after csProxy with the PROXY protocol): its peer has a
// tlsterm.Conn whose handshake is stepped with the ciphertext gnet reads
// (tlsHandshake), on the loop, under timeouts.tlsHandshake and at most
// server.tls.maxHandshakes at a time. crypto/tls's handshake runs there as
// a coroutine that waits for input without blocking the loop, so a
// handshake costs no descriptor duplicate, no goroutine to schedule and no
// second registration. From then on OnTraffic feeds gnet's ciphertext to
// the record layer and the client state machine reads plaintext from the
// stash; every write is sealed and goes through the same owed-bytes path
// as plaintext output (peer.writeRaw), so parking and the connectionBuffer
// bound work unchanged.

// ticketRotation is how often the session-ticket key changes;
// ticketKeys keys are kept, so a ticket resumes for up to
// ticketRotation*(ticketKeys-1) after the next rotation.
const (
	ticketRotation = time.Hour
	ticketKeys     = 3
)

// maxSealKeep bounds the loop's reused buffer for sealed records.
const maxSealKeep = 256 << 10

// tlsFront is the HTTPS listener's shared state.
type tlsFront struct {
	log  *slog.Logger
	keys *tlsterm.TicketKeys

	mu    sync.Mutex                    // serialises update and run
	store atomic.Pointer[tlsterm.Store] // the certificates in use
	conf  atomic.Pointer[tls.Config]    // for new handshakes
	files []string                      // watched by run
	rerun chan struct{}                 // tells run to watch files again

	port    int      // the listening port once Serve has bound it
	listen  string   // its host:port, as given to gnet
	addr    net.Addr // the bound address, for closing the listeners (OnBoot)
	max     atomic.Int64
	timeout atomic.Int64 // ns

	inFlight atomic.Int64 // handshakes in progress (admit, release)
	st       tlsStats

	// admitHook, when set (tests only), runs in admit between reading
	// the count of handshakes in progress and claiming a place.
	admitHook func()
}

// admit takes one of the server.tls.maxHandshakes slots for a new
// handshake, if one is free. Loops admit concurrently: the check and the
// take are one compare-and-swap, so the bound holds exactly.
func (f *tlsFront) admit() bool {
	for {
		n := f.inFlight.Load()
		if n >= f.max.Load() {
			return false
		}
		if f.admitHook != nil {
			f.admitHook()
		}
		if f.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives back the slot admit took.
func (f *tlsFront) release() { f.inFlight.Add(-1) }

// tlsStats counts handshakes.
type tlsStats struct {
	done    [4]atomic.Uint64 // completed, by version: 1.0, 1.1, 1.2, 1.3
	resumed [4]atomic.Uint64 // of which resumed a session, by version
	failed  [numTLSFailures]atomic.Uint64
	durNs   atomic.Int64              // sum of completed handshakes' durations
	hist    [numBuckets]atomic.Uint64 // completed handshakes by duration (stats.DurationBuckets)
}

// Reasons a handshake failed, indexing stats.TLSFailures.
const (
	tlsFailTimeout  = iota // timeouts.tlsHandshake, or the client went away
	tlsFailProtocol        // no common version, suite or ALPN protocol; garbage
	tlsFailRefused         // maxHandshakes or the connection limits
	tlsFailEnroll          // unused since handshakes run on the loop; the series stays for dashboards
	numTLSFailures
)

// newTLSFront loads cfg's certificates.
func newTLSFront(cfg *config.Config, log *slog.Logger) (*tlsFront, error) {
	keys, err := tlsterm.NewTicketKeys(ticketKeys, nil)
	if err != nil {
		return nil, err
	}
	f := &tlsFront{log: log, keys: keys, rerun: make(chan struct{}, 1)}
	if err := f.update(cfg); err != nil {
		return nil, err
	}
	return f, nil
}

// update applies cfg's server.tls (certificates, minVersion,
// maxHandshakes) and timeouts.tlsHandshake to new handshakes. The port is
// kept: moving the listener takes a restart or an upgrade.
func (f *tlsFront) update(cfg *config.Config) error {
	apply, err := f.prepare(cfg)
	if err != nil {
		return err
	}
	apply()
	return nil
}

// prepare loads cfg's certificates when they are other files than those
// in use; apply puts cfg's settings in force, re-reading the files in use
// when they are kept (a reload re-reads them, which matters when watching
// them failed). On error nothing changes.
func (f *tlsFront) prepare(cfg *config.Config) (apply func(), err error) {
	t := cfg.Server.TLS
	pairs := make([]tlsterm.Pair, len(t.Certificates))
	for i, c := range t.Certificates {
		pairs[i] = tlsterm.Pair{CertFile: c.CertFile, KeyFile: c.KeyFile}
	}
	f.mu.Lock()
	store := f.store.Load()
	f.mu.Unlock()
	kept := store != nil && slices.Equal(store.Files(), pairFiles(pairs))
	if !kept {
		if store, err = tlsterm.NewStore(pairs, f.log); err != nil {
			return nil, fmt.Errorf("server.tls: %w", err)
		}
	}
	opts := tlsterm.ServerOptions{MinVersion: tlsterm.Versions[t.MinVersion], Tickets: f.keys, HTTP2: t.HTTP2}
	if ca := t.ClientAuth; ca != nil {
		pool, err := tlsterm.LoadCAs(ca.CAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.clientAuth.caFile: %w", err)
		}
		opts.ClientAuth, opts.ClientCAs = tlsterm.ClientAuthModes[ca.Mode], pool
	}
	return func() { f.apply(cfg, store, kept, opts) }, nil
}

// apply puts store, opts and cfg's settings in force.
func (f *tlsFront) apply(cfg *config.Config, store *tlsterm.Store, kept bool, opts tlsterm.ServerOptions) {
	t := cfg.Server.TLS
	f.mu.Lock()
	defer f.mu.Unlock()
	if kept {
		// A pair that fails to load keeps the one in use (logged).
		_ = store.Reload()
	}
	conf := tlsterm.NewServerConfig(store, opts)
	if old := f.conf.Swap(conf); old != nil {
		f.keys.Detach(old)
	}
	if f.store.Swap(store) != store {
		f.files = store.Files()
		select {
		case f.rerun <- struct{}{}:
		default:
		}
	}
	f.max.Store(int64(t.MaxHandshakes))
	f.timeout.Store(int64(cfg.Timeouts.TLSHandshake))
}

func pairFiles(pairs []tlsterm.Pair) []string {
	files := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		files = append(files, p.CertFile, p.KeyFile)
	}
	return files
}

// run watches the certificate files (reloading the store on a change)
// and rotates the ticket keys, until ctx ends. It closes watching once
// the first watches are in place.
func (f *tlsFront) run(ctx context.Context, watching chan<- struct{}) {
	rotate := time.NewTicker(ticketRotation)
	defer rotate.Stop()
	for {
		stop := f.watch(ctx)
		if watching != nil {
			close(watching)
			watching = nil
		}
		for again := false; !again; {
			select {
			case <-ctx.Done():
				stop()
				return
			case <-f.rerun:
				again = true
			case <-rotate.C:
				if err := f.keys.Rotate(); err != nil {
					f.log.Error("TLS session ticket key not rotated", "err", err)
				}
			}
		}
		stop()
	}
}

// watch starts a watcher per certificate or key file of the current
// store; stop ends them and waits.
func (f *tlsFront) watch(ctx context.Context) (stop func()) {
	f.mu.Lock()
	store, files := f.store.Load(), f.files
	f.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, file := range dedupe(files) {
		w, err := config.NewWatcher(file, 0, f.log)
		if err != nil {
			f.log.Error("TLS certificate file not watched; it is re-read on reload (SIGHUP) only", "file", file, "err", err)
			continue
		}
		wg.Go(func() {
			_ = w.Run(wctx, func([]byte, error) { _ = store.Reload() })
		})
	}
	// A change between loading the store and the watchers' first read
	// would otherwise go unseen.
	_ = store.Reload()
	return func() {
		cancel()
		wg.Wait()
	}
}

func dedupe(files []string) []string {
	out := slices.Clone(files)
	slices.Sort(out)
	return slices.Compact(out)
}

// isTLS reports whether c was accepted on the HTTPS listener.
func (f *tlsFront) isTLS(c gnet.Conn) bool {
	a, ok := c.LocalAddr().(*net.TCPAddr)
	return ok && a.Port == f.port
}

// tlsOpen runs first in OnOpen. For a connection accepted on the HTTPS
// listener it checks what refuses a connection before its handshake costs
// anything (allow/deny without the PROXY protocol, the connection limits,
// maxHandshakes) and returns its record layer, whose handshake the client
// steps as its bytes arrive; refused reports that the connection is to be
// closed. A connection of the plaintext listener gets nil.
func (s *Server) tlsOpen(c gnet.Conn, lp *loop, sn *snapshot) (tc *tlsterm.Conn, refused bool) {
	f := s.tls
	if f == nil || !f.isTLS(c) {
		return nil, false
	}
	if sn.pp == nil && !sn.access.IsZero() {
		// With the PROXY protocol, once the header has given the address.
		ip := peerAddrPort(c).Addr().Unmap()
		if !sn.access.Allowed(ip) {
			lp.st.denied.Add(1)
			return nil, true
		}
	}
	if s.active.Load() >= sn.maxConns || s.nearFDLimit() || !f.admit() {
		lp.st.refused.Add(1)
		f.st.failed[tlsFailRefused].Add(1)
		return nil, true
	}
	return tlsterm.ServerStepped(c.LocalAddr(), c.RemoteAddr(), f.conf.Load()), false
}

// tlsDeadline is when the handshake of a client accepted at startNs must
// be over.
func (s *Server) tlsDeadline(startNs int64) int64 {
	return startNs + s.tls.timeout.Load()
}

// tlsHandshake steps the handshake of a client in csHandshake with the
// ciphertext gnet holds. Once it is over the client is idle, and what it
// sent behind its Finished waits in the record layer for tlsTraffic.
func (cl *client) tlsHandshake() {
	ct, _ := cl.c.Peek(-1)
	if len(ct) == 0 {
		return
	}
	done, err := cl.tls.Step(ct)
	_, _ = cl.c.Discard(len(ct))
	if out := cl.tls.Pending(cl.lp.sealBuf[:0]); len(out) > 0 {
		cl.writeRaw(out)
		if cap(out) <= maxSealKeep {
			cl.lp.sealBuf = out[:0]
		}
	}
	if !done {
		return
	}
	f := cl.lp.srv.tls
	f.release()
	cl.state = csIdle
	if err != nil {
		f.st.failed[handshakeFailure(err)].Add(1)
		cl.abort()
		return
	}
	now := time.Now().UnixNano()
	dur := now - cl.startNs
	f.st.durNs.Add(dur)
	f.st.hist[bucketOf(dur)].Add(1)
	st := cl.tls.State()
	if v := int(st.Version) - tls.VersionTLS10; v >= 0 && v < len(f.st.done) {
		f.st.done[v].Add(1)
		if st.DidResume {
			f.st.resumed[v].Add(1)
		}
	}
	cl.deadline = cl.lp.now + cl.sn.clientHeader
	cl.stallAt = cl.lp.now
}

// tlsHandshakeGone runs in cleanup: a client that closes during its
// handshake (or the PROXY header before it) gives its slot back, ends the
// handshake's coroutine and counts as a timeout (the client went away or
// timeouts.tlsHandshake ran out).
func (cl *client) tlsHandshakeGone() {
	if cl.tls == nil || cl.state != csHandshake && cl.state != csProxy {
		return
	}
	f := cl.lp.srv.tls
	f.release()
	cl.tls.Abort()
	if cl.state == csHandshake {
		f.st.failed[tlsFailTimeout].Add(1)
	}
}

// handshakeFailure classifies a handshake error.
func handshakeFailure(err error) int {
	var ne net.Error
	var re tls.RecordHeaderError
	var ae tls.AlertError
	switch {
	case errors.As(err, &re), errors.As(err, &ae):
		return tlsFailProtocol
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return tlsFailTimeout
	case errors.Is(err, net.ErrClosed), isEOF(err):
		return tlsFailTimeout
	}
	return tlsFailProtocol // crypto/tls's own checks: versions, suites, ALPN
}

func isEOF(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "EOF" || err.Error() == "unexpected EOF" {
			return true
		}
	}
	return false
}

// tlsTraffic is onTraffic for a TLS client: ciphertext from gnet becomes
// plaintext in the stash, which the state machine reads as usual. An
// error, or the client's close_notify, closes the connection once the
// plaintext before it has been processed (as a TCP FIN does).
func (cl *client) tlsTraffic() {
	if cl.state == csHandshake || cl.state == csProxy {
		cl.onTraffic() // ciphertext for the handshake, or the PROXY header before it
		if cl.state != csIdle || cl.closeMe || cl.closed {
			cl.tlsReturn()
			return
		}
		// The handshake is over: what came behind the client's Finished
		// (its first request, the HTTP/2 preface, a close_notify) is
		// decrypted and processed like any later input.
	}
	err := cl.tlsRead()
	cl.onTraffic()
	if err != nil && !cl.closed {
		cl.abort()
	}
	cl.tlsReturn()
}

// tlsRead decrypts what gnet has buffered into the stash. While the
// stash is empty the plaintext goes to the loop's buffer, lent to the
// stash until tlsReturn at the end of the callback, so a request that is
// processed at once is never copied to the heap.
func (p *peer) tlsRead() error {
	var ct []byte
	if p.c != nil {
		ct, _ = p.c.Peek(-1)
	}
	var err error
	if len(p.stash) > 0 {
		p.stash, err = p.tls.Open(p.stash, ct)
	} else {
		buf := p.lp.plain
		p.lp.plain = nil
		var out []byte
		out, err = p.tls.Open(buf[:0], ct)
		if len(out) > 0 {
			p.stash, p.lent = out, out
		} else {
			p.lp.plain = out
		}
	}
	if len(ct) > 0 {
		_, _ = p.c.Discard(len(ct))
	}
	if out := p.tls.Pending(nil); len(out) > 0 {
		p.writeRaw(out) // an alert, or a key update
	}
	return err
}

// tlsReturn gives the lent buffer back to the loop, copying what the
// callback left unconsumed.
func (p *peer) tlsReturn() {
	if p.lent == nil {
		return
	}
	if len(p.stash) > 0 {
		p.stash = bytes.Clone(p.stash)
	}
	p.lp.plain = p.lent[:0]
	p.lent = nil
}

// writeTLS seals b and writes the records as output of p.
func (p *peer) writeTLS(b []byte) bool {
	buf := p.lp.sealBuf
	p.lp.sealBuf = nil
	out, err := p.tls.Seal(buf[:0], b)
	if err != nil {
		p.broke()
		return false
	}
	ok := p.writeRaw(out)
	if cap(out) <= maxSealKeep {
		p.lp.sealBuf = out[:0]
	}
	return ok
}

// tlsCloseNotify sends close_notify before a graceful close, so that the
// client can tell the end of a response from a truncation.
func (p *peer) tlsCloseNotify() {
	if p.tls != nil && !p.closed {
		p.writeRaw(p.tls.CloseNotify(nil))
	}
}

// tlsListen binds the HTTPS address for Serve the way Serve binds the
// plaintext one (refusing a busy port, resolving port 0), and returns the
// gnet address to add. Without server.tls it returns "".
func (s *Server) tlsListen(sn *snapshot) (string, error) {
	if s.tls == nil {
		return "", nil
	}
	t := sn.cfg.Server.TLS
	addr := sn.cfg.TLSListenAddr()
	port := t.Port
	if anyPort := port == 0; !s.join || anyPort {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("server.tls: cannot listen on %s: %w", addr, err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		addr = net.JoinHostPort(sn.cfg.Server.Host, strconv.Itoa(port))
		_ = ln.Close()
	}
	s.tls.port = port
	s.tls.listen = addr // OnBoot sets s.tls.addr from the bound socket
	return "tcp://" + addr, nil
}

// TLSAddr is the bound HTTPS address (nil without server.tls); valid
// after Ready.
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.addr
}

// dupPlainListener duplicates the plaintext listener for OnBoot: gnet's
// Engine.Dup refuses when there are two listeners.
func (s *Server) dupPlainListener(eng gnet.Engine) (int, error) {
	if s.tls == nil {
		return eng.Dup()
	}
	return eng.DupListener("tcp", s.plainAddr)
}

// closeTLSListeners closes (or hands over) the HTTPS listeners with the
// plaintext ones.
func (s *Server) closeTLSListeners(ctx context.Context, successor int) {
	if s.tls == nil || s.tls.addr == nil {
		return
	}
	var err error
	if successor > 0 {
		err = handOverListeners(ctx, s.tls.addr, successor)
	} else {
		err = closeListeners(s.tls.addr)
	}
	if err != nil {
		s.log.Warn("closing the TLS listeners", "err", err)
	}
}

// prepareTLS checks a reloaded configuration's TLS settings and loads
// its certificates; apply puts them in force. On error nothing changes.
func (s *Server) prepareTLS(cfg *config.Config) (apply func(), err error) {
	switch {
	case s.tls == nil && cfg.Server.TLS == nil:
		return func() {}, nil
	case s.tls == nil || cfg.Server.TLS == nil:
		return nil, errors.New("server.tls: adding or removing the HTTPS listener takes a restart or an upgrade (SIGUSR2)")
	}
	if cfg.Server.TLS.Port != 0 && cfg.Server.TLS.Port != s.tls.port {
		s.log.Warn("server.tls.port changed; it applies after a restart or upgrade (SIGUSR2)",
			"running", s.tls.port, "configured", cfg.Server.TLS.Port)
	}
	return s.tls.prepare(cfg)
}

// TLSStats is a snapshot of the HTTPS listener's counters.
type TLSStats struct {
	Handshakes  map[string]uint64 // completed, by version ("1.3")
	Resumed     uint64            // of which resumed a session
	Failed      map[string]uint64 // by reason: timeout, protocol, refused, enroll
	InProgress  int64
	DurationSum time.Duration // of completed handshakes
	Certs       []tlsterm.CertInfo
}

// TLSStats returns the HTTPS listener's counters; ok is false without
// server.tls. Safe for concurrent use.
func (s *Server) TLSStats() (st TLSStats, ok bool) {
	f := s.tls
	if f == nil {
		return st, false
	}
	st.Handshakes = map[string]uint64{}
	for i := range f.st.done {
		if n := f.st.done[i].Load(); n > 0 {
			st.Handshakes[tlsterm.VersionName(uint16(tls.VersionTLS10+i))] = n
		}
	}
	for i := range f.st.resumed {
		st.Resumed += f.st.resumed[i].Load()
	}
	st.Failed = map[string]uint64{}
	for i, name := range stats.TLSFailures {
		st.Failed[name] = f.st.failed[i].Load()
	}
	st.InProgress = f.inFlight.Load()
	st.DurationSum = time.Duration(f.st.durNs.Load())
	st.Certs = f.store.Load().Certificates()
	return st, true
}

// isSubjectHeader reports whether name is the client-certificate subject
// field (server.tls.clientAuth.subjectHeader).
func isSubjectHeader(name []byte, sn *snapshot) bool {
	return len(name) == len(sn.subjHeader) && http1.EqualFold(name, sn.subjHeader)
}

// appendSubject appends the subject field for a client whose
// certificate the handshake verified; nothing for any other client.
func appendSubject(b []byte, cl *client, sn *snapshot) []byte {
	if cl.tls == nil {
		return b
	}
	subj := cl.tls.PeerSubject()
	if subj == "" {
		return b
	}
	b = append(b, sn.subjHeader...)
	b = append(b, ": "...)
	b = append(b, subj...)
	return append(b, "\r\n"...)
}

// tlsSnapshot fills snap.TLS (left nil without server.tls).
func (s *Server) tlsSnapshot(snap *stats.Snapshot) {
	f := s.tls
	if f == nil {
		return
	}
	t := &stats.TLS{InProgress: f.inFlight.Load()}
	for _, name := range stats.TLSVersions {
		v := int(tlsterm.Versions[name]) - tls.VersionTLS10
		done, resumed := f.st.done[v].Load(), f.st.resumed[v].Load()
		t.Handshakes = append(t.Handshakes,
			stats.TLSHandshakes{Version: name, Result: "full", Count: done - min(resumed, done)},
			stats.TLSHandshakes{Version: name, Result: "resumed", Count: resumed})
	}
	for i, name := range stats.TLSFailures {
		t.Handshakes = append(t.Handshakes, stats.TLSHandshakes{Version: "none", Result: name, Count: f.st.failed[i].Load()})
	}
	h := &t.Duration
	h.Counts = make([]uint64, numBuckets)
	for b := range f.st.hist {
		h.Counts[b] = f.st.hist[b].Load()
		h.Count += h.Counts[b]
	}
	h.Sum = float64(f.st.durNs.Load()) / float64(time.Second)
	for _, c := range f.store.Load().Certificates() {
		t.Certificates = append(t.Certificates, stats.Certificate{CertFile: c.CertFile, Names: c.Names, NotAfter: c.NotAfter})
	}
	snap.TLS = t
}
