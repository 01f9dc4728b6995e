// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

//go:build !linux

package gnet

import (
	"net"

	errorx "github.com/panjf2000/gnet/v2/pkg/errors"
)

// Adopt is Linux only.
func (el *eventloop) Adopt(int, net.Addr, any) (Conn, error) {
	return nil, errorx.ErrUnsupportedOp
}
