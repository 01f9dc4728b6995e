package proxy

// Attacks on HTTP/2 through a real listener (docs/http2.md#limits): a
// raw x/net/http2 Framer client over loopback sends each flood to ConnX
// in front of a real backend. Each test checks the frames the RFC and
// our docs ask for (GOAWAY with ENHANCE_YOUR_CALM, RST_STREAM, 431, 408),
// that the connection is closed where it should be, that the proxy lets
// go of everything (no connection, no HTTP/2 state, a flat heap after
// many rounds), and that a normal client is still served. Every wait is
// for an event, bounded by ioTimeout; nothing is timed.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// floodRounds is how many times each attack is repeated, on a new
// connection each time, between the two heap readings.
const floodRounds = 10

// floodHeapSlack bounds the growth of the heap in use over floodRounds
// attacks: far less than what one leaked connection per round would
// hold (its 64 KiB input and output buffers alone), far more than the
// noise of the test's own goroutines.
const floodHeapSlack = 4 << 20

// h2Outcome is what a client saw on a connection until it ended.
type h2Outcome struct {
	goAway   *http2.GoAwayFrame
	resets   map[uint32]http2.ErrCode
	status   map[uint32]string
	settings uint32 // SETTINGS_MAX_CONCURRENT_STREAMS advertised
	pingAcks int
	setAcks  int
	data     map[uint32][]byte
	ended    map[uint32]bool // END_STREAM seen
	closed   bool            // the connection ended (EOF or reset)
}

func newOutcome() *h2Outcome {
	return &h2Outcome{resets: map[uint32]http2.ErrCode{}, status: map[uint32]string{},
		data: map[uint32][]byte{}, ended: map[uint32]bool{}}
}

// readUntil reads frames into o until done(o) holds or the connection
// ends; a read that times out fails the test (the proxy neither answered
// nor closed within ioTimeout).
func (h *rawH2) readUntil(o *h2Outcome, done func(*h2Outcome) bool) {
	h.t.Helper()
	_ = h.c.SetReadDeadline(time.Now().Add(ioTimeout))
	for !done(o) {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				h.t.Fatalf("connection neither answered nor closed within %v (seen %+v)", ioTimeout, o)
			}
			o.closed = true
			return
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			o.goAway = f
		case *http2.RSTStreamFrame:
			o.resets[f.StreamID] = f.ErrCode
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" {
				o.status[f.StreamID] = s
			}
			if f.StreamEnded() {
				o.ended[f.StreamID] = true
			}
		case *http2.DataFrame:
			o.data[f.StreamID] = append(o.data[f.StreamID], f.Data()...)
			if f.StreamEnded() {
				o.ended[f.StreamID] = true
			}
		case *http2.PingFrame:
			if f.IsAck() {
				o.pingAcks++
			}
		case *http2.SettingsFrame:
			if f.IsAck() {
				o.setAcks++
			} else if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				o.settings = v
			}
		}
	}
}

// untilClosed reads until the connection ends.
func (h *rawH2) untilClosed() *h2Outcome {
	h.t.Helper()
	o := newOutcome()
	h.readUntil(o, func(*h2Outcome) bool { return false })
	return o
}

// burst writes the frames that build makes in one write. A write error
// is ignored: the proxy may close the connection while the burst is
// still arriving (that is what several of the attacks are for).
func (h *rawH2) burst(build func(fr *http2.Framer)) {
	var buf bytes.Buffer
	build(http2.NewFramer(&buf, nil))
	_ = h.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, _ = h.c.Write(buf.Bytes())
}

// block encodes a header block with the client's HPACK encoder.
func (h *rawH2) block(fields ...string) []byte {
	h.buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(h.buf.Bytes())
}

// reqBlock is the header block of a request for path.
func (h *rawH2) reqBlock(method, path string, extra ...string) []byte {
	return h.block(append([]string{":method", method, ":scheme", "http", ":authority", "example.com", ":path", path}, extra...)...)
}

// literalBlock is the header block of a request for path that leaves
// the HPACK dynamic table as it is.
func (h *rawH2) literalBlock(method, path string) []byte {
	h.buf.Reset()
	for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":authority", "example.com"}, {":path", path}} {
		_ = h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	return bytes.Clone(h.buf.Bytes())
}

// expectCalm checks that the connection ended with
// GOAWAY(ENHANCE_YOUR_CALM) and was closed.
func expectCalm(t *testing.T, o *h2Outcome) {
	t.Helper()
	if o.goAway == nil || o.goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %+v, want ENHANCE_YOUR_CALM", o.goAway)
	}
	if !o.closed {
		t.Fatal("connection not closed after GOAWAY")
	}
}

