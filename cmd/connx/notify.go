package main

import (
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The systemd notification protocol (sd_notify(3)), for a unit with
// Type=notify (packaging/systemd/connx.service, docs/install.md). Each
// message is one datagram to the unix socket named by $NOTIFY_SOCKET;
// without that variable (not started by systemd) nothing is sent.
//
//	READY=1                         serving (after the start, after each reload)
//	RELOADING=1 + MONOTONIC_USEC    a reload begins (MONOTONIC_USEC as systemd 253's Type=notify-reload wants)
//	STOPPING=1                      a drain begins (SIGTERM, SIGINT)
//	MAINPID=<pid> + READY=1         from an upgrade's successor, before its predecessor drains
//
// During an upgrade the successor is not the unit's main process when it
// sends MAINPID=, so the unit needs NotifyAccess=all; the predecessor
// stays silent from the hand-over on, so systemd never sees STOPPING=1 for
// an upgrade: it pauses before it starts the successor, so that no
// message of its own (a reload on the watcher's goroutine) can follow the
// successor's.

// notifier sends the service's state to systemd. Safe for concurrent use.
type notifier struct {
	log *slog.Logger

	mu     sync.Mutex // held while sending, so pause waits for a send in progress
	paused bool
	status string // of the last READY=1
}

func (n *notifier) send(state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sendLocked(state)
}

func (n *notifier) sendLocked(state string) {
	if n.paused {
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
	}
}

// ready says that the process serves. A successor of an upgrade also names
// itself the service's main process.
func (n *notifier) ready(successor bool, status string) {
	msg := daemon.SdNotifyReady + "\nSTATUS=" + status
	if successor {
		msg = "MAINPID=" + strconv.Itoa(os.Getpid()) + "\n" + msg
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status = status
	n.sendLocked(msg)
}

// reloading says that a reload begins; ready ends it.
func (n *notifier) reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=reloading the config")
}

// stopping says that the drain begins.
func (n *notifier) stopping() {
	n.send(daemon.SdNotifyStopping + "\nSTATUS=draining")
}

// pause silences the notifier before an upgrade starts a successor; once
// it returns, nothing more is sent until resume. After a hand-over it
// stays paused: the successor is the main process.
func (n *notifier) pause() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.paused = true
}

// resume ends a pause after an upgrade that failed: this process still
// serves. It says READY=1 again, in case a reload's READY=1 was dropped
// during the pause.
func (n *notifier) resume() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.paused = false
	n.sendLocked(daemon.SdNotifyReady + "\nSTATUS=" + n.status)
}
