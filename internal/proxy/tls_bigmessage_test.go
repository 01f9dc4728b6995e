package proxy

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/connx/connx/internal/testcert"
)

// TestTLSBigPostHandshakeMessage: a TLS 1.3 client that sends, after the
// handshake, most of a handshake message announced as 256 KiB has its
// connection closed once crypto/tls holds more than a server can be sent
// after the handshake (tlsterm's maxPostHandshake). Found by review:
// crypto/tls held all of it, 256 KiB per connection for as long as the
// connection stayed idle, outside connectionBuffer and maxHeaderBytes.
func TestTLSBigPostHandshakeMessage(t *testing.T) {
	e := newTLSEnv(t, echoBackend(t), nil)
	r := testcert.DialRecords13(t, e.addr, e.client("example.com"))
	n := 262143
	msg := append([]byte{11, byte(n >> 16), byte(n >> 8), byte(n)}, make([]byte, n-1000)...)
	for len(msg) > 0 {
		k := min(len(msg), 16000)
		r.Handshake(msg[:k])
		msg = msg[k:]
	}
	// The proxy may close before it has read all of it.
	if err := r.Flush(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("flush: %v", err)
	}
	_ = r.Conn.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 4096)
	for {
		_, err := r.Conn.Read(buf)
		if err == nil {
			continue // an alert or a close_notify
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection still open after %v", ioTimeout)
		}
		break
	}
}