// floodEnv is ConnX (h2c) in front of a counting backend.
type floodEnv struct {
	srv  *Server
	addr string
	be   *countingBackend
}

func newFloodEnv(t *testing.T, tweak func(*config.Config)) *floodEnv {
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %d", r.URL.Path, n)
	})
	srv, addr := proxyFor(t, []string{be.addr}, func(c *config.Config) {
		c.Server.H2C = true
		c.Server.EventLoops = 1
		if tweak != nil {
			tweak(c)
		}
	})
	return &floodEnv{srv: srv, addr: addr, be: be}
}

// h2Conns is the number of HTTP/2 client connections the proxy holds.
func (e *floodEnv) h2Conns() int64 {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	var n int64
	for _, lp := range e.srv.loops {
		n += lp.st.h2conns.Load()
	}
	return n
}

// served checks that a normal HTTP/2 client (its own connection) is
// answered.
func (e *floodEnv) served(t *testing.T) {
	t.Helper()
	c := h2Client(t, nil)
	resp, body := h2Do(t, c, "GET", "http://"+e.addr+"/normal", nil)
	if resp.StatusCode != 200 || body != "/normal 0" {
		t.Fatalf("normal client: %d %q", resp.StatusCode, body)
	}
	c.CloseIdleConnections()
}

// repeat runs attack once to warm up, then floodRounds more times, and
// checks after each that a normal client is served, and at the end that
// the proxy holds no connection and its heap did not grow.
func (e *floodEnv) repeat(t *testing.T, attack func(t *testing.T)) {
	t.Helper()
	attack(t)
	e.served(t)
	e.settle(t)
	before := heapInuse()
	for range floodRounds {
		attack(t)
		e.served(t)
	}
	e.settle(t)
	after := heapInuse()
	t.Logf("heap in use %d KiB before %d rounds, %d KiB after", before>>10, floodRounds, after>>10)
	if after-before > floodHeapSlack {
		t.Errorf("heap grew by %d KiB over %d attacks", (after-before)>>10, floodRounds)
	}
}

// settle waits until the proxy has let go of every client connection.
func (e *floodEnv) settle(t *testing.T) {
	t.Helper()
	waitFor(t, "the proxy to close every client connection", func() bool {
		return e.srv.Active() == 0 && e.h2Conns() == 0
	})
}

// TestH2FloodRapidReset (CVE-2023-44487): streams opened and reset at
// once, more than maxResets of them, end the connection with
// GOAWAY(ENHANCE_YOUR_CALM); the backend sees at most maxResets of them.
func TestH2FloodRapidReset(t *testing.T) {
	const maxResets, n = 50, 400
	e := newFloodEnv(t, func(c *config.Config) { c.Server.HTTP2.MaxResets = maxResets })
	var calls int64
	e.repeat(t, func(t *testing.T) {
		h := dialH2(t, e.addr)
		before := e.be.requests.Load()
		h.burst(func(fr *http2.Framer) {
			for i := range n {
				id := uint32(2*i + 1)
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.reqBlock("GET", "/r"), EndStream: true, EndHeaders: true})
				_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
			}
		})
		o := h.untilClosed()
		expectCalm(t, o)
		if last := o.goAway.LastStreamID; last > 2*maxResets+1 {
			t.Errorf("GOAWAY last stream %d: more than %d streams were taken", last, maxResets+1)
		}
		calls += e.be.requests.Load() - before
	})
	t.Logf("backend requests over %d attacks of %d resets: %d", floodRounds+1, n, calls)
	if calls > int64(floodRounds+1)*(maxResets+1) {
		t.Errorf("backend got %d requests from %d rapid-reset attacks", calls, floodRounds+1)
	}
}

// TestH2FloodContinuation (CVE-2023-45288): a header block that goes on
// in more than 16 CONTINUATION frames — with fields, or empty — ends the
// connection with GOAWAY(ENHANCE_YOUR_CALM) before any request is made.
func TestH2FloodContinuation(t *testing.T) {
	e := newFloodEnv(t, nil)
	for _, empty := range []bool{false, true} {
		t.Run(map[bool]string{false: "fields", true: "empty"}[empty], func(t *testing.T) {
			e.repeat(t, func(t *testing.T) {
				h := dialH2(t, e.addr)
				before := e.be.requests.Load()
				h.burst(func(fr *http2.Framer) {
					_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.reqBlock("GET", "/c"), EndStream: true})
					for i := range 1000 {
						var frag []byte
						if !empty {
							frag = h.block(fmt.Sprintf("x-%d", i), strings.Repeat("v", 100))
						}
						_ = fr.WriteContinuation(1, false, frag)
					}
				})
				expectCalm(t, h.untilClosed())
				if n := e.be.requests.Load() - before; n != 0 {
					t.Errorf("backend got %d requests from an unfinished header block", n)
				}
			})
		})
	}
}

