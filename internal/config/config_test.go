package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/connx/connx/internal/balancer"
)

// mustParse parses src as "test.yaml" and fails the test on error.
func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), "test.yaml")
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return c
}

// configErrors returns the *Error values joined in err.
func configErrors(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*Error, 0, len(errs))
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %v (%T) is not a *config.Error", e, e)
		}
		out = append(out, ce)
	}
	return out
}

const oneBackend = "backends:\n  - url: http://127.0.0.1:9001\n"

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		Server: Server{Port: 8080, Host: "0.0.0.0", ShutdownTimeout: 30 * time.Second, EventLoops: 0, PreserveHost: true,
			Upgrades: []string{"websocket"}, ProxyProtocol: ProxyProtocol{Timeout: 5 * time.Second},
			HTTP2: HTTP2{MaxConcurrentStreams: 100, MaxHeaderListSize: 32 << 10, StreamWindow: 64 << 10,
				ConnectionWindow: 1 << 20, MaxResets: 200, MaxControlFrames: 1000},
			RedirectHTTPExempt: []string{"/.well-known/acme-challenge/"}},
		LoadBalancing: LoadBalancing{Algorithm: "round-robin", HashKey: "client-ip", HashLoadFactor: 1.25, EWMADecay: 10 * time.Second, RetryBudget: 20,
			PanicThreshold: 50},
		HealthCheck: HealthCheck{Interval: 30 * time.Second, Timeout: 5 * time.Second, Enabled: true, Path: "/", Method: "GET",
			ExpectedStatus: "200-399", HealthyThreshold: 2, UnhealthyThreshold: 3, Jitter: time.Second, Kind: HealthCheckAuto},
		CircuitBreaker: CircuitBreaker{Enabled: true, MaxFailures: 5, Timeout: 60 * time.Second, ResetTimeout: 30 * time.Second,
			HalfOpenSuccess: 2, HalfOpenRequests: 1, FailureOn5xx: false},
		Outlier: Outlier{Enabled: true, ConsecutiveFailures: 5, FailureOn5xx: false, Window: 10 * time.Second, MinRequests: 20,
			BaseEjection: 30 * time.Second, MaxEjection: 5 * time.Minute, MaxEjectedPercent: 50},
		RateLimit: RateLimit{Enabled: false, RequestsPerSec: 100, Burst: 200, PerIP: false,
			Key: "client-ip", IPv6Prefix: 64, MaxClients: 100000, IdleTTL: time.Minute,
			Redis: RateLimitRedis{Prefix: "connx:", SyncInterval: 50 * time.Millisecond, Timeout: 250 * time.Millisecond}},
		Timeouts: Timeouts{
			ClientHeader: 10 * time.Second, ClientIdle: 60 * time.Second, ClientBody: 60 * time.Second,
			UpstreamConnect: 5 * time.Second, UpstreamResponseHeader: 60 * time.Second,
			UpstreamRead: 60 * time.Second, UpstreamIdle: 60 * time.Second,
			TunnelIdle: time.Hour, TLSHandshake: 10 * time.Second,
		},
		Limits: Limits{
			MaxConnections: 0, MaxRequestLine: 8192, MaxHeaderBytes: 16384,
			MaxHeaders: 100, MaxRequestBody: 0, ConnectionBuffer: 256 << 10,
		},
		Upstream: Upstream{MaxIdlePerBackend: 256, Retries: 1, Protocol: ProtocolHTTP1},
		Metrics: Metrics{Path: "/metrics", Allow: []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
			"fc00::/7", "169.254.0.0/16", "fe80::/10"}},
		AccessLog: AccessLog{Output: "stderr", Format: "json", Sample: 1, QueueSize: 8192},
		RequestID: RequestID{Enabled: true, Header: "X-Request-Id"},
		Log:       Log{Format: "text"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Default() =\n%+v\nwant\n%+v", c, want)
	}
	if Default() == c {
		t.Fatal("Default returned a shared value")
	}
	// Default has no backends, so it is not valid on its own.
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "backends: at least one backend is required") {
		t.Fatalf("Validate(Default()) = %v, want the missing-backends error", err)
	}
}

// TestParseOnlyBackends checks that every absent key keeps its default.
func TestParseOnlyBackends(t *testing.T) {
	c := mustParse(t, oneBackend)
	want := Default()
	want.Backends = []Backend{{URL: "http://127.0.0.1:9001", Weight: 1, Addr: "127.0.0.1:9001"}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", c, want)
	}
}

