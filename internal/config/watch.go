package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is the quiet period a [Watcher] waits for after the last
// file-system event before it reads the file. It is long enough to cover an
// editor's write-temp-and-rename or a Kubernetes ConfigMap update, and short
// enough that a reload feels immediate.
const DefaultDebounce = 100 * time.Millisecond

// maxDelayFactor bounds how long a steady stream of events can put a read
// off: at most maxDelayFactor*debounce after the first event of a burst.
// Without it, a log file written every few milliseconds in the config
// directory would postpone reloads forever.
const maxDelayFactor = 10

// defaultRetry is how often a Watcher tries to watch its directory again
// after the directory was removed or renamed away.
const defaultRetry = time.Second

// Watcher reports changes of a config file's content. It watches the
// file's directory, not the file, so that every way of saving a file is
// seen: writing in place, writing a temporary file and renaming it over
// the old one (a new inode), and swapping a symlink such as a Kubernetes
// ConfigMap's "..data". When the path is a symlink to a file in another
// directory, that directory is watched too.
//
// Any event in a watched directory may mean the file changed. After a
// burst of events has been quiet for the debounce period, the Watcher
// reads the file (following symlinks) and compares a SHA-256 of its bytes
// with the content it delivered last; so one save gives one call whatever
// the save method, and changes of other files in the directory give none.
//
// A Watcher is created by [NewWatcher]; the zero value is not usable. Run
// may be called once; [Watcher.Reread] and [Watcher.Close] are safe for
// concurrent use with Run and with each other.
type Watcher struct {
	path     string // absolute path of the config file
	dir      string // filepath.Dir(path)
	debounce time.Duration
	retry    time.Duration // tests shorten it
	readHook func()        // tests: called as each read starts, on Run's goroutine
	log      *slog.Logger
	fsw      *fsnotify.Watcher
	reread   chan struct{} // capacity 1: a pending Reread
	started  atomic.Bool
	close    sync.Once
	closeErr error // set by the first Close

	// Owned by NewWatcher, then by Run's goroutine.
	sum    [sha256.Size]byte // content delivered last, when ok
	ok     bool              // the last delivery (or the initial read) was content
	failed string            // the last delivered read error, when !ok
	target string            // watched directory of the symlink target; "" for none
	lost   bool              // dir could not be watched at the last attempt
}

// NewWatcher starts watching the directory of the file at path and reads
// the file's current content. That content counts as delivered: Run calls
// onChange only for content that differs from it. If the file cannot be
// read now, the failure counts as delivered instead, and the first
// successful read calls onChange.
//
// To miss no change, create the Watcher before loading the configuration
// it guards (NewWatcher, then [Load], then Run): a save that lands between
// them is reported by Run, at worst as a second delivery of the content
// Load already read.
//
// debounce is the quiet period after the last event before the file is
// read; <= 0 means [DefaultDebounce]. log receives the watcher's own
// problems (lost directory, event overflow) and, at debug level, every
// event; nil discards them.
//
// NewWatcher fails if the directory does not exist, is not a directory or
// cannot be watched. The Watcher holds an inotify (or kqueue, ...) handle
// until Run returns or Close is called.
func NewWatcher(path string, debounce time.Duration, log *slog.Logger) (*Watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: watch %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config: watch %s: directory %s does not exist: %w", path, dir, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("config: watch %s: %w", path, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("config: watch %s: %s is not a directory", path, dir)
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("config: watch %s: %w", path, err)
	}
	if err := fsw.Add(dir); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("config: watch %s: directory %s: %w", path, dir, err)
	}
	w := &Watcher{
		path:     abs,
		dir:      dir,
		debounce: debounce,
		retry:    defaultRetry,
		log:      log.With("path", abs),
		fsw:      fsw,
		reread:   make(chan struct{}, 1),
	}
	w.watch()
	// The watches are in place before this read, so every later change
	// produces an event that Run will see.
	if data, err := os.ReadFile(abs); err != nil {
		w.failed = err.Error()
	} else {
		w.sum, w.ok = sha256.Sum256(data), true
	}
	return w, nil
}

