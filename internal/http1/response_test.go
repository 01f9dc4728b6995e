package http1

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type respWant struct {
	minor, status      int
	reason             string
	cl                 int64
	chunked, keepAlive bool
	upgrade            bool
	body, headBody     BodyKind // BodyKind(false), BodyKind(true)
	headers            []string
}

var validResponses = []struct {
	name string
	in   string
	rest string
	want respWant
}{
	{
		name: "200 with Content-Length",
		in:   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
		rest: "hello",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: 5, keepAlive: true, body: BodyLength,
			headers: []string{"Content-Type=text/plain/", "Content-Length=5/L"}},
	},
	{
		name: "chunked",
		in:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		rest: "0\r\n\r\n",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: -1, chunked: true, keepAlive: true, body: BodyChunked,
			headers: []string{"Transfer-Encoding=chunked/hT"}},
	},
	{
		name: "HTTP/1.2 is processed as HTTP/1.1",
		in:   "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: 0, keepAlive: true,
			headers: []string{"Content-Length=0/L"}},
	},
	{
		name: "Trailer is an end-to-end field",
		in:   "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: -1, chunked: true, keepAlive: true, body: BodyChunked,
			headers: []string{"Trailer=X-Sum/", "Transfer-Encoding=chunked/hT"}},
	},
	{
		name: "no framing: until close",
		in:   "HTTP/1.1 200 OK\r\n\r\n",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: -1, keepAlive: true, body: BodyUntilClose,
			headers: []string{}},
	},
	{
		name: "no reason phrase, no SP",
		in:   "HTTP/1.1 204\r\nDate: x\r\n\r\n",
		want: respWant{minor: 1, status: 204, reason: "", cl: -1, keepAlive: true,
			headers: []string{"Date=x/"}},
	},
	{
		name: "empty reason phrase",
		in:   "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
		want: respWant{minor: 1, status: 404, reason: "", cl: 0, keepAlive: true,
			headers: []string{"Content-Length=0/L"}},
	},
	{
		name: "reason with spaces and obs-text",
		in:   "HTTP/1.1 500 Internal \tServer \xe9rror\r\nContent-Length: 0\r\n\r\n",
		want: respWant{minor: 1, status: 500, reason: "Internal \tServer \xe9rror", cl: 0, keepAlive: true,
			headers: []string{"Content-Length=0/L"}},
	},
	{
		name: "HTTP/1.0 keep-alive",
		in:   "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
		want: respWant{minor: 0, status: 200, reason: "OK", cl: 2, keepAlive: true, body: BodyLength,
			headers: []string{"Connection=keep-alive/h", "Content-Length=2/L"}},
	},
	{
		name: "HTTP/1.0 default close",
		in:   "HTTP/1.0 200 OK\r\n\r\n",
		want: respWant{minor: 0, status: 200, reason: "OK", cl: -1, body: BodyUntilClose, headers: []string{}},
	},
	{
		name: "HTTP/1.1 close",
		in:   "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: 1, body: BodyLength,
			headers: []string{"Connection=close/h", "Content-Length=1/L"}},
	},
	{
		name: "101 upgrade",
		in:   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		want: respWant{minor: 1, status: 101, reason: "Switching Protocols", cl: -1, upgrade: true,
			headers: []string{"Connection=Upgrade/h", "Upgrade=websocket/h"}},
	},
	{
		name: "100 continue",
		in:   "HTTP/1.1 100 Continue\r\n\r\n",
		want: respWant{minor: 1, status: 100, reason: "Continue", cl: -1, keepAlive: true, headers: []string{}},
	},
	{
		name: "304 with Content-Length",
		in:   "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		want: respWant{minor: 1, status: 304, reason: "Not Modified", cl: 10, keepAlive: true,
			headers: []string{"Content-Length=10/L"}},
	},
	{
		name: "repeated identical Content-Length",
		in:   "HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: 3, keepAlive: true, body: BodyLength,
			headers: []string{"Content-Length=3/L", "content-length=3/L"}},
	},
	{
		name: "Connection option marks field",
		in:   "HTTP/1.1 200 OK\r\nX-Backend: b1\r\nConnection: X-Backend\r\nContent-Length: 0\r\n\r\n",
		want: respWant{minor: 1, status: 200, reason: "OK", cl: 0, keepAlive: true,
			headers: []string{"X-Backend=b1/h", "Connection=X-Backend/h", "Content-Length=0/L"}},
	},
}

