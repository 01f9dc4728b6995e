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

// fakeClock is a Clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// peer is a test client: it writes frames with x/net's Framer into a
// buffer, feeds them to a Conn and decodes what the Conn sends back.
type peer struct {
	t      testing.TB
	c      *Conn
	clk    *fakeClock
	buf    bytes.Buffer // frames not yet fed
	fr     *xhttp2.Framer
	enc    *hpack.Encoder
	encBuf bytes.Buffer
	events []Event
	err    error
}

// newPeer returns a peer that has sent the preface and an empty SETTINGS.
func newPeer(t testing.TB, lim *Limits) *peer {
	p := &peer{t: t, clk: &fakeClock{t: time.Unix(1e9, 0)}}
	p.c = NewServerConn(lim, p.clk)
	p.fr = xhttp2.NewFramer(&p.buf, nil)
	p.fr.AllowIllegalWrites = true
	p.enc = hpack.NewEncoder(&p.encBuf)
	p.buf.WriteString(ClientPreface)
	p.fr.WriteSettings()
	p.flush()
	p.out() // discard the server's SETTINGS and WINDOW_UPDATE
	return p
}

// flush feeds everything written so far, collecting events (with Data
// copied) and the first error.
func (p *peer) flush() {
	b := p.buf.Bytes()
	for {
		n, evs, err := p.c.Feed(b)
		for _, ev := range evs {
			ev.Data = bytes.Clone(ev.Data)
			ev.Fields = append([]Field(nil), ev.Fields...)
			p.events = append(p.events, ev)
		}
		b = b[n:]
		if err != nil {
			if p.err == nil {
				p.err = err
			}
			break
		}
		if n == 0 {
			break
		}
	}
	p.buf.Reset()
	p.buf.Write(b)
}

// block HPACK-encodes fields given as "name: value" pairs.
func (p *peer) block(fields ...string) []byte {
	p.encBuf.Reset()
	for _, f := range fields {
		name, value, _ := strings.Cut(f[1:], ":")
		name = f[:1] + name
		p.enc.WriteField(hpack.HeaderField{Name: name, Value: strings.TrimPrefix(value, " ")})
	}
	return bytes.Clone(p.encBuf.Bytes())
}

var getReq = []string{":method: GET", ":scheme: http", ":authority: example.com", ":path: /"}
var postReq = []string{":method: POST", ":scheme: http", ":authority: example.com", ":path: /up"}

func (p *peer) headers(id uint32, end bool, fields ...string) {
	p.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(fields...), EndStream: end, EndHeaders: true})
}

// out decodes the frames the Conn has queued into short descriptions:
// "SETTINGS", "SETTINGS ACK", "PING ACK", "WINDOW_UPDATE 1 +100",
// "RST_STREAM 1 PROTOCOL_ERROR", "GOAWAY 3 PROTOCOL_ERROR",
// "HEADERS 1 :status=200", "HEADERS 1 ES", "DATA 1 5", "DATA 1 0 ES".
func (p *peer) out() []string { return describeFrames(p.c.Output()) }

// describeFrames decodes frames into the descriptions peer.out returns.
func describeFrames(b []byte) []string {
	fr := xhttp2.NewFramer(nil, bytes.NewReader(bytes.Clone(b)))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var s []string
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return s
		}
		var d string
		switch f := f.(type) {
		case *xhttp2.SettingsFrame:
			d = "SETTINGS"
			if f.IsAck() {
				d += " ACK"
			}
		case *xhttp2.PingFrame:
			d = "PING"
			if f.IsAck() {
				d += " ACK"
			}
		case *xhttp2.WindowUpdateFrame:
			d = fmt.Sprintf("WINDOW_UPDATE %d +%d", f.StreamID, f.Increment)
		case *xhttp2.RSTStreamFrame:
			d = fmt.Sprintf("RST_STREAM %d %v", f.StreamID, f.ErrCode)
		case *xhttp2.GoAwayFrame:
			d = fmt.Sprintf("GOAWAY %d %v", f.LastStreamID, f.ErrCode)
		case *xhttp2.MetaHeadersFrame:
			d = fmt.Sprintf("HEADERS %d", f.StreamID)
			for _, hf := range f.Fields {
				d += " " + hf.Name + "=" + hf.Value
			}
			if f.StreamEnded() {
				d += " ES"
			}
		case *xhttp2.DataFrame:
			d = fmt.Sprintf("DATA %d %d", f.StreamID, len(f.Data()))
			if f.StreamEnded() {
				d += " ES"
			}
		default:
			d = fmt.Sprintf("%v", f.Header().Type)
		}
		s = append(s, d)
	}
}

// evs describes the events collected so far and forgets them.
func (p *peer) evs() []string {
	var s []string
	for _, ev := range p.events {
		var d string
		switch ev.Kind {
		case EventHeaders:
			d = fmt.Sprintf("headers %d %s %s", ev.Stream, ev.Method, ev.Path)
		case EventData:
			d = fmt.Sprintf("data %d %d", ev.Stream, len(ev.Data))
		case EventTrailers:
			d = fmt.Sprintf("trailers %d %d", ev.Stream, len(ev.Fields))
		case EventReset:
			d = fmt.Sprintf("reset %d %v", ev.Stream, ev.Code)
		case EventWindow:
			d = fmt.Sprintf("window %d", ev.Stream)
		case EventGoAway:
			d = fmt.Sprintf("goaway %d %v", ev.Stream, ev.Code)
		}
		if ev.EndStream && ev.Kind != EventTrailers {
			d += " ES"
		}
		s = append(s, d)
	}
	p.events = nil
	return s
}
