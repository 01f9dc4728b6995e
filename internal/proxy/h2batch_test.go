package proxy

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// recordCounter counts the TLS records that arrive on a connection (it
// reads their 5-byte headers as the bytes go by).
type recordCounter struct {
	net.Conn
	mu      sync.Mutex
	records int
	hdr     [5]byte
	nhdr    int // bytes of the current record header seen
	left    int // payload bytes of the current record still to come
}

func (r *recordCounter) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	for b := p[:n]; len(b) > 0; {
		if r.left > 0 {
			k := min(r.left, len(b))
			r.left -= k
			b = b[k:]
			continue
		}
		k := copy(r.hdr[r.nhdr:], b)
		r.nhdr += k
		b = b[k:]
		if r.nhdr == 5 {
			r.records++
			r.nhdr = 0
			r.left = int(r.hdr[3])<<8 | int(r.hdr[4])
		}
	}
	return n, err
}

func (r *recordCounter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.records
}

// TestH2WritesBatched: the answers to streams that arrive together and
// are answered at once (a respond route) leave in one write — one TLS
// record — not one write per stream.
func TestH2WritesBatched(t *testing.T) {
	const streams = 20
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) {
		c.Routes = []config.Route{{Match: config.RouteMatch{PathPrefix: "/"}, Respond: &config.Respond{Status: 200, Body: "hi\n"}}}
	})
	raw, err := net.DialTimeout("tcp", e.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	_ = raw.SetDeadline(time.Now().Add(ioTimeout))
	rc := &recordCounter{Conn: raw}
	tc := tls.Client(rc, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "example.com", NextProtos: []string{"h2"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	h := &rawH2{t: t, c: tc, fr: http2.NewFramer(tc, tc)}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.buf)
	if _, err := tc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	_ = h.fr.WriteSettings()
	// One request first, so that the connection's setup (SETTINGS, their
	// acknowledgement, session tickets) is over before counting.
	h.get(1, "/first")
	o := newOutcome()
	h.readUntil(o, func(o *h2Outcome) bool { return o.ended[1] })
	before := rc.count()
	h.burst(func(fr *http2.Framer) {
		for i := range streams {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(3 + 2*i), BlockFragment: h.literalBlock("GET", "/x"), EndStream: true, EndHeaders: true})
		}
	})
	h.readUntil(o, func(o *h2Outcome) bool { return len(o.ended) == streams+1 })
	for i := range streams {
		if id := uint32(3 + 2*i); o.status[id] != "200" || string(o.data[id]) != "hi\n" {
			t.Fatalf("stream %d: %q %q", id, o.status[id], o.data[id])
		}
	}
	if n := rc.count() - before; n > 2 {
		t.Errorf("%d answers came in %d TLS records, want them in one write", streams, n)
	}
}
