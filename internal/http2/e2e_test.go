package http2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// h2cClient returns Go's HTTP/2 client speaking cleartext HTTP/2 with prior
// knowledge. x/net's http2.Transport (AllowHTTP with a DialTLSContext that
// returns a plain TCP connection) is deprecated in favour of this
// net/http setting, which runs the same client code.
func h2cClient(t *testing.T) (*http.Client, *http.Transport) {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, tr
}

func TestE2EGet(t *testing.T) {
	s := startTestServer(t, nil)
	client, _ := h2cClient(t)
	resp, err := client.Get("http://" + s.addr() + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != "hello from connx\n" {
		t.Fatalf("got %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Method"); got != "GET" {
		t.Fatalf("x-method = %q", got)
	}
}

func echo(client *http.Client, addr string, body []byte) error {
	resp, err := client.Post("http://"+addr+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, body) {
		return fmt.Errorf("echo of %d bytes returned %d bytes, different", len(body), len(got))
	}
	return nil
}

// TestE2EConcurrentStreams sends 100 concurrent requests, some with bodies
// much larger than the stream and connection windows, over one connection.
//
// Go's client counts a finished stream against the server's
// SETTINGS_MAX_CONCURRENT_STREAMS (100) until its writer goroutine has
// cleaned it up, and without StrictMaxConcurrentRequests it dials another
// connection when the count is full. CI once saw 7 connections that way,
// none of them caused by the server. With the strict setting the client
// waits for a slot instead, so any extra connection here means the server
// closed one.
func TestE2EConcurrentStreams(t *testing.T) {
	s := startTestServer(t, nil)
	client, tr := h2cClient(t)
	tr.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true}
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, 100)
	for i := range bodies {
		n := rng.IntN(4096)
		if i%10 == 0 {
			n = 1<<20 + rng.IntN(1<<20)
		}
		bodies[i] = make([]byte, n)
		for j := range bodies[i] {
			bodies[i][j] = byte(rng.Uint32())
		}
	}
	// Warm up so that all requests share one connection.
	if err := echo(client, s.addr(), []byte("warm")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(bodies))
	for _, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echo(client, s.addr(), b)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.connCount(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// TestE2ELargeBodies moves 16 MiB each way on one stream: both directions
// wait for WINDOW_UPDATEs many times.
func TestE2ELargeBodies(t *testing.T) {
	s := startTestServer(t, &Limits{StreamWindow: 65535, ConnWindow: 65535})
	client, _ := h2cClient(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	if err := echo(client, s.addr(), body); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get("http://" + s.addr() + "/big?n=16777216")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 16<<20 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
}

func TestE2ETrailers(t *testing.T) {
	s := startTestServer(t, nil)
	client, _ := h2cClient(t)
	body := strings.Repeat("trailer test ", 10000)
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", "http://"+s.addr()+"/echo", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Trailer = http.Header{"X-Checksum": nil}
	go func() {
		io.WriteString(pw, body)
		req.Trailer.Set("X-Checksum", fmt.Sprintf("%x", sha256.Sum256([]byte(body))))
		pw.Close()
	}()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != body {
		t.Fatalf("body: %d bytes, %v", len(got), err)
	}
	want := fmt.Sprintf("%x", sha256.Sum256([]byte(body)))
	if tr := resp.Trailer.Get("X-Checksum"); tr != want {
		t.Fatalf("trailer X-Checksum = %q, want %q", tr, want)
	}
}

func TestE2EResets(t *testing.T) {
	s := startTestServer(t, nil)
	s.resets = make(chan uint32, 16)
	client, _ := h2cClient(t)

	// The server resets a stream after a head and some data.
	resp, err := client.Get("http://" + s.addr() + "/reset")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "stream error") || !strings.Contains(err.Error(), "CANCEL") {
		t.Fatalf("server reset: got %v, want a CANCEL stream error", err)
	}

	// The client cancels an upload: the server sees an EventReset, and
	// the connection keeps serving.
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.addr()+"/echo", pr)
	go pw.Write(make([]byte, 1000))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	pw.Close()
	<-s.resets
	if err := echo(client, s.addr(), []byte("after reset")); err != nil {
		t.Fatal(err)
	}
	if n := s.connCount(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// TestE2EConcurrencyLimit: the client honours a small
// SETTINGS_MAX_CONCURRENT_STREAMS and queues the rest.
func TestE2EConcurrencyLimit(t *testing.T) {
	s := startTestServer(t, &Limits{MaxConcurrentStreams: 2})
	client, _ := h2cClient(t)
	if err := echo(client, s.addr(), []byte("warm")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echo(client, s.addr(), bytes.Repeat([]byte("y"), 100000))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
