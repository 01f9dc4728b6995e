// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/errors"
)

// warnLogger hands the warnings gnet logs to the test.
type warnLogger struct{ warns chan string }

func (l warnLogger) Debugf(string, ...any) {}
func (l warnLogger) Infof(string, ...any)  {}
func (l warnLogger) Errorf(string, ...any) {}
func (l warnLogger) Fatalf(string, ...any) {}
func (l warnLogger) Warnf(format string, args ...any) {
	select {
	case l.warns <- fmt.Sprintf(format, args...):
	default:
	}
}

// echoHandler reports the engine and each close, and echoes what it
// reads.
type echoHandler struct {
	BuiltinEventEngine
	booted         chan Engine
	opened, closed chan struct{}
}

func (h *echoHandler) OnOpen(Conn) ([]byte, Action) {
	select {
	case h.opened <- struct{}{}:
	default:
	}
	return nil, None
}

func (h *echoHandler) OnBoot(e Engine) Action { h.booted <- e; return None }

func (h *echoHandler) OnClose(Conn, error) Action {
	select {
	case h.closed <- struct{}{}:
	default:
	}
	return None
}

func (h *echoHandler) OnTraffic(c Conn) Action {
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	return None
}

// lowestFreeFD is the descriptor number the next open would get.
func lowestFreeFD(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.Close(fd)
	return fd
}

// echo checks that the engine at addr echoes, and waits for it to close
// the connection (so that its descriptor is free again).
func echo(t *testing.T, addr string, h *echoHandler) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("warm")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "warm" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	<-h.opened
	c.Close()
	select {
	case <-h.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine did not close the connection")
	}
}

// listenerInode is the inode of the TCP socket listening on 127.0.0.1:port
// (/proc/net/tcp, state 0A).
func listenerInode(t *testing.T, port int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 9 && f[1] == want && f[3] == "0A" {
			var ino uint64
			if _, err := fmt.Sscan(f[9], &ino); err != nil {
				t.Fatal(err)
			}
			return ino
		}
	}
	t.Fatalf("no listener on port %d in /proc/net/tcp", port)
	return 0
}

// TestAcceptPausesOnEMFILE: when accept(2) fails with EMFILE the engine
// keeps running: the listener leaves the poller for a while (one warning,
// and no loop spinning on a listener that stays readable: the test
// checks the epoll registration, then resumes at once), and the
// connection that waited in the queue is served once descriptors are
// free again. gnet stopped the engine (ErrAcceptSocket) on the first
// EMFILE. Both accept paths: an event loop's own listener (SO_REUSEPORT,
// level-triggered) and the main reactor's (accept0, edge-triggered).
func TestAcceptPausesOnEMFILE(t *testing.T) {
	defer func(f func(func())) { afterPause = f }(afterPause)
	resumes := make(chan func(), 16)
	afterPause = func(resume func()) { resumes <- resume }
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"accept ReusePort", []Option{WithReusePort(true)}},
		{"accept0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := probe.Addr().(*net.TCPAddr)
			probe.Close()
			h := &echoHandler{booted: make(chan Engine, 1), opened: make(chan struct{}, 1), closed: make(chan struct{}, 1)}
			log := warnLogger{warns: make(chan string, 64)}
			opts := append([]Option{WithMulticore(true), WithNumEventLoop(1), WithLogger(log)}, tc.opts...)
			done := make(chan error, 1)
			go func() { done <- Run(h, "tcp://"+addr.String(), opts...) }()
			var eng Engine
			select {
			case eng = <-h.booted:
			case err := <-done:
				t.Fatalf("Run: %v", err)
			}
			var runErr error
			stopped := false
			defer func() {
				if !stopped {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = eng.Stop(ctx)
					select {
					case <-done:
					case <-ctx.Done():
						t.Error("the engine did not stop")
					}
				}
			}()
			// OnBoot comes before every poller exists: make sure the
			// engine serves before descriptors run out.
			echo(t, addr.String(), h)
			lnIno := listenerInode(t, addr.Port)

			var lim syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
			restore := func() {
				if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
					t.Fatal(err)
				}
			}
			defer restore()
			// The limit is the lowest free descriptor, but a descriptor
			// the process closes meanwhile (the runtime, the engine) can
			// still let the accept through: then try again.
			cfd := -1
			for attempt := 1; cfd < 0; attempt++ {
				if attempt > 5 {
					t.Fatal("5 accepts in a row got a descriptor under the lowered limit")
				}
				// The client's socket exists before the limit drops;
				// connect needs no new descriptor, accept does.
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				low := lim
				low.Cur = uint64(lowestFreeFD(t))
				if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
					t.Fatal(err)
				}
				if err := unix.Connect(fd, &unix.SockaddrInet4{Port: addr.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
					restore()
					t.Fatalf("connect: %v", err)
				}
				select {
				case w := <-log.warns:
					restore()
					if !strings.Contains(w, "too many open files") {
						t.Errorf("warning %q does not name the error", w)
					}
					if registered(t, lnIno) {
						t.Error("the listener is still in the poller during the pause")
					}
					// Resume now (acceptPause later in production).
					select {
					case resume := <-resumes:
						resume()
					case <-time.After(10 * time.Second):
						t.Fatal("no resume scheduled")
					}
					cfd = fd
				case <-h.opened:
					restore()
					_ = unix.Close(fd)
					select {
					case <-h.closed:
					case <-time.After(10 * time.Second):
						t.Fatal("the engine did not close the connection")
					}
				case runErr = <-done:
					stopped = true
					restore()
					t.Fatalf("the engine stopped on EMFILE: %v (want it paused)", runErr)
				case <-time.After(10 * time.Second):
					restore()
					t.Fatal("no accept attempt within 10s")
				}
			}

			f := os.NewFile(uintptr(cfd), "client")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
				t.Fatalf("echo after the pause: %q, %v", got, err)
			}
			select {
			case runErr = <-done:
				stopped = true
				t.Fatalf("the engine stopped: %v", runErr)
			default:
			}
		})
	}
}

