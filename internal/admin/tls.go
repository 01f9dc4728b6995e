package admin

import (
	"net/http"
	"time"

	"github.com/connx/connx/internal/stats"
)

// TLS is the body of GET /api/tls: the HTTPS listener (server.tls).
type TLS struct {
	// Enabled is whether ConnX has an HTTPS listener; without one the
	// lists are empty.
	Enabled bool `json:"enabled"`
	// Handshakes counts finished handshakes, as the
	// connx_tls_handshakes_total metric: completed by version ("1.2",
	// "1.3") with result "full" or "resumed", failed with version "none"
	// and result timeout, protocol, refused or enroll. Never null.
	Handshakes []TLSHandshakes `json:"handshakes"`
	InProgress int64           `json:"in_progress"` // handshakes running now
	// HandshakeMS is the mean duration of the completed handshakes, from
	// the accept; 0 before the first.
	HandshakeMS float64 `json:"handshake_mean_ms"`
	// Certificates are the serving certificates in configuration order.
	// Never null.
	Certificates []Certificate `json:"certificates"`
}

// TLSHandshakes is a number of handshakes with one version and result.
type TLSHandshakes struct {
	Version string `json:"version"`
	Result  string `json:"result"`
	Count   uint64 `json:"count"`
}

// Certificate is one serving certificate.
type Certificate struct {
	CertFile string    `json:"cert_file"` // as configured
	Names    []string  `json:"names"`     // DNS names (the common name when there are none)
	NotAfter time.Time `json:"not_after"` // expiry
	// ExpiresInDays is the time left until NotAfter, in days, negative
	// once expired.
	ExpiresInDays float64 `json:"expires_in_days"`
}

func (s *Server) serveTLS(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, tlsState(s.snapshot()))
}

// tlsState renders snap.TLS.
func tlsState(snap *stats.Snapshot) TLS {
	out := TLS{Handshakes: []TLSHandshakes{}, Certificates: []Certificate{}}
	t := snap.TLS
	if t == nil {
		return out
	}
	out.Enabled, out.InProgress = true, t.InProgress
	for _, h := range t.Handshakes {
		out.Handshakes = append(out.Handshakes, TLSHandshakes{Version: h.Version, Result: h.Result, Count: h.Count})
	}
	if n := t.Duration.Count; n > 0 {
		out.HandshakeMS = float64(time.Duration(t.Duration.Sum*float64(time.Second)/float64(n)).Microseconds()) / 1000
	}
	for _, c := range t.Certificates {
		left := c.NotAfter.Sub(snap.Time).Hours() / 24
		out.Certificates = append(out.Certificates, Certificate{
			CertFile:      c.CertFile,
			Names:         append([]string{}, c.Names...),
			NotAfter:      c.NotAfter.UTC(),
			ExpiresInDays: float64(int64(left*10)) / 10,
		})
	}
	return out
}