func TestParseSeedReadmeExample(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "seed-readme.yaml"))
	if err != nil {
		t.Fatalf("seed README example does not load:\n%v", err)
	}
	want := Default()
	want.Backends = []Backend{
		{URL: "http://backend1:8080", Weight: 1, Addr: "backend1:8080"},
		{URL: "http://backend2:8080", Weight: 2, Addr: "backend2:8080"},
		{URL: "http://backend3:8080", Weight: 1, Addr: "backend3:8080"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", c, want)
	}
	if got := c.ListenAddr(); got != "0.0.0.0:8080" {
		t.Errorf("ListenAddr() = %q, want 0.0.0.0:8080", got)
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	tests := []struct {
		name  string
		src   string // oneBackend is appended unless src has backends
		check func(*Config) bool
	}{
		{"partial section", "circuitBreaker: {maxFailures: 3}\n", func(c *Config) bool {
			return c.CircuitBreaker.MaxFailures == 3 && c.CircuitBreaker.Enabled && c.CircuitBreaker.Timeout == 60*time.Second
		}},
		{"null scalar", "server:\n  port: ~\n  host: null\n", func(c *Config) bool {
			return c.Server.Port == 8080 && c.Server.Host == "0.0.0.0"
		}},
		{"null section", "rateLimit:\ntimeouts:\n", func(c *Config) bool {
			return c.RateLimit.Burst == 200 && c.Timeouts.ClientHeader == 10*time.Second
		}},
		{"explicit false overrides true", "server: {preserveHost: false}\ncircuitBreaker: {enabled: false}\n", func(c *Config) bool {
			return !c.Server.PreserveHost && !c.CircuitBreaker.Enabled
		}},
		{"failureOn5xx still loads", "circuitBreaker: {failureOn5xx: true}\noutlierDetection: {failureOn5xx: true}\n", func(c *Config) bool {
			return c.CircuitBreaker.FailureOn5xx && c.Outlier.FailureOn5xx
		}},
		{"panic threshold", "loadBalancing: {panicThreshold: 0}\n", func(c *Config) bool { return c.LoadBalancing.PanicThreshold == 0 }},
		{"weight defaults to 1", "", func(c *Config) bool { return c.Backends[0].Weight == 1 }},
		{"null weight defaults to 1", "backends:\n  - url: http://a\n    weight:\n", func(c *Config) bool { return c.Backends[0].Weight == 1 }},
		{"weight 0 drains", "backends:\n  - url: http://a\n    weight: 0\n", func(c *Config) bool { return c.Backends[0].Weight == 0 }},
		{"yaml 1.1 booleans", "rateLimit: {enabled: yes, perIP: on}\n", func(c *Config) bool {
			return c.RateLimit.Enabled && c.RateLimit.PerIP
		}},
		{"float rate", "rateLimit: {requestsPerSec: 0.5}\n", func(c *Config) bool { return c.RateLimit.RequestsPerSec == 0.5 }},
		{"integral float as integer", "server: {port: 9.0e3}\n", func(c *Config) bool { return c.Server.Port == 9000 }},
		{"metrics off", "metrics: {path: \"\"}\n", func(c *Config) bool { return c.Metrics.Path == "" }},
		{"empty host", "server: {host: \"\"}\n", func(c *Config) bool { return c.ListenAddr() == ":8080" }},
		{"seed's plain URL list", "backends:\n  - \"http://localhost:8081\"\n  - http://localhost:8082\n  - {url: http://localhost:8083, weight: 4}\n",
			func(c *Config) bool {
				return reflect.DeepEqual(c.Backends, []Backend{
					{URL: "http://localhost:8081", Weight: 1, Addr: "localhost:8081"},
					{URL: "http://localhost:8082", Weight: 1, Addr: "localhost:8082"},
					{URL: "http://localhost:8083", Weight: 4, Addr: "localhost:8083"},
				})
			}},
		{"health timeout equal to interval", "healthCheck: {interval: 1, timeout: 1}\n", func(c *Config) bool {
			return c.HealthCheck.Interval == time.Second && c.HealthCheck.Timeout == time.Second
		}},
		{"health timeout above interval", "healthCheck: {interval: 1, timeout: 3s}\n", func(c *Config) bool {
			return c.HealthCheck.Timeout == 3*time.Second
		}},
		{"health timeout defaults to a short interval", "healthCheck: {interval: 2}\n", func(c *Config) bool {
			return c.HealthCheck.Timeout == 2*time.Second
		}},
		{"health timeout default 5s below a long interval", "healthCheck: {interval: 1m}\n", func(c *Config) bool {
			return c.HealthCheck.Timeout == 5*time.Second
		}},
		{"metrics allow replaced", "metrics: {allow: [192.0.2.7, \"2001:db8::/32\"]}\n", func(c *Config) bool {
			return reflect.DeepEqual(c.Metrics.AllowPrefixes(), []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")})
		}},
		{"metrics allow empty", "metrics: {allow: []}\n", func(c *Config) bool { return len(c.Metrics.AllowPrefixes()) == 0 }},
		{"metrics allow null keeps the default", "metrics: {allow: ~}\n", func(c *Config) bool {
			return reflect.DeepEqual(c.Metrics.Allow, DefaultMetricsAllow)
		}},
		{"log format json", "log: {format: json}\n", func(c *Config) bool { return c.Log.Format == "json" }},
		{"burst follows rate when unset", "rateLimit: {requestsPerSec: 50}\n", func(c *Config) bool { return c.RateLimit.Burst == 100 }},
		{"burst rounds up", "rateLimit: {requestsPerSec: 0.2, burst: ~}\n", func(c *Config) bool { return c.RateLimit.Burst == 1 }},
		{"explicit burst wins", "rateLimit: {requestsPerSec: 50, burst: 60}\n", func(c *Config) bool { return c.RateLimit.Burst == 60 }},
		{"anchors and merge keys",
			"backends:\n  - &a {url: http://a, weight: 5}\n  - {<<: *a, url: http://b}\n  - {<<: [{weight: 7}, *a], url: http://c}\n" +
				"healthCheck: &hc {interval: 10}\n",
			func(c *Config) bool {
				return c.Backends[1].Weight == 5 && c.Backends[1].Addr == "b:80" &&
					c.Backends[2].Weight == 7 && c.HealthCheck.Interval == 10*time.Second
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if !strings.Contains(src, "backends:") {
				src += oneBackend
			}
			c := mustParse(t, src)
			if !tt.check(c) {
				t.Fatalf("unexpected config: %+v", c)
			}
		})
	}
}

func TestParseDurations(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"30", 30 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"1e1", 10 * time.Second},
		{`"500ms"`, 500 * time.Millisecond},
		{"10s", 10 * time.Second},
		{"1m", time.Minute},
		{"1h30m", 90 * time.Minute},
		{`" 2s "`, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			// Every duration key, seed and new, accepts every form.
			keys := []struct {
				section, key string
				get          func(*Config) time.Duration
			}{
				{"server", "shutdownTimeout", func(c *Config) time.Duration { return c.Server.ShutdownTimeout }},
				{"healthCheck", "interval", func(c *Config) time.Duration { return c.HealthCheck.Interval }},
				{"circuitBreaker", "timeout", func(c *Config) time.Duration { return c.CircuitBreaker.Timeout }},
				{"circuitBreaker", "resetTimeout", func(c *Config) time.Duration { return c.CircuitBreaker.ResetTimeout }},
				{"timeouts", "clientHeader", func(c *Config) time.Duration { return c.Timeouts.ClientHeader }},
				{"timeouts", "upstreamIdle", func(c *Config) time.Duration { return c.Timeouts.UpstreamIdle }},
			}
			for _, k := range keys {
				src := k.section + ":\n  " + k.key + ": " + tt.value + "\n" + oneBackend
				if k.section == "healthCheck" {
					src = "healthCheck:\n  timeout: 100ms\n  interval: " + tt.value + "\n" + oneBackend
				}
				c := mustParse(t, src)
				if got := k.get(c); got != tt.want {
					t.Errorf("%s.%s: %s = %v, want %v", k.section, k.key, tt.value, got, tt.want)
				}
			}
		})
	}
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		value string
		want  int64
	}{
		{"262144", 262144},
		{`"262144"`, 262144},
		{"256KiB", 256 << 10},
		{"256kib", 256 << 10},
		{"256 KiB", 256 << 10},
		{"300KB", 300000},
		{"1MiB", 1 << 20},
		{"1mb", 1000000},
		{"1GiB", 1 << 30},
		{"2GB", 2000000000},
		{"65536B", 65536},
		{"1e5", 100000},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c := mustParse(t, "limits:\n  maxRequestBody: "+tt.value+"\n"+oneBackend)
			if c.Limits.MaxRequestBody != tt.want {
				t.Errorf("maxRequestBody: %s = %d, want %d", tt.value, c.Limits.MaxRequestBody, tt.want)
			}
			if tt.want >= 16<<10 && tt.want <= 64<<20 {
				c := mustParse(t, "limits:\n  connectionBuffer: "+tt.value+"\n"+oneBackend)
				if c.Limits.ConnectionBuffer != tt.want {
					t.Errorf("connectionBuffer: %s = %d, want %d", tt.value, c.Limits.ConnectionBuffer, tt.want)
				}
			}
		})
	}
}

