// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawRead reads from the non-blocking socket fd with a raw system call
// (ConnX): the read never blocks, so the runtime's bookkeeping around an
// ordinary system call (entersyscall and exitsyscall) buys nothing.
// It returns what unix.Read returns.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
