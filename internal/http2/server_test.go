package http2

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testServer is a test-only server loop that drives a Conn over real TCP
// connections the way the proxy will from its event loop: read, Feed,
// act on events, send Output. It answers every request by echoing the
// request body (and trailers) back, with these exceptions by path:
//
//	/big?n=N    answers N bytes of 'x'
//	/reset      sends a head and a little data, then resets the stream
//	anything else without a body answers "hello from connx\n"
type testServer struct {
	ln    net.Listener
	lim   *Limits
	mu    sync.Mutex
	conns int
	// resets receives the stream ID of each EventReset, if not nil.
	resets chan uint32
	wg     sync.WaitGroup
}

func startTestServer(t testing.TB, lim *Limits) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{ln: ln, lim: lim}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *testServer) addr() string { return s.ln.Addr().String() }

func (s *testServer) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

type echoStream struct {
	pending  []byte
	reqDone  bool
	trailers []Field
}

func (s *testServer) serve(nc net.Conn) {
	defer nc.Close()
	c := NewServerConn(s.lim, nil)
	streams := make(map[uint32]*echoStream)
	flush := func() bool {
		if out := c.Output(); len(out) > 0 {
			if _, err := nc.Write(out); err != nil {
				return false
			}
		}
		return true
	}
	if !flush() {
		return
	}
	var buf []byte
	rb := make([]byte, 64<<10)
	for {
		n, rerr := nc.Read(rb)
		buf = append(buf, rb[:n]...)
		for {
			k, evs, err := c.Feed(buf)
			for i := range evs {
				s.handle(c, streams, &evs[i])
			}
			buf = buf[:copy(buf, buf[k:])]
			if err != nil {
				flush()
				return
			}
			if k == 0 {
				break
			}
		}
		if !flush() || rerr != nil {
			return
		}
		if c.Done() {
			return
		}
	}
}

func (s *testServer) handle(c *Conn, streams map[uint32]*echoStream, ev *Event) {
	id := ev.Stream
	switch ev.Kind {
	case EventHeaders:
		st := &echoStream{reqDone: ev.EndStream}
		streams[id] = st
		hb := c.Headers(200)
		hb.AddString("Content-Type", "application/octet-stream")
		hb.AddString("x-method", ev.Method)
		switch {
		case strings.HasPrefix(ev.Path, "/big?n="):
			n, _ := strconv.Atoi(ev.Path[len("/big?n="):])
			st.pending = bytes.Repeat([]byte("x"), n)
			st.reqDone = true
		case ev.Path == "/reset":
			_ = c.WriteHeaders(id, hb, false)
			_, _ = c.WriteData(id, []byte("partial"), false)
			c.Reset(id, ErrCodeCancel)
			delete(streams, id)
			return
		case ev.EndStream:
			st.pending = []byte("hello from connx\n")
		}
		_ = c.WriteHeaders(id, hb, false)
		s.push(c, streams, id, st)
	case EventData:
		st := streams[id]
		if st == nil {
			return
		}
		st.pending = append(st.pending, ev.Data...)
		st.reqDone = ev.EndStream
		s.push(c, streams, id, st)
	case EventTrailers:
		st := streams[id]
		if st == nil {
			return
		}
		st.trailers = append([]Field(nil), ev.Fields...)
		st.reqDone = true
		s.push(c, streams, id, st)
	case EventWindow:
		if st := streams[id]; st != nil {
			s.push(c, streams, id, st)
		}
	case EventReset:
		delete(streams, id)
		if s.resets != nil {
			select {
			case s.resets <- id:
			default:
			}
		}
	}
}

// push echoes what the windows allow; request bytes are consumed only once
// they have been written back, so a client that does not read holds its
// own upload.
func (s *testServer) push(c *Conn, streams map[uint32]*echoStream, id uint32, st *echoStream) {
	end := st.reqDone && st.trailers == nil
	n, err := c.WriteData(id, st.pending, end)
	if err != nil {
		delete(streams, id)
		return
	}
	c.Consumed(id, n)
	st.pending = st.pending[n:]
	if len(st.pending) > 0 || !st.reqDone {
		return
	}
	if st.trailers != nil {
		hb := c.Headers(0)
		for _, f := range st.trailers {
			hb.AddString(f.Name, f.Value)
		}
		_ = c.WriteHeaders(id, hb, true)
	}
	delete(streams, id)
}
