package main

import (
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"

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
// an upgrade.

// notifier sends the service's state to systemd. Safe for concurrent use.
type notifier struct {
	log  *slog.Logger
	done atomic.Bool // handed over to a successor: send nothing more
}

func (n *notifier) send(state string) {
	if n.done.Load() {
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
	n.send(msg)
}

// reloading says that a reload begins; ready ends it.
func (n *notifier) reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=reloading the config")
}

// stopping says that the drain begins.
func (n *notifier) stopping() {
	n.send(daemon.SdNotifyStopping + "\nSTATUS=draining")
}

// handedOver silences the notifier: a successor is the main process now.
func (n *notifier) handedOver() { n.done.Store(true) }
