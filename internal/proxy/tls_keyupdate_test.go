package proxy

import (
	"bufio"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/testcert"
)

// kuFlood is how many KeyUpdate requests the flooding client sends at
// most: 27 MiB of answers owed to a client that reads none.
const kuFlood = 1 << 20

// TestTLSKeyUpdateFlood: a TLS 1.3 client uploads a body one byte per
// record with 15 KeyUpdate requests before each (crypto/tls closes on
// 16 non-advancing records in a row, so the byte resets its count), and
// never reads. Every request obliges the proxy to answer with a
// KeyUpdate of its own, output the client does not take. The client is
// closed once it has asked for more than the budget, and the proxy's
// heap never holds the answers.
func TestTLSKeyUpdateFlood(t *testing.T) {
	var body atomic.Int64
	be := rawBackend(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		buf := make([]byte, 4096)
		for {
			n, err := br.Read(buf)
			body.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	e := newTLSEnv(t, be, bpConfig)
	r := testcert.DialRecords13(t, e.addr, e.client("example.com"))
	base := heapInuse()
	r.AppData([]byte("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n"))
	sent, bytes := 0, int64(0)
	var werr error
	for sent < kuFlood && werr == nil {
		for range 15 {
			r.KeyUpdate(t, true)
		}
		r.AppData([]byte("x"))
		sent += 15
		bytes++
		if r.Queued() >= 64<<10 {
			werr = r.Flush()
		}
	}
	if werr == nil {
		werr = r.Flush()
	}
	if werr == nil {
		// Not closed: once the proxy has passed the whole body on, it
		// holds whatever answers the socket did not take.
		waitFor(t, "the body at the backend", func() bool { return body.Load() >= bytes })
		t.Errorf("%d KeyUpdate requests (and %d body bytes) went through without the client being closed; proxy heap grew %d KiB",
			sent, bytes, (heapInuse()-base)>>10)
		return
	}
	t.Logf("closed after at most %d KeyUpdate requests: %v", sent, werr)
	_ = r.Conn.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.Copy(io.Discard, r.Conn); err != nil && !isReset(err) {
		t.Errorf("reading after the flood: %v, want EOF or a reset", err)
	}
	if grew := heapInuse() - base; grew > bpBound {
		t.Errorf("proxy heap grew %d KiB during the flood, bound %d KiB", grew>>10, bpBound>>10)
	}
}
