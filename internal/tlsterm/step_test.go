package tlsterm

import (
	"bytes"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"testing"
)

// stepServer runs the server side of a handshake over sn with Step, the
// way an event loop does: it reads what the socket has, in fragments of
// at most frag bytes, and writes what Pending holds after each step.
func stepServer(t *testing.T, sn net.Conn, cfg *tls.Config, frag int) (*Conn, error) {
	t.Helper()
	srv := ServerStepped(sn.LocalAddr(), sn.RemoteAddr(), cfg)
	buf := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, uint64(frag)))
	for {
		n, err := sn.Read(buf[:1+r.IntN(frag)])
		if err != nil {
			srv.Abort()
			return srv, err
		}
		done, herr := srv.Step(buf[:n])
		if out := srv.Pending(nil); len(out) > 0 {
			if _, err := sn.Write(out); err != nil {
				return srv, err
			}
		}
		if done {
			return srv, herr
		}
		if !srv.Handshaking() {
			t.Fatal("Handshaking is false before the end")
		}
	}
}

// TestSteppedHandshake drives the server handshake with Step from
// fragments of the client's bytes, on TLS 1.2 and 1.3, then resumes the
// session on a second connection; the first request, sent right behind
// the client's Finished, is decrypted by the first Open.
func TestSteppedHandshake(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, frag := range []int{1, 7, 4096} {
			srvCfg, cliCfg := testConfigs(t)
			cliCfg.MaxVersion = v
			cliCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			for round := range 2 {
				cn, sn := tcpPair(t)
				cli := tls.Client(cn, cliCfg)
				errc := make(chan error, 1)
				go func() {
					if err := cli.Handshake(); err != nil {
						errc <- err
						return
					}
					_, err := cli.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
					errc <- err
				}()
				srv, err := stepServer(t, sn, srvCfg, frag)
				if err != nil {
					t.Fatalf("version %x frag %d: %v", v, frag, err)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				st := srv.State()
				if st.Version != v || st.DidResume != (round == 1) {
					t.Fatalf("version %x round %d: got version %x, resumed %v", v, round, st.Version, st.DidResume)
				}
				// Read until the request has come through.
				var got []byte
				buf := make([]byte, 512)
				for !bytes.HasSuffix(got, []byte("\r\n\r\n")) {
					if got, err = srv.Open(got, nil); err != nil {
						t.Fatal(err)
					}
					if bytes.HasSuffix(got, []byte("\r\n\r\n")) {
						break
					}
					n, err := sn.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					if got, err = srv.Open(got, buf[:n]); err != nil {
						t.Fatal(err)
					}
				}
				if string(got) != "GET / HTTP/1.1\r\n\r\n" {
					t.Fatalf("request %q", got)
				}
				out, err := srv.Seal(nil, []byte("ok"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := sn.Write(out); err != nil {
					t.Fatal(err)
				}
				reply := make([]byte, 2)
				if _, err := io.ReadFull(cli, reply); err != nil || string(reply) != "ok" {
					t.Fatalf("reply %q: %v", reply, err)
				}
				cn.Close()
				sn.Close()
			}
		}
	}
}

// TestSteppedHandshakeGarbage: input that is not a ClientHello ends the
// stepped handshake at once with an error, and with an alert to send
// when it came in TLS records.
func TestSteppedHandshakeGarbage(t *testing.T) {
	srvCfg, _ := testConfigs(t)
	a := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	for _, tc := range []struct {
		name  string
		in    []byte
		alert bool
	}{
		{"plaintext HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		{"unknown handshake message", []byte{22, 3, 1, 0, 4, 99, 0, 0, 0}, true},
	} {
		srv := ServerStepped(a, a, srvCfg)
		done, err := srv.Step(tc.in)
		if !done || err == nil {
			t.Fatalf("%s: done %v, err %v", tc.name, done, err)
		}
		if srv.Handshaking() {
			t.Fatalf("%s: still handshaking", tc.name)
		}
		if out := srv.Pending(nil); tc.alert != (len(out) > 0 && out[0] == 21) {
			t.Fatalf("%s: alert wanted %v, output % x", tc.name, tc.alert, out)
		}
		if done, err2 := srv.Step([]byte{1}); !done || err2 != err {
			t.Fatalf("%s: a step after the end: %v %v", tc.name, done, err2)
		}
	}
}

// TestSteppedHandshakeAbort: a handshake left waiting for input ends when
// aborted, and its coroutine with it.
func TestSteppedHandshakeAbort(t *testing.T) {
	srvCfg, cliCfg := testConfigs(t)
	cn, sn := tcpPair(t)
	go func() { _ = tls.Client(cn, cliCfg).Handshake() }()
	buf := make([]byte, 20) // part of the ClientHello
	n, err := io.ReadFull(sn, buf)
	if err != nil {
		t.Fatal(err)
	}
	srv := ServerStepped(sn.LocalAddr(), sn.RemoteAddr(), srvCfg)
	if done, err := srv.Step(buf[:n]); done || err != nil {
		t.Fatalf("done %v err %v after part of a ClientHello", done, err)
	}
	if !srv.Handshaking() {
		t.Fatal("not handshaking")
	}
	srv.Abort()
	if srv.Handshaking() {
		t.Fatal("still handshaking after Abort")
	}
	if done, err := srv.Step(nil); !done || err == nil {
		t.Fatalf("after Abort: done %v err %v", done, err)
	}
	srv.Abort() // twice is harmless
}
