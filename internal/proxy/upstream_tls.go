package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/tlsterm"
)

// HTTPS to backends (docs/tls.md#https-to-backends).
//
// An https:// backend's connections are dialled as usual, off the loop,
// and the dial goroutine then runs the client side of the TLS handshake
// on the socket, blocking, within timeouts.upstreamConnect. The
// tlsterm.Conn travels to the loop with the enrollment (upstream.hs) and
// becomes the peer's record layer in OnOpen: from then on writes are
// sealed (peer.write) and onTraffic decrypts gnet's ciphertext into the
// stash before the state machine reads it, as for TLS clients. Sessions
// are cached per pool, so new connections to a backend resume.

// sessionCacheSize bounds a pool's cached TLS sessions (one or more per
// backend).
const sessionCacheSize = 1024

// upstreamTLS builds the tls.Config of each backend of p (nil for the
// http:// ones), in p.Backends order (members is the same list as the
// snapshot sees it): base, the pool's settings, with the backend's
// server name; or, for a backend with a tls key of its own, a config of
// its settings (already completed from the pool's by config.Parse) with
// a session cache of its own, so that a session verified under one
// backend's CAs is never offered to another. base is nil when no
// https:// backend of p uses the pool's settings. st keeps the pool's
// session cache across reloads.
func upstreamTLS(p *config.Pool, st *poolState, members []member) (base *tls.Config, confs []*tls.Config, err error) {
	confs = make([]*tls.Config, len(p.Backends))
	for i := range p.Backends {
		b := &p.Backends[i]
		if !b.HTTPS() {
			continue
		}
		var conf *tls.Config
		switch be := members[i].backend; {
		case b.TLS != nil:
			if be.sessions == nil {
				be.sessions = tls.NewLRUClientSessionCache(backendSessionCacheSize)
			}
			if conf, err = clientConfig(b.TLS, be.sessions); err != nil {
				return nil, nil, fmt.Errorf("backend %s: %w", b.URL, err)
			}
		default:
			if base == nil {
				if st.sessions == nil {
					st.sessions = tls.NewLRUClientSessionCache(sessionCacheSize)
				}
				if base, err = clientConfig(&p.TLS, st.sessions); err != nil {
					return nil, nil, err
				}
				if p.Upstream.Protocol == config.ProtocolH2 {
					base.NextProtos = []string{alpnH2} // h2upHandshake insists on it
				}
			}
			conf = base.Clone()
		}
		if p.Upstream.Protocol == config.ProtocolH2 {
			conf.NextProtos = []string{alpnH2}
		}
		if conf.ServerName == "" {
			u, err := url.Parse(b.URL)
			if err != nil {
				return nil, nil, err // validated: not reached
			}
			conf.ServerName = u.Hostname()
		}
		confs[i] = conf
	}
	return base, confs, nil
}

// backendSessionCacheSize bounds the cached sessions of a backend with
// tls settings of its own.
const backendSessionCacheSize = 64

// clientConfig is the tls.Config of settings t, caching sessions in
// sessions.
func clientConfig(t *config.BackendTLS, sessions tls.ClientSessionCache) (*tls.Config, error) {
	conf, err := tlsterm.NewClientConfig(tlsterm.ClientOptions{
		CAFile: t.CAFile, InsecureSkipVerify: t.InsecureSkipVerify,
		CertFile: t.CertFile, KeyFile: t.KeyFile, Sessions: sessions,
	})
	if err != nil {
		return nil, err
	}
	conf.ServerName = t.ServerName
	return conf, nil
}

// tlsKey is the error prefix of pool p's tls section.
func tlsKey(p *config.Pool) string {
	if p.Name == config.DefaultPoolName {
		return "tls"
	}
	return "pools." + p.Name + ".tls"
}

// upstreamHandshake runs the client side of a TLS handshake on nc (the
// dial goroutine), by deadline, and hands the record layer to up for
// OnOpen. It closes nc when the handshake fails.
func (up *upstream) upstreamHandshake(nc net.Conn, conf *tls.Config, deadline time.Time) error {
	_ = nc.SetDeadline(deadline)
	tc := tlsterm.Client(nc, conf)
	if err := tc.Handshake(); err != nil {
		_ = nc.Close()
		return fmt.Errorf("TLS handshake with %s: %w", up.be.addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	up.hs.Store(tc)
	return nil
}

// alpnH2 is HTTP/2's ALPN protocol ID over TLS (RFC 9113 3.2).
const alpnH2 = "h2"

// h2Handshake is upstreamHandshake for an HTTP/2 backend (upstream.protocol
// h2): the backend must choose h2 in ALPN, or the connection fails as a
// failed connect would, and says why in the log.
func (h *h2up) h2Handshake(nc net.Conn, conf *tls.Config, deadline time.Time) error {
	_ = nc.SetDeadline(deadline)
	tc := tlsterm.Client(nc, conf)
	err := tc.Handshake()
	if err == nil {
		if p := tc.State().NegotiatedProtocol; p != alpnH2 {
			err = fmt.Errorf("backend did not negotiate h2 in ALPN (got %q); upstream.protocol h2 needs an HTTP/2 server", p)
		}
	}
	if err != nil {
		_ = nc.Close()
		err = fmt.Errorf("TLS handshake with %s: %w", h.be.addr, err)
		h.lp.srv.log.Warn("HTTP/2 backend connection failed", "backend", h.be.url, "err", err.Error())
		return err
	}
	_ = nc.SetDeadline(time.Time{})
	h.hs.Store(tc)
	return nil
}

// tlsOpened takes the record layer the dial goroutine made, if any.
func (up *upstream) tlsOpened() {
	if tc := up.hs.Swap(nil); tc != nil {
		up.tls = tc
	}
}

// tlsDone ends the decryption that began onTraffic: the loop gets its
// buffer back and a record-layer error closes the connection. A
// close_notify (io.EOF) only keeps it out of the pool: the backend's FIN
// follows, and ends a close-delimited body as usual.
func (up *upstream) tlsDone(err error) {
	up.tlsReturn()
	if err == nil || up.closed {
		return
	}
	if errors.Is(err, io.EOF) {
		up.broken = true
		return
	}
	up.fail(failUpstreamReset)
}
