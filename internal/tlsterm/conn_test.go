package tlsterm

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/connx/connx/internal/testcert"
)

// testConfigs returns a server config with one ECDSA certificate for
// "example.com" and a client config trusting it.
func testConfigs(t testing.TB) (srv, cli *tls.Config) {
	t.Helper()
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	cf, kf := ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, dir, "leaf")
	store, err := NewStore([]Pair{{cf, kf}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewTicketKeys(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv = NewServerConfig(store, ServerOptions{Tickets: keys})
	cli = &tls.Config{RootCAs: ca.Pool(), ServerName: "example.com", NextProtos: []string{"http/1.1"}}
	return srv, cli
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a, r.c
}

// handshakePair runs both handshakes over a socket pair and returns the two
// Conns in buffer mode, with the sockets (no longer used by them).
func handshakePair(t testing.TB, srvCfg, cliCfg *tls.Config) (srv, cli *Conn, sn, cn net.Conn) {
	t.Helper()
	cn, sn = tcpPair(t)
	srv, cli = Server(sn, srvCfg), Client(cn, cliCfg)
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return srv, cli, sn, cn
}

// TestRecordLayerResumes is the safeguard for the mechanism ConnX relies
// on: crypto/tls's record layer, driven from buffers after a blocking
// handshake, resumes after running out of input mid-record. A stock Go
// client sends requests of random sizes; the server side gets the
// ciphertext in random 1-7 byte fragments and answers through Seal. If a
// Go release changes crypto/tls so that this stops working, this test
// fails.
func TestRecordLayerResumes(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(VersionName(v), func(t *testing.T) {
			srvCfg, cliCfg := testConfigs(t)
			cliCfg.MaxVersion = v
			cn, sn := tcpPair(t)
			srv := Server(sn, srvCfg)
			client := tls.Client(cn, cliCfg)
			rng := rand.New(rand.NewPCG(1, uint64(v)))
			const rounds = 300
			done := make(chan error, 1)
			go func() {
				// The client writes its first request right behind its
				// Finished message, as HTTP clients do.
				for i := range rounds {
					req := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*13%3000)
					req = append(req, '\n')
					if _, err := client.Write(req); err != nil {
						done <- err
						return
					}
					resp := make([]byte, len(req))
					if _, err := io.ReadFull(client, resp); err != nil {
						done <- err
						return
					}
					if !bytes.Equal(resp, bytes.ToUpper(req)) {
						done <- errors.New("response mismatch")
						return
					}
				}
				done <- client.Close()
			}()
			if err := srv.Handshake(); err != nil {
				t.Fatal(err)
			}
			if got := srv.State().Version; got != v {
				t.Fatalf("version %x, want %x", got, v)
			}
			// Application data read with the handshake comes out of the
			// first Open, with no new input.
			plain, err := srv.Open(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			eof := false
			for !eof {
				for {
					i := bytes.IndexByte(plain, '\n')
					if i < 0 {
						break
					}
					out, err := srv.Seal(nil, bytes.ToUpper(plain[:i+1]))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := sn.Write(out); err != nil {
						t.Fatal(err)
					}
					plain = plain[i+1:]
				}
				n, rerr := sn.Read(buf)
				for ct := buf[:n]; len(ct) > 0; {
					k := min(len(ct), 1+rng.IntN(7))
					plain, err = srv.Open(plain, ct[:k])
					ct = ct[k:]
					if err == io.EOF {
						eof = true
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if rerr != nil {
					t.Fatalf("socket: %v", rerr)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(plain) != 0 {
				t.Fatalf("%d bytes left over", len(plain))
			}
		})
	}
}

// TestOpenGarbage: bytes that are not TLS records end the connection
// with an error and an alert to send, never a panic.
func TestOpenGarbage(t *testing.T) {
	srvCfg, cliCfg := testConfigs(t)
	srv, _, _, _ := handshakePair(t, srvCfg, cliCfg)
	_, err := srv.Open(nil, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if err == nil || err == io.EOF {
		t.Fatalf("Open(garbage) = %v, want an error", err)
	}
	// The alert record (encrypted under TLS 1.3, so of type 23).
	if alert := srv.Pending(nil); len(alert) == 0 || alert[0] != 21 && alert[0] != 23 {
		t.Fatalf("pending output %x, want an alert record", alert)
	}
	// The error sticks.
	if _, err2 := srv.Open(nil, nil); err2 == nil {
		t.Fatal("Open after an error succeeded")
	}
	if _, err := srv.Seal(nil, []byte("x")); err == nil {
		t.Fatal("Seal after an error succeeded")
	}
}

// TestCloseNotify: a close_notify from either side is io.EOF at the other.
func TestCloseNotify(t *testing.T) {
	srvCfg, cliCfg := testConfigs(t)
	srv, cli, _, _ := handshakePair(t, srvCfg, cliCfg)
	ct, err := srv.Seal(nil, []byte("bye"))
	if err != nil {
		t.Fatal(err)
	}
	ct = srv.CloseNotify(ct)
	plain, err := cli.Open(nil, ct)
	if string(plain) != "bye" || err != io.EOF {
		t.Fatalf("Open = %q, %v; want bye, EOF", plain, err)
	}
	if _, err := srv.Seal(nil, []byte("more")); err == nil {
		t.Fatal("Seal after close_notify succeeded")
	}
}

// TestRecordsByteAtATime feeds records one byte at a time both ways.
func TestRecordsByteAtATime(t *testing.T) {
	srvCfg, cliCfg := testConfigs(t)
	srv, cli, _, _ := handshakePair(t, srvCfg, cliCfg)
	msg := []byte(strings.Repeat("0123456789", 5000)) // several records
	for _, dir := range []struct{ from, to *Conn }{{srv, cli}, {cli, srv}} {
		ct, err := dir.from.Seal(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		var plain []byte
		for i := range ct {
			if plain, err = dir.to.Open(plain, ct[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(plain, msg) {
			t.Fatalf("got %d bytes, want %d", len(plain), len(msg))
		}
	}
}

// TestSealOpenAllocs: once the buffers have grown, Seal allocates
// nothing and Open allocates only what crypto/tls does per record read
// (its readFromUntil boxes an atLeastReader: 24 bytes, once for the
// record header and once for the body), which cannot be avoided without
// a fork. Under -race the counts are not a normal build's (see
// raceBuild); .ci/run runs the allocation tests without -race too.
func TestSealOpenAllocs(t *testing.T) {
	if raceBuild {
		t.Skip("allocation counts differ under -race: sync.Pool drops buffers at random")
	}
	srvCfg, cliCfg := testConfigs(t)
	srv, cli, _, _ := handshakePair(t, srvCfg, cliCfg)
	msg := bytes.Repeat([]byte("x"), 1024)
	ct := make([]byte, 0, 64<<10)
	plain := make([]byte, 0, 64<<10)
	run := func() {
		var err error
		ct, err = srv.Seal(ct[:0], msg)
		if err != nil {
			t.Fatal(err)
		}
		plain, err = cli.Open(plain[:0], ct)
		if err != nil || len(plain) != len(msg) {
			t.Fatal(err, len(plain))
		}
	}
	for range 10 {
		run()
	}
	if n := testing.AllocsPerRun(100, run); n > 2 {
		t.Fatalf("Seal+Open of 1 KiB: %v allocations, want at most 2", n)
	}
	seal := func() {
		var err error
		if ct, err = srv.Seal(ct[:0], msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(100, seal); n > 0 {
		t.Fatalf("Seal of 1 KiB: %v allocations, want 0", n)
	}
}

func benchRecords(b *testing.B, size int) {
	srvCfg, cliCfg := testConfigs(b)
	srv, cli, _, _ := handshakePair(b, srvCfg, cliCfg)
	msg := bytes.Repeat([]byte("x"), size)
	ct := make([]byte, 0, 2*size+1024)
	plain := make([]byte, 0, 2*size+minRead)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if ct, err = srv.Seal(ct[:0], msg); err != nil {
			b.Fatal(err)
		}
		if plain, err = cli.Open(plain[:0], ct); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealOpen measures the record path, one Seal on one side and
// one Open on the other per operation (TLS 1.3, AES-128-GCM or
// ChaCha20 as crypto/tls picks for the CPU).
func BenchmarkSealOpen(b *testing.B) {
	for _, size := range []int{128, 1 << 10, 16 << 10, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) { benchRecords(b, size) })
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// FuzzOpen feeds arbitrary bytes, after valid records, to a server Conn:
// Open must not panic, must consume its input or fail, and must never
// return plaintext the peer did not send.
func FuzzOpen(f *testing.F) {
	srvCfg, cliCfg := testConfigs(f)
	srv, cli, _, _ := handshakePair(f, srvCfg, cliCfg)
	rec, err := cli.Seal(nil, []byte("hello"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(rec[:7])
	f.Add([]byte{23, 3, 3, 0, 5, 1, 2, 3, 4, 5})
	f.Add([]byte{21, 3, 3, 0, 2, 1, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A fresh pair per input would cost a handshake each; a broken
		// connection stays broken, which is also behaviour to check.
		plain, err := srv.Open(nil, data)
		if err == nil && len(plain) > 0 && !bytes.Equal(plain, []byte("hello")) {
			t.Fatalf("Open returned plaintext %q nobody sealed", plain)
		}
		_ = srv.Pending(nil)
	})
}

func TestHeaderSafe(t *testing.T) {
	for in, want := range map[string]string{
		"CN=alice,O=Example": "CN=alice,O=Example",
		"CN=a\r\nX-Evil: 1":  `CN=a\x0d\x0aX-Evil: 1`,
		"CN=\x7f\x00é":       `CN=\x7f\x00é`,
	} {
		if got := headerSafe(in); got != want {
			t.Errorf("headerSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
