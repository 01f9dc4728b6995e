package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadme checks README.md against the module and the binary: the Go
// version it names is go.mod's minimum, its flag table lists every flag
// connx -h prints, and the LICENSE it points to is there.
func TestReadme(t *testing.T) {
	readme := readFile(t, "../../README.md")
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, "../../go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	if !strings.Contains(readme, "Go "+m[1]+" or newer") {
		t.Errorf("README.md does not name go.mod's minimum, Go %s", m[1])
	}
	for _, other := range regexp.MustCompile(`\bGo (1\.\d+(?:\.\d+)?)\b`).FindAllStringSubmatch(readme, -1) {
		if other[1] != m[1] {
			t.Errorf("README.md names Go %s; go.mod requires %s", other[1], m[1])
		}
	}

	code, help, _ := runConnx(t, "", "-h")
	if code != 0 {
		t.Fatalf("connx -h: exit %d", code)
	}
	flags := regexp.MustCompile(`(?m)^  (-[a-z-]+)`).FindAllStringSubmatch(help, -1)
	if len(flags) < 7 {
		t.Fatalf("connx -h lists %d flags:\n%s", len(flags), help)
	}
	for _, f := range flags {
		if !regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(f[1]) + "[ `]").MatchString(readme) {
			t.Errorf("README.md's flag table lacks %s", f[1])
		}
	}

	if lic := readFile(t, "../../LICENSE"); !strings.HasPrefix(lic, "MIT License\n") || !strings.Contains(lic, "Copyright (c)") {
		t.Errorf("LICENSE is not the MIT license:\n%.200s", lic)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
