package route

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in   string
		path       string // "" with err
		query      string
		hasQuery   bool
		err        *PathError
		sameMemory bool // the fast path: path is a sub-slice of the input
	}{
		{name: "root", in: "/", path: "/", sameMemory: true},
		{name: "plain", in: "/a/b/c.html", path: "/a/b/c.html", sameMemory: true},
		{name: "trailing slash kept", in: "/a/b/", path: "/a/b/", sameMemory: true},
		{name: "sub-delims colon at", in: "/a;b=c/!$&'()*+,:@", path: "/a;b=c/!$&'()*+,:@", sameMemory: true},
		{name: "dots inside names", in: "/.well-known/a..b/...", path: "/.well-known/a..b/...", sameMemory: true},
		{name: "kept escape", in: "/a%20b/%3F%25", path: "/a%20b/%3F%25", sameMemory: true},
		{name: "query untouched", in: "/a?b=%2f&c=../..//%zz", path: "/a", query: "?b=%2f&c=../..//%zz", hasQuery: true, sameMemory: true},
		{name: "empty query", in: "/a?", path: "/a", query: "?", hasQuery: true, sameMemory: true},
		{name: "query of slow path", in: "//a?x//y", path: "/a", query: "?x//y", hasQuery: true},
		{name: "star", in: "*", path: "*", sameMemory: true},

		{name: "decode unreserved", in: "/%61%62%43%7e%2D%5f%30", path: "/abC~-_0"},
		{name: "upper-case hex", in: "/a%3fb%c3%a9", path: "/a%3Fb%C3%A9"},
		{name: "encode non-ASCII", in: "/caf\xc3\xa9", path: "/caf%C3%A9"},
		{name: "encode disallowed ASCII", in: "/\"<>[]^`{|}#", path: "/%22%3C%3E%5B%5D%5E%60%7B%7C%7D%23"},
		{name: "merge slashes", in: "//a///b//", path: "/a/b/"},
		{name: "only slashes", in: "////", path: "/"},
		{name: "dot", in: "/a/./b", path: "/a/b"},
		{name: "trailing dot", in: "/a/.", path: "/a/"},
		{name: "root dot", in: "/.", path: "/"},
		{name: "dotdot", in: "/a/b/../c", path: "/a/c"},
		{name: "trailing dotdot", in: "/a/b/..", path: "/a/"},
		{name: "dotdot to root", in: "/a/..", path: "/"},
		{name: "dotdot after merge", in: "/a//..//b", path: "/b"},
		{name: "encoded dot", in: "/a/%2e/b", path: "/a/b"},
		{name: "encoded dotdot", in: "/a/b/%2E%2e/c", path: "/a/c"},
		{name: "half encoded dotdot", in: "/a/b/.%2e", path: "/a/"},
		{name: "dotdot then dot", in: "/a/b/.././c/.", path: "/a/c/"},
		{name: "dot params allowed elsewhere", in: "/a;.;/...;", path: "/a;.;/...;", sameMemory: true},

		{name: "not origin-form", in: "a/b", err: errNotOriginForm},
		{name: "empty", in: "", err: errNotOriginForm},
		{name: "authority", in: "example.com:443", err: errNotOriginForm},
		{name: "star with more", in: "*x", err: errNotOriginForm},
		{name: "raw backslash", in: "/a\\b", err: errBadByte},
		{name: "space", in: "/a b", err: errBadByte},
		{name: "NUL", in: "/a\x00b", err: errBadByte},
		{name: "tab", in: "/a\tb", err: errBadByte},
		{name: "DEL", in: "/a\x7f", err: errBadByte},
		{name: "CR LF", in: "/a\r\nb", err: errBadByte},
		{name: "encoded slash", in: "/a%2Fb", err: errEncodedSlash},
		{name: "encoded slash lower", in: "/a%2fb", err: errEncodedSlash},
		{name: "encoded backslash", in: "/a%5cb", err: errEncodedSlash},
		{name: "encoded NUL", in: "/a%00", err: errEncodedControl},
		{name: "encoded LF", in: "/a%0A", err: errEncodedControl},
		{name: "encoded DEL", in: "/a%7F", err: errEncodedControl},
		{name: "escape not hex", in: "/a%zz", err: errBadEscape},
		{name: "escape half hex", in: "/a%4g", err: errBadEscape},
		{name: "escape truncated", in: "/a%4", err: errBadEscape},
		{name: "escape truncated by query", in: "/a%4?x", err: errBadEscape},
		{name: "bare percent", in: "/%", err: errBadEscape},
		{name: "above root", in: "/..", err: errAboveRoot},
		{name: "above root later", in: "/a/../..", err: errAboveRoot},
		{name: "above root encoded", in: "/%2e%2e/etc/passwd", err: errAboveRoot},
		{name: "above root after merge", in: "//..", err: errAboveRoot},
		{name: "dotdot params", in: "/a/..;/b", err: errDotParams},
		{name: "dot params", in: "/a/.;x=1/b", err: errDotParams},
		{name: "encoded dotdot params", in: "/a/%2e%2e;/b", err: errDotParams},
		{name: "dotdot params at end", in: "/a/..;", err: errDotParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			dst := make([]byte, 0, 64)
			path, query, err := Normalize(dst, in)
			var want error
			if tt.err != nil {
				want = tt.err
			}
			if err != want {
				t.Fatalf("Normalize(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if err != nil {
				if path != nil || query != nil {
					t.Errorf("Normalize(%q) = %q, %q with an error", tt.in, path, query)
				}
				return
			}
			if string(path) != tt.path || string(query) != tt.query || (query != nil) != tt.hasQuery {
				t.Errorf("Normalize(%q) = %q, %q (query nil: %v), want %q, %q", tt.in, path, query, query == nil, tt.path, tt.query)
			}
			if same := &path[0] == &in[0]; same != tt.sameMemory {
				t.Errorf("Normalize(%q): path shares the input's memory: %v, want %v", tt.in, same, tt.sameMemory)
			}
			if !tt.sameMemory && &path[0] != &dst[:1][0] {
				t.Errorf("Normalize(%q): a rewritten path is not in dst", tt.in)
			}
			if tt.sameMemory && cap(path) != len(path) {
				t.Errorf("Normalize(%q): cap(path) = %d, want it clipped to %d", tt.in, cap(path), len(path))
			}
			if query != nil && &query[0] != &in[len(in)-len(query)] {
				t.Errorf("Normalize(%q): query is a copy", tt.in)
			}
			// Idempotent, and already normal means the fast path.
			again, _, err := Normalize(nil, path)
			if err != nil || string(again) != string(path) || &again[0] != &path[0] {
				t.Errorf("Normalize(Normalize(%q)) = %q, %v; want %q from the fast path", tt.in, again, err, path)
			}
		})
	}
}

