package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/connx/connx/internal/acl"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/ratelimit"
	"github.com/connx/connx/internal/route"
)

// Routing, on the event loop: a request head is matched against the
// snapshot's route table (internal/route) on its normalised path, and the
// route's action decides what happens to it. Everything a route needs per
// request is prepared when the snapshot is built: the fields to add as
// wire bytes, the names to drop, a respond route's whole response, a
// redirect's location in parts. Lookup and the rewrite allocate nothing.

// routeIDs gives each route a statistics slot by its label, kept across
// reloads so that a route's counters survive them.
type routeIDs map[string]int

func (ids routeIDs) id(label string) int {
	if id, ok := ids[label]; ok {
		return id
	}
	id := len(ids)
	ids[label] = id
	return id
}

// Route actions.
const (
	actPool uint8 = iota
	actRedirect
	actRespond
)

// routeAct is one route as a snapshot serves it.
type routeAct struct {
	label  string // the route's name, or "routes[i]"
	id     int    // statistics slot (routeIDs)
	action uint8
	pool   *pool // actPool

	// actRedirect: the location in parts, the status and the fixed part
	// of the head (status line); actRespond: the head up to its last
	// fields, and the body.
	code     int
	location []locPart
	head     []byte
	body     []byte

	strip   string // stripPrefix, without a trailing "/"
	add     string // addPrefix, without a trailing "/"
	host    string // hostRewrite
	setReq  []byte // setRequestHeaders as wire lines
	dropReq []string
	// fwd are the X-Forwarded-* fields ConnX would write that the route
	// sets or removes instead (fwdFor, fwdProto, fwdHost).
	fwd     uint8
	setResp []byte // setResponseHeaders as wire lines
	// dropResp are the response fields not passed on: those removed and
	// those set.
	dropResp []string

	to      timeouts
	limiter *ratelimit.Limiter // routes[].rateLimit; nil: none
	access  acl.Policy         // routes[].allow / deny
}

// locPart is a literal piece of a redirect location or a placeholder.
type locPart struct {
	lit  string
	kind byte // 0 literal, 'h' {host}, 'p' {path}, 'q' {query}
}

// buildRoutes compiles cfg's routes into sn; prev (or nil) lends each
// route with the same label its rate-limit buckets.
func (sn *snapshot) buildRoutes(prev *snapshot, ids routeIDs) error {
	cfg := sn.cfg
	if len(cfg.Routes) == 0 {
		return nil
	}
	t, err := route.Compile(cfg.RouteTable())
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	sn.routes = t
	sn.acts = make([]routeAct, len(cfg.Routes))
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		a := &sn.acts[i]
		a.label = r.Name
		if a.label == "" {
			a.label = "routes[" + strconv.Itoa(i) + "]"
		}
		a.id = ids.id(a.label)
		a.access = r.AccessPolicy()
		a.to = timeoutsOf(&r.Timeouts)
		if r.Timeouts == (config.Timeouts{}) {
			a.to = sn.to
		}
		switch {
		case r.Redirect != nil:
			a.action = actRedirect
			a.code = r.Redirect.Code
			a.location = parseLocation(r.Redirect.Location)
			a.head = fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nLocation: ", a.code, http.StatusText(a.code))
		case r.Respond != nil:
			a.action = actRespond
			a.code = r.Respond.Status
			a.head, a.body = respondParts(r.Respond)
		default:
			a.action = actPool
			if a.pool = sn.poolNamed(r.Pool); a.pool == nil {
				return fmt.Errorf("routes[%d].pool: unknown pool %q", i, r.Pool)
			}
		}
		a.strip = strings.TrimSuffix(r.StripPrefix, "/")
		a.add = strings.TrimSuffix(r.AddPrefix, "/")
		a.host = r.HostRewrite
		for _, h := range r.SetRequestHeaders {
			a.setReq = fmt.Appendf(a.setReq, "%s: %s\r\n", h.Name, h.Value)
			a.dropReq = append(a.dropReq, h.Name)
		}
		a.dropReq = append(a.dropReq, r.RemoveRequestHeaders...)
		for _, name := range a.dropReq {
			a.fwd |= forwardedField(name)
		}
		for _, h := range r.SetResponseHeaders {
			a.setResp = fmt.Appendf(a.setResp, "%s: %s\r\n", h.Name, h.Value)
			a.dropResp = append(a.dropResp, h.Name)
		}
		a.dropResp = append(a.dropResp, r.RemoveResponseHeaders...)
		if r.RateLimit != nil && r.RateLimit.Enabled {
			var lent *ratelimit.Limiter
			if p := prev.act(a.label); p != nil {
				lent = p.limiter
			}
			lim, err := newLimiter(r.RateLimit, lent, "route:"+a.label)
			if err != nil {
				return fmt.Errorf("routes[%d].rateLimit: %w", i, err)
			}
			a.limiter = lim
		}
	}
	return nil
}

