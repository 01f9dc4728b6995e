package http1

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type reqWant struct {
	method, target, path, authority, host string // "<nil>" for nil
	minor                                 int
	cl                                    int64
	chunked, keepAlive, expect, upgrade   bool
	body                                  BodyKind
	headers                               []string // "Name=Value/flags"
}

var validRequests = []struct {
	name string
	in   string
	rest string // bytes after the head: body or next request
	want reqWant
}{
	{
		name: "GET",
		in:   "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "example.com", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=example.com/H"}},
	},
	{
		name: "POST with Content-Length",
		in:   "POST /submit?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
		rest: "hello",
		want: reqWant{method: "POST", target: "/submit?x=1&y=%20", path: "/submit?x=1&y=%20", authority: "<nil>", host: "a", minor: 1, cl: 5, keepAlive: true, body: BodyLength,
			headers: []string{"Host=a/H", "Content-Length=5/L", "Content-Type=text/plain/"}},
	},
	{
		name: "chunked",
		in:   "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		rest: "5\r\nhello\r\n0\r\n\r\n",
		want: reqWant{method: "POST", target: "/up", path: "/up", authority: "<nil>", host: "a", minor: 1, cl: -1, chunked: true, keepAlive: true, body: BodyChunked,
			headers: []string{"Host=a/H", "Transfer-Encoding=chunked/hT"}},
	},
	{
		name: "chunked in another case with OWS",
		in:   "PUT /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding: \t CHUNKED \t\r\n\r\n",
		want: reqWant{method: "PUT", target: "/x", path: "/x", authority: "<nil>", host: "a", minor: 1, cl: -1, chunked: true, keepAlive: true, body: BodyChunked,
			headers: []string{"Host=a/H", "transfer-encoding=CHUNKED/hT"}},
	},
	{
		name: "chunked with HTAB OWS",
		in:   "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\t\r\n\r\n",
		want: reqWant{method: "POST", target: "/x", path: "/x", authority: "<nil>", host: "a", minor: 1, cl: -1, chunked: true, keepAlive: true, body: BodyChunked,
			headers: []string{"Host=a/H", "Transfer-Encoding=chunked/hT"}},
	},
	{
		name: "lookalike field names are plain fields",
		in:   "POST /x HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length-X: 5\r\n\r\n",
		want: reqWant{method: "POST", target: "/x", path: "/x", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H", "Transfer_Encoding=chunked/U", "Content-Length-X=5/"}},
	},
	{
		name: "underscores flagged anywhere in a name",
		in:   "GET / HTTP/1.1\r\nHost: a\r\n_X: 1\r\nX_: 2\r\nContent_Length: 3\r\nX-Y: 4\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H", "_X=1/U", "X_=2/U", "Content_Length=3/U", "X-Y=4/"}},
	},
	{
		name: "CONNECT IPv6",
		in:   "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
		want: reqWant{method: "CONNECT", target: "[::1]:443", path: "<nil>", authority: "[::1]:443", host: "[::1]:443", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=[::1]:443/H"}},
	},
	{
		name: "HTTP/1.0 keep-alive",
		in:   "GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
		want: reqWant{method: "GET", target: "/old", path: "/old", authority: "<nil>", host: "<nil>", minor: 0, cl: -1, keepAlive: true,
			headers: []string{"Connection=Keep-Alive/h"}},
	},
	{
		name: "HTTP/1.0 without keep-alive",
		in:   "GET /old HTTP/1.0\r\nHost: a\r\n\r\n",
		want: reqWant{method: "GET", target: "/old", path: "/old", authority: "<nil>", host: "a", minor: 0, cl: -1,
			headers: []string{"Host=a/H"}},
	},
	{
		name: "HTTP/1.0 keep-alive and close",
		in:   "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "<nil>", cl: -1,
			headers: []string{"Connection=keep-alive, close/h"}},
	},
	{
		name: "HTTP/1.1 close",
		in:   "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1,
			headers: []string{"Host=a/H", "Connection=close/h"}},
	},
	{
		name: "absolute-form",
		in:   "GET http://a.b:8/x?y HTTP/1.1\r\nHost: ignored\r\n\r\n",
		want: reqWant{method: "GET", target: "http://a.b:8/x?y", path: "/x?y", authority: "a.b:8", host: "ignored", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=ignored/H"}},
	},
	{
		name: "absolute-form https upper case, empty path",
		in:   "GET HTTPS://a.b HTTP/1.1\r\nHost: a.b\r\n\r\n",
		want: reqWant{method: "GET", target: "HTTPS://a.b", path: "/", authority: "a.b", host: "a.b", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a.b/H"}},
	},
	{
		name: "absolute-form IPv6",
		in:   "GET http://[2001:db8::1]:8080/p HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
		want: reqWant{method: "GET", target: "http://[2001:db8::1]:8080/p", path: "/p", authority: "[2001:db8::1]:8080", host: "[2001:db8::1]:8080", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=[2001:db8::1]:8080/H"}},
	},
	{
		name: "OPTIONS absolute-form with empty path is forwarded as *",
		in:   "OPTIONS http://a.b:8 HTTP/1.1\r\nHost: a.b:8\r\n\r\n",
		want: reqWant{method: "OPTIONS", target: "http://a.b:8", path: "*", authority: "a.b:8", host: "a.b:8", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a.b:8/H"}},
	},
	{
		name: "OPTIONS absolute-form with a path keeps it",
		in:   "OPTIONS http://a.b/ HTTP/1.1\r\nHost: a.b\r\n\r\n",
		want: reqWant{method: "OPTIONS", target: "http://a.b/", path: "/", authority: "a.b", host: "a.b", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a.b/H"}},
	},
	{
		name: "HTTP/1.2 is processed as HTTP/1.1",
		in:   "POST / HTTP/1.2\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		want: reqWant{method: "POST", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1, chunked: true, keepAlive: true, body: BodyChunked,
			headers: []string{"Host=a/H", "Transfer-Encoding=chunked/hT"}},
	},
	{
		name: "HTTP/1.9 is processed as HTTP/1.1",
		in:   "GET / HTTP/1.9\r\nHost: a\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H"}},
	},
	{
		name: "Trailer is an end-to-end field",
		in:   "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n",
		want: reqWant{method: "POST", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1, chunked: true, keepAlive: true, body: BodyChunked,
			headers: []string{"Host=a/H", "Trailer=X-Sum/", "Transfer-Encoding=chunked/hT"}},
	},
	{
		name: "OPTIONS *",
		in:   "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		want: reqWant{method: "OPTIONS", target: "*", path: "*", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H"}},
	},
	{
		name: "CONNECT",
		in:   "CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n",
		want: reqWant{method: "CONNECT", target: "a.b:443", path: "<nil>", authority: "a.b:443", host: "a.b:443", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a.b:443/H"}},
	},
	{
		name: "header order and case kept",
		in:   "GET /p HTTP/1.1\r\nX-B: 1\r\nx-a: 2\r\nHOST: h\r\nX-B: 3\r\n\r\n",
		want: reqWant{method: "GET", target: "/p", path: "/p", authority: "<nil>", host: "h", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"X-B=1/", "x-a=2/", "HOST=h/H", "X-B=3/"}},
	},
	{
		name: "OWS trimmed, empty value, inner spaces kept",
		in:   "GET / HTTP/1.1\r\nHost:a\r\nX-E:\r\nX-S: \t\r\nX-V: \t a  b \t \r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H", "X-E=/", "X-S=/", "X-V=a  b/"}},
	},
	{
		name: "empty lines before the request line",
		in:   "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H"}},
	},
	{
		name: "Expect 100-continue",
		in:   "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 0\r\n\r\n",
		want: reqWant{method: "PUT", target: "/f", path: "/f", authority: "<nil>", host: "a", minor: 1, cl: 0, keepAlive: true, expect: true,
			headers: []string{"Host=a/H", "Expect=100-Continue/", "Content-Length=0/L"}},
	},
	{
		name: "Expect ignored on HTTP/1.0, other expectation ignored",
		in:   "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nExpect: x\r\n\r\n",
		want: reqWant{method: "PUT", target: "/f", path: "/f", authority: "<nil>", host: "<nil>", cl: -1,
			headers: []string{"Expect=100-continue/", "Expect=x/"}},
	},
	{
		name: "websocket upgrade",
		in:   "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
		want: reqWant{method: "GET", target: "/ws", path: "/ws", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true, upgrade: true,
			headers: []string{"Host=a/H", "Connection=keep-alive, Upgrade/h", "Upgrade=websocket/h"}},
	},
	{
		name: "Upgrade without the Connection option",
		in:   "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
		want: reqWant{method: "GET", target: "/ws", path: "/ws", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H", "Upgrade=websocket/h"}},
	},
	{
		name: "Connection options mark fields hop-by-hop, never Host or Content-Length",
		in:   "POST / HTTP/1.1\r\nX-Custom: 1\r\nHost: a\r\nContent-Length: 1\r\nConnection: x-custom, ,host, content-length, X-Other\r\nx-other: 2\r\nKeep-Alive: 5\r\nProxy-Connection: k\r\nTE: trailers\r\nTrailer: X-T\r\n\r\n",
		want: reqWant{method: "POST", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: 1, keepAlive: true, body: BodyLength,
			headers: []string{"X-Custom=1/h", "Host=a/H", "Content-Length=1/L", "Connection=x-custom, ,host, content-length, X-Other/h", "x-other=2/h", "Keep-Alive=5/h", "Proxy-Connection=k/h", "TE=trailers/h", "Trailer=X-T/"}},
	},
	{
		name: "X-Forwarded flags",
		in:   "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-proto: https\r\nX-FORWARDED-HOST: b\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H", "X-Forwarded-For=1.2.3.4/f", "x-forwarded-proto=https/p", "X-FORWARDED-HOST=b/o"}},
	},
	{
		name: "Content-Length with leading zeros and OWS",
		in:   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  000123 \r\n\r\n",
		want: reqWant{method: "POST", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: 123, keepAlive: true, body: BodyLength,
			headers: []string{"Host=a/H", "Content-Length=000123/L"}},
	},
	{
		name: "Content-Length 18 digits",
		in:   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n",
		want: reqWant{method: "POST", target: "/", path: "/", authority: "<nil>", host: "a", minor: 1, cl: 999999999999999999, keepAlive: true, body: BodyLength,
			headers: []string{"Host=a/H", "Content-Length=999999999999999999/L"}},
	},
	{
		name: "obs-text in target and value",
		in:   "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\nX-U: \xff\x80\r\n\r\n",
		want: reqWant{method: "GET", target: "/caf\xc3\xa9", path: "/caf\xc3\xa9", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H", "X-U=\xff\x80/"}},
	},
	{
		name: "empty Host",
		in:   "GET / HTTP/1.1\r\nHost:\r\n\r\n",
		want: reqWant{method: "GET", target: "/", path: "/", authority: "<nil>", host: "", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=/H"}},
	},
	{
		name: "extension method, token chars in names",
		in:   "M-SEARCH /x HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
		want: reqWant{method: "M-SEARCH", target: "/x", path: "/x", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H", "!#$%&'*+-.^_`|~09azAZ=v/U"}},
	},
	{
		name: "pipelined request after the head",
		in:   "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
		rest: "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		want: reqWant{method: "GET", target: "/1", path: "/1", authority: "<nil>", host: "a", minor: 1, cl: -1, keepAlive: true,
			headers: []string{"Host=a/H"}},
	},
}

func checkRequest(t *testing.T, r *Request, want reqWant) {
	t.Helper()
	got := reqWant{
		method: str(r.Method), target: str(r.Target), path: str(r.Path), authority: str(r.Authority), host: str(r.Host),
		minor: r.Minor, cl: r.ContentLength, chunked: r.Chunked, keepAlive: r.KeepAlive, expect: r.Expect100, upgrade: r.Upgrade,
		body: r.BodyKind(), headers: headerStrings(r.Headers),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseRequestValid(t *testing.T) {
	for _, tc := range validRequests {
		t.Run(tc.name, func(t *testing.T) {
			buf := []byte(tc.in + tc.rest)
			var r Request
			n, err := ParseRequest(buf, &r, nil)
			if err != nil || n != len(tc.in) || r.HeadLen != n {
				t.Fatalf("ParseRequest = %d, %v (HeadLen %d); want %d, nil", n, err, r.HeadLen, len(tc.in))
			}
			checkRequest(t, &r, tc.want)
			whole := describeRequest(&r)

			// Calling again returns the same result.
			if n2, err := ParseRequest(buf, &r, nil); n2 != n || err != nil || describeRequest(&r) != whole {
				t.Errorf("second call = %d, %v", n2, err)
			}

			// One byte at a time, same Request without Reset.
			var rb Request
			nb, d, err := parseRequestBytewise(buf, &rb, nil)
			if nb != n || err != nil || d != whole {
				t.Errorf("byte at a time = %d, %v\n%s\nwant\n%s", nb, err, d, whole)
			}

			// Reset and reuse gives the same result again.
			r.Reset()
			if n3, err := ParseRequest(buf, &r, nil); n3 != n || err != nil || describeRequest(&r) != whole {
				t.Errorf("after Reset = %d, %v", n3, err)
			}
		})
	}
}

func TestParseRequestPipelined(t *testing.T) {
	buf := []byte("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: c\r\n\r\n")
	var r Request
	var paths []string
	for len(buf) > 0 {
		r.Reset()
		n, err := ParseRequest(buf, &r, nil)
		if err != nil {
			t.Fatalf("ParseRequest(%q) = %d, %v", buf, n, err)
		}
		paths = append(paths, string(r.Path)+"@"+string(r.Host))
		buf = buf[n:]
		if r.BodyKind() == BodyLength {
			buf = buf[r.ContentLength:]
		}
	}
	if want := []string{"/1@a", "/2@b", "/3@c"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("got %q, want %q", paths, want)
	}
}

var invalidRequests = []struct {
	name   string
	in     string
	status int
}{
	// Framing: Content-Length and Transfer-Encoding.
	{"CL then TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"TE then CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
	{"CL and unsupported TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
	{"duplicate CL same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400},
	{"duplicate CL different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
	{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
	{"CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
	{"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
	{"CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400},
	{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
	{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
	{"CL 19 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n", 400},
	{"CL vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\x0b\r\n\r\n", 400},
	{"chunked, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
	{"two TE lines chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501},
	{"chunked with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 501},
	{"chunked vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n", 400},
	{"chunked NUL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x00\r\n\r\n", 400},
	{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
	{"TE chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501},
	{"TE lines gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
	{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501},
	{"TE quoted chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 501},
	{"TE chunked then identity line", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 501},
	{"TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
	{"TE with NUL in name", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\x00: chunked\r\n\r\n", 400},
	{"TE obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 400},
	{"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400},
	{"TE empty element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 400},
	{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"TE on HTTP/1.0 with CL", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
	{"Trailer declares Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X, content-length\r\n\r\n", 400},
	{"Trailer declares Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTrailer: Transfer-Encoding\r\n\r\n", 400},

	// Field syntax.
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
	{"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400},
	{"first field line starts with space", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
	{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
	{"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
	{"space before colon CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400},
	{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400},
	{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nFoo\r\n\r\n", 400},
	{"non-token name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n", 400},
	{"non-ASCII name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n", 400},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400},
	{"CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
	{"LF in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", 400},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400},
	{"CTL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400},
	{"ESC at end of value", "GET / HTTP/1.1\r\nHost: a\r\nX: ab\x1b\r\n\r\n", 400},
	{"malformed Connection", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close x\r\n\r\n", 400},

	// Line endings.
	{"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", 400},
	{"bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
	{"bare LF after field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
	{"bare LF final line", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
	{"bare LF leading line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"bare CR in request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
	{"bare CR final line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400},
	{"CR CR LF", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400},
	{"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},

	// Request line.
	{"HTTP/1.2 without Host", "GET / HTTP/1.2\r\n\r\n", 400},
	{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
	{"HTTP/0.9 version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
	{"HTTP/3.1", "GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505},
	{"HTTP/1", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
	{"HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
	{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
	{"HTTP/x.y", "GET / HTTP/x.y\r\nHost: a\r\n\r\n", 400},
	{"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
	{"no version", "GET /\r\nHost: a\r\n\r\n", 400},
	{"only method", "GET\r\n\r\n", 400},
	{"double space before target", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"double space before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"bad method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"DEL in target", "GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"NUL in target", "GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"* with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"CONNECT origin-form", "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"CONNECT without port", "CONNECT a.b HTTP/1.1\r\nHost: a.b\r\n\r\n", 400},
	{"CONNECT empty port", "CONNECT a.b: HTTP/1.1\r\nHost: a.b\r\n\r\n", 400},
	{"CONNECT absolute-form", "CONNECT http://a.b:443/ HTTP/1.1\r\nHost: a.b\r\n\r\n", 400},
	{"authority-form with GET", "GET a.b:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form userinfo", "GET http://u:p@a.b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form other scheme", "GET ftp://a.b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form query without path", "GET http://a.b?x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form port too big", "GET http://a.b:65536/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form bad port", "GET http://a.b:8x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form IPv4 literal in brackets", "GET http://[1.2.3.4]/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"absolute-form percent in host", "GET http://a%2eb/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},

	// Host.
	{"missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
	{"two Hosts HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
	{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
	{"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
	{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
	{"Host bad port", "GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", 400},
}

func TestParseRequestInvalid(t *testing.T) {
	for _, tc := range invalidRequests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tc.in), &r, nil)
			var pe *Error
			if !errors.As(err, &pe) || pe.Status != tc.status || n != 0 {
				t.Fatalf("ParseRequest = %d, %v; want status %d", n, err, tc.status)
			}
			// The error is sticky.
			if _, err2 := ParseRequest([]byte(tc.in), &r, nil); err2 != err {
				t.Errorf("second call = %v, want %v", err2, err)
			}
			// Byte at a time gives the same error.
			var rb Request
			if _, _, errb := parseRequestBytewise([]byte(tc.in), &rb, nil); errb != err {
				t.Errorf("byte at a time: %v, want %v", errb, err)
			}
		})
	}
}

func TestParseRequestLimits(t *testing.T) {
	lim := &Limits{MaxRequestLine: 32, MaxHeaderBytes: 128, MaxHeaders: 3}
	line := func(n int) string { // a request line of n bytes
		return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1")) + " HTTP/1.1\r\n"
	}
	field := func(n int) string { // a field line of n bytes with its CRLF
		return "X: " + strings.Repeat("v", n-5) + "\r\n"
	}
	host := "Host: a\r\n"
	head := func(n int) string { // a complete head of n bytes
		pre := line(20) + host
		return pre + field(n-len(pre)-2) + "\r\n"
	}
	tests := []struct {
		name   string
		in     string
		status int // 0: valid; -1: ErrNeedMore
	}{
		{"request line at limit", line(32) + host + "\r\n", 0},
		{"request line over limit", line(33) + host + "\r\n", 414},
		{"request line over limit, no LF yet", line(33)[:34], 414},
		{"request line at limit, no LF yet", line(32)[:33], -1},
		{"long line of 33 bytes then bare LF", strings.Repeat("a", 33) + "\n", 400},
		{"long line of 34 bytes then bare LF", strings.Repeat("a", 34) + "\n", 414},
		{"long line after empty lines", "\r\n\r\n" + strings.Repeat("a", 34), 414},
		{"head at limit", head(128), 0},
		{"head over limit", head(129), 431},
		{"head over limit, incomplete", head(129)[:128], 431},
		{"head one short of limit, incomplete", head(128)[:127], -1},
		{"empty lines count", "\r\n" + head(126), 0},
		{"empty lines count over", "\r\n" + head(127), 431},
		{"fields at limit", line(20) + host + "A: 1\r\nB: 2\r\n\r\n", 0},
		{"fields over limit", line(20) + host + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431},
		{"fields over limit, head incomplete", line(20) + host + "A: 1\r\nB: 2\r\nC: 3\r\n", 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tc.in), &r, lim)
			if got := errStatus(err); got != tc.status {
				t.Fatalf("ParseRequest = %d, %v (status %d); want status %d", n, err, got, tc.status)
			}
			if tc.status == 0 && n != len(tc.in) {
				t.Fatalf("n = %d, want %d", n, len(tc.in))
			}
			var rb Request
			if nb, _, errb := parseRequestBytewise([]byte(tc.in), &rb, lim); nb != n || errb != err {
				t.Errorf("byte at a time = %d, %v; want %d, %v", nb, errb, n, err)
			}
		})
	}
	// The exported errors are the ones returned.
	var r Request
	if _, err := ParseRequest([]byte(head(129)), &r, lim); err != ErrHeaderTooLarge {
		t.Errorf("err = %v, want ErrHeaderTooLarge", err)
	}
	r.Reset()
	if _, err := ParseRequest([]byte(line(40)), &r, lim); err != ErrRequestLineTooLong {
		t.Errorf("err = %v, want ErrRequestLineTooLong", err)
	}
}

func TestParseRequestDefaultLimits(t *testing.T) {
	if d := DefaultLimits(); d != (Limits{MaxRequestLine: 8192, MaxHeaderBytes: 16384, MaxHeaders: 100}) {
		t.Fatalf("DefaultLimits() = %+v", d)
	}
	many := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 99) + "\r\n"
	tests := []struct {
		name   string
		lim    *Limits
		in     string
		status int
	}{
		{"nil limits, 100 fields", nil, many, 0},
		{"nil limits, 101 fields", nil, strings.Replace(many, "\r\n\r\n", "\r\nZ: 1\r\n\r\n", 1), 431},
		{"zero limits mean defaults", &Limits{}, many, 0},
		{"long line with defaults", nil, "GET /" + strings.Repeat("a", 8200), 414},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			_, err := ParseRequest([]byte(tc.in), &r, tc.lim)
			if got := errStatus(err); got != tc.status {
				t.Fatalf("err = %v (status %d), want %d", err, got, tc.status)
			}
		})
	}
}

func TestParseRequestBufferShrank(t *testing.T) {
	var r Request
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nHo"), &r, nil); err != ErrNeedMore {
		t.Fatalf("err = %v", err)
	}
	_, err := ParseRequest([]byte("GET"), &r, nil)
	if errStatus(err) != 500 {
		t.Fatalf("err = %v, want status 500", err)
	}
}

// TestParseRequestLinear feeds a 16 KiB head one byte at a time and checks
// that the parser examined each byte a bounded number of times in total.
func TestParseRequestLinear(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("GET /" + strings.Repeat("p", 4000) + " HTTP/1.1\r\nHost: a\r\n")
	for sb.Len() < 16<<10-300 {
		sb.WriteString("X-Field: " + strings.Repeat("v", 200) + "\r\n")
	}
	sb.WriteString("X-Long: " + strings.Repeat("w", 16<<10-sb.Len()-12) + "\r\n\r\n")
	data := []byte(sb.String())
	if len(data) != 16<<10 {
		t.Fatalf("len = %d", len(data))
	}
	lim := &Limits{MaxHeaderBytes: 1 << 20, MaxHeaders: 1000}
	var r Request
	for i := 1; i <= len(data); i++ {
		n, err := ParseRequest(data[:i], &r, lim)
		if i < len(data) && err != ErrNeedMore || i == len(data) && (err != nil || n != len(data)) {
			t.Fatalf("at %d: %d, %v", i, n, err)
		}
	}
	// Each byte is passed once to the LF search and once to the line
	// parser; a parser that rescanned from the start would do about
	// len(data)^2/2 = 134M steps.
	if w := r.h.work; w > 2*len(data) {
		t.Errorf("work = %d for %d bytes, want <= %d", w, len(data), 2*len(data))
	}
	t.Logf("work = %d for %d bytes", r.h.work, len(data))
}
