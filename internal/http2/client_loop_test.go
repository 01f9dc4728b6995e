package http2

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// testClient drives a ClientConn over a net.Conn the way the proxy's event
// loop will: one goroutine (loop) owns the ClientConn; a reader goroutine
// hands it what arrives and a writer goroutine sends what it outputs.
// Tests talk to it with exec, which runs a function on the loop.
type testClient struct {
	t     testing.TB
	nc    net.Conn
	cc    *ClientConn
	do    chan func()
	in    chan []byte
	out   chan []byte
	calls map[uint32]*testCall // owned by the loop

	mu      sync.Mutex
	goAways []ClientEvent
	// goAwayCh is signalled (without blocking) after each GOAWAY.
	goAwayCh chan struct{}
	err      error // the connection error or read error that ended the loop
	ended    chan struct{}
}

// testCall is one stream. Its events queue without bound: what the
// server may send is bounded by the windows, which open only as recv
// returns DATA (Consumed).
type testCall struct {
	tc *testClient
	id uint32

	mu   sync.Mutex
	cond *sync.Cond
	q    []ClientEvent

	// Owned by the loop: request body not yet taken by the windows,
	// whether it ends the request, and trailers to send after it.
	pending  []byte
	end      bool
	trailers []Field
	sentEnd  bool
}

// hangLimit bounds how long a test waits for the server before failing
// instead of hanging; it never decides a pass.
const hangLimit = time.Minute

func dialTestClient(t testing.TB, addr string, lim *Limits) *testClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{
		t: t, nc: nc, cc: NewClientConn(lim, nil),
		do: make(chan func()), in: make(chan []byte, 64), out: make(chan []byte, 1024),
		calls: make(map[uint32]*testCall), ended: make(chan struct{}), goAwayCh: make(chan struct{}, 1),
	}
	go tc.read()
	go tc.write()
	go tc.loop()
	t.Cleanup(func() {
		nc.Close()
		<-tc.ended
	})
	return tc
}

func (tc *testClient) read() {
	defer close(tc.in)
	for {
		b := make([]byte, 64<<10)
		n, err := tc.nc.Read(b)
		if n > 0 {
			tc.in <- b[:n]
		}
		if err != nil {
			return
		}
	}
}

func (tc *testClient) write() {
	for b := range tc.out {
		if _, err := tc.nc.Write(b); err != nil {
			for range tc.out {
			}
			return
		}
	}
}

func (tc *testClient) loop() {
	defer close(tc.ended)
	defer close(tc.out)
	var buf []byte
	tc.flush()
	for {
		select {
		case f := <-tc.do:
			f()
		case b, ok := <-tc.in:
			if !ok {
				tc.finish(errors.New("connection closed by the server"))
				return
			}
			buf = append(buf, b...)
			for {
				n, evs, err := tc.cc.Feed(buf)
				for _, ev := range evs {
					tc.dispatch(ev)
				}
				buf = buf[:copy(buf, buf[n:])]
				if err != nil {
					tc.flush()
					tc.finish(err)
					return
				}
				if n == 0 {
					break
				}
			}
		}
		tc.flush()
	}
}

func (tc *testClient) flush() {
	if out := tc.cc.Output(); len(out) > 0 {
		tc.out <- bytes.Clone(out)
	}
}

// finish ends every call with a reset event carrying err.
func (tc *testClient) finish(err error) {
	tc.mu.Lock()
	tc.err = err
	tc.mu.Unlock()
	for _, c := range tc.calls {
		c.push(ClientEvent{Kind: EventReset, Stream: c.id, Code: ErrCodeInternal})
	}
	for {
		select {
		case f := <-tc.do:
			f()
		default:
			return
		}
	}
}

func (tc *testClient) dispatch(ev ClientEvent) {
	switch ev.Kind {
	case EventGoAway:
		tc.mu.Lock()
		tc.goAways = append(tc.goAways, ev)
		tc.mu.Unlock()
		select {
		case tc.goAwayCh <- struct{}{}:
		default:
		}
		return
	case EventWindow:
		if c := tc.calls[ev.Stream]; c != nil {
			c.sendMore()
		}
		return
	}
	c := tc.calls[ev.Stream]
	if c == nil {
		return
	}
	ev.Data = bytes.Clone(ev.Data)
	ev.Fields = append([]Field(nil), ev.Fields...)
	if ev.Kind == EventReset {
		delete(tc.calls, ev.Stream)
	}
	c.push(ev)
}

