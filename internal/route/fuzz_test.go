package route

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/connx/connx/internal/http1"
)

// The fuzz tests check Lookup and Normalize against reference
// implementations written plainly, for clarity rather than speed.

// refLookup is the precedence rule as docs/routing.md states it: among all
// routes whose conditions hold, the smallest (host tier, path tier,
// -prefix length, index).
func refLookup(routes []Route, r req) int {
	best := -1
	var bestRank [4]int
	for i, rt := range routes {
		rank, ok := refRank(rt.Match, r)
		if !ok {
			continue
		}
		rank[3] = i
		if best < 0 || slices.Compare(rank[:], bestRank[:]) < 0 {
			best, bestRank = i, rank
		}
	}
	return best
}

// refRank reports whether m matches r, and the rank of the match (lower
// is better; the index is left 0).
func refRank(m Match, r req) (rank [4]int, ok bool) {
	// Host: 0 exact, 1 wildcard, 2 none.
	rank[0] = 2
	if m.Host != "" {
		host := r.host
		if strings.HasPrefix(host, "[") {
			if i := strings.Index(host, "]"); i >= 0 {
				host = host[:i+1]
			}
		} else {
			host, _, _ = strings.Cut(host, ":")
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		pattern := strings.ToLower(strings.TrimSuffix(m.Host, "."))
		if suffix, wild := strings.CutPrefix(pattern, "*."); wild {
			label, rest, found := strings.Cut(host, ".")
			if !found || label == "" || rest != suffix {
				return rank, false
			}
			rank[0] = 1
		} else {
			if host != pattern {
				return rank, false
			}
			rank[0] = 0
		}
	}
	// Path: 0 exact, 1 prefix (then longer first), 2 none.
	switch {
	case m.Path != "":
		if r.path != m.Path {
			return rank, false
		}
		rank[1] = 0
	case m.PathPrefix != "":
		c := strings.TrimSuffix(m.PathPrefix, "/")
		below := len(r.path) > len(c) && r.path[len(c)] == '/'
		same := len(r.path) == len(c) && c != ""
		if !strings.HasPrefix(r.path, c) || !below && !same {
			return rank, false
		}
		rank[1], rank[2] = 1, -len(c)
	default:
		rank[1] = 2
	}
	method := r.method
	if method == "" {
		method = "GET"
	}
	if len(m.Methods) > 0 && !slices.Contains(m.Methods, method) {
		return rank, false
	}
	for _, hm := range m.Headers {
		found := false
		for _, line := range r.headers {
			name, value, _ := strings.Cut(line, ":")
			if strings.EqualFold(name, hm.Name) && (hm.Present || strings.TrimSpace(value) == hm.Value) {
				found = true
			}
		}
		if !found {
			return rank, false
		}
	}
	return rank, true
}

// Choices the fuzzer picks routes from, and the requests every table is
// checked with.
var (
	fuzzHosts   = []string{"", "a.example.com", "*.example.com", "B.example.com.", "*.a.example.com", "[::1]", "example.com", "*.com"}
	fuzzPaths   = []string{"/", "/a", "/a/", "/a/b", "/ab", "/a/b/c", "/b", "/a/b/"}
	fuzzMethods = []string{"GET", "POST", "PUT"}
	fuzzHeaders = []HeaderMatch{{Name: "X", Value: "1"}, {Name: "x", Value: "2"}, {Name: "X", Present: true}, {Name: "Y", Present: true}, {Name: "Y", Value: ""}}

	fuzzReqHosts = []string{"", "A.EXAMPLE.COM:80", "a.example.com.", "b.example.com", "x.example.com",
		"x.a.example.com", "example.com", "a.b.example.com", "[::1]:8080", ".example.com"}
	fuzzReqPaths   = []string{"/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/b", "/a/bc", "*", "/a/b/c/d"}
	fuzzReqMethods = []string{"GET", "POST", "DELETE"}
	fuzzReqHeaders = [][]string{nil, {"X: 1"}, {"x: 1", "X: 2"}, {"Y:"}, {"X: 2", "Y: z"}}
)

// fuzzRoutes builds up to 8 routes from data, three bytes each.
func fuzzRoutes(data []byte) []Route {
	var routes []Route
	for len(data) >= 3 && len(routes) < 8 {
		b0, b1, b2 := data[0], data[1], data[2]
		data = data[3:]
		m := Match{Host: fuzzHosts[b0%8]}
		switch p := fuzzPaths[(b1/3)%8]; b1 % 3 {
		case 1:
			m.Path = p
		case 2:
			m.PathPrefix = p
		}
		for k, meth := range fuzzMethods {
			if b2&(1<<k) != 0 {
				m.Methods = append(m.Methods, meth)
			}
		}
		if h := int(b2>>3) % 6; h > 0 {
			m.Headers = append(m.Headers, fuzzHeaders[h-1])
		}
		if h := int(b0>>3) % 8; h > 0 && h <= len(fuzzHeaders) {
			m.Headers = append(m.Headers, fuzzHeaders[h-1])
		}
		routes = append(routes, Route{Match: m})
	}
	return routes
}

// fuzzReqs is the fuzz request space, with each request's fields built
// once.
var fuzzReqs = sync.OnceValue(func() (rs []fuzzReq) {
	for _, h := range fuzzReqHosts {
		for _, p := range fuzzReqPaths {
			for _, m := range fuzzReqMethods {
				for _, hs := range fuzzReqHeaders {
					r := req{host: h, path: p, method: m, headers: hs}
					rs = append(rs, fuzzReq{r, []byte(h), []byte(p), []byte(m), r.fields()})
				}
			}
		}
	}
	return rs
})

type fuzzReq struct {
	req
	host, path, method []byte
	fields             []http1.Header
}

func FuzzLookup(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{1, 2, 0, 2, 5, 0, 0, 8, 0, 6, 0, 1})
	f.Add([]byte{1, 2, 1, 1, 2, 3, 2, 1, 0, 4, 14, 8, 3, 0, 16})
	f.Add([]byte{7, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 3, 2, 0, 23, 6})
	f.Add([]byte{1, 5, 0, 1, 5, 2, 9, 5, 1, 1, 5, 24})
	f.Fuzz(func(t *testing.T, data []byte) {
		routes := fuzzRoutes(data)
		tab, err := Compile(routes)
		// The routes are all well formed, so the only errors are shadowed
		// routes. Check each claim, then drop those routes.
		keep := make([]int, 0, len(routes)) // index in routes of each kept route
		shadowed := make(map[int]int)
		if err != nil {
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("Compile error %v is not joined", err)
			}
			for _, e := range joined.Unwrap() {
				var ce *CompileError
				if !errors.As(e, &ce) || ce.Key != "match" || ce.Earlier < 0 || ce.Earlier >= ce.Route {
					t.Fatalf("unexpected Compile error %v for %+v", e, routes)
				}
				shadowed[ce.Route] = ce.Earlier
			}
		}
		var kept []Route
		for i := range routes {
			if _, bad := shadowed[i]; !bad {
				keep = append(keep, i)
				kept = append(kept, routes[i])
			}
		}
		if err != nil {
			if tab, err = Compile(kept); err != nil {
				t.Fatalf("Compile without the shadowed routes: %v", err)
			}
		}
		for _, fr := range fuzzReqs() {
			r := fr.req
			for k, e := range shadowed {
				_, matchK := refRank(routes[k].Match, r)
				_, matchE := refRank(routes[e].Match, r)
				if matchK && !matchE {
					t.Fatalf("routes[%d] %+v reported shadowed by routes[%d] %+v, but only it matches %+v", k, routes[k].Match, e, routes[e].Match, r)
				}
			}
			want := refLookup(routes, r)
			got := tab.Lookup(fr.host, fr.path, fr.method, fr.fields)
			if got >= 0 {
				got = keep[got]
			}
			if got != want {
				t.Fatalf("Lookup(%+v) = %d, reference %d; routes:\n%s", r, got, want, describeRoutes(routes))
			}
		}
	})
}

