package http1

import (
	"bytes"
	"strings"
	"testing"
)

// The word-at-a-time scanners against plain byte-at-a-time references.

func valueEndRef(b []byte, i int) int {
	for ; i < len(b); i++ {
		if !valueTab[b[i]] {
			return i
		}
	}
	return len(b)
}

func nameEndRef(b []byte, i int) int {
	for ; i < len(b); i++ {
		if !alnumDashTab[b[i]] {
			return i
		}
	}
	return len(b)
}

// classify returns the flags and kind of a field name (a token) as
// addField finds them.
func classify(name []byte) (flags, kind uint8) {
	if k := knownFor(name); k != nil {
		return k.match(name)
	}
	return 0, kindOther
}

// classifyRef is classify as it was written before knownFor: one
// EqualFold per candidate name.
func classifyRef(name []byte) (flags, kind uint8) {
	switch {
	case EqualFold(name, "te"):
		return FlagHopByHop, kindOther
	case EqualFold(name, "host"):
		return FlagHost, kindHost
	case EqualFold(name, "expect"):
		return 0, kindExpect
	case EqualFold(name, "upgrade"):
		return FlagHopByHop, kindUpgrade
	case EqualFold(name, "trailer"):
		return 0, kindTrailer
	case EqualFold(name, "connection"):
		return FlagHopByHop, kindConnection
	case EqualFold(name, "keep-alive"):
		return FlagHopByHop, kindOther
	case EqualFold(name, "content-length"):
		return FlagContentLength, kindContentLength
	case EqualFold(name, "x-forwarded-for"):
		return FlagXForwardedFor, kindOther
	case EqualFold(name, "x-forwarded-host"):
		return FlagXForwardedHost, kindOther
	case EqualFold(name, "proxy-connection"):
		return FlagHopByHop, kindOther
	case EqualFold(name, "x-forwarded-proto"):
		return FlagXForwardedProto, kindOther
	case EqualFold(name, "transfer-encoding"):
		return FlagHopByHop | FlagTransferEncoding, kindTransferEncoding
	}
	return 0, kindOther
}

var foldNames = []string{"te", "host", "expect", "upgrade", "trailer", "connection", "keep-alive",
	"content-length", "x-forwarded-for", "x-forwarded-host", "proxy-connection",
	"x-forwarded-proto", "transfer-encoding", "close", "chunked", "a", "ab-cd-ef-gh-ij-kl-mn-op"}

// checkScanners compares every scanner with its reference on data, from
// every start offset.
func checkScanners(t *testing.T, data []byte) {
	t.Helper()
	for i := 0; i <= len(data); i++ {
		if got, want := valueEnd(data, i), valueEndRef(data, i); got != want {
			t.Fatalf("valueEnd(%q, %d) = %d, want %d", data, i, got, want)
		}
		if got, want := nameEnd(data, i), nameEndRef(data, i); got != want {
			t.Fatalf("nameEnd(%q, %d) = %d, want %d", data, i, got, want)
		}
	}
	for i := 0; i <= len(data); i++ {
		for j := i; j <= len(data) && j-i <= 24; j++ {
			b := data[i:j]
			if isToken(b) {
				gf, gk := classify(b)
				wf, wk := classifyRef(b)
				if gf != wf || gk != wk {
					t.Fatalf("classify(%q) = %d, %d, want %d, %d", b, gf, gk, wf, wk)
				}
			}
			if !validValue(b) || j-i == 0 {
				continue
			}
			for _, s := range foldNames {
				if k := makeFoldKey(s); foldEqual(b, &k) != EqualFold(b, s) {
					t.Fatalf("foldEqual(%q, %q) = %v", b, s, !EqualFold(b, s))
				}
			}
		}
	}
}

// TestScannersBytes puts every byte value at every position of a run of
// letters long enough for the word loops, then in a run of each class.
func TestScannersBytes(t *testing.T) {
	for _, fill := range []byte{'a', 'Z', '0', '-', ' ', 0x80} {
		base := []byte(strings.Repeat(string(fill), 19))
		for pos := 0; pos < len(base); pos += 3 {
			for c := 0; c < 256; c++ {
				data := append([]byte(nil), base...)
				data[pos] = byte(c)
				for i := 0; i <= 9; i++ {
					if got, want := valueEnd(data, i), valueEndRef(data, i); got != want {
						t.Fatalf("valueEnd(%q, %d) = %d, want %d", data, i, got, want)
					}
					if got, want := nameEnd(data, i), nameEndRef(data, i); got != want {
						t.Fatalf("nameEnd(%q, %d) = %d, want %d", data, i, got, want)
					}
				}
			}
		}
	}
}

// TestClassifyNames checks the known names in mixed case, and the same
// names with one byte changed, against classifyRef.
func TestClassifyNames(t *testing.T) {
	for _, s := range foldNames {
		for _, v := range []string{s, strings.ToUpper(s), titleCase(s)} {
			checkScanners(t, []byte(v))
			for i := 0; i < len(v); i++ {
				for _, c := range []byte{'-', '_', 'a', 'A', '@', '`', '{', '\r', '\r' | 0x20} {
					b := []byte(v)
					b[i] = c
					checkScanners(t, b)
				}
			}
		}
	}
}

