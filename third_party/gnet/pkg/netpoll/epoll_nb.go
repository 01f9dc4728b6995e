// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

//go:build linux && !poll_opt

package netpoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollWaitNB is unix.EpollWait, with the non-blocking wait (msec 0) made
// as a raw system call (ConnX), as gnet's poll_opt build does: it cannot
// block, so the runtime's bookkeeping around it buys nothing. A blocking
// wait stays an ordinary system call, so that the runtime can run other
// goroutines meanwhile.
func epollWaitNB(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	if msec != 0 || len(events) == 0 {
		return unix.EpollWait(epfd, events, msec)
	}
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
