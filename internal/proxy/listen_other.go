//go:build !linux

package proxy

import (
	"context"
	"fmt"
	"net"
	"runtime"
)

// Closing gnet's listeners behind its back and steering a SO_REUSEPORT
// group to a successor (listen_linux.go) are Linux-only. Elsewhere (macOS,
// for development) the listeners close when the engine stops, and an
// upgrade's successor gets new connections by the kernel's own spreading.

func closeListeners(addr net.Addr) error {
	return fmt.Errorf("closing the listeners on %v before the engine stops is not supported on %s", addr, runtime.GOOS)
}

func handOverListeners(_ context.Context, addr net.Addr, _ int) error {
	return closeListeners(addr)
}

// ListenerCount is the number of listening sockets the server holds; not
// known outside Linux, where one is assumed.
func (s *Server) ListenerCount() int { return 1 }
