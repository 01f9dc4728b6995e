package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// maxFuzzLen bounds fuzz inputs so that feeding them one byte at a time
// stays cheap.
const maxFuzzLen = 4096

// feedRequest feeds data[:i] for growing i, step bytes at a time, to one
// Request, and returns the first result other than ErrNeedMore.
func feedRequest(data []byte, step int) (int, string, error) {
	var r Request
	for i := 0; ; {
		i += step
		if i > len(data) {
			i = len(data)
		}
		n, err := ParseRequest(data[:i], &r, nil)
		if err != ErrNeedMore || i == len(data) {
			if err == nil {
				return n, describeRequest(&r), nil
			}
			return n, "", err
		}
	}
}

// feedResponse is feedRequest for responses.
func feedResponse(data []byte, step int) (int, string, error) {
	var r Response
	for i := 0; ; {
		i += step
		if i > len(data) {
			i = len(data)
		}
		n, err := ParseResponse(data[:i], &r, nil)
		if err != ErrNeedMore || i == len(data) {
			if err == nil {
				return n, describeResponse(&r), nil
			}
			return n, "", err
		}
	}
}

// trimEmptyLines drops the empty lines before a start line, which
// RFC 9112 2.2 lets a recipient skip and which net/http's ReadRequest and
// ReadResponse do not skip.
func trimEmptyLines(b []byte) []byte {
	for bytes.HasPrefix(b, []byte("\r\n")) {
		b = b[2:]
	}
	return b
}

func addRequestSeeds(f *testing.F) {
	for _, tc := range validRequests {
		f.Add([]byte(tc.in + tc.rest))
	}
	for _, tc := range invalidRequests {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(browserRequest))
	for _, line := range fieldLineEdges {
		f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n" + line + "\r\n"))
	}
	for _, s := range []string{
		"GET http://a.b:/x%41?%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://[::ffff:1.2.3.4]:80 HTTP/1.1\r\nHost: [::1]\r\n\r\n",
		"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /?a=%zz&b HTTP/1.0\r\nPragma: no-cache\r\nConnection: keep-alive\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: Upgrade, x\r\nUpgrade: h2c\r\nx: 1\r\n\r\n",
		"GET /\x80\xff HTTP/1.1\r\nHost: a\r\nCookie: a=b\r\nCookie: c=d\r\n\r\n",
		// Rejected on their first byte; versions above 1.1; OPTIONS with
		// an empty absolute-form path; underscores in names.
		"\x00GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\n\r\x00",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
		"PUT / HTTP/1.5\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"OPTIONS http://a.b:80 HTTP/1.1\r\nHost: a.b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\nTransfer_Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzRequestDifferential checks that ParseRequest gives the same result
// however the input is split, and that whenever it accepts a head,
// net/http's ReadRequest accepts it too and agrees on method, target,
// version, Host, the fields (as a multiset by canonical name), the body
// framing and connection persistence.
func FuzzRequestDifferential(f *testing.F) {
	addRequestSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzLen {
			return
		}
		n, desc, err := feedRequest(data, len(data)+1)
		for _, step := range []int{1, 7} {
			if sn, sdesc, serr := feedRequest(data, step); sn != n || serr != err || sdesc != desc {
				t.Fatalf("step %d: %d, %v\n%s\nwhole: %d, %v\n%s", step, sn, serr, sdesc, n, err, desc)
			}
		}
		if err != nil {
			return
		}
		var r Request
		ParseRequest(data, &r, nil)
		head := trimEmptyLines(data[:n])
		req, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if herr != nil {
			// net/url decodes the path of origin-form and absolute-form
			// targets and rejects malformed percent-escapes ("/%zz");
			// RFC 9112 request-target syntax does not constrain them and
			// the proxy forwards the target unchanged, so this is not a
			// framing disagreement.
			var ee url.EscapeError
			if errors.As(herr, &ee) {
				return
			}
			t.Fatalf("we accept %q (%s)\nnet/http rejects it: %v", head, desc, herr)
		}
		// net/http reports HTTP/1.2 to HTTP/1.9 as they are; we process
		// them as HTTP/1.1 (RFC 9110 2.5), as its server does too.
		if req.Method != string(r.Method) || req.RequestURI != string(r.Target) || min(req.ProtoMinor, 1) != r.Minor {
			t.Errorf("request line: net/http %q %q 1.%d; ours %q %q 1.%d",
				req.Method, req.RequestURI, req.ProtoMinor, r.Method, r.Target, r.Minor)
		}
		wantHost := string(r.Host)
		if r.Authority != nil {
			wantHost = string(r.Authority) // RFC 9112 3.2.2
		}
		if req.Host != wantHost {
			t.Errorf("host: net/http %q, ours %q", req.Host, wantHost)
		}

		ours := http.Header{}
		for _, h := range r.Headers {
			ours.Add(string(h.Name), string(h.Value))
		}
		// net/http moves Host into req.Host, and for a chunked request
		// Transfer-Encoding into req.TransferEncoding and Trailer into
		// req.Trailer.
		ours.Del("Host")
		if r.Chunked {
			ours.Del("Transfer-Encoding")
			ours.Del("Trailer")
		}
		theirs := req.Header.Clone()
		// net/http adds "Cache-Control: no-cache" to HTTP/1.0-style
		// "Pragma: no-cache" requests without Cache-Control.
		if _, ok := ours["Cache-Control"]; !ok {
			delete(theirs, "Cache-Control")
		}
		if len(ours) == 0 {
			ours = nil
		}
		if len(theirs) == 0 {
			theirs = nil
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("headers:\nnet/http %q\nours     %q", theirs, ours)
		}

		chunked := len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked"
		if chunked != r.Chunked {
			t.Errorf("chunked: net/http %v, ours %v", req.TransferEncoding, r.Chunked)
		}
		wantCL := r.ContentLength
		switch {
		case r.Chunked:
			wantCL = -1
		case wantCL < 0:
			wantCL = 0 // net/http: a request without framing has no body
		}
		if req.ContentLength != wantCL {
			t.Errorf("content length: net/http %d, ours %d", req.ContentLength, r.ContentLength)
		}
		if req.Close == r.KeepAlive {
			t.Errorf("close: net/http %v, ours keep-alive %v", req.Close, r.KeepAlive)
		}
	})
}

