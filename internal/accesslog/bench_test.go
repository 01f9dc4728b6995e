package accesslog

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAllocs proves the data plane's calls allocate nothing: Sampled,
// and Log whether it queues, finds the queue full, or finds the Logger
// closed. The writer is held still, so that its own allocations (which
// AllocsPerRun would count too) cannot happen during the measurement.
func TestAllocs(t *testing.T) {
	const runs = 1000
	l, g := blockedLogger(t, runs+1) // AllocsPerRun calls f runs+1 times
	e := testEntry()
	tests := []struct {
		name string
		f    func()
	}{
		{"Sampled, sample 1", func() { _ = l.Sampled() }},
		{"Log into the queue", func() { l.Log(&e) }},
		{"Log into a full queue", func() { l.Log(&e) }}, // the run above filled it
		{"Stats", func() { _, _ = l.Stats() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(runs, tt.f); n != 0 {
				t.Errorf("%v allocs per call, want 0", n)
			}
		})
	}
	if _, d := l.Stats(); d != runs+1 {
		t.Fatalf("dropped %d, want %d: the queue was not full", d, runs+1)
	}
	close(g.gate)
	l.Close()
	t.Run("Log after Close", func(t *testing.T) {
		if n := testing.AllocsPerRun(runs, func() { l.Log(&e) }); n != 0 {
			t.Errorf("%v allocs per call, want 0", n)
		}
	})

	half, err := New(Config{Sample: 0.5, Writer: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	t.Run("Sampled, sample 0.5", func(t *testing.T) {
		if n := testing.AllocsPerRun(runs, func() { _ = half.Sampled() }); n != 0 {
			t.Errorf("%v allocs per call, want 0", n)
		}
	})
}

func BenchmarkSampled(b *testing.B) {
	l, err := New(Config{Sample: 0.5, Writer: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = l.Sampled()
		}
	})
}

// BenchmarkLog measures Log, the data plane's cost per logged request.
// "queue" enqueues into a queue the writer does not drain (so it never
// fills within b.N); "full" drops; "live" runs against a real writer to
// io.Discard and reports the share it had to drop; the parallel cases
// have every P logging at once, as the event loops do.
func BenchmarkLog(b *testing.B) {
	e := testEntry()
	b.Run("queue", func(b *testing.B) {
		const size = 1 << 16
		l, g := blockedLogger(b, size)
		defer func() { close(g.gate); l.Close() }()
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			l.Log(&e)
			if n++; n == size { // start a new Logger, untimed
				b.StopTimer()
				close(g.gate)
				l.Close()
				l, g = blockedLogger(b, size)
				n = 0
				b.StartTimer()
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		l, g := blockedLogger(b, 1)
		l.Log(&e) // fills the queue
		defer func() { close(g.gate); l.Close() }()
		b.ReportAllocs()
		for b.Loop() {
			l.Log(&e)
		}
	})
	for _, parallel := range []bool{false, true} {
		name := "live"
		if parallel {
			name = "live-parallel"
		}
		b.Run(name, func(b *testing.B) {
			l, err := New(Config{Writer: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					e := testEntry()
					for pb.Next() {
						l.Log(&e)
					}
				})
			} else {
				for b.Loop() {
					l.Log(&e)
				}
			}
			b.StopTimer()
			l.Close()
			w, d := l.Stats()
			b.ReportMetric(float64(d)/float64(w+d), "dropped/op")
		})
	}
}

// BenchmarkWriter measures the writer goroutine: formatting with slog
// into the buffer, and flushing it, per line. lines/s is the most the
// access log can write before the queue fills; cpu-ns/op is the CPU time
// per line (including the garbage collector's), which stays put when
// other processes load the machine and wall time does not.
func BenchmarkWriter(b *testing.B) {
	for _, format := range []string{"json", "logfmt"} {
		for _, dest := range []string{"discard", "file"} {
			b.Run(format+"/"+dest, func(b *testing.B) {
				var w io.Writer = io.Discard
				if dest == "file" {
					f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					w = f
				}
				f := newFormatter(format, w)
				e := testEntry()
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					e.Time = e.Time.Add(7 * time.Microsecond) // a new millisecond every ~143 lines
					if err := f.write(&e); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.flush(); err != nil {
					b.Fatal(err)
				}
				cpu = cpuTime() - cpu
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
