package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests never sleep to wait for the watcher. They wait (with a bound)
// for the next onChange call, and prove that no call came in between by
// making a sentinel save and checking that the next call delivers it.

const (
	testDebounce = 20 * time.Millisecond
	// callWait bounds the wait for one expected call; a pass takes a few
	// debounce periods.
	callWait = 10 * time.Second
)

type change struct {
	data []byte
	err  error
}

func (c change) String() string {
	if c.err != nil {
		return "error " + c.err.Error()
	}
	return fmt.Sprintf("%q", c.data)
}

type watchHarness struct {
	t     *testing.T
	w     *Watcher
	path  string
	calls chan change
	reads chan time.Time // when each read started
	n     int            // sentinel saves so far
}

// startWatcher writes initial to path (unless initial is nil), creates a
// Watcher for it and runs it until the test ends.
func startWatcher(t *testing.T, path string, initial []byte, debounce time.Duration) *watchHarness {
	t.Helper()
	if initial != nil {
		saveRename(t, path, initial)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := NewWatcher(path, debounce, log)
	if err != nil {
		t.Fatal(err)
	}
	w.retry = 10 * time.Millisecond
	h := &watchHarness{t: t, w: w, path: path, calls: make(chan change, 64), reads: make(chan time.Time, 1024)}
	w.readHook = func() {
		select {
		case h.reads <- time.Now():
		default: // full: only in a test that never calls provokeRead
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, func(data []byte, err error) {
			select {
			case h.calls <- change{data, err}:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(callWait):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return h
}

// next returns the next onChange call.
func (h *watchHarness) next() change {
	h.t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-time.After(callWait):
		h.t.Fatalf("no onChange call within %v", callWait)
		return change{}
	}
}

// expectData fails unless the next call delivers want.
func (h *watchHarness) expectData(want []byte) {
	h.t.Helper()
	if c := h.next(); c.err != nil || !bytes.Equal(c.data, want) {
		h.t.Fatalf("onChange got %v, want %q", c, want)
	}
}

// expectNotExist fails unless the next call reports that the file does
// not exist.
func (h *watchHarness) expectNotExist() {
	h.t.Helper()
	c := h.next()
	if c.data != nil || !errors.Is(c.err, fs.ErrNotExist) {
		h.t.Fatalf("onChange got %v, want a not-exist error and nil data", c)
	}
}

// provokeRead runs op, which must cause a file-system event in a watched
// directory, and waits until the watcher has read the file after op began:
// so the test knows that the file's state after op was looked at, and
// the next call (see sentinel) shows whether that read made a call.
func (h *watchHarness) provokeRead(op func() error) {
	h.t.Helper()
	start := time.Now()
	if err := op(); err != nil {
		h.t.Fatal(err)
	}
	timeout := time.After(callWait)
	for {
		select {
		case at := <-h.reads:
			if at.After(start) {
				return
			}
		case <-timeout:
			h.t.Fatalf("no read within %v", callWait)
		}
	}
}

// sentinel saves new content and expects it as the next call: any call
// that the test did not expect (a duplicate, a spurious one) fails it.
func (h *watchHarness) sentinel() {
	h.t.Helper()
	h.n++
	data := fmt.Appendf(nil, "sentinel: %d\n", h.n)
	saveRename(h.t, h.path, data)
	h.expectData(data)
}

// saveRename saves like an editor: write a temporary file, rename it over.
func saveRename(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func configDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestWatchSaveByRename(t *testing.T) {
	h := startWatcher(t, filepath.Join(configDir(t), "config.yaml"), []byte("version: 1\n"), testDebounce)
	saveRename(t, h.path, []byte("version: 2\n"))
	h.expectData([]byte("version: 2\n"))
	h.sentinel()
}

// expectEventually reads calls until one delivers want; every call before
// it must be a prefix of want (a read that caught the writer half-way).
func (h *watchHarness) expectEventually(want []byte) {
	h.t.Helper()
	for {
		c := h.next()
		if c.err != nil || !bytes.HasPrefix(want, c.data) {
			h.t.Fatalf("onChange got %v, want %q or a prefix of it", c, want)
		}
		if len(c.data) == len(want) {
			return
		}
		h.t.Logf("partial read: %q", c.data)
	}
}

func TestWatchSaveInPlace(t *testing.T) {
	h := startWatcher(t, filepath.Join(configDir(t), "config.yaml"), []byte("version: 1\n"), testDebounce)

	want := []byte("version: 2\nbackends: [http://a:80]\n")
	if err := os.WriteFile(h.path, want, 0o644); err != nil { // truncate + write
		t.Fatal(err)
	}
	h.expectEventually(want)
	h.sentinel()

	// A slow writer: the watcher surely reads the half-written file, and
	// must still deliver the whole file once it is complete.
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first, second := []byte("version: 3\n"), []byte("backends: [http://b:80]\n")
	if _, err := f.Write(first); err != nil {
		t.Fatal(err)
	}
	h.expectEventually(first)
	if _, err := f.Write(second); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	h.expectData(append(first, second...))
	h.sentinel()
}

// TestWatchConfigMap mimics the kubelet's atomic writer: the file is a
// symlink through "..data", a symlink to a timestamped directory, and an
// update writes a new directory and renames a new "..data" over the old
// one.
func TestWatchConfigMap(t *testing.T) {
	dir := configDir(t)
	n := 0
	update := func(data []byte) {
		t.Helper()
		n++
		ts := fmt.Sprintf("..2026_11_24_10_00_%02d.123", n)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "config.yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if old != "" {
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	update([]byte("version: 1\n"))
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}
	h := startWatcher(t, path, nil, testDebounce)

	for i := 2; i <= 4; i++ {
		want := fmt.Appendf(nil, "version: %d\n", i)
		update(want)
		h.expectData(want)
	}
	// The sentinel is an update of the same kind.
	update([]byte("sentinel\n"))
	h.expectData([]byte("sentinel\n"))
}

// TestWatchSymlinkElsewhere: the path is a symlink to a file in another
// directory, which is edited there.
func TestWatchSymlinkElsewhere(t *testing.T) {
	root := t.TempDir()
	linkDir, realDir := filepath.Join(root, "etc"), filepath.Join(root, "deploy")
	for _, d := range []string{linkDir, realDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(realDir, "connx.yaml")
	saveRename(t, target, []byte("version: 1\n"))
	path := filepath.Join(linkDir, "config.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	h := startWatcher(t, path, nil, testDebounce)

	saveRename(t, target, []byte("version: 2\n"))
	h.expectData([]byte("version: 2\n"))
	if err := os.WriteFile(target, []byte("version: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.expectEventually([]byte("version: 3\n"))

	// Point the link at a third directory; edits there are seen next.
	otherDir := filepath.Join(root, "other")
	if err := os.Mkdir(otherDir, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(otherDir, "connx.yaml")
	saveRename(t, other, []byte("version: 4\n"))
	if err := os.Symlink(other, path+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	h.expectData([]byte("version: 4\n"))
	saveRename(t, other, []byte("version: 5\n"))
	h.expectData([]byte("version: 5\n"))
	// The old target's directory is no longer watched.
	got := h.w.fsw.WatchList()
	slices.Sort(got)
	if want := []string{linkDir, otherDir}; !slices.Equal(got, want) {
		t.Errorf("watching %q, want %q", got, want)
	}
	h.path = other
	h.sentinel()
}

func TestWatchBurst(t *testing.T) {
	// A longer debounce, so that the burst fits in one quiet period even
	// on a loaded machine: that makes one call likely, and the bound below
	// safe.
	const saves = 20
	h := startWatcher(t, filepath.Join(configDir(t), "config.yaml"), []byte("version: 0\n"), 200*time.Millisecond)
	var last []byte
	for i := 1; i <= saves; i++ {
		last = fmt.Appendf(nil, "version: %d\n", i)
		saveRename(t, h.path, last)
	}
	calls := 0
	for {
		c := h.next()
		calls++
		if c.err != nil || !bytes.HasPrefix(c.data, []byte("version: ")) {
			t.Fatalf("onChange got %v, want one of the saves", c)
		}
		if bytes.Equal(c.data, last) {
			break
		}
	}
	t.Logf("%d saves, %d calls", saves, calls)
	if calls > saves/4 {
		t.Errorf("%d saves made %d calls, want far fewer", saves, calls)
	}
	h.sentinel()
}

func TestWatchIgnoresOtherFiles(t *testing.T) {
	dir := configDir(t)
	h := startWatcher(t, filepath.Join(dir, "config.yaml"), []byte("version: 1\n"), testDebounce)
	other := filepath.Join(dir, "other.yaml")
	for i := range 5 {
		saveRename(t, other, fmt.Appendf(nil, "other %d\n", i))
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), fmt.Appendf(nil, "notes %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.provokeRead(func() error { return os.Remove(other) })
	h.sentinel()
}

func TestWatchSameContent(t *testing.T) {
	content := []byte("version: 1\n")
	h := startWatcher(t, filepath.Join(configDir(t), "config.yaml"), content, testDebounce)
	saveRename(t, h.path, content)
	now := time.Now()
	if err := os.Chtimes(h.path, now, now); err != nil {
		t.Fatal(err)
	}
	h.provokeRead(func() error { return os.Chmod(h.path, 0o600) })
	h.sentinel()
	// The same content as the sentinel, saved again.
	h.provokeRead(func() error {
		saveRename(t, h.path, fmt.Appendf(nil, "sentinel: %d\n", h.n))
		return nil
	})
	h.sentinel()
}

func TestWatchRemoveAndRecreate(t *testing.T) {
	dir := configDir(t)
	content := []byte("version: 1\n")
	h := startWatcher(t, filepath.Join(dir, "config.yaml"), content, testDebounce)

	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	h.expectNotExist()
	// Events while the file stays missing: the failure is not reported
	// again.
	h.provokeRead(func() error { return os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("x"), 0o644) })
	// Recreated with the content delivered before the failure: delivered
	// again, since the last delivery was the failure.
	saveRename(t, h.path, content)
	h.expectData(content)
	h.sentinel()

	// And once more, recreated with new content.
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	h.expectNotExist()
	saveRename(t, h.path, []byte("version: 2\n"))
	h.expectData([]byte("version: 2\n"))
	h.sentinel()
}

// TestWatchDirectoryRemoved: the directory goes away and comes back; the
// watcher reports the failure once and picks the new directory up.
func TestWatchDirectoryRemoved(t *testing.T) {
	dir := configDir(t)
	h := startWatcher(t, filepath.Join(dir, "config.yaml"), []byte("version: 1\n"), testDebounce)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h.expectNotExist()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	saveRename(t, h.path, []byte("version: 2\n"))
	h.expectData([]byte("version: 2\n"))
	h.sentinel() // the new directory is watched

	// Replaced by rename: the watch follows the old directory away, and
	// must move to the new one.
	fresh := dir + ".new"
	if err := os.Mkdir(fresh, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fresh, "config.yaml"), []byte("version: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fresh, dir); err != nil {
		t.Fatal(err)
	}
	// The file may be read between the two renames (missing) or after.
	if c := h.next(); c.err != nil {
		if !errors.Is(c.err, fs.ErrNotExist) {
			t.Fatalf("onChange got %v, want version 3 or a not-exist error", c)
		}
		h.expectData([]byte("version: 3\n"))
	} else if !bytes.Equal(c.data, []byte("version: 3\n")) {
		t.Fatalf("onChange got %v, want version 3", c)
	}
	h.sentinel()
}

func TestWatchReread(t *testing.T) {
	content := []byte("version: 1\n")
	h := startWatcher(t, filepath.Join(configDir(t), "config.yaml"), content, testDebounce)
	h.w.Reread()
	h.expectData(content) // forced: delivered although unchanged
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	h.expectNotExist()
	h.w.Reread()
	h.expectNotExist() // forced: reported although already reported
	h.sentinel()
}

func TestWatchInitiallyMissing(t *testing.T) {
	// A missing file at NewWatcher counts as a delivered failure: no call
	// until the file appears.
	dir := configDir(t)
	h := startWatcher(t, filepath.Join(dir, "config.yaml"), nil, testDebounce)
	h.provokeRead(func() error { return os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("x"), 0o644) })
	h.sentinel()
}

func TestWatchSteadyNoise(t *testing.T) {
	// A file in the directory written faster than the debounce period must
	// not put the read off forever.
	dir := configDir(t)
	h := startWatcher(t, filepath.Join(dir, "config.yaml"), []byte("version: 1\n"), testDebounce)
	stop, done := make(chan struct{}), make(chan struct{})
	writing := make(chan struct{}, 1)
	go func() {
		defer close(done)
		tick := time.NewTicker(testDebounce / 10)
		defer tick.Stop()
		for i := 0; ; i++ {
			if err := os.WriteFile(filepath.Join(dir, "access.log"), fmt.Appendf(nil, "line %d\n", i), 0o644); err != nil {
				t.Error(err)
				return
			}
			select {
			case writing <- struct{}{}:
			default:
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()
	<-writing
	saveRename(t, h.path, []byte("version: 2\n"))
	h.expectData([]byte("version: 2\n"))
}

func TestNewWatcherErrors(t *testing.T) {
	root := t.TempDir()
	_, err := NewWatcher(filepath.Join(root, "missing", "config.yaml"), 0, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(root, "missing")+" does not exist") {
		t.Errorf("missing directory: got %v", err)
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = NewWatcher(filepath.Join(file, "config.yaml"), 0, nil)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("directory is a file: got %v", err)
	}
}

func TestWatcherRun(t *testing.T) {
	w, err := NewWatcher(filepath.Join(t.TempDir(), "config.yaml"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.debounce != DefaultDebounce {
		t.Errorf("debounce 0 became %v, want %v", w.debounce, DefaultDebounce)
	}
	if err := w.Run(context.Background(), nil); err == nil {
		t.Error("Run with nil onChange: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx, func([]byte, error) {}); err != nil {
		t.Errorf("Run with a cancelled context: %v", err)
	}
	if err := w.Run(ctx, func([]byte, error) {}); err == nil {
		t.Error("second Run: no error")
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}

	// Close ends a running Run.
	w, err = NewWatcher(filepath.Join(t.TempDir(), "config.yaml"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background(), func([]byte, error) {}) }()
	w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(callWait):
		t.Fatal("Run did not return after Close")
	}
}
