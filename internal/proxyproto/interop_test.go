package proxyproto

// Interop with real peers over loopback: the headers AppendV1 and
// AppendV2 write are accepted by HAProxy (bind ... accept-proxy) and
// nginx (listen ... proxy_protocol), which echo the addresses they
// learned; and Parse reads what HAProxy's send-proxy and send-proxy-v2
// (with a CRC32C and a unique ID) write. Each test skips when its peer
// is not installed, unless CONNX_CI=1.
//
// The test binds each listening socket itself and hands it to the peer
// (HAProxy "bind fd@3", nginx's inherited-socket variable NGINX), so a
// connection made before the peer is ready waits in the backlog: no
// polling for readiness.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/testproc"
)

// ask sends header and an HTTP/1.0 request to addr and returns the
// response body.
func ask(t *testing.T, addr string, header []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(header, "GET / HTTP/1.0\r\nHost: test\r\n\r\n"...)); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(resp), "\r\n\r\n")
	if !ok || !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("header %q: response %q", header, resp)
	}
	return strings.TrimSpace(body)
}

type echoCase struct {
	name     string
	src, dst netip.AddrPort
	tlvs     []TLV
}

var echoCases = []echoCase{
	{name: "IPv4", src: ap("203.0.113.7:56324"), dst: ap("198.51.100.1:443")},
	{name: "IPv6", src: ap("[2001:db8::7]:1"), dst: ap("[2001:db8::1]:65535")},
	{name: "mapped", src: ap("[::ffff:203.0.113.8]:2"), dst: ap("[::ffff:198.51.100.2]:80")},
	{name: "mixed", src: ap("203.0.113.9:3"), dst: ap("[2001:db8::1]:8443")},
	{name: "TLVs", src: ap("203.0.113.10:4"), dst: ap("198.51.100.1:443"),
		tlvs: []TLV{{TypeAuthority, []byte("www.example.com")}, {TypeUniqueID, []byte("id-42")}, {0xea, []byte("\x01vpce-1")}, {TypeNoop, nil}}},
}

// want is what a peer should echo for c: "src port dst port", with an
// IPv4 address mapped when the header goes as TCP6.
func (c echoCase) want() string {
	s, d := c.src.Addr().Unmap(), c.dst.Addr().Unmap()
	if !s.Is4() || !d.Is4() {
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	return fmt.Sprintf("%s %d %s %d", s, c.src.Port(), d, c.dst.Port())
}

func TestHAProxyAcceptsOurHeaders(t *testing.T) {
	bin := testproc.Tool(t, "haproxy")
	f, addr := testproc.ListenFile(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	err := os.WriteFile(cfg, []byte(`global
defaults
  mode http
  timeout client 10s
  timeout server 10s
  timeout connect 5s
frontend echo
  bind fd@3 accept-proxy
  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port] %[fc_pp_authority] %[fc_pp_unique_id]\n"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	testproc.RunPeer(t, []*os.File{f}, nil, bin, "-db", "-f", cfg)

	for _, c := range echoCases {
		for v, h := range [][]byte{AppendV1(nil, c.src, c.dst), AppendV2(nil, c.src, c.dst, c.tlvs...)} {
			if v == 0 && c.tlvs != nil {
				continue
			}
			t.Run(fmt.Sprintf("%s v%d", c.name, v+1), func(t *testing.T) {
				want := c.want() // absent TLVs print nothing
				if c.tlvs != nil {
					want = c.want() + " www.example.com id-42"
				}
				if got := ask(t, addr, h); got != want {
					t.Errorf("HAProxy learned %q, want %q", got, want)
				}
			})
		}
	}
	// LOCAL (v2) and UNKNOWN (v1): HAProxy uses the connection's own
	// addresses.
	for _, h := range [][]byte{AppendV2(nil, netip.AddrPort{}, netip.AddrPort{}), AppendV1(nil, netip.AddrPort{}, netip.AddrPort{})} {
		if got := ask(t, addr, h); !strings.HasPrefix(got, "127.0.0.1 ") || !strings.HasSuffix(got, " "+addr) && !strings.HasSuffix(got, " "+strings.Replace(addr, ":", " ", 1)) {
			t.Errorf("header %q: HAProxy learned %q, want the connection's addresses", h, got)
		}
	}
}

func TestNginxAcceptsOurHeaders(t *testing.T) {
	addr := testproc.NginxProxyProtocolEcho(t)

	for _, c := range echoCases {
		for v, h := range [][]byte{AppendV1(nil, c.src, c.dst), AppendV2(nil, c.src, c.dst, c.tlvs...)} {
			if v == 0 && c.tlvs != nil {
				continue
			}
			t.Run(fmt.Sprintf("%s v%d", c.name, v+1), func(t *testing.T) {
				if got := ask(t, addr, h); got != c.want() {
					t.Errorf("nginx learned %q, want %q", got, c.want())
				}
			})
		}
	}
}

// TestParseHAProxyHeaders has HAProxy relay a connection to a listener of
// the test with send-proxy (v1) and send-proxy-v2 with a CRC32C and a
// unique ID, and checks that Parse, fed from the socket as bytes arrive,
// reads the test client's address and leaves the stream after it alone.
func TestParseHAProxyHeaders(t *testing.T) {
	bin := testproc.Tool(t, "haproxy")
	for _, tc := range []struct{ name, server string }{
		{"send-proxy", "send-proxy"},
		{"send-proxy-v2", "send-proxy-v2 proxy-v2-options crc32c,unique-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, front := testproc.ListenFile(t)
			back, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
			err = os.WriteFile(cfg, []byte(`global
defaults
  mode tcp
  timeout client 10s
  timeout server 10s
  timeout connect 5s
frontend relay
  bind fd@3
  unique-id-format conn-%ci-%cp
  default_backend test
backend test
  server s `+back.Addr().String()+` `+tc.server+`
`), 0o644)
			if err != nil {
				t.Fatal(err)
			}
			testproc.RunPeer(t, []*os.File{f}, nil, bin, "-db", "-f", cfg)

			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			s, err := back.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(s)
			var buf []byte
			var h Header
			n, perr := 0, ErrNeedMore
			for perr == ErrNeedMore {
				b, err := r.ReadByte() // one byte at a time, as slowly as possible
				if err != nil {
					t.Fatalf("after %q: %v", buf, err)
				}
				buf = append(buf, b)
				n, perr = Parse(buf, &h)
			}
			if perr != nil {
				t.Fatalf("Parse(%q) = %v", buf, perr)
			}
			client, ok := h.Client()
			if want := ap(c.LocalAddr().String()); !ok || client != want || h.Destination.Addr().Unmap() != ap(front).Addr() || h.Destination.Port() != ap(front).Port() {
				t.Errorf("header %+v: client %v, want %v -> %v", h, client, want, front)
			}
			if h.Version == 2 {
				if _, ok := h.TLV(TypeCRC32C); !ok {
					t.Errorf("no CRC32C TLV in %q", buf)
				}
				if id := fmt.Sprintf("conn-%s-%d", client.Addr(), client.Port()); string(h.UniqueID()) != id {
					t.Errorf("unique ID %q, want %q", h.UniqueID(), id)
				}
			}
			rest := make([]byte, 5)
			if _, err := io.ReadFull(r, rest); err != nil || n != len(buf) || string(rest) != "hello" {
				t.Errorf("after the header: %q, %v", rest, err)
			}
		})
	}
}
