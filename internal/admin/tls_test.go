package admin

import (
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/connx/connx/internal/stats"
)

// sampleTLS is an HTTPS listener's state at t0 with two certificates,
// one expiring in 3 days.
func sampleTLS() *stats.TLS {
	t := &stats.TLS{InProgress: 1, Duration: stats.Histogram{Count: 4, Sum: 0.002}}
	t.Handshakes = []stats.TLSHandshakes{
		{Version: "1.2", Result: "full", Count: 1}, {Version: "1.2", Result: "resumed", Count: 0},
		{Version: "1.3", Result: "full", Count: 1}, {Version: "1.3", Result: "resumed", Count: 2},
		{Version: "none", Result: "timeout", Count: 0}, {Version: "none", Result: "protocol", Count: 5},
		{Version: "none", Result: "refused", Count: 0}, {Version: "none", Result: "enroll", Count: 0},
	}
	t.Certificates = []stats.Certificate{
		{CertFile: "/etc/connx/example.com.pem", Names: []string{"example.com", "www.example.com"}, NotAfter: t0.Add(60 * 24 * time.Hour)},
		{CertFile: "/etc/connx/wildcard.pem", Names: []string{"*.example.net"}, NotAfter: t0.Add(3*24*time.Hour + time.Hour)},
	}
	return t
}

func TestTLSAPI(t *testing.T) {
	var off TLS
	decode(t, get(t, New(Options{Stats: fixed(stats.Snapshot{Time: t0})}).Handler(), "GET", "/api/tls"), 200, &off)
	if off.Enabled || off.Handshakes == nil || off.Certificates == nil || len(off.Certificates) != 0 {
		t.Errorf("without server.tls: %+v", off)
	}

	var got TLS
	decode(t, get(t, New(Options{Stats: fixed(stats.Snapshot{Time: t0, TLS: sampleTLS()})}).Handler(), "GET", "/api/tls"), 200, &got)
	if !got.Enabled || got.InProgress != 1 || got.HandshakeMS != 0.5 || len(got.Handshakes) != 8 ||
		got.Handshakes[3] != (TLSHandshakes{Version: "1.3", Result: "resumed", Count: 2}) {
		t.Errorf("handshakes: %+v", got)
	}
	want := []Certificate{
		{CertFile: "/etc/connx/example.com.pem", Names: []string{"example.com", "www.example.com"}, NotAfter: t0.Add(60 * 24 * time.Hour), ExpiresInDays: 60},
		{CertFile: "/etc/connx/wildcard.pem", Names: []string{"*.example.net"}, NotAfter: t0.Add(73 * time.Hour), ExpiresInDays: 3},
	}
	if !slices.EqualFunc(got.Certificates, want, func(a, b Certificate) bool {
		return a.CertFile == b.CertFile && slices.Equal(a.Names, b.Names) && a.NotAfter.Equal(b.NotAfter) && a.ExpiresInDays == b.ExpiresInDays
	}) {
		t.Errorf("certificates:\n got %+v\nwant %+v", got.Certificates, want)
	}
}

// TestStatusPageTLS: the certificates panel lists the serving
// certificates, marks the one expiring within 14 days, and sums the
// handshakes.
func TestStatusPageTLS(t *testing.T) {
	ctx := browser(t)
	f := newFakeProxy(backend("10.0.0.1"))
	// The fake's snapshots are taken now; an hour's margin keeps the
	// days left, truncated to a tenth, at 60.0 and 3.0 whatever the
	// test's own duration.
	now := time.Now()
	f.tls = sampleTLS()
	f.tls.Certificates[0].NotAfter = now.Add(60*24*time.Hour + time.Hour)
	f.tls.Certificates[1].NotAfter = now.Add(3*24*time.Hour + time.Hour)
	url := startAdmin(t, f, Options{Stats: f.source, Refresh: 100 * time.Millisecond})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		discard(chromedp.Poll[bool](`!document.getElementById('tls-panel').hidden && document.querySelectorAll('#cert-rows tr').length === 2`,
			chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0))),
	); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#cert-rows tr')).map(r =>
		r.dataset.cert + ' expiring=' + r.dataset.expiring + ': ' + Array.from(r.cells).map(c => c.textContent + (c.classList.contains('bad') ? '(red)' : '')).join('|'))`))
	if err != nil {
		t.Fatal(err)
	}
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	want := []string{
		"/etc/connx/example.com.pem expiring=false: example.com, www.example.com|/etc/connx/example.com.pem|" + day(f.tls.Certificates[0].NotAfter) + "|60.0",
		"/etc/connx/wildcard.pem expiring=true: *.example.net|/etc/connx/wildcard.pem|" + day(f.tls.Certificates[1].NotAfter) + "|3.0(red)",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("certificate rows:\n got %q\nwant %q", rows, want)
	}
	note, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('tls-note').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "4 handshakes · 50% resumed · mean 0.50 ms · 5 failed"; note != want {
		t.Errorf("note %q, want %q", note, want)
	}
}
