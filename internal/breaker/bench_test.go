package breaker

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestAllocs proves the per-request calls allocate nothing, in every state.
func TestAllocs(t *testing.T) {
	c := testConfig()
	c.HalfOpenSuccess = MaxCount // stay half-open while probing
	closed := New(c, nil)
	half := New(c, func(Change) {})
	trip(t, half, t0)
	if ok, p := half.Allow(t0 + int64(c.Timeout)); ok {
		half.Done(t0, Canceled, p)
	}
	open := New(c, nil)
	trip(t, open, t0)
	now := t0 + int64(time.Second)
	tests := []struct {
		name string
		f    func()
	}{
		{"closed Allow+Done success", func() {
			_, p := closed.Allow(now)
			closed.Done(now, Success, p)
		}},
		{"closed Done failure", func() {
			closed.Done(now, ServerError, 0)
			closed.Done(now, Success, 0)
		}},
		{"closed Available", func() { _ = closed.Available(now) }},
		{"open Allow", func() { _, _ = open.Allow(now) }},
		{"open Available", func() { _ = open.Available(now) }},
		{"half-open probe", func() {
			later := now + int64(c.Timeout)
			if ok, p := half.Allow(later); ok {
				half.Done(later, Success, p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
				t.Errorf("%v allocs per call, want 0", n)
			}
		})
	}
}

func BenchmarkAllowDone(b *testing.B) {
	br := New(DefaultConfig(), nil)
	b.ReportAllocs()
	for b.Loop() {
		ok, p := br.Allow(t0)
		if ok {
			br.Done(t0, Success, p)
		}
	}
}

func BenchmarkAllowDoneParallel(b *testing.B) {
	br := New(DefaultConfig(), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, p := br.Allow(t0)
			if ok {
				br.Done(t0, Success, p)
			}
		}
	})
}

// BenchmarkAllowDoneFailingParallel reports a failure on every 4th request
// from every goroutine, so the state word is written (CAS) often and the
// breaker opens, goes half-open and closes again as time moves.
func BenchmarkAllowDoneFailingParallel(b *testing.B) {
	c := DefaultConfig()
	c.Timeout = time.Millisecond
	br := New(c, nil)
	var clock atomic.Int64
	clock.Store(t0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			now := clock.Add(int64(time.Microsecond))
			ok, p := br.Allow(now)
			if !ok {
				continue
			}
			o := Success
			if i%4 == 0 {
				o = ConnectError
			}
			br.Done(now, o, p)
		}
	})
}

func BenchmarkAvailable(b *testing.B) {
	br := New(DefaultConfig(), nil)
	b.ReportAllocs()
	for b.Loop() {
		if !br.Available(t0) {
			b.Fatal("unavailable")
		}
	}
}

func BenchmarkAvailableParallel(b *testing.B) {
	br := New(DefaultConfig(), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !br.Available(t0) {
				b.Error("unavailable")
				return
			}
		}
	})
}

func BenchmarkAvailableOpen(b *testing.B) {
	br := New(DefaultConfig(), nil)
	for range DefaultConfig().MaxFailures {
		br.Done(t0, ConnectError, 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		if br.Available(t0) {
			b.Fatal("available")
		}
	}
}
