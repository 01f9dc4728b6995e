// Package http1 parses HTTP/1.1 message heads and validates chunked bodies
// for the proxy's event loop. It never does I/O: the caller passes the bytes
// it has buffered and gets back how many belong to the head or body, or
// ErrNeedMore.
//
// Parsing is strict, to defend against request smuggling (RFC 9110,
// RFC 9112 section 11.2): lines end in CRLF only; obs-fold, whitespace
// before a field's colon, control characters, repeated Host or
// Content-Length, Content-Length with Transfer-Encoding, and any transfer
// coding but a single chunked are rejected with the status the proxy
// should answer (*Error), a byte that cannot start a request line as soon
// as it arrives. Messages are never repaired.
//
// Nothing here allocates after the first message parsed into a Request or
// Response: returned slices point into the caller's buffer and are valid
// until the caller modifies or discards it. Parsers and scanners hold the
// state of one message on one connection and are not safe for concurrent
// use; Limits values may be shared.
package http1