// titleCase upper-cases the first letter of s and each letter after a
// '-' ("content-length" -> "Content-Length").
func titleCase(s string) string {
	b := []byte(s)
	for i := range b {
		if (i == 0 || b[i-1] == '-') && 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzScanners checks the word-at-a-time scanners and classify against
// their references. (The fast line path of the head parser is checked
// against the general one by FuzzRequestDifferential and FuzzResponse:
// a head given whole takes the fast path for its field lines, the same
// head given one byte at a time never does.)
func FuzzScanners(f *testing.F) {
	f.Add([]byte(browserRequest))
	f.Add([]byte(typicalResponse))
	f.Add([]byte("Content-Length\tTransfer-Encoding X-FORWARDED-PROTO\x7f\x00\x80keep-alive\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 256 {
			return
		}
		checkScanners(t, data)
	})
}

// fieldLineEdges are field lines at the edges of the fast line path:
// what it takes, and what it must leave to the general path.
var fieldLineEdges = []string{
	"X-A: v\r\n", "X-A:v\r\n", "X-A:\r\n", "X-A: \r\n", "X-A: \t \r\n", "X-A:\tv\t\r\n",
	"X-A: v \t\r\n", "X-A: a\tb  c\r\n", "X-A: \x80\xff\r\n", "X-A: a\x7fb\r\n",
	"X-A: a\x00b\r\n", "X-A: a\rb\r\n", "X-A: a\nb\r\n", "X-A: ab\n", "X-A: ab\r\r\n",
	"X-A: a:b\r\n", "X_A: v\r\n", "X.A~!#$%&'*+^`|: v\r\n", "X A: v\r\n", "X-A : v\r\n",
	": v\r\n", " X-A: v\r\n", "\tX-A: v\r\n", "X-A v\r\n", "X-A\r\n", "X-\x80: v\r\n",
	"Content-Length: 5\r\n", "CONTENT-LENGTH: 5\r\nContent-length: 5\r\n", "Content_Length: 5\r\n",
	"Connection: Keep-Alive\r\n", "Connection: CLOSE\r\n", "Connection: keep-alive, X-A\r\nX-A: 1\r\n",
	"Connection: close\tx\r\n", "Connection:  keep-alive  \r\n", "Connection: keep-alivf\r\n",
	"Transfer-Encoding: chunked\r\n", "Host: b\r\n", "Trailer: Host\r\n",
	"X-Forwarded-For: 1.2.3.4\r\n", "X-Forwarded-Proto: https\r\n", "X-FORWARDED-HOST: a\r\n",
	"Proxy-Connection: x\r\n", "TE: trailers\r\n", "Keep-Alive: 5\r\n", "Upgrade: x\r\n",
	"Expect: 100-continue\r\n", "Abcdefghijklmnopqrstuvwxyz-0123456789: " + strings.Repeat("v", 40) + "\r\n",
}

// TestFastLineEdges parses heads made of fieldLineEdges whole (the fast
// line path) and one byte at a time (the general path only), as requests
// and as responses, and wants the same results.
func TestFastLineEdges(t *testing.T) {
	for _, line := range fieldLineEdges {
		for _, head := range []string{
			"GET / HTTP/1.1\r\nHost: a\r\n" + line + "\r\n",
			"GET / HTTP/1.1\r\n" + line + "Host: a\r\n\r\n",
			"HTTP/1.1 200 OK\r\n" + line + line + "\r\n",
			"HTTP/1.1 200 OK\r\n" + line + "X-B: c\r\n\r\n",
		} {
			data := []byte(head)
			feed := feedRequest
			if strings.HasPrefix(head, "HTTP/") {
				feed = feedResponse
			}
			n, desc, err := feed(data, len(data))
			if sn, sdesc, serr := feed(data, 1); sn != n || serr != err || sdesc != desc {
				t.Errorf("%q\nwhole: %d, %v, %s\nbytes: %d, %v, %s", head, n, err, desc, sn, serr, sdesc)
			}
			for k := 1; k < len(data); k++ {
				if sn, sdesc, serr := parseMoved(data, k); sn != n || serr != err || sdesc != desc {
					t.Errorf("%q split at %d\nwhole: %d, %v, %s\nsplit: %d, %v, %s", head, k, n, err, desc, sn, serr, sdesc)
				}
			}
		}
	}
}

// parseMoved parses data[:k] and then data, each in a buffer of its own
// whose predecessor is then overwritten, and, once the head is complete,
// once more from a third buffer (the result is repeated, re-sliced).
func parseMoved(data []byte, k int) (int, string, error) {
	var r Request
	var p Response
	resp := bytes.HasPrefix(data, []byte("HTTP/"))
	parse := func(buf []byte) (int, string, error) {
		if resp {
			n, err := ParseResponse(buf, &p, nil)
			if err != nil {
				return n, "", err
			}
			return n, describeResponse(&p), nil
		}
		n, err := ParseRequest(buf, &r, nil)
		if err != nil {
			return n, "", err
		}
		return n, describeRequest(&r), nil
	}
	var prev []byte
	move := func(end int) []byte {
		buf := append([]byte(nil), data[:end]...)
		for i := range prev {
			prev[i] = '!'
		}
		prev = buf
		return buf
	}
	n, desc, err := parse(move(k))
	if err != ErrNeedMore {
		return n, desc, err
	}
	if n, desc, err = parse(move(len(data))); err != nil {
		return n, desc, err
	}
	return parse(move(len(data)))
}
