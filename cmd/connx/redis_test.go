package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/testproc"
)

// TestRedisFleet runs three connx processes sharing one Redis, loaded
// unevenly: together they allow requestsPerSec × seconds + burst within
// ±10%. Redis is then killed (requests keep flowing, each process logs
// it once) and started again (each process logs the recovery).
func TestRedisFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes under load")
	}
	const rps, burst = 50, 50
	srv := testproc.StartRedis(t)
	backend := namedBackend(t, "a", nil)
	extra := fmt.Sprintf("rateLimit:\n  enabled: true\n  requestsPerSec: %d\n  burst: %d\n  redis:\n    address: %q\n    syncInterval: 20ms\n    timeout: 2s\n",
		rps, burst, srv.Addr)
	var fleet []*proc
	for i := range 3 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("connx%d.yaml", i))
		testproc.WriteConfig(t, path, configFor("round-robin", extra, backend))
		fleet = append(fleet, startConnx(t, "-config", path))
	}
	for _, p := range fleet {
		p.WaitLog("rate limits shared through Redis")
	}
	// 200, 100 and 100 requests/s offered to a limit of 50/s.
	perTick := []int{2, 1, 1}
	var ok, limited, failed atomic.Int64
	drive := func(d time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var wg sync.WaitGroup
		for i, p := range fleet {
			wg.Go(func() {
				c := &http.Client{Timeout: 5 * time.Second}
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					for range perTick[i] {
						resp, err := c.Get("http://" + p.Addr + "/")
						if err != nil {
							failed.Add(1)
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						switch resp.StatusCode {
						case http.StatusOK:
							ok.Add(1)
						case http.StatusTooManyRequests:
							limited.Add(1)
						default:
							failed.Add(1)
						}
					}
				}
			})
		}
		wg.Wait()
	}
	start := time.Now()
	drive(4 * time.Second)
	secs := time.Since(start).Seconds()
	want := rps*secs + burst
	got := ok.Load()
	t.Logf("fleet: %d allowed, %d limited in %.2f s, want %.0f allowed: %+.1f%%", got, limited.Load(), secs, want,
		100*(float64(got)-want)/want)
	if math.Abs(float64(got)-want) > 0.10*want {
		t.Errorf("fleet allowed %d, more than 10%% from %.0f", got, want)
		for _, p := range fleet { // how the rounds went
			for _, l := range p.Log() {
				if strings.Contains(l, "Redis") {
					t.Log(l)
				}
			}
		}
	}

	watch := make([]<-chan string, len(fleet))
	for i, p := range fleet {
		watch[i] = p.Watch("rate limits shared through Redis")
	}
	srv.Kill()
	for _, p := range fleet {
		p.WaitLog("Redis unreachable")
	}
	ok.Store(0)
	drive(time.Second)
	if ok.Load() == 0 {
		t.Error("no request allowed while Redis was down")
	}
	srv.Start()
	for i, p := range fleet {
		p.Next(watch[i], "recovery")
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed", n)
	}
}
