// Package accesslog writes one structured line per request, off the event
// loops.
//
// The data plane hands each finished request to [Logger.Log] as an
// [Entry]. Log copies the entry into a bounded queue and returns at once;
// it never blocks, never waits for I/O and never allocates. When the
// queue is full the entry is dropped and counted ([Logger.Stats]), so a
// slow disk or a stalled stdout pipe costs log lines, never latency.
//
// One writer goroutine per [Logger] takes entries off the queue, formats
// them with log/slog (JSON or logfmt) into a buffer, and flushes the
// buffer whenever the queue runs empty: at low rates each line reaches
// the output at once, at high rates lines go out in large batches.
//
// [Logger.Sampled] picks the share of requests to log. The data plane
// asks it when a request starts, so unsampled requests cost nothing more:
//
//	if lg.Sampled() {
//		// ... fill e as the request progresses ...
//		lg.Log(&e)
//	}
//
// A nil *Logger is valid and logs nothing, so the data plane may hold nil
// while the access log is off.
package accesslog

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// Defaults and limits of [Config].
const (
	DefaultQueueSize = 8192
	MaxQueueSize     = 1 << 20
)

// bufferSize is the writer's buffer: lines are flushed in batches of up
// to this many bytes, or sooner when the queue runs empty.
const bufferSize = 64 << 10

// Config says where and how a [Logger] writes. The zero Config writes
// every request as JSON to stderr through a queue of [DefaultQueueSize].
type Config struct {
	// Output is "stderr", "stdout", or the path of a file, which is
	// opened for appending and created with mode 0644 if missing.
	// "" means "stderr".
	Output string
	// Format is "json" (one JSON object per line) or "logfmt"
	// (space-separated key=value pairs). "" means "json".
	Format string
	// Sample is the share of requests [Logger.Sampled] picks,
	// 0 < Sample <= 1. 0 means 1: every request.
	Sample float64
	// QueueSize is how many entries may wait for the writer,
	// 1 to [MaxQueueSize]; an entry that finds the queue full is dropped.
	// 0 means [DefaultQueueSize]. Each slot takes 224 bytes (the size of
	// an [Entry] on 64-bit platforms), plus the strings it refers to.
	QueueSize int
	// Writer, when not nil, receives the lines instead of Output (which
	// is then ignored); for tests and embedding. It is written from one
	// goroutine at a time, in calls of whole lines, and Close does not
	// close it.
	Writer io.Writer
}

// Logger queues entries and writes them from its own goroutine.
//
// All methods are safe for concurrent use by any number of goroutines.
// Sampled and Log never block and never allocate. A nil *Logger is
// valid: Sampled reports false, Log does nothing, Stats reports zeros and
// Close returns nil.
type Logger struct {
	// Used by the producers (Sampled and Log). state counts the Log calls
	// in progress, plus closedBit once Close has begun.
	all     bool    // Sample == 1: skip the random draw
	sample  float64 // share of requests picked
	queue   chan Entry
	state   atomic.Int64
	dropped atomic.Uint64 // by Log: queue full or closed
	_       [64]byte      // keep the writer's counters off the producers' cache line

	// Used by the writer goroutine.
	written atomic.Uint64 // lines the output accepted, counted by lineCounter
	failed  atomic.Uint64 // lines lost to output errors
	f       *formatter
	done    chan struct{} // closed when the writer has drained and flushed

	file *os.File // opened by New, closed by Close; nil for stdout, stderr, Config.Writer

	errMu   sync.Mutex
	lastErr error // the latest output error

	finalErr  error // the writer's last flush; read by Close after done
	closeOnce sync.Once
	closeErr  error
}

const closedBit = 1 << 62

