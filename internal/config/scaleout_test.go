package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDocumentedScaleOut: every YAML block of docs/scale-out.md loads —
// ConnX configurations with Parse, Kubernetes manifests (a block that
// starts with apiVersion) as YAML documents with apiVersion and kind —
// and the doc shows configs/examples/kubernetes.yaml and consul.yaml as
// they are (below their comment header), so the two cannot drift apart.
func TestDocumentedScaleOut(t *testing.T) {
	doc, err := os.ReadFile("../../docs/scale-out.md")
	if err != nil {
		t.Fatal(err)
	}
	var configs, manifests []string
	for rest := string(doc); ; {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "```")
		rest = tail
		if strings.HasPrefix(block, "apiVersion:") {
			manifests = append(manifests, block)
			continue
		}
		configs = append(configs, block)
		c, err := Parse([]byte(block), "scale-out.md")
		if err != nil {
			t.Errorf("example:\n%s\n%v", block, err)
			continue
		}
		if c.Discovery == nil || c.RateLimit.Redis.Address == "" {
			t.Errorf("example without default-pool discovery or rateLimit.redis:\n%s", block)
		}
	}
	for _, m := range manifests {
		dec := yaml.NewDecoder(strings.NewReader(m))
		for n := 0; ; n++ {
			var obj struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
			}
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || obj.APIVersion == "" || obj.Kind == "" {
				t.Errorf("Kubernetes manifest, document %d: %+v, %v\n%s", n, obj, err, m)
				break
			}
		}
	}
	if len(manifests) == 0 {
		t.Error("docs/scale-out.md has no Kubernetes manifest")
	}
	for _, name := range []string{"kubernetes.yaml", "consul.yaml"} {
		file, err := os.ReadFile(filepath.Join("..", "..", "configs", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		// The file below its leading comment lines and blank lines.
		body := file
		for len(body) > 0 && (body[0] == '#' || body[0] == '\n') {
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				body = body[i+1:]
			} else {
				body = nil
			}
		}
		found := false
		for _, c := range configs {
			found = found || c == string(body)
		}
		if !found {
			t.Errorf("docs/scale-out.md does not show configs/examples/%s as it is", name)
		}
	}
}
