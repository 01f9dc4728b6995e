//go:build reliability

package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// toxi starts a Toxiproxy proxy on 127.0.0.1 in front of upstream
// (host:port); it is stopped with the test.
func toxi(t *testing.T, upstream string) *toxiproxy.Proxy {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(api, "to-"+upstream, "127.0.0.1:0", upstream)
	if err := api.Collection.Add(p, true); err != nil {
		t.Fatalf("toxiproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// toxic adds a toxic of typ on stream ("downstream": backend to connx,
// "upstream": connx to backend) and returns a function that removes it.
func toxic(t *testing.T, p *toxiproxy.Proxy, typ, stream string, attrs any) func() {
	t.Helper()
	name := typ + "_" + stream
	spec, _ := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1, "attributes": attrs})
	if _, err := p.Toxics.AddToxicJson(bytes.NewReader(spec)); err != nil {
		t.Fatalf("adding toxic %s: %v", spec, err)
	}
	return func() {
		if err := p.Toxics.RemoveToxic(t.Context(), name); err != nil {
			t.Errorf("removing toxic %s: %v", name, err)
		}
	}
}

// tracked is a backend that records which of its connections (by the
// peer address, i.e. Toxiproxy's connection for one connx upstream
// connection) served each request's X-Req.
type tracked struct {
	*backend
	mu  sync.Mutex
	via map[string]string
}

func newTracked(t *testing.T, h http.HandlerFunc) *tracked {
	tb := &tracked{via: map[string]string{}}
	tb.backend = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		tb.mu.Lock()
		tb.via[r.Header.Get("X-Req")] = r.RemoteAddr
		tb.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	return tb
}

func (tb *tracked) conn(req string) string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.via[req]
}