func addResponseSeeds(f *testing.F) {
	for _, tc := range validResponses {
		f.Add([]byte(tc.in + tc.rest))
	}
	for _, tc := range invalidResponses {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(typicalResponse))
	for _, line := range fieldLineEdges {
		f.Add([]byte("HTTP/1.1 200 OK\r\n" + line + "\r\n"))
	}
}

// FuzzResponse checks that ParseResponse never panics and gives the same
// result however the input is split. Where it accepts a head without
// Transfer-Encoding, net/http's ReadResponse must accept it too and agree on
// status (HTTP/1.x above 1.1 being 1.1 for us), fields, Content-Length and
// persistence. Where it accepts one with Transfer-Encoding, that is a
// single chunked, which ReadResponse must accept as such.
func FuzzResponse(f *testing.F) {
	addResponseSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzLen {
			return
		}
		n, desc, err := feedResponse(data, len(data)+1)
		for _, step := range []int{1, 7} {
			if sn, sdesc, serr := feedResponse(data, step); sn != n || serr != err || sdesc != desc {
				t.Fatalf("step %d: %d, %v\n%s\nwhole: %d, %v\n%s", step, sn, serr, sdesc, n, err, desc)
			}
		}
		if err != nil {
			if errStatus(err) != 502 && err != ErrNeedMore {
				t.Fatalf("error %v has status %d", err, errStatus(err))
			}
			return
		}
		var r Response
		ParseResponse(data, &r, nil)
		head := trimEmptyLines(data[:n])
		resp, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
		if herr != nil {
			t.Fatalf("we accept %q (%s)\nnet/http rejects it: %v", head, desc, herr)
		}
		if r.Chunked && (len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked") {
			t.Errorf("transfer coding: net/http %q, ours chunked", resp.TransferEncoding)
		}
		if resp.StatusCode != r.Status || min(resp.ProtoMinor, 1) != r.Minor {
			t.Errorf("status: net/http %d 1.%d, ours %d 1.%d", resp.StatusCode, resp.ProtoMinor, r.Status, r.Minor)
		}
		closeOption := false
		ours := http.Header{}
		for _, h := range r.Headers {
			if EqualFold(h.Name, "connection") {
				for e, rest, ok := nextElement(h.Value); ok; e, rest, ok = nextElement(rest) {
					closeOption = closeOption || EqualFold(e, "close")
				}
			}
			// net/http keeps one of repeated identical Content-Lengths.
			if h.Flags&FlagContentLength != 0 && ours.Get("Content-Length") != "" {
				continue
			}
			ours.Add(string(h.Name), string(h.Value))
		}
		// net/http drops Connection from an HTTP/1.1 response with the
		// close option, after noting it in resp.Close, and moves
		// Transfer-Encoding and (for chunked) Trailer out of the header.
		if r.Minor == 1 && closeOption {
			ours.Del("Connection")
		}
		if r.Chunked {
			ours.Del("Transfer-Encoding")
			ours.Del("Trailer")
		}
		if len(ours) == 0 {
			ours = nil
		}
		theirs := resp.Header
		if len(theirs) == 0 {
			theirs = nil
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("headers:\nnet/http %q\nours     %q", theirs, ours)
		}
		if r.Status >= 200 && r.Status != 204 && r.Status != 304 {
			if resp.ContentLength != r.ContentLength {
				t.Errorf("content length: net/http %d, ours %d", resp.ContentLength, r.ContentLength)
			}
			if keep := r.KeepAlive && r.BodyKind(false) != BodyUntilClose; resp.Close == keep {
				t.Errorf("close: net/http %v, ours keep-alive %v", resp.Close, keep)
			}
		}
	})
}

