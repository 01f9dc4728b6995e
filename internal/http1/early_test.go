package http1

import "testing"

// TestParseRequestFailsFast checks that a byte that cannot start a request
// line is rejected as soon as it arrives, without waiting for a line end
// (which a client that sent one stray byte never sends): nginx and HAProxy
// answer such a connection with 400 at once. Empty lines before the
// request line (RFC 9112 2.2) still wait.
func TestParseRequestFailsFast(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int // -1: ErrNeedMore
	}{
		{"NUL", "\x00", 400},
		{"NUL after empty lines", "\r\n\r\n\x00", 400},
		{"space", " ", 400},
		{"TAB", "\t", 400},
		{"separator", "(", 400},
		{"DEL", "\x7f", 400},
		{"obs-text", "\xff", 400},
		{"TLS handshake", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
		{"CR then not LF", "\rX", 400},
		{"CR then NUL", "\r\x00", 400},
		{"LF", "\n", 400},
		{"method start", "G", -1},
		{"extension method start", "M-", -1},
		{"lone CR", "\r", -1},
		{"empty line", "\r\n", -1},
		{"empty lines then method", "\r\n\r\nP", -1},
		{"empty lines then CR", "\r\n\r\n\r", -1},
		{"token char", "~", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tc.in), &r, nil)
			if got := errStatus(err); got != tc.status || n != 0 {
				t.Fatalf("ParseRequest(%q) = %d, %v (status %d); want status %d", tc.in, n, err, got, tc.status)
			}
			var rb Request
			if _, _, errb := parseRequestBytewise([]byte(tc.in), &rb, nil); errb != err {
				t.Errorf("byte at a time: %v, want %v", errb, err)
			}
		})
	}
	// A complete line gives the error of its first byte alone.
	for _, in := range []string{"\x00GET / HTTP/1.1\r\n", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\r\r\n", "(\r\n"} {
		var a, b Request
		_, ea := ParseRequest([]byte(in), &a, nil)
		_, eb := ParseRequest([]byte(in[:2]), &b, nil)
		if ea == nil || ea != eb {
			t.Errorf("%q: whole %v, first two bytes %v", in, ea, eb)
		}
	}
}
