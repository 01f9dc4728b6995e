package proxy

import (
	"bytes"
	"net"
	"strconv"

	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/route"
)

// server.redirectHTTP (docs/tls.md#redirecting-http-to-https): the
// plaintext port answers 308 to the same URL on the HTTPS port.

// redirectHead starts the answer of a redirected request.
const redirectHead = "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://"

// redirectsHTTPS reports whether the request r, which arrived on the
// plaintext port, is to be redirected: server.redirectHTTP is on and its
// normalised path is under no exempt prefix (a path that does not
// normalise is redirected).
func (cl *client) redirectsHTTPS(r *http1.Request) bool {
	sn := cl.sn
	if !sn.redirectHTTP || cl.tls != nil {
		return false
	}
	if len(sn.redirectExempt) == 0 {
		return true
	}
	path, _, err := route.Normalize(cl.lp.norm[:0], r.Path)
	if err != nil {
		return true
	}
	if cap(path) > cap(cl.lp.norm) && len(path) > 0 && len(r.Path) > 0 && &path[0] != &r.Path[0] {
		cl.lp.norm = path[:0] // keep the grown buffer, as routeRequest does
	}
	for _, p := range sn.redirectExempt {
		if bytes.HasPrefix(path, []byte(p)) {
			return false
		}
	}
	return true
}

// redirectHTTPS answers the request r (n bytes of head) with a 308 to
// https://HOST[:PORT]TARGET: the client's host without its port (the
// connection's local address when it sent none), the HTTPS port unless
// it is 443, and the request target as received.
func (cl *client) redirectHTTPS(r *http1.Request, n int) {
	b := append(cl.lp.scratch[:0], redirectHead...)
	host := r.Host
	if r.Authority != nil {
		host = r.Authority
	}
	if len(host) > 0 {
		b = append(b, hostOnly(host)...)
	} else if a, ok := cl.c.LocalAddr().(*net.TCPAddr); ok {
		if ip := a.IP; ip.To4() == nil {
			b = append(append(append(b, '['), ip.String()...), ']')
		} else {
			b = append(b, ip.String()...)
		}
	}
	if port := cl.lp.srv.tls.port; port != 443 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(port), 10)
	}
	if len(r.Path) > 0 && r.Path[0] == '/' {
		b = append(b, r.Path...)
	} else {
		b = append(b, '/') // "*" (OPTIONS) or an absolute-form target's empty path
	}
	b = append(b, "\r\nContent-Length: 0\r\n"...)
	cl.answer(308, errNone, b, nil, n)
}

// hostOnly is host (a Host field's value) without its port.
func hostOnly(host []byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		return host[:i]
	}
	return host
}
