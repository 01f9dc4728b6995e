package proxy

import (
	"context"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// connect opens a connection to ap without blocking the loop: a
// non-blocking socket and connect, handed to gnet (EventLoop.Adopt), which
// runs OnOpen once the connection is established, or OnClose with the
// error (connectFailed). The sweep closes it at its deadline
// (connectTick). A failure of the socket or connect call itself is
// handled after the current callback, as a dial failure would be.
// It reports true: the connect is under way (or its failure is).
func (lp *loop) connect(ap netip.AddrPort, timeout time.Duration, owner any, p *peer, why *failure) bool {
	fd, err := connectSocket(ap)
	if err == nil {
		var c gnet.Conn
		if c, err = lp.el.Adopt(fd, net.TCPAddrFromAddrPort(ap), owner); err == nil {
			p.connecting, p.connectBy = c, lp.now+int64(timeout)
			return true
		}
	}
	_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		connectFailed(p, why, err)
		return nil
	}))
	return true
}

// connectSocket returns a non-blocking TCP socket with a connect to ap
// begun (or done), with TCP_NODELAY and TCP keep-alive set as Go's
// dialer sets them (net.Dialer's default keep-alive: probes after 15 s
// idle, every 15 s, 9 of them), which upstream connections had when
// they were dialled (TestUpstreamKeepAlive).
func connectSocket(ap netip.AddrPort) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9)
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		_ = unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}
