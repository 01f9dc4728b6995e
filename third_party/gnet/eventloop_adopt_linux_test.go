// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/netpoll"
)

type adoptHandler struct {
	BuiltinEventEngine
	opened, closed int
}

func (h *adoptHandler) OnOpen(Conn) ([]byte, Action) { h.opened++; return nil, None }
func (h *adoptHandler) OnClose(Conn, error) Action   { h.closed++; return None }
func (h *adoptHandler) OnTraffic(Conn) Action        { return None }

// testLoop is an event loop that is not running: the test delivers the
// events itself, as the loop's dispatch would.
func testLoop(t *testing.T, h EventHandler) *eventloop {
	t.Helper()
	p, err := netpoll.OpenPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	el := &eventloop{engine: &engine{opts: &Options{}}, poller: p, eventHandler: h, buffer: make([]byte, 4096)}
	el.connections.init()
	return el
}

// blackHole is a listener whose accept queue is full: a connect to it
// stays in progress (its SYNs are dropped).
func blackHole(t *testing.T) *unix.SockaddrInet4 {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}).String()
	for i := 0; i < 16; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return sa.(*unix.SockaddrInet4)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the accept queue did not fill")
	return nil
}

// TestAdoptStaleEvent: gnet dispatches epoll events by descriptor number,
// so an event reported for a connection closed earlier in the same batch
// of events reaches the connection that reuses its number (an adopted
// socket created meanwhile, whose connect is still in progress). That
// event must not be taken for the end of the connect: SO_ERROR is 0 while
// a connect is in progress, and OnOpen must wait for the connect.
func TestAdoptStaleEvent(t *testing.T) {
	h := &adoptHandler{}
	el := testLoop(t, h)
	sa := blackHole(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, sa); err != unix.EINPROGRESS {
		t.Fatalf("connect: %v, want EINPROGRESS", err)
	}
	c, err := el.Adopt(fd, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.Port}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The event of the descriptor's previous owner (readable, writable).
	gc := c.(*conn)
	if err := gc.processIO(fd, netpoll.IOEvent(unix.EPOLLIN|unix.EPOLLOUT), 0); err != nil {
		t.Fatal(err)
	}
	if h.opened != 0 || h.closed != 0 {
		t.Fatalf("a connect in progress: OnOpen ran %d times, OnClose %d", h.opened, h.closed)
	}
	// Closing it while connecting runs OnClose once and closes fd.
	if err := el.Close(c); err != nil {
		t.Fatal(err)
	}
	if h.opened != 0 || h.closed != 1 {
		t.Fatalf("after Close: OnOpen ran %d times, OnClose %d", h.opened, h.closed)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("fd %d still open after Close (%v)", fd, err)
	}
}

// connecting returns a socket whose connect to sa is in progress.
func connecting(t *testing.T, sa *unix.SockaddrInet4) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, sa); err != unix.EINPROGRESS {
		t.Fatalf("connect: %v, want EINPROGRESS", err)
	}
	return fd
}

type retryHandler struct {
	adoptHandler
	el     *eventloop
	sa     *unix.SockaddrInet4
	fds    []int
	adopts int // Adopts left to do from OnClose
	t      *testing.T
}

// OnClose connects again, as ConnX's retry of a failed connect does.
func (h *retryHandler) OnClose(c Conn, err error) Action {
	h.closed++
	if h.adopts > 0 {
		h.adopts--
		fd := connecting(h.t, h.sa)
		if _, err := h.el.Adopt(fd, nil, nil); err == nil {
			h.fds = append(h.fds, fd)
		}
	}
	return None
}

// TestAdoptDuringCloseConns: the loop's closeConns (the engine stops)
// runs OnClose for every connection; an OnClose that adopts a new socket
// (ConnX retries a failed exchange on a new connection) must not leave it
// open and registered behind the walk: every connection the loop holds
// when it ends is closed, with its descriptor.
func TestAdoptDuringCloseConns(t *testing.T) {
	h := &retryHandler{t: t, adopts: 2}
	el := testLoop(t, h)
	h.el = el
	h.sa = blackHole(t)
	for i := 0; i < 2; i++ {
		fd := connecting(t, h.sa)
		if _, err := el.Adopt(fd, nil, nil); err != nil {
			t.Fatal(err)
		}
		h.fds = append(h.fds, fd)
	}
	el.closeConns()
	for _, fd := range h.fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("fd %d still open after closeConns", fd)
			_ = unix.Close(fd)
		}
	}
	if n := el.countConn(); n != 0 {
		t.Errorf("%d connections left after closeConns", n)
	}
}
