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

var fuzzLimits = &Limits{MaxConcurrentStreams: 4, MaxHeaderListSize: 2048, MaxContinuations: 4, MaxResets: 50, MaxControlFrames: 100}

// fuzzSeeds are client byte streams after the preface and SETTINGS.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	add := func(f func(fr *xhttp2.Framer, enc *hpack.Encoder, eb *bytes.Buffer)) {
		var b, eb bytes.Buffer
		fr := xhttp2.NewFramer(&b, nil)
		fr.AllowIllegalWrites = true
		enc := hpack.NewEncoder(&eb)
		f(fr, enc, &eb)
		seeds = append(seeds, b.Bytes())
	}
	block := func(enc *hpack.Encoder, eb *bytes.Buffer, fields ...string) []byte {
		eb.Reset()
		for i := 0; i+1 < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(eb.Bytes())
	}
	req := []string{":method", "POST", ":scheme", "https", ":authority", "a", ":path", "/", "content-length", "3"}
	add(func(fr *xhttp2.Framer, enc *hpack.Encoder, eb *bytes.Buffer) {
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, eb, req...), EndHeaders: true})
		fr.WriteData(1, false, []byte("ab"))
		fr.WriteDataPadded(1, false, []byte("c"), []byte{0, 0})
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, eb, "x-t", "1"), EndStream: true, EndHeaders: true})
		fr.WritePing(false, [8]byte{1})
		fr.WriteWindowUpdate(0, 1000)
	})
	add(func(fr *xhttp2.Framer, enc *hpack.Encoder, eb *bytes.Buffer) {
		blk := block(enc, eb, ":method", "GET", ":scheme", "http", ":path", "/x", "cookie", "a=b", "te", "trailers")
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 3, BlockFragment: blk[:4], Priority: xhttp2.PriorityParam{StreamDep: 1, Weight: 3}, PadLength: 2})
		fr.WriteContinuation(3, true, blk[4:])
		fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1}, xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 20000})
		fr.WriteRSTStream(3, xhttp2.ErrCodeCancel)
		fr.WritePriority(5, xhttp2.PriorityParam{StreamDep: 3})
		fr.WriteGoAway(0, xhttp2.ErrCodeNo, []byte("bye"))
	})
	add(func(fr *xhttp2.Framer, enc *hpack.Encoder, eb *bytes.Buffer) {
		for id := uint32(1); id < 12; id += 2 {
			fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: block(enc, eb, req[:8]...), EndHeaders: true})
			fr.WriteData(id, true, []byte(strings.Repeat("z", int(id))))
			fr.WriteWindowUpdate(id, 7)
		}
		fr.WriteRawFrame(0x20, 0xff, 9, []byte("ext"))
	})
	return seeds
}

// FuzzFeed feeds arbitrary bytes after a valid preface: Feed must never
// panic, hold more than the limits allow, or depend on how the input is
// split.
func FuzzFeed(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, uint16(7))
	}
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var pre bytes.Buffer
		pre.WriteString(ClientPreface)
		xhttp2.NewFramer(&pre, nil).WriteSettings()
		input := append(pre.Bytes(), data...)

		whole := runFeed(t, input, len(input), true)
		cut := len(pre.Bytes()) + int(split)%(len(data)+1)
		if got := runFeed(t, input, cut, false); got != runFeed(t, input, len(input), false) {
			t.Fatalf("split at %d changes the result:\n%s\nwhole:\n%s", cut, got, whole)
		}
	})
}

// runFeed feeds input in two pieces (cut) and answers requests when
// respond is set; it checks the bounds and returns a transcript.
func runFeed(t *testing.T, input []byte, cut int, respond bool) string {
	return runPieces(t, [][]byte{input[:cut], input[cut:]}, respond)
}

// runPieces feeds the pieces one after the other.
func runPieces(t *testing.T, pieces [][]byte, respond bool) string {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	c := NewServerConn(fuzzLimits, clk)
	var tr strings.Builder
	var buf, allOut []byte
	total := len(c.Output())
	input := bytes.Join(pieces, nil)
	failed := false
	for _, piece := range pieces {
		buf = append(buf, piece...)
		for !failed {
			n, evs, err := c.Feed(buf)
			for _, ev := range evs {
				fmt.Fprintf(&tr, "%d %d %v %d %d %q %q\n", ev.Kind, ev.Stream, ev.EndStream, ev.Code, len(ev.Data), ev.Path, ev.Fields)
				if respond {
					respondFuzz(c, &ev)
				}
			}
			buf = buf[n:]
			if len(c.fields) > int(fuzzLimits.MaxHeaderListSize)/32 {
				t.Fatalf("%d fields kept", len(c.fields))
			}
			if c.Streams() > int(fuzzLimits.MaxConcurrentStreams) {
				t.Fatalf("%d streams", c.Streams())
			}
			if len(evs) > maxEvents+int(fuzzLimits.MaxConcurrentStreams) {
				t.Fatalf("%d events", len(evs))
			}
			out := c.Output()
			total += len(out)
			allOut = append(allOut, out...)
			if err != nil {
				fmt.Fprintf(&tr, "err %v\n", err)
				failed = true
			}
			if n == 0 {
				break
			}
		}
	}
	// Without responses, the output is made of control frames answering
	// the input: bounded by a small multiple of it.
	if !respond && total > 128+4*len(input) {
		t.Fatalf("%d bytes of output for %d bytes of input", total, len(input))
	}
	fmt.Fprintf(&tr, "out %x\n", allOut)
	return tr.String()
}

func respondFuzz(c *Conn, ev *Event) {
	switch ev.Kind {
	case EventHeaders:
		hb := c.Headers(200)
		hb.AddString("X-Path", ev.Path)
		c.WriteHeaders(ev.Stream, hb, false)
		c.WriteData(ev.Stream, []byte("hello"), ev.EndStream)
	case EventData:
		c.Consumed(ev.Stream, len(ev.Data))
		c.WriteData(ev.Stream, ev.Data, ev.EndStream)
	case EventTrailers:
		hb := c.Headers(0)
		hb.AddString("x-t", "1")
		c.WriteHeaders(ev.Stream, hb, true)
	case EventWindow:
		c.WriteData(ev.Stream, []byte("more"), true)
	}
}

// TestByteAtATime: frames arriving one byte at a time give the same events
// and output as arriving at once.
func TestByteAtATime(t *testing.T) {
	for i, seed := range fuzzSeeds() {
		var in bytes.Buffer
		in.WriteString(ClientPreface)
		xhttp2.NewFramer(&in, nil).WriteSettings()
		in.Write(seed)
		var bytewise [][]byte
		for j := range in.Len() {
			bytewise = append(bytewise, in.Bytes()[j:j+1])
		}
		whole := runPieces(t, [][]byte{in.Bytes()}, false)
		if got := runPieces(t, bytewise, false); got != whole {
			t.Errorf("seed %d byte by byte:\n%s\nwhole:\n%s", i, got, whole)
		}
	}
}
