//go:build reliability

package reliability

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connx/connx/internal/testproc"
)

// TestSoak runs only when SOAK is set to a duration (`make soak`, 1h):
// mixed traffic — keep-alive and fresh GETs, POSTs with bodies, large
// responses, malformed requests and slowloris connections — for that
// long, sampling connx's RSS and goroutine count (go_goroutines from the
// admin listener's /metrics) every minute (or a tenth of a shorter run).
// After a warm-up (the first quarter of the samples, at most five), both
// must stay within 10%.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set SOAK to a duration (e.g. SOAK=1h) to run the soak")
	}
	every := min(time.Minute, d/10)
	big := strings.Repeat("z", 256<<10)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "ok")
	})
	admin := "127.0.0.1:" + testproc.FreePort(t)
	p, _ := run(t, config("", "admin:\n  listen: "+admin+"\ntimeouts:\n  clientHeader: 2s\n", be.URL))
	p.WaitLog("admin listening")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, fail atomic.Int64
	var errMu sync.Mutex
	var errs []string
	worker := func(f func() error) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := f(); err != nil {
				fail.Add(1)
				errMu.Lock()
				if len(errs) < 20 {
					errs = append(errs, time.Now().Format("15:04:05 ")+err.Error())
				}
				errMu.Unlock()
			} else {
				ok.Add(1)
			}
			time.Sleep(20 * time.Millisecond) // the load's pace
		}
	}
	status := func(c *http.Client, method, path string, body io.Reader) error {
		r, _ := http.NewRequest(method, "http://"+p.Addr+path, body)
		resp, err := c.Do(r)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
		}
		return err
	}
	keep := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	jobs := []func() error{
		func() error { return status(keep, "GET", "/", nil) },
		func() error { return status(keep, "GET", "/", nil) },
		func() error { return status(fresh, "GET", "/", nil) },
		func() error { return status(keep, "POST", "/post", strings.NewReader(strings.Repeat("p", 4096))) },
		func() error { return status(keep, "GET", "/big", nil) },
		func() error { // malformed: 400 and a close are the expected outcome
			c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
			l, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(l, "HTTP/1.1 400") {
				return fmt.Errorf("malformed request: %q %v", l, err)
			}
			return nil
		},
		func() error { // slowloris: 408 at clientHeader
			c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\n")
			l, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(l, "HTTP/1.1 408") {
				return fmt.Errorf("slowloris: %q %v", l, err)
			}
			return nil
		},
	}
	for _, j := range jobs {
		wg.Add(1)
		go worker(j)
	}
	defer func() {
		close(stop)
		wg.Wait()
		keep.CloseIdleConnections()
	}()

	type sample struct {
		at         time.Duration
		rss        int64
		goroutines int
	}
	var samples []sample
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < d; elapsed = time.Since(start) {
		time.Sleep(every) // the sampling period
		s := sample{at: time.Since(start).Round(time.Second), rss: rssKiB(p.PID()), goroutines: goroutines(t, admin)}
		samples = append(samples, s)
		t.Logf("soak %v: RSS %d KiB, goroutines %d, requests ok %d failed %d", s.at, s.rss, s.goroutines, ok.Load(), fail.Load())
		if !p.Alive() {
			t.Fatalf("connx exited: %v", p.Err)
		}
	}
	errMu.Lock()
	for _, e := range errs {
		t.Errorf("request failed: %s", e)
	}
	errMu.Unlock()
	if len(samples) < 3 {
		t.Fatalf("only %d samples", len(samples))
	}
	// Warm-up: the first quarter of the samples, at most five (five
	// minutes of the one-hour soak).
	warm := max(1, min(5, len(samples)/4))
	flat := func(name string, v func(sample) float64) {
		lo, hi := v(samples[warm]), v(samples[warm])
		for _, s := range samples[warm:] {
			lo, hi = min(lo, v(s)), max(hi, v(s))
		}
		t.Logf("%s after warm-up: min %.0f max %.0f (%+.1f%%)", name, lo, hi, (hi-lo)/lo*100)
		if hi > lo*1.10 {
			t.Errorf("%s grew from %.0f to %.0f after warm-up: more than 10%%", name, lo, hi)
		}
	}
	flat("RSS KiB", func(s sample) float64 { return float64(s.rss) })
	flat("goroutines", func(s sample) float64 { return float64(s.goroutines) })
	t.Logf("soak %v: %d requests ok, %d failed", d, ok.Load(), fail.Load())
}

// goroutines scrapes go_goroutines from the admin listener's /metrics.
func goroutines(t *testing.T, admin string) int {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}
