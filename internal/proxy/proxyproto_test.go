package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/proxyproto"
	"github.com/connx/connx/internal/stats"
)

// xffBackend answers every request with the X-Forwarded-For it got.
func xffBackend(t testing.TB) *countingBackend {
	return newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	})
}

// ppConfig is a config whose listener reads the PROXY header from
// trusted, with header timeout to.
func ppConfig(t testing.TB, backend string, trusted string, to time.Duration, tweak func(*config.Config)) *config.Config {
	return testConfig(t, []string{backend}, func(c *config.Config) {
		c.Server.ProxyProtocol = config.ProxyProtocol{Enabled: true, TrustedSources: []string{trusted}, Timeout: to}
		if tweak != nil {
			tweak(c)
		}
	})
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// ppErrors returns the server's PROXY protocol error counts by reason.
func ppErrors(srv *Server) map[string]uint64 {
	var snap stats.Snapshot
	srv.Stats(&snap)
	m := map[string]uint64{}
	for i, n := range snap.ProxyProtocolErrors {
		if n > 0 {
			m[stats.ProxyProtocolReasons[i]] = n
		}
	}
	return m
}

// TestProxyProtocolReceive: the address of a v1 or v2 header (TLVs and a
// checksum included, sent whole or a byte at a time) is the client's for
// X-Forwarded-For on every request of the connection; LOCAL keeps the
// TCP peer's.
func TestProxyProtocolReceive(t *testing.T) {
	be := xffBackend(t)
	srv := startProxy(t, ppConfig(t, be.addr, "127.0.0.0/8", 5*time.Second, nil))
	src, dst := ap("203.0.113.7:56324"), ap("198.51.100.1:80")
	tlvs := []proxyproto.TLV{{Type: proxyproto.TypeAuthority, Value: []byte("www.example.com")},
		{Type: proxyproto.TypeUniqueID, Value: []byte("id-42")}, {Type: 0xea, Value: []byte("\x01vpce-1")}, {Type: proxyproto.TypeNoop}}
	for _, c := range []struct {
		name   string
		header []byte
		split  bool
		want   string
	}{
		{"v1", proxyproto.AppendV1(nil, src, dst), false, "203.0.113.7"},
		{"v1 bytewise", proxyproto.AppendV1(nil, src, dst), true, "203.0.113.7"},
		{"v1 IPv6", proxyproto.AppendV1(nil, ap("[2001:db8::7]:1"), ap("[2001:db8::1]:80")), false, "2001:db8::7"},
		{"v1 UNKNOWN", proxyproto.AppendV1(nil, netip.AddrPort{}, netip.AddrPort{}), false, "127.0.0.1"},
		{"v2", proxyproto.AppendV2(nil, src, dst), false, "203.0.113.7"},
		{"v2 mapped", proxyproto.AppendV2(nil, ap("[::ffff:203.0.113.8]:2"), ap("[2001:db8::1]:80")), false, "203.0.113.8"},
		{"v2 TLVs", proxyproto.AppendV2(nil, src, dst, tlvs...), false, "203.0.113.7"},
		{"v2 TLVs bytewise", proxyproto.AppendV2(nil, src, dst, tlvs...), true, "203.0.113.7"},
		{"v2 checksum", withCRC32C(proxyproto.AppendV2(nil, src, dst, proxyproto.TLV{Type: proxyproto.TypeCRC32C, Value: make([]byte, 4)})), false, "203.0.113.7"},
		{"v2 LOCAL", proxyproto.AppendV2(nil, netip.AddrPort{}, netip.AddrPort{}), false, "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialProxy(t, srv.Addr().String())
			if c.split {
				for i := range c.header {
					rc.send(string(c.header[i : i+1]))
				}
			} else {
				rc.send(string(c.header))
			}
			for range 2 {
				rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != c.want {
					t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, c.want)
				}
			}
		})
	}
	if m := ppErrors(srv); len(m) != 0 {
		t.Errorf("errors counted: %v", m)
	}
}

// withCRC32C fills in the checksum of a v2 header whose CRC32C TLV is
// zero.
func withCRC32C(h []byte) []byte {
	// The checksum is the header's with the value zeroed (it is last).
	sum := crc32c(h)
	copy(h[len(h)-4:], []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	return h
}

func crc32c(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			crc = crc>>1 ^ 0x82f63b78&-(crc&1)
		}
	}
	return ^crc
}

