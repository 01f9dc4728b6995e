// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	errorx "github.com/panjf2000/gnet/v2/pkg/errors"
)

// Adopt implements EventLoop.Adopt: the socket is added to the poller
// for reads and writes, and the first event on it finishes the connect
// (connected).
func (el *eventloop) Adopt(fd int, remote net.Addr, ctx any) (Conn, error) {
	// closing: the loop is closing its connections for good (the walk
	// would miss a connection added now), as the engine stops.
	if el.engine.isShutdown() || el.closing {
		_ = unix.Close(fd)
		return nil, errorx.ErrEngineInShutdown
	}
	c := newStreamConn("tcp", fd, el, nil, nil, remote)
	c.ctx = ctx
	c.connecting = true
	if err := el.poller.AddReadWrite(&c.pollAttachment, el.engine.opts.EdgeTriggeredIO); err != nil {
		_ = unix.Close(fd)
		c.release()
		return nil, err
	}
	el.connections.addConn(c, el.idx)
	// opened is set so that close runs OnClose for a connection whose
	// connect fails or that is closed while connecting; processIO sends
	// no event but this one to a connecting Conn.
	c.opened = true
	return c, nil
}

// connected finishes the connect of an adopted socket on its first event:
// OnOpen if SO_ERROR is clear, OnClose with the error otherwise.
//
// The event may not be the socket's own: gnet dispatches events by
// descriptor number, so an event reported for a connection closed
// earlier in the same batch reaches the socket that reuses its number.
// SO_ERROR is 0 while a connect is in progress, so a clear SO_ERROR alone
// does not mean connected: a socket with no peer yet waits for its own
// event (a failed connect always leaves its error in SO_ERROR).
func (el *eventloop) connected(c *conn) error {
	errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = unix.Errno(errno)
	}
	if err == nil {
		// syscall's, not x/sys's: x/sys's asks for the socket's protocol too.
		if _, perr := syscall.Getpeername(c.fd); perr == syscall.ENOTCONN {
			return nil // still connecting
		}
	}
	c.connecting = false
	if err != nil {
		return el.close(c, os.NewSyscallError("connect", err))
	}
	if !el.engine.opts.EdgeTriggeredIO {
		if err := el.poller.ModRead(&c.pollAttachment, false); err != nil {
			return el.close(c, err)
		}
	}
	return el.open(c)
}
