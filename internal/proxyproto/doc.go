// Package proxyproto reads and writes the PROXY protocol header, versions 1
// (text) and 2 (binary), as HAProxy's proxy-protocol.txt specifies it: the
// header a load balancer puts in front of a TCP stream to tell the
// receiver the client's address.
//
// It never does I/O. [Parse] takes the bytes a connection has buffered so
// far and returns the header's length once it is complete, [ErrNeedMore]
// while it is not, or an [*Error] as soon as the bytes cannot be a valid
// header. [AppendV1] and [AppendV2] append a header to a buffer, for
// connections to backends.
//
// Parsing is strict: a v1 line must end in CRLF within [MaxV1Len] bytes,
// addresses and ports must be canonical, a v2 header may not exceed
// [MaxV2Len] bytes, its address block must fit the family it announces and
// its TLVs must fit the block exactly (a PP2_TYPE_CRC32C checksum is
// verified). Nothing is repaired and nothing is guessed: bytes that do not
// start with a PROXY signature are an error, because the spec forbids
// detecting the header optionally.
//
// Nothing here allocates: a [Header] is filled in place and its TLV bytes
// point into the caller's buffer, valid until the caller modifies or
// discards it. The functions are safe for concurrent use; a Header is not.
package proxyproto
