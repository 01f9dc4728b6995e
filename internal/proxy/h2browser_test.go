package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/connx/connx/internal/accesslog"
)

// browserDeadline bounds the browser test as a whole: a deadline for
// failing, not a measurement (on success the test waits only for events).
const browserDeadline = 90 * time.Second

// TestH2Chromium: headless Chromium loads a page with 30 images through
// the HTTPS listener, and ConnX's access log shows every request — the
// page and its 30 subresources — as an HTTP/2 stream of one connection.
func TestH2Chromium(t *testing.T) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatalf("chromium not found (CONNX_CI=1): %v; install it with: apt-get install -y chromium", err)
		}
		t.Skip("chromium not installed; apt-get install -y chromium")
	}
	const images = 30
	be := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			// No favicon request: the page names an inline one.
			fmt.Fprint(w, `<!doctype html><html><head><link rel="icon" href="data:,"><title>h2</title></head><body>`)
			for i := range images {
				fmt.Fprintf(w, `<img src="/img/%d.svg" width="10" height="10">`, i)
			}
			fmt.Fprint(w, `</body></html>`)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		fmt.Fprint(w, `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="teal"/></svg>`)
	}))
	e := newTLSEnv(t, be, nil)
	var out lockedBuffer
	lg, err := accesslog.New(accesslog.Config{Writer: &out, QueueSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetAccessLog(lg)

	_, port, _ := net.SplitHostPort(e.addr)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		// The test CA is not in Chromium's store; example.com (the
		// certificate's name, sent as SNI) is the proxy on loopback.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("host-resolver-rules", "MAP example.com 127.0.0.1"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, no deadline
		t.Fatalf("starting %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, browserDeadline)
	defer cancel()
	// Navigate returns after the load event: every image has loaded (or
	// failed).
	if err := chromedp.Do(ctx, chromedp.Navigate("https://example.com:"+port+"/")); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length`))
	if err != nil {
		t.Fatal(err)
	}
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
	if err != nil {
		t.Fatal(err)
	}
	if loaded != images || proto != "h2" {
		t.Fatalf("%d of %d images loaded, page over %q", loaded, images, proto)
	}
	// Every request is counted (and its line queued) before this returns.
	settledStats(t, e.srv, images+1)
	cancelAlloc() // Chromium closes its connection
	e.srv.SetAccessLog(nil)

	type line struct {
		Path   string `json:"path"`
		Proto  string `json:"proto"`
		Status int    `json:"status"`
		Conn   uint64 `json:"conn"`
	}
	conns := map[uint64]int{}
	paths := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		var e line
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if e.Proto != "HTTP/2.0" || e.Status != 200 {
			t.Errorf("%s: %s %d", e.Path, e.Proto, e.Status)
		}
		conns[e.Conn]++
		paths[e.Path] = true
	}
	t.Logf("%d requests, by connection: %v", len(paths), conns)
	if !paths["/"] || len(paths) != images+1 {
		t.Errorf("logged paths %v, want / and %d images", paths, images)
	}
	if len(conns) != 1 {
		t.Errorf("requests came on %d connections (%v), want 1", len(conns), conns)
	}
}
