package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connx/connx/internal/acl"
	"github.com/connx/connx/internal/balancer"
	"github.com/connx/connx/internal/discovery"
	"github.com/connx/connx/internal/health"
	"github.com/connx/connx/internal/ratelimit"
	"github.com/connx/connx/internal/tlsterm"
)

// Validate checks every value against its range and the rules between
// values, and fills in each Backend.Addr (of the pools too) and each zero
// route timeout (from the top-level timeouts); it is for configs built in
// code (Parse already calls it). It writes to c, so it must not run while
// c is shared. It does no network I/O.
//
// The result is nil or an errors.Join of one *Error per problem, each
// naming its key path (e.g. "backends[1].weight"), with no file position.
func (c *Config) Validate() error {
	v := &validator{}
	c.validate(v)
	return joinErrors(v.errs)
}

// validator collects validation errors and places them in the file.
type validator struct {
	errs []*Error
	file string
	// pos and bad come from the decoder; both are nil for configs built in
	// code.
	pos map[string]position
	bad map[string]bool
}

// failf records a problem with key, unless decoding key (or a key
// containing it) already failed.
func (v *validator) failf(key, format string, args ...any) {
	if v.suppressed(key) {
		return
	}
	at := v.locate(key)
	v.errs = append(v.errs, &Error{File: v.file, Line: at.line, Column: at.column, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) suppressed(key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if v.bad[k] {
			return true
		}
	}
	return false
}

// locate returns where key was written or, when it was absent, where its
// nearest enclosing key was.
func (v *validator) locate(key string) position {
	for k := key; k != ""; k = parentKey(k) {
		if at, ok := v.pos[k]; ok {
			return at
		}
	}
	return position{}
}

// parentKey strips the last element from a key path: "a[1].b" -> "a[1]"
// -> "a" -> "".
func parentKey(key string) string {
	if i := strings.LastIndexAny(key, ".["); i >= 0 {
		return key[:i]
	}
	return ""
}

func (v *validator) intRange(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.failf(key, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) atLeast(key string, n, lo int) {
	if n < lo {
		v.failf(key, "must be at least %d, got %d", lo, n)
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.failf(key, "must be greater than 0, got %v", d)
	}
}

func (c *Config) validate(v *validator) {
	s := &c.Server
	v.intRange("server.port", s.Port, 0, 65535) // 0: the kernel picks (tests)
	if msg := checkHost(s.Host); msg != "" {
		v.failf("server.host", "%s", msg)
	}
	v.positive("server.shutdownTimeout", s.ShutdownTimeout)
	v.intRange("server.eventLoops", s.EventLoops, 0, maxEventLoops)
	pp := &s.ProxyProtocol
	v.prefixes("server.proxyProtocol.trustedSources", pp.TrustedSources)
	if pp.Enabled && len(pp.TrustedSources) == 0 {
		v.failf("server.proxyProtocol.trustedSources", "must list at least one CIDR or address when enabled is true: only these peers may send a PROXY header")
	}
	v.positive("server.proxyProtocol.timeout", pp.Timeout)
	v.prefixes("server.allow", s.Allow)
	v.prefixes("server.deny", s.Deny)

	c.validateBackends(v)
	c.validatePools(v)
	v.loadBalancing("loadBalancing", &c.LoadBalancing)
	v.healthCheck("healthCheck", &c.HealthCheck)
	v.circuitBreaker("circuitBreaker", &c.CircuitBreaker)
	v.outlier("outlierDetection", &c.Outlier)
	v.rateLimit("rateLimit", &c.RateLimit)

	t := &c.Timeouts
	v.positive("timeouts.clientHeader", t.ClientHeader)
	v.positive("timeouts.clientIdle", t.ClientIdle)
	v.positive("timeouts.clientBody", t.ClientBody)
	v.positive("timeouts.upstreamConnect", t.UpstreamConnect)
	v.positive("timeouts.upstreamResponseHeader", t.UpstreamResponseHeader)
	v.positive("timeouts.upstreamRead", t.UpstreamRead)
	v.positive("timeouts.upstreamIdle", t.UpstreamIdle)

	l := &c.Limits
	if l.MaxConnections < 0 {
		v.failf("limits.maxConnections", "must be 0 (sized from the file descriptor limit) or more, got %d", l.MaxConnections)
	}
	if l.MaxRequestLine < 1 {
		v.failf("limits.maxRequestLine", "must be at least 1 byte, got %d", l.MaxRequestLine)
	} else if l.MaxHeaderBytes >= 1 && l.MaxRequestLine > l.MaxHeaderBytes {
		v.failf("limits.maxRequestLine", "must not exceed limits.maxHeaderBytes (%d), got %d", l.MaxHeaderBytes, l.MaxRequestLine)
	}
	if l.MaxHeaderBytes < 1 {
		v.failf("limits.maxHeaderBytes", "must be at least 1 byte, got %d", l.MaxHeaderBytes)
	} else if l.MaxHeaderBytes > l.ConnectionBuffer && l.ConnectionBuffer >= minConnectionBuffer {
		v.failf("limits.maxHeaderBytes", "must not exceed limits.connectionBuffer (%s), got %d", formatSize(l.ConnectionBuffer), l.MaxHeaderBytes)
	}
	v.atLeast("limits.maxHeaders", l.MaxHeaders, 1)
	if l.MaxRequestBody < 0 {
		v.failf("limits.maxRequestBody", "must be 0 (unlimited) or more, got %d", l.MaxRequestBody)
	}
	if l.ConnectionBuffer < minConnectionBuffer || l.ConnectionBuffer > maxConnectionBuffer {
		v.failf("limits.connectionBuffer", "must be between %s and %s, got %s",
			formatSize(minConnectionBuffer), formatSize(maxConnectionBuffer), formatSize(l.ConnectionBuffer))
	}

	v.upstream("upstream", &c.Upstream)
	v.proxyHeaderTLS("upstream.proxyProtocol", &c.Upstream, c.Backends)
	v.backendTLS("tls", &c.BackendTLS)
	v.healthKind("", &c.HealthCheck, &c.Upstream)
	v.h2cTLS("upstream.protocol", &c.Upstream, c.Backends, c.Discovery != nil)

	if msg := checkMetricsPath(c.Metrics.Path); msg != "" {
		v.failf("metrics.path", "%s", msg)
	}
	v.prefixes("metrics.allow", c.Metrics.Allow)
	v.positive("timeouts.tunnelIdle", c.Timeouts.TunnelIdle)
	v.positive("timeouts.tlsHandshake", c.Timeouts.TLSHandshake)
	c.validateTLS(v)
	v.http2("server.http2", &c.Server.HTTP2)
	if c.Server.RedirectHTTP && c.Server.TLS == nil {
		v.failf("server.redirectHTTP", "must be false without server.tls: the redirect points at the HTTPS port")
	}
	for i, p := range c.Server.RedirectHTTPExempt {
		if !strings.HasPrefix(p, "/") {
			v.failf("server.redirectHTTPExempt["+strconv.Itoa(i)+"]", "must be a path prefix starting with \"/\", got %q", p)
		}
	}
	for i, u := range c.Server.Upgrades {
		if u == "" || strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) }) {
			v.failf("server.upgrades["+strconv.Itoa(i)+"]", "must be a protocol token such as \"websocket\", got %q", u)
		}
	}
	if a := c.Admin.Listen; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			v.failf("admin.listen", "must be \"host:port\" such as \"127.0.0.1:9090\" (or \"\" for off), got %q", a)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			v.failf("admin.listen", "port must be between 0 and 65535, got %q", port)
		} else if a == c.ListenAddr() && p != 0 {
			v.failf("admin.listen", "must differ from the proxy's own address %s", a)
		}
	}
	al := &c.AccessLog
	if al.Output == "" {
		v.failf("accessLog.output", "must be \"stderr\", \"stdout\" or a file path")
	}
	if al.Format != "json" && al.Format != "logfmt" {
		v.failf("accessLog.format", "must be \"json\" or \"logfmt\", got %q", al.Format)
	}
	if !(al.Sample > 0 && al.Sample <= 1) {
		v.failf("accessLog.sample", "must be more than 0 and at most 1, got %v", al.Sample)
	}
	v.intRange("accessLog.queueSize", al.QueueSize, 1, 1<<20)
	if h := c.RequestID.Header; c.RequestID.Enabled && !validToken(h) {
		v.failf("requestId.header", "must be a header field name such as \"X-Request-Id\", got %q", h)
	} else if c.RequestID.Enabled && reservedField(h) {
		v.failf("requestId.header", "must not be a field ConnX frames, routes or forwards itself (Host, Content-Length, Transfer-Encoding, Connection, X-Forwarded-*, ...), got %q", h)
	}
	if f := c.Log.Format; f != "text" && f != "json" {
		v.failf("log.format", "must be \"text\" or \"json\", got %q", f)
	}
	c.validateRoutes(v)
}

