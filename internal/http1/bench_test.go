package http1

import "testing"

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(browserRequest)
	var r Request
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if _, err := ParseRequest(buf, &r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte(typicalResponse)
	var r Response
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if _, err := ParseResponse(buf, &r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkedScan(b *testing.B) {
	buf := chunkedBody()
	var s ChunkedScanner
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		if _, done, err := s.Scan(buf, nil); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// BenchmarkChunkedScanSmallChunks measures framing cost: 16-byte chunks.
func BenchmarkChunkedScanSmallChunks(b *testing.B) {
	var buf []byte
	for i := 0; i < 256; i++ {
		buf = append(buf, "10\r\n0123456789abcdef\r\n"...)
	}
	buf = append(buf, "0\r\n\r\n"...)
	var s ChunkedScanner
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		if _, done, err := s.Scan(buf, nil); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}

// The heads of scripts/cost.sh's small scenario: what costclient (wrk)
// sends, and what the nginx backends answer.
const (
	costRequest  = "GET / HTTP/1.1\r\nHost: 127.0.0.1:19483\r\n\r\n"
	costResponse = "HTTP/1.1 200 OK\r\n" +
		"Server: nginx/1.22.1\r\n" +
		"Date: Sat, 05 Dec 2026 18:06:00 GMT\r\n" +
		"Content-Type: text/html\r\n" +
		"Content-Length: 6\r\n" +
		"Last-Modified: Sat, 05 Dec 2026 18:05:59 GMT\r\n" +
		"Connection: keep-alive\r\n" +
		"ETag: \"6932e7b7-6\"\r\n" +
		"Accept-Ranges: bytes\r\n" +
		"\r\n"
)

// BenchmarkParseCost parses the request and response heads of one
// request of scripts/cost.sh's small scenario.
func BenchmarkParseCost(b *testing.B) {
	req, resp := []byte(costRequest), []byte(costResponse)
	var r Request
	var p Response
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if _, err := ParseRequest(req, &r, nil); err != nil {
			b.Fatal(err)
		}
		p.Reset()
		if _, err := ParseResponse(resp, &p, nil); err != nil {
			b.Fatal(err)
		}
	}
}
