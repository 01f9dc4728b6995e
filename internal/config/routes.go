package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connx/connx/internal/route"
)

// maxRespondBody bounds respond.body: a fixed answer is a short page, and
// every snapshot holds it in memory.
const maxRespondBody = 1 * mib

// managedFields are the fields ConnX writes itself, for the framing of a
// message and the connection: a route can neither set nor remove them.
var managedFields = []string{"Connection", "Content-Length", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"}

// validatePools checks each pool: its name, its backends and its
// sections. A problem a pool's section inherits from the top-level
// section is reported once, at the top level.
func (c *Config) validatePools(v *validator) {
	inherited := map[string]bool{}
	ref := &validator{}
	top := c.DefaultPool()
	ref.poolSections("", &top)
	for _, e := range ref.errs {
		inherited[e.Key+": "+e.Msg] = true
	}
	names := make(map[string]int, len(c.Pools))
	for i := range c.Pools {
		p := &c.Pools[i]
		key := "pools." + p.Name
		if p.Name == "" {
			key = "pools[" + strconv.Itoa(i) + "]"
		}
		switch {
		case !validName(p.Name):
			v.failf(key, "must be a pool name of 1 to 64 letters, digits, \"-\" or \"_\", got %q", p.Name)
		case p.Name == DefaultPoolName:
			v.failf(key, "is reserved: %q names the top-level backends", DefaultPoolName)
		default:
			if j, dup := names[p.Name]; dup {
				v.failf(key, "duplicate pool name: pools[%d] has the same name", j)
			} else {
				names[p.Name] = i
			}
		}
		if p.Discovery != nil {
			v.discovery(key+".discovery", p.Discovery, "backends", p.Backends)
		} else {
			v.backends(key+".backends", p.Backends, &p.TLS)
		}
		sub := &validator{file: v.file, pos: v.pos, bad: v.bad}
		sub.poolSections(key+".", p)
		for _, e := range sub.errs {
			if !inherited[strings.TrimPrefix(e.Key, key+".")+": "+e.Msg] {
				v.errs = append(v.errs, e)
			}
		}
	}
}

// poolSections checks the sections a pool has; prefix is "" for the top
// level or "pools.name.".
func (v *validator) poolSections(prefix string, p *Pool) {
	v.loadBalancing(prefix+"loadBalancing", &p.LoadBalancing)
	v.healthCheck(prefix+"healthCheck", &p.HealthCheck)
	v.circuitBreaker(prefix+"circuitBreaker", &p.CircuitBreaker)
	v.outlier(prefix+"outlierDetection", &p.Outlier)
	v.upstream(prefix+"upstream", &p.Upstream)
	v.backendTLS(prefix+"tls", &p.TLS)
	if prefix != "" {
		v.proxyHeaderTLS(prefix+"upstream.proxyProtocol", &p.Upstream, p.Backends)
	}
	v.healthKind(prefix, &p.HealthCheck, &p.Upstream)
	if prefix != "" {
		v.h2cTLS(prefix+"upstream.protocol", &p.Upstream, p.Backends, p.Discovery != nil)
	}
}

// proxyHeaderTLS refuses upstream.proxyProtocol for a pool with https://
// backends: the header would have to go before the TLS handshake, which
// the dial does not do yet.
func (v *validator) proxyHeaderTLS(key string, u *Upstream, bs []Backend) {
	if u.ProxyProtocol == "" {
		return
	}
	for _, b := range bs {
		if strings.HasPrefix(strings.ToLower(b.URL), "https://") {
			v.failf(key, "is not supported with https:// backends yet, got %s", b.URL)
			return
		}
	}
}

// validName reports whether s is a pool or route name: 1 to 64 letters,
// digits, "-" or "_".
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validateRoutes checks each route's action and modifiers, fills in zero
// route timeouts, and compiles the matches as the proxy will, mapping
// each *route.CompileError to the key it names.
func (c *Config) validateRoutes(v *validator) {
	pools := make([]string, 0, len(c.Pools)+1)
	for i := range c.Pools {
		pools = append(pools, c.Pools[i].Name)
	}
	if len(c.Backends) > 0 || c.Discovery != nil {
		pools = append(pools, DefaultPoolName)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		key := "routes[" + strconv.Itoa(i) + "]"
		if r.Name != "" && !validName(r.Name) {
			v.failf(key+".name", "must be 1 to 64 letters, digits, \"-\" or \"_\", got %q", r.Name)
		}
		action := c.validateAction(v, key, r, pools)
		switch action {
		case "redirect", "respond":
			c.noEffect(v, key, r, action)
		default:
			c.validateModifiers(v, key, r)
		}
		if r.RateLimit != nil {
			v.rateLimit(key+".rateLimit", r.RateLimit)
		}
		v.prefixes(key+".allow", r.Allow)
		v.prefixes(key+".deny", r.Deny)
	}
	if _, err := route.Compile(c.RouteTable()); err != nil {
		all := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			all = j.Unwrap()
		}
		for _, e := range all {
			var ce *route.CompileError
			if !errors.As(e, &ce) {
				v.failf("routes", "%v", e)
				continue
			}
			v.failf("routes["+strconv.Itoa(ce.Route)+"]."+ce.Key, "%s", ce.Msg)
		}
	}
}