// loadBalancing checks a loadBalancing section; key is where it is in the file.
func (v *validator) loadBalancing(key string, lb *LoadBalancing) {
	if !slices.Contains(balancer.Names(), lb.Algorithm) {
		v.failf(key+".algorithm", "unknown algorithm %q (valid: %s)",
			lb.Algorithm, strings.Join(balancer.Names(), ", "))
	}
	if msg := checkHashKey(lb.HashKey); msg != "" {
		v.failf(key+".hashKey", "%s", msg)
	}
	if !(lb.HashLoadFactor >= 1) || math.IsInf(lb.HashLoadFactor, 0) {
		v.failf(key+".hashLoadFactor", "must be a number of at least 1, got %v", lb.HashLoadFactor)
	}
	if lb.SlowStart < 0 || lb.SlowStart > balancer.MaxSlowStart {
		v.failf(key+".slowStart", "must be between 0s and %v, got %v", balancer.MaxSlowStart, lb.SlowStart)
	}
	v.positive(key+".ewmaDecay", lb.EWMADecay)
	v.intRange(key+".retryBudget", lb.RetryBudget, 0, 100)
	v.intRange(key+".panicThreshold", lb.PanicThreshold, 0, 100)
}

// healthCheck checks a healthCheck section; key is where it is in the file.
func (v *validator) healthCheck(key string, h *HealthCheck) {
	v.positive(key+".interval", h.Interval)
	v.positive(key+".timeout", h.Timeout) // may be >= interval: checks do not overlap

	if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " #\t\r\n") {
		v.failf(key+".path", "must start with / and contain no spaces or #, got %q", h.Path)
	}
	if h.Method != "GET" && h.Method != "HEAD" {
		v.failf(key+".method", "must be GET or HEAD, got %q", h.Method)
	}
	if _, err := health.ParseStatusSet(h.ExpectedStatus); err != nil {
		v.failf(key+".expectedStatus", "%v", err)
	}
	v.intRange(key+".healthyThreshold", h.HealthyThreshold, 1, 100)
	v.intRange(key+".unhealthyThreshold", h.UnhealthyThreshold, 1, 100)
	if h.Jitter < 0 {
		v.failf(key+".jitter", "must be at least 0s, got %v", h.Jitter)
	}
	switch h.Kind {
	case HealthCheckAuto, HealthCheckHTTP, HealthCheckGRPC:
	default:
		v.failf(key+".kind", "must be %q, %q or %q, got %q", HealthCheckAuto, HealthCheckHTTP, HealthCheckGRPC, h.Kind)
	}
}

