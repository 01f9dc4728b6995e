package balancer

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPick measures one Pick per policy with 3 and 100 members, all
// eligible through a non-nil predicate, some requests in flight, the
// runtime's random source and a coarse clock (an atomic load, as the proxy
// should pass; time.Now costs ewma another 20-50 ns). Latency estimates are
// 1 ms old, as on a busy proxy; estimates older than tau/64 cost ewma a
// math.Exp each.
func BenchmarkPick(b *testing.B) {
	for _, name := range allPolicies {
		for _, n := range []int{3, 100} {
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				weights := make([]int, n)
				for i := range weights {
					weights[i] = 1 + i%3
				}
				nodes, members := nodesFor(weights...)
				now := time.Now().UnixNano()
				for i, nd := range nodes {
					for range i % 4 {
						nd.Begin()
					}
					nd.End(now, time.Duration(1+i%5)*time.Millisecond, false)
					nd.Begin()
				}
				var coarse atomic.Int64
				coarse.Store(now + int64(time.Millisecond)) // estimates 1 ms old: a busy proxy
				p, err := New(name, members, Options{Now: coarse.Load})
				if err != nil {
					b.Fatal(err)
				}
				down := make([]bool, n)
				ok := func(i int) bool { return !down[i] }
				b.ReportAllocs()
				var key uint64
				for b.Loop() {
					key += golden
					p.Pick(key, ok)
				}
			})
		}
	}
}

// BenchmarkPickParallel shows the cost of shared state under contention:
// every goroutine picks from the same policy.
func BenchmarkPickParallel(b *testing.B) {
	for _, name := range allPolicies {
		b.Run(name, func(b *testing.B) {
			_, members := nodesFor(1, 2, 3)
			p, err := New(name, members, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var key uint64
				for pb.Next() {
					key += golden
					p.Pick(key, nil)
				}
			})
		})
	}
}

func BenchmarkNodeBeginEnd(b *testing.B) {
	n := NewNode("x")
	now := time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		now += int64(time.Microsecond)
		n.Begin()
		n.End(now, time.Millisecond, false)
	}
}

func BenchmarkHashBytes(b *testing.B) {
	for _, size := range []int{4, 16, 64} {
		in := make([]byte, size)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				HashBytes(in)
			}
		})
	}
}
