package proxy

import "golang.org/x/sys/unix"

// pollRDHUP asks poll(2) to report a peer's half-close.
const pollRDHUP = unix.POLLRDHUP