// validateAction checks that r has exactly one action and checks it; it
// returns the first action r has ("pool", "redirect" or "respond"), or
// "" for none. pools are the names a route may use.
func (c *Config) validateAction(v *validator, key string, r *Route, pools []string) string {
	var actions []string
	if r.Pool != "" {
		actions = append(actions, "pool")
	}
	if r.Redirect != nil {
		actions = append(actions, "redirect")
	}
	if r.Respond != nil {
		actions = append(actions, "respond")
	}
	if len(actions) == 0 {
		v.failf(key, "has no action: give it pool, redirect or respond")
		return ""
	}
	for _, a := range actions[1:] {
		v.failf(key+"."+a, "is a second action: a route has exactly one of pool, redirect and respond, and this one has %s too", actions[0])
	}

	if r.Pool == DefaultPoolName && len(c.Backends) == 0 && c.Discovery == nil {
		v.failf(key+".pool", "has no backends: %q is the top-level backends list, and there is none", DefaultPoolName)
	} else if r.Pool != "" && !slices.Contains(pools, r.Pool) {
		switch {
		case len(c.Pools) == 0:
			v.failf(key+".pool", "unknown pool %q (the file defines no pools)", r.Pool)
		default:
			if s := suggest(r.Pool, pools); s != "" {
				v.failf(key+".pool", "unknown pool %q (did you mean %q?)", r.Pool, s)
			} else {
				v.failf(key+".pool", "unknown pool %q (valid: %s)", r.Pool, strings.Join(pools, ", "))
			}
		}
	}
	if rd := r.Redirect; rd != nil {
		if msg := checkLocation(rd.Location); msg != "" {
			v.failf(key+".redirect.location", "%s", msg)
		}
		switch rd.Code {
		case 301, 302, 307, 308:
		default:
			v.failf(key+".redirect.code", "must be 301, 302, 307 or 308, got %d", rd.Code)
		}
	}
	if rs := r.Respond; rs != nil {
		k := key + ".respond"
		v.intRange(k+".status", rs.Status, 200, 599)
		if rs.Body != "" && (rs.Status == 204 || rs.Status == 304) {
			v.failf(k+".body", "must be empty: a %d response has no body", rs.Status)
		} else if len(rs.Body) > maxRespondBody {
			v.failf(k+".body", "must be at most %s, got %d bytes", formatSize(maxRespondBody), len(rs.Body))
		}
		v.headerFields(k+".headers", rs.Headers, false, true)
	}
	return actions[0]
}

