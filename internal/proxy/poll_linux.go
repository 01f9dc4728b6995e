package proxy

import "golang.org/x/sys/unix"

// pollRDHUP asks poll(2) to report a peer's half-close.
const pollRDHUP = unix.POLLRDHUP

// msgMore holds a write's last segment back for the FIN (sockWrite).
const msgMore = unix.MSG_MORE
