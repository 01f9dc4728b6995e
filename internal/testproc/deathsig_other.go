//go:build !linux

package testproc

import "syscall"

// dieWithParent: only Linux has a parent-death signal; elsewhere the
// test's cleanup stops the server.
func dieWithParent() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
