package accesslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineBuffer is an io.Writer that keeps what it is given, safe to read
// while the writer goroutine writes.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the complete lines written so far, without their "\n";
// it fails the test if the output does not end with one.
func (b *lineBuffer) lines(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("output does not end with a newline: %q", s)
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// gateWriter blocks the writer goroutine in its first Write until the
// test opens the gate, then passes everything to a lineBuffer.
type gateWriter struct {
	entered chan struct{} // closed when the first Write has begun
	gate    chan struct{} // closed by the test to let writes through
	once    sync.Once
	lineBuffer
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.gate
	return g.lineBuffer.Write(p)
}

// blockedLogger returns a Logger whose writer goroutine has taken one
// entry off the queue and is stuck writing it, so the queue is empty and
// nothing drains it until the gate opens.
func blockedLogger(t testing.TB, queueSize int) (*Logger, *gateWriter) {
	t.Helper()
	g := newGateWriter()
	l, err := New(Config{Writer: g, QueueSize: queueSize})
	if err != nil {
		t.Fatal(err)
	}
	e := testEntry()
	l.Log(&e)
	<-g.entered
	return l, g
}

// scriptWriter makes each Write wait for the test to say how it ends:
// with the error sent on results, or, for nil, by keeping the bytes.
type scriptWriter struct {
	results chan error
	lineBuffer
}

var errDiskFull = errors.New("disk full")

func (w *scriptWriter) Write(p []byte) (int, error) {
	if err := <-w.results; err != nil {
		return 0, err
	}
	return w.lineBuffer.Write(p)
}

// testEntry is an Entry with every field set.
func testEntry() Entry {
	return Entry{
		Time:     time.Date(2026, 3, 4, 5, 6, 7, 89_456_000, time.FixedZone("CET", 3600)),
		Client:   netip.MustParseAddr("2001:db8::1"),
		Method:   "POST",
		Path:     "/api/v1/items?id=7",
		Proto:    "HTTP/1.1",
		Status:   502,
		BytesIn:  1234,
		BytesOut: 5678,
		Duration: 12_345_678 * time.Nanosecond,
		Backend:  "http://backend1:8080",
		Upstream: 1_500 * time.Microsecond,
		Error:    "connect",
	}
}

// field is one key and its value, as text (JSON numbers as written).
type field struct{ key, val string }

// parseJSON decodes a JSON line into its fields, in order; every value
// must be a string or a number.
func parseJSON(t *testing.T, line string) []field {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	var fs []field
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		v, err := d.Token()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		f := field{key: k.(string)}
		switch v := v.(type) {
		case string:
			f.val = v
		case json.Number:
			f.val = v.String()
		default:
			t.Fatalf("%q: value of %s is %T", line, f.key, v)
		}
		fs = append(fs, f)
	}
	if tok, err := d.Token(); err != nil || tok != json.Delim('}') {
		t.Fatalf("JSON object not closed: %q", line)
	}
	if d.More() {
		t.Fatalf("more than one object in %q", line)
	}
	return fs
}

// parseLogfmt splits a logfmt line as slog's TextHandler writes it into
// its fields, in order: key=value pairs separated by single spaces,
// values quoted in Go syntax when they need it.
func parseLogfmt(t *testing.T, line string) []field {
	t.Helper()
	var m []field
	for line != "" {
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			t.Fatalf("no key=value at %q", line)
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				t.Fatalf("bad quoted value at %q: %v", line, err)
			}
			val, _ = strconv.Unquote(q)
			line = line[len(q):]
		} else {
			end := strings.IndexByte(line, ' ')
			if end < 0 {
				end = len(line)
			}
			val = line[:end]
			line = line[end:]
		}
		m = append(m, field{key, val})
		if line != "" {
			if line[0] != ' ' {
				t.Fatalf("no space before %q", line)
			}
			line = line[1:]
		}
	}
	return m
}