// exec runs f on the loop and waits for it; false if the loop has ended.
func (tc *testClient) exec(f func()) bool {
	done := make(chan struct{})
	select {
	case tc.do <- func() { f(); close(done) }:
		<-done
		return true
	case <-tc.ended:
		return false
	}
}

// open opens a stream with the head made by head (on the loop).
func (tc *testClient) open(head func(c *ClientConn) *HeaderBlock, end bool) (*testCall, error) {
	var c *testCall
	var err error
	if !tc.exec(func() {
		var id uint32
		id, err = tc.cc.OpenStream(head(tc.cc), end)
		if err == nil {
			c = &testCall{tc: tc, id: id, sentEnd: end}
			c.cond = sync.NewCond(&c.mu)
			tc.calls[id] = c
		}
	}) {
		return nil, errors.New("client loop ended")
	}
	return c, err
}

// grpcHead returns a head function for a gRPC call of method.
func grpcHead(authority, method string) func(c *ClientConn) *HeaderBlock {
	return func(c *ClientConn) *HeaderBlock {
		hb := c.Request("POST", "http", authority, method)
		hb.AddString("content-type", "application/grpc")
		hb.AddString("te", "trailers")
		return hb
	}
}

// send queues p (and the end of the request, with trailers if any); it
// goes out as the windows allow.
func (c *testCall) send(p []byte, end bool, trailers ...Field) {
	c.tc.exec(func() {
		c.pending = append(c.pending, p...)
		c.end, c.trailers = end, trailers
		c.sendMore()
	})
}

// sendMore writes what the windows take; on the loop.
func (c *testCall) sendMore() {
	if c.sentEnd {
		return
	}
	cc := c.tc.cc
	endData := c.end && c.trailers == nil
	n, err := cc.WriteData(c.id, c.pending, endData)
	if err != nil {
		return
	}
	c.pending = c.pending[n:]
	if len(c.pending) > 0 || !c.end {
		return
	}
	c.sentEnd = true
	if c.trailers != nil {
		tb := cc.Trailers()
		for _, f := range c.trailers {
			tb.AddString(f.Name, f.Value)
		}
		_ = cc.WriteTrailers(c.id, tb)
	}
}

func (c *testCall) push(ev ClientEvent) {
	c.mu.Lock()
	c.q = append(c.q, ev)
	c.mu.Unlock()
	c.cond.Broadcast()
}

// recv returns the next event of the call, returning DATA to the windows
// as it is taken.
func (c *testCall) recv() ClientEvent {
	c.tc.t.Helper()
	timer := time.AfterFunc(hangLimit, c.cond.Broadcast)
	defer timer.Stop()
	start := time.Now()
	c.mu.Lock()
	for len(c.q) == 0 {
		if time.Since(start) >= hangLimit {
			c.mu.Unlock()
			c.tc.t.Fatalf("stream %d: no event", c.id)
		}
		c.cond.Wait()
	}
	ev := c.q[0]
	c.q = c.q[1:]
	c.mu.Unlock()
	if ev.Kind == EventData {
		c.tc.exec(func() { c.tc.cc.Consumed(c.id, len(ev.Data)) })
	}
	return ev
}

// reset resets the call from the client side.
func (c *testCall) reset(code ErrCode) {
	c.tc.exec(func() {
		c.tc.cc.Reset(c.id, code)
		delete(c.tc.calls, c.id)
	})
}

// response is a whole response as read by readResponse.
type response struct {
	status   int
	head     []Field
	body     []byte
	trailers []Field
	reset    *ClientEvent
}

func fieldValue(fs []Field, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// readResponse reads events until the response ends or the stream is
// reset; informational heads are skipped.
func (c *testCall) readResponse() response {
	c.tc.t.Helper()
	var r response
	for {
		ev := c.recv()
		switch ev.Kind {
		case EventHeaders:
			if ev.Status < 200 {
				continue
			}
			r.status, r.head = ev.Status, ev.Fields
		case EventData:
			r.body = append(r.body, ev.Data...)
		case EventTrailers:
			r.trailers = ev.Fields
		case EventReset:
			r.reset = &ev
			return r
		}
		if ev.EndStream {
			return r
		}
	}
}