// TestParseErrors checks that each kind of problem is reported with the
// file, line, column and key path.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each error's full text, in order
	}{
		{"unknown key with suggestion", "server:\n  prot: 80\n" + oneBackend,
			[]string{`test.yaml:2:3: server.prot: unknown key (did you mean "port"?)`}},
		{"unknown key case", "server:\n  Port: 80\n" + oneBackend,
			[]string{`test.yaml:2:3: server.Port: unknown key (did you mean "port"?)`}},
		{"unknown top-level key", "servers:\n  port: 80\n" + oneBackend,
			[]string{`test.yaml:1:1: servers: unknown key (did you mean "server"?)`}},
		{"unknown key no suggestion", oneBackend + "  - url: http://b\n    zzzzzzzz: 1\n",
			[]string{`test.yaml:4:5: backends[1].zzzzzzzz: unknown key`}},
		{"duplicate key", "server:\n  port: 80\n  port: 81\n" + oneBackend,
			[]string{`test.yaml:3:3: server.port: duplicate key (first set at line 2)`}},
		{"string for integer", "server:\n  port: abc\n" + oneBackend,
			[]string{`test.yaml:2:3: server.port: expected an integer, got "abc"`}},
		{"quoted integer", "server:\n  port: \"8080\"\n" + oneBackend,
			[]string{`test.yaml:2:3: server.port: expected an integer, got "8080"`}},
		{"fractional integer", "circuitBreaker:\n  maxFailures: 2.5\n" + oneBackend,
			[]string{`test.yaml:2:3: circuitBreaker.maxFailures: expected an integer, got 2.5`}},
		{"mapping for integer", "server:\n  port: {a: 1}\n" + oneBackend,
			[]string{`test.yaml:2:3: server.port: expected an integer, got a mapping`}},
		{"bad bool", "rateLimit:\n  enabled: maybe\n" + oneBackend,
			[]string{`test.yaml:2:3: rateLimit.enabled: expected true or false, got "maybe"`}},
		{"string for float", "rateLimit:\n  requestsPerSec: fast\n" + oneBackend,
			[]string{`test.yaml:2:3: rateLimit.requestsPerSec: expected a number, got "fast"`}},
		{"list for string", "server:\n  host: [a]\n" + oneBackend,
			[]string{`test.yaml:2:3: server.host: expected a string, got a list`}},
		{"scalar for section", "server: 8080\n" + oneBackend,
			[]string{`test.yaml:1:1: server: expected a mapping, got 8080`}},
		{"mapping for backends", "backends:\n  url: http://a\n",
			[]string{`test.yaml:1:1: backends: expected a list, got a mapping`}},
		{"number backend", "backends:\n  - 8080\n",
			[]string{`test.yaml:2:5: backends[0]: expected a URL string or a mapping with a url key, got 8080`}},
		{"null backend", "backends:\n  -\n  - url: http://a\n",
			[]string{`test.yaml:2:4: backends[0]: expected a URL string or a mapping with a url key, got null`}},
		{"list backend", "backends:\n  - [http://a]\n",
			[]string{`test.yaml:2:5: backends[0]: expected a URL string or a mapping with a url key, got a list`}},
		{"bad legacy backend", "backends:\n  - \"http://a\"\n  - \"ftp://b\"\n",
			[]string{`test.yaml:3:5: backends[1].url: must be an http or https URL with a host, e.g. "http://backend1:8080", got "ftp://b"`}},
		{"bad duration string", "timeouts:\n  clientIdle: 10 seconds\n" + oneBackend,
			[]string{`test.yaml:2:3: timeouts.clientIdle: expected a duration: seconds (e.g. 30 or 0.5) or a string like "500ms", "10s", "1m", got "10 seconds"`}},
		{"duration list", "healthCheck:\n  interval: [1]\n" + oneBackend,
			[]string{`test.yaml:2:3: healthCheck.interval: expected a duration: seconds (e.g. 30 or 0.5) or a string like "500ms", "10s", "1m", got a list`}},
		{"infinite duration", "server:\n  shutdownTimeout: .inf\n" + oneBackend,
			[]string{`test.yaml:2:3: server.shutdownTimeout: must be a finite number of seconds, got .inf`}},
		{"huge duration", "server:\n  shutdownTimeout: 1e300\n" + oneBackend,
			[]string{`test.yaml:2:3: server.shutdownTimeout: duration out of range, got 1e300`}},
		{"zero duration", "timeouts:\n  upstreamConnect: 0\n" + oneBackend,
			[]string{`test.yaml:2:3: timeouts.upstreamConnect: must be greater than 0, got 0s`}},
		{"negative duration string", "circuitBreaker:\n  resetTimeout: -5s\n" + oneBackend,
			[]string{`test.yaml:2:3: circuitBreaker.resetTimeout: must be greater than 0, got -5s`}},
		{"negative seed duration", "server:\n  shutdownTimeout: -1\n" + oneBackend,
			[]string{`test.yaml:2:3: server.shutdownTimeout: must be greater than 0, got -1s`}},
		{"bad size unit", "limits:\n  connectionBuffer: 256XB\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.connectionBuffer: expected a size: an integer number of bytes, optionally followed by a unit B, KB, KiB, MB, MiB, GB or GiB (e.g. "256KiB"), got "256XB"`}},
		{"fractional size", "limits:\n  maxRequestBody: 1.5MiB\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.maxRequestBody: expected a size`}},
		{"size overflow", "limits:\n  maxRequestBody: 99999999999GiB\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.maxRequestBody: size out of range, got "99999999999GiB"`}},
		{"negative size", "limits:\n  maxRequestBody: -1\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.maxRequestBody: must be 0 (unlimited) or more, got -1`}},
		{"connection buffer too small", "limits:\n  connectionBuffer: 1KiB\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.connectionBuffer: must be between 16KiB and 64MiB, got 1KiB`}},
		{"connection buffer too big", "limits:\n  connectionBuffer: 1GiB\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.connectionBuffer: must be between 16KiB and 64MiB, got 1GiB`}},
		{"head larger than buffer", "limits:\n  maxHeaderBytes: 32KiB\n  connectionBuffer: 16KiB\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.maxHeaderBytes: must not exceed limits.connectionBuffer (16KiB), got 32768`}},
		{"request line larger than head", "limits:\n  maxRequestLine: 20000\n" + oneBackend,
			[]string{`test.yaml:2:3: limits.maxRequestLine: must not exceed limits.maxHeaderBytes (16384), got 20000`}},
		{"zero limits", "limits:\n  maxConnections: -1\n  maxHeaders: 0\n" + oneBackend,
			[]string{
				`test.yaml:2:3: limits.maxConnections: must be 0 (sized from the file descriptor limit) or more, got -1`,
				`test.yaml:3:3: limits.maxHeaders: must be at least 1, got 0`,
			}},
		{"port out of range", "server:\n  port: 70000\n" + oneBackend,
			[]string{`test.yaml:2:3: server.port: must be between 0 and 65535, got 70000`}},
		{"bad host", "server:\n  host: \"my host\"\n" + oneBackend,
			[]string{`test.yaml:2:3: server.host: must be an IP address or a host name, got "my host"`}},
		{"bracketed host", "server:\n  host: \"[::1]\"\n" + oneBackend,
			[]string{`test.yaml:2:3: server.host: write an IPv6 address without brackets, got "[::1]"`}},
		{"event loops", "server:\n  eventLoops: -1\n" + oneBackend,
			[]string{`test.yaml:2:3: server.eventLoops: must be between 0 and 1024, got -1`}},
		{"empty backend list", "server:\n  port: 80\nbackends: []\n",
			[]string{`test.yaml:3:1: backends: at least one backend is required`}},
		{"null backend list", "backends:\n",
			[]string{`test.yaml:1:1: backends: at least one backend is required`}},
		{"absent backend list", "server:\n  port: 80\n",
			[]string{`test.yaml: backends: at least one backend is required`}},
		{"negative weight", oneBackend + "  - url: http://b\n    weight: -2\n",
			[]string{`test.yaml:4:5: backends[1].weight: must be between 0 and 1000, got -2`}},
		{"weight too big", oneBackend + "    weight: 1001\n",
			[]string{`test.yaml:3:5: backends[0].weight: must be between 0 and 1000, got 1001`}},
		{"https backend without host", "backends:\n  - url: https://\n",
			[]string{`test.yaml:2:5: backends[0].url: has no host; must be an http or https URL with a host, e.g. "http://backend1:8080"`}},
		{"missing scheme", "backends:\n  - url: backend1:8080\n",
			[]string{`test.yaml:2:5: backends[0].url: has no scheme; write "http://backend1:8080", got "backend1:8080"`}},
		{"missing scheme, IP and port", "backends:\n  - url: 127.0.0.1:23001\n",
			[]string{`test.yaml:2:5: backends[0].url: has no scheme; write "http://127.0.0.1:23001", got "127.0.0.1:23001"`}},
		{"missing scheme, host only", "backends:\n  - localhost\n",
			[]string{`test.yaml:2:5: backends[0].url: has no scheme; write "http://localhost", got "localhost"`}},
		{"missing scheme, not fixable", "backends:\n  - url: 10.0.0.1:8080/api\n",
			[]string{`test.yaml:2:5: backends[0].url: has no scheme; write it as "http://host:port", e.g. "http://backend1:8080", got "10.0.0.1:8080/api"`}},
		{"other scheme", "backends:\n  - url: ftp://a:21\n",
			[]string{`test.yaml:2:5: backends[0].url: must be an http or https URL with a host, e.g. "http://backend1:8080", got "ftp://a:21"`}},
		{"missing url", "backends:\n  - weight: 3\n",
			[]string{`test.yaml:2:5: backends[0].url: is required; must be an http or https URL with a host, e.g. "http://backend1:8080"`}},
		{"no host", "backends:\n  - url: http:///x\n",
			[]string{`test.yaml:2:5: backends[0].url: has no host`}},
		{"path", "backends:\n  - url: http://a/api\n",
			[]string{`test.yaml:2:5: backends[0].url: path must be empty or "/", got "/api"`}},
		{"query", "backends:\n  - url: http://a/?x=1\n",
			[]string{`test.yaml:2:5: backends[0].url: must not contain a query, got "http://a/?x=1"`}},
		{"fragment", "backends:\n  - url: \"http://a#f\"\n",
			[]string{`test.yaml:2:5: backends[0].url: must not contain a fragment, got "http://a#f"`}},
		{"userinfo", "backends:\n  - url: http://u:p@a\n",
			[]string{`test.yaml:2:5: backends[0].url: must not contain user information`}},
		{"port range", "backends:\n  - url: http://a:99999\n",
			[]string{`test.yaml:2:5: backends[0].url: port must be between 1 and 65535, got "99999"`}},
		{"unparsable url", "backends:\n  - url: \"http://a b\"\n",
			[]string{`test.yaml:2:5: backends[0].url: invalid URL "http://a b": invalid character " " in host name`}},
		{"duplicate backend", "backends:\n  - url: http://a:80\n  - url: http://b\n  - url: http://A/\n",
			[]string{`test.yaml:4:5: backends[2].url: duplicate backend "http://A/": backends[0] ("http://a:80") has the same address a:80`}},
		{"unknown algorithm", "loadBalancing:\n  algorithm: fastest\n" + oneBackend,
			[]string{`test.yaml:2:3: loadBalancing.algorithm: unknown algorithm "fastest" (valid: round-robin, weighted-round-robin, least-connections, p2c, ewma, consistent-hash, random)`}},
		{"bad hash key", "loadBalancing:\n  hashKey: \"header:\"\n" + oneBackend,
			[]string{`test.yaml:2:3: loadBalancing.hashKey: must be "client-ip", "path", "header:Name" or "cookie:name", got "header:"`}},
		{"hash load factor below 1", "loadBalancing:\n  hashLoadFactor: 0.5\n" + oneBackend,
			[]string{`test.yaml:2:3: loadBalancing.hashLoadFactor: must be a number of at least 1, got 0.5`}},
		{"retry budget over 100", "loadBalancing:\n  retryBudget: 101\n" + oneBackend,
			[]string{`test.yaml:2:3: loadBalancing.retryBudget: must be between 0 and 100, got 101`}},
		{"panic threshold over 100", "loadBalancing:\n  panicThreshold: 101\n" + oneBackend,
			[]string{`test.yaml:2:3: loadBalancing.panicThreshold: must be between 0 and 100, got 101`}},
		{"negative backend maxConnections", "backends:\n  - url: http://a:1\n    maxConnections: -1\n",
			[]string{`test.yaml:3:5: backends[0].maxConnections: must be between 0 and 1000000, got -1`}},
		{"circuit breaker counts", "circuitBreaker:\n  maxFailures: 0\n  halfOpenSuccess: -1\n" + oneBackend,
			[]string{
				`test.yaml:2:3: circuitBreaker.maxFailures: must be between 1 and 1000, got 0`,
				`test.yaml:3:3: circuitBreaker.halfOpenSuccess: must be between 1 and 1000, got -1`,
			}},
		{"rate limit", "rateLimit:\n  requestsPerSec: 0\n  burst: 0\n" + oneBackend,
			[]string{
				`test.yaml:2:3: rateLimit.requestsPerSec: must be a number greater than 0, got 0`,
				`test.yaml:3:3: rateLimit.burst: must be at least 1, got 0`,
			}},
		{"rate limit nan", "rateLimit:\n  requestsPerSec: .nan\n" + oneBackend,
			[]string{`test.yaml:2:3: rateLimit.requestsPerSec: must be a number greater than 0, got NaN`}},
		{"upstream", "upstream:\n  retries: 6\n  maxIdlePerBackend: -1\n" + oneBackend,
			[]string{
				`test.yaml:2:3: upstream.retries: must be between 0 and 5, got 6`,
				`test.yaml:3:3: upstream.maxIdlePerBackend: must be between 0 and 10000, got -1`,
			}},
		{"metrics path", "metrics:\n  path: metrics\n" + oneBackend,
			[]string{`test.yaml:2:3: metrics.path: must start with "/" (or be "" to turn metrics off), got "metrics"`}},
		{"metrics path query", "metrics:\n  path: /m?x\n" + oneBackend,
			[]string{`test.yaml:2:3: metrics.path: must be a plain path`}},
		{"invalid yaml", "server:\n  port: 80\nbackends 2\n",
			[]string{`test.yaml:3: invalid YAML: could not find expected ':'`}},
		{"invalid yaml tab", "server:\n\tport: 80\n",
			[]string{`test.yaml:2:1: invalid YAML: a tab in the indentation (YAML does not allow tabs for indentation; indent with spaces)`}},
		{"invalid yaml tab in list", "server:\n  port: 80\nbackends:\n\t- url: http://a\n",
			[]string{`test.yaml:4:1: invalid YAML: a tab in the indentation (YAML does not allow tabs for indentation; indent with spaces)`}},
		{"invalid yaml tab after spaces", "backends:\n  - url: http://a\n  \tweight: 2\n",
			[]string{`test.yaml:3:3: invalid YAML: a tab in the indentation (YAML does not allow tabs for indentation; indent with spaces)`}},
		{"invalid yaml bad token, no tab", "server:\n  port: @80\n",
			[]string{`test.yaml:2: invalid YAML: found character that cannot start any token`}},
		{"metrics allow", "metrics:\n  allow: [10.0.0.0/8, nope]\n" + oneBackend,
			[]string{`test.yaml:2:23: metrics.allow[1]: must be a CIDR or an IP address, got "nope"`}},
		{"log format", "log:\n  format: xml\n" + oneBackend,
			[]string{`test.yaml:2:3: log.format: must be "text" or "json", got "xml"`}},
		{"unknown anchor", "server: *x\n",
			[]string{`test.yaml: invalid YAML: unknown anchor 'x' referenced`}},
		{"empty file", "",
			[]string{`test.yaml: empty configuration: at least a backends list is required`}},
		{"comments only", "# nothing here\n",
			[]string{`test.yaml: empty configuration: at least a backends list is required`}},
		{"null document", "---\n~\n",
			[]string{`test.yaml: empty configuration: at least a backends list is required`}},
		{"top-level list", "- url: http://a\n",
			[]string{`test.yaml:1:1: the top level must be a mapping (server:, backends:, ...), got a list`}},
		{"top-level scalar", "hello\n",
			[]string{`test.yaml:1:1: the top level must be a mapping (server:, backends:, ...), got "hello"`}},
		{"two documents", oneBackend + "---\n" + oneBackend,
			[]string{`test.yaml:3:1: more than one YAML document; a configuration file holds exactly one`}},
		{"bad merge", "server:\n  <<: 5\n" + oneBackend,
			[]string{`test.yaml:2:3: server: merge key value must be a mapping or a sequence of mappings, got 5`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), "test.yaml")
			if c != nil {
				t.Errorf("Parse returned a config along with an error")
			}
			errs := configErrors(t, err)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, e := range errs {
				if e.File != "test.yaml" {
					t.Errorf("error %d: File = %q, want test.yaml", i, e.File)
				}
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d:\n got  %s\n want %s", i, e.Error(), tt.want[i])
				}
			}
		})
	}
}

// TestParseReportsAllErrorsInFileOrder checks that problems from decoding
// and from validation are reported together, sorted by position, each
// once.
func TestParseReportsAllErrorsInFileOrder(t *testing.T) {
	src := `loadBalancing:
  algorithm: fastest
server:
  prot: 1
  port: -5
backends:
  - url: ftp://a
    weight: -1
  - url: http://b
    weight: lots
  - 7
healthCheck:
  timeout: 0
`
	_, err := Parse([]byte(src), "order.yaml")
	errs := configErrors(t, err)
	want := []string{
		`order.yaml:2:3: loadBalancing.algorithm: unknown algorithm "fastest"`,
		`order.yaml:4:3: server.prot: unknown key (did you mean "port"?)`,
		`order.yaml:5:3: server.port: must be between 0 and 65535, got -5`,
		`order.yaml:7:5: backends[0].url: must be an http or https URL with a host, e.g. "http://backend1:8080", got "ftp://a"`,
		`order.yaml:8:5: backends[0].weight: must be between 0 and 1000, got -1`,
		`order.yaml:10:5: backends[1].weight: expected an integer, got "lots"`,
		`order.yaml:11:5: backends[2]: expected a URL string or a mapping with a url key, got 7`,
		`order.yaml:13:3: healthCheck.timeout: must be greater than 0, got 0s`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, e := range errs {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d:\n got  %s\n want %s", i, e, want[i])
		}
	}
	if !strings.Contains(err.Error(), want[0]+" (valid:") || strings.Count(err.Error(), "\n") != len(want)-1 {
		t.Errorf("joined error text is not one line per problem:\n%v", err)
	}
}

func TestValidateInCode(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"zero weight drains", func(c *Config) { c.Backends[1].Weight = 0 }, nil},
		{"no backends", func(c *Config) { c.Backends = nil }, []string{"backends: at least one backend is required"}},
		{"request ID header", func(c *Config) { c.RequestID.Header = "X Id" }, []string{`requestId.header: must be a header field name such as "X-Request-Id", got "X Id"`}},
		{"request ID on a framing field", func(c *Config) { c.RequestID.Header = "content-length" }, []string{`requestId.header: must not be a field ConnX frames, routes or forwards itself (Host, Content-Length, Transfer-Encoding, Connection, X-Forwarded-*, ...), got "content-length"`}},
		{"request ID on X-Forwarded-For", func(c *Config) { c.RequestID.Header = "X-Forwarded-For" }, []string{`requestId.header: must not be a field ConnX frames, routes or forwards itself (Host, Content-Length, Transfer-Encoding, Connection, X-Forwarded-*, ...), got "X-Forwarded-For"`}},
		{"request ID off", func(c *Config) { c.RequestID = RequestID{} }, nil},
		{"several problems in field order", func(c *Config) {
			c.Server.Port = -1
			c.Backends[1].URL = "http://a:9001"
			c.Timeouts.ClientBody = 0
			c.Limits.ConnectionBuffer = 0
		}, []string{
			"server.port: must be between 0 and 65535, got -1",
			`backends[1].url: duplicate backend "http://a:9001": backends[0] ("http://A:9001") has the same address a:9001`,
			"timeouts.clientBody: must be greater than 0, got 0s",
			"limits.connectionBuffer: must be between 16KiB and 64MiB, got 0B",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Backends = []Backend{{URL: "http://A:9001", Weight: 1}, {URL: "http://[::1]", Weight: 1}}
			tt.edit(c)
			err := c.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c.Backends[0].Addr != "a:9001" || c.Backends[1].Addr != "[::1]:80" {
					t.Fatalf("Addr not filled: %+v", c.Backends)
				}
				return
			}
			errs := configErrors(t, err)
			if len(errs) != len(tt.wantErr) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.wantErr), err)
			}
			for i, e := range errs {
				if e.File != "" || e.Line != 0 {
					t.Errorf("error %d has a position: %+v", i, e)
				}
				if e.Error() != tt.wantErr[i] {
					t.Errorf("error %d:\n got  %s\n want %s", i, e, tt.wantErr[i])
				}
			}
		})
	}
}