// TestProxyProtocolAddressEverywhere: the header's address, not the TCP
// peer's, is what the listener's allow/deny and the per-client rate limit
// see.
func TestProxyProtocolAddressEverywhere(t *testing.T) {
	be := xffBackend(t)
	srv := startProxy(t, ppConfig(t, be.addr, "127.0.0.1", 5*time.Second, func(c *config.Config) {
		c.Server.Deny = []string{"203.0.113.0/24"}
		c.RateLimit.Enabled = true
		c.RateLimit.PerIP = true
		c.RateLimit.RequestsPerSec = 0.001
		c.RateLimit.Burst = 1
	}))
	ask := func(src string) int {
		rc := dialProxy(t, srv.Addr().String())
		rc.send(string(proxyproto.AppendV1(nil, ap(src), ap("198.51.100.1:80"))) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _ := rc.response("GET")
		return resp.StatusCode
	}
	if code := ask("203.0.113.7:1"); code != http.StatusForbidden {
		t.Errorf("denied address: %d, want 403", code)
	}
	// One request per client address: a second from the same address is
	// limited, one from another is not.
	for i, c := range []struct {
		src  string
		code int
	}{{"192.0.2.1:1", 200}, {"192.0.2.1:2", 429}, {"192.0.2.2:1", 200}} {
		if code := ask(c.src); code != c.code {
			t.Errorf("request %d from %s: %d, want %d", i, c.src, code, c.code)
		}
	}
	if snap := settledStats(t, srv, 3); snap.Denied != 1 {
		t.Errorf("denied %d, want 1", snap.Denied)
	}
}

// TestProxyProtocolHostile: each bad header closes the connection with
// nothing answered and nothing forwarded, and counts its reason.
func TestProxyProtocolHostile(t *testing.T) {
	be := xffBackend(t)
	v2 := proxyproto.AppendV2(nil, ap("203.0.113.7:1"), ap("198.51.100.1:80"))
	long := "PROXY TCP4 203.0.113.7 198.51.100.1 1 80" + strings.Repeat(" ", 100) + "\r\n"
	for _, c := range []struct {
		name, reason string
		trusted      string
		send         string
		halfClose    bool
	}{
		{"untrusted", "untrusted", "10.0.0.0/8", string(v2) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"truncated v2", "truncated", "127.0.0.1", string(v2[:20]), true},
		{"v1 over 107 bytes", "v1_too_long", "127.0.0.1", long, false},
		{"never completes", "timeout", "127.0.0.1", "PROXY TCP4 203.0.113.7 ", false},
		{"no header", "signature", "127.0.0.1", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"v2 bad TLV", "v2_tlv", "127.0.0.1", string(badTLV(v2)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startProxy(t, ppConfig(t, be.addr, c.trusted, 300*time.Millisecond, nil))
			rc := dialProxy(t, srv.Addr().String())
			_, _ = rc.c.Write([]byte(c.send)) // the proxy may have closed already
			if c.halfClose {
				_ = rc.c.(*net.TCPConn).CloseWrite()
			}
			rc.expectClosed()
			waitFor(t, c.reason+" counted", func() bool { return ppErrors(srv)[c.reason] == 1 })
			if m := ppErrors(srv); len(m) != 1 {
				t.Errorf("errors %v, want only %s", m, c.reason)
			}
		})
	}
	if n := be.conns.Load(); n != 0 {
		t.Errorf("the backend got %d connections", n)
	}
	// A connection that closes before sending anything (a TCP health
	// check) is not an error.
	srv := startProxy(t, ppConfig(t, be.addr, "127.0.0.1", 5*time.Second, nil))
	rc := dialProxy(t, srv.Addr().String())
	rc.c.Close()
	waitFor(t, "the empty connection gone", func() bool { return srv.Active() == 0 })
	if m := ppErrors(srv); len(m) != 0 {
		t.Errorf("errors %v for an empty connection", m)
	}
}

// badTLV appends a TLV to v2 header h whose length runs past the header.
func badTLV(h []byte) []byte {
	h = append(h, 0x04, 0x00, 0x09, 'x')
	n := int(h[14])<<8 | int(h[15])
	n += 4
	h[14], h[15] = byte(n>>8), byte(n)
	return h
}

// TestProxyProtocolTLS: on the TLS listener the header comes before the
// handshake; a bad header closes the connection before it.
func TestProxyProtocolTLS(t *testing.T) {
	be := xffBackend(t)
	e := newTLSEnv(t, be.addr, func(c *config.Config) {
		c.Server.ProxyProtocol = config.ProxyProtocol{Enabled: true, TrustedSources: []string{"127.0.0.1"}, Timeout: 5 * time.Second}
	})
	for _, c := range []struct {
		name   string
		header []byte
		want   string
	}{
		{"v1", proxyproto.AppendV1(nil, ap("203.0.113.7:1"), ap("198.51.100.1:443")), "203.0.113.7"},
		{"v2", proxyproto.AppendV2(nil, ap("[2001:db8::7]:1"), ap("[2001:db8::1]:443")), "2001:db8::7"},
		{"v2 LOCAL", proxyproto.AppendV2(nil, netip.AddrPort{}, netip.AddrPort{}), "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			nc, err := net.DialTimeout("tcp", e.addr, ioTimeout)
			mustf(t, err, "dial")
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(ioTimeout))
			_, err = nc.Write(c.header)
			mustf(t, err, "header")
			tc := tls.Client(nc, e.client("example.com"))
			mustf(t, tc.Handshake(), "handshake")
			if code, body := tlsGet(t, tc, bufio.NewReader(tc), "/"); code != 200 || body != c.want {
				t.Fatalf("%d %q, want 200 %q", code, body, c.want)
			}
		})
	}
	nc, err := net.DialTimeout("tcp", e.addr, ioTimeout)
	mustf(t, err, "dial")
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tls.Client(nc, e.client("example.com")).Handshake(); err == nil {
		t.Fatal("a handshake without a PROXY header succeeded")
	}
	waitFor(t, "signature counted", func() bool { return ppErrors(e.srv)["signature"] == 1 })
}

