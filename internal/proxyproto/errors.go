package proxyproto

import "errors"

// ErrNeedMore is returned by Parse when buf holds the start of a header
// that may still become valid. Call again with the same bytes extended by
// those that arrive next. A connection that closes, or times out, while
// Parse still says ErrNeedMore sent a truncated header.
var ErrNeedMore = errors.New("proxyproto: need more data")

// Error is a header that cannot be accepted. The receiver must close the
// connection (the spec says so for every one of them) without reading
// further.
//
// Every *Error is a predeclared package-level value, so returning one never
// allocates; compare with == or errors.Is. Callers must not modify them.
type Error struct {
	// Code is a short stable name, suitable as a metric label:
	// "signature", "v1_too_long", "v2_tlv", ...
	Code string
	// Reason says what is wrong, for logs.
	Reason string
}

// Error implements the error interface.
func (e *Error) Error() string { return "proxyproto: " + e.Reason }

// The errors Parse returns.
var (
	// ErrSignature: the bytes start with neither "PROXY " (v1) nor the
	// 12-byte v2 signature. It is returned as soon as the first byte that
	// differs arrives.
	ErrSignature = &Error{"signature", "not a PROXY protocol header"}

	ErrV1TooLong  = &Error{"v1_too_long", "v1 line longer than 107 bytes"}
	ErrV1LineEnd  = &Error{"v1_line_end", "v1 line with a CR or LF that is not a CRLF"}
	ErrV1Protocol = &Error{"v1_protocol", "v1 protocol other than TCP4, TCP6 or UNKNOWN"}
	ErrV1Fields   = &Error{"v1_fields", "v1 line without exactly two addresses and two ports separated by single spaces"}
	ErrV1Address  = &Error{"v1_address", "v1 address that is not a canonical address of the announced family"}
	ErrV1Port     = &Error{"v1_port", "v1 port that is not a decimal 0-65535 without leading zeros"}

	ErrV2Version  = &Error{"v2_version", "v2 version other than 2"}
	ErrV2Command  = &Error{"v2_command", "v2 command other than LOCAL or PROXY"}
	ErrV2Family   = &Error{"v2_family", "v2 unknown address family or transport protocol"}
	ErrV2TooLong  = &Error{"v2_too_long", "v2 header longer than 4096 bytes"}
	ErrV2Length   = &Error{"v2_length", "v2 length shorter than the address block of the announced family"}
	ErrV2TLV      = &Error{"v2_tlv", "v2 TLV that does not fit the header, or with an invalid length"}
	ErrV2Checksum = &Error{"v2_crc32c", "v2 CRC32C checksum mismatch"}
)

// Errors lists every error Parse returns, in a fixed order, so that a
// receiver can count them by [Error.Code] in an array (a metric's label
// values) without a map.
var Errors = [...]*Error{
	ErrSignature,
	ErrV1TooLong, ErrV1LineEnd, ErrV1Protocol, ErrV1Fields, ErrV1Address, ErrV1Port,
	ErrV2Version, ErrV2Command, ErrV2Family, ErrV2TooLong, ErrV2Length, ErrV2TLV, ErrV2Checksum,
}
