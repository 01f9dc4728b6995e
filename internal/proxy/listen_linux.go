package proxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

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

// A zero-downtime upgrade hands the port over without losing a
// connection. The successor binds its own sockets into the same
// SO_REUSEPORT group, after ours: with ours at indexes 0..n-1 of the
// group's socket array and its m at n..n+m-1. Closing a listener resets
// the connections waiting in its accept queue, so before closing ours:
//
//  1. a classic BPF program on the group sends every new connection to
//     one of the successor's sockets (index n + random % m);
//  2. ours are left to drain: gnet accepts what is queued, and handshakes
//     already under way finish (handshakeGrace);
//  3. they are closed one at a time. Closing the socket at index p moves
//     the last socket of the array to p, so before each close the program
//     is narrowed to indexes that hold successor sockets both before and
//     after it: n .. last-1, which were never moved. When that range is
//     empty (after m-1 closes) it returns n, which is valid before the
//     close; after it, an index past the end makes the kernel fall back
//     to its hash, over sockets that (with m >= n) are all the
//     successor's.

// handshakeGrace is how long a listener is kept after the steering
// program is in place, for handshakes begun before it to complete.
const handshakeGrace = 250 * time.Millisecond

// steer attaches to fd's reuseport group a program returning index
// base + random % count.
func steer(fd, base, count int) error {
	// SKF_AD_OFF + SKF_AD_RANDOM (linux/filter.h): load a random number.
	const loadRandom = 0xfffff000 + 56
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: loadRandom},
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(count)},
		{Code: unix.BPF_ALU | unix.BPF_ADD | unix.BPF_K, K: uint32(base)},
		{Code: unix.BPF_RET | unix.BPF_A},
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
}

// handOverListeners closes this process's listeners on addr without
// losing a connection to the m listeners a successor has added to the
// group, as described above. ctx bounds the wait for the accept queues.
func handOverListeners(ctx context.Context, addr net.Addr, m int) error {
	fds, err := listenerFDs(addr)
	if err != nil {
		return err
	}
	n := len(fds)
	if n == 0 {
		return fmt.Errorf("no listening socket found for %v", addr)
	}
	if m < 1 {
		return closeListeners(addr)
	}
	if err := steer(fds[0], n, m); err != nil {
		return fmt.Errorf("steering new connections to the successor: %w", err)
	}
	grace := time.NewTimer(handshakeGrace)
	defer grace.Stop()
	select {
	case <-grace.C:
	case <-ctx.Done():
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for queued(fds) > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return closeListeners(addr)
		}
	}
	ph, err := placeholder()
	if err != nil {
		return err
	}
	defer unix.Close(ph)
	for k, fd := range fds {
		count := m - 1 - k
		if count < 1 {
			count = 1
		}
		if err := steer(fd, n, count); err != nil {
			return err
		}
		if err := unix.Dup3(ph, fd, unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("closing listener fd %d: %w", fd, err)
		}
	}
	return nil
}

// queued is the number of connections waiting in the accept queues of
// the listeners fds.
func queued(fds []int) int {
	total := 0
	for _, fd := range fds {
		if ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			total += int(ti.Unacked) // for a listener: the accept queue length
		}
	}
	return total
}

// ListenerCount is the number of listening sockets the server holds (one
// per event loop), for a successor to report to its predecessor.
func (s *Server) ListenerCount() int {
	fds, _ := listenerFDs(s.addr)
	return len(fds)
}
