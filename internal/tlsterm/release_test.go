package tlsterm

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// TestReleaseBuffers: on this toolchain Release finds crypto/tls's input
// buffers (if a Go release renames them, this fails and Release does
// nothing), the handshake leaves none grown on the server side, a
// record read grows them and Release empties them again, and a partial
// record survives a Release.
func TestReleaseBuffers(t *testing.T) {
	if !canRelease {
		t.Fatal("crypto/tls.Conn has no rawInput and hand bytes.Buffer fields: Release does nothing on this Go release")
	}
	srvCfg, cliCfg := testConfigs(t)
	srv, cli, _, _ := handshakePair(t, srvCfg, cliCfg)
	if n := srv.retained(); n != 0 {
		t.Errorf("after the handshake the server keeps %d bytes of input buffers, want 0", n)
	}
	msg := bytes.Repeat([]byte("x"), 3000)
	for i := range 3 {
		ct, err := cli.Seal(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		// Half the records first, the last of them cut: the part read
		// must survive a Release.
		half := len(ct) / 2
		pt, err := srv.Open(nil, ct[:half])
		if err != nil || len(pt) >= len(msg) {
			t.Fatalf("round %d: the first half: %d bytes, %v", i, len(pt), err)
		}
		srv.Release()
		pt, err = srv.Open(pt, ct[half:])
		if err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("round %d: %d bytes, %v", i, len(pt), err)
		}
		if srv.retained() == 0 {
			t.Fatalf("round %d: no input buffer after a record: is the test measuring anything?", i)
		}
		srv.Release()
		if n := srv.retained(); n != 0 {
			t.Fatalf("round %d: %d bytes kept after Release", i, n)
		}
	}
}

// TestSteppedHandshakeReleases: a handshake driven by Step, as the
// proxy's TLS listener runs it, leaves no input buffer grown on the
// server side either (what Handshake's Release does for a blocking
// one), on TLS 1.2 and 1.3.
func TestSteppedHandshakeReleases(t *testing.T) {
	if !canRelease {
		t.Skip("Release does nothing on this Go release (TestReleaseBuffers says so)")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(VersionName(v), func(t *testing.T) {
			srvCfg, cliCfg := testConfigs(t)
			cliCfg.MaxVersion = v
			cn, sn := tcpPair(t)
			errc := make(chan error, 1)
			go func() { errc <- tls.Client(cn, cliCfg).Handshake() }()
			srv, err := stepServer(t, sn, srvCfg, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if n := srv.retained(); n != 0 {
				t.Errorf("after a stepped handshake the server keeps %d bytes of input buffers, want 0", n)
			}
		})
	}
}
