package proxy

import (
	"net"
	"net/netip"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// addrPortConn is a gnet.Conn of ConnX's gnet as clientAddr sees it: its
// RemoteAddr (that of the nil embedded Conn) panics, as a reminder that
// the accept path must not build the net.Addr.
type addrPortConn struct {
	gnet.Conn
	remote, local netip.AddrPort
}

func (c addrPortConn) RemoteAddrPort() netip.AddrPort { return c.remote }
func (c addrPortConn) LocalAddr() net.Addr            { return net.TCPAddrFromAddrPort(c.local) }

// addrConn is a gnet.Conn with RemoteAddr only (another gnet, a wrapper).
type addrConn struct {
	gnet.Conn
	remote, local net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }
func (c addrConn) LocalAddr() net.Addr  { return c.local }

// TestClientAddr: clientAddr takes the peer from RemoteAddrPort when the
// connection has it (without calling RemoteAddr) and from RemoteAddr
// otherwise, with the same result; an IPv4 peer of an IPv6 listener is
// unmapped; a Unix socket's peer has no address.
func TestClientAddr(t *testing.T) {
	local := netip.MustParseAddrPort("[::ffff:10.0.0.1]:80")
	for _, tc := range []struct {
		remote string
		want   string
	}{
		{"192.0.2.7:4711", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:4711", "192.0.2.7"},
		{"[2001:db8::7]:4711", "2001:db8::7"},
	} {
		remote := netip.MustParseAddrPort(tc.remote)
		for name, c := range map[string]gnet.Conn{
			"RemoteAddrPort": addrPortConn{remote: remote, local: local},
			"RemoteAddr":     addrConn{remote: net.TCPAddrFromAddrPort(remote), local: net.TCPAddrFromAddrPort(local)},
		} {
			ip, ppc := clientAddr(c, true)
			if ip.String() != tc.want || ppc == nil || ppc.src != remote || ppc.dst != local {
				t.Errorf("%s %s: clientAddr = %v, %+v; want %s, src %v dst %v", name, tc.remote, ip, ppc, tc.want, remote, local)
			}
			if ip, ppc := clientAddr(c, false); ip.String() != tc.want || ppc != nil {
				t.Errorf("%s %s: clientAddr without PROXY = %v, %+v", name, tc.remote, ip, ppc)
			}
		}
	}
	unix := addrConn{remote: &net.UnixAddr{Net: "unix"}, local: &net.UnixAddr{Name: "/sock", Net: "unix"}}
	if ip, _ := clientAddr(unix, false); ip.IsValid() {
		t.Errorf("clientAddr of a Unix socket's peer = %v, want none", ip)
	}
	if ap := peerAddrPort(addrPortConn{}); ap.IsValid() {
		t.Errorf("peerAddrPort with no peer = %v", ap)
	}
}
