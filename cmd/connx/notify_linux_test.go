package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/connx/connx/internal/testproc"
)

// notification is one sd_notify datagram and the pid of its sender, as
// the kernel reports it (SO_PASSCRED): what systemd sees.
type notification struct {
	pid    int
	fields map[string]string
	raw    string
}

// notifySocket is a unixgram socket standing in for systemd's
// $NOTIFY_SOCKET.
type notifySocket struct {
	path string
	c    chan notification
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	s := &notifySocket{path: path, c: make(chan notification, 64)}
	go func() {
		buf, oob := make([]byte, 4096), make([]byte, 1024)
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				close(s.c)
				return
			}
			m := notification{pid: -1, fields: map[string]string{}, raw: string(buf[:n])}
			if cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cmsgs {
					if cred, err := syscall.ParseUnixCredentials(&cm); err == nil {
						m.pid = int(cred.Pid)
					}
				}
			}
			for _, line := range strings.Split(m.raw, "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					m.fields[k] = v
				}
			}
			s.c <- m
		}
	}()
	return s
}

// next returns the next notification (10 s at most).
func (s *notifySocket) next(t *testing.T, what string) notification {
	t.Helper()
	select {
	case m, ok := <-s.c:
		if !ok {
			t.Fatalf("notify socket closed waiting for %s", what)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no notification: %s", what)
	}
	return notification{}
}

// none checks that nothing more has been sent.
func (s *notifySocket) none(t *testing.T, after string) {
	t.Helper()
	select {
	case m := <-s.c:
		t.Errorf("after %s: unexpected notification from pid %d: %q", after, m.pid, m.raw)
	default:
	}
}

func monotonicUsec(t *testing.T) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano() / 1000)
}

// TestSdNotify runs connx as systemd runs a Type=notify unit, with
// $NOTIFY_SOCKET naming a unixgram socket, and checks what systemd would
// see, message by message and from which process: READY=1 once serving;
// RELOADING=1 with MONOTONIC_USEC, then READY=1, for a SIGHUP reload;
// MAINPID=<successor> with READY=1 from the successor of a SIGUSR2
// upgrade, and nothing from the old process after it (no STOPPING=1: the
// service goes on); STOPPING=1 on SIGTERM.
func TestSdNotify(t *testing.T) {
	sock := listenNotify(t)
	be := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	port := testproc.FreePort(t)
	testproc.WriteConfig(t, path, strings.Replace(configFor("round-robin", "", be), "port: 0", "port: "+port, 1))
	p := testproc.Start(t, connxBin, "export NOTIFY_SOCKET="+sock.path, "-config", path)
	old := p.PID()

	// Start.
	m := sock.next(t, "READY=1 at start")
	if m.pid != old || m.fields["READY"] != "1" || len(m.fields) != 2 || !strings.Contains(m.fields["STATUS"], "serving on") {
		t.Fatalf("start: pid %d (connx %d) sent %q, want READY=1 and STATUS", m.pid, old, m.raw)
	}
	sock.none(t, "start")

	// Reload.
	before := monotonicUsec(t)
	reloaded := p.Watch("config reloaded")
	must(t, p.Cmd.Process.Signal(syscall.SIGHUP))
	m = sock.next(t, "RELOADING=1 on SIGHUP")
	after := monotonicUsec(t)
	usec, err := strconv.ParseUint(m.fields["MONOTONIC_USEC"], 10, 64)
	if m.pid != old || m.fields["RELOADING"] != "1" || err != nil || usec < before || usec > after {
		t.Fatalf("reload: pid %d sent %q; want RELOADING=1 and MONOTONIC_USEC in [%d, %d]", m.pid, m.raw, before, after)
	}
	m = sock.next(t, "READY=1 after the reload")
	if m.pid != old || m.fields["READY"] != "1" || m.fields["RELOADING"] != "" {
		t.Fatalf("after the reload: pid %d sent %q, want READY=1", m.pid, m.raw)
	}
	p.Next(reloaded, "reload")
	sock.none(t, "reload")

	// Upgrade: the successor names itself the main process before the old
	// process drains; the old one says nothing more.
	upgraded := p.Watch("upgrade: the successor is serving")
	must(t, p.Cmd.Process.Signal(syscall.SIGUSR2))
	m = sock.next(t, "MAINPID= from the successor")
	succ, err := strconv.Atoi(m.fields["MAINPID"])
	if err != nil || succ != m.pid || succ == old || m.fields["READY"] != "1" {
		t.Fatalf("upgrade: pid %d sent %q; want MAINPID=<its own pid> and READY=1 from a new process", m.pid, m.raw)
	}
	t.Cleanup(func() {
		if pr, err := os.FindProcess(succ); err == nil {
			_ = pr.Signal(syscall.SIGKILL)
		}
	})
	p.Next(upgraded, "upgrade")
	if l := p.WaitLog("successor_pid="); !strings.Contains(l, fmt.Sprintf("successor_pid=%d", succ)) {
		t.Errorf("MAINPID=%d is not the successor the log names: %s", succ, l)
	}
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the old process did not exit")
	}
	sock.none(t, "the old process's exit") // its datagrams are all queued by now
	if got := getBackend(t, "127.0.0.1:"+port); got != "a" {
		t.Fatalf("after the upgrade: served by %q", got)
	}

	// Stop.
	pr, _ := os.FindProcess(succ)
	must(t, pr.Signal(syscall.SIGTERM))
	m = sock.next(t, "STOPPING=1 on SIGTERM")
	if m.pid != succ || m.fields["STOPPING"] != "1" {
		t.Fatalf("stop: pid %d sent %q, want STOPPING=1 from the successor %d", m.pid, m.raw, succ)
	}
}