// TestH2FloodPing: more than maxControlFrames PINGs end the connection
// with GOAWAY(ENHANCE_YOUR_CALM); no more PINGs are acknowledged than the
// budget allows.
func TestH2FloodPing(t *testing.T) {
	const budget = 500
	e := newFloodEnv(t, func(c *config.Config) { c.Server.HTTP2.MaxControlFrames = budget })
	e.repeat(t, func(t *testing.T) {
		h := dialH2(t, e.addr)
		h.burst(func(fr *http2.Framer) {
			for i := range 3 * budget {
				_ = fr.WritePing(false, [8]byte{byte(i), byte(i >> 8)})
			}
		})
		o := h.untilClosed()
		expectCalm(t, o)
		if o.pingAcks > budget {
			t.Errorf("%d PINGs acknowledged, budget %d", o.pingAcks, budget)
		}
	})
}

// TestH2FloodSettings: more than maxControlFrames SETTINGS frames end
// the connection with GOAWAY(ENHANCE_YOUR_CALM).
func TestH2FloodSettings(t *testing.T) {
	const budget = 500
	e := newFloodEnv(t, func(c *config.Config) { c.Server.HTTP2.MaxControlFrames = budget })
	e.repeat(t, func(t *testing.T) {
		h := dialH2(t, e.addr)
		h.burst(func(fr *http2.Framer) {
			for range 3 * budget {
				_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
			}
		})
		o := h.untilClosed()
		expectCalm(t, o)
		if o.setAcks > budget {
			t.Errorf("%d SETTINGS acknowledged, budget %d", o.setAcks, budget)
		}
	})
}

// TestH2FloodEmptyFrames (CVE-2019-9518): empty DATA frames on an open
// request, or empty HEADERS frames each opening a stream, end the
// connection with GOAWAY(ENHANCE_YOUR_CALM); each empty HEADERS first
// gets RST_STREAM(PROTOCOL_ERROR) (a request without pseudo-headers is
// malformed, RFC 9113 8.1.1), and those resets count against maxResets.
func TestH2FloodEmptyFrames(t *testing.T) {
	const budget = 300
	e := newFloodEnv(t, func(c *config.Config) {
		c.Server.HTTP2.MaxControlFrames = budget
		c.Server.HTTP2.MaxResets = budget
	})
	t.Run("data", func(t *testing.T) {
		e.repeat(t, func(t *testing.T) {
			h := dialH2(t, e.addr)
			h.burst(func(fr *http2.Framer) {
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.reqBlock("POST", "/d"), EndHeaders: true})
				for range 3 * budget {
					_ = fr.WriteData(1, false, nil)
				}
			})
			expectCalm(t, h.untilClosed())
		})
	})
	t.Run("headers", func(t *testing.T) {
		e.repeat(t, func(t *testing.T) {
			h := dialH2(t, e.addr)
			h.burst(func(fr *http2.Framer) {
				for i := range 3 * budget {
					_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), EndHeaders: true, EndStream: true})
				}
			})
			o := h.untilClosed()
			expectCalm(t, o)
			// The reset over the budget is sent, then the GOAWAY.
			if len(o.resets) == 0 || len(o.resets) > budget+1 {
				t.Errorf("%d streams reset, want 1 to %d", len(o.resets), budget+1)
			}
			for id, code := range o.resets {
				if code != http2.ErrCodeProtocol {
					t.Errorf("stream %d reset with %v", id, code)
				}
			}
		})
	})
}

