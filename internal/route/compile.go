package route

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// CompileError is one problem with one route. [Compile] returns every
// problem at once as an errors.Join of *CompileError values, in route
// order; use errors.As for the first one or Unwrap() []error for all.
//
// A CompileError is not modified after it is returned.
type CompileError struct {
	// Route is the index of the route in the slice given to Compile.
	Route int
	// Key is the key inside the route: "name", "match.host",
	// "match.path", "match.pathPrefix", "match.methods[1]",
	// "match.headers[0].name", "match.headers[0].value", or "match" for a
	// route that can never match because of an earlier one.
	Key string
	// Earlier is the index of the earlier route that a duplicate name or
	// a shadowed route conflicts with, and -1 for other problems.
	Earlier int
	// Msg says what is wrong.
	Msg string
}

// Error formats e as "routes[i].key: msg".
func (e *CompileError) Error() string {
	return "routes[" + strconv.Itoa(e.Route) + "]." + e.Key + ": " + e.Msg
}

// Path kinds of a compiled match, also the path rank in precedence.
const (
	kindExact = iota
	kindPrefix
	kindNone
)

// compiled is a route's Match in the form Compile compares and places.
type compiled struct {
	host     string // lower case, no trailing dot; "*.suffix" for a wildcard
	wildcard bool
	kind     int
	path     string // kindPrefix: without the trailing "/" ("/" is "")
	cond     cond
}

