package proxy

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"testing"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
)

// TestH2EarlyResponseStreamsCounted: a stream whose response is complete
// and whose body the client has finished sending is forgotten by the
// codec, but its stream client lives on while the rest of the body
// waits for a backend that answered early and does not read. Such
// streams count against maxConcurrentStreams too. Found by review: one
// connection advertising 4 streams held 24 stream clients and 24
// backend connections, and would have held any number.
func TestH2EarlyResponseStreamsCounted(t *testing.T) {
	const maxStreams = 4
	const rounds = 2 * maxStreams
	// The backend answers as soon as it has the head, then neither reads
	// nor closes; a small receive buffer fills quickly.
	var bmu sync.Mutex
	backendOpen := 0
	hold := make(chan struct{})
	be := rawBackendOn(t, smallBufferListener(t), func(c net.Conn) {
		bmu.Lock()
		backendOpen++
		bmu.Unlock()
		if _, err := readHead(bufio.NewReaderSize(c, 4096)); err != nil {
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		<-hold
	})
	t.Cleanup(func() { close(hold) }) // before rawBackendOn's: the handlers return
	srv, addr := proxyFor(t, []string{be}, func(c *config.Config) {
		c.Server.H2C = true
		c.Server.EventLoops = 1
		c.Server.HTTP2.MaxConcurrentStreams = maxStreams
		c.Limits.ConnectionBuffer = 16 << 10
	})
	h := dialH2(t, addr)

	// What the client learns: windows, ends, resets.
	var mu sync.Mutex
	connWin := int64(65535)
	streamWin := map[uint32]int64{}
	ended := map[uint32]bool{}
	reset := map[uint32]bool{}
	go func() {
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				return
			}
			mu.Lock()
			switch f := f.(type) {
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else {
					streamWin[f.StreamID] += int64(f.Increment)
				}
			case *http2.MetaHeadersFrame:
				ended[f.StreamID] = ended[f.StreamID] || f.StreamEnded()
			case *http2.DataFrame:
				ended[f.StreamID] = ended[f.StreamID] || f.StreamEnded()
			case *http2.RSTStreamFrame:
				reset[f.StreamID] = true
			}
			mu.Unlock()
		}
	}()
	var wmu sync.Mutex
	write := func(build func(fr *http2.Framer)) {
		wmu.Lock()
		defer wmu.Unlock()
		var b bytes.Buffer
		build(http2.NewFramer(&b, nil))
		if _, err := h.c.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	// stalled: the stream client holds body bytes it cannot forward.
	stalled := func(id uint32) (yes bool) {
		onLoops(srv, func(lp *loop) {
			for cl := lp.clients.head; cl != nil; cl = cl.lk.next {
				if cl.h2 == nil {
					continue
				}
				if s := cl.h2.streams[id]; s != nil && len(s.stash) > 0 && s.up != nil && s.up.outbound() > s.sn.highWater {
					yes = true
				}
			}
		})
		return yes
	}
	live := func() (streams, codec int) {
		onLoops(srv, func(lp *loop) {
			for cl := lp.clients.head; cl != nil; cl = cl.lk.next {
				if cl.h2 != nil {
					streams += len(cl.h2.streams)
					codec += cl.h2.c.Streams()
				}
			}
		})
		return
	}

	refused := 0
	chunk := make([]byte, 16384)
	for i := range rounds {
		id := uint32(2*i + 1)
		mu.Lock()
		streamWin[id] = 65535 - 1
		connWin--
		mu.Unlock()
		write(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.reqBlock("POST", "/up"), EndHeaders: true})
			_ = fr.WriteData(id, false, []byte("x"))
		})
		waitFor(t, "a response or a refusal", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return ended[id] || reset[id]
		})
		mu.Lock()
		r := reset[id]
		mu.Unlock()
		if r {
			refused++
			continue
		}
		// The body, as far as the windows let it go, until the stream
		// client holds bytes it cannot forward.
		for {
			var n int64
			waitForWithin(t, "window or a stalled stream", slowTimeout, func() bool {
				mu.Lock()
				n = min(connWin, streamWin[id], int64(len(chunk)))
				mu.Unlock()
				return n > 0 || stalled(id)
			})
			if n <= 0 {
				break
			}
			mu.Lock()
			connWin -= n
			streamWin[id] -= n
			mu.Unlock()
			write(func(fr *http2.Framer) { _ = fr.WriteData(id, false, chunk[:n]) })
		}
		write(func(fr *http2.Framer) { _ = fr.WriteData(id, true, nil) })
		waitFor(t, "the codec to forget the stream", func() bool { _, codec := live(); return codec == 0 })
	}
	streams, _ := live()
	bmu.Lock()
	open := backendOpen
	bmu.Unlock()
	t.Logf("after %d streams: %d stream clients, %d backend connections, %d refused", rounds, streams, open, refused)
	if streams > maxStreams || open > maxStreams {
		t.Errorf("one connection holds %d stream clients and %d backend connections, maxConcurrentStreams %d", streams, open, maxStreams)
	}
	if refused == 0 {
		t.Errorf("no stream refused")
	}
}
