//go:build !linux

package proxy

import "golang.org/x/sys/unix"

// pollRDHUP: no POLLRDHUP outside Linux; POLLHUP reports a full close.
const pollRDHUP = unix.POLLHUP

// msgMore: no MSG_MORE outside Linux; the FIN leaves on its own.
const msgMore = 0
