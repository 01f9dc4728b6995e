package discovery

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsmasq is a dnsmasq process serving a hosts file and SRV records on
// 127.0.0.1, for the test that created it.
type dnsmasq struct {
	addr  string // "127.0.0.1:port"
	hosts string // the hosts file it serves; rewrite it and call reload
	cmd   *exec.Cmd
}

// startDnsmasq starts dnsmasq (Debian's dnsmasq-base; .ci/run installs
// it) answering for the .test domain only: names in the hosts file with
// TTL 7, the SRV records srv ("name,target,port,priority,weight"), and
// NXDOMAIN for any other name under .test. It is killed when the test
// ends. Without dnsmasq the test is skipped, or fails with CONNX_CI=1.
func startDnsmasq(t *testing.T, hosts string, srv ...string) *dnsmasq {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/dnsmasq")
	}
	if err != nil {
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatal("dnsmasq not found and CONNX_CI=1 (apt-get install dnsmasq-base)")
		}
		t.Skip("dnsmasq not found (apt-get install dnsmasq-base)")
	}
	dir := t.TempDir()
	d := &dnsmasq{hosts: filepath.Join(dir, "hosts")}
	if err := os.WriteFile(d.hosts, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	// A port free for UDP now; dnsmasq takes it for UDP and TCP.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	pc.Close()
	_, port, _ := net.SplitHostPort(d.addr)
	args := []string{
		"--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--port=" + port, "--listen-address=127.0.0.1", "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--addn-hosts=" + d.hosts,
		"--local=/test/", "--local-ttl=7", "--log-facility=-",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // read the test's files after dropping privileges
	}
	for _, s := range srv {
		args = append(args, "--srv-host="+s)
	}
	d.cmd = exec.Command(bin, args...)
	out := &syncBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = out, out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("dnsmasq output:\n%s", out)
		}
	})
	// Ready when it answers; a query that times out is retried.
	deadline := time.Now().Add(hangGuard)
	for {
		select {
		case <-exited:
			t.Fatalf("dnsmasq exited:\n%s", out)
		default:
		}
		m := new(dns.Msg)
		m.SetQuestion("ready.test.", dns.TypeA)
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		if _, _, err := c.Exchange(m, d.addr); err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq does not answer on %s:\n%s", d.addr, out)
		}
	}
}

// setHosts rewrites the hosts file, makes dnsmasq read it again (SIGHUP)
// and waits until dnsmasq answers name with the addresses want (sorted; none:
// NXDOMAIN).
func (d *dnsmasq) setHosts(t *testing.T, hosts, name string, want ...string) {
	t.Helper()
	if err := os.WriteFile(d.hosts, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangGuard)
	var got []string
	for time.Now().Before(deadline) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, d.addr)
		if err != nil {
			continue
		}
		got = got[:0]
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("dnsmasq answers %s with %v, want %v", name, got, want)
}

// TestDnsmasq runs Watchers against dnsmasq: A and SRV members follow the
// hosts file within one TTL, a name that disappears is held for
// emptyGrace, and a stopped server keeps the last members.
func TestDnsmasq(t *testing.T) {
	d := startDnsmasq(t, "10.1.0.1 web.test\n", "_http._tcp.svc.test,web.test,8081,0,10")

	a := aConfig("web.test", 8080)
	a.Resolver = d.addr
	a.Timeout = 100 * time.Millisecond // the stopped server: each query waits for it
	ha := newHarness(t, a)
	srv := srvConfig("_http._tcp.svc.test")
	srv.Resolver = d.addr
	srv.EmptyGrace = 20 * time.Second
	hs := newHarness(t, srv)
	ha.run()
	hs.run()

	if got := ha.next(); got != 7*time.Second {
		t.Errorf("A: sleep %v, want dnsmasq's TTL, 7s", got)
	}
	if got, want := ha.update(), members("10.1.0.1:8080"); !reflect.DeepEqual(got, want) {
		t.Fatalf("A: members %v, want %v", got, want)
	}
	hs.next()
	if got, want := hs.update(), members("10.1.0.1:8081/10"); !reflect.DeepEqual(got, want) {
		t.Fatalf("SRV: members %v, want %v", got, want)
	}

	// A second address: both Watchers see it at their next resolution.
	d.setHosts(t, "10.1.0.1 web.test\n10.1.0.2 web.test\n", "web.test", "10.1.0.1", "10.1.0.2")
	ha.step(7 * time.Second)
	hs.step(7 * time.Second)
	if got, want := ha.update(), members("10.1.0.1:8080", "10.1.0.2:8080"); !reflect.DeepEqual(got, want) {
		t.Errorf("A: members %v, want %v", got, want)
	}
	if got, want := hs.update(), members("10.1.0.1:8081/10", "10.1.0.2:8081/10"); !reflect.DeepEqual(got, want) {
		t.Errorf("SRV: members %v, want %v", got, want)
	}

	// The target loses its addresses: the SRV Watcher holds its members
	// for emptyGrace.
	d.setHosts(t, "10.1.0.3 other.test\n", "web.test")
	d1 := hs.step(7 * time.Second)
	hs.noUpdate()
	if s := hs.w.Status(); s.State != StateHolding || !strings.Contains(fmt.Sprint(s.Err), "no SRV target has an address") {
		t.Errorf("SRV: status %+v", s)
	}
	hs.step(d1)
	hs.step(20*time.Second - d1)
	if got := hs.update(); len(got) != 0 {
		t.Errorf("SRV: members %v after emptyGrace, want none", got)
	}

	// web.test comes back with one address (the A Watcher, asleep, never
	// saw it gone). Then the server goes away: the members are kept.
	d.setHosts(t, "10.1.0.2 web.test\n", "web.test", "10.1.0.2")
	ha.step(7 * time.Second)
	if got, want := ha.update(), members("10.1.0.2:8080"); !reflect.DeepEqual(got, want) {
		t.Errorf("A: members %v, want %v", got, want)
	}
	_ = d.cmd.Process.Kill()
	retry := ha.step(7 * time.Second)
	ha.step(retry)
	ha.noUpdate()
	if s := ha.w.Status(); s.State != StateFailing || s.Members != 1 || s.Failures != 2 {
		t.Errorf("A: status with the server gone %+v", s)
	}
}