// h2cTLS matches upstream.protocol and the backends' schemes: h2c
// (cleartext) refuses https:// backends, h2 (HTTP/2 over TLS) http://
// ones.
func (v *validator) h2cTLS(key string, u *Upstream, bs []Backend, discovered bool) {
	if !u.HTTP2() {
		return
	}
	if u.Protocol == ProtocolH2 && discovered {
		v.failf(key, "must not be %q with discovery (discovered members are http://)", ProtocolH2)
		return
	}
	for _, b := range bs {
		https := strings.HasPrefix(strings.ToLower(b.URL), "https://")
		switch {
		case u.Protocol == ProtocolH2C && https:
			v.failf(key, "must not be %q with https:// backends (h2c is cleartext), got %s", ProtocolH2C, b.URL)
			return
		case u.Protocol == ProtocolH2 && !https:
			v.failf(key, "must not be %q with http:// backends (h2 is HTTP/2 over TLS; use %q), got %s", ProtocolH2, ProtocolH2C, b.URL)
			return
		}
	}
}

// healthKind checks that a gRPC health check goes to backends that speak
// HTTP/2; prefix is "" for the top level or "pools.name.".
func (v *validator) healthKind(prefix string, h *HealthCheck, u *Upstream) {
	if h.Kind == HealthCheckGRPC && !u.HTTP2() {
		v.failf(prefix+"healthCheck.kind", "must not be %q unless %supstream.protocol is %q or %q", HealthCheckGRPC, prefix, ProtocolH2C, ProtocolH2)
	}
}

