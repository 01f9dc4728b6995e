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

// clientFuzzSeeds are server byte streams answering the streams
// runClientPieces opens: 1 (GET, ended), 3 (HEAD, ended), 5 (POST, open).
func clientFuzzSeeds() [][]byte {
	var seeds [][]byte
	add := func(f func(fr *xhttp2.Framer, blk func(...string) []byte)) {
		var b, eb bytes.Buffer
		fr := xhttp2.NewFramer(&b, nil)
		fr.AllowIllegalWrites = true
		enc := hpack.NewEncoder(&eb)
		blk := func(fields ...string) []byte {
			eb.Reset()
			for i := 0; i+1 < len(fields); i += 2 {
				enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
			}
			return bytes.Clone(eb.Bytes())
		}
		fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingMaxConcurrentStreams, Val: 10})
		f(fr, blk)
		seeds = append(seeds, b.Bytes())
	}
	add(func(fr *xhttp2.Framer, blk func(...string) []byte) {
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk(":status", "200", "content-length", "3"), EndHeaders: true})
		fr.WriteData(1, false, []byte("ab"))
		fr.WriteDataPadded(1, false, []byte("c"), []byte{0, 0})
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk("grpc-status", "0"), EndStream: true, EndHeaders: true})
		fr.WritePing(false, [8]byte{1})
		fr.WriteWindowUpdate(0, 1000)
		fr.WriteWindowUpdate(5, 1000)
	})
	add(func(fr *xhttp2.Framer, blk func(...string) []byte) {
		b := blk(":status", "103", "link", "</x>")
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 5, BlockFragment: b[:2], PadLength: 2, Priority: xhttp2.PriorityParam{StreamDep: 1}})
		fr.WriteContinuation(5, true, b[2:])
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 5, BlockFragment: blk(":status", "200", "grpc-status", "14"), EndStream: true, EndHeaders: true})
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 3, BlockFragment: blk(":status", "200", "content-length", "9"), EndStream: true, EndHeaders: true})
		fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1}, xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 20000})
		fr.WriteRSTStream(5, xhttp2.ErrCodeNo)
		fr.WriteGoAway(1, xhttp2.ErrCodeNo, []byte("bye"))
	})
	add(func(fr *xhttp2.Framer, blk func(...string) []byte) {
		fr.WriteRSTStream(1, xhttp2.ErrCodeRefusedStream)
		fr.WriteData(1, true, []byte("late"))
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 5, BlockFragment: blk(":status", "200"), EndHeaders: true})
		fr.WriteData(5, false, []byte(strings.Repeat("z", 100)))
		fr.WriteRawFrame(0x20, 0xff, 9, []byte("ext"))
		fr.WriteSettingsAck()
	})
	return seeds
}

var clientFuzzLimits = &Limits{MaxHeaderListSize: 2048, MaxContinuations: 4, MaxControlFrames: 100, MaxConcurrentStreams: 8}

// FuzzClientFeed feeds arbitrary server bytes: Feed must never panic, keep
// more than the limits allow, or depend on how the input is split.
func FuzzClientFeed(f *testing.F) {
	for _, s := range clientFuzzSeeds() {
		f.Add(s, uint16(11))
	}
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		cut := int(split) % (len(data) + 1)
		whole := runClientPieces(t, [][]byte{data}, true)
		if got := runClientPieces(t, [][]byte{data[:cut], data[cut:]}, true); got != whole {
			t.Fatalf("split at %d changes the result:\n%s\nwhole:\n%s", cut, got, whole)
		}
	})
}

// runClientPieces opens three streams, feeds the pieces one after the
// other (answering windows and consuming data when act is set), checks
// the bounds and returns a transcript.
func runClientPieces(t *testing.T, pieces [][]byte, act bool) string {
	c := NewClientConn(clientFuzzLimits, &fakeClock{t: time.Unix(1e9, 0)})
	c.OpenStream(c.Request("GET", "http", "b", "/"), true)
	c.OpenStream(c.Request("HEAD", "http", "b", "/"), true)
	c.OpenStream(c.Request("POST", "http", "b", "/"), false)
	c.Output()
	var tr strings.Builder
	var buf, allOut []byte
	input := bytes.Join(pieces, nil)
	failed := false
	for _, piece := range pieces {
		buf = append(buf, piece...)
		for !failed {
			n, evs, err := c.Feed(buf)
			for _, ev := range evs {
				fmt.Fprintf(&tr, "%d %d %v %v %d %d %d %q\n", ev.Kind, ev.Stream, ev.EndStream, ev.Unprocessed, ev.Code, ev.Status, len(ev.Data), ev.Fields)
				if act {
					switch ev.Kind {
					case EventData:
						c.Consumed(ev.Stream, len(ev.Data))
					case EventWindow:
						c.WriteData(ev.Stream, []byte("more"), true)
					}
				}
			}
			buf = buf[n:]
			if len(c.fields) > int(clientFuzzLimits.MaxHeaderListSize)/32 {
				t.Fatalf("%d fields kept", len(c.fields))
			}
			if c.Streams() > 3 || len(c.free)+c.Streams() > 3 {
				t.Fatalf("%d streams, %d free", c.Streams(), len(c.free))
			}
			if len(evs) > maxEvents+3 {
				t.Fatalf("%d events", len(evs))
			}
			allOut = append(allOut, c.Output()...)
			if err != nil {
				fmt.Fprintf(&tr, "err %v\n", err)
				failed = true
			}
			if n == 0 {
				break
			}
		}
	}
	// The output answers the input (acknowledgements, resets, window
	// updates): bounded by a small multiple of it.
	if len(allOut) > 128+4*len(input) {
		t.Fatalf("%d bytes of output for %d bytes of input", len(allOut), len(input))
	}
	fmt.Fprintf(&tr, "out %x\n", allOut)
	return tr.String()
}

// TestClientSeedsByteAtATime: server frames arriving one byte at a time
// give the same events and output as arriving at once.
func TestClientSeedsByteAtATime(t *testing.T) {
	for i, seed := range clientFuzzSeeds() {
		var bytewise [][]byte
		for j := range seed {
			bytewise = append(bytewise, seed[j:j+1])
		}
		whole := runClientPieces(t, [][]byte{seed}, true)
		if strings.Contains(whole, "err ") {
			t.Errorf("seed %d fails:\n%s", i, whole)
		}
		if got := runClientPieces(t, bytewise, true); got != whole {
			t.Errorf("seed %d byte by byte:\n%s\nwhole:\n%s", i, got, whole)
		}
	}
}