func describeRoutes(routes []Route) string {
	var b strings.Builder
	for i, r := range routes {
		fmt.Fprintf(&b, "  [%d] host=%q path=%q prefix=%q methods=%q headers=%s\n",
			i, r.Match.Host, r.Match.Path, r.Match.PathPrefix, r.Match.Methods, headersString(r.Match.Headers))
	}
	return b.String()
}

func headersString(hs []HeaderMatch) string {
	var parts []string
	for _, h := range hs {
		if h.Present {
			parts = append(parts, h.Name+"?")
		} else {
			parts = append(parts, h.Name+"="+h.Value)
		}
	}
	return strings.Join(parts, ",")
}

// refNormalize is Normalize written plainly: split into segments, decode
// each, then resolve dot segments with a stack.
func refNormalize(target string) (path, query string, hasQuery bool, err *PathError) {
	if target == "*" {
		return "*", "", false, nil
	}
	if !strings.HasPrefix(target, "/") {
		return "", "", false, errNotOriginForm
	}
	p, query, hasQuery := strings.Cut(target, "?")
	if hasQuery {
		query = "?" + query
	}
	segs := strings.Split(p[1:], "/")
	var out []string
	trailing := false
	for k, s := range segs {
		d, err := refDecode(s)
		if err != nil {
			return "", "", false, err
		}
		last := k == len(segs)-1
		switch {
		case d == "" || d == ".":
			trailing = trailing || last
		case d == "..":
			if len(out) == 0 {
				return "", "", false, errAboveRoot
			}
			out = out[:len(out)-1]
			trailing = trailing || last
		case strings.HasPrefix(d, ".;") || strings.HasPrefix(d, "..;"):
			return "", "", false, errDotParams
		default:
			out = append(out, d)
		}
	}
	path = "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		path += "/"
	}
	return path, query, hasQuery, nil
}