// circuitBreaker checks a circuitBreaker section; key is where it is in the file.
func (v *validator) circuitBreaker(key string, cb *CircuitBreaker) {
	v.intRange(key+".maxFailures", cb.MaxFailures, 1, 1000)
	v.positive(key+".timeout", cb.Timeout)
	v.positive(key+".resetTimeout", cb.ResetTimeout)
	v.intRange(key+".halfOpenSuccess", cb.HalfOpenSuccess, 1, 1000)
	v.intRange(key+".halfOpenRequests", cb.HalfOpenRequests, 1, 1000)
}

// outlier checks an outlierDetection section; key is where it is in the file.
func (v *validator) outlier(key string, o *Outlier) {
	v.intRange(key+".consecutiveFailures", o.ConsecutiveFailures, 0, 1000)
	v.intRange(key+".failurePercent", o.FailurePercent, 0, 100)
	v.positive(key+".window", o.Window)
	v.intRange(key+".minRequests", o.MinRequests, 1, 1000000)
	v.positive(key+".baseEjection", o.BaseEjection)
	if o.MaxEjection < o.BaseEjection {
		v.failf(key+".maxEjection", "must be at least outlierDetection.baseEjection (%v), got %v", o.BaseEjection, o.MaxEjection)
	}
	v.intRange(key+".maxEjectedPercent", o.MaxEjectedPercent, 0, 100)
}

// rateLimit checks a rateLimit section; key is where it is in the file.
func (v *validator) rateLimit(key string, rl *RateLimit) {
	if !(rl.RequestsPerSec > 0) || math.IsInf(rl.RequestsPerSec, 0) {
		v.failf(key+".requestsPerSec", "must be a number greater than 0, got %v", rl.RequestsPerSec)
	}
	v.atLeast(key+".burst", rl.Burst, 1)
	if rl.RequestsPerSec > ratelimit.MaxRequestsPerSec {
		v.failf(key+".requestsPerSec", "must be at most %g, got %v", ratelimit.MaxRequestsPerSec, rl.RequestsPerSec)
	}
	if err := ratelimit.CheckKey(rl.Key); err != nil {
		v.failf(key+".key", "%v", trimKey(err, "rateLimit.key"))
	}
	v.prefixes(key+".trustedProxies", rl.TrustedProxies)
	v.intRange(key+".ipv6Prefix", rl.IPv6Prefix, 1, 128)
	v.atLeast(key+".maxClients", rl.MaxClients, 1)
	v.positive(key+".idleTTL", rl.IdleTTL)
	for i, e := range rl.Exempt {
		if err := ratelimit.CheckExempt(e); err != nil {
			v.failf(fmt.Sprintf("%s.exempt[%d]", key, i), "%v", trimKey(err, "rateLimit.exempt"))
		}
	}
	v.redis(key+".redis", &rl.Redis)
}

// redis checks a rateLimit.redis section. The address is checked for its
// form only: no lookup, and Redis being down is not an error (the limit
// then falls back to each instance's share).
func (v *validator) redis(key string, r *RateLimitRedis) {
	if r.Address != "" {
		host, port, err := net.SplitHostPort(r.Address)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			v.failf(key+".address", `must be "host:port" (e.g. "127.0.0.1:6379"), got %q`, r.Address)
		}
	}
	v.intRange(key+".db", r.DB, 0, 1000000)
	if r.Prefix == "" {
		v.failf(key+".prefix", "must not be empty")
	}
	if r.SyncInterval < time.Millisecond || r.SyncInterval > 10*time.Second {
		v.failf(key+".syncInterval", "must be between 1ms and 10s, got %v", r.SyncInterval)
	}
	if r.Timeout < time.Millisecond || r.Timeout > time.Minute {
		v.failf(key+".timeout", "must be between 1ms and 1m, got %v", r.Timeout)
	}
}