// TestH2FloodHPACKBomb: a field put once in the HPACK table and then
// referenced a thousand times per request (a 1 KiB block that decodes to
// 4 MiB) gets 431 on each stream, costs no memory, and leaves the table
// in step: a normal request on the same connection is answered. A block
// whose encoded size goes beyond four times maxHeaderListSize ends the
// connection with GOAWAY(ENHANCE_YOUR_CALM).
func TestH2FloodHPACKBomb(t *testing.T) {
	e := newFloodEnv(t, nil)
	t.Run("indexed", func(t *testing.T) {
		e.repeat(t, func(t *testing.T) {
			h := dialH2(t, e.addr)
			// Stream 1 adds a 4000-byte field to the dynamic table, last,
			// so that it is the table's only entry (index 62), and is a
			// normal request otherwise. The later blocks add nothing to
			// the table (never-indexed literals).
			big := strings.Repeat("b", 4000)
			h.burst(func(fr *http2.Framer) {
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.reqBlock("GET", "/seed", "x-bomb", big), EndStream: true, EndHeaders: true})
				bomb := h.literalBlock("GET", "/bomb")
				for range 1000 {
					bomb = append(bomb, 0x80|62) // indexed: x-bomb
				}
				for i := range 8 {
					_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(3 + 2*i), BlockFragment: bomb, EndStream: true, EndHeaders: true})
				}
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 19, BlockFragment: h.literalBlock("GET", "/after"), EndStream: true, EndHeaders: true})
			})
			o := newOutcome()
			h.readUntil(o, func(o *h2Outcome) bool { return len(o.ended) == 10 || o.goAway != nil })
			if o.goAway != nil || o.closed {
				t.Fatalf("connection ended: GOAWAY %+v", o.goAway)
			}
			if o.status[1] != "200" || string(o.data[1]) != "/seed 0" || o.status[19] != "200" || string(o.data[19]) != "/after 0" {
				t.Errorf("normal streams: %q %q, %q %q", o.status[1], o.data[1], o.status[19], o.data[19])
			}
			for i := range 8 {
				if id := uint32(3 + 2*i); o.status[id] != "431" {
					t.Errorf("bomb stream %d: status %q, want 431", id, o.status[id])
				}
			}
			h.c.Close()
		})
	})
	t.Run("oversized", func(t *testing.T) {
		e.repeat(t, func(t *testing.T) {
			h := dialH2(t, e.addr)
			h.burst(func(fr *http2.Framer) {
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.reqBlock("GET", "/big")})
				// 12 CONTINUATION frames of 16,000 encoded bytes each: under
				// the CONTINUATION limit, over 4 x 32 KiB in all.
				for i := range 12 {
					h.buf.Reset()
					enc := hpack.NewEncoder(&h.buf)
					_ = enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-%d", i), Value: strings.Repeat("z", 15990), Sensitive: true})
					_ = fr.WriteContinuation(1, i == 11, h.buf.Bytes())
				}
			})
			expectCalm(t, h.untilClosed())
		})
	})
}

// TestH2StreamBodyTimeout: a stream that announces a body and never
// sends it gets 408 after timeouts.clientBody, on its own: the other
// streams of the connection are answered, and the connection stays
// open for more.
func TestH2StreamBodyTimeout(t *testing.T) {
	e := newFloodEnv(t, func(c *config.Config) { c.Timeouts.ClientBody = 200 * time.Millisecond })
	e.repeat(t, func(t *testing.T) {
		h := dialH2(t, e.addr)
		h.burst(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.reqBlock("POST", "/never", "content-length", "10"), EndHeaders: true})
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: h.reqBlock("POST", "/chunked"), EndHeaders: true})
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: h.reqBlock("GET", "/ok"), EndStream: true, EndHeaders: true})
		})
		o := newOutcome()
		h.readUntil(o, func(o *h2Outcome) bool {
			return o.goAway != nil || o.ended[5] && o.status[1] != "" && o.status[3] != ""
		})
		if o.goAway != nil || o.closed {
			t.Fatalf("connection ended: GOAWAY %+v", o.goAway)
		}
		if o.status[5] != "200" || string(o.data[5]) != "/ok 0" {
			t.Errorf("stream 5: %q %q", o.status[5], o.data[5])
		}
		for _, id := range []uint32{1, 3} {
			if o.status[id] != "408" {
				t.Errorf("stream %d: status %q, want 408", id, o.status[id])
			}
		}
		// The connection goes on.
		h.burst(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: h.reqBlock("GET", "/more"), EndStream: true, EndHeaders: true})
		})
		h.readUntil(o, func(o *h2Outcome) bool { return o.ended[7] })
		if o.status[7] != "200" || string(o.data[7]) != "/more 0" {
			t.Errorf("stream 7: %q %q (closed %v)", o.status[7], o.data[7], o.closed)
		}
		h.c.Close()
	})
}

