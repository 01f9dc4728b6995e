package proxy

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// gnet owns the listening sockets (one per event loop with SO_REUSEPORT)
// and offers no way to close them without stopping the engine, which
// closes every connection too. A graceful shutdown needs the listeners
// gone while the connections finish, so ConnX finds them itself: the
// listening TCP sockets of this process bound to the server's address.
//
// Each one is then replaced, with dup2, by a placeholder: a listening,
// non-blocking Unix socket nobody can reach. The TCP socket closes (new
// connections are refused; the kernel removes it from gnet's epoll set as
// its last descriptor goes), while the descriptor number gnet knows stays
// valid: a readiness event already in flight makes gnet call accept on the
// placeholder, which says EAGAIN, and gnet closes the placeholder when the
// engine stops.

// listenerFDs returns the descriptors of this process's listening TCP
// sockets bound to addr.
func listenerFDs(addr net.Addr) ([]int, error) {
	want, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("not a TCP address: %v", addr)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
			continue
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		if got, ok := sockaddrTCP(sa).(*net.TCPAddr); ok && got.Port == want.Port && got.IP.Equal(want.IP) {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}

// closeListeners closes the listening sockets bound to addr behind gnet's
// back, as described above.
func closeListeners(addr net.Addr) error {
	fds, err := listenerFDs(addr)
	if err != nil {
		return err
	}
	if len(fds) == 0 {
		return fmt.Errorf("no listening socket found for %v", addr)
	}
	ph, err := placeholder()
	if err != nil {
		return err
	}
	defer unix.Close(ph)
	for _, fd := range fds {
		if err := unix.Dup3(ph, fd, unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("closing listener fd %d: %w", fd, err)
		}
	}
	return nil
}

// placeholder returns a listening, non-blocking Unix socket with an
// autobound abstract address.
func placeholder() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
