// Copyright (c) 2026 The ConnX Authors. Licensed under the Apache License,
// Version 2.0, as the rest of gnet; see LICENSE.

package gnet

import (
	"context"
	"net"
	"testing"
	"time"
)

// readSizeHandler sets the read size of every connection to size and
// reports how many bytes each OnTraffic saw in its read; it consumes
// nothing until the total reaches want, so a read's size is what the
// buffer grew by.
type readSizeHandler struct {
	BuiltinEventEngine
	eng   chan Engine
	size  int
	reads chan int
	seen  int
}

func (h *readSizeHandler) OnBoot(e Engine) Action { h.eng <- e; return None }

func (h *readSizeHandler) OnOpen(c Conn) ([]byte, Action) {
	c.(interface{ SetReadSize(int) }).SetReadSize(h.size)
	return nil, None
}

func (h *readSizeHandler) OnTraffic(c Conn) Action {
	n := c.InboundBuffered()
	h.reads <- n - h.seen
	h.seen = n
	return None
}

// TestSetReadSize checks that one read of a connection takes up to its
// read size, above ReadBufferCap, and that other connections keep reading
// at most ReadBufferCap (ConnX patch 7).
func TestSetReadSize(t *testing.T) {
	const capacity = 4 << 10 // ReadBufferCap
	for _, tc := range []struct {
		size, want int
	}{
		{0, capacity},
		{64 << 10, 64 << 10},
		{1 << 10, capacity}, // below ReadBufferCap: ReadBufferCap
	} {
		h := &readSizeHandler{eng: make(chan Engine, 1), size: tc.size, reads: make(chan int, 1024)}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		done := make(chan error, 1)
		go func() {
			done <- Run(h, "tcp://"+addr, WithNumEventLoop(1), WithReadBufferCap(capacity), WithSocketRecvBuffer(1<<20))
		}()
		var eng Engine
		select {
		case eng = <-h.eng:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("engine did not boot")
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// All of it is in the socket before the loop reads (one write on
		// loopback), so the first read takes as much as it may.
		if _, err := c.Write(make([]byte, 256<<10)); err != nil {
			t.Fatal(err)
		}
		largest := 0
		for total := 0; total < 256<<10; {
			select {
			case n := <-h.reads:
				total += n
				if n > largest {
					largest = n
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("read size %d: %d bytes arrived, want %d", tc.size, total, 256<<10)
			}
		}
		if largest != tc.want {
			t.Errorf("read size %d: largest read %d bytes, want %d", tc.size, largest, tc.want)
		}
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = eng.Stop(ctx)
		cancel()
		<-done
	}
}
