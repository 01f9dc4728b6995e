// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// closeHandler echoes, closes a connection that sends "close", and
// reports every open (with its descriptor) and close.
type closeHandler struct {
	BuiltinEventEngine
	eng     chan Engine
	opened  chan int
	closed  chan int
	hold    int  // a copy of the next opened descriptor, made behind gnet's back
	holdDup bool // make that copy with Conn.Dup instead
}

func (h *closeHandler) OnBoot(e Engine) Action { h.eng <- e; return None }

func (h *closeHandler) OnOpen(c Conn) ([]byte, Action) {
	if h.hold == 0 {
		var err error
		if h.holdDup {
			h.hold, err = c.Dup()
		} else {
			h.hold, err = unix.Dup(c.Fd()) // what a child between fork and exec holds
		}
		if err != nil {
			h.hold = -1
		}
	}
	h.opened <- c.Fd()
	return nil, None
}

func (h *closeHandler) OnClose(c Conn, _ error) Action { h.closed <- c.Fd(); return None }

func (h *closeHandler) OnTraffic(c Conn) Action {
	b, _ := c.Next(-1)
	if bytes.Equal(b, []byte("close")) {
		return Close
	}
	_, _ = c.Write(b)
	return None
}

// registered reports whether any epoll instance of this process still
// has a registration for the socket whose inode is ino.
func registered(t *testing.T, ino uint64) bool {
	t.Helper()
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("ino:%x ", ino)
	for _, f := range fds {
		if l, _ := os.Readlink(f); l != "anon_inode:[eventpoll]" {
			continue
		}
		info, _ := os.ReadFile(strings.Replace(f, "/fd/", "/fdinfo/", 1))
		if strings.Contains(string(info)+" ", want) {
			return true
		}
	}
	return false
}

func inode(t *testing.T, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// startCloseEngine runs a one-loop engine with h on a free port.
func startCloseEngine(t *testing.T, h *closeHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	done := make(chan error, 1)
	go func() { done <- Run(h, "tcp://"+addr, WithNumEventLoop(1)) }()
	var eng Engine
	select {
	case eng = <-h.eng:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("engine did not boot")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
		<-done
	})
	return addr
}

func recvFD(t *testing.T, ch chan int, what string) int {
	t.Helper()
	select {
	case fd := <-ch:
		return fd
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s", what)
	}
	return -1
}

// TestCloseWithoutDelete: a connection's descriptor is closed without
// EPOLL_CTL_DEL (netpoll.SkipDeleteOnClose). While a copy of it lives (as
// in a child between fork and exec) its registration survives the close
// and its events reach the loop under its number: the connection that
// reuses the number must survive them (level-triggered, gnet reads it
// and finds nothing). The registration ends with the last copy.
func TestCloseWithoutDelete(t *testing.T) {
	h := &closeHandler{eng: make(chan Engine, 1), opened: make(chan int, 4), closed: make(chan int, 4)}
	addr := startCloseEngine(t, h)

	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fdA := recvFD(t, h.opened, "OnOpen of A")
	if h.hold <= 0 {
		t.Fatal("could not copy A's descriptor")
	}
	defer unix.Close(h.hold)
	ino := inode(t, h.hold)
	// B's client socket is made now, so that the number A frees goes to
	// B's accepted socket, not to B's own end.
	b, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(b)
	if _, err := a.Write([]byte("close")); err != nil {
		t.Fatal(err)
	}
	recvFD(t, h.closed, "OnClose of A")
	if !registered(t, ino) {
		t.Fatal("A's registration is gone while a copy of its descriptor lives: close deleted it (EPOLL_CTL_DEL)")
	}

	tcpAddr := a.RemoteAddr().(*net.TCPAddr)
	if err := unix.Connect(b, &unix.SockaddrInet4{Port: tcpAddr.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if fdB := recvFD(t, h.opened, "OnOpen of B"); fdB != fdA {
		t.Fatalf("B got descriptor %d, not A's %d: the test needs the number reused", fdB, fdA)
	}
	// A's socket (alive through the copy) now reports a hang-up under
	// the number B has.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(b, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	for i := 0; i < 20; i++ { // each round trip is another pass of the loop
		msg := []byte(fmt.Sprintf("ping %02d", i))
		if _, err := unix.Write(b, msg); err != nil {
			t.Fatalf("write to B: %v", err)
		}
		got := make([]byte, len(msg))
		if n, err := unix.Read(b, got); err != nil || n != len(msg) {
			t.Fatalf("B was closed by A's hang-up: read %d bytes, %v", n, err)
		}
	}
	select {
	case fd := <-h.closed:
		t.Fatalf("OnClose for descriptor %d: A's stale event closed B", fd)
	default:
	}
	_ = unix.Close(h.hold)
	h.hold = -1
	if registered(t, ino) {
		t.Fatal("A's registration outlives the last copy of its descriptor")
	}
}

// TestCloseDeletesDuped: a descriptor the application duplicated with
// Conn.Dup is deleted from the poller before the close; its registration
// would otherwise live (and fire) as long as the duplicate.
func TestCloseDeletesDuped(t *testing.T) {
	h := &closeHandler{eng: make(chan Engine, 1), opened: make(chan int, 4), closed: make(chan int, 4), holdDup: true}
	addr := startCloseEngine(t, h)
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	recvFD(t, h.opened, "OnOpen")
	if h.hold <= 0 {
		t.Fatal("Dup failed")
	}
	defer unix.Close(h.hold)
	ino := inode(t, h.hold)
	if _, err := a.Write([]byte("close")); err != nil {
		t.Fatal(err)
	}
	recvFD(t, h.closed, "OnClose")
	// OnClose runs before the loop deletes and closes the descriptor:
	// wait for the loop to get there (the test used to look at once and
	// failed about once in a hundred runs).
	for deadline := time.Now().Add(10 * time.Second); registered(t, ino); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the registration of a duplicated descriptor survived its close")
		}
	}
}
