package tlsterm

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connx/connx/internal/testcert"
)

// served does a handshake with cfg as the server and returns the leaf
// certificate the client got for server name sni.
func served(t *testing.T, srvCfg *tls.Config, sni string, cli *tls.Config) string {
	t.Helper()
	if cli == nil {
		cli = &tls.Config{}
	}
	cli = cli.Clone()
	cli.ServerName = sni
	cli.InsecureSkipVerify = true
	_, c, _, _ := handshakePair(t, srvCfg, cli)
	leaf := c.State().PeerCertificates[0]
	return leaf.Subject.CommonName + "/" + leaf.PublicKeyAlgorithm.String()
}

type storeFiles struct {
	ca    *testcert.CA
	dir   string
	pairs []Pair
}

// newFiles writes one pair per entry: kind and names.
func newFiles(t testing.TB, specs ...[]string) *storeFiles {
	t.Helper()
	f := &storeFiles{ca: testcert.NewCA(t), dir: t.TempDir()}
	for i, s := range specs {
		cf, kf := f.ca.Issue(t, s[0], false, s[1:]...).Write(t, f.dir, "p"+string(rune('0'+i)))
		f.pairs = append(f.pairs, Pair{cf, kf})
	}
	return f
}

func TestSNISelection(t *testing.T) {
	f := newFiles(t,
		[]string{testcert.ECDSA, "default.test"},
		[]string{testcert.ECDSA, "*.example.com", "example.com"},
		[]string{testcert.ECDSA, "api.example.com"},
		[]string{testcert.RSA, "api.example.com"},
	)
	store, err := NewStore(f.pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewServerConfig(store, ServerOptions{})
	rsaOnly := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}
	for _, c := range []struct {
		sni  string
		cli  *tls.Config
		want string
	}{
		{"api.example.com", nil, "api.example.com/ECDSA"},   // exact beats wildcard
		{"API.Example.COM.", nil, "api.example.com/ECDSA"},  // case and trailing dot
		{"api.example.com", rsaOnly, "api.example.com/RSA"}, // the one the client supports
		{"www.example.com", nil, "*.example.com/ECDSA"},     // wildcard
		{"example.com", nil, "*.example.com/ECDSA"},         // exact name of the wildcard's pair
		{"a.b.example.com", nil, "default.test/ECDSA"},      // a wildcard is one label
		{"other.test", nil, "default.test/ECDSA"},           // default: the first
		{"", nil, "default.test/ECDSA"},                     // no SNI
		{"other.test", rsaOnly, "api.example.com/RSA"},      // default the client supports
	} {
		if got := served(t, cfg, c.sni, c.cli); got != c.want {
			t.Errorf("SNI %q: served %s, want %s", c.sni, got, c.want)
		}
	}
}

// logBuffer is a slog.Logger writing text to a buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

func TestReload(t *testing.T) {
	f := newFiles(t, []string{testcert.ECDSA, "a.test"})
	log, logged := logBuffer()
	store, err := NewStore(f.pairs, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewServerConfig(store, ServerOptions{})
	before := store.set.Load()
	if err := store.Reload(); err != nil || store.set.Load() != before {
		t.Fatalf("reload of unchanged files: %v, changed set %v", err, store.set.Load() != before)
	}

	// A renewal with a new name is served to the next handshake.
	leaf := f.ca.Issue(t, testcert.RSA, false, "b.test")
	testcert.WriteFile(t, f.pairs[0].CertFile, leaf.CertPEM)
	testcert.WriteFile(t, f.pairs[0].KeyFile, leaf.KeyPEM)
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, cfg, "b.test", nil); got != "b.test/RSA" {
		t.Fatalf("after reload: served %s", got)
	}

	// Half a renewal (new certificate, old key) keeps the pair in use and
	// logs the file and the reason.
	other := f.ca.Issue(t, testcert.ECDSA, false, "c.test")
	testcert.WriteFile(t, f.pairs[0].CertFile, other.CertPEM)
	err = store.Reload()
	if err == nil || !strings.Contains(err.Error(), f.pairs[0].CertFile) {
		t.Fatalf("reload of a mismatched pair: %v", err)
	}
	if got := served(t, cfg, "b.test", nil); got != "b.test/RSA" {
		t.Fatalf("after a bad reload: served %s, want the previous b.test", got)
	}
	for _, want := range []string{"certFile=" + f.pairs[0].CertFile, "reason=", "private key type does not match"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
	// A missing file likewise.
	if err := os.Remove(f.pairs[0].KeyFile); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(); err == nil {
		t.Fatal("reload with a missing key succeeded")
	}
	if got := served(t, cfg, "b.test", nil); got != "b.test/RSA" {
		t.Fatalf("after a missing key: served %s", got)
	}
	// The other half arrives.
	testcert.WriteFile(t, f.pairs[0].KeyFile, other.KeyPEM)
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, cfg, "c.test", nil); got != "c.test/ECDSA" {
		t.Fatalf("after the fix: served %s", got)
	}
	if info := store.Certificates(); len(info) != 1 || info[0].Names[0] != "c.test" || info[0].NotAfter.IsZero() {
		t.Fatalf("Certificates() = %+v", info)
	}
}