// Compile checks routes and builds their Table. It reports, each as a
// *CompileError:
//
//   - a non-empty Name used by an earlier route;
//   - a malformed Host: only letters, digits, "-" and "_" in non-empty
//     labels of at most 63 bytes, at most 253 bytes in all, no port; "*"
//     only as the whole first label of a name with at least one more
//     label; an IPv6 literal in brackets and in RFC 5952 form;
//   - a Path or PathPrefix that does not start with "/", is refused by
//     Normalize, is not in normalised form, or has a query; both set;
//   - a method that is not a token; a header name that is not a token, a
//     value that no field can have (control bytes, leading or trailing
//     blanks), or a value together with Present;
//   - a route that can never match because an earlier route has the same
//     host and path condition and accepts every request it accepts (the
//     same or fewer methods and header conditions): "shadowed".
//
// Compile keeps no reference to routes or their slices.
func Compile(routes []Route) (*Table, error) {
	var errs []error
	fail := func(i int, key, msg string, earlier int) {
		errs = append(errs, &CompileError{Route: i, Key: key, Earlier: earlier, Msg: msg})
	}
	t := &Table{conds: make([]cond, len(routes))}
	names := make(map[string]int)
	type bucketKey struct {
		host string
		kind int
		path string
	}
	buckets := make(map[bucketKey][]int) // routes placed, by host and path condition
	all := make([]compiled, len(routes))

	for i := range routes {
		r := &routes[i]
		before := len(errs)
		if r.Name != "" {
			if e, dup := names[r.Name]; dup {
				fail(i, "name", "route name "+strconv.Quote(r.Name)+" is already used by routes["+strconv.Itoa(e)+"]", e)
			} else {
				names[r.Name] = i
			}
		}
		c := &all[i]
		if r.Match.Host != "" {
			host, wildcard, msg := compileHost(r.Match.Host)
			if msg != "" {
				fail(i, "match.host", msg, -1)
			}
			c.host, c.wildcard = host, wildcard
		}
		c.kind = kindNone
		switch m := &r.Match; {
		case m.Path != "" && m.PathPrefix != "":
			fail(i, "match.pathPrefix", "path and pathPrefix cannot both be set", -1)
		case m.Path != "":
			if msg := checkPath(m.Path); msg != "" {
				fail(i, "match.path", msg, -1)
			}
			c.kind, c.path = kindExact, m.Path
		case m.PathPrefix != "":
			if msg := checkPath(m.PathPrefix); msg != "" {
				fail(i, "match.pathPrefix", msg, -1)
			}
			c.kind, c.path = kindPrefix, strings.TrimSuffix(m.PathPrefix, "/")
		}
		for j, m := range r.Match.Methods {
			if !isToken(m) {
				fail(i, "match.methods["+strconv.Itoa(j)+"]", "method "+strconv.Quote(m)+" is not a token", -1)
			} else if !slices.Contains(c.cond.methods, m) {
				c.cond.methods = append(c.cond.methods, m)
			}
		}
		for j, h := range r.Match.Headers {
			key := "match.headers[" + strconv.Itoa(j) + "]"
			switch {
			case !isToken(h.Name):
				fail(i, key+".name", "header name "+strconv.Quote(h.Name)+" is not a token", -1)
			case h.Present && h.Value != "":
				fail(i, key+".value", "a presence condition takes no value", -1)
			case !h.Present && !fieldValue(h.Value):
				fail(i, key+".value", "no header field can have the value "+strconv.Quote(h.Value)+
					" (control bytes, or blanks at either end, which the parser trims)", -1)
			}
			c.cond.headers = append(c.cond.headers, h)
		}
		if len(errs) > before {
			continue
		}

		bk := bucketKey{c.host, c.kind, c.path}
		for _, e := range buckets[bk] {
			if covers(&all[e].cond, &c.cond) {
				msg := "can never match: routes[" + strconv.Itoa(e) + "] comes first with the same host and path " +
					"condition and accepts every request this route accepts"
				if sameCond(&all[e].cond, &c.cond) {
					msg = "can never match: routes[" + strconv.Itoa(e) + "] comes first with the same match"
				}
				fail(i, "match", "shadowed: "+msg, e)
				break
			}
		}
		if len(errs) > before {
			continue
		}
		buckets[bk] = append(buckets[bk], i)
		t.conds[i] = c.cond
		t.place(c, int32(i))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// place adds route i to the group of its host condition.
func (t *Table) place(c *compiled, i int32) {
	g := &t.any
	if c.host != "" {
		m, key := &t.exact, c.host
		if c.wildcard {
			m, key = &t.wild, c.host[2:]
		}
		if *m == nil {
			*m = make(map[string]*group)
		}
		if g = (*m)[key]; g == nil {
			g = new(group)
			(*m)[key] = g
		}
	}
	switch c.kind {
	case kindExact:
		if g.paths == nil {
			g.paths = make(map[string][]int32)
		}
		g.paths[c.path] = append(g.paths[c.path], i)
	case kindPrefix:
		if g.prefixes == nil {
			g.prefixes = make(map[string][]int32)
		}
		g.prefixes[c.path] = append(g.prefixes[c.path], i)
		for len(g.lens) <= len(c.path) {
			g.lens = append(g.lens, false)
		}
		g.lens[len(c.path)] = true
	default:
		g.rest = append(g.rest, i)
	}
}

// covers reports whether every request that satisfies b's method and
// header conditions satisfies a's.
func covers(a, b *cond) bool {
	if len(a.methods) > 0 {
		if len(b.methods) == 0 {
			return false
		}
		for _, m := range b.methods {
			if !slices.Contains(a.methods, m) {
				return false
			}
		}
	}
	for _, ha := range a.headers {
		implied := false
		for _, hb := range b.headers {
			if strings.EqualFold(ha.Name, hb.Name) && (ha.Present || !hb.Present && ha.Value == hb.Value) {
				implied = true
				break
			}
		}
		if !implied {
			return false
		}
	}
	return true
}

// sameCond reports whether a and b accept exactly the same requests.
func sameCond(a, b *cond) bool { return covers(a, b) && covers(b, a) }

// compileHost checks a route's host and returns its key: lower case,
// without a trailing dot, "*.suffix" for a wildcard. msg is "" when host
// is well formed.
func compileHost(host string) (key string, wildcard bool, msg string) {
	h := strings.ToLower(host)
	if strings.HasPrefix(h, "[") {
		inner, ok := strings.CutSuffix(h[1:], "]")
		a, err := netip.ParseAddr(inner)
		if !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return h, false, "malformed IPv6 literal " + strconv.Quote(host) + " (write it in brackets, without a port or zone)"
		}
		if a.String() != inner {
			return h, false, "write the IPv6 literal in its RFC 5952 form, \"[" + a.String() + "]\": hosts are compared as text"
		}
		return h, false, ""
	}
	if n := strings.Count(h, ":"); n > 1 {
		return h, false, "write an IPv6 literal in brackets, as in \"[::1]\""
	} else if n == 1 {
		return h, false, "a host route takes no port (the port of a request is ignored)"
	}
	h = strings.TrimSuffix(h, ".")
	if len(h) > 253 {
		return h, false, "host is longer than 253 bytes"
	}
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		wildcard, name = true, rest
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return h, wildcard, "empty label in host " + strconv.Quote(host)
		case strings.Contains(label, "*"):
			return h, wildcard, "a wildcard must be the whole first label followed by a domain, as in \"*.example.com\""
		case len(label) > 63:
			return h, wildcard, "a label of host " + strconv.Quote(host) + " is longer than 63 bytes"
		}
		for k := 0; k < len(label); k++ {
			if c := label[k]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return h, wildcard, "invalid character " + strconv.QuoteRune(rune(c)) + " in host " + strconv.Quote(host) +
					" (letters, digits, \"-\", \"_\" and \".\" only)"
			}
		}
	}
	return h, wildcard, ""
}

// checkPath checks a route's path or prefix; it returns "" when p is a
// normalised path.
func checkPath(p string) string {
	if p[0] != '/' {
		return "must start with \"/\""
	}
	n, q, err := Normalize(nil, []byte(p))
	switch {
	case err != nil:
		return "can never match: requests for it are refused with 400 (" + err.(*PathError).Reason + ")"
	case q != nil:
		return "must not contain \"?\": routes match the path, not the query"
	case string(n) != p:
		return "not in normalised form: write " + strconv.Quote(string(n)) + " (see docs/routing.md)"
	}
	return ""
}

// isToken reports whether s is a non-empty token (RFC 9110 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for k := 0; k < len(s); k++ {
		c := s[k]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// fieldValue reports whether a parsed header field can have value v:
// HTAB, SP, VCHAR and obs-text only, and no blank at either end.
func fieldValue(v string) bool {
	for k := 0; k < len(v); k++ {
		if c := v[k]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return v == "" || v[0] != ' ' && v[0] != '\t' && v[len(v)-1] != ' ' && v[len(v)-1] != '\t'
}
