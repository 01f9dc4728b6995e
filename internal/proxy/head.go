package proxy

import (
	"strconv"

	"github.com/connx/connx/internal/http1"
)

// forwardedFlags are the request headers ConnX writes itself.
const forwardedFlags = http1.FlagHopByHop | http1.FlagXForwardedFor |
	http1.FlagXForwardedProto | http1.FlagXForwardedHost

// appendRequestHead appends the head ConnX sends upstream for cl.req:
// origin-form target, the client's headers in order and case minus the
// hop-by-hop ones (and, unless server.underscoresInHeaders, those with "_"
// in their names), Content-Length as the canonical decimal, its own
// framing, and the X-Forwarded-* fields. HTTP/1.0 clients are forwarded as
// HTTP/1.0 with keep-alive, so the backend never answers them with chunked
// framing they cannot read.
func appendRequestHead(b []byte, cl *client, sn *snapshot, be *backend) []byte {
	r := cl.req
	rt := cl.rt
	b = append(b, r.Method...)
	b = append(b, ' ')
	if t := cl.lp.fwd; t != nil {
		b = append(b, t...) // normalised or rewritten by routing
	} else {
		b = append(b, r.Path...)
	}
	if r.Minor == 0 {
		b = append(b, " HTTP/1.0\r\n"...)
	} else {
		b = append(b, " HTTP/1.1\r\n"...)
	}
	host := r.Host
	if r.Authority != nil {
		host = r.Authority
	}
	var id []byte // the client's request ID
	idName := sn.ridHeader
	dropped := 0
	for i := range r.Headers {
		h := &r.Headers[i]
		if h.Flags&forwardedFlags != 0 {
			continue
		}
		if idName != "" && len(h.Name) == len(idName) && http1.EqualFold(h.Name, idName) {
			if id == nil {
				id = h.Value
			}
			continue
		}
		if h.Flags&http1.FlagUnderscore != 0 && !sn.underscores {
			dropped++
			continue
		}
		if sn.subjHeader != "" && isSubjectHeader(h.Name, sn) {
			continue // only ConnX sets it, from a verified certificate
		}
		if rt != nil && len(rt.dropReq) > 0 && listed(rt.dropReq, h.Name) {
			continue // removed or set by the route
		}
		b = append(b, h.Name...)
		b = append(b, ": "...)
		switch {
		case h.Flags&http1.FlagHost != 0:
			b = appendHost(b, host, cl, sn, be)
		case h.Flags&http1.FlagContentLength != 0:
			// "0044" goes on as "44": a backend that reads leading zeros
			// as octal cannot frame the body differently.
			b = strconv.AppendInt(b, r.ContentLength, 10)
		default:
			b = append(b, h.Value...)
		}
		b = append(b, "\r\n"...)
	}
	if dropped > 0 {
		cl.lp.st.dropped.Add(uint64(dropped))
	}
	if r.Host == nil {
		b = append(b, "Host: "...)
		b = appendHost(b, host, cl, sn, be)
		b = append(b, "\r\n"...)
	}
	if rt != nil {
		b = append(b, rt.setReq...)
	}
	if r.Chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if r.Minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	if cl.upgrade != nil {
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, cl.upgrade...)
		b = append(b, "\r\n"...)
	}
	if idName != "" {
		b = appendRequestID(b, cl, sn, id)
	}
	var fwd uint8 // the X-Forwarded-* fields the route sets or removes
	if rt != nil {
		fwd = rt.fwd
	}
	if fwd&fwdFor == 0 {
		b = append(b, "X-Forwarded-For: "...)
		for i := range r.Headers {
			if h := &r.Headers[i]; h.Flags&http1.FlagXForwardedFor != 0 && len(h.Value) > 0 {
				b = append(b, h.Value...)
				b = append(b, ", "...)
			}
		}
		b = cl.ip.AppendTo(b)
		b = append(b, "\r\n"...)
	}
	if fwd&fwdProto == 0 {
		if cl.tls != nil {
			b = append(b, "X-Forwarded-Proto: https\r\n"...)
		} else {
			b = append(b, "X-Forwarded-Proto: http\r\n"...)
		}
	}
	if sn.subjHeader != "" {
		b = appendSubject(b, cl, sn)
	}
	if len(host) > 0 && fwd&fwdHost == 0 {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, host...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendHost appends the Host sent upstream: the route's hostRewrite, or
// with server.preserveHost the client's host, or the backend's address.
func appendHost(b, host []byte, cl *client, sn *snapshot, be *backend) []byte {
	if cl.rt != nil && cl.rt.host != "" {
		return append(b, cl.rt.host...)
	}
	if !sn.preserve || len(host) == 0 {
		return append(b, be.addr...)
	}
	return append(b, host...)
}

// appendResponseHead appends the head ConnX sends the client for r.
func appendResponseHead(b []byte, r *http1.Response, kind http1.BodyKind, cl *client) []byte {
	var drop []string
	if cl.rt != nil {
		drop = cl.rt.dropResp
	}
	b = appendStatusAndFields(b, r, drop)
	if cl.rt != nil {
		b = append(b, cl.rt.setResp...)
	}
	b = appendResponseID(b, r, cl)
	return appendHeadEnd(b, kind, cl)
}

// keepOpen reports whether the connection may stay open after the
// response being written; n is how many buffered bytes are the current
// request's (not yet consumed). Shutdown may have begun after the request
// was read (keepAlive was decided then), and its loop may not have
// drained yet: exchangeDone will close a client with nothing more
// buffered, so the response must say so.
func (cl *client) keepOpen(n int) bool {
	if cl.keepAlive && cl.lp.srv.draining.Load() && cl.buffered() <= n {
		cl.keepAlive = false
	}
	return cl.keepAlive
}

// appendHeadEnd ends a response head for the client: its framing and
// connection fields, and the blank line.
func appendHeadEnd(b []byte, kind http1.BodyKind, cl *client) []byte {
	if kind == http1.BodyChunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case cl.closeAfter || !cl.keepOpen(0):
		b = append(b, "Connection: close\r\n"...)
	case cl.minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendStatusAndFields appends r's status line and its end-to-end fields
// (hop-by-hop ones dropped; Content-Length once, as the canonical decimal,
// where the backend may have repeated it or written leading zeros); the
// caller adds its own and the blank line. Fields named in drop are left
// out.
func appendStatusAndFields(b []byte, r *http1.Response, drop []string) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = append(b, r.Reason...)
	b = append(b, "\r\n"...)
	clDone := false
	for i := range r.Headers {
		h := &r.Headers[i]
		isCL := h.Flags&http1.FlagContentLength != 0
		if h.Flags&http1.FlagHopByHop != 0 || isCL && clDone || len(drop) > 0 && listed(drop, h.Name) {
			continue
		}
		b = append(b, h.Name...)
		b = append(b, ": "...)
		if isCL {
			clDone = true
			b = strconv.AppendInt(b, r.ContentLength, 10)
		} else {
			b = append(b, h.Value...)
		}
		b = append(b, "\r\n"...)
	}
	return b
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }
