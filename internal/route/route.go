package route

import (
	"bytes"

	"github.com/connx/connx/internal/http1"
)

// Route is one configured route: a name for errors, logs and metrics, and
// what a request must look like to take it. Its position in the slice
// given to [Compile] is its identity: [Table.Lookup] returns it, and among
// routes of equal precedence the earlier one wins.
type Route struct {
	// Name is optional; non-empty names must be unique.
	Name  string
	Match Match
}

// Match is what a route requires of a request. The zero value matches
// every request; each field that is set is one more condition, and all of
// them must hold.
type Match struct {
	// Host is the host the request names (Host field, or the authority of
	// an absolute-form target): "api.example.com" matches it exactly, case
	// and a trailing dot aside, whatever the port; "*.example.com" matches
	// a host with exactly one more label in front ("a.example.com", not
	// "example.com" nor "a.b.example.com"). An IPv6 literal is written in
	// brackets, in its RFC 5952 form ("[2001:db8::1]"). "" means any host.
	Host string
	// Path is an exact path, compared with the normalised request path
	// (without the query). It must start with "/" and be in normalised
	// form (see Normalize). "" means no exact-path condition. Path and
	// PathPrefix are exclusive.
	Path string
	// PathPrefix matches a path and everything below it, segment by
	// segment: "/api" matches "/api", "/api/" and "/api/x", not "/apix".
	// A trailing slash changes nothing: "/api/" matches exactly what
	// "/api" matches, "/api" included. "/" matches every path. It must
	// start with "/" and be in normalised form. "" means no prefix
	// condition.
	PathPrefix string
	// Methods lists the methods accepted, compared exactly (method names
	// are case-sensitive, RFC 9110 9.1): "GET" does not imply "HEAD".
	// Empty means any method.
	Methods []string
	// Headers lists header conditions; every one must hold.
	Headers []HeaderMatch
}

// HeaderMatch is a condition on one request header field. Name is
// required and compared case-insensitively. With Present the condition holds when the
// request has a field of that name, whatever its value (Value must then be
// ""). Otherwise it holds when some field of that name has exactly Value
// (case-sensitive; "" is an empty value). Repeated fields are not joined:
// "X-A: 1" and "X-A: 2" on two lines match Value "1" and Value "2", but
// not "1, 2".
type HeaderMatch struct {
	Name    string
	Value   string
	Present bool
}

// Table is a compiled set of routes, built by Compile. It is immutable:
// any number of goroutines may call Lookup at once. The zero Table and a
// nil *Table match nothing.
type Table struct {
	conds []cond            // per route, by index
	exact map[string]*group // by lower-case host
	wild  map[string]*group // by the suffix after "*."
	any   group             // routes without a host condition
}

// group holds the routes of one host condition, by path condition; each
// []int32 lists route indices in file order.
type group struct {
	paths    map[string][]int32 // by exact path
	prefixes map[string][]int32 // by prefix without its trailing "/" ("/" is "")
	lens     []bool             // lens[n]: some prefix key is n bytes long
	rest     []int32            // routes without a path condition
}

// cond is what remains to check once a route's host and path match.
type cond struct {
	methods []string
	headers []HeaderMatch
}

// maxHost is the longest host, after dropping its port and trailing dot,
// that can match a host route; longer hosts only match routes without a
// host condition.
const maxHost = 255

// Lookup returns the index of the best route for a request, or -1 when no
// route matches. Precedence, over all routes whose conditions all hold:
// an exact host route before a wildcard host route before a route without
// a host; within that, an exact path before the longest path prefix before
// no path condition; then the earlier route. docs/routing.md explains why.
//
// host is the Host field value, or the authority of an absolute-form
// target, exactly as received: it may carry a port, a trailing dot, upper
// case, or be a bracketed IPv6 literal; nil or empty matches only routes
// without a host. path is the path as Normalize returns it, without the
// query; "*" matches only routes without a path condition. method is the
// method token. headers are the request's fields as the parser gives them.
//
// Lookup does not allocate and does not keep any of its arguments.
func (t *Table) Lookup(host, path, method []byte, headers []http1.Header) int {
	if t == nil {
		return -1
	}
	var buf [maxHost]byte
	if h := hostKey(&buf, host); len(h) > 0 {
		if g := t.exact[string(h)]; g != nil {
			if i := t.best(g, path, method, headers); i >= 0 {
				return i
			}
		}
		if len(t.wild) > 0 {
			if j := bytes.IndexByte(h, '.'); j > 0 {
				if g := t.wild[string(h[j+1:])]; g != nil {
					if i := t.best(g, path, method, headers); i >= 0 {
						return i
					}
				}
			}
		}
	}
	return t.best(&t.any, path, method, headers)
}

// hostKey writes the form of host that host routes are keyed by into buf
// and returns it: the port dropped (after "]" for an IPv6 literal, else
// after the first ":"), then one trailing dot, then lower-cased. It
// returns nil when that is empty or longer than maxHost.
func hostKey(buf *[maxHost]byte, host []byte) []byte {
	h := host
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i >= 0 {
			h = h[:i+1]
		}
	} else if i := bytes.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	if len(h) == 0 || len(h) > maxHost {
		return nil
	}
	for i, c := range h {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(h)]
}

// best returns the best route of g for the request, or -1.
func (t *Table) best(g *group, path, method []byte, headers []http1.Header) int {
	if g.paths != nil {
		if ids, ok := g.paths[string(path)]; ok {
			if i := t.first(ids, method, headers); i >= 0 {
				return i
			}
		}
	}
	if g.prefixes != nil {
		// The prefixes that match path are path itself and path cut
		// before each "/" in it; try them longest first. A prefix key of
		// length 0 is "/", which matches when path starts with "/".
		end := len(path)
		if end == 0 {
			end = -1 // no candidate: an empty path matches no prefix
		}
		for end >= 0 {
			if end < len(g.lens) && g.lens[end] {
				if ids, ok := g.prefixes[string(path[:end])]; ok {
					if i := t.first(ids, method, headers); i >= 0 {
						return i
					}
				}
			}
			end = bytes.LastIndexByte(path[:end], '/')
		}
	}
	return t.first(g.rest, method, headers)
}

// first returns the first of ids whose method and header conditions hold,
// or -1.
func (t *Table) first(ids []int32, method []byte, headers []http1.Header) int {
	for _, i := range ids {
		if t.conds[i].holds(method, headers) {
			return int(i)
		}
	}
	return -1
}

func (c *cond) holds(method []byte, headers []http1.Header) bool {
	if len(c.methods) > 0 {
		ok := false
		for _, m := range c.methods {
			if string(method) == m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k := range c.headers {
		if !headerHolds(&c.headers[k], headers) {
			return false
		}
	}
	return true
}

func headerHolds(m *HeaderMatch, headers []http1.Header) bool {
	for k := range headers {
		h := &headers[k]
		if len(h.Name) == len(m.Name) && http1.EqualFold(h.Name, m.Name) &&
			(m.Present || string(h.Value) == m.Value) {
			return true
		}
	}
	return false
}