var bwsBeforeExt = regexp.MustCompile(`(?m)^[0-9a-fA-F]+[ \t]+;`)

// FuzzChunked checks that ChunkedScanner never panics, gives the same
// result whole, split in two anywhere and byte by byte, and that a body it
// accepts is also accepted by net/http's chunked reader, which decodes as
// many bytes as Payload counts.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b\r\nhello\r\n0\r\nX-T: v\r\n\r\nGET / HTTP/1.1\r\n",
		"a \t;x\r\n0123456789\r\n0\r\n\r\n",
		"000000000000000A\r\n0123456789\r\n0\r\n\r\n",
		"-5\r\n", "\r\n", "5\nhello", "5\r\nhelloX", "0\r\nContent-Length: 1\r\n\r\n",
		"0\r\nX: y\r\n z\r\n\r\n", "ffffffffffffffff\r\n", "1;\x01\r\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		if len(data) > maxFuzzLen {
			return
		}
		n, done, err := scanAll([][]byte{data}, nil)
		if err != nil && (n != 0 || done) {
			t.Fatalf("error %v with n=%d done=%v", err, n, done)
		}
		if err == nil && !done && n != len(data) {
			t.Fatalf("not done but consumed %d of %d", n, len(data))
		}
		k := int(split) % (len(data) + 1)
		var bytewise [][]byte
		for i := range data {
			bytewise = append(bytewise, data[i:i+1])
		}
		for _, pieces := range [][][]byte{{data[:k], data[k:]}, bytewise} {
			pn, pd, pe := scanAll(pieces, nil)
			if pe != err || (err == nil && (pn != n || pd != done)) {
				t.Fatalf("split: %d, %v, %v; whole: %d, %v, %v", pn, pd, pe, n, done, err)
			}
		}
		if !done {
			return
		}
		var s ChunkedScanner
		s.Scan(data, nil)
		decoded, rerr := io.Copy(io.Discard, httputil.NewChunkedReader(bytes.NewReader(data[:n])))
		if rerr == nil && decoded != s.Payload() {
			t.Fatalf("Payload %d; net/http's chunked reader decoded %d bytes from %q", s.Payload(), decoded, data[:n])
		}
		if rerr != nil {
			// net/http reads a chunk-size line into a 4096-byte buffer,
			// so it refuses an extension near our 4096-byte limit; and it
			// refuses bodies with too much framing relative to data, a
			// resource limit rather than a framing rule.
			if errors.Is(rerr, bufio.ErrBufferFull) || strings.Contains(rerr.Error(), "too long") ||
				strings.Contains(rerr.Error(), "too much non-data") {
				return
			}
			// net/http does not accept the BWS that RFC 9112 7.1.1 allows
			// between chunk-size and ";".
			if strings.Contains(rerr.Error(), "invalid byte in chunk length") && bwsBeforeExt.Match(data[:n]) {
				return
			}
			t.Fatalf("we accept %q; net/http's chunked reader: %v", data[:n], rerr)
		}
	})
}
