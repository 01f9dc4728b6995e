// Package http2 is HTTP/2 (RFC 9113) for the proxy's event loop: Conn is
// the server side of a connection from a client, ClientConn the client
// side of a connection to a backend (see its doc; it works the same way,
// with streams opened by OpenStream and responses reported by Feed). It never does I/O and starts no goroutine: the
// caller passes the bytes it has received to Feed and gets back how many
// whole frames it consumed and the events they carried (a request head, a
// piece of a request body, trailers, a reset); it answers with WriteHeaders,
// WriteData and Reset, and sends what Output returns. SETTINGS, PING,
// flow-control bookkeeping and every protocol error are handled inside:
// errors queue RST_STREAM or GOAWAY frames in the output.
//
// Flow control is the proxy's backpressure in both directions. SendWindow
// and WriteData report how much of a response body the client's windows
// accept now; the rest waits for an EventWindow. Request body bytes are
// returned to the client's windows (WINDOW_UPDATE) only when the proxy
// says with Consumed that it passed them on, so a slow backend holds the
// client's window and the memory a stream or a connection can make the
// proxy hold is bounded by Limits.StreamWindow and Limits.ConnWindow.
//
// Frames are parsed and written with golang.org/x/net/http2's Framer, handed
// only whole frames, and header blocks are decoded with its hpack.Decoder;
// see docs/design.md for the frame types this package parses itself.
//
// A Conn belongs to one event loop and is not safe for concurrent use.
// Limits values may be shared.
package http2
