package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// TestTLSBackendOwnSettings: two https:// backends of one pool, each
// behind its own private CA. The pool's tls trusts the first CA only;
// the second backend's own tls key names its CA (and inherits the
// pool's serverName). Round-robin without retries, so a refused
// handshake would be a 502: every request is served by both in turn,
// and the health checks of each use its own settings.
func TestTLSBackendOwnSettings(t *testing.T) {
	a, b := newHTTPSBackend(t, false), newHTTPSBackend(t, false)
	cfg := testConfig(t, nil, func(c *config.Config) {
		c.Backends = []config.Backend{
			{URL: "https://" + a.addr, Weight: 1},
			{URL: "https://" + b.addr, Weight: 1, TLS: &config.BackendTLS{CAFile: b.caFile, ServerName: "backend.internal"}},
		}
		c.BackendTLS = config.BackendTLS{CAFile: a.caFile, ServerName: "backend.internal"}
		c.Upstream.Retries = 0
		c.Upstream.MaxIdlePerBackend = 0 // a handshake per request
		c.HealthCheck.Enabled = true
		c.HealthCheck.Path = "/health"
		c.HealthCheck.UnhealthyThreshold = 1
		c.HealthCheck.HealthyThreshold = 1
		c.HealthCheck.Jitter = 0
	})
	srv := startProxy(t, cfg)
	rc := dialProxy(t, srv.Addr().String())
	for i := range 6 {
		resp, body := rc.get(fmt.Sprintf("/r%d", i))
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "sni=backend.internal ") {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	var s stats.Snapshot
	waitFor(t, "a finished health check of each backend", func() bool {
		s = stats.Snapshot{}
		srv.Stats(&s)
		return s.Backends[0].Health.ChecksOK+s.Backends[0].Health.ChecksFailed > 0 &&
			s.Backends[1].Health.ChecksOK+s.Backends[1].Health.ChecksFailed > 0
	})
	for i, be := range s.Backends {
		if be.Health.ChecksFailed > 0 || !be.Health.Healthy {
			t.Errorf("backend %d (%s): health over HTTPS: %+v", i, be.Name, be.Health)
		}
		if be.Latency == 0 { // no response head from it yet
			t.Errorf("backend %d (%s) served no request", i, be.Name)
		}
	}
}

// TestTLSBackendOwnSettingsRefused: a backend's own caFile replaces the
// pool's for it alone: pointed at the other backend's CA, its health
// check fails on the certificate while its neighbour's passes.
func TestTLSBackendOwnSettingsRefused(t *testing.T) {
	a, b := newHTTPSBackend(t, false), newHTTPSBackend(t, false)
	cfg := testConfig(t, nil, func(c *config.Config) {
		c.Backends = []config.Backend{
			{URL: "https://" + a.addr, Weight: 1},
			{URL: "https://" + b.addr, Weight: 1, TLS: &config.BackendTLS{CAFile: a.caFile, ServerName: "backend.internal"}},
		}
		c.BackendTLS = config.BackendTLS{CAFile: a.caFile, ServerName: "backend.internal"}
		c.HealthCheck.Enabled = true
		c.HealthCheck.Path = "/health"
		c.HealthCheck.UnhealthyThreshold = 1
		c.HealthCheck.Jitter = 0
	})
	srv := startProxy(t, cfg)
	var s stats.Snapshot
	waitFor(t, "a finished health check of each backend", func() bool {
		s = stats.Snapshot{}
		srv.Stats(&s)
		return s.Backends[0].Health.ChecksOK+s.Backends[0].Health.ChecksFailed > 0 &&
			s.Backends[1].Health.ChecksOK+s.Backends[1].Health.ChecksFailed > 0
	})
	if h := s.Backends[0].Health; h.ChecksOK == 0 || !h.Healthy {
		t.Errorf("backend 0 (the pool's CA, its own): %+v", h)
	}
	if h := s.Backends[1].Health; h.ChecksFailed == 0 || !strings.Contains(h.LastError, "certificate") {
		t.Errorf("backend 1 (the other CA): %+v", h)
	}
	rc := dialProxy(t, srv.Addr().String())
	for i := range 4 { // backend 1 is down: every request goes to backend 0
		if resp, body := rc.get(fmt.Sprintf("/r%d", i)); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}
