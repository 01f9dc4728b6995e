package http1

import (
	"fmt"
	"strings"
)

// str renders a []byte field, telling nil from empty.
func str(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return string(b)
}

// flagString renders Header.Flags as letters: h hop-by-hop, H Host,
// f X-Forwarded-For, p X-Forwarded-Proto, o X-Forwarded-Host,
// L Content-Length, T Transfer-Encoding, U underscore in the name.
func flagString(f uint8) string {
	var sb strings.Builder
	for i, c := range "hHfpoLTU" {
		if f&(1<<i) != 0 {
			sb.WriteRune(c)
		}
	}
	return sb.String()
}

// headerStrings renders headers as "Name=Value/flags".
func headerStrings(hs []Header) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = fmt.Sprintf("%s=%s/%s", h.Name, h.Value, flagString(h.Flags))
	}
	return out
}

// describeRequest renders every result field of a parsed request.
func describeRequest(r *Request) string {
	return fmt.Sprintf("method=%s target=%s path=%s authority=%s minor=%d host=%s cl=%d chunked=%v keepalive=%v expect=%v upgrade=%v headlen=%d headers=%q body=%d",
		str(r.Method), str(r.Target), str(r.Path), str(r.Authority), r.Minor, str(r.Host),
		r.ContentLength, r.Chunked, r.KeepAlive, r.Expect100, r.Upgrade, r.HeadLen,
		headerStrings(r.Headers), r.BodyKind())
}

// describeResponse renders every result field of a parsed response.
func describeResponse(r *Response) string {
	return fmt.Sprintf("minor=%d status=%d reason=%s cl=%d chunked=%v keepalive=%v upgrade=%v headlen=%d headers=%q body=%d/%d",
		r.Minor, r.Status, str(r.Reason), r.ContentLength, r.Chunked, r.KeepAlive, r.Upgrade,
		r.HeadLen, headerStrings(r.Headers), r.BodyKind(false), r.BodyKind(true))
}

// errStatus returns the Status of a *Error, 0 for nil, and -1 for
// ErrNeedMore or any other error.
func errStatus(err error) int {
	switch e := err.(type) {
	case nil:
		return 0
	case *Error:
		return e.Status
	}
	return -1
}

// parseRequestBytewise feeds data to ParseRequest one byte at a time, in a
// fresh buffer each call whose predecessor is then overwritten, as a
// reallocating or reused connection buffer would be. It returns the first
// result other than ErrNeedMore, or ErrNeedMore.
func parseRequestBytewise(data []byte, r *Request, lim *Limits) (int, string, error) {
	var prev []byte
	for i := 1; i <= len(data); i++ {
		buf := append([]byte(nil), data[:i]...)
		for k := range prev {
			prev[k] = '!'
		}
		n, err := ParseRequest(buf, r, lim)
		if err != ErrNeedMore {
			d := ""
			if err == nil {
				d = describeRequest(r)
			}
			return n, d, err
		}
		prev = buf
	}
	return 0, "", ErrNeedMore
}

// parseResponseBytewise is parseRequestBytewise for responses.
func parseResponseBytewise(data []byte, r *Response, lim *Limits) (int, string, error) {
	var prev []byte
	for i := 1; i <= len(data); i++ {
		buf := append([]byte(nil), data[:i]...)
		for k := range prev {
			prev[k] = '!'
		}
		n, err := ParseResponse(buf, r, lim)
		if err != ErrNeedMore {
			d := ""
			if err == nil {
				d = describeResponse(r)
			}
			return n, d, err
		}
		prev = buf
	}
	return 0, "", ErrNeedMore
}
