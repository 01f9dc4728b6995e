package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connx/connx/internal/testcert"
)

// TestDocumentedEdge: every YAML block of docs/edge.md is a configuration
// that Parse (what connx -check runs) accepts. A block whose first line
// is "# fragment" names certificate files the operator supplies; it is
// loaded with generated files in their place, so it is held to the same
// rules. The doc shows configs/examples/edge-nlb.yaml as it is (below its
// comment header), so the two cannot drift apart.
func TestDocumentedEdge(t *testing.T) {
	doc, err := os.ReadFile("../../docs/edge.md")
	if err != nil {
		t.Fatal(err)
	}
	// The certificate pair the fragments name, and generated stand-ins.
	const docCert, docKey = "/etc/connx/tls/example.com.pem", "/etc/connx/tls/example.com.key"
	ca := testcert.NewCA(t)
	cf, kf := ca.Issue(t, testcert.ECDSA, false, "example.com").Write(t, t.TempDir(), "example.com")
	certs := strings.NewReplacer(docCert, cf, docKey, kf)

	var blocks []string
	fragments := 0
	for rest := string(doc); ; {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "```")
		rest = tail
		blocks = append(blocks, block)
		src := block
		if strings.HasPrefix(block, "# fragment") {
			fragments++
			if !strings.Contains(block, docCert) || !strings.Contains(block, docKey) {
				t.Errorf("a fragment that does not name %s and %s:\n%s", docCert, docKey, block)
			}
			src = certs.Replace(block)
		}
		if _, err := Parse([]byte(src), "edge.md"); err != nil {
			t.Errorf("example:\n%s\n%v", block, err)
		}
	}
	if len(blocks) < 6 || fragments == 0 {
		t.Fatalf("docs/edge.md: %d YAML blocks, %d fragments; the page lost its examples", len(blocks), fragments)
	}

	file, err := os.ReadFile(filepath.Join("..", "..", "configs", "examples", "edge-nlb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	body := file // below the leading comment lines and blank lines
	for len(body) > 0 && (body[0] == '#' || body[0] == '\n') {
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			body = body[i+1:]
		} else {
			body = nil
		}
	}
	found := false
	for _, b := range blocks {
		found = found || b == string(body)
	}
	if !found {
		t.Error("docs/edge.md does not show configs/examples/edge-nlb.yaml as it is")
	}
	c, err := Parse(file, "edge-nlb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Server.ProxyProtocol.Enabled || len(c.Routes) == 0 {
		t.Error("edge-nlb.yaml: no PROXY protocol listener or no routes")
	}
}
