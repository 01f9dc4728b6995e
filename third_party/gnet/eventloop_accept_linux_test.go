// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/socket"
)

// acceptHandler keeps the connection OnOpen was last called with.
type acceptHandler struct {
	BuiltinEventEngine
	last Conn
}

func (h *acceptHandler) OnOpen(c Conn) ([]byte, Action) { h.last = c; return nil, None }

// acceptLoop is a loop that is not running, with a TCP listener on
// address ("127.0.0.1:0" or "[::1]:0"); the test calls its accept as the
// loop's dispatch would on a readable listener.
func acceptLoop(t *testing.T, address string) (*eventloop, *listener, *acceptHandler) {
	t.Helper()
	h := &acceptHandler{}
	el := testLoop(t, h)
	ln := &listener{network: "tcp", address: address}
	if err := ln.open(); err != nil {
		t.Skipf("listen on %s: %v", address, err)
	}
	t.Cleanup(ln.close)
	sa, err := unix.Getsockname(ln.fd)
	if err != nil {
		t.Fatal(err)
	}
	ln.addr = socket.SockaddrToTCPOrUnixAddr(sa) // ln.addr has port 0
	el.listeners = map[int]*listener{ln.fd: ln}
	return el, ln, h
}

// dialN opens n connections to ln; the kernel completes them in ln's
// accept queue.
func dialN(t *testing.T, ln *listener, n int) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// TestAcceptAllocs: accepting an IPv4 or IPv6 TCP connection (the raw
// accept4, the conn, its registration and OnOpen) allocates the conn
// and nothing else, and closing it allocates nothing.
func TestAcceptAllocs(t *testing.T) {
	for _, address := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(address, func(t *testing.T) {
			const runs = 100
			el, ln, h := acceptLoop(t, address)
			dialN(t, ln, runs+1) // AllocsPerRun runs f once more to warm up
			allocs := testing.AllocsPerRun(runs, func() {
				h.last = nil
				if err := el.accept(ln.fd, 0, 0); err != nil {
					t.Fatal(err)
				}
				if h.last == nil {
					t.Fatal("no connection accepted")
				}
				_ = el.close(h.last.(*conn), nil)
			})
			t.Logf("%.1f allocations per accepted connection", allocs)
			if allocs > 1 {
				t.Errorf("accepting and closing a connection: %.1f allocations, want at most 1 (the conn)", allocs)
			}
		})
	}
}

// TestAcceptRemoteAddr: RemoteAddr and RemoteAddrPort of an accepted
// connection give the client's address, for IPv4 and IPv6 clients, and
// RemoteAddrPort does not allocate.
func TestAcceptRemoteAddr(t *testing.T) {
	for _, address := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(address, func(t *testing.T) {
			el, ln, h := acceptLoop(t, address)
			client := dialN(t, ln, 1)[0]
			if err := el.accept(ln.fd, 0, 0); err != nil {
				t.Fatal(err)
			}
			c, ok := h.last.(*conn)
			if !ok {
				t.Fatal("no connection accepted")
			}
			want := client.LocalAddr().(*net.TCPAddr)
			ap := c.RemoteAddrPort()
			if ap != want.AddrPort() {
				t.Errorf("RemoteAddrPort() = %v, want %v", ap, want.AddrPort())
			}
			var got netip.AddrPort
			if n := testing.AllocsPerRun(10, func() { got = c.RemoteAddrPort() }); n != 0 || got != ap {
				t.Errorf("RemoteAddrPort: %.1f allocations (want 0), %v then %v", n, ap, got)
			}
			ra, ok := c.RemoteAddr().(*net.TCPAddr)
			if !ok {
				t.Fatalf("RemoteAddr() = %#v, want a *net.TCPAddr", c.RemoteAddr())
			}
			if ra.String() != want.String() || !ra.IP.Equal(want.IP) || ra.Port != want.Port || ra.Zone != "" {
				t.Errorf("RemoteAddr() = %v, want %v", ra, want)
			}
			if len(ra.IP) != len(want.IP.To4()) && len(ra.IP) != len(want.IP) {
				t.Errorf("RemoteAddr().IP has %d bytes", len(ra.IP))
			}
			if c.RemoteAddr() != net.Addr(ra) {
				t.Error("RemoteAddr() builds a new address on every call")
			}
			if c.LocalAddr().String() != ln.addr.String() {
				t.Errorf("LocalAddr() = %v, want %v", c.LocalAddr(), ln.addr)
			}
			_ = el.close(c, nil)
			if c.RemoteAddr() != nil {
				t.Errorf("RemoteAddr() after close = %v, want nil (as before)", c.RemoteAddr())
			}
		})
	}
}

// peerHandler reports each accepted connection's RemoteAddr and
// RemoteAddrPort, then closes it.
type peerHandler struct {
	BuiltinEventEngine
	booted chan Engine
	peers  chan [2]string
}

func (h *peerHandler) OnBoot(e Engine) Action { h.booted <- e; return None }

func (h *peerHandler) OnOpen(c Conn) ([]byte, Action) {
	ap := c.(interface{ RemoteAddrPort() netip.AddrPort }).RemoteAddrPort()
	h.peers <- [2]string{ap.String(), c.RemoteAddr().String()}
	return nil, Close
}

// TestAcceptEngine: through a running engine, the main reactor's accept
// (accept0; source-address hashing needs the net.Addr before the conn
// exists) and the event loops' own (accept, with SO_REUSEPORT) give the
// client's address; a Unix socket's peer has no AddrPort.
func TestAcceptEngine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		address string
		opts    []Option
	}{
		{"accept0 SourceAddrHash ipv4", "127.0.0.1", []Option{WithLoadBalancing(SourceAddrHash)}},
		{"accept0 SourceAddrHash ipv6", "::1", []Option{WithLoadBalancing(SourceAddrHash)}},
		{"accept0 RoundRobin ipv4", "127.0.0.1", nil},
		{"accept ReusePort ipv4", "127.0.0.1", []Option{WithReusePort(true)}},
		{"accept ReusePort ipv6", "::1", []Option{WithReusePort(true)}},
		{"accept0 unix", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			network, addr := "unix", t.TempDir()+"/sock"
			if tc.address != "" {
				probe, err := net.Listen("tcp", net.JoinHostPort(tc.address, "0"))
				if err != nil {
					t.Skipf("listen on %s: %v", tc.address, err)
				}
				network, addr = "tcp", probe.Addr().String()
				probe.Close()
			}
			h := &peerHandler{booted: make(chan Engine, 1), peers: make(chan [2]string, 1)}
			opts := append([]Option{WithMulticore(true), WithNumEventLoop(2)}, tc.opts...)
			done := make(chan error, 1)
			go func() { done <- Run(h, network+"://"+addr, opts...) }()
			var eng Engine
			select {
			case eng = <-h.booted:
			case err := <-done:
				t.Fatalf("Run: %v", err)
			}
			defer func() {
				_ = eng.Stop(context.Background())
				<-done
			}()
			c, err := net.Dial(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := [2]string{netip.AddrPort{}.String(), c.LocalAddr().String()}
			if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
				want[0] = a.AddrPort().String()
			}
			if got := <-h.peers; got != want {
				t.Errorf("RemoteAddrPort, RemoteAddr = %q; want %q", got, want)
			}
		})
	}
}
