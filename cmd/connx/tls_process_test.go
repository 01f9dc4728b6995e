package main

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/testcert"
	"github.com/connx/connx/internal/testproc"
)

// tlsProcessConfig is configFor with an HTTPS listener on tlsPort
// serving a certificate for example.com from a new test CA; it returns
// the config's TLS section and the clients' TLS configuration.
func tlsProcessConfig(t *testing.T, tlsPort string) (section string, client *tls.Config) {
	t.Helper()
	ca := testcert.NewCA(t)
	cf, kf := ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, t.TempDir(), "example.com")
	section = fmt.Sprintf("  tls:\n    port: %s\n    certificates:\n      - {certFile: %q, keyFile: %q}\n", tlsPort, cf, kf)
	return section, &tls.Config{RootCAs: ca.Pool(), ServerName: "example.com"}
}

// withTLS puts section into cfg's server mapping.
func withTLS(cfg, section string) string {
	return strings.Replace(cfg, "  shutdownTimeout: 5s\n", "  shutdownTimeout: 5s\n"+section, 1)
}

// TestTLSReloadUnderLoad is TestReloadUnderLoad over HTTPS: clients on
// TLS keep-alive connections and clients making a handshake per request
// while the config is saved 30 times, alternating backend sets and
// server.tls.maxHandshakes (applied by reload). No request fails, and
// traffic reaches each new set.
func TestTLSReloadUnderLoad(t *testing.T) {
	sets := [2]map[string]bool{{"a": true, "b": true}, {"c": true, "d": true}}
	urls := map[string]string{}
	for _, set := range sets {
		for name := range set {
			urls[name] = namedBackend(t, name, nil)
		}
	}
	tlsPort := testproc.FreePort(t)
	section, client := tlsProcessConfig(t, tlsPort)
	cfgs := [2]string{
		withTLS(configFor("round-robin", "", urls["a"], urls["b"]), section+"    maxHandshakes: 100\n"),
		withTLS(configFor("least-connections", "", urls["c"], urls["d"]), section+"    maxHandshakes: 200\n"),
	}
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, cfgs[0])
	p := startConnx(t, "-config", path)
	reloaded := p.Watch("config reloaded")
	load := startLoadURL(t, "https://127.0.0.1:"+tlsPort+"/", client, 4, 2, 2*time.Millisecond)
	waitServed(t, load, 50)

	const saves = 30
	for i := 1; i <= saves; i++ {
		set := i % 2
		saved := time.Now()
		testproc.WriteConfig(t, path, cfgs[set])
		p.Next(reloaded, fmt.Sprintf("reload %d", i))
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := load.firstAfter(saved, sets[set]); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("save %d: no HTTPS response from the new backends", i)
			}
			time.Sleep(time.Millisecond) // polling the load's record
		}
	}
	load.Halt()
	load.report(t)
	if n := load.fail.Load(); n != 0 {
		t.Errorf("%d HTTPS requests failed during %d reloads", n, saves)
	}
}

// TestTLSUpgradeUnderLoad is TestUpgradeUnderLoad over HTTPS: SIGUSR2
// while TLS keep-alive clients and clients making a handshake per
// request keep going. The successor takes the HTTPS listener, the old
// process drains its TLS connections and exits, and no request fails.
func TestTLSUpgradeUnderLoad(t *testing.T) {
	be := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	port, tlsPort := testproc.FreePort(t), testproc.FreePort(t)
	section, client := tlsProcessConfig(t, tlsPort)
	testproc.WriteConfig(t, path, withTLS(strings.Replace(configFor("round-robin", "", be), "port: 0", "port: "+port, 1), section))
	p := startConnx(t, "-config", path)
	load := startLoadURL(t, "https://127.0.0.1:"+tlsPort+"/", client, 4, 2, time.Millisecond)
	waitServed(t, load, 200)

	successor := p.Watch("upgrade: the successor is serving")
	must(t, p.Cmd.Process.Signal(syscall.SIGUSR2))
	p.Next(successor, "successor")
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the old process did not exit")
	}
	if p.Err != nil {
		t.Errorf("old process exit: %v", p.Err)
	}
	before := load.ok.Load()
	waitServed(t, load, before+200) // the successor serves HTTPS on its own
	load.Halt()
	load.report(t)
	if n := load.fail.Load(); n != 0 {
		t.Errorf("%d HTTPS requests failed during the upgrade", n)
	}
	stopSuccessor(t, p)
}
