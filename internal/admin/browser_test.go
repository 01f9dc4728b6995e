package admin

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/connx/connx/internal/stats"
)

// browserDeadline bounds each browser test as a whole. It is a deadline
// for failing, not a measurement: on success the tests wait only for
// events.
const browserDeadline = 90 * time.Second

// browser starts headless Chromium and returns a context for one tab. It
// skips the test when Chromium is not installed, unless CONNX_CI=1.
// JavaScript exceptions thrown by the page are reported as test errors.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatalf("chromium not found (CONNX_CI=1): %v; install it with: apt-get install -y chromium", err)
		}
		t.Skip("chromium not installed; apt-get install -y chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	// The first Do starts the browser, which lives as long as its context:
	// no deadline on that one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Errorf("page: %v", &chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails})
		}
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, browserDeadline)
	t.Cleanup(cancel)
	return ctx
}

// fakeProxy is a stats.Source whose backends a test edits, and a wrapper
// around the admin handler that numbers GET /api/backends requests (the
// page's polls) and can hold polls back.
type fakeProxy struct {
	mu       sync.Mutex
	backends []stats.Backend
	pools    []stats.Pool   // nil: a data plane that predates pools
	routes   []stats.Route  // nil: no routes
	tls      *stats.TLS     // nil: no HTTPS listener
	begun    int64          // /api/backends requests received
	done     map[int64]bool // numbers of those answered
	holdFrom int64          // requests numbered >= holdFrom wait for release; 0: none
	release  chan struct{}  // closed to let held requests through
	changed  chan struct{}  // closed and replaced when a request is answered
}

func newFakeProxy(bs ...stats.Backend) *fakeProxy {
	return &fakeProxy{backends: bs, done: map[int64]bool{}, release: make(chan struct{}), changed: make(chan struct{})}
}

func (f *fakeProxy) source(s *stats.Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Time = time.Now()
	s.Started = s.Time.Add(-time.Hour)
	s.Backends = slices.Clone(f.backends)
	s.Pools = slices.Clone(f.pools)
	s.Routes = slices.Clone(f.routes)
	s.TLS = f.tls
}

func (f *fakeProxy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/backends" {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.begun++
		n := f.begun
		held, release := f.holdFrom != 0 && n >= f.holdFrom, f.release
		f.mu.Unlock()
		if held {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
		f.mu.Lock()
		f.done[n] = true
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	})
}

// edit changes backend i and holds back every poll after the next one.
// It returns the number of the next poll: the first whose snapshot is
// certain to include the change.
func (f *fakeProxy) edit(i int, change func(*stats.Backend)) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.backends[i])
	next := f.begun + 1
	f.holdFrom = next + 1
	return next
}

// releaseHeld lets held polls through and stops holding. Safe to call
// more than once.
func (f *fakeProxy) releaseHeld() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holdFrom != 0 {
		close(f.release)
		f.release = make(chan struct{})
		f.holdFrom = 0
	}
}

// waitAnswered waits until poll n has been answered.
func (f *fakeProxy) waitAnswered(ctx context.Context, n int64) error {
	for {
		f.mu.Lock()
		ok, changed := f.done[n], f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for poll %d: %w", n, ctx.Err())
		}
	}
}

// answeredAfter reports whether any poll numbered above n was answered.
func (f *fakeProxy) answeredAfter(n int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.done {
		if k > n {
			return true
		}
	}
	return false
}

// startAdmin starts a Server on 127.0.0.1 whose handler is wrapped by f,
// stopped when the test ends (after held polls are released).
func startAdmin(t *testing.T, f *fakeProxy, o Options) string {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	s := New(o)
	s.handler = f.wrap(s.handler)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	t.Cleanup(f.releaseHeld) // runs first
	return "http://" + s.Addr().String() + "/"
}

// discard runs a and drops its value.
func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	var v T
	return into(&v, a)
}

// into runs a and stores its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) (err error) {
		*dst, err = a(ctx, t)
		return err
	})
}

