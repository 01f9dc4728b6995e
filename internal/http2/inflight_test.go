package http2

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The frames a client sent on a stream before it saw the proxy's
// RST_STREAM or GOAWAY are ignored (RFC 9113 5.1, 6.8): trailers must
// not end the connection, and DATA must neither draw RST_STREAM frames
// nor count against the reset budget. Found by review: an upload answered
// early (413) whose trailers were in flight ended the connection with
// GOAWAY(STREAM_CLOSED), and about fifty such uploads in ten seconds
// tripped the rapid-reset defence.

// answerEarly does what the proxy does for a complete early answer
// (h2stream.finish): a final response, then RST_STREAM(NO_ERROR).
func answerEarly(p *peer, id uint32) {
	_ = p.c.WriteHeaders(id, p.c.Headers(413), true)
	p.c.Reset(id, ErrCodeNo)
	p.out()
}

func TestInFlightTrailersAfterReset(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, false, postReq...)
	p.headers(3, false, postReq...)
	p.fr.WriteData(1, false, []byte("abc"))
	p.flush()
	p.evs()
	answerEarly(p, 1)
	p.fr.WriteData(1, false, []byte("def"))
	p.headers(1, true, "x-sum: 6")
	p.fr.WriteData(3, true, []byte("ghi"))
	p.flush()
	if p.err != nil {
		t.Fatalf("in-flight DATA and trailers of a reset stream: %v; sent %v", p.err, p.out())
	}
	if got, want := p.evs(), []string{"data 3 3 ES"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v (the other stream goes on)", got, want)
	}
	for _, f := range p.out() {
		if strings.HasPrefix(f, "RST_STREAM") || strings.HasPrefix(f, "GOAWAY") {
			t.Errorf("sent %s for frames in flight", f)
		}
	}
	// HPACK state kept: a request decoded after the ignored block.
	p.headers(5, true, getReq...)
	p.flush()
	if got, want := p.evs(), []string{"headers 5 GET / ES"}; p.err != nil || !slices.Equal(got, want) {
		t.Errorf("after the ignored block: events %v (want %v), err %v", got, want, p.err)
	}
}

func TestInFlightDataNotCountedAsResets(t *testing.T) {
	p := newPeer(t, nil) // default limits: MaxResets 200
	id := uint32(1)
	for range 10 {
		p.headers(id, false, postReq...)
		p.fr.WriteData(id, false, make([]byte, 1000))
		p.flush()
		p.evs()
		answerEarly(p, id)
		for range 60 {
			p.fr.WriteData(id, false, make([]byte, 1000))
		}
		p.flush()
		if p.err != nil {
			t.Fatalf("stream %d: %v", id, p.err)
		}
		for _, f := range p.out() {
			if strings.HasPrefix(f, "RST_STREAM") || strings.HasPrefix(f, "GOAWAY") {
				t.Fatalf("stream %d: sent %s for DATA in flight", id, f)
			}
		}
		id += 2
	}
	// The ignored DATA went back to the connection window: the client
	// may still send a full window's worth.
	p.headers(id, false, postReq...)
	for range 65 {
		p.fr.WriteData(id, false, make([]byte, 1000))
	}
	p.flush()
	if p.err != nil {
		t.Fatalf("connection window not given back: %v", p.err)
	}
}

func TestInFlightRefusedStream(t *testing.T) {
	p := newPeer(t, &Limits{MaxConcurrentStreams: 1})
	p.headers(1, false, postReq...)
	p.headers(3, false, postReq...) // refused
	p.fr.WriteData(3, false, []byte("abc"))
	p.headers(3, true, "x-sum: 6")
	p.flush()
	if p.err != nil {
		t.Fatalf("refused stream's body and trailers: %v", p.err)
	}
	if got, want := p.out(), []string{"RST_STREAM 3 REFUSED_STREAM"}; !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
}

func TestInFlightAfterGoAway(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, false, postReq...) // promised to finish
	p.flush()
	p.evs()
	p.c.Shutdown()
	p.out()
	// Sent before the client saw the GOAWAY: an upload with trailers.
	p.headers(3, false, postReq...)
	p.fr.WriteData(3, false, []byte("abc"))
	p.headers(3, true, "x-sum: 6")
	p.fr.WriteData(1, true, []byte("xyz"))
	p.flush()
	if p.err != nil {
		t.Fatalf("frames above the GOAWAY's last stream: %v; sent %v", p.err, p.out())
	}
	if got, want := p.evs(), []string{"data 1 3 ES"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if n := p.c.Streams(); n != 1 {
		t.Errorf("%d streams left, want 1 (stream 1 awaits its response)", n)
	}
}