// noEffect reports the modifiers of a redirect or respond route that
// would do nothing: only a pool route sends a request to a backend. A
// redirect may set response fields; a respond route writes its fields in
// respond.headers.
func (c *Config) noEffect(v *validator, key string, r *Route, action string) {
	_, timeouts := v.pos[key+".timeouts"]
	given := []struct {
		name  string
		given bool
	}{
		{"stripPrefix", r.StripPrefix != ""},
		{"addPrefix", r.AddPrefix != ""},
		{"hostRewrite", r.HostRewrite != ""},
		{"setRequestHeaders", len(r.SetRequestHeaders) > 0},
		{"removeRequestHeaders", len(r.RemoveRequestHeaders) > 0},
		{"removeResponseHeaders", len(r.RemoveResponseHeaders) > 0},
		{"timeouts", timeouts || r.Timeouts != (Timeouts{}) && r.Timeouts != c.Timeouts},
	}
	for _, g := range given {
		if g.given {
			v.failf(key+"."+g.name, "has no effect on a %s route: only a pool route sends the request to a backend", action)
		}
	}
	switch {
	case action == "respond" && len(r.SetResponseHeaders) > 0:
		v.failf(key+".setResponseHeaders", "has no effect on a respond route: put the fields in respond.headers")
	case action == "redirect":
		v.headerFields(key+".setResponseHeaders", r.SetResponseHeaders, false, false)
		for j, h := range r.SetResponseHeaders {
			if strings.EqualFold(h.Name, "Location") {
				v.failf(key+".setResponseHeaders["+strconv.Itoa(j)+"].name", "cannot be set on a redirect route: use redirect.location")
			}
		}
	}
	if r.Timeouts == (Timeouts{}) {
		r.Timeouts = c.Timeouts
	}
}

// validateModifiers checks what a pool route changes in the request and
// the response, and fills in its zero timeouts.
func (c *Config) validateModifiers(v *validator, key string, r *Route) {
	if r.StripPrefix != "" {
		k := key + ".stripPrefix"
		sp := strings.TrimSuffix(r.StripPrefix, "/")
		mp, mk := strings.TrimSuffix(r.Match.PathPrefix, "/"), "match.pathPrefix"
		if r.Match.Path != "" {
			mp, mk = r.Match.Path, "match.path"
		}
		switch msg := checkRewritePath(r.StripPrefix); {
		case msg != "":
			v.failf(k, "%s", msg)
		case sp == "":
			v.failf(k, "must not be \"/\": stripping \"/\" changes nothing")
		case r.Match.Path == "" && r.Match.PathPrefix == "":
			v.failf(k, "must go with match.pathPrefix or match.path: it removes a leading part of the path the route matched")
		case mp != sp && !strings.HasPrefix(mp, sp+"/"):
			v.failf(k, "must be a leading part of %s (%q), whole segments, got %q", mk, r.Match.PathPrefix+r.Match.Path, r.StripPrefix)
		}
	}
	if r.AddPrefix != "" {
		k := key + ".addPrefix"
		if msg := checkRewritePath(r.AddPrefix); msg != "" {
			v.failf(k, "%s", msg)
		} else if r.AddPrefix == "/" {
			v.failf(k, "must not be \"/\": adding \"/\" changes nothing")
		}
	}
	if r.HostRewrite != "" {
		if msg := checkHostPort(r.HostRewrite); msg != "" {
			v.failf(key+".hostRewrite", "%s", msg)
		}
	}
	v.headerFields(key+".setRequestHeaders", r.SetRequestHeaders, true, false)
	c.notRequestID(v, key, r)
	v.headerNames(key+".removeRequestHeaders", r.RemoveRequestHeaders, true, r.SetRequestHeaders, "setRequestHeaders")
	v.headerFields(key+".setResponseHeaders", r.SetResponseHeaders, false, false)
	v.headerNames(key+".removeResponseHeaders", r.RemoveResponseHeaders, false, r.SetResponseHeaders, "setResponseHeaders")
	c.routeTimeouts(v, key+".timeouts", &r.Timeouts)
}

