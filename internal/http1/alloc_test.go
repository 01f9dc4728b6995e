package http1

import (
	"net/netip"
	"strings"
	"testing"
)

const browserRequest = "GET /search?q=connx&lang=en HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Connection: keep-alive, X-Trace\r\n" +
	"X-Trace: 1\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Cache-Control: max-age=0\r\n" +
	"\r\n"

const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 01 Jul 2024 12:00:00 GMT\r\n" +
	"Server: backend\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Length: 1234\r\n" +
	"Cache-Control: private, max-age=0\r\n" +
	"Set-Cookie: session=0123456789abcdef; Path=/; HttpOnly\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\n" +
	"\r\n"

func chunkedBody() []byte {
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		sb.WriteString("800;ext=1\r\n" + strings.Repeat("x", 0x800) + "\r\n")
	}
	sb.WriteString("0\r\nX-Checksum: 12345\r\n\r\n")
	return []byte(sb.String())
}

func TestAllocs(t *testing.T) {
	req := []byte(browserRequest)
	resp := []byte(typicalResponse)
	body := chunkedBody()
	bad := []byte("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	var r Request
	var p Response
	var s ChunkedScanner
	tests := []struct {
		name string
		f    func()
	}{
		{"ParseRequest", func() {
			r.Reset()
			if n, err := ParseRequest(req, &r, nil); n != len(req) || err != nil {
				t.Fatalf("ParseRequest = %d, %v", n, err)
			}
		}},
		{"ParseRequest incremental", func() {
			r.Reset()
			for i := 1; i < len(req); i += 37 {
				ParseRequest(req[:i], &r, nil)
			}
			if n, err := ParseRequest(req, &r, nil); n != len(req) || err != nil {
				t.Fatalf("ParseRequest = %d, %v", n, err)
			}
		}},
		{"ParseRequest error", func() {
			r.Reset()
			if _, err := ParseRequest(bad, &r, nil); errStatus(err) != 400 {
				t.Fatalf("ParseRequest = %v", err)
			}
		}},
		{"ParseResponse", func() {
			p.Reset()
			if n, err := ParseResponse(resp, &p, nil); n != len(resp) || err != nil {
				t.Fatalf("ParseResponse = %d, %v", n, err)
			}
		}},
		{"ChunkedScanner.Scan", func() {
			s.Reset()
			if n, done, err := s.Scan(body, nil); n != len(body) || !done || err != nil {
				t.Fatalf("Scan = %d, %v, %v", n, done, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(100, tc.f); a != 0 {
				t.Errorf("%v allocs per run, want 0", a)
			}
		})
	}
}

func TestValidIPv6(t *testing.T) {
	tests := []string{
		"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"2001:db8::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "fe80::",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":1::", "1:::2", "1::2::3", "12345::",
		"::ffff:1.2.3", "::ffff:1.2.3.04", "::ffff:256.1.1.1", "1:2:3:4:5:6:7:1.2.3.4",
		"1.2.3.4", "", ":", "1:", ":1", "g::", "::1.2.3.4:1", "1:2:3:4:5:6::1.2.3.4",
		"ABCD:EF01::", "0:0:0:0:0:0:0:0", "::0.0.0.0", "1::1.2.3.4.5",
	}
	for _, s := range tests {
		t.Run(s, func(t *testing.T) {
			a, err := netip.ParseAddr(s)
			want := err == nil && a.Is6() && a.Zone() == ""
			if got := validIPv6([]byte(s)); got != want {
				t.Errorf("validIPv6(%q) = %v, netip says %v (%v)", s, got, want, err)
			}
		})
	}
}

func FuzzIPv6(f *testing.F) {
	for _, s := range []string{"::1", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1::2::3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		want := err == nil && a.Is6() && a.Zone() == ""
		if got := validIPv6([]byte(s)); got != want {
			t.Errorf("validIPv6(%q) = %v, netip says %v (%v)", s, got, want, err)
		}
	})
}
