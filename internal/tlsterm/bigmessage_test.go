package tlsterm

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
)

// crypto/tls collects a handshake message whole before it looks at it,
// and allows one announced as a Certificate 256 KiB. Found by review: a
// client sending such a message, all but its last bytes, made every
// connection hold 256 KiB, during the handshake and after it, outside
// every limit of ConnX's.

// clientHello12 returns the first flight of a TLS 1.2 client.
func clientHello12(t *testing.T, cli *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	cli = cli.Clone()
	cli.MaxVersion = tls.VersionTLS12
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(a, cli).Handshake()
		a.Close()
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	b.Close()
	<-done
	return append(hdr, body...)
}

// bigCertificate is a Certificate message announcing 262,143 bytes, all
// but the last 1,000 of them, in handshake records of at most size
// bytes made by record.
func bigCertificate(size int, record func([]byte)) {
	n := 262143
	msg := append([]byte{11, byte(n >> 16), byte(n >> 8), byte(n)}, make([]byte, n-1000)...)
	for len(msg) > 0 {
		k := min(len(msg), size)
		record(msg[:k])
		msg = msg[k:]
	}
}

func TestHandshakeMessageBounded(t *testing.T) {
	for _, certs := range []bool{false, true} {
		srvCfg, cliCfg := testConfigs(t)
		if certs {
			srvCfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
		ch := clientHello12(t, cliCfg)
		srv := ServerStepped(nil, nil, srvCfg)
		if done, err := srv.Step(ch); done {
			t.Fatalf("handshake over after the ClientHello: %v", err)
		}
		srv.Pending(nil)
		var err error
		over := false
		most := 0
		bigCertificate(16384, func(p []byte) {
			if over {
				return
			}
			rec := append([]byte{22, 3, 3, byte(len(p) >> 8), byte(len(p))}, p...)
			over, err = srv.Step(rec)
			most = max(most, srv.handBuffered())
		})
		switch {
		case !certs && (!over || !errors.Is(err, ErrHandshakeMessageTooLarge)):
			t.Errorf("no clientAuth: over %v, err %v; want %v", over, err, ErrHandshakeMessageTooLarge)
		case !certs && most > maxHandshakeMessage+16384+64:
			t.Errorf("no clientAuth: held %d bytes of the message", most)
		case certs && over:
			// With clientAuth a chain may be large: crypto/tls's own
			// bound applies.
			t.Errorf("clientAuth: refused a 256 KiB message early: %v", err)
		}
		srv.Abort()
	}
}

func TestPostHandshakeMessageBounded(t *testing.T) {
	srv, cli := keyUpdatePeer(t)
	bigCertificate(16000, func(p []byte) { cli.Handshake(p) })
	plain, err := srv.Open(nil, cli.Take())
	if !errors.Is(err, ErrHandshakeMessageTooLarge) || len(plain) != 0 {
		t.Fatalf("Open: %d bytes, err %v; want %v", len(plain), err, ErrHandshakeMessageTooLarge)
	}
	if n := srv.handBuffered(); n > maxPostHandshake+16384+64 {
		t.Errorf("held %d bytes of the message", n)
	}
}
