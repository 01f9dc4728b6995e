package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/connx/connx/internal/testproc"
)

// TestMetricsAfterTraffic runs connx with the admin listener, sends a
// known mix of requests, and checks the scrape: promtool accepts it,
// request counters match by code and backend, histogram counts match, and
// a backend removed by a reload loses its series.
func TestMetricsAfterTraffic(t *testing.T) {
	a := namedBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, "a")
	})
	b := namedBackend(t, "b", nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "connx.yaml")
	admin := "127.0.0.1:" + testproc.FreePort(t)
	extra := "admin:\n  listen: " + admin + "\n"
	testproc.WriteConfig(t, path, configFor("round-robin", extra, a, b))
	p := startConnx(t, "-config", path)

	get := func(path string) {
		resp, err := http.Get("http://" + p.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 10 {
		get("/") // 5 each
	}
	for range 4 {
		get("/missing") // a: 2 x 404, b: 2 x 200
	}
	scrape := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", url, resp.StatusCode)
		}
		return string(body)
	}
	text := scrape("http://" + admin + "/metrics")
	promtoolCheck(t, text)
	wantSample(t, text, fmt.Sprintf(`connx_requests_total{backend=%q,code="200",method="GET",pool="default",protocol="http1"}`, a), 5)
	wantSample(t, text, fmt.Sprintf(`connx_requests_total{backend=%q,code="404",method="GET",pool="default",protocol="http1"}`, a), 2)
	wantSample(t, text, fmt.Sprintf(`connx_requests_total{backend=%q,code="200",method="GET",pool="default",protocol="http1"}`, b), 7)
	wantSample(t, text, fmt.Sprintf(`connx_request_duration_seconds_count{backend=%q,pool="default",protocol="http1"}`, a), 7)
	wantSample(t, text, fmt.Sprintf(`connx_request_duration_seconds_count{backend=%q,pool="default",protocol="http1"}`, b), 7)
	wantSample(t, text, fmt.Sprintf(`connx_request_duration_seconds_bucket{backend=%q,pool="default",protocol="http1",le="+Inf"}`, b), 7)
	wantSample(t, text, fmt.Sprintf(`connx_backend_up{backend=%q,pool="default"}`, b), 1)
	wantSample(t, text, `connx_active_connections`, 1) // the test client's keep-alive connection
	// The main-port route serves the same exposition (and counts itself).
	main := scrape("http://" + p.Addr + "/metrics")
	promtoolCheck(t, main)
	wantSample(t, main, fmt.Sprintf(`connx_requests_total{backend=%q,code="200",method="GET",pool="default",protocol="http1"}`, b), 7)

	reloaded := p.Watch("config reloaded")
	testproc.WriteConfig(t, path, configFor("round-robin", extra, b))
	p.Next(reloaded, "reload")
	text = scrape("http://" + admin + "/metrics")
	if strings.Contains(text, `backend="`+a+`"`) {
		t.Errorf("removed backend %s still has series:\n%s", a, grepLines(text, a))
	}
	wantSample(t, text, fmt.Sprintf(`connx_requests_total{backend=%q,code="200",method="GET",pool="default",protocol="http1"}`, b), 7)
	wantSample(t, text, `connx_config_reloads_total{result="success"}`, 1)
	promtoolCheck(t, text)
}

func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// wantSample checks that the exposition has series with value want.
func wantSample(t *testing.T, text, series string, want float64) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Errorf("no sample %s", series)
		return
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v != want {
		t.Errorf("%s = %s, want %v", series, m[1], want)
	}
}

// promtoolCheck runs `promtool check metrics`. Without promtool (in PATH
// or in $(go env GOPATH)/bin) it skips, unless CONNX_CI=1.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if gp, gerr := exec.Command("go", "env", "GOPATH").Output(); gerr == nil {
			if p := filepath.Join(strings.TrimSpace(string(gp)), "bin", "promtool"); fileExists(p) {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatal("promtool not found and CONNX_CI=1")
		}
		t.Log("promtool not found: skipping its check (CI installs it)")
		return
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader([]byte(text))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
