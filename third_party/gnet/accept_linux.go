// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/socket"
)

// acceptScratch is where the raw accept4 of a TCP listener leaves the
// peer's address: a field of the event loop, used only on its goroutine,
// so that it does not escape to the heap on every accept (ConnX).
type acceptScratch struct {
	addr unix.RawSockaddrAny
	len  uint32
}

// acceptStream accepts the next connection of the listening socket fd
// (network "tcp" or "unix"), non-blocking and close-on-exec (ConnX).
//
// A TCP listener accepts with a raw accept4 system call, which cannot
// block (the listener is non-blocking), and decodes an IPv4 or IPv6
// peer into ap without allocating; sa is then nil. An IPv6 peer with a
// zone (a link-local address) comes back as sa, as from socket.Accept,
// and so does any other listener's.
func (el *eventloop) acceptStream(fd int, network string) (nfd int, sa unix.Sockaddr, ap netip.AddrPort, err error) {
	if network != "tcp" {
		nfd, sa, err = socket.Accept(fd)
		return
	}
	s := &el.accepted
	s.len = unix.SizeofSockaddrAny
	s.addr.Addr.Family = unix.AF_UNSPEC // in case the kernel leaves it
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd),
		uintptr(unsafe.Pointer(&s.addr)), uintptr(unsafe.Pointer(&s.len)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, nil, ap, e
	}
	nfd = int(r)
	switch s.addr.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.addr))
		ap = netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(p.Port))
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&s.addr))
		if p.Scope_id != 0 {
			sa = &unix.SockaddrInet6{Port: int(ntohs(p.Port)), ZoneId: p.Scope_id, Addr: p.Addr}
			break
		}
		ap = netip.AddrPortFrom(netip.AddrFrom16(p.Addr), ntohs(p.Port))
	}
	return
}

// ntohs returns the port in network byte order at port.
func ntohs(port uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&port))
	return uint16(b[0])<<8 | uint16(b[1])
}

// acceptRetryable: accept(2) failed for the connection it took off the
// queue, not for the listener. Linux also passes a network error already
// pending on the new connection as accept's own error (accept(2), "Error
// handling"): a client or the network can cause these, and the next
// accept goes on. (EPERM and EACCES come from a security module before
// the connection leaves the queue, so they would come back at once:
// acceptFailed pauses on them.)
func acceptRetryable(err error) bool {
	switch err {
	case unix.EINTR, unix.ECONNRESET, unix.ECONNABORTED,
		unix.ENETDOWN, unix.EPROTO, unix.ENOPROTOOPT, unix.EHOSTDOWN,
		unix.ENONET, unix.EHOSTUNREACH, unix.ENETUNREACH:
		return true
	}
	return false
}
