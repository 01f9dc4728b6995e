package tlsterm

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/connx/connx/internal/testcert"
)

// keyUpdatePeer is a server Conn in buffer mode and a TLS 1.3 client
// that writes its own records (testcert.Records13).
func keyUpdatePeer(t *testing.T) (*Conn, *testcert.Records13) {
	t.Helper()
	srvCfg, cliCfg := testConfigs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvc := make(chan *Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			srvc <- nil
			return
		}
		t.Cleanup(func() { nc.Close() })
		c := Server(nc, srvCfg)
		if c.Handshake() != nil {
			c = nil
		}
		srvc <- c
	}()
	cli := testcert.DialRecords13(t, ln.Addr().String(), cliCfg)
	srv := <-srvc
	if srv == nil {
		t.Fatal("server handshake failed")
	}
	return srv, cli
}

// updates queues n KeyUpdate requests, with an application byte after
// every 15 (crypto/tls's own limit is 16 non-advancing records in a row).
func updates(t *testing.T, cli *testcert.Records13, n int, requested bool) []byte {
	for i := range n {
		cli.KeyUpdate(t, requested)
		if i%15 == 14 {
			cli.AppData([]byte("x"))
		}
	}
	cli.AppData([]byte("y"))
	return cli.Take()
}

// TestKeyUpdateBudget: a peer may ask for MaxKeyUpdates key updates per
// KeyUpdateWindow, each answered; one more is ErrKeyUpdateFlood with a
// close_notify. Updates not asking for an answer are not counted.
func TestKeyUpdateBudget(t *testing.T) {
	clock := time.Unix(1e9, 0)
	now = func() time.Time { return clock }
	t.Cleanup(func() { now = time.Now })

	srv, cli := keyUpdatePeer(t)
	// Three windows' worth, the clock moving on between them, and
	// unrequested updates, which cost no output.
	for w := range 3 {
		plain, err := srv.Open(nil, updates(t, cli, MaxKeyUpdates, true))
		if err != nil {
			t.Fatalf("window %d: %d requested updates: %v", w, MaxKeyUpdates, err)
		}
		if want := MaxKeyUpdates/15 + 1; len(plain) != want {
			t.Fatalf("window %d: %d plaintext bytes, want %d", w, len(plain), want)
		}
		if out := srv.Pending(nil); len(out) == 0 {
			t.Fatalf("window %d: no KeyUpdate answers", w)
		}
		if _, err := srv.Open(nil, updates(t, cli, 10*MaxKeyUpdates, false)); err != nil {
			t.Fatalf("window %d: unrequested updates: %v", w, err)
		}
		clock = clock.Add(KeyUpdateWindow + time.Second)
	}
	// Within one window, one request too many.
	if _, err := srv.Open(nil, updates(t, cli, MaxKeyUpdates, true)); err != nil {
		t.Fatalf("a full budget: %v", err)
	}
	before := len(srv.Pending(nil))
	_, err := srv.Open(nil, updates(t, cli, 1, true))
	if !errors.Is(err, ErrKeyUpdateFlood) {
		t.Fatalf("one request beyond the budget: %v, want ErrKeyUpdateFlood", err)
	}
	// The answer and a close_notify (an alert record, 24 bytes sealed).
	if out := srv.Pending(nil); len(out) < 2*24 {
		t.Errorf("after the flood: %d bytes pending (%d before), want an answer and a close_notify", len(out), before)
	}
	if _, err := srv.Open(nil, nil); !errors.Is(err, ErrKeyUpdateFlood) {
		t.Errorf("Open after the flood: %v, want ErrKeyUpdateFlood again", err)
	}
}
