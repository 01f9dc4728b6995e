// Command costclient sends an exact number of HTTP/1.1 GET requests to one
// address, always in the same pattern, so that a proxy's cost can be counted
// per request (system calls with strace, instructions with callgrind; see
// scripts/cost.sh).
//
// wrk runs for a time, not a number of requests, and its connections race
// each other; costclient is the opposite: -n requests, spread evenly over
// -conns connections (or -conns workers with -close), each connection
// sending its requests one after another and reading every response to its
// last byte before sending the next. With -conns 1 (the default) the proxy
// sees exactly the same sequence of arrivals on every run.
//
// Keep-alive (the default): each of the -conns connections is opened once
// and carries its share of the requests.
//
// -close: every request has a connection of its own. The request carries
// "Connection: close"; costclient reads the response and then waits for the
// proxy to close the connection (EOF) before it closes its side and opens
// the next one, so the proxy's close is part of the request it belongs to.
//
// The request is what wrk sends: "GET PATH HTTP/1.1", a Host field, and with
// -close a Connection field. A response must be 200 with a Content-Length
// or a chunked body; anything else, a short body, or no answer within
// -timeout is an error: costclient stops and exits 1. On success it prints
// one line:
//
//	requests=20000 conns=1 bytes=... elapsed=1.234s
//
// where bytes counts the response bodies.
//
// -tls: every connection is a TLS client (crypto/tls) over the TCP
// connection, with the handshake done right after the connect. The
// certificate is not verified (a cost client, not a security check); the
// ServerName is the host of -addr (an IP address sends no SNI, as wrk).
// All connections share one client session cache, so with -close -tls
// every connection after the first resumes the session (a TLS 1.3 PSK or
// a TLS 1.2 session ticket), as wrk does: it keeps its OpenSSL session
// across reconnects. The groups offered are those of wrk's OpenSSL 3.0
// client (X25519 first, then P-256, P-384, P-521, no post-quantum hybrid),
// so that a Go server and nginx do the same key exchange. No ALPN is
// offered (HTTP/1.1). The line printed then ends with the version of the
// last connection and how many handshakes resumed a session:
//
//	requests=5000 conns=1 bytes=... elapsed=1.234s tls=TLS1.3 resumed=4999
//
// Usage:
//
//	go run ./scripts/costclient -addr 127.0.0.1:19483 -path / -n 20000
//	go run ./scripts/costclient -addr 127.0.0.1:19483 -path / -n 5000 -close
//	go run ./scripts/costclient -addr 127.0.0.1:19493 -path / -n 1000 -close -tls
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tlsConfig is the client configuration of -tls (nil without it); resumed
// counts the handshakes that resumed a session, lastVersion holds the
// version of the last handshake.
var (
	tlsConfig   *tls.Config
	resumed     atomic.Int64
	lastVersion atomic.Uint32
)