// TestReloadSymlinkSwap replaces the pair as Kubernetes does with a
// secret volume: the files are symlinks through "..data", which is
// swapped atomically to a new directory.
func TestReloadSymlinkSwap(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	gen := func(name, host string) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		ca.Issue(t, testcert.ECDSA, false, host).Write(t, d, "tls")
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	gen("v1", "one.test")
	for _, f := range []string{"tls.pem", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	store, err := NewStore([]Pair{{filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewServerConfig(store, ServerOptions{})
	gen("v2", "two.test")
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, cfg, "two.test", nil); got != "two.test/ECDSA" {
		t.Fatalf("after the swap: served %s", got)
	}
}

func TestMinVersionAndSuites(t *testing.T) {
	f := newFiles(t, []string{testcert.RSA, "a.test"})
	store, err := NewStore(f.pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		min    uint16
		cli    *tls.Config
		refuse bool
	}{
		{0, &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}, true},
		{0, &tls.Config{MaxVersion: tls.VersionTLS12}, false},
		{tls.VersionTLS13, &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		{0, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}, true},
		{0, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}, true},
	} {
		cfg := NewServerConfig(store, ServerOptions{MinVersion: c.min})
		cn, sn := tcpPair(t)
		cli := c.cli.Clone()
		cli.InsecureSkipVerify = true
		errc := make(chan error, 1)
		go func() { errc <- tls.Client(cn, cli).Handshake() }()
		serr := Server(sn, cfg).Handshake()
		cerr := <-errc
		if refused := serr != nil && cerr != nil; refused != c.refuse {
			t.Errorf("min %x, client %+v: server %v, client %v; want refused %v", c.min, c.cli, serr, cerr, c.refuse)
		}
	}
}

func TestTicketKeysRotate(t *testing.T) {
	f := newFiles(t, []string{testcert.ECDSA, "a.test"})
	store, err := NewStore(f.pairs, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewTicketKeys(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewServerConfig(store, ServerOptions{Tickets: keys})
	cache := tls.NewLRUClientSessionCache(4)
	resumed := func() bool {
		cli := &tls.Config{InsecureSkipVerify: true, ServerName: "a.test", ClientSessionCache: cache, MaxVersion: tls.VersionTLS12}
		_, c, _, _ := handshakePair(t, cfg, cli)
		return c.State().DidResume
	}
	if resumed() {
		t.Fatal("first handshake resumed")
	}
	if !resumed() {
		t.Fatal("second handshake did not resume")
	}
	// One rotation: the old key still decrypts.
	if err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if !resumed() {
		t.Fatal("no resumption after one rotation (keep 2)")
	}
	// The ticket just issued is under the newest key; two rotations drop it.
	if err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if resumed() {
		t.Fatal("resumed with a ticket whose key was rotated out")
	}
}

// FuzzGetCertificate: any server name gets a certificate.
func FuzzGetCertificate(f *testing.F) {
	files := newFiles(f, []string{testcert.ECDSA, "*.example.com"}, []string{testcert.ECDSA, "a.test"})
	store, err := NewStore(files.pairs, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", ".", "a.test", "x.example.com", "*.example.com", "..", "a..b", "\x00.example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := store.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil || c == nil {
			t.Fatalf("GetCertificate(%q) = %v, %v", name, c, err)
		}
	})
}