// req sends one request with X-Req on a new connection and returns the
// status (0 on a transport error), the body length and how long it took.
func req(t *testing.T, addr, method, id string) (int, int, time.Duration, error) {
	t.Helper()
	start := time.Now()
	r, _ := http.NewRequest(method, "http://"+addr+"/", nil)
	r.Header.Set("X-Req", id)
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(r)
	if err != nil {
		return 0, 0, time.Since(start), err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, len(b), time.Since(start), err
}

const faultCfg = "timeouts:\n  upstreamResponseHeader: 1s\n  upstreamRead: 2s\n" +
	"circuitBreaker:\n  enabled: false\noutlierDetection:\n  enabled: false\n"

// TestFaults puts Toxiproxy between connx and a backend and checks each
// fault against the documented behaviour; after a fault, the next request
// must be served on a different upstream connection.
func TestFaults(t *testing.T) {
	t.Run("latency", func(t *testing.T) {
		be := newTracked(t, nil)
		tp := toxi(t, be.Listener.Addr().String())
		p, _ := run(t, config("", faultCfg+"upstream:\n  retries: 0\n", "http://"+tp.Listen))
		if code, _, _, err := req(t, p.Addr, "GET", "warm"); code != 200 {
			t.Fatalf("warm-up: %d %v", code, err)
		}
		remove := toxic(t, tp, "latency", "downstream", map[string]any{"latency": 3000})
		code, _, took, err := req(t, p.Addr, "GET", "fault")
		remove()
		t.Logf("latency 3s, upstreamResponseHeader 1s: status %d after %v (err %v)", code, took.Round(time.Millisecond), err)
		if code != 504 || took > 5*time.Second {
			t.Errorf("status %d after %v, want 504 at the 1s response-header timeout", code, took)
		}
		checkNotReused(t, p.Addr, be, "fault")
	})
	t.Run("bandwidth", func(t *testing.T) {
		const size = 1 << 20
		be := newTracked(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("b"), size))
		})
		tp := toxi(t, be.Listener.Addr().String())
		p, _ := run(t, config("", faultCfg, "http://"+tp.Listen))
		toxic(t, tp, "bandwidth", "downstream", map[string]any{"rate": 256}) // KB/s
		code, n, took, err := req(t, p.Addr, "GET", "bw")
		t.Logf("bandwidth 256 KB/s, 1 MiB body: status %d, %d bytes in %v (%.0f KB/s), err %v", code, n, took.Round(time.Millisecond), float64(n)/1000/took.Seconds(), err)
		if code != 200 || n != size {
			t.Errorf("status %d, %d bytes, want 200 and %d", code, n, size)
		}
	})
	t.Run("slow_close", func(t *testing.T) {
		be := newTracked(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "ok")
		})
		tp := toxi(t, be.Listener.Addr().String())
		p, _ := run(t, config("", faultCfg, "http://"+tp.Listen))
		toxic(t, tp, "slow_close", "downstream", map[string]any{"delay": 3000})
		var lat []time.Duration
		for i := range 5 {
			code, n, took, err := req(t, p.Addr, "GET", fmt.Sprint("sc", i))
			if code != 200 || n != 2 {
				t.Errorf("request %d: status %d, %d bytes, err %v", i, code, n, err)
			}
			lat = append(lat, took)
		}
		_, _, _, mx := percentiles(lat)
		t.Logf("slow_close 3s on Connection: close responses: 5 of 5 complete, slowest %v (the close is not waited for)", mx.Round(time.Millisecond))
		if mx > 2500*time.Millisecond {
			t.Errorf("a response took %v: connx waited for the backend's delayed close", mx)
		}
	})
	t.Run("reset_peer", func(t *testing.T) {
		good := newTracked(t, nil)
		bad := newTracked(t, nil)
		tp := toxi(t, bad.Listener.Addr().String())
		p, _ := run(t, config("", faultCfg+"upstream:\n  retries: 1\n", "http://"+tp.Listen, good.URL))
		remove := toxic(t, tp, "reset_peer", "upstream", map[string]any{"timeout": 0})
		out := map[string]int{}
		for i := range 20 {
			code, _, _, err := req(t, p.Addr, "GET", fmt.Sprint("rp", i))
			out[fmt.Sprintf("GET %d %v", code, err)]++
			code, _, _, err = req(t, p.Addr, "POST", fmt.Sprint("rpp", i))
			out[fmt.Sprintf("POST %d %v", code, err)]++
		}
		remove()
		t.Logf("reset_peer on one of two backends, 20 GETs and 20 POSTs: %v", out)
		for o, n := range out {
			if strings.HasPrefix(o, "GET ") && o != "GET 200 <nil>" {
				t.Errorf("%d idempotent GETs: %s, want 200 (retried)", n, o)
			}
			if strings.HasPrefix(o, "POST ") && o != "POST 200 <nil>" && o != "POST 502 <nil>" {
				t.Errorf("%d POSTs: %s, want 200 or 502", n, o)
			}
		}
	})
	t.Run("timeout", func(t *testing.T) {
		be := newTracked(t, nil)
		tp := toxi(t, be.Listener.Addr().String())
		p, _ := run(t, config("", faultCfg+"upstream:\n  retries: 0\n", "http://"+tp.Listen))
		if code, _, _, err := req(t, p.Addr, "GET", "warm"); code != 200 {
			t.Fatalf("warm-up: %d %v", code, err)
		}
		remove := toxic(t, tp, "timeout", "downstream", map[string]any{"timeout": 0})
		code, _, took, err := req(t, p.Addr, "GET", "fault")
		remove()
		t.Logf("timeout toxic (black hole): status %d after %v (err %v)", code, took.Round(time.Millisecond), err)
		if (code != 504 && code != 502) || took > 5*time.Second {
			t.Errorf("status %d after %v, want 504 or 502 within the 1s timeout", code, took)
		}
		checkNotReused(t, p.Addr, be, "fault")
	})
	t.Run("slicer", func(t *testing.T) {
		body := strings.Repeat("0123456789abcdef", 256)
		be := newTracked(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Chunked") != "" {
				w.(http.Flusher).Flush()
			}
			io.WriteString(w, body)
		})
		tp := toxi(t, be.Listener.Addr().String())
		p, _ := run(t, config("", faultCfg, "http://"+tp.Listen))
		toxic(t, tp, "slicer", "downstream", map[string]any{"average_size": 7, "size_variation": 6, "delay": 50})
		c := &http.Client{Timeout: 20 * time.Second}
		bad := 0
		for i := range 20 {
			r, _ := http.NewRequest("GET", "http://"+p.Addr+"/", nil)
			if i%2 == 1 {
				r.Header.Set("X-Chunked", "1")
			}
			resp, err := c.Do(r)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				bad++
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != body {
				t.Errorf("request %d: %d bytes, err %v", i, len(b), err)
				bad++
			}
		}
		t.Logf("slicer (7±6-byte segments): %d of 20 responses complete and correct (half chunked, half Content-Length), %d backend connections", 20-bad, be.conns.Load())
	})
}

// checkNotReused sends requests after a fault and fails if any is served
// on the upstream connection the faulted request used.
func checkNotReused(t *testing.T, addr string, be *tracked, fault string) {
	t.Helper()
	faulted := be.conn(fault)
	before := be.conns.Load()
	for i := range 5 {
		id := fmt.Sprint("after", i)
		if code, _, _, err := req(t, addr, "GET", id); code != 200 {
			t.Errorf("request %d after the fault: %d %v", i, code, err)
		}
		if faulted != "" && be.conn(id) == faulted {
			t.Errorf("request %d after the fault reused the faulted upstream connection %s", i, faulted)
		}
	}
	t.Logf("after the fault: 5 of 5 requests served on new upstream connections (faulted one %q), backend connections %d -> %d", faulted, before, be.conns.Load())
}
