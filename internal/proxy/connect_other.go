//go:build !linux

package proxy

import (
	"net/netip"
	"time"
)

// connect is Linux only (gnet's EventLoop.Adopt): elsewhere upstream
// connections are dialled off the loop.
func (lp *loop) connect(netip.AddrPort, time.Duration, any, *peer, *failure) bool { return false }
