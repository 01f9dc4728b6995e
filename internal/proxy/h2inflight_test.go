package proxy

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
)

// Uploads that ConnX rejects early (413: content-length over
// limits.maxRequestBody) while the client's body DATA is in flight. Each
// in-flight frame used to be answered RST_STREAM(STREAM_CLOSED) and
// counted as a client reset, so a few such uploads ended the connection
// with GOAWAY(ENHANCE_YOUR_CALM); the codec now ignores them (RFC 9113
// 5.1, internal/http2 TestInFlightDataNotCountedAsResets).
func TestH2EarlyAnswerInFlightData(t *testing.T) {
	e := newFloodEnv(t, func(c *config.Config) { c.Limits.MaxRequestBody = 1000 })
	h := dialH2(t, e.addr)
	o := newOutcome()
	id := uint32(1)
	for i := range 6 {
		h.burst(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.reqBlock("POST", "/up", "content-length", "60000"), EndHeaders: true})
		})
		h.readUntil(o, func(o *h2Outcome) bool { _, rst := o.resets[id]; return o.goAway != nil || rst })
		if o.goAway != nil || o.closed {
			break
		}
		t.Logf("upload %d (stream %d): status %s, RST_STREAM %v", i+1, id, o.status[id], o.resets[id])
		// The body the client had sent before it saw the answer.
		h.burst(func(fr *http2.Framer) {
			for range 60 {
				_ = fr.WriteData(id, false, make([]byte, 1000))
			}
		})
		id += 2
	}
	h.burst(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.reqBlock("GET", "/after"), EndStream: true, EndHeaders: true})
	})
	h.readUntil(o, func(o *h2Outcome) bool { return o.goAway != nil || o.ended[id] })
	t.Logf("GET on stream %d: status %q; GOAWAY %v; closed %v", id, o.status[id], o.goAway, o.closed)
	if o.goAway != nil {
		t.Errorf("connection ended after early-rejected uploads: GOAWAY %v", o.goAway.ErrCode)
	}
}

// A request whose body's first DATA is over maxRequestBody is answered
// 413 and reset (NO_ERROR); its trailers, already in flight, used to end
// the whole connection, killing another stream in progress.
func TestH2EarlyAnswerInFlightTrailers(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		fmt.Fprint(w, "ok")
	}))
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	_, addr := proxyFor(t, []string{backend}, func(c *config.Config) {
		c.Server.H2C = true
		c.Limits.MaxRequestBody = 1000
	})
	h := dialH2(t, addr)
	h.get(3, "/slow")
	<-arrived
	h.burst(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: h.reqBlock("POST", "/up"), EndHeaders: true})
		_ = fr.WriteData(5, false, make([]byte, 2000))
	})
	o := newOutcome()
	h.readUntil(o, func(o *h2Outcome) bool { _, rst := o.resets[5]; return rst || o.goAway != nil })
	t.Logf("stream 5: status %s, RST_STREAM %v", o.status[5], o.resets[5])
	h.burst(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: h.block("x-sum", "6"), EndStream: true, EndHeaders: true})
	})
	// A PING answered after the trailers: the connection read them.
	h.burst(func(fr *http2.Framer) { _ = fr.WritePing(false, [8]byte{1}) })
	h.readUntil(o, func(o *h2Outcome) bool { return o.goAway != nil || o.pingAcks > 0 })
	free()
	h.readUntil(o, func(o *h2Outcome) bool { return o.goAway != nil || o.ended[3] })
	t.Logf("after in-flight trailers: GOAWAY %v; stream 3 status %q ended %v", o.goAway, o.status[3], o.ended[3])
	if o.goAway != nil {
		t.Fatalf("connection (and the slow stream 3) ended by in-flight trailers: GOAWAY %v", o.goAway.ErrCode)
	}
	if o.status[3] != "200" {
		t.Errorf("stream 3: status %q, want 200", o.status[3])
	}
}
