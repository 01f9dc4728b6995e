package proxy

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/connx/connx/internal/testproc"
)

// sClient is an interactive openssl s_client: each line written is read
// by it on its own (the test waits for its echo of the command first),
// so "K" and "R" act as commands rather than data.
type sClient struct {
	t       *testing.T
	in      io.WriteCloser
	out     *bufio.Reader
	pending string          // output not yet matched by expect
	all     strings.Builder // all output, for failures
	done    chan struct{}
}

func startSClient(t *testing.T, e *tlsEnv, args ...string) *sClient {
	t.Helper()
	openssl := testproc.Tool(t, "openssl")
	ca := t.TempDir() + "/ca.pem"
	mustf(t, os.WriteFile(ca, e.ca.PEM, 0o600), "CA file")
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, openssl, append([]string{"s_client", "-connect", e.addr,
		"-servername", "example.com", "-CAfile", ca, "-alpn", "http/1.1", "-crlf"}, args...)...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	in, err := cmd.StdinPipe()
	mustf(t, err, "stdin")
	mustf(t, cmd.Start(), "openssl s_client")
	s := &sClient{t: t, in: in, out: bufio.NewReader(pr), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		in.Close() // s_client ends at the end of its input
		go io.Copy(io.Discard, pr)
		<-s.done
	})
	s.expect("Verify return code: 0 (ok)")
	s.expect("---")
	return s
}

// expect reads output until want appears in it; it fails the test
// when the output ends first.
func (s *sClient) expect(want string) {
	s.t.Helper()
	buf := make([]byte, 4096)
	for {
		if i := strings.Index(s.pending, want); i >= 0 {
			s.pending = s.pending[i+len(want):]
			return
		}
		n, err := s.out.Read(buf)
		s.pending += string(buf[:n])
		s.all.Write(buf[:n])
		if err != nil && !strings.Contains(s.pending, want) {
			s.t.Fatalf("s_client output ended (%v) without %q:\n%s", err, want, s.all.String())
		}
	}
}

// expectEnd reads the output to its end and returns it.
func (s *sClient) expectEnd() string {
	rest, _ := io.ReadAll(s.out)
	s.all.Write(rest)
	return s.pending + string(rest)
}

func (s *sClient) send(line string) {
	s.t.Helper()
	_, err := io.WriteString(s.in, line+"\n")
	mustf(s.t, err, "s_client stdin")
}

// TestTLSKeyUpdateOpenSSL: openssl s_client's key updates, asking for an
// answer ("K") or not ("k"), on a TLS 1.3 connection; requests before
// and after them are served on the same connection.
func TestTLSKeyUpdateOpenSSL(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	s := startSClient(t, e, "-tls1_3")
	s.send("GET /before HTTP/1.1\nHost: example.com\n")
	s.expect("https /before")
	for range 5 {
		s.send("K")
		s.expect("KEYUPDATE")
		s.send("k")
		s.expect("KEYUPDATE")
	}
	s.send("GET /after HTTP/1.1\nHost: example.com\nConnection: close\n")
	s.expect("https /after")
}

// TestTLSRenegotiationRefused: a TLS 1.2 client that asks to
// renegotiate (s_client's "R") gets an alert and the connection is
// closed; the listener serves the next client.
func TestTLSRenegotiationRefused(t *testing.T) {
	e := newTLSEnv(t, protoBackend(t), nil)
	s := startSClient(t, e, "-tls1_2")
	s.send("GET /before HTTP/1.1\nHost: example.com\n")
	s.expect("https /before")
	s.send("R")
	s.expect("RENEGOTIATING")
	out := s.expectEnd()
	// crypto/tls answers a ClientHello after the handshake with a fatal
	// unexpected_message alert (it sends no_renegotiation only to a
	// HelloRequest, which a server never receives).
	if !strings.Contains(out, "alert unexpected message") {
		t.Errorf("s_client after R: want an unexpected_message alert:\n%s", out)
	}
	c := e.dial(t, e.client("example.com"))
	if code, _ := tlsGet(t, c, bufio.NewReader(c), "/"); code != 200 {
		t.Fatalf("next client: %d", code)
	}
}
