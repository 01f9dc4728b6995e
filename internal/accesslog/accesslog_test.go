package accesslog

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"format", Config{Format: "xml"}, `format must be "json" or "logfmt", got "xml"`},
		{"sample negative", Config{Sample: -0.1}, "sample must be more than 0 and at most 1, got -0.1"},
		{"sample over 1", Config{Sample: 1.5}, "sample must be more than 0 and at most 1, got 1.5"},
		{"sample NaN", Config{Sample: math.NaN()}, "sample must be more than 0 and at most 1, got NaN"},
		{"queue negative", Config{QueueSize: -1}, "queue size must be between 1 and 1048576, got -1"},
		{"queue too big", Config{QueueSize: MaxQueueSize + 1}, "queue size must be between 1 and 1048576, got 1048577"},
		{"file in missing dir", Config{Output: filepath.Join(dir, "no", "such", "access.log")}, "no such file or directory"},
		{"file is a dir", Config{Output: dir}, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("New(%+v) succeeded", tt.cfg)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestEntrySize backs the memory cost Config.QueueSize documents.
func TestEntrySize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("documented for 64-bit platforms")
	}
	if n := unsafe.Sizeof(Entry{}); n != 224 {
		t.Errorf("an Entry takes %d bytes; update Config.QueueSize's doc and docs/accesslog.md", n)
	}
}

func TestNilLogger(t *testing.T) {
	var l *Logger
	e := testEntry()
	l.Log(&e)
	if l.Sampled() {
		t.Error("nil Logger sampled a request")
	}
	if w, d := l.Stats(); w != 0 || d != 0 {
		t.Errorf("Stats() = %d, %d", w, d)
	}
	if l.Err() != nil || l.Close() != nil {
		t.Error("nil Logger returned an error")
	}
}

