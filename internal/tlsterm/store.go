package tlsterm

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pair names a certificate chain file (PEM, leaf first) and its private
// key file (PEM; ECDSA, RSA or Ed25519).
type Pair struct {
	CertFile, KeyFile string
}

// Store holds the serving certificates and picks one for each handshake
// by SNI: a certificate whose names include the requested name exactly,
// then one with a matching wildcard ("*.example.com" for
// "a.example.com"), then the first pair as the default. Among several
// candidates the first the client supports wins (an RSA certificate for a
// client without ECDSA).
//
// [Store.Reload] re-reads the files; a pair that fails to load keeps its
// previous certificate and the failure is logged with the file and the
// reason, so a half-written renewal never takes a name offline.
//
// GetCertificate is safe for concurrent use with Reload and with itself:
// it reads an immutable set through an atomic pointer. Reloads are
// serialised.
type Store struct {
	pairs []Pair
	log   *slog.Logger

	mu  sync.Mutex // serialises Reload
	set atomic.Pointer[certSet]
}

// certSet is one immutable generation of the store's certificates.
type certSet struct {
	certs []*tls.Certificate // one per pair, in configuration order; Leaf set
	sums  [][sha256.Size]byte
	exact map[string][]int // lower-case DNS name -> indexes into certs
	wild  map[string][]int // "example.com" for "*.example.com" -> indexes
}

// NewStore loads every pair; any failure is an error naming the file.
// log receives reload failures (nil: slog.Default()).
func NewStore(pairs []Pair, log *slog.Logger) (*Store, error) {
	if len(pairs) == 0 {
		return nil, errors.New("tlsterm: no certificates")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Store{pairs: append([]Pair(nil), pairs...), log: log}
	set := &certSet{certs: make([]*tls.Certificate, len(pairs)), sums: make([][sha256.Size]byte, len(pairs))}
	for i, p := range pairs {
		c, sum, err := LoadPair(p)
		if err != nil {
			return nil, err
		}
		set.certs[i], set.sums[i] = c, sum
	}
	set.index()
	s.set.Store(set)
	return s, nil
}

// LoadPair reads and checks one pair: the key must match the leaf
// certificate. The error names the file at fault.
func LoadPair(p Pair) (*tls.Certificate, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	certPEM, err := os.ReadFile(p.CertFile)
	if err != nil {
		return nil, sum, fmt.Errorf("%s: %w", p.CertFile, err)
	}
	keyPEM, err := os.ReadFile(p.KeyFile)
	if err != nil {
		return nil, sum, fmt.Errorf("%s: %w", p.KeyFile, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, sum, fmt.Errorf("%s with %s: %w", p.CertFile, p.KeyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, sum, fmt.Errorf("%s: %w", p.CertFile, err)
		}
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write(keyPEM)
	h.Sum(sum[:0])
	return &c, sum, nil
}

// index builds the name maps of s.
func (s *certSet) index() {
	s.exact = map[string][]int{}
	s.wild = map[string][]int{}
	for i, c := range s.certs {
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				s.wild[rest] = append(s.wild[rest], i)
			} else {
				s.exact[n] = append(s.exact[n], i)
			}
		}
	}
}

// GetCertificate is tls.Config.GetCertificate: the certificate for
// hello's server name, as described on Store. It never fails.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.set.Load().pick(hello), nil
}

func (s *certSet) pick(hi *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(hi.ServerName, "."))
	// SupportsCertificate also checks the name, which the maps have
	// matched already (and which the default need not match): ask it
	// about keys, versions and suites only.
	h := *hi
	h.ServerName = ""
	hello := &h
	if name != "" {
		if c := s.best(hello, s.exact[name]); c != nil {
			return c
		}
		if _, parent, ok := strings.Cut(name, "."); ok {
			if c := s.best(hello, s.wild[parent]); c != nil {
				return c
			}
		}
	}
	for _, c := range s.certs {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return s.certs[0]
}

// best is the first of the candidates that hello supports, else the first.
func (s *certSet) best(hello *tls.ClientHelloInfo, idx []int) *tls.Certificate {
	if len(idx) == 0 {
		return nil
	}
	for _, i := range idx {
		if hello.SupportsCertificate(s.certs[i]) == nil {
			return s.certs[i]
		}
	}
	return s.certs[idx[0]]
}

// Reload re-reads every pair. A pair whose files did not change is kept
// as it is; one that fails to load keeps its previous certificate, and
// the failure is logged (file and reason) and returned, joined with the
// others. Connections in progress are not affected: only handshakes that
// start afterwards see the new certificates.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.set.Load()
	set := &certSet{certs: append([]*tls.Certificate(nil), old.certs...), sums: append([][sha256.Size]byte(nil), old.sums...)}
	var errs []error
	changed := false
	for i, p := range s.pairs {
		c, sum, err := LoadPair(p)
		switch {
		case err != nil:
			s.log.Error("TLS certificate not reloaded; the previous one stays in use",
				"certFile", p.CertFile, "keyFile", p.KeyFile, "reason", err)
			errs = append(errs, err)
		case sum != set.sums[i]:
			set.certs[i], set.sums[i] = c, sum
			changed = true
			s.log.Info("TLS certificate reloaded", "certFile", p.CertFile,
				"names", c.Leaf.DNSNames, "notAfter", c.Leaf.NotAfter)
		}
	}
	if changed {
		set.index()
		s.set.Store(set)
	}
	return errors.Join(errs...)
}

// Files lists every certificate and key file of the store, for a watcher.
func (s *Store) Files() []string {
	files := make([]string, 0, 2*len(s.pairs))
	for _, p := range s.pairs {
		files = append(files, p.CertFile, p.KeyFile)
	}
	return files
}

// CertInfo describes one serving certificate.
type CertInfo struct {
	CertFile string
	Names    []string // DNS names (or the common name when there are none)
	NotAfter time.Time
}

// Certificates describes the certificates in use, in configuration order.
func (s *Store) Certificates() []CertInfo {
	set := s.set.Load()
	out := make([]CertInfo, len(set.certs))
	for i, c := range set.certs {
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		out[i] = CertInfo{CertFile: s.pairs[i].CertFile, Names: names, NotAfter: c.Leaf.NotAfter}
	}
	return out
}