// upstream checks an upstream section; key is where it is in the file.
func (v *validator) upstream(key string, u *Upstream) {
	v.intRange(key+".maxIdlePerBackend", u.MaxIdlePerBackend, 0, maxIdlePerBackendCap)
	v.intRange(key+".retries", u.Retries, 0, maxRetries)
	switch u.ProxyProtocol {
	case "", ProxyProtocolV1, ProxyProtocolV2:
	default:
		v.failf(key+".proxyProtocol", "must be %q, %q or \"\" (none), got %q", ProxyProtocolV1, ProxyProtocolV2, u.ProxyProtocol)
	}
	switch u.Protocol {
	case ProtocolHTTP1, ProtocolH2C, ProtocolH2:
	default:
		v.failf(key+".protocol", "must be %q, %q or %q, got %q", ProtocolHTTP1, ProtocolH2C, ProtocolH2, u.Protocol)
	}
	if u.HTTP2() && u.ProxyProtocol != "" {
		v.failf(key+".proxyProtocol", "must be \"\" (none) when protocol is %q", u.Protocol)
	}
}

// prefixes checks a list of CIDRs or single addresses, such as
// rateLimit.trustedProxies.
func (v *validator) prefixes(key string, list []string) {
	for i, p := range list {
		if _, err := acl.ParsePrefix(p); err != nil {
			v.failf(fmt.Sprintf("%s[%d]", key, i), "must be a CIDR or an IP address, got %q", p)
		}
	}
}

// validateBackends checks the top-level backends, or the top-level
// discovery. Backends may be absent only when there are routes or
// discovery.
func (c *Config) validateBackends(v *validator) {
	switch {
	case c.Discovery != nil:
		v.discovery("discovery", c.Discovery, "backends", c.Backends)
	case len(c.Backends) == 0 && len(c.Routes) > 0:
	default:
		v.backends("backends", c.Backends, &c.BackendTLS)
	}
}

// discovery checks a discovery section at key, and that the pool it
// belongs to has no fixed backends (at backendsKey).
func (v *validator) discovery(key string, d *Discovery, backendsKey string, backends []Backend) {
	if len(backends) > 0 {
		v.failf(key, "cannot be used with %s: a pool takes its members from a fixed list or from DNS, not both", backendsKey)
	}
	if d.DNS == nil {
		v.failf(key+".dns", "is required: it is the only discovery source")
		return
	}
	c := d.DNS.WatcherConfig()
	err := c.Check()
	if err == nil {
		return
	}
	all := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	}
	for _, e := range all {
		var ce *discovery.ConfigError
		if errors.As(e, &ce) {
			v.failf(key+".dns."+ce.Key, "%s", ce.Msg)
		} else {
			v.failf(key+".dns", "%v", e)
		}
	}
}

// backends checks each backend of a list at key, fills in Addr and
// rejects two backends with the same address.
//
// A backend's own tls section is checked for what it adds to the pool's
// (pool), which is checked, and named in errors, once as the pool's.
func (v *validator) backends(key string, list []Backend, pool *BackendTLS) {
	if len(list) == 0 {
		v.failf(key, "at least one backend is required")
		return
	}
	first := make(map[string]int, len(list))
	for i := range list {
		b := &list[i]
		k := key + "[" + strconv.Itoa(i) + "]"
		addr, msg := backendAddr(b.URL)
		b.Addr = addr
		if msg != "" {
			v.failf(k+".url", "%s", msg)
		} else if j, dup := first[addr]; dup {
			v.failf(k+".url", "duplicate backend %q: %s[%d] (%q) has the same address %s",
				b.URL, key, j, list[j].URL, addr)
		} else {
			first[addr] = i
		}
		v.intRange(k+".weight", b.Weight, 0, maxWeight)
		v.intRange(k+".maxConnections", b.MaxConnections, 0, 1000000)
		if b.TLS != nil {
			if msg == "" && !b.HTTPS() {
				v.failf(k+".tls", "applies to https:// backends only, got %q", b.URL)
			}
			own := *b.TLS
			if own.ServerName == pool.ServerName {
				own.ServerName = ""
			}
			if own.CAFile == pool.CAFile {
				own.CAFile = ""
			}
			if own.CertFile == pool.CertFile && own.KeyFile == pool.KeyFile {
				own.CertFile, own.KeyFile = "", ""
			}
			v.backendTLS(k+".tls", &own)
		}
	}
}