func TestNormalizeGrowsSmallDst(t *testing.T) {
	in := []byte("/" + strings.Repeat("\xff", 100))
	path, _, err := Normalize(make([]byte, 0, 4), in)
	if err != nil || string(path) != "/"+strings.Repeat("%FF", 100) {
		t.Fatalf("Normalize = %q, %v", path, err)
	}
}

// TestNormalizeDstLongEnough checks the documented bound: a dst of
// 3 × len(target) is never grown.
func TestNormalizeDstLongEnough(t *testing.T) {
	for _, in := range []string{"/\xff\xff\xff", "/" + strings.Repeat("|", 50) + "//", "//" + strings.Repeat("%e9", 9)} {
		dst := make([]byte, 0, 3*len(in))
		path, _, err := Normalize(dst, []byte(in))
		if err != nil || &path[0] != &dst[:1][0] {
			t.Errorf("Normalize(%q) = %q, %v: not written into dst", in, path, err)
		}
	}
}

func TestNormalizeAllocs(t *testing.T) {
	fast := []byte("/api/v1/users/12345?expand=orders&limit=10")
	slow := []byte("/api//v1/./users/%7e12345/../12345?expand=orders")
	dst := make([]byte, 0, 3*len(slow))
	for _, in := range [][]byte{fast, slow} {
		if n := testing.AllocsPerRun(100, func() {
			if _, _, err := Normalize(dst, in); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Normalize(%q) allocates %.1f times", in, n)
		}
	}
}