// ppBackend is a backend that reads the PROXY header on each connection
// and answers every request with the source it carried ("NONE" for a
// connection without one); it counts connections and headers.
type ppBackend struct {
	addr  string
	mu    sync.Mutex
	conns []string // the source of each connection's header, in order
	reqs  atomic.Int64
}

func newPPBackend(t testing.TB) *ppBackend {
	b := &ppBackend{}
	b.addr = rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var buf []byte
		var h proxyproto.Header
		src := "LOCAL"
		for {
			x, err := br.ReadByte()
			if err != nil {
				return
			}
			buf = append(buf, x)
			_, err = proxyproto.Parse(buf, &h)
			if err == nil {
				if s, ok := h.Client(); ok {
					src = s.String()
				}
				break
			}
			if err == proxyproto.ErrSignature {
				src = "NONE"
				br = bufio.NewReader(io.MultiReader(bytes.NewReader(buf), br))
				break
			}
			if err != proxyproto.ErrNeedMore {
				return
			}
		}
		b.mu.Lock()
		b.conns = append(b.conns, src)
		b.mu.Unlock()
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			b.reqs.Add(1)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(src), src)
		}
	})
	return b
}

func (b *ppBackend) headers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.conns...)
}

// TestProxyProtocolSend: a pool's backends get the header first on each
// new connection, with the client's address and port; an idle
// connection is reused only by the client it was opened for, and a full
// pool makes room for the newest.
func TestProxyProtocolSend(t *testing.T) {
	for _, v := range []string{config.ProxyProtocolV1, config.ProxyProtocolV2} {
		t.Run(v, func(t *testing.T) {
			b := newPPBackend(t)
			srv := startProxy(t, testConfig(t, []string{b.addr}, func(c *config.Config) {
				c.Server.EventLoops = 1 // one idle pool for every client
				c.Upstream.ProxyProtocol = v
				c.Upstream.MaxIdlePerBackend = 1
			}))
			get := func(rc *rawClient) string {
				rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, body := rc.response("GET")
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				return body
			}
			a, bc := dialProxy(t, srv.Addr().String()), dialProxy(t, srv.Addr().String())
			aSrc, bSrc := a.c.LocalAddr().String(), bc.c.LocalAddr().String()
			steps := []struct {
				rc    *rawClient
				want  string
				conns int
			}{
				{a, aSrc, 1},  // a new connection
				{a, aSrc, 1},  // a's, idle
				{bc, bSrc, 2}, // not a's: a new one, which evicts a's from the full pool
				{bc, bSrc, 2}, // b's, idle
				{a, aSrc, 3},  // a's was evicted
			}
			for i, s := range steps {
				if got := get(s.rc); got != s.want {
					t.Fatalf("step %d: the backend learned %q, want %q", i, got, s.want)
				}
				if n := len(b.headers()); n != s.conns {
					t.Fatalf("step %d: %d backend connections (%v), want %d", i, n, b.headers(), s.conns)
				}
			}
		})
	}
}

