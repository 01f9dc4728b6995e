package tlsterm

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"unsafe"
)

// Releasing crypto/tls's input buffers.
//
// A tls.Conn keeps two bytes.Buffers at the size they grew to: rawInput
// (ciphertext: a whole record at a time, plus 512 bytes that
// bytes.Buffer.ReadFrom always wants free) and hand (handshake
// messages). After a TLS 1.3 handshake with a ClientHello carrying a
// post-quantum key share they hold about 2 KiB and 3 KiB, doubling the
// heap of an idle keep-alive connection, and crypto/tls has no way to
// give them back. nginx does the same for OpenSSL's buffers
// (SSL_MODE_RELEASE_BUFFERS).
//
// Release replaces an empty buffer by the zero bytes.Buffer, which is
// what Reset leaves minus the capacity: the next record allocates its
// own. The fields are unexported, so they are found by name and type
// once (reflect) and reached by offset; if a Go release renames or
// retypes them, Release does nothing, and TestReleaseBuffers fails so
// that CI says so.

var (
	rawInputOff, handOff uintptr
	canRelease           bool
)

func init() {
	t := reflect.TypeFor[tls.Conn]()
	bt := reflect.TypeFor[bytes.Buffer]()
	ri, ok1 := t.FieldByName("rawInput")
	h, ok2 := t.FieldByName("hand")
	if ok1 && ok2 && ri.Type == bt && h.Type == bt {
		rawInputOff, handOff, canRelease = ri.Offset, h.Offset, true
	}
}

// buffers returns crypto/tls's rawInput and hand buffers of c, or nils.
func (c *Conn) buffers() (rawInput, hand *bytes.Buffer) {
	if !canRelease {
		return nil, nil
	}
	p := unsafe.Pointer(c.tc)
	return (*bytes.Buffer)(unsafe.Add(p, rawInputOff)), (*bytes.Buffer)(unsafe.Add(p, handOff))
}

// Release lets go of the memory crypto/tls's input buffers kept, as far
// as they are empty (no partial record or message is waiting): call it
// when the connection goes idle. The next record read allocates a
// buffer again, so calling it between the records of a busy connection
// costs an allocation per record. Like Open, it belongs to the
// connection's goroutine (after the handshake).
func (c *Conn) Release() {
	if c.next != nil {
		return // a stepped handshake is suspended with these buffers in use
	}
	ri, h := c.buffers()
	if ri == nil {
		return
	}
	for _, b := range [...]*bytes.Buffer{ri, h} {
		if b.Len() == 0 && b.Cap() > 0 {
			*b = bytes.Buffer{}
		}
	}
}

// retained is how many bytes of capacity the input buffers hold (tests).
func (c *Conn) retained() int {
	ri, h := c.buffers()
	if ri == nil {
		return -1
	}
	return ri.Cap() + h.Cap()
}
