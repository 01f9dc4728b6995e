package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// A zero-downtime upgrade: on SIGUSR2 the running process starts the
// binary at the path it was started from (typically replaced by a new
// version) with the same arguments. The successor binds the same port next
// to the old process's sockets (SO_REUSEPORT), so the kernel spreads new
// connections over both; once it serves, it says so on a pipe, and the old
// process closes its listeners and drains as on SIGTERM. If the successor
// fails to start, the old process keeps serving.

// envUpgrade names the successor's end of the readiness pipe.
const envUpgrade = "CONNX_UPGRADE_FD"

// upgradeTimeout bounds the wait for a successor to serve.
const upgradeTimeout = 30 * time.Second

type upgrader struct {
	log     *slog.Logger
	exe     string   // the binary to start
	notify  *os.File // a successor's pipe to its predecessor; nil otherwise
	running atomic.Bool
}

func newUpgrader(log *slog.Logger) *upgrader {
	u := &upgrader{log: log, exe: selfPath()}
	if v := os.Getenv(envUpgrade); v != "" {
		_ = os.Unsetenv(envUpgrade) // not for this process's own successor
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			u.notify = os.NewFile(uintptr(fd), "connx-upgrade")
		}
	}
	return u
}

// selfPath is the path this binary was started from, so that an upgrade
// starts whatever binary is there now (os.Executable would name the old,
// possibly deleted, file).
func selfPath() string {
	arg0 := os.Args[0]
	if strings.Contains(arg0, "/") {
		if p, err := filepath.Abs(arg0); err == nil {
			return p
		}
	} else if p, err := exec.LookPath(arg0); err == nil {
		return p
	}
	p, _ := os.Executable()
	return p
}

// child reports whether this process is an upgrade's successor.
func (u *upgrader) child() bool { return u.notify != nil }

// ready tells the predecessor that this process serves, on listeners
// sockets.
func (u *upgrader) ready(listeners int) {
	if u.notify != nil {
		fmt.Fprintf(u.notify, "ready %d %d\n", os.Getpid(), listeners)
		_ = u.notify.Close()
		u.notify = nil
	}
}

// failed tells the predecessor that this process could not start.
func (u *upgrader) failed(err error) {
	if u.notify != nil {
		fmt.Fprintf(u.notify, "failed %v\n", err)
		_ = u.notify.Close()
		u.notify = nil
	}
}

// start runs the successor and waits until it serves. It returns the
// number of listening sockets the successor serves on, or 0 if it does not
// serve; then the reason is logged and this process goes on serving.
func (u *upgrader) start() int {
	if !u.running.CompareAndSwap(false, true) {
		u.log.Warn("upgrade: already in progress")
		return 0
	}
	defer u.running.Store(false)
	r, w, err := os.Pipe()
	if err != nil {
		u.log.Error("upgrade: pipe", "err", err)
		return 0
	}
	defer r.Close()
	cmd := exec.Command(u.exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), envUpgrade+"=3") // ExtraFiles[0]
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		u.log.Error("upgrade: cannot start the successor; still serving", "binary", u.exe, "err", err)
		return 0
	}
	u.log.Info("upgrade: successor started", "binary", u.exe, "successor_pid", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	_ = r.SetReadDeadline(time.Now().Add(upgradeTimeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	var pid, listeners int
	if _, err := fmt.Sscanf(line, "ready %d %d", &pid, &listeners); err == nil {
		return max(listeners, 1)
	}
	switch {
	case strings.HasPrefix(line, "failed "):
		u.log.Error("upgrade: the successor could not start; still serving", "reason", strings.TrimSpace(strings.TrimPrefix(line, "failed ")))
	case os.IsTimeout(err):
		u.log.Error("upgrade: the successor did not serve in time; stopping it, still serving", "timeout", upgradeTimeout)
		_ = cmd.Process.Kill()
	default:
		u.log.Error("upgrade: the successor exited before serving; still serving", "exit", <-exited)
	}
	return 0
}