// dial opens one connection to addr, over TLS with -tls (the handshake
// done before it returns, within timeout).
func dial(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil || tlsConfig == nil {
		return c, err
	}
	tc := tls.Client(c, tlsConfig)
	if err := tc.SetDeadline(time.Now().Add(timeout)); err != nil {
		c.Close()
		return nil, err
	}
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	if st.DidResume {
		resumed.Add(1)
	}
	lastVersion.Store(uint32(st.Version))
	return tc, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "HOST:PORT of the proxy")
	path := flag.String("path", "/", "request path")
	n := flag.Int("n", 1000, "number of requests")
	conns := flag.Int("conns", 1, "keep-alive connections (with -close: concurrent workers); the requests are split evenly")
	closeEach := flag.Bool("close", false, "a new connection per request, with Connection: close")
	timeout := flag.Duration("timeout", 120*time.Second, "longest wait for one response (callgrind slows a proxy 50x)")
	useTLS := flag.Bool("tls", false, "TLS to the proxy (certificate not verified; one session cache for all connections)")
	flag.Parse()
	if *n < 1 || *conns < 1 || *conns > *n {
		fmt.Fprintln(os.Stderr, "costclient: need 1 <= -conns <= -n")
		os.Exit(2)
	}

	if *useTLS {
		host, _, err := net.SplitHostPort(*addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "costclient: -addr:", err)
			os.Exit(2)
		}
		tlsConfig = &tls.Config{
			ServerName:         host,
			InsecureSkipVerify: true, // a cost client: the proxy's own self-signed certificate
			ClientSessionCache: tls.NewLRUClientSessionCache(64),
			CurvePreferences:   []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521},
		}
	}

	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\n")
	if *closeEach {
		req = append(req, "Connection: close\r\n"...)
	}
	req = append(req, "\r\n"...)

	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		total int64
	)
	for i := 0; i < *conns; i++ {
		share := *n / *conns
		if i < *n%*conns {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got int64
			var err error
			if *closeEach {
				got, err = runClose(*addr, req, share, *timeout)
			} else {
				got, err = runKeepAlive(*addr, req, share, *timeout)
			}
			mu.Lock()
			defer mu.Unlock()
			total += got
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	if first != nil {
		fmt.Fprintln(os.Stderr, "costclient:", first)
		os.Exit(1)
	}
	fmt.Printf("requests=%d conns=%d bytes=%d elapsed=%.3fs", *n, *conns, total, time.Since(start).Seconds())
	if tlsConfig != nil {
		fmt.Printf(" tls=%s resumed=%d", tlsVersionName(uint16(lastVersion.Load())), resumed.Load())
	}
	fmt.Println()
}

// runKeepAlive sends n requests on one connection, one after another.
func runKeepAlive(addr string, req []byte, n int, timeout time.Duration) (int64, error) {
	c, err := dial(addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	var total int64
	for i := 0; i < n; i++ {
		if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
			return total, err
		}
		if _, err := c.Write(req); err != nil {
			return total, fmt.Errorf("request %d: write: %w", i, err)
		}
		got, err := readResponse(br)
		total += got
		if err != nil {
			return total, fmt.Errorf("request %d: %w", i, err)
		}
	}
	return total, nil
}

// runClose sends n requests, each on a connection of its own, and waits
// for the server to close each connection before opening the next.
func runClose(addr string, req []byte, n int, timeout time.Duration) (int64, error) {
	var total int64
	for i := 0; i < n; i++ {
		c, err := dial(addr, timeout)
		if err != nil {
			return total, fmt.Errorf("request %d: %w", i, err)
		}
		got, err := closeOne(c, req, timeout)
		total += got
		c.Close()
		if err != nil {
			return total, fmt.Errorf("request %d: %w", i, err)
		}
	}
	return total, nil
}

func closeOne(c net.Conn, req []byte, timeout time.Duration) (int64, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	if _, err := c.Write(req); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	got, err := readResponse(br)
	if err != nil {
		return got, err
	}
	var one [1]byte
	if k, err := br.Read(one[:]); k != 0 || !errors.Is(err, io.EOF) {
		return got, fmt.Errorf("expected the server to close the connection, got %d bytes, %v", k, err)
	}
	return got, nil
}

// readResponse reads one response and its body, and returns the body's
// length. It accepts only 200 with Content-Length or chunked framing.
func readResponse(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("status line: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return 0, fmt.Errorf("status line %q", bytes.TrimSpace(line))
	}
	length, chunked := int64(-1), false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return 0, fmt.Errorf("Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	switch {
	case chunked:
		return readChunked(br)
	case length >= 0:
		k, err := io.CopyN(io.Discard, br, length)
		if err != nil {
			return k, fmt.Errorf("body: %d of %d bytes: %w", k, length, err)
		}
		return k, nil
	default:
		return 0, errors.New("response without Content-Length or chunked framing")
	}
}

func readChunked(br *bufio.Reader) (int64, error) {
	var total int64
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return total, fmt.Errorf("chunk size: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return total, fmt.Errorf("chunk size %q", line)
		}
		if size == 0 {
			for { // trailer fields, then the blank line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return total, fmt.Errorf("trailer: %w", err)
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return total, nil
				}
			}
		}
		k, err := io.CopyN(io.Discard, br, size+2) // data and its CRLF
		total += max(k-2, 0)
		if err != nil {
			return total, fmt.Errorf("chunk: %w", err)
		}
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}
