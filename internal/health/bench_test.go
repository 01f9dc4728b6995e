package health

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/breaker"
)

// TestAllocs proves the per-request calls allocate nothing.
func TestAllocs(t *testing.T) {
	oc := DefaultOutlierConfig()
	oc.FailurePercent = 90 // exercise the window too
	oc.MinRequests = 1_000_000
	bs, _, _ := newBackends(t, oc, 2)
	b := bs[0]
	o := bs[1].Outlier()
	now := at(0)
	tests := []struct {
		name string
		f    func()
	}{
		{"Backend.Available", func() { _ = b.Available(now) }},
		{"Backend.Healthy", func() { _ = b.Healthy() }},
		{"Backend.Allow+Done success", func() {
			_, p := b.Allow(now)
			b.Done(now, breaker.Success, p)
		}},
		{"Backend.Done failures below thresholds", func() {
			b.Done(now, breaker.ServerError, 0)
			b.Done(now, breaker.ConnectError, 0)
			b.Done(now, breaker.Success, 0)
		}},
		{"Outlier.Record", func() {
			o.Record(now, breaker.Success)
			o.Record(now, breaker.Timeout)
			o.Record(now, breaker.Canceled)
		}},
		{"Outlier.Available", func() { _ = o.Available(now) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
				t.Errorf("%v allocs per call, want 0", n)
			}
		})
	}
}

func benchBackend(b *testing.B, oc OutlierConfig) *Backend {
	bs, _, _ := newBackends(&testing.T{}, oc, 2)
	b.ReportAllocs()
	return bs[0]
}

func BenchmarkBackendAvailable(b *testing.B) {
	be := benchBackend(b, DefaultOutlierConfig())
	for b.Loop() {
		if !be.Available(t0) {
			b.Fatal("unavailable")
		}
	}
}

func BenchmarkBackendAvailableParallel(b *testing.B) {
	be := benchBackend(b, DefaultOutlierConfig())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !be.Available(t0) {
				b.Error("unavailable")
				return
			}
		}
	})
}

// BenchmarkBackendAllowDone is one request's whole health cost: Allow
// (health, ejection, breaker) and Done (breaker, detector).
func BenchmarkBackendAllowDone(b *testing.B) {
	be := benchBackend(b, DefaultOutlierConfig())
	for b.Loop() {
		ok, p := be.Allow(t0)
		if ok {
			be.Done(t0, breaker.Success, p)
		}
	}
}

func BenchmarkBackendAllowDoneParallel(b *testing.B) {
	be := benchBackend(b, DefaultOutlierConfig())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, p := be.Allow(t0)
			if ok {
				be.Done(t0, breaker.Success, p)
			}
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	o := benchBackend(b, DefaultOutlierConfig()).Outlier()
	for b.Loop() {
		o.Record(t0, breaker.Success)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	o := benchBackend(b, DefaultOutlierConfig()).Outlier()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Record(t0, breaker.Success)
		}
	})
}

// BenchmarkRecordWindowParallel has the failure-percentage rule on, so
// every Record adds to the shared window word, and one result in eight is
// a failure (never enough to eject).
func BenchmarkRecordWindowParallel(b *testing.B) {
	oc := DefaultOutlierConfig()
	oc.FailurePercent = 50
	o := benchBackend(b, oc).Outlier()
	var clock atomic.Int64
	clock.Store(t0)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			r := breaker.Success
			if i%8 == 0 {
				r = breaker.ServerError
			}
			o.Record(clock.Add(int64(time.Microsecond)), r)
		}
	})
}
