// Copyright (c) 2020 The Gnet Authors. All rights reserved.
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

//go:build dragonfly || freebsd || linux

package socket

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func sysSocket(family, sotype, proto int) (int, error) {
	return unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
}

// sysAccept accepts with the standard library's Accept4 (ConnX):
// golang.org/x/sys's asks the new socket for its protocol
// (getsockopt SO_PROTOCOL, for L2TP addresses) on every IPv4 and IPv6
// accept, one system call per connection that a TCP listener never needs.
func sysAccept(fd int) (int, unix.Sockaddr, error) {
	nfd, sa, err := syscall.Accept4(fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
	if err != nil {
		return nfd, nil, err
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return nfd, &unix.SockaddrInet4{Port: sa.Port, Addr: sa.Addr}, nil
	case *syscall.SockaddrInet6:
		return nfd, &unix.SockaddrInet6{Port: sa.Port, ZoneId: sa.ZoneId, Addr: sa.Addr}, nil
	case *syscall.SockaddrUnix:
		return nfd, &unix.SockaddrUnix{Name: sa.Name}, nil
	}
	return nfd, nil, nil
}
