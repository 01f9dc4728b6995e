// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

//go:build (darwin || dragonfly || freebsd || linux || netbsd || openbsd) && !gc_opt

package gnet

import "testing"

// TestConnMatrixByFD checks the descriptor-indexed table (ConnX patch
// 8): lookups of present, deleted and never-seen descriptors (negative
// and beyond the table), growth past the first size with earlier entries
// kept, the count, a walk that deletes as it goes (closeConns), and a
// reused descriptor.
func TestConnMatrixByFD(t *testing.T) {
	var cm connMatrix
	cm.init()
	fds := []int{3, 70, 5, 1000, 64, 63}
	for _, fd := range fds {
		cm.addConn(&conn{fd: fd}, 0)
	}
	for _, fd := range fds {
		if c := cm.getConn(fd); c == nil || c.fd != fd {
			t.Fatalf("getConn(%d) = %v", fd, c)
		}
	}
	for _, fd := range []int{-1, 0, 4, 999, 1001, 1 << 20} {
		if c := cm.getConn(fd); c != nil {
			t.Fatalf("getConn(%d) = %v, want nil", fd, c)
		}
	}
	if n := cm.loadCount(); n != int32(len(fds)) {
		t.Fatalf("count %d, want %d", n, len(fds))
	}
	cm.delConn(cm.getConn(70))
	if cm.getConn(70) != nil || cm.loadCount() != int32(len(fds)-1) {
		t.Fatalf("after delConn(70): %v, count %d", cm.getConn(70), cm.loadCount())
	}
	// A walk that deletes as it goes, the conn it visits and, at the
	// first, one it has not reached yet (an OnClose closing its pair):
	// that one is not visited.
	seen := 0
	cm.iterate(func(c *conn) bool {
		seen++
		if c.fd == 3 {
			cm.delConn(cm.getConn(1000))
		}
		cm.delConn(c)
		return true
	})
	if seen != len(fds)-2 || cm.loadCount() != 0 {
		t.Fatalf("walk saw %d, count after %d; want %d and 0", seen, cm.loadCount(), len(fds)-2)
	}
	for _, fd := range fds {
		if cm.getConn(fd) != nil {
			t.Fatalf("getConn(%d) after the walk is not nil", fd)
		}
	}
	// A descriptor reused: deleting the old conn clears the slot, as the
	// map's delete did (eventloop.close checks the conn is still open
	// before it deletes).
	old := &conn{fd: 5}
	cm.addConn(old, 0)
	cm.addConn(&conn{fd: 5}, 0)
	cm.delConn(old)
	if cm.getConn(5) != nil {
		t.Fatal("the slot of a reused descriptor survived delConn of its old conn")
	}
}