// Run watches until ctx ends or Close is called, and then returns nil; it
// closes the Watcher before it returns. It returns an error at once if it
// was called before or onChange is nil.
//
// After each burst of file-system events, once no event has come for the
// debounce period (and at most ten debounce periods after the burst's
// first event), Run reads the file. If the read succeeds and the bytes
// differ from the content delivered last, or the last delivery was a
// failure, it calls onChange(data, nil). If the read fails it calls
// onChange(nil, err), with the error of [os.ReadFile], once per distinct
// failure: a file that stays missing is reported once, not after every
// event. A read that catches a writer half-way may deliver partial
// content; the writer's later events cause another read, so the content
// delivered last is always the file's final content.
//
// onChange is called sequentially, on Run's goroutine; events that come
// while it runs are queued and read afterwards. data is a new slice owned
// by onChange. onChange should not block for long (a reload, not a wait
// for traffic to drain): events queue in the kernel meanwhile, and an
// overflowing queue costs only an extra read.
//
// If the directory is removed or renamed away, Run logs a warning,
// delivers the read failure, and tries to watch the directory again every
// second; when it succeeds it logs that and reads the file, so a directory
// that is recreated is picked up. An error from fsnotify (for example an
// overflow of the kernel's event queue, after which events were lost) is
// logged and handled as an event: the file is read again.
func (w *Watcher) Run(ctx context.Context, onChange func(data []byte, err error)) error {
	if onChange == nil {
		return errors.New("config: Watcher.Run: nil onChange")
	}
	if w.started.Swap(true) {
		return errors.New("config: Watcher.Run called more than once")
	}
	defer w.Close()

	var (
		timer    = time.NewTimer(time.Hour)
		pending  bool      // a read is scheduled on timer
		deadline time.Time // the latest time the pending read may be put off to
		retry    *time.Ticker
		retryC   <-chan time.Time // non-nil while the directory is lost
	)
	timer.Stop()
	defer timer.Stop()
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, deadline = true, now.Add(maxDelayFactor*w.debounce)
		}
		timer.Reset(max(0, min(w.debounce, deadline.Sub(now))))
	}
	// read re-establishes the watches, reads the file and delivers what
	// changed, and starts or stops the retry ticker.
	read := func(force bool) {
		pending = false
		if w.readHook != nil {
			w.readHook()
		}
		w.watch()
		w.check(onChange, force)
		switch {
		case w.lost && retryC == nil:
			retry = time.NewTicker(w.retry)
			retryC = retry.C
		case !w.lost && retryC != nil:
			retry.Stop()
			retry, retryC = nil, nil
		}
	}
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil // Close
			}
			w.log.Debug("config watch: event", "event", ev)
			schedule()
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("config watch: kernel event queue overflowed; reading the file again", "err", err)
			} else {
				w.log.Warn("config watch: file-system notification error; reading the file again", "err", err)
			}
			schedule()
		case <-timer.C:
			read(false)
		case <-w.reread:
			timer.Stop()
			read(true)
		case <-retryC:
			if w.watch() {
				schedule()
			}
		}
	}
}

// Reread asks Run to read the file at once, without waiting for the
// debounce period, and to call onChange even if the content (or the read
// failure) is the one delivered last: the hook for SIGHUP, so that a
// forced reload goes through the same goroutine, in order, as the reloads
// the watcher starts itself. Requests made before Run has handled the
// previous one are merged into it. Reread never blocks; after Run has
// returned it does nothing.
func (w *Watcher) Reread() {
	select {
	case w.reread <- struct{}{}:
	default:
	}
}

// Close stops watching and releases the notification handle. Run calls it
// when it returns; call it yourself only for a Watcher whose Run is not
// called or has not started. A Run in progress returns nil. Close is safe
// to call more than once; it returns the error of the first call.
func (w *Watcher) Close() error {
	w.close.Do(func() { w.closeErr = w.fsw.Close() })
	return w.closeErr
}

// check reads the file and calls onChange if the content or the failure
// is not the one delivered last, or if force is set.
func (w *Watcher) check(onChange func([]byte, error), force bool) {
	data, err := os.ReadFile(w.path)
	if err != nil {
		if !force && !w.ok && w.failed == err.Error() {
			w.log.Debug("config watch: file still unreadable", "err", err)
			return
		}
		w.ok, w.failed = false, err.Error()
		onChange(nil, err)
		return
	}
	sum := sha256.Sum256(data)
	if !force && w.ok && sum == w.sum {
		w.log.Debug("config watch: content unchanged")
		return
	}
	w.sum, w.ok, w.failed = sum, true, ""
	onChange(data, nil)
}

// watch makes fsnotify watch the file's directory and, if the file is a
// symlink into another directory, that directory (and no longer the one of
// an earlier target). It records in w.lost whether the file's directory
// could be watched, logs when that changes, and reports whether it added
// a watch (so events before that moment may have been missed).
func (w *Watcher) watch() (added bool) {
	list := w.fsw.WatchList()
	if !slices.Contains(list, w.dir) {
		if err := w.fsw.Add(w.dir); err != nil {
			if !w.lost {
				w.log.Warn("config watch: cannot watch the config directory; retrying until it is back",
					"dir", w.dir, "retry", w.retry, "err", err)
			}
			w.lost = true
		} else {
			if w.lost {
				w.log.Info("config watch: watching the config directory again", "dir", w.dir)
			} else {
				w.log.Warn("config watch: the directory watch had ended; watching it again", "dir", w.dir)
			}
			w.lost, added = false, true
		}
	}

	// The directory holding the file the path finally resolves to. Keep
	// the previous one while the path does not resolve (the target file
	// may be being replaced), so that its reappearance is seen.
	target := w.target
	if resolved, err := filepath.EvalSymlinks(w.path); err == nil {
		target = filepath.Dir(resolved)
		if target == w.dir {
			target = ""
		} else if realDir, err := filepath.EvalSymlinks(w.dir); err == nil && target == realDir {
			target = "" // the directory's own path has a symlink in it: same directory
		}
	}
	if w.target != "" && w.target != target && slices.Contains(list, w.target) {
		_ = w.fsw.Remove(w.target) // may have gone with its directory already
	}
	if target != "" && !slices.Contains(list, target) {
		if err := w.fsw.Add(target); err != nil {
			w.log.Debug("config watch: cannot watch the symlink target's directory", "dir", target, "err", err)
			target = ""
		} else {
			w.log.Debug("config watch: watching the symlink target's directory", "dir", target)
			added = true
		}
	}
	w.target = target
	return added
}
