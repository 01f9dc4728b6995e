package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/testcert"
)

// Regression tests from review rev2 (TLS listener).

// TestTLSReloadRereadsCertificates: docs/tls.md says a reload (SIGHUP)
// "re-reads the pairs too", and the watcher's failure log says the files
// are "re-read on reload (SIGHUP) only". A reload whose certificate list
// is unchanged must therefore pick up new contents of the files. No
// watcher runs here (no Serve), as when watching a file failed.
func TestTLSReloadRereadsCertificates(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	cf, kf := ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, dir, "example.com")
	cfg := testConfig(t, []string{"127.0.0.1:1"}, func(c *config.Config) {
		c.Server.TLS = config.DefaultTLS()
		c.Server.TLS.Port = 0
		c.Server.TLS.Certificates = []config.Certificate{{CertFile: cf, KeyFile: kf}}
	})
	srv, err := New(cfg, testLogger(t))
	mustf(t, err, "New")
	before := srv.tls.store.Load().Certificates()[0].Names

	renewed := ca.Issue(t, testcert.ECDSA, false, "example.com", "renewed.example.com")
	testcert.WriteFile(t, kf, renewed.KeyPEM)
	testcert.WriteFile(t, cf, renewed.CertPEM)
	mustf(t, srv.Reload(cfg), "Reload")

	after := srv.tls.store.Load().Certificates()[0].Names
	if len(after) != 2 {
		t.Fatalf("after a reload the certificate in use is still the old one: names %v (before %v), want the renewed pair's [example.com renewed.example.com]", after, before)
	}
}

// TestTLSDeniedClientGetsNoHandshake: a client refused by server.deny
// must not get a TLS handshake (CPU, a maxHandshakes slot) and then a
// plaintext "403" written into its TLS stream. Either it is refused
// before the handshake, or it gets a 403 it can read.
func TestTLSDeniedClientGetsNoHandshake(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) { c.Server.Deny = []string{"127.0.0.1"} })
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", e.addr, e.client("example.com"))
	if err != nil {
		return // refused before the handshake: fine
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	resp, rerr := http.ReadResponse(bufio.NewReader(c), nil)
	if rerr != nil {
		t.Fatalf("a denied client completed a TLS handshake and then could not read its answer: %v", rerr)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied client: status %d, want 403", resp.StatusCode)
	}
}

// handshakeInProgress opens a TCP connection to the HTTPS port that sends
// nothing, and waits until the proxy runs its handshake.
func handshakeInProgress(t *testing.T, e *tlsEnv) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, ioTimeout)
	mustf(t, err, "dial")
	t.Cleanup(func() { c.Close() })
	waitFor(t, "the handshake in progress", func() bool { st, _ := e.srv.TLSStats(); return st.InProgress == 1 })
	return c
}

// expectHandshakeGone checks that, once the server has stopped, nothing of
// a handshake in progress is left: no goroutine holding the duplicate,
// and the client's connection closed.
func expectHandshakeGone(t *testing.T, e *tlsEnv, c net.Conn, how string) {
	t.Helper()
	if st, _ := e.srv.TLSStats(); st.InProgress != 0 {
		t.Errorf("after %s returned, %d TLS handshake(s) still in progress (goroutine and descriptor kept until timeouts.tlsHandshake)", how, st.InProgress)
	}
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("after %s returned, the connection parked for its handshake is still open", how)
	}
}

// TestTLSHandshakeEndsWithStop: Stop closes every connection; one whose
// handshake is in progress (parked off the loop) must not outlive it.
func TestTLSHandshakeEndsWithStop(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) { c.Timeouts.TLSHandshake = time.Hour })
	c := handshakeInProgress(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	_ = e.srv.Stop(ctx)
	expectHandshakeGone(t, e, c, "Stop")
}

// TestTLSHandshakeEndsWithShutdown: Shutdown returns when the last client
// is gone; a handshake in progress is a client too (it must be finished
// and served, or closed), not a goroutine left behind.
func TestTLSHandshakeEndsWithShutdown(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), func(c *config.Config) { c.Timeouts.TLSHandshake = time.Hour })
	c := handshakeInProgress(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	expectHandshakeGone(t, e, c, "Shutdown")
}

// TestTLSListenerClosesAtShutdownOnAnyAddress: with server.host "" (all
// addresses, which config accepts), Shutdown must close the HTTPS
// listener as it closes the plaintext one: new connections are refused
// while the requests in progress drain. closeTLSListeners looks the
// sockets up by the address resolved from the configuration (IP nil),
// which never equals the bound one ("::"), so the listener stays open.
func TestTLSListenerClosesAtShutdownOnAnyAddress(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	entered := make(chan struct{}, 1)
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	e := newTLSEnv(t, be, func(c *config.Config) { c.Server.Host = "" })
	_, port, _ := net.SplitHostPort(e.addr)
	tlsAddr := net.JoinHostPort("127.0.0.1", port)
	_, pport, _ := net.SplitHostPort(e.plain)
	plainAddr := net.JoinHostPort("127.0.0.1", pport)

	// A request in progress keeps the server draining.
	rc := dialProxy(t, plainAddr)
	rc.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	<-e.srv.Unbound()
	if c, err := net.DialTimeout("tcp", plainAddr, ioTimeout); err == nil {
		c.Close()
		t.Errorf("the plaintext listener accepts during the drain")
	}
	if c, err := net.DialTimeout("tcp", tlsAddr, ioTimeout); err == nil {
		c.Close()
		t.Errorf("the HTTPS listener still accepts connections after Shutdown closed the listeners")
	}
	free()
	if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != "done" {
		t.Errorf("request in progress: %d %q", resp.StatusCode, body)
	}
	<-done
}
