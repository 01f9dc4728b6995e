package admin

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/connx/connx/internal/config"
)

// toJSON encodes v as /api/config would and decodes it back generically.
func toJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(redacted(v))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return m
}

func TestConfigRoute(t *testing.T) {
	c := config.Default()
	c.Backends = []config.Backend{
		{URL: "http://10.0.0.1:8080", Weight: 2, Addr: "10.0.0.1:8080"},
		{URL: "http://admin:hunter2@10.0.0.2:8080", Weight: 1, Addr: "10.0.0.2:8080"},
	}
	c.Admin.Listen = "127.0.0.1:9090"
	h := New(Options{Config: func() *config.Config { return c }}).Handler()
	res := get(t, h, "GET", "/api/config")
	raw := body(t, res)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if strings.Contains(raw, "hunter2") {
		t.Fatalf("password leaked:\n%s", raw)
	}
	// Keys keep the file's order.
	if i, j := strings.Index(raw, `"server"`), strings.Index(raw, `"accessLog"`); i < 0 || j < i {
		t.Errorf("top-level keys out of order")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	bs := m["backends"].([]any)
	if u := bs[1].(map[string]any)["url"]; u != "http://admin:xxxxx@10.0.0.2:8080" {
		t.Errorf("redacted URL %q", u)
	}
	if _, ok := bs[0].(map[string]any)["Addr"]; ok {
		t.Errorf(`field tagged yaml:"-" is shown`)
	}
	if v := m["healthCheck"].(map[string]any)["interval"]; v != "30s" {
		t.Errorf("healthCheck.interval = %v, want \"30s\"", v)
	}
	if v := m["outlierDetection"].(map[string]any)["maxEjection"]; v != "5m0s" {
		t.Errorf("outlierDetection.maxEjection = %v", v)
	}

	// Apart from the password, /api/config is what the YAML encoder
	// writes for the same Config: same keys, same values, durations as
	// strings.
	c.Backends[1].URL = "http://10.0.0.2:8080"
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var fromYAML map[string]any
	if err := yaml.Unmarshal(y, &fromYAML); err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(fromYAML) // normalise numbers and nil lists like JSON
	var want map[string]any
	json.Unmarshal(j, &want)
	normaliseEmptyLists(want)
	// A nil section (pointer) is null in both, not a list.
	if c.Discovery == nil {
		want["discovery"] = nil
	}
	if c.Server.TLS == nil {
		want["server"].(map[string]any)["tls"] = nil
	}
	if c.Server.TLS == nil {
		want["server"].(map[string]any)["tls"] = nil // likewise
	}
	if c.Server.TLS == nil {
		want["server"].(map[string]any)["tls"] = nil // likewise
	}
	for i, b := range c.Backends { // a backend's own tls section, likewise
		if b.TLS == nil {
			want["backends"].([]any)[i].(map[string]any)["tls"] = nil
		}
	}
	if got := toJSON(t, c); !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("/api/config differs from the YAML encoding\n got %s\nwant %s", gj, wj)
	}
}

// normaliseEmptyLists turns the nulls YAML writes for nil lists into [],
// as /api/config writes them.
func normaliseEmptyLists(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			m[k] = []any{}
		case map[string]any:
			normaliseEmptyLists(v)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					normaliseEmptyLists(em)
				}
			}
		}
	}
}

func TestConfigRouteUnavailable(t *testing.T) {
	for name, o := range map[string]Options{
		"no Config":  {},
		"nil Config": {Config: func() *config.Config { return nil }},
	} {
		t.Run(name, func(t *testing.T) {
			var e map[string]string
			decode(t, get(t, New(o).Handler(), "GET", "/api/config"), 503, &e)
			if e["error"] == "" {
				t.Fatal("no error message")
			}
		})
	}
}

// TestRedactGeneric covers the rules for keys config does not have yet.
func TestRedactGeneric(t *testing.T) {
	type Inner struct {
		ClientSecret string `yaml:"clientSecret"`
		Level        int    `yaml:"level"`
	}
	type Embedded struct {
		Flat string `yaml:"flat"`
	}
	type Doc struct {
		Embedded     `yaml:",inline"`
		APIToken     string            `yaml:"apiToken"`
		EmptyToken   string            `yaml:"emptyToken"`
		MaxTokens    int               `yaml:"maxTokens"` // not a string: left alone
		DBPasswords  []string          `yaml:"dbPasswords"`
		Headers      map[string]string `yaml:"headers"`
		Auth         *Inner            `yaml:"auth"`
		Missing      *Inner            `yaml:"missing"`
		Secrets      Inner             `yaml:"secrets"` // everything under a secret key
		Upstream     string            `yaml:"upstream"`
		Broken       string            `yaml:"broken"`
		Mail         string            `yaml:"mail"`
		Timeout      time.Duration     `yaml:"timeout,omitempty"`
		Prefix       netip.Prefix      `yaml:"prefix"`
		Raw          []byte            `yaml:"raw"`
		Untagged     string
		Hidden       string `yaml:"-"`
		unexported   string
		PasswordFile string `yaml:"passwordFile"`
	}
	d := Doc{
		Embedded:     Embedded{Flat: "f"},
		APIToken:     "t0k3n",
		MaxTokens:    5,
		DBPasswords:  []string{"p1", "p2"},
		Headers:      map[string]string{"X-Auth-Token": "abc", "Accept": "text/plain"},
		Auth:         &Inner{ClientSecret: "s3cret", Level: 2},
		Secrets:      Inner{ClientSecret: "x", Level: 1},
		Upstream:     "https://bob:pa55@example.com/path",
		Broken:       "http://bob:p%zz@host",
		Mail:         "ops@example.com",
		Timeout:      1500 * time.Millisecond,
		Prefix:       netip.MustParsePrefix("10.0.0.0/8"),
		Raw:          []byte("bytes"),
		Untagged:     "u",
		Hidden:       "h",
		unexported:   "no",
		PasswordFile: "/etc/pw",
	}
	got := toJSON(t, d)
	want := map[string]any{
		"flat":         "f",
		"apiToken":     Redacted,
		"emptyToken":   "",
		"maxTokens":    5.0,
		"dbPasswords":  []any{Redacted, Redacted},
		"headers":      map[string]any{"Accept": "text/plain", "X-Auth-Token": Redacted},
		"auth":         map[string]any{"clientSecret": Redacted, "level": 2.0},
		"missing":      nil,
		"secrets":      map[string]any{"clientSecret": Redacted, "level": 1.0},
		"upstream":     "https://bob:xxxxx@example.com/path",
		"broken":       Redacted,
		"mail":         "ops@example.com",
		"timeout":      "1.5s",
		"prefix":       "10.0.0.0/8",
		"raw":          "bytes",
		"untagged":     "u",
		"passwordFile": Redacted,
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("got %s", gj)
	}
	for _, leak := range []string{"t0k3n", "p1", "abc", "s3cret", "pa55", "p%zz", "/etc/pw"} {
		b, _ := json.Marshal(redacted(d))
		if strings.Contains(string(b), leak) {
			t.Errorf("%q leaked", leak)
		}
	}
	_ = d.unexported
}
