package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const unitPath = "../../packaging/systemd/connx.service"

// unitFile is a parsed systemd unit: section -> key -> values (a key may
// repeat).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case section == "":
			t.Fatalf("%s:%d: %q outside a section", path, n, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: not key=value: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// TestSystemdUnit checks what packaging/systemd/connx.service must say
// for ConnX's sd_notify support, reload, drain and upgrade to work, and
// its hardening; then systemd-analyze verify checks it as systemd reads
// it (installed: Debian's systemd package; required with CONNX_CI=1).
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, unitPath)
	for _, kv := range []struct{ section, key, want string }{
		{"Service", "Type", "notify"},
		// The successor of an upgrade sends MAINPID= before it is the
		// main process: with NotifyAccess=main systemd would drop it.
		{"Service", "NotifyAccess", "all"},
		{"Service", "ExecStart", "/usr/local/bin/connx -config /etc/connx/config.yaml"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "KillSignal", "SIGTERM"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
		{"Service", "CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.get(kv.section, kv.key); got != kv.want {
			t.Errorf("[%s] %s=%q, want %q", kv.section, kv.key, got, kv.want)
		}
	}
	if u.get("Service", "LimitNOFILE") == "" {
		t.Error("no LimitNOFILE")
	}
	// Longer than the default server.shutdownTimeout (30s), so systemd's
	// SIGKILL does not cut the drain short.
	if d, err := time.ParseDuration(u.get("Service", "TimeoutStopSec")); err != nil || d <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%q, want more than 30s", u.get("Service", "TimeoutStopSec"))
	}
	// The flags the unit passes are flags connx has, and its config check
	// is the one -check runs.
	for _, key := range []string{"ExecStart", "ExecStartPre"} {
		for _, arg := range strings.Fields(u.get("Service", key))[1:] {
			if strings.HasPrefix(arg, "-") && !regexp.MustCompile(`(?m)^  `+regexp.QuoteMeta(arg)+`\b`).MatchString(helpText(t)) {
				t.Errorf("%s passes %s, which connx -h does not list", key, arg)
			}
		}
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CONNX_CI") == "1" {
			t.Fatal("systemd-analyze not found (CONNX_CI=1); install it with: apt-get install -y systemd")
		}
		t.Skip("systemd-analyze not found: apt-get install systemd")
	}
	// The unit as installed, with the binary where systemd can check it.
	dir := t.TempDir()
	body := strings.ReplaceAll(readFile(t, unitPath), "/usr/local/bin/connx", connxBin)
	unit := filepath.Join(dir, "connx.service")
	must(t, os.WriteFile(unit, []byte(body), 0o644))
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	// verify exits 0 on unknown keys and bad values, which it prints:
	// any output is a finding.
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var helpOnce struct {
	text string
}

// helpText is connx -h's output.
func helpText(t *testing.T) string {
	t.Helper()
	if helpOnce.text == "" {
		code, out, _ := runConnx(t, "", "-h")
		if code != 0 {
			t.Fatalf("connx -h: exit %d", code)
		}
		helpOnce.text = out
	}
	return helpOnce.text
}

// TestManPage: docs/connx.1.md, the man page's source, lists exactly the
// flags connx -h lists, each with -h's words, and the same signals.
func TestManPage(t *testing.T) {
	help := helpText(t)
	md := readFile(t, "../../docs/connx.1.md")

	type entry struct{ arg, text string }
	fromHelp := map[string]entry{}
	for _, m := range regexp.MustCompile(`(?m)^  (-[a-z-]+)(?: (\S+))?\n\s+(.+)$`).FindAllStringSubmatch(help, -1) {
		fromHelp[m[1]] = entry{m[2], m[3]}
	}
	fromMan := map[string]entry{}
	for _, m := range regexp.MustCompile(`(?m)^\*\*(-[a-z-]+)\*\*(?: \*(\S+)\*)?\n:   (.+)$`).FindAllStringSubmatch(md, -1) {
		fromMan[m[1]] = entry{m[2], m[3]}
	}
	if len(fromHelp) < 7 {
		t.Fatalf("connx -h lists %d flags:\n%s", len(fromHelp), help)
	}
	for f, h := range fromHelp {
		if m, ok := fromMan[f]; !ok {
			t.Errorf("docs/connx.1.md lacks %s (connx -h: %s %s: %s)", f, f, h.arg, h.text)
		} else if m != h {
			t.Errorf("docs/connx.1.md: %s %s: %q; connx -h: %s %s: %q", f, m.arg, m.text, f, h.arg, h.text)
		}
	}
	for f := range fromMan {
		if _, ok := fromHelp[f]; !ok && f != "-h" {
			t.Errorf("docs/connx.1.md lists %s, which connx -h does not", f)
		}
	}

	sigHelp := regexp.MustCompile(`(?m)^  (SIG[A-Z0-9]+(?:, SIG[A-Z0-9]+)*)\s{2,}(.+)$`).FindAllStringSubmatch(help, -1)
	if len(sigHelp) < 4 {
		t.Fatalf("connx -h lists %d signals", len(sigHelp))
	}
	sigMan := regexp.MustCompile(`(?m)^\*\*(SIG[A-Z0-9, ]+)\*\*\n:   (.+)$`).FindAllStringSubmatch(md, -1)
	if len(sigMan) != len(sigHelp) {
		t.Errorf("docs/connx.1.md lists %d signals, connx -h %d", len(sigMan), len(sigHelp))
	}
	for i := range min(len(sigMan), len(sigHelp)) {
		if sigMan[i][1] != sigHelp[i][1] || sigMan[i][2] != sigHelp[i][2] {
			t.Errorf("signal %d: docs/connx.1.md %q: %q; connx -h %q: %q", i, sigMan[i][1], sigMan[i][2], sigHelp[i][1], sigHelp[i][2])
		}
	}
}

// TestShippedConfigs: the config baked into the container image (and
// mounted by compose.yaml) passes connx -check.
func TestShippedConfigs(t *testing.T) {
	compose := readFile(t, "../../compose.yaml")
	m := regexp.MustCompile(`(?m)^\s+- \./(\S+):/etc/connx:ro$`).FindStringSubmatch(compose)
	if m == nil {
		t.Fatal("compose.yaml mounts no directory at /etc/connx")
	}
	for _, path := range []string{"../../" + m[1] + "/config.yaml", "../../packaging/container/config.yaml"} {
		code, stdout, stderr := runConnx(t, "", "-check", "-config", path)
		if code != 0 || !strings.Contains(stdout, ": ok") {
			t.Errorf("connx -check -config %s: exit %d\n%s%s", path, code, stdout, stderr)
		}
	}
}