// The X-Forwarded-* fields ConnX writes on every forwarded request,
// as bits of routeAct.fwd.
const (
	fwdFor uint8 = 1 << iota
	fwdProto
	fwdHost
)

// forwardedField returns the fwd bit of the field named name, or 0.
func forwardedField(name string) uint8 {
	switch {
	case strings.EqualFold(name, "X-Forwarded-For"):
		return fwdFor
	case strings.EqualFold(name, "X-Forwarded-Proto"):
		return fwdProto
	case strings.EqualFold(name, "X-Forwarded-Host"):
		return fwdHost
	}
	return 0
}

// act returns the snapshot's route labelled label, or nil; sn may be nil.
func (sn *snapshot) act(label string) *routeAct {
	if sn == nil {
		return nil
	}
	for i := range sn.acts {
		if sn.acts[i].label == label {
			return &sn.acts[i]
		}
	}
	return nil
}

// parseLocation splits a redirect location (validated by config) into
// literals and placeholders.
func parseLocation(loc string) []locPart {
	var parts []locPart
	for rest := loc; rest != ""; {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 || j < i {
			parts = append(parts, locPart{lit: rest})
			break
		}
		if i > 0 {
			parts = append(parts, locPart{lit: rest[:i]})
		}
		parts = append(parts, locPart{kind: rest[i+1]}) // {host}, {path}, {query}
		rest = rest[j+1:]
	}
	return parts
}

// respondParts prepares a respond route's answer: the head up to and
// including its fields (Connection and the blank line are added per
// request), and the body.
func respondParts(rs *config.Respond) (head, body []byte) {
	head = fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n", rs.Status, http.StatusText(rs.Status))
	typed := false
	for _, h := range rs.Headers {
		head = fmt.Appendf(head, "%s: %s\r\n", h.Name, h.Value)
		typed = typed || strings.EqualFold(h.Name, "Content-Type")
	}
	if rs.Status != http.StatusNoContent && rs.Status != http.StatusNotModified {
		if !typed {
			head = append(head, "Content-Type: text/plain; charset=utf-8\r\n"...)
		}
		head = fmt.Appendf(head, "Content-Length: %d\r\n", len(rs.Body))
	}
	return head, []byte(rs.Body)
}

// notFoundHead and notFoundBody are the answer, up to its Connection
// field, to a request that matches no route when there is no default
// pool.
const notFoundBody = "404 no route matched\n"

var notFoundHead = []byte("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
	strconv.Itoa(len(notFoundBody)) + "\r\n")

// forbiddenHead and forbiddenBody answer a request a route's allow/deny
// refuses.
const forbiddenBody = "403 Forbidden\n"

var forbiddenHead = []byte("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
	strconv.Itoa(len(forbiddenBody)) + "\r\n")

// routeRequest matches the head r (n bytes) against the route table and
// acts on the route. For a pool route (or no match, with a default pool)
// it sets cl.rt, cl.pool, cl.to and the loop's fwd and reports ok. Otherwise
// the request is answered here — a redirect, a respond route, 429 from
// the route's rate limit, 404 for no match without a default pool, 400
// for a path that normalisation refuses — and cont reports whether
// processing may go on, as readHead's result does.
func (cl *client) routeRequest(r *http1.Request, n int) (ok, cont bool) {
	lp := cl.lp
	sn := cl.sn
	path, query, err := route.Normalize(lp.norm[:0], r.Path)
	if err != nil {
		cl.reject(http.StatusBadRequest)
		return false, false
	}
	if cap(path) > cap(lp.norm) && &path[0] != &r.Path[0] {
		lp.norm = path[:0] // Normalize grew it: keep it for the next long path
	}
	host := r.Host
	if r.Authority != nil {
		host = r.Authority
	}
	i := sn.routes.Lookup(host, path, r.Method, r.Headers)
	if i < 0 {
		if len(sn.def.members) == 0 {
			b := append(lp.scratch[:0], notFoundHead...)
			cl.answer(http.StatusNotFound, errNone, b, []byte(notFoundBody), n)
			return false, true
		}
		cl.pool = sn.def
		lp.fwd = cl.rewrite(r.Path, path, query, nil)
		return true, true
	}
	a := &sn.acts[i]
	cl.rt = a
	if !a.access.IsZero() && !a.access.Allowed(cl.ip) {
		lp.st.denied.Add(1)
		b := append(lp.scratch[:0], forbiddenHead...)
		cl.answer(http.StatusForbidden, errNone, b, []byte(forbiddenBody), n)
		return false, true
	}
	if a.limiter != nil && !cl.admitRate(a.limiter, r, n) {
		return false, true
	}
	switch a.action {
	case actRedirect:
		b := append(lp.scratch[:0], a.head...)
		b = appendLocation(b, a.location, host, path, query)
		b = append(b, "\r\nContent-Length: 0\r\n"...)
		b = append(b, a.setResp...)
		cl.answer(a.code, errNone, b, nil, n)
		return false, true
	case actRespond:
		b := append(lp.scratch[:0], a.head...)
		cl.answer(a.code, errNone, b, a.body, n)
		return false, true
	}
	cl.pool = a.pool
	cl.to = &a.to
	lp.fwd = cl.rewrite(r.Path, path, query, a)
	return true, true
}