// routeTimeouts checks a pool route's timeouts and fills each zero one
// that the file does not give from the top level. Three cannot be set per
// route: they are over, or not the route's, before a route is chosen.
func (c *Config) routeTimeouts(v *validator, key string, t *Timeouts) {
	const before = "it runs before a route is chosen"
	top := &c.Timeouts
	fields := []struct {
		name string
		got  *time.Duration
		top  time.Duration
		not  string // why it cannot be set per route; "" when it can
	}{
		{"clientHeader", &t.ClientHeader, top.ClientHeader, before},
		{"clientIdle", &t.ClientIdle, top.ClientIdle, before},
		{"clientBody", &t.ClientBody, top.ClientBody, ""},
		{"upstreamConnect", &t.UpstreamConnect, top.UpstreamConnect, ""},
		{"upstreamResponseHeader", &t.UpstreamResponseHeader, top.UpstreamResponseHeader, ""},
		{"upstreamRead", &t.UpstreamRead, top.UpstreamRead, ""},
		{"upstreamIdle", &t.UpstreamIdle, top.UpstreamIdle, "an idle upstream connection belongs to no route"},
		{"tunnelIdle", &t.TunnelIdle, top.TunnelIdle, ""},
		{"tlsHandshake", &t.TLSHandshake, top.TLSHandshake, before},
	}
	for _, f := range fields {
		k := key + "." + f.name
		_, written := v.pos[k]
		switch {
		case f.not != "" && (written || *f.got != 0 && *f.got != f.top):
			v.failf(k, "cannot be set per route: %s; set timeouts.%s", f.not, f.name)
		case *f.got == 0 && !written:
			*f.got = f.top
		default:
			v.positive(k, *f.got)
		}
	}
}

// notRequestID refuses a route that sets or removes the request-ID field
// (requestId.header): ConnX writes it itself, on the request and on the
// response, and a second one would leave backends and clients two IDs.
func (c *Config) notRequestID(v *validator, key string, r *Route) {
	if !c.RequestID.Enabled || c.RequestID.Header == "" {
		return
	}
	msg := "cannot be set or removed by a route: " + c.RequestID.Header + " is requestId.header, which ConnX writes itself"
	for _, l := range []struct {
		key   string
		names []string
	}{
		{"setRequestHeaders", headerNames(r.SetRequestHeaders)},
		{"removeRequestHeaders", r.RemoveRequestHeaders},
		{"setResponseHeaders", headerNames(r.SetResponseHeaders)},
		{"removeResponseHeaders", r.RemoveResponseHeaders},
	} {
		for j, n := range l.names {
			if strings.EqualFold(n, c.RequestID.Header) {
				k := key + "." + l.key + "[" + strconv.Itoa(j) + "]"
				if l.key[0] == 's' {
					k += ".name"
				}
				v.failf(k, "%s", msg)
			}
		}
	}
}

func headerNames(hs []Header) []string {
	ns := make([]string, len(hs))
	for i, h := range hs {
		ns[i] = h.Name
	}
	return ns
}

// headerFields checks fields to set: names are tokens that ConnX does not
// manage (request: nor Host), values have no control characters, and no
// name comes twice unless repeat allows it.
func (v *validator) headerFields(key string, hs []Header, request, repeat bool) {
	first := make(map[string]int, len(hs))
	for j, h := range hs {
		k := key + "[" + strconv.Itoa(j) + "]"
		if msg := checkFieldName(h.Name, request); msg != "" {
			v.failf(k+".name", "%s", msg)
		} else if e, dup := first[strings.ToLower(h.Name)]; dup && !repeat {
			v.failf(k+".name", "is set twice: %q is the same field as %q in %s[%d] (names are case-insensitive)", h.Name, hs[e].Name, key, e)
		} else if !dup {
			first[strings.ToLower(h.Name)] = j
		}
		if !validFieldValue(h.Value) {
			v.failf(k+".value", "must not contain control characters other than tab, got %q", h.Value)
		}
	}
}

// headerNames checks fields to remove: names as for headerFields, and
// none that set (setKey) sets anyway.
func (v *validator) headerNames(key string, names []string, request bool, set []Header, setKey string) {
	for j, name := range names {
		k := key + "[" + strconv.Itoa(j) + "]"
		if msg := checkFieldName(name, request); msg != "" {
			v.failf(k, "%s", msg)
			continue
		}
		for _, h := range set {
			if strings.EqualFold(h.Name, name) {
				v.failf(k, "is also in %s, which replaces the field anyway", setKey)
				break
			}
		}
	}
}