// TestAcceptFailed: an accept(2) error caused by the connection (or a
// network error Linux reports on it) lets the loop go on; running out of
// descriptors or memory, or a security module's refusal, pauses the
// listener; one that says the listener is broken stops the engine.
func TestAcceptFailed(t *testing.T) {
	el := testLoop(t, &adoptHandler{})
	el.engine.opts.Logger = warnLogger{warns: make(chan string, 64)}
	for _, errno := range []unix.Errno{unix.EINTR, unix.ECONNRESET, unix.ECONNABORTED,
		unix.ENETDOWN, unix.EPROTO, unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET,
		unix.EHOSTUNREACH, unix.ENETUNREACH} {
		if err := el.acceptFailed(-1, errno); err != nil {
			t.Errorf("%v: %v, want the loop to go on", errno, err)
		}
	}
	// These leave the connection queued: the listener must pause.
	for _, errno := range []unix.Errno{unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.EPERM, unix.EACCES} {
		if err := el.acceptFailed(-1, errno); err != errAcceptPaused {
			t.Errorf("%v: %v, want the listener paused", errno, err)
		}
	}
	for _, errno := range []unix.Errno{unix.EBADF, unix.EINVAL, unix.ENOTSOCK, unix.EFAULT, unix.EOPNOTSUPP} {
		if err := el.acceptFailed(-1, errno); err != errors.ErrAcceptSocket {
			t.Errorf("%v: %v, want ErrAcceptSocket", errno, err)
		}
	}
}

// TestResumeAcceptReplaced: a paused listener goes back into the poller
// when its pause ends, unless its descriptor now holds another socket
// (ConnX closes listeners by dup2-ing a placeholder over them): that one
// stays out.
func TestResumeAcceptReplaced(t *testing.T) {
	defer func(f func(func())) { afterPause = f }(afterPause)
	afterPause = func(func()) {} // the test resumes by itself
	for _, replaced := range []bool{false, true} {
		el := testLoop(t, &adoptHandler{})
		el.engine.opts.Logger = warnLogger{warns: make(chan string, 64)}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(fd, 8); err != nil {
			t.Fatal(err)
		}
		ln := &listener{fd: fd, network: "tcp"}
		el.listeners = map[int]*listener{fd: ln}
		if err := el.poller.AddRead(ln.packPollAttachment(el.accept), false); err != nil {
			t.Fatal(err)
		}
		if err := el.acceptFailed(fd, unix.EMFILE); err != errAcceptPaused {
			t.Fatalf("EMFILE: %v, want the listener paused", err)
		}
		if registered(t, inode(t, fd)) {
			t.Fatal("the listener is still in the poller during the pause")
		}
		if replaced {
			ph, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Dup3(ph, fd, unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			_ = unix.Close(ph)
		}
		_ = el.resumeAccept(ln)
		if got := registered(t, inode(t, fd)); got == replaced {
			t.Errorf("replaced %v: registered after the resume: %v, want %v", replaced, got, !replaced)
		}
	}
}
