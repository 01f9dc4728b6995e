// tlsidle opens N TLS keep-alive connections to an HTTPS address, sends
// one GET on each, checks the response, and holds them idle so that the
// server's memory per idle TLS connection can be read from outside
// (scripts/tls-idle.sh). Certificates are not verified: it measures
// memory, not trust.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port to connect to")
	n := flag.Int("n", 5000, "connections to open")
	hold := flag.Duration("hold", 3*time.Second, "how long to hold them idle")
	version := flag.String("tls", "1.3", "TLS version: 1.2 or 1.3")
	flag.Parse()

	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "example.com", NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
	if *version == "1.2" {
		cfg.MaxVersion = tls.VersionTLS12
	}
	conns := make([]net.Conn, 0, *n)
	ok := 0
	for i := 0; i < *n; i++ {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", *addr, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			break
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")); err != nil {
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil && resp.StatusCode == 200 {
			ok++
		}
	}
	// "ready" is the line the harness waits for before it reads memory.
	fmt.Printf("ready open=%d ok=%d\n", len(conns), ok)
	time.Sleep(*hold)
	for _, c := range conns {
		c.Close()
	}
}