// checkFieldName returns "" when name is a field name a route may set or
// remove, and otherwise what is wrong.
func checkFieldName(name string, request bool) string {
	switch {
	case !validToken(name):
		return fmt.Sprintf("must be a header field name (a token), got %q", name)
	case request && strings.EqualFold(name, "Host"):
		return "cannot be set or removed here: use hostRewrite"
	}
	for _, m := range managedFields {
		if strings.EqualFold(name, m) {
			return fmt.Sprintf("cannot be set or removed: ConnX writes %s itself (%s)", m, strings.Join(managedFields, ", "))
		}
	}
	return ""
}

// validFieldValue reports whether s can be sent as a field value: no
// control characters other than HTAB (so no CR, LF or NUL).
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkRewritePath checks stripPrefix and addPrefix: a path starting
// with "/" in the normal form of route.Normalize, so that rewriting a
// normalised path gives a normalised path.
func checkRewritePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("must start with \"/\", got %q", p)
	}
	n, q, err := route.Normalize(nil, []byte(p))
	var pe *route.PathError
	switch {
	case errors.As(err, &pe):
		return fmt.Sprintf("must be a path that normalisation accepts (%s), got %q", pe.Reason, p)
	case err != nil:
		return fmt.Sprintf("must be a path, got %q", p)
	case q != nil:
		return fmt.Sprintf("must not contain \"?\", got %q", p)
	case string(n) != p:
		return fmt.Sprintf("must be in normalised form: write %q (see docs/routing.md)", n)
	}
	return ""
}

// checkLocation checks a redirect location; it returns "" when loc is
// well formed.
func checkLocation(loc string) string {
	if loc == "" {
		return "is required: a URL or a path, e.g. \"https://www.example.com{path}\""
	}
	if strings.ContainsFunc(loc, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Sprintf("must not contain spaces, control characters or non-ASCII characters (percent-encode them), got %q", loc)
	}
	// Replace each placeholder by a sample value, then parse the result.
	var sample strings.Builder
	for rest := loc; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			sample.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if rest[i] == '}' || j < 0 {
			return fmt.Sprintf("has an unmatched %q: only the placeholders {host}, {path} and {query} may use braces, got %q", rest[i], loc)
		}
		sample.WriteString(rest[:i])
		switch name := rest[i : i+j+1]; name {
		case "{host}":
			sample.WriteString("host.example")
		case "{path}":
			sample.WriteString("/path")
		case "{query}":
			sample.WriteString("q=1")
		default:
			return fmt.Sprintf("unknown placeholder %s (valid: {host}, {path}, {query})", name)
		}
		rest = rest[i+j+1:]
	}
	s := sample.String()
	lower := strings.ToLower(s)
	if !strings.HasPrefix(s, "/") && !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		return fmt.Sprintf("must be an http:// or https:// URL or a path starting with \"/\", got %q", loc)
	}
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Sprintf("must be a valid URL (%v), got %q", err, loc)
	}
	if u.Scheme != "" && u.Host == "" {
		return fmt.Sprintf("must have a host after %s://, got %q", u.Scheme, loc)
	}
	return ""
}

// checkHostPort checks hostRewrite: "host" or "host:port", an IPv6
// address in brackets.
func checkHostPort(s string) string {
	bad := fmt.Sprintf("must be \"host\" or \"host:port\", e.g. \"api.internal\" or \"10.0.0.1:8080\", got %q", s)
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.Contains(s, ":") {
		return bad + " (write an IPv6 address in brackets)"
	}
	if strings.HasPrefix(s, "[") != strings.Contains(host, ":") {
		return bad
	}
	if strings.HasPrefix(s, "[") {
		if net.ParseIP(host) == nil {
			return bad
		}
	} else if host == "" || checkHost(host) != "" {
		return bad
	}
	if port != "" {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Sprintf("port must be between 1 and 65535, got %q", port)
		}
	}
	return ""
}