// TestSdNotifyUnset: without $NOTIFY_SOCKET (not under systemd) connx
// starts, reloads and stops as always, and logs no notify failure.
func TestSdNotifyUnset(t *testing.T) {
	be := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "", be))
	p := testproc.Start(t, connxBin, "unset NOTIFY_SOCKET", "-config", path)
	must(t, p.Cmd.Process.Signal(syscall.SIGHUP))
	p.WaitLog("config reloaded")
	must(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		t.Fatal("connx did not exit")
	}
	for _, l := range p.Log() {
		if strings.Contains(l, "sd_notify") {
			t.Errorf("logged: %s", l)
		}
	}
}

// TestSdNotifyFailedUpgrade: when the successor of a SIGUSR2 cannot start
// (here: the config file became invalid), it sends nothing, and the old
// process, still the main one, says READY=1 again after its pause.
func TestSdNotifyFailedUpgrade(t *testing.T) {
	sock := listenNotify(t)
	be := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "", be))
	p := testproc.Start(t, connxBin, "export NOTIFY_SOCKET="+sock.path, "-config", path)
	old := p.PID()
	if m := sock.next(t, "READY=1 at start"); m.fields["READY"] != "1" {
		t.Fatalf("start: %q", m.raw)
	}

	failed := p.Watch("config reload failed")
	testproc.WriteConfig(t, path, "server:\n  prot: 1\n")
	p.Next(failed, "reload failure")
	for _, want := range []string{"RELOADING", "READY"} {
		if m := sock.next(t, want+" around the failed reload"); m.pid != old || m.fields[want] != "1" {
			t.Fatalf("failed reload: pid %d sent %q, want %s=1", m.pid, m.raw, want)
		}
	}

	stillServing := p.Watch("still serving")
	must(t, p.Cmd.Process.Signal(syscall.SIGUSR2))
	p.Next(stillServing, "failed upgrade")
	m := sock.next(t, "READY=1 after the failed upgrade")
	if m.pid != old || m.fields["READY"] != "1" || m.fields["MAINPID"] != "" {
		t.Fatalf("after the failed upgrade: pid %d sent %q, want READY=1 from the old process %d", m.pid, m.raw, old)
	}
	sock.none(t, "the failed upgrade")
	if got := getBackend(t, p.Addr); got != "a" || !p.Alive() {
		t.Fatalf("after the failed upgrade: served by %q, alive %v", got, p.Alive())
	}
}