// rowStates returns data-backend -> data-state of the page's backend rows.
const rowStates = `Object.fromEntries(Array.from(document.querySelectorAll('#rows tr[data-backend]')).map(r => [r.dataset.backend, r.dataset.state]))`

func TestStatusPageBrowser(t *testing.T) {
	start := time.Now()
	ctx := browser(t)
	f := newFakeProxy(backend("10.0.0.1"), backend("10.0.0.2"), backend("10.0.0.3"))
	url := startAdmin(t, f, Options{Stats: f.source, Refresh: 100 * time.Millisecond})

	// Every backend is listed, up.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		discard(chromedp.Poll[bool](`document.querySelectorAll('#rows tr[data-backend]').length === 3`, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0))),
	); err != nil {
		t.Fatal(err)
	}
	states, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](rowStates))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"http://10.0.0.1:8080": "up", "http://10.0.0.2:8080": "up", "http://10.0.0.3:8080": "up"}
	if !maps.Equal(states, want) {
		t.Fatalf("rows %v, want %v", states, want)
	}
	// Only the default pool, no routes: no pool heading, no routes panel,
	// as before pools.
	seed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelectorAll('#rows tr.pool-head').length + ' ' + document.getElementById('routes-panel').hidden`))
	if err != nil {
		t.Fatal(err)
	}
	if seed != "0 true" {
		t.Errorf("pool headings and routes panel hidden: %q, want \"0 true\"", seed)
	}

	// Mark the second backend down. The next poll carries the change; the
	// ones after it are held back, so the page can only have learned it
	// from that poll.
	next := f.edit(1, func(b *stats.Backend) {
		b.Up, b.Health.Healthy, b.Health.Available = false, false, false
		b.Health.HealthSince = time.Now()
		b.Health.LastError, b.Health.LastErrorAt = "active check: connect: connection refused", time.Now()
	})
	if err := f.waitAnswered(ctx, next); err != nil {
		t.Fatal(err)
	}
	down := `(name) => { const r = Array.from(document.querySelectorAll('#rows tr')).find(r => r.dataset.backend === name); return !!r && r.dataset.state === 'down'; }`
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool](down,
		chromedp.WithPollingArgs("http://10.0.0.2:8080"), chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0))); err != nil {
		t.Fatalf("page never showed the backend down after poll %d: %v", next, err)
	}
	if f.answeredAfter(next) {
		t.Fatalf("a poll after %d was answered: the page was not shown down by the poll after the change", next)
	}
	states, err = chromedp.Run(ctx, chromedp.Evaluate[map[string]string](rowStates))
	if err != nil {
		t.Fatal(err)
	}
	want["http://10.0.0.2:8080"] = "down"
	if !maps.Equal(states, want) {
		t.Fatalf("rows %v, want %v", states, want)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#rows tr[data-state="down"]').innerText + '|' + document.getElementById('bup').innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"down", "connection refused", "2 / 3"} {
		if !strings.Contains(text, s) {
			t.Errorf("page text %q lacks %q", text, s)
		}
	}
	f.releaseHeld()
	t.Logf("browser test took %v (poll %d carried the change)", time.Since(start).Round(time.Millisecond), next)
}

// TestStatusPagePoolsAndRoutes checks that backends are grouped under
// pool headings (the same URL in two pools is two rows) and that routes
// get a table of their own.
func TestStatusPagePoolsAndRoutes(t *testing.T) {
	ctx := browser(t)
	a, apiA, apiB := inPool(stats.DefaultPool, backend("10.0.0.1")), inPool("api", backend("10.0.0.1")), inPool("api", backend("10.0.0.2"))
	apiA.Up, apiA.Health.Breaker = false, "open"
	f := newFakeProxy(a, apiA, apiB)
	f.pools = []stats.Pool{
		{Name: stats.DefaultPool, Backends: 1, Up: 1},
		{Name: "api", Backends: 2, Up: 1, Panic: true, Panics: 1},
		{Name: "static", Backends: 0},
	}
	f.routes = []stats.Route{
		{Name: "api", Action: "pool", Pool: "api", Requests: [5]uint64{0, 1200, 0, 3, 45}},
		{Name: "routes[1]", Action: "redirect", Requests: [5]uint64{0, 0, 7, 0, 0}},
	}
	url := startAdmin(t, f, Options{Stats: f.source, Refresh: 100 * time.Millisecond})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		discard(chromedp.Poll[bool](`document.querySelectorAll('#rows tr[data-backend]').length === 3 && document.querySelectorAll('#route-rows tr').length === 2`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0))),
	); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#rows tr')).map(r =>
		r.dataset.backend ? r.dataset.pool + ' ' + r.dataset.backend + ' ' + r.dataset.state
		                  : 'pool ' + r.dataset.pool + ' ready=' + r.dataset.ready + ' panic=' + r.dataset.panic + ': ' + r.querySelector('.pool-name').textContent + ' | ' + r.querySelector('.detail').textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pool default ready=true panic=false: default | 1 / 1 up",
		"default http://10.0.0.1:8080 up",
		"pool api ready=true panic=true: api | 1 / 2 up · panic mode: breakers and ejection ignored",
		"api http://10.0.0.1:8080 open",
		"api http://10.0.0.2:8080 up",
		"pool static ready=false panic=false: static | no backends",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows:\n got %q\nwant %q", rows, want)
	}
	routes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`document.getElementById('routes-panel').hidden ? [] :
		Array.from(document.querySelectorAll('#route-rows tr')).map(r => r.dataset.route + ' ' + r.dataset.action + ': ' +
			Array.from(r.cells).filter((c, i) => i !== 3).map(c => c.textContent.trim()).join('|'))`))
	if err != nil {
		t.Fatal(err)
	}
	wantRoutes := []string{
		"api pool: api|pool|api|0|1,200|0|3|45",
		"routes[1] redirect: routes[1]|redirect|—|0|0|7|0|0",
	}
	if !slices.Equal(routes, wantRoutes) {
		t.Errorf("routes:\n got %q\nwant %q", routes, wantRoutes)
	}
}

// TestStatusPageScreenshot writes the status page with realistic data to
// the PNG file named by CONNX_SCREENSHOT (docs/status-page.png):
//
//	CONNX_SCREENSHOT=$PWD/docs/status-page.png go test -run TestStatusPageScreenshot ./internal/admin/
func TestStatusPageScreenshot(t *testing.T) {
	out := os.Getenv("CONNX_SCREENSHOT")
	if out == "" {
		t.Skip("set CONNX_SCREENSHOT=file.png to write a screenshot")
	}
	ctx := browser(t)
	demo := newDemoSource(time.Now())
	f := newFakeProxy()
	o := Options{Stats: demo.source, Refresh: 100 * time.Millisecond, Metrics: http.NotFoundHandler()}
	url := startAdmin(t, f, o)
	// Wait until the sparklines hold a full history (60 rates need 61
	// polls), then one more render.
	var png []byte
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 640),
		chromedp.Navigate(url),
		discard(chromedp.Poll[bool](`+document.body.dataset.polls >= 64`, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0))),
		into(&png, chromedp.CaptureScreenshot()),
	); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
}

// demoSource reports four backends with traffic that varies smoothly in
// real time, so client-side rates and sparklines look like a live proxy:
// one up, one half-open after timeouts, one down (it stops taking traffic
// a few seconds in), one up with twice the weight.
type demoSource struct {
	start  time.Time
	downAt time.Duration // when the third backend goes down
}

func newDemoSource(now time.Time) *demoSource {
	return &demoSource{start: now, downAt: 3 * time.Second}
}

// wave is the integral from 0 to t of base*(1 + a*sin(2*pi*x/p) + b*sin(2*pi*x/q)):
// a request count whose rate wobbles around base.
func wave(base, a, p, b, q, t float64) float64 {
	return base * (t + a*p/(2*math.Pi)*(1-math.Cos(2*math.Pi*t/p)) + b*q/(2*math.Pi)*(1-math.Cos(2*math.Pi*t/q)))
}

func (d *demoSource) source(s *stats.Snapshot) {
	now := time.Now()
	el := now.Sub(d.start).Seconds()
	s.Time = now
	s.Started = now.Add(-(3*24*time.Hour + 4*time.Hour + 17*time.Minute) - now.Sub(d.start))
	s.Active, s.Parked, s.Tunnels, s.Closing = 1284+int64(40*math.Sin(el)), 3, 12, 2
	s.Reloads = stats.Reloads{Success: 3, LastSuccess: now.Add(-2*time.Hour - 12*time.Minute)}
	s.RateLimit = stats.RateLimit{Enabled: true, Allowed: 331_000_000, Rejected: 1_204}

	mk := func(host string, weight int) stats.Backend {
		b := backend(host)
		b.Weight = weight
		b.Health.Checked = true
		b.Health.ChecksOK = 7_810
		b.Health.LastCheck = now.Add(-time.Duration(1+len(host)%3) * time.Second)
		b.Health.HealthSince = now.Add(-76 * time.Hour)
		return b
	}
	lat := func(base, amp, p float64) time.Duration {
		return time.Duration(base * (1 + amp*math.Sin(2*math.Pi*el/p)) * float64(time.Millisecond))
	}

	a := mk("10.0.1.11", 1)
	a.InFlight, a.OpenConns, a.IdleConns = 14, 38, 24
	a.Latency = lat(23, 0.18, 2.3)
	aReq := 109_234_112 + wave(410, 0.22, 2.9, 0.08, 0.7, el)
	a.Health.LastError, a.Health.LastErrorAt = "request: server error", now.Add(-47*time.Minute)

	b := mk("10.0.1.12", 1)
	b.Health.Breaker, b.Health.BreakerSince = "half-open", now.Add(-8*time.Second)
	b.Health.LastError, b.Health.LastErrorAt = "request: timeout", now.Add(-41*time.Second)
	b.InFlight, b.OpenConns, b.IdleConns = 1, 2, 0
	b.Latency = lat(212, 0.25, 1.9)
	bReq := 108_020_456 + wave(3, 0.6, 1.3, 0.3, 0.5, el)

	c := mk("10.0.1.13", 1)
	cReq := 107_998_310 + wave(405, 0.2, 3.1, 0.07, 0.8, min(el, d.downAt.Seconds()))
	c.Latency = lat(26, 0.15, 2.7)
	c.OpenConns, c.IdleConns, c.InFlight = 30, 21, 11
	if el >= d.downAt.Seconds() {
		c.Up, c.Health.Healthy, c.Health.Available = false, false, false
		c.Health.HealthSince = now.Add(-3*time.Minute - 12*time.Second)
		c.Health.ChecksFailed = 7
		c.Health.LastError, c.Health.LastErrorAt = "active check: dial tcp 10.0.1.13:8080: connect: connection refused", now.Add(-2*time.Second)
		c.Latency = lat(26, 0, 1)
		c.OpenConns, c.IdleConns, c.InFlight = 0, 0, 0
	}

	e := mk("10.0.1.14", 2)
	e.InFlight, e.OpenConns, e.IdleConns = 29, 71, 40
	e.Latency = lat(19, 0.2, 3.3)
	eReq := 218_466_020 + wave(830, 0.2, 2.9, 0.1, 0.6, el)

	s.Backends = []stats.Backend{a, b, c, e}
	s.Requests = []stats.RequestCount{
		{Method: "GET", Code: 200, Backend: a.Name, Count: uint64(aReq)},
		{Method: "GET", Code: 502, Backend: a.Name, Count: 9},
		{Method: "GET", Code: 200, Backend: b.Name, Count: uint64(bReq)},
		{Method: "GET", Code: 504, Backend: b.Name, Count: 1_873},
		{Method: "GET", Code: 200, Backend: c.Name, Count: uint64(cReq)},
		{Method: "GET", Code: 502, Backend: c.Name, Count: 312},
		{Method: "GET", Code: 200, Backend: e.Name, Count: uint64(eReq)},
		{Method: "GET", Code: 500, Backend: e.Name, Count: 4},
		{Method: "GET", Code: 429, Backend: stats.NoBackend, Count: 1_204},
	}
}
