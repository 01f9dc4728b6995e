package proxy

import (
	"testing"

	"github.com/connx/connx/internal/http1"
)

// BenchmarkStatusAndFields is the cost of writing nginx's response head
// (the peers.sh backends') for the client.
func BenchmarkStatusAndFields(b *testing.B) {
	head := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 05:45:23 GMT\r\n" +
		"Content-Type: text/html\r\nContent-Length: 6\r\nLast-Modified: Sun, 06 Dec 2026 05:23:44 GMT\r\n" +
		"Connection: keep-alive\r\nETag: \"6b14f160-6\"\r\nAccept-Ranges: bytes\r\n\r\n")
	var r http1.Response
	var lim http1.Limits
	if _, err := http1.ParseResponse(head, &r, &lim); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendStatusAndFields(buf[:0], &r, nil)
	}
}
