package http2

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// backend is a test server for a ClientConn: it writes frames with x/net's
// Framer into a buffer, feeds them to the ClientConn and decodes what the
// ClientConn sends.
type backend struct {
	t      testing.TB
	c      *ClientConn
	clk    *fakeClock
	buf    bytes.Buffer // frames not yet fed
	fr     *xhttp2.Framer
	enc    *hpack.Encoder
	encBuf bytes.Buffer
	events []ClientEvent
	err    error
}

// newBackend returns a backend whose ClientConn has received an empty
// SETTINGS and whose output (preface, SETTINGS, SETTINGS ACK) is
// discarded. settings == nil sends no SETTINGS.
func newBackend(t testing.TB, lim *Limits, settings ...xhttp2.Setting) *backend {
	s := newBareBackend(t, lim)
	s.fr.WriteSettings(settings...)
	s.flush()
	s.c.Output()
	return s
}

// newBareBackend returns a backend that has sent nothing yet.
func newBareBackend(t testing.TB, lim *Limits) *backend {
	s := &backend{t: t, clk: &fakeClock{t: time.Unix(1e9, 0)}}
	s.c = NewClientConn(lim, s.clk)
	s.fr = xhttp2.NewFramer(&s.buf, nil)
	s.fr.AllowIllegalWrites = true
	s.enc = hpack.NewEncoder(&s.encBuf)
	return s
}

// flush feeds everything written so far, collecting events (with Data
// and Fields copied) and the first error.
func (s *backend) flush() {
	b := s.buf.Bytes()
	for {
		n, evs, err := s.c.Feed(b)
		for _, ev := range evs {
			ev.Data = bytes.Clone(ev.Data)
			ev.Fields = append([]Field(nil), ev.Fields...)
			s.events = append(s.events, ev)
		}
		b = b[n:]
		if err != nil {
			if s.err == nil {
				s.err = err
			}
			break
		}
		if n == 0 {
			break
		}
	}
	s.buf.Reset()
	s.buf.Write(b)
}

// block HPACK-encodes fields given as "name: value" pairs.
func (s *backend) block(fields ...string) []byte {
	s.encBuf.Reset()
	for _, f := range fields {
		name, value, _ := strings.Cut(f[1:], ":")
		s.enc.WriteField(hpack.HeaderField{Name: f[:1] + name, Value: strings.TrimPrefix(value, " ")})
	}
	return bytes.Clone(s.encBuf.Bytes())
}

func (s *backend) headers(id uint32, end bool, fields ...string) {
	s.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: s.block(fields...), EndStream: end, EndHeaders: true})
}

// open opens a stream with a GET (or the given method) and fields.
func (s *backend) open(method string, end bool, fields ...string) uint32 {
	s.t.Helper()
	hb := s.c.Request(method, "http", "backend", "/")
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ": ")
		hb.AddString(name, value)
	}
	id, err := s.c.OpenStream(hb, end)
	if err != nil {
		s.t.Fatalf("OpenStream: %v", err)
	}
	return id
}

func (s *backend) out() []string { return describeFrames(s.c.Output()) }

// evs describes the events collected so far and forgets them.
func (s *backend) evs() []string {
	var out []string
	for _, ev := range s.events {
		var d string
		switch ev.Kind {
		case EventHeaders:
			d = fmt.Sprintf("headers %d %d", ev.Stream, ev.Status)
			for _, f := range ev.Fields {
				d += " " + f.Name + "=" + f.Value
			}
		case EventData:
			d = fmt.Sprintf("data %d %d", ev.Stream, len(ev.Data))
		case EventTrailers:
			d = fmt.Sprintf("trailers %d", ev.Stream)
			for _, f := range ev.Fields {
				d += " " + f.Name + "=" + f.Value
			}
		case EventReset:
			d = fmt.Sprintf("reset %d %v", ev.Stream, ev.Code)
			if ev.Unprocessed {
				d += " unprocessed"
			}
		case EventWindow:
			d = fmt.Sprintf("window %d", ev.Stream)
		case EventGoAway:
			d = fmt.Sprintf("goaway %d %v", ev.Stream, ev.Code)
		}
		if ev.EndStream && ev.Kind != EventTrailers {
			d += " ES"
		}
		out = append(out, d)
	}
	s.events = nil
	return out
}
