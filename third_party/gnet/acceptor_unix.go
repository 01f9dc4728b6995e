// Copyright (c) 2021 The Gnet Authors. All rights reserved.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

import (
	stderrors "errors"
	"net"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/netpoll"
	"github.com/panjf2000/gnet/v2/pkg/queue"
	"github.com/panjf2000/gnet/v2/pkg/socket"
)

// maxAcceptRetries bounds the accept errors accept0 goes on after in one
// call (see acceptFailed).
const maxAcceptRetries = 16

func (el *eventloop) accept0(fd int, _ netpoll.IOEvent, _ netpoll.IOFlags) error {
	retries := 0
	for {
		network := el.listeners[fd].network
		nfd, sa, ap, err := el.acceptStream(fd, network)
		switch err {
		case nil:
		case unix.EAGAIN: // the Accept queue has been drained out, we can return now
			return nil
		default:
			// The listener is edge-triggered: it must be drained or
			// paused. A run of errors that each took a connection ends
			// in a pause too, in case one of them does not.
			if retries++; retries > maxAcceptRetries {
				el.pauseAccept(fd, err)
				return nil
			}
			if err = el.acceptFailed(fd, err); err == nil {
				continue
			}
			if err == errAcceptPaused {
				return nil
			}
			return err
		}

		// An IPv4 or IPv6 peer (ap) gets its net.Addr when it is asked
		// for (conn.RemoteAddr), unless the load balancer hashes it.
		var remoteAddr net.Addr
		if !ap.IsValid() {
			remoteAddr = socket.SockaddrToTCPOrUnixAddr(sa)
		} else if _, ok := el.engine.eventLoops.(*sourceAddrHashLoadBalancer); ok {
			remoteAddr = net.TCPAddrFromAddrPort(ap)
		}
		if opts := el.engine.opts; opts.TCPKeepAlive > 0 && network == "tcp" &&
			(runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "dragonfly") {
			// TCP keepalive options are not inherited from the listening socket
			// on platforms other than Linux, FreeBSD, or DragonFlyBSD.
			// We therefore need to set them on the accepted socket explicitly.
			//
			// Check out https://github.com/nginx/nginx/pull/337 for details.
			if err = setKeepAlive(
				nfd,
				true,
				opts.TCPKeepAlive,
				opts.TCPKeepInterval,
				opts.TCPKeepCount); err != nil {
				el.getLogger().Errorf("failed to set TCP keepalive on fd=%d: %v", fd, err)
			}
		}

		el := el.engine.eventLoops.next(remoteAddr)
		c := newStreamConn(network, nfd, el, sa, el.listeners[fd].addr, remoteAddr)
		c.remoteAddrPort = ap
		err = el.poller.Trigger(queue.HighPriority, el.register, c)
		if err != nil {
			el.getLogger().Errorf("failed to enqueue the accepted socket fd=%d to poller: %v", c.fd, err)
			_ = unix.Close(nfd)
			c.release()
		}
	}
}

func (el *eventloop) accept(fd int, ev netpoll.IOEvent, flags netpoll.IOFlags) error {
	network := el.listeners[fd].network
	if network == "udp" {
		return el.readUDP(fd, ev, flags)
	}

	nfd, sa, ap, err := el.acceptStream(fd, network)
	switch err {
	case nil:
	case unix.EAGAIN:
		return nil
	default:
		if err = el.acceptFailed(fd, err); err == errAcceptPaused {
			return nil
		}
		return err
	}

	var remoteAddr net.Addr // an IPv4 or IPv6 peer's is built when asked for
	if !ap.IsValid() {
		remoteAddr = socket.SockaddrToTCPOrUnixAddr(sa)
	}
	if opts := el.engine.opts; opts.TCPKeepAlive > 0 && el.listeners[fd].network == "tcp" &&
		(runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "dragonfly") {
		// TCP keepalive options are not inherited from the listening socket
		// on platforms other than Linux, FreeBSD, or DragonFlyBSD.
		// We therefore need to set them on the accepted socket explicitly.
		//
		// Check out https://github.com/nginx/nginx/pull/337 for details.
		if err = setKeepAlive(
			nfd,
			true,
			opts.TCPKeepAlive,
			opts.TCPKeepInterval,
			opts.TCPKeepCount); err != nil {
			el.getLogger().Errorf("failed to set TCP keepalive on fd=%d: %v", fd, err)
		}
	}

	c := newStreamConn(network, nfd, el, sa, el.listeners[fd].addr, remoteAddr)
	c.remoteAddrPort = ap
	return el.register0(c)
}

