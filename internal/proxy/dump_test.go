package proxy

import (
	"context"
	"fmt"
	"strings"

	"github.com/panjf2000/gnet/v2"
)

// dumpConns describes every connection the proxy holds, for test failures.
func dumpConns(s *Server) string {
	var sb strings.Builder
	onLoops(s, func(lp *loop) {
		for cl := lp.clients.head; cl != nil; cl = cl.lk.next {
			fmt.Fprintf(&sb, "client state=%d attached=%v parked=%v resuming=%v owed=%d/%d buffered=%d stash=%d up=%v\n",
				cl.state, cl.attached(), cl.isDetached(), cl.resuming, len(cl.owed), cap(cl.owed), cl.buffered(), cap(cl.stash), cl.up != nil)
		}
		for up := lp.upstreams.head; up != nil; up = up.lk.next {
			fmt.Fprintf(&sb, "upstream state=%d attached=%v parked=%v eof=%v owed=%d/%d stash=%d client=%v deadline=%d now=%d\n",
				up.state, up.attached(), up.isDetached(), up.eof, len(up.owed), cap(up.owed), cap(up.stash), up.cl != nil, up.deadline, lp.now)
		}
	})
	return sb.String()
}

// onLoops runs f on each of s's event loops in turn, on the loop's own
// goroutine, so that f may read the loop's connections.
func onLoops(s *Server, f func(lp *loop)) {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, lp := range loops {
		done := make(chan struct{})
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			defer close(done)
			f(lp)
			return nil
		}))
		<-done
	}
}
