package metrics

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/connx/connx/internal/stats"
)

// bigSnapshot is a snapshot of a ConnX with n backends, each with twelve
// request series (GET, HEAD, POST x 200, 304, 404, 502), a full duration
// histogram and health state; plus requests answered by ConnX itself.
func bigSnapshot(n int) stats.Snapshot {
	s := sampleSnapshot()
	s.Backends, s.Requests, s.Durations = nil, nil, nil
	all := make(map[int]uint64)
	for i := range len(stats.DurationBuckets) + 1 {
		all[i] = uint64(i + 1)
	}
	for i := range n {
		name := "http://10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":8080"
		b := backend(name, "closed")
		b.InFlight, b.IdleConns, b.OpenConns = 3, 8, 11
		b.Health.ChecksOK = 1000
		s.Backends = append(s.Backends, b)
		for _, m := range []string{"GET", "HEAD", "POST"} {
			for _, c := range []int{200, 304, 404, 502} {
				s.Requests = append(s.Requests, stats.RequestCount{Method: m, Code: c, Backend: name, Count: uint64(c * 7)})
			}
		}
		s.Durations = append(s.Durations, hist(name, 123.4, all))
	}
	s.Requests = append(s.Requests, stats.RequestCount{Method: "GET", Code: 429, Backend: stats.NoBackend, Count: 9})
	s.Durations = append(s.Durations, hist(stats.NoBackend, 0.1, all))
	return s
}

// BenchmarkAppendText is one main-port scrape with 100 backends: the
// Source call, ConnX's collector, the Go runtime and process collectors,
// and text encoding. The Source here is free; the data plane's summing
// is measured in its own package.
func BenchmarkAppendText(b *testing.B) {
	e := New(Options{Version: "bench", Source: fixed(bigSnapshot(100))})
	buf, err := e.AppendText(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = e.AppendText(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollectConnX is the ConnX collector alone with 100 backends,
// gathered and encoded as text: the part of a scrape this package owns.
func BenchmarkCollectConnX(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(Options{Version: "bench", Source: fixed(bigSnapshot(100))}))
	var buf appendBuffer
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		buf = buf[:0]
		enc := expfmt.NewEncoder(&buf, textFormat)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(int64(len(buf)))
}

type appendBuffer []byte

func (a *appendBuffer) Write(p []byte) (int, error) {
	*a = append(*a, p...)
	return len(p), nil
}
