package testproc

import "syscall"

// dieWithParent makes the kernel kill a started server when the test
// binary dies, so that a crashed test leaves no server behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
