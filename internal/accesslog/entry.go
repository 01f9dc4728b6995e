package accesslog

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"
)

// Entry is one request, as the data plane saw it. The zero Entry is a
// valid line of zeros and empty strings, except that Upstream must be set
// to -1 when there was no upstream response (0 means it took no time).
//
// An Entry is a plain value; [Logger.Log] copies it, so the caller may
// reuse its Entry for the next request at once.
type Entry struct {
	Time     time.Time     // request start; written in UTC with millisecond precision
	Client   netip.Addr    // peer address; the zero Addr is written as ""
	Method   string        // request method as received
	Path     string        // request target as received
	Proto    string        // "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0"
	Status   int           // status sent; 499 if the client left before any
	BytesIn  int64         // request body bytes forwarded
	BytesOut int64         // response bytes written to the client (head + body)
	Duration time.Duration // request head read -> last response byte handed to the kernel
	Backend  string        // backend URL, "" if none
	Upstream time.Duration // request sent -> response head received; negative (-1) if no upstream response
	Error    string        // error kind, "" if none (e.g. "connect", "timeout", "client_abort")
	ID       string        // request ID (requestId.header), "" if none
	Route    string        // the route taken (its name, or "routes[i]"), "" if none
	Pool     string        // the pool the request was sent to, "" if none
	// Conn numbers the client connection, from 1 in the order of accept
	// (per process); the HTTP/2 streams of one connection share it. 0 is
	// not written.
	Conn uint64
}

// Field names, in the order they are written.
const (
	keyTime     = "time"
	keyClient   = "client"
	keyMethod   = "method"
	keyPath     = "path"
	keyProto    = "proto"
	keyStatus   = "status"
	keyBytesIn  = "bytes_in"
	keyBytesOut = "bytes_out"
	keyDuration = "duration_ms"
	keyBackend  = "backend"
	keyUpstream = "upstream_ms"
	keyError    = "error"
	keyID       = "request_id"
	keyRoute    = "route"
	keyPool     = "pool"
	keyConn     = "conn"
	numKeys     = 16
)

// timeLayout is RFC 3339 with exactly three fractional digits.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// formatter turns entries into lines in a buffered writer. It belongs to
// the writer goroutine.
type formatter struct {
	h     slog.Handler
	w     io.Writer     // the output
	bw    *bufio.Writer // buffers w
	lines uint64        // lines formatted (handed to bw)

	// The last time string, reused for every entry in the same
	// millisecond: at high rates most entries share one.
	lastMs   int64
	lastTime string
	tbuf     []byte

	attrs [numKeys]slog.Attr
}

func newFormatter(format string, w io.Writer) *formatter {
	bw := bufio.NewWriterSize(w, bufferSize)
	opts := &slog.HandlerOptions{ReplaceAttr: dropBuiltins}
	f := &formatter{w: w, bw: bw, lastMs: -1 << 63, tbuf: make([]byte, 0, len(timeLayout)+8)}
	if format == "logfmt" {
		f.h = slog.NewTextHandler(bw, opts)
	} else {
		f.h = slog.NewJSONHandler(bw, opts)
	}
	return f
}

// dropBuiltins removes slog's level and msg from every line; the records
// carry no time of their own (the time is an ordinary attribute), so
// slog writes none.
func dropBuiltins(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
		return slog.Attr{}
	}
	return a
}

// write formats e as one line into the buffer, which may flush it. On
// error the buffer is discarded, so that the next line can try again.
func (f *formatter) write(e *Entry) error {
	a := f.attrs[:0]
	a = append(a,
		slog.String(keyTime, f.time(e.Time)),
		slog.String(keyClient, client(e.Client)),
		slog.String(keyMethod, e.Method),
		slog.String(keyPath, e.Path),
		slog.String(keyProto, e.Proto),
		slog.Int(keyStatus, e.Status),
		slog.Int64(keyBytesIn, e.BytesIn),
		slog.Int64(keyBytesOut, e.BytesOut),
		slog.Float64(keyDuration, millis(e.Duration)),
		slog.String(keyBackend, e.Backend),
	)
	if e.Upstream >= 0 {
		a = append(a, slog.Float64(keyUpstream, millis(e.Upstream)))
	}
	if e.Error != "" {
		a = append(a, slog.String(keyError, e.Error))
	}
	if e.ID != "" {
		a = append(a, slog.String(keyID, e.ID))
	}
	if e.Route != "" {
		a = append(a, slog.String(keyRoute, e.Route))
	}
	if e.Pool != "" {
		a = append(a, slog.String(keyPool, e.Pool))
	}
	if e.Conn != 0 {
		a = append(a, slog.Uint64(keyConn, e.Conn))
	}
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0)
	r.AddAttrs(a...)
	f.lines++
	err := f.h.Handle(context.Background(), r)
	if err != nil {
		f.bw.Reset(f.w)
	}
	return err
}

// flush writes the buffered lines out. On error they are discarded.
func (f *formatter) flush() error {
	err := f.bw.Flush()
	if err != nil {
		f.bw.Reset(f.w)
	}
	return err
}

// time returns t in UTC as RFC 3339 with milliseconds.
func (f *formatter) time(t time.Time) string {
	if ms := t.UnixMilli(); ms != f.lastMs {
		f.tbuf = t.UTC().AppendFormat(f.tbuf[:0], timeLayout)
		f.lastMs, f.lastTime = ms, string(f.tbuf)
	}
	return f.lastTime
}

// client returns a's text form, IPv4-mapped IPv6 addresses as IPv4, or
// "" for the zero Addr.
func client(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

// millis returns d in milliseconds, rounded to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)/time.Microsecond) / 1000
}

// lineCounter counts the lines its writer accepts: the newlines in what
// was written (values never hold a raw newline; both formats escape it).
type lineCounter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if n > 0 && n <= len(p) {
		c.n.Add(uint64(bytes.Count(p[:n], newline)))
	}
	return n, err
}

var newline = []byte{'\n'}
