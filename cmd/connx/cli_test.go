package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connx/connx/internal/testproc"
)

// runConnx runs connx with args in dir ("" for the package directory) to
// completion and returns its exit code, stdout and stderr. A connx still
// running after 10 s (it started serving) is killed and fails the test.
func runConnx(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, connxBin, args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("connx %s did not exit; it started serving:\n%s", strings.Join(args, " "), e.String())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, o.String(), e.String()
}

// TestStrayArguments: an argument that is not a flag is refused with the
// usage line and exit code 2, instead of starting with the default
// config; so is an unknown flag.
func TestStrayArguments(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-config", "x.yaml", "start"}, {"-demo", "now"}, {"-bogus"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runConnx(t, t.TempDir(), args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, "\nusage: connx [") || !strings.Contains(stderr, "connx -h") {
				t.Errorf("stderr lacks the usage line:\n%s", stderr)
			}
			if last := args[len(args)-1]; !strings.HasPrefix(last, "-") && !strings.Contains(stderr, `unexpected argument "`+last+`"`) {
				t.Errorf("stderr does not name the argument %q:\n%s", last, stderr)
			}
			if stdout != "" || strings.Contains(stderr, "level=") {
				t.Errorf("connx started or printed more:\nstdout %q\nstderr %q", stdout, stderr)
			}
		})
	}
}

// TestHelp: -h and --help print what ConnX is, every flag and the
// signals on stdout, and exit 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run(arg, func(t *testing.T) {
			code, stdout, stderr := runConnx(t, "", arg)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, want := range []string{
				"ConnX is an HTTP/1.1 reverse proxy and load balancer",
				"-config FILE", "-demo", "-check", "-version", "-listen HOST:PORT", "-log-level LEVEL", "-pprof ADDR",
				"SIGHUP", "SIGTERM, SIGINT", "SIGUSR1", "SIGUSR2",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("help lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// TestMissingDefaultConfig: run where there is no configs/config.yaml
// and no /etc/connx/config.yaml, connx names both files it looked for
// (the first as an absolute path) and how to give one, and nothing about
// watching directories.
func TestMissingDefaultConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := os.Stat(systemConfig); err == nil {
		t.Skipf("%s exists on this machine: connx would read it", systemConfig)
	}
	for _, check := range []bool{false, true} {
		var args []string
		if check {
			args = []string{"-check"}
		}
		code, _, stderr := runConnx(t, dir, args...)
		if code != 1 {
			t.Fatalf("%v: exit %d, want 1; stderr:\n%s", args, code, stderr)
		}
		for _, want := range []string{"neither " + filepath.Join(dir, "configs", "config.yaml") + " nor /etc/connx/config.yaml exists", "-config FILE", "connx -demo"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, stderr)
			}
		}
		if strings.Contains(stderr, "watch") {
			t.Errorf("%v: stderr talks about watching:\n%s", args, stderr)
		}
	}
	// An explicit path that does not exist is named the same way.
	code, _, stderr := runConnx(t, dir, "-config", "nope.yaml")
	if code != 1 || !strings.Contains(stderr, "config file not found: "+filepath.Join(dir, "nope.yaml")) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestDefaultConfigPath: without -config, configs/config.yaml in the
// working directory when it is there, else /etc/connx/config.yaml (here
// a file of the test's, in its place).
func TestDefaultConfigPath(t *testing.T) {
	shipped := readFile(t, "../../configs/config.yaml")
	dir := t.TempDir()
	t.Chdir(dir)
	saved := systemConfig
	t.Cleanup(func() { systemConfig = saved })
	systemConfig = filepath.Join(dir, "etc-connx-config.yaml")

	if got := defaultConfigPath(); got != "" {
		t.Errorf("neither file: %q, want none", got)
	}
	must(t, os.WriteFile(systemConfig, []byte("x"), 0o644))
	if got := defaultConfigPath(); got != systemConfig {
		t.Errorf("only the system config: %q, want %q", got, systemConfig)
	}
	must(t, os.MkdirAll("configs", 0o755))
	must(t, os.WriteFile("configs/config.yaml", []byte("x"), 0o644))
	if got := defaultConfigPath(); got != "configs/config.yaml" {
		t.Errorf("both: %q, want configs/config.yaml", got)
	}

	// The real binary, run where configs/config.yaml is, reads it.
	must(t, os.WriteFile("configs/config.yaml", []byte(shipped), 0o644))
	code, stdout, stderr := runConnx(t, dir, "-check")
	if code != 0 || !strings.HasPrefix(stdout, "configs/config.yaml: ok") {
		t.Errorf("connx -check in a directory with configs/config.yaml: exit %d\n%s%s", code, stdout, stderr)
	}
}

// startIn runs connx with args under shellPrefix (e.g. "ulimit -n 1024")
// and waits until it listens.
func startIn(t *testing.T, shellPrefix string, args ...string) *proc {
	t.Helper()
	return testproc.Start(t, connxBin, shellPrefix, args...)
}

const fdWarning = "the file descriptor limit is below what limits.maxConnections may need"

