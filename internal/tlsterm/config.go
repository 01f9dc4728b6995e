package tlsterm

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"sync"
)

// Versions maps the minVersion names ConnX accepts to crypto/tls values.
var Versions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// VersionName is the name of a TLS version for logs and metrics ("1.3").
func VersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return "unknown"
}

// CipherSuites12 are the TLS 1.2 suites ConnX offers: ECDHE key exchange
// with an AEAD only (no CBC, no RSA key exchange). TLS 1.3's suites are
// all AEAD and not configurable in crypto/tls.
var CipherSuites12 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ClientAuthModes maps the clientAuth modes ConnX accepts to crypto/tls
// values: "require" refuses a client without a verified certificate,
// "request" lets one without any through.
var ClientAuthModes = map[string]tls.ClientAuthType{
	"require": tls.RequireAndVerifyClientCert,
	"request": tls.VerifyClientCertIfGiven,
}

// ServerOptions are the settings of a TLS listener beyond its certificates.
type ServerOptions struct {
	// MinVersion is tls.VersionTLS12 (0 means that) or tls.VersionTLS13.
	MinVersion uint16
	// ClientAuth is tls.NoClientCert (0), tls.VerifyClientCertIfGiven
	// ("request") or tls.RequireAndVerifyClientCert ("require").
	ClientAuth tls.ClientAuthType
	// ClientCAs verify client certificates; required with ClientAuth.
	ClientCAs *x509.CertPool
	// Tickets provides the session-ticket keys; nil leaves crypto/tls's
	// own (rotated daily).
	Tickets *TicketKeys
	// HTTP2 offers "h2" by ALPN ahead of "http/1.1".
	HTTP2 bool
}

// NewServerConfig is the tls.Config of a listener serving store's
// certificates: TLS 1.2 or newer (1.3 preferred by crypto/tls), AEAD
// suites only, ALPN http/1.1 (and h2 with o.HTTP2), session resumption
// by tickets.
func NewServerConfig(store *Store, o ServerOptions) *tls.Config {
	min := o.MinVersion
	if min == 0 {
		min = tls.VersionTLS12
	}
	cfg := &tls.Config{
		GetCertificate: store.GetCertificate,
		MinVersion:     min,
		CipherSuites:   CipherSuites12,
		NextProtos:     []string{"http/1.1"},
		ClientAuth:     o.ClientAuth,
		ClientCAs:      o.ClientCAs,
	}
	if o.HTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	if o.Tickets != nil {
		o.Tickets.attach(cfg)
	}
	return cfg
}

// LoadCAs reads a PEM file of CA certificates.
func LoadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}

// TicketKeys are the session-ticket keys of one or more tls.Configs: the
// newest encrypts new tickets, the others still decrypt tickets issued
// under them, so a ticket stays usable for up to keep rotations. Call
// Rotate on a schedule (ConnX: hourly); the zero value is not usable.
// Safe for concurrent use.
type TicketKeys struct {
	mu   sync.Mutex
	keys [][32]byte
	keep int
	rand io.Reader
	cfgs []*tls.Config
}

// NewTicketKeys makes a first key; at most keep keys are kept (>= 1).
// random is the key source (nil: crypto/rand).
func NewTicketKeys(keep int, random io.Reader) (*TicketKeys, error) {
	if random == nil {
		random = rand.Reader
	}
	k := &TicketKeys{keep: max(keep, 1), rand: random}
	return k, k.Rotate()
}

// attach makes cfg use the keys, now and after every rotation.
func (k *TicketKeys) attach(cfg *tls.Config) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cfgs = append(k.cfgs, cfg)
	cfg.SetSessionTicketKeys(k.keys)
}

// Detach stops updating cfg (a tls.Config replaced by a reload).
func (k *TicketKeys) Detach(cfg *tls.Config) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, c := range k.cfgs {
		if c == cfg {
			k.cfgs = append(k.cfgs[:i], k.cfgs[i+1:]...)
			return
		}
	}
}

// Rotate puts a new key first and drops the oldest beyond keep.
func (k *TicketKeys) Rotate() error {
	var key [32]byte
	if _, err := io.ReadFull(k.rand, key[:]); err != nil {
		return fmt.Errorf("tlsterm: ticket key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([][32]byte, 0, k.keep)
	keys = append(keys, key)
	keys = append(keys, k.keys[:min(len(k.keys), k.keep-1)]...)
	k.keys = keys
	for _, c := range k.cfgs {
		c.SetSessionTicketKeys(keys)
	}
	return nil
}

// ClientOptions are the settings of TLS to a backend.
type ClientOptions struct {
	// CAFile verifies the backend's certificate; "" uses the system's CAs.
	CAFile string
	// InsecureSkipVerify accepts any certificate.
	InsecureSkipVerify bool
	// CertFile and KeyFile are a client certificate to present; both or
	// neither.
	CertFile, KeyFile string
	// Sessions caches sessions for resumption; nil resumes none.
	Sessions tls.ClientSessionCache
}

// NewClientConfig is the tls.Config for connections to backends: TLS 1.2
// or newer with the suites of a server config, ALPN http/1.1. The
// caller sets ServerName per backend (Clone). Errors name the file.
func NewClientConfig(o ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       CipherSuites12,
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: o.InsecureSkipVerify,
		ClientSessionCache: o.Sessions,
	}
	if o.CAFile != "" {
		pool, err := LoadCAs(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		c, _, err := LoadPair(Pair{CertFile: o.CertFile, KeyFile: o.KeyFile})
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{*c}
	}
	return cfg, nil
}