func TestBackendAddr(t *testing.T) {
	tests := []struct {
		url, addr string
	}{
		{"http://backend1:8080", "backend1:8080"},
		{"http://backend1", "backend1:80"},
		{"http://backend1/", "backend1:80"},
		{"HTTP://Backend1:81", "backend1:81"},
		{"http://10.0.0.1", "10.0.0.1:80"},
		{"http://[::1]:9001", "[::1]:9001"},
		{"http://[fe80::1]", "[fe80::1]:80"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			addr, msg := backendAddr(tt.url)
			if msg != "" || addr != tt.addr {
				t.Fatalf("backendAddr(%q) = %q, %q; want %q", tt.url, addr, msg, tt.addr)
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"0.0.0.0", 8080, "0.0.0.0:8080"},
		{"", 80, ":80"},
		{"::1", 8443, "[::1]:8443"},
		{"localhost", 1, "localhost:1"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			c := Default()
			c.Server.Host, c.Server.Port = tt.host, tt.port
			if got := c.ListenAddr(); got != tt.want {
				t.Fatalf("ListenAddr() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "f.yaml", Line: 12, Column: 5, Key: "backends[1].weight", Msg: "m"}, "f.yaml:12:5: backends[1].weight: m"},
		{Error{File: "f.yaml", Line: 3, Key: "k", Msg: "m"}, "f.yaml:3: k: m"},
		{Error{File: "f.yaml", Key: "k", Msg: "m"}, "f.yaml: k: m"},
		{Error{File: "f.yaml", Msg: "m"}, "f.yaml: m"},
		{Error{Key: "k", Msg: "m"}, "k: m"},
		{Error{Line: 2, Column: 1, Key: "k", Msg: "m"}, "line 2: k: m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"port", "host", "shutdownTimeout", "eventLoops", "preserveHost"}
	tests := []struct{ key, want string }{
		{"prot", "port"},
		{"PORT", "port"},
		{"hots", "host"},
		{"shutdowntimout", "shutdownTimeout"},
		{"eventloop", "eventLoops"},
		{"preserve_host", "preserveHost"},
		{"xyzzy", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := suggest(tt.key, keys); got != tt.want {
				t.Fatalf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadUsesPathInErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("server:\n  port: x\n"+oneBackend), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2:3: server.port:") {
		t.Fatalf("Load error = %v, want it to start with %s:2:3", err, path)
	}
}

// TestShippedConfigs loads configs/config.yaml and every example.
func TestShippedConfigs(t *testing.T) {
	dir := filepath.Join("..", "..", "configs")
	examples, err := filepath.Glob(filepath.Join(dir, "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The seed README promises these names.
	for _, name := range []string{
		"basic.yaml", "production.yaml", "development.yaml", "monitoring.yaml",
		"with-rate-limiting.yaml", "weighted-round-robin.yaml", "least-connections.yaml", "full-features.yaml",
	} {
		if _, err := os.Stat(filepath.Join(dir, "examples", name)); err != nil {
			t.Errorf("missing example: %v", err)
		}
	}
	for _, path := range append([]string{filepath.Join(dir, "config.yaml")}, examples...) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := Load(path)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(c.Backends) == 0 && c.Discovery == nil {
				t.Fatal("no backends, and no discovery for the default pool")
			}
		})
	}
}

func TestDefaultConfigFile(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "configs", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, b := range c.Backends {
		addrs = append(addrs, b.Addr)
	}
	want := []string{"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"}
	if !reflect.DeepEqual(addrs, want) {
		t.Fatalf("backends = %v, want %v", addrs, want)
	}
	// Its header says every value it shows is the default.
	def := Default()
	def.Backends = c.Backends
	if !reflect.DeepEqual(c, def) {
		t.Errorf("configs/config.yaml shows values other than the defaults:\n%+v\nDefault():\n%+v", c, def)
	}
	text, err := os.ReadFile(filepath.Join("..", "..", "configs", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Join(balancer.Names(), " | "); !strings.Contains(string(text), names) {
		t.Errorf("configs/config.yaml does not list the algorithms as %q", names)
	}
}

// TestDocumentedDefaults checks that the "complete example with every
// default" in docs/configuration.md is exactly Default() plus its backend,
// so the documentation cannot drift from the code.
func TestDocumentedDefaults(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Complete example with every default")
	if !ok {
		t.Fatal("docs/configuration.md lacks the complete example section")
	}
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	got, err := Parse([]byte(example), "configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Backends = []Backend{{URL: "http://backend1:8080", Weight: 1, Addr: "backend1:8080"}}
	// [] in the example is an empty list; Default has nil.
	for _, l := range []*[]string{&got.RateLimit.TrustedProxies, &got.RateLimit.Exempt,
		&got.Server.ProxyProtocol.TrustedSources, &got.Server.Allow, &got.Server.Deny} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(got.Pools) == 0 && len(got.Routes) == 0 {
		got.Pools, got.Routes = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("documented example =\n%+v\nDefault() =\n%+v", got, want)
	}
	// Every key of the schema is in the example.
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(example), &node); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := joinKey(prefix, n.Content[i].Value)
				written[k] = true
				walk(n.Content[i+1], k)
			}
		}
	}
	walk(&node, "")
	var schema func(t reflect.Type, prefix string) []string
	schema = func(t reflect.Type, prefix string) []string {
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			k := joinKey(prefix, name)
			keys = append(keys, k)
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != durationType {
				keys = append(keys, schema(ft, k)...)
			}
		}
		return keys
	}
	for _, k := range schema(reflect.TypeFor[Config](), "") {
		// Pools and routes have no defaults to show: their sections'
		// tables list their keys, checked below.
		if strings.HasPrefix(k, "pools.") || strings.HasPrefix(k, "routes.") {
			continue
		}
		if !written[k] {
			t.Errorf("docs/configuration.md: the complete example lacks %s", k)
		}
	}
	for _, s := range []struct {
		section string
		keys    []string
	}{
		{"pools", slices.DeleteFunc(schemaKeys(reflect.TypeFor[Pool]()), func(k string) bool { return k == "name" })}, // the key in pools
		{"routes", routeKeys(reflect.TypeFor[Route](), "")},
	} {
		_, text, ok := strings.Cut(string(doc), "\n## `"+s.section+"`\n")
		if !ok {
			t.Errorf("docs/configuration.md lacks the %s section", s.section)
			continue
		}
		text, _, _ = strings.Cut(text, "\n## ")
		for _, k := range s.keys {
			if !strings.Contains(text, "\n| `"+k+"` |") {
				t.Errorf("docs/configuration.md: the table of %s lacks %s", s.section, k)
			}
		}
	}
}

// routeKeys lists the keys of a route, going into match, redirect and
// respond (timeouts and rateLimit have the top-level sections' keys).
func routeKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		keys = append(keys, joinKey(prefix, name))
		switch ft := f.Type; ft {
		case reflect.TypeFor[RouteMatch](), reflect.TypeFor[*Redirect](), reflect.TypeFor[*Respond]():
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			keys = append(keys, routeKeys(ft, joinKey(prefix, name))...)
		}
	}
	return keys
}

// TestDocumentedPoolsAndRoutes checks that the examples of the pools and
// routes sections of docs/configuration.md load, together.
func TestDocumentedPoolsAndRoutes(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var src string
	for _, section := range []string{"pools", "routes"} {
		_, text, _ := strings.Cut(string(doc), "\n## `"+section+"`\n")
		_, text, _ = strings.Cut(text, "```yaml\n")
		example, _, _ := strings.Cut(text, "```")
		src += example
	}
	c := mustParse(t, src+oneBackend)
	if len(c.Pools) != 2 || len(c.Routes) != 3 || c.Pools[0].HealthCheck.Interval != 10*time.Second ||
		c.Pools[0].HealthCheck.Path != "/healthz" || c.Routes[0].RateLimit.RequestsPerSec != 50 {
		t.Fatalf("unexpected config: %+v", c)
	}
}

// TestStringLists checks that every list-of-strings key decodes from YAML
// and that an empty list replaces a default one.
func TestStringLists(t *testing.T) {
	c, err := Parse([]byte(oneBackend+`
server:
  upgrades: []
rateLimit:
  trustedProxies: ["10.0.0.0/8", 192.168.1.1]
  exempt: ["/metrics", "/health*"]
`), "lists.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Server.Upgrades) != 0 {
		t.Errorf("server.upgrades = %q, want empty", c.Server.Upgrades)
	}
	if want := []string{"10.0.0.0/8", "192.168.1.1"}; !reflect.DeepEqual(c.RateLimit.TrustedProxies, want) {
		t.Errorf("rateLimit.trustedProxies = %q, want %q", c.RateLimit.TrustedProxies, want)
	}
	if want := []string{"/metrics", "/health*"}; !reflect.DeepEqual(c.RateLimit.Exempt, want) {
		t.Errorf("rateLimit.exempt = %q, want %q", c.RateLimit.Exempt, want)
	}
	_, err = Parse([]byte(oneBackend+"rateLimit:\n  exempt: [{a: 1}]\n"), "bad.yaml")
	if errs := configErrors(t, err); errs[0].Key != "rateLimit.exempt[0]" {
		t.Errorf("error key = %q, want rateLimit.exempt[0]", errs[0].Key)
	}
}

// TestUnknownAlgorithmListsAll checks that the error for an unknown
// algorithm lists every registered policy, and that docs/configuration.md
// quotes it as the binary writes it.
func TestUnknownAlgorithmListsAll(t *testing.T) {
	_, err := Parse([]byte("loadBalancing:\n  algorithm: fastest\n"+oneBackend), "test.yaml")
	errs := configErrors(t, err)
	msg := errs[0].Key + ": " + errs[0].Msg
	want := `loadBalancing.algorithm: unknown algorithm "fastest" (valid: ` + strings.Join(balancer.Names(), ", ") + ")"
	if msg != want {
		t.Fatalf("error %q, want %q", msg, want)
	}
	for _, name := range balancer.Names() {
		if _, err := Parse([]byte("loadBalancing:\n  algorithm: "+name+"\n"+oneBackend), "test.yaml"); err != nil {
			t.Errorf("algorithm %s: %v", name, err)
		}
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(doc), "unknown algorithm"); n == 0 || strings.Count(string(doc), want) != n {
		t.Errorf("docs/configuration.md quotes the unknown-algorithm error other than as %q", want)
	}
}

// TestDocumentedErrors checks every error message the documentation
// quotes (`key.path: message` in docs/*.md and README.md) against what
// Parse says for a file that has that problem, so a quote cannot go
// stale. List indexes are compared as [N].
func TestDocumentedErrors(t *testing.T) {
	files := []string{`
server:
  prot: 1
  port: 70000
  host: "my host"
  shutdownTimeout: 0
  upgrades: ["web socket"]
  proxyProtocol: {enabled: true, timeout: 0}
  allow: ["10.0.0.0/8", office]
  http2: {maxConcurrentStreams: 0}
  redirectHTTP: true
  redirectHTTPExempt: [".well-known/acme-challenge/"]
backends:
  - url: "http://a:80"
    weight: -2
  - url: "https://b"
  - url: "http://A/"
  - url: "http://c/api"
  - url: "127.0.0.1:23001"
  - url: "ftp://backend1:21"
loadBalancing:
  algorithm: fastest
  panicThreshold: 101
healthCheck:
  timeout: 0
  kind: grpc
circuitBreaker:
  maxFailures: 0
rateLimit:
  requestsPerSec: 0
  key: cookie
  exempt: ["/a", "/a*b"]
  redis: {address: redis, syncInterval: 0}
timeouts:
  upstreamConnect: 0
limits:
  connectionBuffer: 1KiB
  maxConnections: -1
upstream:
  retries: 6
  proxyProtocol: v3
  protocol: h3
tls:
  serverName: "a b"
  caFile: /nonexistent-ca.pem
  keyFile: /nonexistent.key
metrics:
  path: "metrics"
  allow: [10.0.0.0/8, nope]
admin:
  listen: "9090"
accessLog:
  sample: 0
log:
  format: xml
requestId:
  header: "X Id"
`, `
server:
  tls:
    port: 8080
    minVersion: "1.0"
    certificates: [{certFile: /nonexistent.pem, keyFile: /nonexistent.key}]
    clientAuth: {mode: optional, caFile: /nonexistent-ca.pem, subjectHeader: "X Subject"}
` + oneBackend, `
server:
  tls:
    certificates: [{certFile: /nonexistent.pem, keyFile: /nonexistent.key}]
    clientAuth: {subjectHeader: X-Forwarded-User}
` + oneBackend, `
tls: {certFile: /nonexistent.pem}
` + oneBackend, `
limits:
  maxHeaderBytes: 32768
  connectionBuffer: 16KiB
server:
  proxyProtocol: {trustedSources: [lb.example]}
` + oneBackend, `
pools:
  default: {backends: ["http://a"]}
  api:
    backends: []
    healthCheck: {pth: /x}
routes:
  - {pool: apj, match: {path: /a}, deny: [bad]}
  - {pool: default, match: {path: /b}}
  - {match: {path: /c}, redirect: {location: "/x{uri}", code: 303}}
  - {match: {path: /d}, respond: {status: 204, body: x}}
  - {match: {path: /e}}
  - {match: {pathPrefix: /v1/}, pool: api, stripPrefix: /v2, timeouts: {clientHeader: 1}, setRequestHeaders: {A: b, Host: x}}
  - {match: {path: /f}, redirect: {location: /}, stripPrefix: /f}
  - {match: {host: "a.*.example.com", pathPrefix: "/a//b"}, pool: api}
  - {name: api, pool: api, match: {path: /g}}
  - {name: api, pool: api, match: {path: /h}}
  - {pool: api, match: {path: /a}}
`, `
backends: ["http://a"]
pools:
  api:
    backends: ["http://b"]
    discovery: {dns: {name: "10.0.0.1", type: MX, resolver: "ns.example:53", minTTL: 0, maxMembers: 0}}
  web:
    discovery: {}
`, `
pools:
  api: {discovery: {dns: {name: api.test}}}
` + oneBackend, `
pools:
  api: {discovery: {dns: {name: api.test, type: SRV, port: 80, minTTL: 10s, maxTTL: 5s}}}
` + oneBackend, `
routes:
  - {pool: default, match: {path: /a}, setRequestHeaders: {X-Request-Id: x}}
` + oneBackend, `
backends: ["https://10.0.0.1:8443"]
upstream: {proxyProtocol: v1}
`, `
pools:
  g: {backends: ["https://g:443"], upstream: {protocol: h2c}}
` + oneBackend, `
backends:
  - {url: "http://a:80", tls: {serverName: a}}
pools:
  mixed:
    backends:
      - {url: "https://10.0.5.1:8443", tls: {caFile: /nonexistent-ca.pem}}
`, `
pools:
  g: {backends: ["http://g:50051"], upstream: {protocol: h2}}
  d: {discovery: {dns: {name: g.test}}, upstream: {protocol: h2}}
` + oneBackend}
	index := regexp.MustCompile(`\[\d+\]`)
	said := map[string]bool{}
	for _, src := range files {
		_, err := Parse([]byte(src), "test.yaml")
		for _, e := range configErrors(t, err) {
			said[index.ReplaceAllString(e.Key+": "+e.Msg, "[N]")] = true
		}
	}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	quote := regexp.MustCompile(`\b([a-zA-Z]+(?:\.[a-zA-Z]+|\[\d+\])+: (?:must|unknown|https|has|duplicate|path|is|cannot|shadowed|route|not|a wildcard|at least|applies|"\*")[^` + "`" + `\n]*)`)
	checked := 0
	for _, path := range append(docs, "../../README.md") {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range quote.FindAllStringSubmatch(string(text), -1) {
			checked++
			if q := index.ReplaceAllString(m[1], "[N]"); !said[q] {
				t.Errorf("%s quotes an error ConnX does not write:\n  %s", filepath.Base(path), m[1])
			}
		}
	}
	if checked < 20 {
		t.Fatalf("found only %d quoted errors in the documentation", checked)
	}
}

// TestRateLimitRedis checks rateLimit.redis: the exact form, its
// defaults, a route's inheritance and the errors.
func TestRateLimitRedis(t *testing.T) {
	c := mustParse(t, oneBackend+`
rateLimit:
  enabled: true
  requestsPerSec: 100
  burst: 200
  perIP: true
  redis:
    address: "127.0.0.1:6379"   # this exact form must work
routes:
  - {match: {path: /a}, pool: default, rateLimit: {requestsPerSec: 5}}
  - {match: {path: /b}, pool: default, rateLimit: {redis: {db: 2}}}
`)
	want := RateLimitRedis{Address: "127.0.0.1:6379", Prefix: "connx:", SyncInterval: 50 * time.Millisecond, Timeout: 250 * time.Millisecond}
	if c.RateLimit.Redis != want {
		t.Errorf("rateLimit.redis = %+v, want %+v", c.RateLimit.Redis, want)
	}
	if got := c.Routes[0].RateLimit.Redis; got != want {
		t.Errorf("routes[0].rateLimit.redis = %+v, want the top-level %+v", got, want)
	}
	want.DB = 2
	if got := c.Routes[1].RateLimit.Redis; got != want {
		t.Errorf("routes[1].rateLimit.redis = %+v, want %+v", got, want)
	}
	for _, tt := range []struct{ yaml, key string }{
		{"address: localhost", "rateLimit.redis.address"},
		{"address: ':6379'", "rateLimit.redis.address"},
		{"address: 'h:0'", "rateLimit.redis.address"},
		{"db: -1", "rateLimit.redis.db"},
		{"prefix: ''", "rateLimit.redis.prefix"},
		{"syncInterval: 11s", "rateLimit.redis.syncInterval"},
		{"timeout: 0", "rateLimit.redis.timeout"},
		{"", ""},
		{"address: '[::1]:6379'", ""},
		{"address: 'redis.internal:6380'", ""},
	} {
		_, err := Parse([]byte(oneBackend+"rateLimit:\n  redis: {"+tt.yaml+"}\n"), "redis.yaml")
		if tt.key == "" {
			if err != nil {
				t.Errorf("redis: %s: %v", tt.yaml, err)
			}
			continue
		}
		if errs := configErrors(t, err); errs[0].Key != tt.key {
			t.Errorf("redis: %s: error at %s, want %s", tt.yaml, errs[0].Key, tt.key)
		}
	}
}
