package testcert

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"hash"
	"net"
	"strings"
	"testing"
)

// Records13 is the client side of a TLS 1.3 connection whose handshake
// crypto/tls ran, and whose application records the test writes itself,
// so that it can send what crypto/tls's client never does: KeyUpdate
// messages, as many as it likes, without reading a byte. The server
// side is real; only the record sealing (RFC 8446 5.2, 7.3) is done here,
// with the client traffic secret crypto/tls logged.
//
// Records are queued by AppData and KeyUpdate and written by Flush. Not
// safe for concurrent use.
type Records13 struct {
	Conn   net.Conn // the socket; read it to see what the server sends
	hash   func() hash.Hash
	keyLen int
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
	buf    []byte
}

// DialRecords13 connects to addr and completes a TLS 1.3 handshake with
// cfg (its MinVersion and KeyLogWriter are overridden). It skips the test
// when the server chose ChaCha20-Poly1305, which the standard library
// does not export.
func DialRecords13(t testing.TB, addr string, cfg *tls.Config) *Records13 {
	t.Helper()
	var keyLog bytes.Buffer
	cfg = cfg.Clone()
	cfg.MinVersion, cfg.MaxVersion, cfg.KeyLogWriter = tls.VersionTLS13, tls.VersionTLS13, &keyLog
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS 1.3 handshake: %v", err)
	}
	r := &Records13{Conn: nc}
	switch s := tc.ConnectionState().CipherSuite; s {
	case tls.TLS_AES_128_GCM_SHA256:
		r.hash, r.keyLen = sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		r.hash, r.keyLen = sha512.New384, 32
	default:
		t.Skipf("cipher suite %s: no AEAD for it outside crypto/tls", tls.CipherSuiteName(s))
	}
	sc := bufio.NewScanner(&keyLog)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "CLIENT_TRAFFIC_SECRET_0" {
			if r.secret, err = hex.DecodeString(f[2]); err != nil {
				t.Fatalf("key log: %v", err)
			}
		}
	}
	if r.secret == nil {
		t.Fatal("no client traffic secret in the key log")
	}
	r.setKeys(t)
	return r
}

// expandLabel is HKDF-Expand-Label (RFC 8446 7.1) with an empty context.
func (r *Records13) expandLabel(t testing.TB, label string, n int) []byte {
	label = "tls13 " + label
	info := append([]byte{byte(n >> 8), byte(n), byte(len(label))}, label...)
	info = append(info, 0)
	out, err := hkdf.Expand(r.hash, r.secret, string(info), n)
	if err != nil {
		t.Fatalf("HKDF: %v", err)
	}
	return out
}

func (r *Records13) setKeys(t testing.TB) {
	block, err := aes.NewCipher(r.expandLabel(t, "key", r.keyLen))
	if err != nil {
		t.Fatal(err)
	}
	if r.aead, err = cipher.NewGCM(block); err != nil {
		t.Fatal(err)
	}
	r.iv, r.seq = r.expandLabel(t, "iv", 12), 0
}

// record queues one protected record of content type typ.
func (r *Records13) record(typ byte, body []byte) {
	inner := append(append(make([]byte, 0, len(body)+1), body...), typ)
	n := len(inner) + r.aead.Overhead()
	hdr := []byte{23, 3, 3, byte(n >> 8), byte(n)}
	nonce := bytes.Clone(r.iv)
	for i := range 8 {
		nonce[4+i] ^= byte(r.seq >> (56 - 8*i))
	}
	r.buf = append(r.buf, hdr...)
	r.buf = r.aead.Seal(r.buf, nonce, inner, hdr)
	r.seq++
}

// Handshake queues b as one handshake record (at most 16 KiB): a
// fragment of a handshake message, whatever it is.
func (r *Records13) Handshake(b []byte) { r.record(22, b) }

// AppData queues b as one application-data record (at most 16 KiB).
func (r *Records13) AppData(b []byte) { r.record(23, b) }

// KeyUpdate queues a KeyUpdate message, asking the server to update its
// keys too when requested, and moves to the next client traffic secret.
func (r *Records13) KeyUpdate(t testing.TB, requested bool) {
	req := byte(0)
	if requested {
		req = 1
	}
	r.record(22, []byte{24, 0, 0, 1, req}) // key_update, length 1
	r.secret = r.expandLabel(t, "traffic upd", r.hash().Size())
	r.setKeys(t)
}

// Queued is how many bytes Flush would write.
func (r *Records13) Queued() int { return len(r.buf) }

// Take returns the queued records and forgets them, for a test that
// feeds them to the server side itself.
func (r *Records13) Take() []byte {
	b := bytes.Clone(r.buf)
	r.buf = r.buf[:0]
	return b
}

// Flush writes the queued records.
func (r *Records13) Flush() error {
	_, err := r.Conn.Write(r.buf)
	r.buf = r.buf[:0]
	return err
}
