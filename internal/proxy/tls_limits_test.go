package proxy

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestTLSAdmitBound: server.tls.maxHandshakes holds when several event
// loops admit a connection at the same moment. The hook holds every
// loop between reading the count of handshakes in progress and claiming
// a place until all have read it, the interleaving that let up to
// (loops - 1) extra handshakes in; still only the limit gets in.
func TestTLSAdmitBound(t *testing.T) {
	const loops, limit = 8, 3
	f := &tlsFront{}
	f.max.Store(limit)
	var arrived sync.WaitGroup
	arrived.Add(loops)
	var calls atomic.Int32
	f.admitHook = func() {
		if calls.Add(1) <= loops { // each loop's first pass
			arrived.Done()
			arrived.Wait()
		}
	}
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range loops {
		wg.Go(func() {
			if f.admit() {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != limit {
		t.Errorf("%d handshakes admitted at once, maxHandshakes %d", n, limit)
	}
	if n := f.inFlight.Load(); n != limit {
		t.Errorf("%d handshakes counted in progress, want %d", n, limit)
	}
}