// TestProxyProtocolThrough: the address a PROXY header brought in is the
// one sent on to a backend.
func TestProxyProtocolThrough(t *testing.T) {
	b := newPPBackend(t)
	srv := startProxy(t, ppConfig(t, b.addr, "127.0.0.1", 5*time.Second, func(c *config.Config) {
		c.Upstream.ProxyProtocol = config.ProxyProtocolV2
	}))
	rc := dialProxy(t, srv.Addr().String())
	rc.send(string(proxyproto.AppendV1(nil, ap("203.0.113.7:4242"), ap("198.51.100.1:80"))) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != "203.0.113.7:4242" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// TestProxyProtocolHealthCheck: active checks of a pool that sends the
// header send a LOCAL one (v1: UNKNOWN), which such a backend requires.
func TestProxyProtocolHealthCheck(t *testing.T) {
	for _, v := range []string{config.ProxyProtocolV1, config.ProxyProtocolV2} {
		t.Run(v, func(t *testing.T) {
			b := newPPBackend(t)
			startProxy(t, testConfig(t, []string{b.addr}, func(c *config.Config) {
				c.Upstream.ProxyProtocol = v
				c.HealthCheck.Enabled = true
				c.HealthCheck.Interval = 20 * time.Millisecond
				c.HealthCheck.Jitter = 0
			}))
			waitFor(t, "two checks answered", func() bool { return b.reqs.Load() >= 2 })
			for _, h := range b.headers() {
				if h != "LOCAL" {
					t.Errorf("a check's header had source %q", h)
				}
			}
		})
	}
}

// TestProxyProtocolSendReload: a reload that makes a pool send the
// header does not reuse a connection that served requests without one
// (a header in the middle of its stream would be garbage to the
// backend); one that turns it off does not reuse a connection bound to
// a client.
func TestProxyProtocolSendReload(t *testing.T) {
	b := newPPBackend(t)
	cfg := func(v string) *config.Config {
		return testConfig(t, []string{b.addr}, func(c *config.Config) {
			c.Server.EventLoops = 1
			c.Upstream.ProxyProtocol = v
		})
	}
	srv := startProxy(t, cfg(""))
	rc := dialProxy(t, srv.Addr().String())
	src := rc.c.LocalAddr().String()
	for i, s := range []struct {
		v, want string
		conns   int
	}{
		{"", "NONE", 1}, // a connection without a header
		{"v2", src, 2},  // not that one: a new one with the header
		{"v2", src, 2},  // that one again
		{"", "NONE", 2}, // not that one (closed): the first, idle all along
	} {
		if i == 1 || i == 3 {
			mustf(t, srv.Reload(cfg(s.v)), "reload")
		}
		rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := rc.response("GET"); resp.StatusCode != 200 || body != s.want {
			t.Fatalf("step %d: %d %q, want %q", i, resp.StatusCode, body, s.want)
		}
		if n := len(b.headers()); n != s.conns {
			t.Fatalf("step %d: %d backend connections %v, want %d", i, n, b.headers(), s.conns)
		}
	}
}

// TestProxyProtocolSendH2: a request that came as an HTTP/2 stream (ALPN
// h2 and h2c) sends its client's address to a backend, like an HTTP/1.1
// request, not a LOCAL header (streams have no socket of their own).
func TestProxyProtocolSendH2(t *testing.T) {
	b := newPPBackend(t)
	e := newTLSEnv(t, b.addr, func(c *config.Config) {
		c.Upstream.ProxyProtocol = config.ProxyProtocolV2
		c.Server.H2C = true
	})
	for _, tc := range []struct {
		name string
		c    *http.Client
		url  string
	}{
		{"h2", h2Client(t, e), "https://" + e.addr + "/"},
		{"h2c", h2Client(t, nil), "http://" + e.plain + "/"},
	} {
		resp, body := h2Do(t, tc.c, "GET", tc.url, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "127.0.0.1:") {
			t.Errorf("%s: the backend learned %q (status %d), want the client's 127.0.0.1:port", tc.name, body, resp.StatusCode)
		}
	}
}