func refDecode(s string) (string, *PathError) {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for j := 0; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '%':
			if j+2 >= len(s) || !isHexDigit(s[j+1]) || !isHexDigit(s[j+2]) {
				return "", errBadEscape
			}
			v := unhexDigit(s[j+1])<<4 | unhexDigit(s[j+2])
			j += 2
			switch {
			case 'a' <= v && v <= 'z' || 'A' <= v && v <= 'Z' || '0' <= v && v <= '9' || strings.IndexByte("-._~", v) >= 0:
				b.WriteByte(v)
			case v == '/' || v == '\\':
				return "", errEncodedSlash
			case v < 0x20 || v == 0x7f:
				return "", errEncodedControl
			default:
				b.WriteString("%" + hex[v>>4:v>>4+1] + hex[v&15:v&15+1])
			}
		case c <= ' ' || c == 0x7f || c == '\\':
			return "", errBadByte
		case c >= 0x80 || strings.IndexByte("\"#<>[]^`{|}", c) >= 0:
			b.WriteString("%" + hex[c>>4:c>>4+1] + hex[c&15:c&15+1])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhexDigit(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "*", "/a/b?c", "//a/./b/../c/", "/%2e%2E/x", "/a/%2F", "/a/..;/b", "/caf\xc3\xa9/%7e",
		"/a%20b/%c3%a9?q=%2f", "/%", "/a\\b", "/..", "/a/b/.%2e/c/.", "x", "", "/a//b/.?x//y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, target []byte) {
		in := bytes.Clone(target)
		dst := make([]byte, 0, 8)
		path, query, err := Normalize(dst, target)
		if !bytes.Equal(in, target) {
			t.Fatalf("Normalize changed its input %q to %q", in, target)
		}
		wantPath, wantQuery, wantHasQuery, wantErr := refNormalize(string(target))
		if wantErr != nil {
			if err != wantErr {
				t.Fatalf("Normalize(%q) error = %v, reference %v", target, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Normalize(%q) error = %v, reference %q", target, err, wantPath)
		}
		if string(path) != wantPath || string(query) != wantQuery || (query != nil) != wantHasQuery {
			t.Fatalf("Normalize(%q) = %q, %q; reference %q, %q", target, path, query, wantPath, wantQuery)
		}
		if len(path) > 3*len(target) {
			t.Fatalf("Normalize(%q) = %q: longer than 3 × the target", target, path)
		}
		if query != nil && &query[0] != &target[len(target)-len(query)] {
			t.Fatalf("Normalize(%q): query is not a sub-slice of the target", target)
		}
		// Taking the fast path means the slow path would agree.
		if len(path) > 0 && &path[0] == &target[0] && string(path) != "*" {
			slow, err := normalizeSlow(nil, path)
			if err != nil || !bytes.Equal(slow, path) {
				t.Fatalf("fast path kept %q, slow path gives %q, %v", path, slow, err)
			}
		}
		// Idempotent, through the fast path.
		again, q2, err := Normalize(nil, path)
		if err != nil || !bytes.Equal(again, path) || q2 != nil || &again[0] != &path[0] {
			t.Fatalf("Normalize(%q) = %q, %v; not idempotent", path, again, err)
		}
		checkNormalForm(t, path)
	})
}

// checkNormalForm checks the properties docs/routing.md promises of a
// normalised path.
func checkNormalForm(t *testing.T, path []byte) {
	t.Helper()
	p := string(path)
	if p == "*" {
		return
	}
	if !strings.HasPrefix(p, "/") {
		t.Fatalf("normalised path %q does not start with /", p)
	}
	for _, bad := range []string{"//", "/./", "/../", "\\"} {
		if strings.Contains(p, bad) {
			t.Fatalf("normalised path %q contains %q", p, bad)
		}
	}
	for _, bad := range []string{"/.", "/.."} {
		if strings.HasSuffix(p, bad) {
			t.Fatalf("normalised path %q ends in %q", p, bad)
		}
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || !strings.ContainsRune("0123456789ABCDEF", rune(p[i+1])) || !strings.ContainsRune("0123456789ABCDEF", rune(p[i+2])) {
				t.Fatalf("normalised path %q has a malformed or lower-case escape at %d", p, i)
			}
			v := unhexDigit(p[i+1])<<4 | unhexDigit(p[i+2])
			if !keptEscape(v) {
				t.Fatalf("normalised path %q has the escape %s, which is decoded or refused", p, p[i:i+3])
			}
			i += 2
			continue
		}
		if cl := pathClass[c]; cl != cPlain && cl != cSlash {
			t.Fatalf("normalised path %q has the raw byte %q", p, c)
		}
	}
}
