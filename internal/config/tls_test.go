package config

import (
	"strings"
	"testing"
	"time"

	"github.com/connx/connx/internal/testcert"
)

func TestTLSSection(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	cf, kf := ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, dir, "a")
	c := mustParse(t, "server:\n  tls:\n    certificates:\n      - certFile: "+cf+"\n        keyFile: "+kf+"\n"+oneBackend)
	want := DefaultTLS()
	want.Certificates = []Certificate{{cf, kf}}
	if got := c.Server.TLS; got == nil || got.Port != 8443 || got.MinVersion != "1.2" || got.MaxHandshakes != 4096 || len(got.Certificates) != 1 || got.Certificates[0] != want.Certificates[0] {
		t.Fatalf("server.tls = %+v, want %+v", got, want)
	}
	if c.Timeouts.TLSHandshake != 10*time.Second || c.TLSListenAddr() != "0.0.0.0:8443" {
		t.Fatalf("tlsHandshake %v, addr %q", c.Timeouts.TLSHandshake, c.TLSListenAddr())
	}
	if mustParse(t, oneBackend).TLSListenAddr() != "" {
		t.Fatal("no tls section, but a TLS address")
	}

	// A key that does not match its certificate, named with file and line.
	_, kf2 := ca.Issue(t, testcert.ECDSA, false, "other").Write(t, dir, "b")
	src := "server:\n  tls:\n    certificates:\n      - certFile: " + cf + "\n        keyFile: " + kf2 + "\n" + oneBackend
	_, err := Parse([]byte(src), "tls.yaml")
	errs := configErrors(t, err)
	if e := errs[0]; e.Key != "server.tls.certificates[0].certFile" || e.Line != 4 ||
		!strings.HasPrefix(e.Error(), "tls.yaml:4:9: server.tls.certificates[0].certFile: cannot load the certificate and key: ") ||
		!strings.Contains(e.Msg, "private key does not match public key") {
		t.Fatalf("error %v", e)
	}
	for _, c := range []struct{ yaml, key string }{
		{"server:\n  tls: {certificates: []}\n", "server.tls.certificates"},
		{"server:\n  tls: {certificates: [{keyFile: " + kf + "}]}\n", "server.tls.certificates[0].certFile"},
		{"server:\n  tls: {certificates: [{certFile: " + cf + "}]}\n", "server.tls.certificates[0].keyFile"},
		{"server:\n  tls: {certificates: [{certFile: " + cf + ", keyFile: " + kf + "}], minVersion: 1.1}\n", "server.tls.minVersion"},
		{"server:\n  tls: {certificates: [{certFile: " + cf + ", keyFile: " + kf + "}], maxHandshakes: 0}\n", "server.tls.maxHandshakes"},
		{"server:\n  port: 9000\n  tls: {port: 9000, certificates: [{certFile: " + cf + ", keyFile: " + kf + "}]}\n", "server.tls.port"},
		{"timeouts: {tlsHandshake: 0}\n", "timeouts.tlsHandshake"},
		{"pools: {p: {backends: [\"http://a\"]}}\nroutes: [{match: {path: /}, pool: p, timeouts: {tlsHandshake: 1}}]\n", "routes[0].timeouts.tlsHandshake"},
	} {
		_, err := Parse([]byte(c.yaml+oneBackend), "t.yaml")
		if errs := configErrors(t, err); errs[0].Key != c.key {
			t.Errorf("%q: error %v, want one for %s", c.yaml, errs[0], c.key)
		}
	}
}

func TestTLSClientAuth(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	cf, kf := ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, dir, "a")
	caFile := dir + "/ca.pem"
	testcert.WriteFile(t, caFile, ca.PEM)
	tlsYAML := "server:\n  tls:\n    certificates: [{certFile: " + cf + ", keyFile: " + kf + "}]\n"
	c := mustParse(t, tlsYAML+"    clientAuth: {caFile: "+caFile+"}\n"+oneBackend)
	if got, want := c.Server.TLS.ClientAuth, (ClientAuth{Mode: "require", CAFile: caFile, SubjectHeader: "X-Client-Subject"}); got == nil || *got != want {
		t.Fatalf("clientAuth = %+v, want the defaults %+v", got, want)
	}
	if mustParse(t, tlsYAML+oneBackend).Server.TLS.ClientAuth != nil {
		t.Fatal("clientAuth without the key")
	}
	for _, c := range []struct{ yaml, key string }{
		{"    clientAuth: {caFile: " + caFile + ", mode: optional}\n", "server.tls.clientAuth.mode"},
		{"    clientAuth: {mode: request}\n", "server.tls.clientAuth.caFile"},
		{"    clientAuth: {caFile: " + kf + "}\n", "server.tls.clientAuth.caFile"},
		{"    clientAuth: {caFile: " + caFile + ", subjectHeader: \"X Subject\"}\n", "server.tls.clientAuth.subjectHeader"},
		{"    clientAuth: {caFile: " + caFile + ", subjectHeader: X-Forwarded-User}\n", "server.tls.clientAuth.subjectHeader"},
	} {
		_, err := Parse([]byte(tlsYAML+c.yaml+oneBackend), "t.yaml")
		if errs := configErrors(t, err); errs[0].Key != c.key {
			t.Errorf("%q: error %v, want one for %s", c.yaml, errs[0], c.key)
		}
	}
}

func TestBackendTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	caFile := dir + "/ca.pem"
	testcert.WriteFile(t, caFile, ca.PEM)
	cf, kf := ca.Issue(t, testcert.ECDSA, true, "connx").Write(t, dir, "client")
	c := mustParse(t, `
backends: ["https://a.internal", "http://b:8080"]
tls:
  caFile: `+caFile+`
  serverName: top.internal
pools:
  p:
    backends: ["https://10.0.0.1:8443"]
    tls:
      serverName: p.internal
      certFile: `+cf+`
      keyFile: `+kf+`
  q:
    backends: ["https://10.0.0.2"]
`)
	if got := c.Backends[0]; got.Addr != "a.internal:443" || !got.HTTPS() || c.Backends[1].HTTPS() {
		t.Errorf("backends: %+v %+v", got, c.Backends[1])
	}
	top := BackendTLS{CAFile: caFile, ServerName: "top.internal"}
	if c.BackendTLS != top || c.DefaultPool().TLS != top {
		t.Errorf("top-level tls = %+v", c.BackendTLS)
	}
	// Key by key: p sets serverName and the client pair, keeps caFile.
	if got, want := c.Pools[0].TLS, (BackendTLS{CAFile: caFile, ServerName: "p.internal", CertFile: cf, KeyFile: kf}); got != want {
		t.Errorf("pools.p.tls = %+v, want %+v", got, want)
	}
	if got := c.Pools[1].TLS; got != top {
		t.Errorf("pools.q.tls = %+v, want the top-level %+v", got, top)
	}
	for _, c := range []struct{ yaml, key string }{
		{"tls: {caFile: " + kf + "}\n", "tls.caFile"},
		{"tls: {certFile: " + cf + "}\n", "tls.keyFile"},
		{"tls: {keyFile: " + kf + "}\n", "tls.certFile"},
		{"tls: {certFile: " + caFile + ", keyFile: " + kf + "}\n", "tls.certFile"},
		{"tls: {serverName: \"a:1\"}\n", "tls.serverName"},
		{"pools: {p: {backends: [\"https://x\"], tls: {keyFile: " + kf + "}}}\n", "pools.p.tls.certFile"},
	} {
		_, err := Parse([]byte(c.yaml+oneBackend), "t.yaml")
		if errs := configErrors(t, err); errs[0].Key != c.key {
			t.Errorf("%q: error %v, want one for %s", c.yaml, errs[0], c.key)
		}
	}
}

// TestBackendTLSOverride: a backend's own tls keys replace its pool's,
// key by key; the others come from the pool's tls, itself inherited
// from the top level. Backends without one keep nil (the pool's).
func TestBackendTLSOverride(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	caA, caB := dir+"/a.pem", dir+"/b.pem"
	testcert.WriteFile(t, caA, ca.PEM)
	testcert.WriteFile(t, caB, ca.PEM)
	c := mustParse(t, `
tls: {serverName: api.internal, caFile: `+caA+`}
backends:
  - url: "https://10.0.0.1:8443"
    tls: {caFile: `+caB+`}
  - "https://10.0.0.2:8443"
pools:
  p:
    tls: {insecureSkipVerify: true}
    backends:
      - {url: "https://10.0.1.1", tls: {serverName: one.internal}}
      - {url: "https://10.0.1.2"}
`)
	if got, want := c.Backends[0].TLS, (&BackendTLS{ServerName: "api.internal", CAFile: caB}); got == nil || *got != *want {
		t.Errorf("backends[0].tls = %+v, want %+v", got, want)
	}
	if c.Backends[1].TLS != nil {
		t.Errorf("backends[1].tls = %+v, want nil", c.Backends[1].TLS)
	}
	p := c.Pools[0]
	want := BackendTLS{ServerName: "one.internal", CAFile: caA, InsecureSkipVerify: true}
	if got := p.Backends[0].TLS; got == nil || *got != want {
		t.Errorf("pools.p.backends[0].tls = %+v, want %+v", got, want)
	}
	if p.Backends[1].TLS != nil {
		t.Errorf("pools.p.backends[1].tls = %+v, want nil", p.Backends[1].TLS)
	}
	for _, c := range []struct{ yaml, key string }{
		{"backends:\n  - {url: \"http://a\", tls: {serverName: a}}\n", "backends[0].tls"},
		{"backends:\n  - {url: \"https://a\", tls: {keyFile: x}}\n", "backends[0].tls.certFile"},
		{"backends:\n  - {url: \"https://a\", tls: {serverName: \"a b\"}}\n", "backends[0].tls.serverName"},
	} {
		_, err := Parse([]byte(c.yaml), "b.yaml")
		if errs := configErrors(t, err); errs[0].Key != c.key {
			t.Errorf("%q: error %v, want one for %s", c.yaml, errs[0], c.key)
		}
	}
}

// TestBackendTLSErrorsOnce: a bad key of the pool's tls is reported once,
// as the pool's, not again for each backend that inherits it.
func TestBackendTLSErrorsOnce(t *testing.T) {
	_, err := Parse([]byte(`
tls: {caFile: /nonexistent-ca.pem}
backends:
  - {url: "https://a", tls: {serverName: a.internal}}
  - {url: "https://b", tls: {serverName: b.internal}}
`), "once.yaml")
	errs := configErrors(t, err)
	if len(errs) != 1 || errs[0].Key != "tls.caFile" {
		t.Fatalf("errors %v, want one for tls.caFile", errs)
	}
}
