// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnet

import "golang.org/x/sys/unix"

func rawRead(fd int, p []byte) (int, error) { return unix.Read(fd, p) }
