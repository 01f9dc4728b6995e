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