// New checks cfg, opens the output and starts the writer goroutine. The
// caller must Close the Logger to stop the goroutine and flush the last
// lines.
func New(cfg Config) (*Logger, error) {
	if cfg.Format == "" {
		cfg.Format = "json"
	}
	if cfg.Format != "json" && cfg.Format != "logfmt" {
		return nil, fmt.Errorf("accesslog: format must be \"json\" or \"logfmt\", got %q", cfg.Format)
	}
	if cfg.Sample == 0 {
		cfg.Sample = 1
	}
	if !(cfg.Sample > 0 && cfg.Sample <= 1) { // also rejects NaN
		return nil, fmt.Errorf("accesslog: sample must be more than 0 and at most 1, got %v", cfg.Sample)
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueSize < 1 || cfg.QueueSize > MaxQueueSize {
		return nil, fmt.Errorf("accesslog: queue size must be between 1 and %d, got %d", MaxQueueSize, cfg.QueueSize)
	}

	l := &Logger{
		all:    cfg.Sample == 1,
		sample: cfg.Sample,
		queue:  make(chan Entry, cfg.QueueSize),
		done:   make(chan struct{}),
	}
	out := cfg.Writer
	if out == nil {
		switch cfg.Output {
		case "", "stderr":
			out = os.Stderr
		case "stdout":
			out = os.Stdout
		default:
			f, err := os.OpenFile(cfg.Output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return nil, fmt.Errorf("accesslog: %w", err)
			}
			l.file, out = f, f
		}
	}
	l.f = newFormatter(cfg.Format, &lineCounter{w: out, n: &l.written})
	go l.run()
	return l, nil
}

// Sampled reports whether to log the current request: always when
// Sample is 1, otherwise at random with probability Sample. It is false
// for a nil *Logger.
func (l *Logger) Sampled() bool {
	if l == nil {
		return false
	}
	return l.all || rand.Float64() < l.sample
}

// Log queues a copy of *e for the writer and returns at once. When the
// queue is full, or Close has begun, the entry is dropped and counted
// instead.
//
// Log keeps no reference to e, but the copy shares e's strings, which
// the writer reads later: they must not be views of a buffer that is
// reused (e.g. built with unsafe.String over a connection's input).
func (l *Logger) Log(e *Entry) {
	if l == nil {
		return
	}
	if l.state.Add(1)&closedBit != 0 {
		l.state.Add(-1)
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- *e:
	default:
		l.dropped.Add(1)
	}
	l.state.Add(-1)
}

// Stats returns how many lines the output has accepted so far, and how
// many entries were dropped: because the queue was full, because Close
// had begun, or because the output failed (see [Logger.Err]). Both only
// grow. Entries still queued or buffered count in neither; after Close,
// written + dropped is the number of Log calls.
func (l *Logger) Stats() (written, dropped uint64) {
	if l == nil {
		return 0, 0
	}
	return l.written.Load(), l.dropped.Load() + l.failed.Load()
}

// Err returns the latest error from writing to the output, or nil if
// there has been none. The writer keeps going after an error: it
// discards what it could not write and tries again with the next line.
func (l *Logger) Err() error {
	if l == nil {
		return nil
	}
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.lastErr
}

// Close stops accepting entries (later Log calls drop), waits for the
// writer to write every entry already queued, flushes, and closes the
// output file; it leaves stdout, stderr and Config.Writer open. It
// returns the error of the last flush or of closing the file.
//
// Close blocks for as long as the output takes to accept the queued
// lines. It is idempotent: later calls wait for the first one and return
// its result.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.state.Or(closedBit)
		// Log calls that saw the queue open finish their (non-blocking)
		// send; every later one sees closedBit and drops.
		for l.state.Load() != closedBit {
			runtime.Gosched()
		}
		close(l.queue)
		<-l.done
		err := l.finalErr
		if l.file != nil {
			err = errors.Join(err, l.file.Close())
		}
		l.closeErr = err
	})
	return l.closeErr
}

// run is the writer goroutine: it formats entries until the queue is
// closed and drained, flushing whenever the queue runs empty.
func (l *Logger) run() {
	defer close(l.done)
	q := l.queue
	for e := range q {
		if err := l.f.write(&e); err != nil {
			l.outputFailed(err)
		}
		if len(q) == 0 {
			if err := l.f.flush(); err != nil {
				l.outputFailed(err)
			}
		}
	}
	if err := l.f.flush(); err != nil {
		l.outputFailed(err)
		l.finalErr = err
	}
}

// outputFailed records an output error. The formatter has just emptied
// its buffer, so every line it was given and the output did not accept
// is lost.
func (l *Logger) outputFailed(err error) {
	l.failed.Store(l.f.lines - l.written.Load())
	l.errMu.Lock()
	l.lastErr = err
	l.errMu.Unlock()
}