// TestDefaultConfigNoFDWarning: the shipped configs/config.yaml starts
// without the descriptor-limit warning at this machine's limit, and
// under a low limit, where limits.maxConnections (unset) is sized from
// it; an explicit setting the limit cannot hold is warned about.
func TestDefaultConfigNoFDWarning(t *testing.T) {
	p := startIn(t, "", "-config", "../../configs/config.yaml", "-listen", "127.0.0.1:0")
	for _, l := range p.Log() {
		if strings.Contains(l, fdWarning) || strings.Contains(l, "level=WARN") && !strings.Contains(l, "backend unhealthy") {
			t.Errorf("the default config warns: %s", l)
		}
	}

	be := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "", be))
	p = startIn(t, "ulimit -n 1024", "-config", path)
	for _, l := range p.Log() {
		if strings.Contains(l, fdWarning) {
			t.Errorf("unset limits.maxConnections warns under ulimit -n 1024: %s", l)
		}
	}
	if l := p.WaitLog("sized from the file descriptor limit"); !strings.Contains(l, "fd_limit=1024 max_connections=480") {
		t.Errorf("sizing line: %s", l)
	}

	path = filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "limits:\n  maxConnections: 1000\n", be))
	p = startIn(t, "ulimit -n 1024", "-config", path)
	if l := p.WaitLog(fdWarning); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "limits.maxConnections=1000 needed=2064") {
		t.Errorf("warning: %s", l)
	}

	// Only the soft limit low: Go raises it to the hard one at start, so
	// a setting within the hard limit is not warned about.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Max < 2*200+64 {
		t.Skipf("hard descriptor limit %d: too low to check the soft limit's raise", rl.Max)
	}
	path = filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "limits:\n  maxConnections: 200\n", be))
	p = startIn(t, "ulimit -Sn 256", "-config", path)
	for _, l := range p.Log() {
		if strings.Contains(l, fdWarning) {
			t.Errorf("soft limit 256, hard %d: %s", rl.Max, l)
		}
	}
}

// TestLogFormat: every process log line carries the PID, in the text
// format (the default) and in the JSON one (log.format: json), where
// every line is one JSON object.
func TestLogFormat(t *testing.T) {
	be := namedBackend(t, "a", nil)
	for _, format := range []string{"", "text", "json"} {
		t.Run("format="+format, func(t *testing.T) {
			extra := ""
			if format != "" {
				extra = "log:\n  format: " + format + "\n"
			}
			path := filepath.Join(t.TempDir(), "connx.yaml")
			testproc.WriteConfig(t, path, configFor("round-robin", extra, be))
			p := startIn(t, "", "-config", path)
			// A reload adds lines from another part of the program.
			testproc.WriteConfig(t, path, configFor("least-connections", extra, be))
			p.WaitLog("config reloaded")
			pid := p.PID()
			lines := p.Log()
			if len(lines) < 2 {
				t.Fatalf("log: %q", lines)
			}
			for _, l := range lines {
				if format != "json" {
					if !strings.Contains(l, " pid="+strconv.Itoa(pid)+" ") || !strings.HasPrefix(l, "time=") {
						t.Errorf("text line without pid=%d: %s", pid, l)
					}
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Errorf("not a JSON line: %s", l)
					continue
				}
				if m["pid"] != float64(pid) || m["msg"] == nil || m["level"] == nil {
					t.Errorf("JSON line without pid %d, msg or level: %s", pid, l)
				}
			}
		})
	}
}

// TestLogFormatChangeNeedsRestart: a reload that changes log.format keeps
// the running format and says so.
func TestLogFormatChangeNeedsRestart(t *testing.T) {
	be := namedBackend(t, "a", nil)
	path := filepath.Join(t.TempDir(), "connx.yaml")
	testproc.WriteConfig(t, path, configFor("round-robin", "", be))
	p := startIn(t, "", "-config", path)
	testproc.WriteConfig(t, path, configFor("round-robin", "log:\n  format: json\n", be))
	if l := p.WaitLog("log.format changed"); !strings.HasPrefix(l, "time=") {
		t.Errorf("format switched on reload: %s", l)
	}
}

// TestUpgradeRecipe follows docs/reload.md's upgrade recipe: install(1)
// the new binary over the running one (cp fails there with "Text file
// busy"), then SIGUSR2; the successor serves and the old process exits.
func TestUpgradeRecipe(t *testing.T) {
	if _, err := exec.LookPath("install"); err != nil {
		t.Skip("no install(1)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "connx")
	if out, err := exec.Command("install", "-m", "755", connxBin, bin).CombinedOutput(); err != nil {
		t.Fatalf("install: %v %s", err, out)
	}
	be := namedBackend(t, "a", nil)
	path := filepath.Join(dir, "connx.yaml")
	port := testproc.FreePort(t)
	testproc.WriteConfig(t, path, strings.Replace(configFor("round-robin", "", be), "port: 0", "port: "+port, 1))
	p := testproc.Start(t, bin, "", "-config", path)

	if out, err := exec.Command("cp", connxBin, bin).CombinedOutput(); err == nil || !strings.Contains(string(out), "Text file busy") {
		t.Logf("cp over the running binary: %v %s (expected Text file busy)", err, out)
	}
	if out, err := exec.Command("install", "-m", "755", connxBin, bin).CombinedOutput(); err != nil {
		t.Fatalf("install over the running binary: %v %s", err, out)
	}
	successor := p.Watch("upgrade: the successor is serving")
	must(t, p.Cmd.Process.Signal(syscall.SIGUSR2))
	p.Next(successor, "successor")
	defer stopSuccessor(t, p)
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the old process did not exit")
	}
	if got := getBackend(t, "127.0.0.1:"+port); got != "a" {
		t.Fatalf("after the upgrade: served by %q", got)
	}
}