// rewrite returns the request target to forward: the normalised path,
// less the route's stripPrefix, behind its addPrefix, then the query as
// received. It returns target itself when that is what it already is,
// and for "OPTIONS *", whose target is not a path to prefix.
func (cl *client) rewrite(target, path, query []byte, a *routeAct) []byte {
	if len(path) == 1 && path[0] == '*' {
		return target
	}
	strip, add := "", ""
	if a != nil {
		strip, add = a.strip, a.add
	}
	if strip == "" && add == "" && len(path) > 0 && &path[0] == &target[0] {
		return target // already normal (Normalize returned a part of it)
	}
	if strip != "" {
		// config guarantees path starts with strip in whole segments
		path = path[len(strip):]
		if len(path) == 0 {
			path = slash
		}
	}
	b := append(cl.lp.target[:0], add...) // "/api" + "/" is "/api/"
	b = append(b, path...)
	b = append(b, query...)
	cl.lp.target = b
	return b
}

var slash = []byte("/")

// appendLocation expands a redirect location.
func appendLocation(b []byte, parts []locPart, host, path, query []byte) []byte {
	if len(query) > 0 {
		query = query[1:] // without its "?"
	}
	for k, p := range parts {
		switch p.kind {
		case 0:
			lit := p.lit
			if len(query) == 0 && strings.HasSuffix(lit, "?") && k+1 < len(parts) && parts[k+1].kind == 'q' {
				lit = lit[:len(lit)-1] // no "?" before an empty query
			}
			b = append(b, lit...)
		case 'h':
			b = append(b, host...)
		case 'p':
			b = append(b, path...)
		case 'q':
			b = append(b, query...)
		}
	}
	return b
}

// answer sends ConnX's own response to the request whose head (n bytes)
// was just read: head is the status line and fields without Connection
// and the blank line, body its body (left out for HEAD). The connection
// stays open when the request allows it and has no body (a body that
// would follow is not read: the connection closes after the answer).
func (cl *client) answer(code int, kind errKind, head, body []byte, n int) {
	lp := cl.lp
	keep := cl.keepOpen(n) && cl.bodyKind == http1.BodyNone
	b := head
	switch {
	case !keep:
		b = append(b, "Connection: close\r\n"...)
	case cl.minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	if !cl.isHead {
		b = append(b, body...)
	}
	lp.scratch = b
	cl.sendAnswer(code, kind, b, n, keep)
}

// sendAnswer writes resp, a complete answer of ConnX's own with status
// code, to the request whose head (n bytes) was just read; keep says
// whether resp lets the connection stay open.
func (cl *client) sendAnswer(code int, kind errKind, resp []byte, n int, keep bool) {
	cl.consume(n)
	cl.respStarted = true
	cl.endOut(code, nil, kind, len(resp))
	cl.state = csWait
	if !keep {
		cl.closeAfter = true
		cl.linger = cl.bodyKind != http1.BodyNone // the body may be coming
	}
	if cl.write(resp) {
		cl.exchangeDone()
	}
}

// listed reports whether a field named name is in names (case-insensitive).
// listedName is listed for a string name.
func listedName(names []string, name string) bool {
	for _, d := range names {
		if len(d) == len(name) && strings.EqualFold(name, d) {
			return true
		}
	}
	return false
}

func listed(names []string, name []byte) bool {
	for _, d := range names {
		if len(d) == len(name) && http1.EqualFold(name, d) {
			return true
		}
	}
	return false
}