// Frames on a stream that closed normally are still errors: only what
// the proxy reset is forgiven.
func TestClosedStreamFramesStillErrors(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, true, getReq...)
	p.flush()
	_ = p.c.WriteHeaders(1, p.c.Headers(200), true)
	p.out()
	p.fr.WriteData(1, false, []byte("late"))
	p.flush()
	if got, want := p.out(), []string{"RST_STREAM 1 STREAM_CLOSED"}; !slices.Equal(got, want) {
		t.Errorf("DATA on a closed stream: sent %v, want %v", got, want)
	}

	p = newPeer(t, nil)
	p.headers(1, true, getReq...)
	p.flush()
	_ = p.c.WriteHeaders(1, p.c.Headers(200), true)
	p.out()
	p.headers(1, true, "x-late: 1")
	p.flush()
	if p.err == nil {
		t.Errorf("HEADERS on a closed stream: no connection error")
	}
}

// What is ignored on a reset stream is bounded (found by a review of the
// change above): empty frames spend the control-frame budget, END_STREAM
// or not; DATA beyond what the stream's window let the client send is an
// error again; and a client using every stream it may open at once still
// has its in-flight frames ignored.

func TestInFlightEmptyFramesCounted(t *testing.T) {
	p := newPeer(t, &Limits{MaxControlFrames: 100})
	p.headers(1, false, postReq...)
	p.flush()
	answerEarly(p, 1)
	for range 200 {
		p.fr.WriteData(1, true, nil)
	}
	p.flush()
	if p.err != ErrControlFlood {
		t.Fatalf("200 empty DATA frames on a reset stream: %v, want %v", p.err, ErrControlFlood)
	}
}

func TestInFlightDataBeyondWindow(t *testing.T) {
	p := newPeer(t, nil)
	p.headers(1, false, postReq...)
	p.flush()
	answerEarly(p, 1)
	// A stream window's worth was in flight: ignored.
	for range 65535 / 15000 {
		p.fr.WriteData(1, false, make([]byte, 15000))
	}
	p.fr.WriteData(1, false, make([]byte, 65535%15000))
	p.flush()
	if out := p.out(); p.err != nil || slices.ContainsFunc(out, func(f string) bool { return strings.HasPrefix(f, "RST_STREAM") }) {
		t.Fatalf("a window of DATA in flight: err %v, sent %v", p.err, out)
	}
	// One byte more cannot have been in flight.
	p.fr.WriteData(1, false, []byte("x"))
	p.flush()
	if got, want := p.out(), []string{"RST_STREAM 1 STREAM_CLOSED"}; !slices.Equal(got, want) {
		t.Errorf("DATA beyond the window: sent %v, want %v", got, want)
	}
}

func TestInFlightAllStreams(t *testing.T) {
	const n = 100 // the default MaxConcurrentStreams
	p := newPeer(t, nil)
	for i := range n {
		p.headers(uint32(2*i+1), false, postReq...)
	}
	p.flush()
	p.evs()
	for i := range n {
		answerEarly(p, uint32(2*i+1))
	}
	p.headers(1, true, "x-sum: 6")
	p.fr.WriteData(3, false, []byte("abc"))
	p.flush()
	if p.err != nil {
		t.Fatalf("in-flight frames on the first of %d streams reset: %v; sent %v", n, p.err, p.out())
	}
	if out := p.out(); len(out) != 0 {
		t.Errorf("sent %v for frames in flight", out)
	}
}

func TestRefuseSpendsResetBudget(t *testing.T) {
	p := newPeer(t, &Limits{MaxResets: 5})
	var err error
	for i := range 10 {
		id := uint32(2*i + 1)
		p.headers(id, true, getReq...)
		p.flush()
		if err = p.c.Refuse(id); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrRapidReset) {
		t.Fatalf("10 refusals with MaxResets 5: %v, want %v", err, ErrRapidReset)
	}
}
