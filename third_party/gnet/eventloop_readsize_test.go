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
// reports how many bytes each OnTraffic saw in its read (it consumes
// nothing, so a read's size is what the buffer grew by). OnOpen waits
// until the client's whole write is queued, so that every read finds
// more than it may take. With reset, the first OnTraffic sets the read
// size back to 0.
type readSizeHandler struct {
	BuiltinEventEngine
	eng     chan Engine
	size    int
	reset   bool
	written chan struct{}
	reads   chan int
	seen    int
}

func (h *readSizeHandler) OnBoot(e Engine) Action { h.eng <- e; return None }

func (h *readSizeHandler) OnOpen(c Conn) ([]byte, Action) {
	c.(interface{ SetReadSize(int) }).SetReadSize(h.size)
	select {
	case <-h.written:
	case <-time.After(5 * time.Second):
	}
	return nil, None
}

func (h *readSizeHandler) OnTraffic(c Conn) Action {
	if h.seen == 0 && h.reset {
		c.(interface{ SetReadSize(int) }).SetReadSize(0)
	}
	n := c.InboundBuffered()
	h.reads <- n - h.seen
	h.seen = n
	return None
}

// TestSetReadSize checks that one read of a connection takes up to its
// read size, above ReadBufferCap, that other connections keep reading at
// most ReadBufferCap, and that setting the size back to 0 takes effect
// at the next read, also inside one readable event (edge-triggered, as
// gnet keeps reading then) (ConnX patch 7).
func TestSetReadSize(t *testing.T) {
	const capacity = 4 << 10 // ReadBufferCap
	const total = 256 << 10
	for _, tc := range []struct {
		name        string
		size        int
		reset, et   bool
		first, rest int // the largest first read, and the largest later one
	}{
		{"unset", 0, false, false, capacity, capacity},
		{"64 KiB", 64 << 10, false, false, 64 << 10, 64 << 10},
		{"below ReadBufferCap", 1 << 10, false, false, capacity, capacity},
		{"64 KiB, then 0", 64 << 10, true, false, 64 << 10, capacity},
		{"64 KiB, then 0, edge-triggered", 64 << 10, true, true, 64 << 10, capacity},
	} {
		h := &readSizeHandler{eng: make(chan Engine, 1), size: tc.size, reset: tc.reset,
			written: make(chan struct{}), reads: make(chan int, 1024)}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		done := make(chan error, 1)
		go func() {
			done <- Run(h, "tcp://"+addr, WithNumEventLoop(1), WithReadBufferCap(capacity),
				WithSocketRecvBuffer(1<<20), WithEdgeTriggeredIO(tc.et))
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
		if _, err := c.Write(make([]byte, total)); err != nil {
			t.Fatal(err)
		}
		close(h.written)
		first, rest := -1, 0
		for got := 0; got < total; {
			select {
			case n := <-h.reads:
				got += n
				if first < 0 {
					first = n
				} else if n > rest {
					rest = n
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: %d bytes arrived, want %d", tc.name, got, total)
			}
		}
		if first != tc.first || rest != tc.rest {
			t.Errorf("%s: first read %d bytes, largest later one %d; want %d and %d", tc.name, first, rest, tc.first, tc.rest)
		}
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = eng.Stop(ctx)
		cancel()
		<-done
	}
}