// backendAddr derives the dial address "host:port" from a backend URL, or
// returns a message saying what is wrong with it.
func backendAddr(raw string) (addr, msg string) {
	const want = `must be an http or https URL with a host, e.g. "http://backend1:8080"`
	if strings.TrimSpace(raw) == "" {
		return "", "is required; " + want
	}
	if msg := missingScheme(raw); msg != "" {
		return "", msg
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Sprintf("invalid URL %q: %v", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" || u.Opaque != "":
		return "", fmt.Sprintf("%s, got %q", want, raw)
	case u.User != nil:
		return "", fmt.Sprintf("must not contain user information, got %q", raw)
	case u.Hostname() == "":
		return "", fmt.Sprintf("has no host; %s", want)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Sprintf("path must be empty or \"/\", got %q", u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Sprintf("must not contain a query, got %q", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Sprintf("must not contain a fragment, got %q", raw)
	}
	port := u.Port()
	if port == "" && u.Scheme == "https" {
		port = "443"
	} else if port == "" {
		port = "80"
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Sprintf("port must be between 1 and 65535, got %q", port)
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port), ""
}

// missingScheme returns a message for a backend URL written without a
// scheme ("127.0.0.1:23001", "backend1:8080", "localhost"), saying what
// to write instead, or "" when raw has a scheme.
func missingScheme(raw string) string {
	if strings.Contains(raw, "://") {
		return ""
	}
	if scheme, _, ok := strings.Cut(raw, ":"); ok && (strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
		return "" // "http:/a" and the like: the checks below say what is wrong
	}
	fixed := "http://" + strings.TrimPrefix(strings.TrimSpace(raw), "//")
	if _, msg := backendAddr(fixed); msg != "" {
		return fmt.Sprintf(`has no scheme; write it as "http://host:port", e.g. "http://backend1:8080", got %q`, raw)
	}
	return fmt.Sprintf("has no scheme; write %q, got %q", fixed, raw)
}

// checkHost accepts "", an IP address or a host name.
func checkHost(host string) string {
	if host == "" || net.ParseIP(host) != nil {
		return ""
	}
	if strings.HasPrefix(host, "[") {
		return fmt.Sprintf("write an IPv6 address without brackets, got %q", host)
	}
	if len(host) > 253 {
		return "host name is longer than 253 characters"
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return fmt.Sprintf("must be an IP address or a host name, got %q", host)
		}
	}
	return ""
}

// checkMetricsPath accepts "" (off) or an absolute path with no query,
// fragment, spaces or control characters.
func checkMetricsPath(p string) string {
	if p == "" {
		return ""
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("must start with \"/\" (or be \"\" to turn metrics off), got %q", p)
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '?' || r == '#' }) {
		return fmt.Sprintf("must be a plain path with no query, fragment, spaces or control characters, got %q", p)
	}
	return ""
}

// checkHashKey validates loadBalancing.hashKey; it returns "" when valid.
func checkHashKey(k string) string {
	switch {
	case k == "client-ip" || k == "path":
		return ""
	case strings.HasPrefix(k, "header:") && validToken(k[len("header:"):]):
		return ""
	case strings.HasPrefix(k, "cookie:") && validToken(k[len("cookie:"):]):
		return ""
	}
	return fmt.Sprintf(`must be "client-ip", "path", "header:Name" or "cookie:name", got %q`, k)
}

// validToken reports whether s is a non-empty HTTP token (RFC 9110 5.6.2).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// trimKey drops a "key: " prefix a package's error may carry, since the
// validator adds the key itself.
func trimKey(err error, key string) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, key) {
		return rest
	}
	return msg
}

// reservedField reports whether name is a field ConnX frames, routes or
// writes itself, which a configured field (requestId.header) must not
// replace: hop-by-hop and framing fields, Host, and X-Forwarded-*.
func reservedField(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "host", "content-length", "transfer-encoding", "connection", "keep-alive",
		"proxy-connection", "te", "trailer", "upgrade", "expect", "forwarded":
		return true
	}
	return strings.HasPrefix(n, "x-forwarded-")
}