func TestSampled(t *testing.T) {
	const n = 1_000_000
	for _, p := range []float64{1, 0.5, 0.1, 0.001} {
		t.Run(strconv.FormatFloat(p, 'g', -1, 64), func(t *testing.T) {
			l, err := New(Config{Sample: p, Writer: &lineBuffer{}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			k := 0
			for range n {
				if l.Sampled() {
					k++
				}
			}
			// Six standard deviations of a binomial count: a correct
			// sampler strays that far about once in 500 million runs.
			// At p == 1 the bound is 0: every request is sampled.
			bound := 6 * math.Sqrt(n*p*(1-p))
			if math.Abs(float64(k)-n*p) > bound {
				t.Errorf("sampled %d of %d at p=%v, want %v ± %.0f", k, n, p, n*p, bound)
			}
		})
	}
	l, err := New(Config{Writer: &lineBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.all {
		t.Error("Sample 0 (the zero Config) does not mean 1")
	}
}

// TestFullQueueDrops blocks the writer, fills the queue, and checks that
// Log keeps returning and counts what it drops; then it lets the writer
// go and checks that everything queued was written.
func TestFullQueueDrops(t *testing.T) {
	const size = 16
	l, g := blockedLogger(t, size) // one entry taken, writer stuck writing it
	e := testEntry()
	for i := range size {
		e.Status = 200 + i
		l.Log(&e)
	}
	if w, d := l.Stats(); w != 0 || d != 0 {
		t.Fatalf("queue filled: Stats() = %d, %d; want 0, 0", w, d)
	}
	for i := range 5 {
		e.Status = 999
		l.Log(&e) // must return although the queue is full
		if _, d := l.Stats(); d != uint64(i+1) {
			t.Fatalf("after %d Logs into a full queue: dropped %d", i+1, d)
		}
	}
	close(g.gate)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := g.lines(t)
	if len(lines) != 1+size {
		t.Fatalf("%d lines written, want %d", len(lines), 1+size)
	}
	for i, line := range lines[1:] {
		if want := `"status":` + strconv.Itoa(200+i) + `,`; !strings.Contains(line, want) {
			t.Errorf("line %d: %s, want %s", i+1, line, want)
		}
	}
	if w, d := l.Stats(); w != 1+size || d != 5 {
		t.Errorf("Stats() = %d, %d; want %d, 5", w, d, 1+size)
	}
}

func TestCloseDrains(t *testing.T) {
	const n = 1000
	var out lineBuffer
	l, err := New(Config{Writer: &out, QueueSize: n})
	if err != nil {
		t.Fatal(err)
	}
	e := testEntry()
	for i := range n {
		e.BytesIn = int64(i)
		l.Log(&e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := out.lines(t)
	if len(lines) != n {
		t.Fatalf("%d lines after Close, want %d", len(lines), n)
	}
	for i, line := range lines {
		if want := `"bytes_in":` + strconv.Itoa(i) + `,`; !strings.Contains(line, want) {
			t.Fatalf("line %d out of order: %s", i, line)
		}
	}
	if w, d := l.Stats(); w != n || d != 0 {
		t.Errorf("Stats() = %d, %d; want %d, 0", w, d, n)
	}

	// Idempotent, and Log afterwards drops and counts.
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	l.Log(&e)
	if w, d := l.Stats(); w != n || d != 1 {
		t.Errorf("after Log on a closed Logger: Stats() = %d, %d; want %d, 1", w, d, n)
	}
	if got := len(out.lines(t)); got != n {
		t.Errorf("%d lines after Log on a closed Logger, want %d", got, n)
	}
}

// TestCloseRacesLog closes the Logger while many goroutines log: nothing
// may panic or be lost uncounted.
func TestCloseRacesLog(t *testing.T) {
	const (
		producers = 8
		each      = 2000
	)
	var out lineBuffer
	l, err := New(Config{Writer: &out, QueueSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	half := make(chan struct{}, producers)
	for range producers {
		wg.Go(func() {
			e := testEntry()
			for i := range each {
				if i == each/2 {
					half <- struct{}{}
				}
				l.Log(&e)
			}
		})
	}
	for range producers {
		<-half
	}
	closed := make(chan error, 2)
	go func() { closed <- l.Close() }()
	go func() { closed <- l.Close() }()
	wg.Wait()
	for range 2 {
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	}
	w, d := l.Stats()
	if w+d != producers*each {
		t.Errorf("written %d + dropped %d != %d logged", w, d, producers*each)
	}
	if got := len(out.lines(t)); uint64(got) != w {
		t.Errorf("%d lines in the output, Stats says %d written", got, w)
	}
}

func TestFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	for round := range 2 {
		l, err := New(Config{Output: path, Format: "logfmt"})
		if err != nil {
			t.Fatal(err)
		}
		e := testEntry()
		e.Status = 200 + round
		l.Log(&e)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.file.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("file still open after Close: %v", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " status=200 ") || !strings.Contains(lines[1], " status=201 ") {
		t.Errorf("file holds %q, want the round 0 line then the round 1 line", lines)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o644 != 0 {
		t.Errorf("file mode %v, want at most 0644", perm)
	}
}

func TestStdStreamsStayOpen(t *testing.T) {
	for _, out := range []string{"stdout", "stderr"} {
		l, err := New(Config{Output: out})
		if err != nil {
			t.Fatal(err)
		}
		if l.file != nil {
			t.Errorf("%s: Logger owns a file", out)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stdout.Stat(); err != nil {
		t.Errorf("stdout: %v", err)
	}
	if _, err := os.Stderr.Stat(); err != nil {
		t.Errorf("stderr: %v", err)
	}
}

// TestOutputFails checks that lines the output refuses are counted as
// dropped and reported by Err, and that writing resumes when the output
// recovers.
func TestOutputFails(t *testing.T) {
	w := &scriptWriter{results: make(chan error)}
	l, err := New(Config{Writer: w})
	if err != nil {
		t.Fatal(err)
	}
	// A line larger than the buffer goes straight to the output, which fails.
	e := testEntry()
	e.Status = 501
	e.Path = "/" + strings.Repeat("x", bufferSize)
	l.Log(&e)
	w.results <- errDiskFull

	// A short line is buffered; the flush fails.
	e = testEntry()
	e.Status = 502
	l.Log(&e)
	w.results <- errDiskFull

	// The output recovers.
	e.Status = 200
	l.Log(&e)
	w.results <- nil

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(l.Err(), errDiskFull) {
		t.Errorf("Err() = %v, want %v", l.Err(), errDiskFull)
	}
	lines := w.lines(t)
	if len(lines) != 1 || !strings.Contains(lines[0], `"status":200,`) {
		t.Errorf("output %q, want only the status 200 line", lines)
	}
	if w, d := l.Stats(); w != 1 || d != 2 {
		t.Errorf("Stats() = %d, %d; want 1, 2", w, d)
	}
}