// TestH2MaxConcurrentStreams: with maxConcurrentStreams open, the next
// stream is refused with RST_STREAM(REFUSED_STREAM) (the client may
// retry it), the open ones finish normally, and the connection then
// takes new streams.
func TestH2MaxConcurrentStreams(t *testing.T) {
	const limit = 10
	var held atomic.Int64
	release := make(chan struct{})
	arrived := make(chan struct{}, 4*limit)
	be := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held.Add(1)
			arrived <- struct{}{}
			<-release
		}
		fmt.Fprint(w, r.URL.Path)
	})
	_, addr := proxyFor(t, []string{be.addr}, func(c *config.Config) {
		c.Server.H2C = true
		c.Server.HTTP2.MaxConcurrentStreams = limit
	})
	h := dialH2(t, addr)
	h.burst(func(fr *http2.Framer) {
		for i := range limit + 1 {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: h.reqBlock("GET", "/hold"), EndStream: true, EndHeaders: true})
		}
	})
	refused := uint32(2*limit + 1)
	o := newOutcome()
	h.readUntil(o, func(o *h2Outcome) bool { _, ok := o.resets[refused]; return ok || o.goAway != nil })
	if o.settings != limit {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", o.settings, limit)
	}
	if code, ok := o.resets[refused]; !ok || code != http2.ErrCodeRefusedStream || o.goAway != nil {
		t.Fatalf("stream %d: reset %v (%v), GOAWAY %+v", refused, code, ok, o.goAway)
	}
	for range limit {
		<-arrived
	}
	close(release)
	h.readUntil(o, func(o *h2Outcome) bool { return len(o.ended) == limit })
	for i := range limit {
		if id := uint32(2*i + 1); o.status[id] != "200" || string(o.data[id]) != "/hold" {
			t.Errorf("stream %d: %q %q", id, o.status[id], o.data[id])
		}
	}
	if n := held.Load(); n != limit {
		t.Errorf("backend got %d held requests, want %d", n, limit)
	}
	h.burst(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: refused + 2, BlockFragment: h.reqBlock("GET", "/next"), EndStream: true, EndHeaders: true})
	})
	h.readUntil(o, func(o *h2Outcome) bool { return o.ended[refused+2] })
	if o.status[refused+2] != "200" || string(o.data[refused+2]) != "/next" {
		t.Errorf("after the limit: %q %q (closed %v)", o.status[refused+2], o.data[refused+2], o.closed)
	}
}

// TestH2FloodUnreadAcks: a client that sends PINGs without end and never
// reads the acknowledgements, under a control-frame budget it never
// exhausts, is not read once it owes more than connectionBuffer: the
// proxy parks it, its writes stall in TCP, and the proxy's heap stays
// bounded by connectionBuffer, not by what the client sends.
func TestH2FloodUnreadAcks(t *testing.T) {
	const connBuf = 256 << 10
	e := newFloodEnv(t, func(c *config.Config) {
		c.Server.HTTP2.MaxControlFrames = 1 << 30
		c.Limits.ConnectionBuffer = connBuf
	})
	e.served(t)
	e.settle(t)
	before := heapInuse()
	h := dialH2(t, e.addr)
	// Shrink the client's receive buffer so the acknowledgements pile up
	// in the proxy rather than in the client's kernel.
	_ = h.c.(*net.TCPConn).SetReadBuffer(4 << 10)
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf bytes.Buffer
		fr := http2.NewFramer(&buf, nil)
		for range 1024 {
			_ = fr.WritePing(false, [8]byte{1})
		}
		// Until the test closes the connection: the writes stall once
		// the proxy parks it, which may take a while on a loaded machine.
		_ = h.c.SetWriteDeadline(time.Now().Add(slowTimeout))
		for {
			n, err := h.c.Write(buf.Bytes())
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	// The proxy parks the connection once it owes more than connBuf on
	// top of what the kernel's buffers take: about 8 MiB of PINGs,
	// half a million frames each answered, which took 1 s under the
	// race detector with two CPU hogs on two cores and may take more
	// than ioTimeout on a loaded CI machine (it timed out there once).
	waitForWithin(t, "the proxy to park the connection", slowTimeout, func() bool { return e.srv.detached.Load() > 0 })
	held := heapInuse() - before
	t.Logf("parked after the client sent %d KiB of PINGs; heap grew %d KiB", sent.Load()>>10, held>>10)
	if held > connBuf+floodHeapSlack {
		t.Errorf("heap grew by %d KiB for one client that does not read (connectionBuffer %d KiB)", held>>10, connBuf>>10)
	}
	e.served(t) // another client is served meanwhile
	h.c.Close()
	<-done
	e.settle(t)
}