func TestParseResponseValid(t *testing.T) {
	for _, tc := range validResponses {
		t.Run(tc.name, func(t *testing.T) {
			buf := []byte(tc.in + tc.rest)
			var r Response
			n, err := ParseResponse(buf, &r, nil)
			if err != nil || n != len(tc.in) || r.HeadLen != n {
				t.Fatalf("ParseResponse = %d, %v; want %d, nil", n, err, len(tc.in))
			}
			got := respWant{minor: r.Minor, status: r.Status, reason: str(r.Reason), cl: r.ContentLength,
				chunked: r.Chunked, keepAlive: r.KeepAlive, upgrade: r.Upgrade,
				body: r.BodyKind(false), headBody: r.BodyKind(true), headers: headerStrings(r.Headers)}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			whole := describeResponse(&r)
			var rb Response
			nb, d, err := parseResponseBytewise(buf, &rb, nil)
			if nb != n || err != nil || d != whole {
				t.Errorf("byte at a time = %d, %v\n%s\nwant\n%s", nb, err, d, whole)
			}
			r.Reset()
			if n3, err := ParseResponse(buf, &r, nil); n3 != n || err != nil || describeResponse(&r) != whole {
				t.Errorf("after Reset = %d, %v", n3, err)
			}
		})
	}
}

var invalidResponses = []struct {
	name string
	in   string
}{
	{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"},
	{"differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"},
	{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\n"},
	{"CL negative", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"},
	{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"},
	{"TE on HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n"},
	{"status 600", "HTTP/1.1 600 X\r\n\r\n"},
	{"status 099", "HTTP/1.1 099 X\r\n\r\n"},
	{"status two digits", "HTTP/1.1 20 OK\r\n\r\n"},
	{"status four digits", "HTTP/1.1 2000 OK\r\n\r\n"},
	{"status letters", "HTTP/1.1 2x0 OK\r\n\r\n"},
	{"no SP before reason", "HTTP/1.1 200OK\r\n\r\n"},
	{"two SP before status", "HTTP/1.1  200 OK\r\n\r\n"},
	{"HTTP/2", "HTTP/2 200 OK\r\n\r\n"},
	{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
	{"HTTP/0.9", "HTTP/0.9 200 OK\r\n\r\n"},
	// A transfer coding other than chunked would change the meaning of
	// the body if the proxy dropped it, and the client never said it
	// accepts one (TE is not forwarded): 502, as HAProxy and nginx answer.
	{"TE gzip then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"},
	{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
	{"TE chunked, gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"},
	{"TE gzip alone", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
	{"TE identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n"},
	{"lower-case version", "http/1.1 200 OK\r\n\r\n"},
	{"CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
	{"bare CR", "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n"},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"},
	{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
	{"NUL in value", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n"},
	{"empty name", "HTTP/1.1 200 OK\r\n: x\r\n\r\n"},
	{"Trailer declares Content-Length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n"},
	{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"},
}

func TestParseResponseInvalid(t *testing.T) {
	for _, tc := range invalidResponses {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			n, err := ParseResponse([]byte(tc.in), &r, nil)
			var pe *Error
			if !errors.As(err, &pe) || pe.Status != 502 || n != 0 {
				t.Fatalf("ParseResponse = %d, %v; want status 502", n, err)
			}
			var rb Response
			if _, _, errb := parseResponseBytewise([]byte(tc.in), &rb, nil); errb != err {
				t.Errorf("byte at a time: %v, want %v", errb, err)
			}
		})
	}
}

func TestParseResponseLimits(t *testing.T) {
	lim := &Limits{MaxRequestLine: 20, MaxHeaderBytes: 64, MaxHeaders: 2}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"status line at limit", "HTTP/1.1 200 " + strings.Repeat("r", 7) + "\r\n\r\n", true},
		{"status line over limit", "HTTP/1.1 200 " + strings.Repeat("r", 8) + "\r\n\r\n", false},
		{"status line over limit, no LF", "HTTP/1.1 200 " + strings.Repeat("r", 9), false},
		{"fields at limit", "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", true},
		{"fields over limit", "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", false},
		{"head over limit", "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("v", 45) + "\r\n\r\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			_, err := ParseResponse([]byte(tc.in), &r, lim)
			if tc.ok && err != nil || !tc.ok && errStatus(err) != 502 {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