// backendTLS checks a tls section (TLS to backends), loading its files.
func (v *validator) backendTLS(key string, t *BackendTLS) {
	if t.CAFile != "" {
		if _, err := tlsterm.LoadCAs(t.CAFile); err != nil {
			v.failf(key+".caFile", "cannot load the CA certificates: %v", err)
		}
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "":
	case t.CertFile == "":
		v.failf(key+".certFile", "is required with keyFile: the client certificate's PEM file")
	case t.KeyFile == "":
		v.failf(key+".keyFile", "is required with certFile: the client certificate's private key")
	default:
		if _, _, err := tlsterm.LoadPair(tlsterm.Pair{CertFile: t.CertFile, KeyFile: t.KeyFile}); err != nil {
			v.failf(key+".certFile", "cannot load the certificate and key: %v", err)
		}
	}
	if t.ServerName != "" && strings.ContainsAny(t.ServerName, " /:") {
		v.failf(key+".serverName", "must be a host name or an IP address, got %q", t.ServerName)
	}
}

// validateTLS checks server.tls, loading every certificate pair (so that
// connx -check and a reload refuse files that would not serve).
func (c *Config) validateTLS(v *validator) {
	t := c.Server.TLS
	if t == nil {
		return
	}
	v.intRange("server.tls.port", t.Port, 0, 65535)
	if t.Port != 0 && t.Port == c.Server.Port {
		v.failf("server.tls.port", "must differ from server.port (%d)", c.Server.Port)
	}
	if len(t.Certificates) == 0 {
		v.failf("server.tls.certificates", "must list at least one certificate (certFile and keyFile)")
	}
	for i, p := range t.Certificates {
		key := "server.tls.certificates[" + strconv.Itoa(i) + "]"
		switch {
		case p.CertFile == "":
			v.failf(key+".certFile", "is required: the certificate chain's PEM file, leaf first")
		case p.KeyFile == "":
			v.failf(key+".keyFile", "is required: the private key's PEM file")
		default:
			if _, _, err := tlsterm.LoadPair(tlsterm.Pair{CertFile: p.CertFile, KeyFile: p.KeyFile}); err != nil {
				v.failf(key+".certFile", "cannot load the certificate and key: %v", err)
			}
		}
	}
	if _, ok := tlsterm.Versions[t.MinVersion]; !ok {
		v.failf("server.tls.minVersion", "must be \"1.2\" or \"1.3\", got %q", t.MinVersion)
	}
	v.atLeast("server.tls.maxHandshakes", t.MaxHandshakes, 1)
	if ca := t.ClientAuth; ca != nil {
		const key = "server.tls.clientAuth"
		if _, ok := tlsterm.ClientAuthModes[ca.Mode]; !ok {
			v.failf(key+".mode", "must be \"require\" or \"request\", got %q", ca.Mode)
		}
		if ca.CAFile == "" {
			v.failf(key+".caFile", "is required: the PEM file of the CAs that verify client certificates")
		} else if _, err := tlsterm.LoadCAs(ca.CAFile); err != nil {
			v.failf(key+".caFile", "cannot load the CA certificates: %v", err)
		}
		switch h := ca.SubjectHeader; {
		case !validToken(h):
			v.failf(key+".subjectHeader", "must be a header field name such as \"X-Client-Subject\", got %q", h)
		case reservedField(h):
			v.failf(key+".subjectHeader", "must not be a field ConnX frames, routes or forwards itself (Host, Content-Length, Transfer-Encoding, Connection, X-Forwarded-*, ...), got %q", h)
		}
	}
}

// http2 checks server.http2.
func (v *validator) http2(key string, h *HTTP2) {
	v.intRange(key+".maxConcurrentStreams", h.MaxConcurrentStreams, 1, 10000)
	v.sizeRange(key+".maxHeaderListSize", h.MaxHeaderListSize, kib, mib)
	v.sizeRange(key+".streamWindow", h.StreamWindow, 64*kib, 16*mib)
	v.sizeRange(key+".connectionWindow", h.ConnectionWindow, 64*kib, 64*mib)
	v.atLeast(key+".maxResets", h.MaxResets, 1)
	v.atLeast(key+".maxControlFrames", h.MaxControlFrames, 1)
}

func (v *validator) sizeRange(key string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.failf(key, "must be between %s and %s, got %s", formatSize(lo), formatSize(hi), formatSize(n))
	}
}
