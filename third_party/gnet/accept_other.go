// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnet

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/socket"
)

type acceptScratch struct{}

// acceptStream accepts the next connection of the listening socket fd;
// ap is never valid off Linux (see accept_linux.go).
func (el *eventloop) acceptStream(fd int, _ string) (nfd int, sa unix.Sockaddr, ap netip.AddrPort, err error) {
	nfd, sa, err = socket.Accept(fd)
	return
}

// acceptRetryable: accept(2) failed for the connection it took, not for
// the listener (see accept_linux.go).
func acceptRetryable(err error) bool {
	switch err {
	case unix.EINTR, unix.ECONNRESET, unix.ECONNABORTED, unix.EPROTO:
		return true
	}
	return false
}