// errAcceptPaused is acceptFailed's answer when it has taken the listener
// out of the poller.
var errAcceptPaused = stderrors.New("accept paused")

// acceptPause is how long a listener stays out of the poller after
// accept(2) ran out of descriptors or kernel memory.
const acceptPause = 100 * time.Millisecond

// afterPause runs resume, which puts a paused listener back, after
// acceptPause (a variable for tests).
var afterPause = func(resume func()) { time.AfterFunc(acceptPause, resume) }

// acceptFailed decides what a failed accept(2) on the listener fd means
// (ConnX, patch 6): nil when the next accept may succeed at once (the
// connection went away, or Linux reported a network error pending on it,
// which accept(2) gives for the one connection it then drops);
// errAcceptPaused when the process or the system is out of descriptors
// or memory, or a security module refused (EPERM, EACCES): the connection
// stays queued, and the listener leaves the poller for acceptPause, since
// a level-triggered listener would otherwise wake the loop at once, again
// and again; ErrAcceptSocket, which stops the engine, only when the
// listener itself is broken (EBADF, EINVAL, ENOTSOCK, ...). gnet stopped
// the engine on every error but EINTR, EAGAIN, ECONNRESET and
// ECONNABORTED, so one EMFILE ended the server.
func (el *eventloop) acceptFailed(fd int, err error) error {
	switch {
	case err == unix.EMFILE || err == unix.ENFILE || err == unix.ENOBUFS || err == unix.ENOMEM ||
		err == unix.EPERM || err == unix.EACCES:
		el.pauseAccept(fd, err)
		return errAcceptPaused
	case acceptRetryable(err):
		return nil
	}
	el.getLogger().Errorf("Accept() failed due to error: %v", err)
	return errors.ErrAcceptSocket
}

// pauseAccept takes the listener fd out of the poller and puts it back
// after acceptPause, from the loop (resumeAccept).
func (el *eventloop) pauseAccept(fd int, cause error) {
	ln := el.listeners[fd]
	if ln == nil || ln.paused {
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		el.getLogger().Errorf("accept on %v failed (%v) and the listener could not be paused: %v", ln.addr, cause, err)
		return
	}
	if err := el.poller.DeleteRead(fd); err != nil {
		el.getLogger().Errorf("accept on %v failed (%v) and the listener could not be paused: %v", ln.addr, cause, err)
		return
	}
	ln.paused, ln.pausedDev, ln.pausedIno = true, uint64(st.Dev), uint64(st.Ino)
	el.getLogger().Warnf("accept on %v failed: %v; new connections wait in the queue, next try in %v", ln.addr, cause, acceptPause)
	afterPause(func() {
		_ = el.poller.Trigger(queue.HighPriority, el.resumeAccept, ln)
	})
}

// resumeAccept puts a paused listener back in the poller; a connection
// already queued makes it ready at once.
func (el *eventloop) resumeAccept(a any) error {
	ln := a.(*listener)
	if !ln.paused || el.listeners[ln.fd] != ln {
		return nil
	}
	ln.paused = false
	// The descriptor may have been replaced meanwhile (ConnX closes its
	// listeners by dup2-ing a placeholder over them): leave that out.
	var st unix.Stat_t
	if err := unix.Fstat(ln.fd, &st); err != nil || uint64(st.Dev) != ln.pausedDev || uint64(st.Ino) != ln.pausedIno {
		return nil
	}
	if err := el.poller.AddRead(ln.pollAttachment, ln.edgeTriggered); err != nil {
		el.getLogger().Errorf("resuming accept on %v: %v", ln.addr, err)
	}
	return nil
}
