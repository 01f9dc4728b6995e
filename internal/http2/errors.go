package http2

import (
	"errors"
	"strconv"
)

// ErrCode is an HTTP/2 error code (RFC 9113 section 7), carried in
// RST_STREAM and GOAWAY frames.
type ErrCode uint32

// The error codes of RFC 9113 section 7.
const (
	ErrCodeNo                 ErrCode = 0x0
	ErrCodeProtocol           ErrCode = 0x1
	ErrCodeInternal           ErrCode = 0x2
	ErrCodeFlowControl        ErrCode = 0x3
	ErrCodeSettingsTimeout    ErrCode = 0x4
	ErrCodeStreamClosed       ErrCode = 0x5
	ErrCodeFrameSize          ErrCode = 0x6
	ErrCodeRefusedStream      ErrCode = 0x7
	ErrCodeCancel             ErrCode = 0x8
	ErrCodeCompression        ErrCode = 0x9
	ErrCodeConnect            ErrCode = 0xa
	ErrCodeEnhanceYourCalm    ErrCode = 0xb
	ErrCodeInadequateSecurity ErrCode = 0xc
	ErrCodeHTTP11Required     ErrCode = 0xd
)

var errCodeNames = [...]string{
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR",
	"REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
	"ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
}

// String returns the code's name in RFC 9113, or its hexadecimal value.
func (c ErrCode) String() string {
	if int(c) < len(errCodeNames) {
		return errCodeNames[c]
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

// ConnError is a connection error (RFC 9113 5.4.1): the Conn has queued a
// GOAWAY with Code and accepts no more input. The proxy flushes the output
// and closes the connection.
//
// Every *ConnError returned by this package is a predeclared package-level
// value, so returning one never allocates; compare with == or errors.Is.
// Callers must not modify them.
type ConnError struct {
	Code   ErrCode
	Reason string
}

// Error implements the error interface.
func (e *ConnError) Error() string { return "http2: " + e.Code.String() + ": " + e.Reason }

func connErr(code ErrCode, reason string) *ConnError { return &ConnError{code, reason} }

// Connection errors. They are values, not types, so tests and the proxy
// can tell the reason (for a log line or a metric) without parsing text.
var (
	ErrBadPreface          = connErr(ErrCodeProtocol, "invalid connection preface")
	ErrFirstNotSettings    = connErr(ErrCodeProtocol, "first frame is not SETTINGS")
	ErrFrameTooLarge       = connErr(ErrCodeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
	ErrFrameSize           = connErr(ErrCodeFrameSize, "frame has an invalid length")
	ErrStreamZero          = connErr(ErrCodeProtocol, "stream frame on stream 0")
	ErrNotStreamZero       = connErr(ErrCodeProtocol, "connection frame on a stream")
	ErrEvenStream          = connErr(ErrCodeProtocol, "client opened an even-numbered stream")
	ErrStreamIDDecreased   = connErr(ErrCodeProtocol, "stream identifier not greater than previous ones")
	ErrIdleStream          = connErr(ErrCodeProtocol, "frame on an idle stream")
	ErrClosedStreamHeaders = connErr(ErrCodeStreamClosed, "HEADERS on a closed stream")
	ErrBadPadding          = connErr(ErrCodeProtocol, "padding longer than the payload")
	ErrExpectContinuation  = connErr(ErrCodeProtocol, "frame inside a header block")
	ErrStrayContinuation   = connErr(ErrCodeProtocol, "CONTINUATION without a header block")
	ErrPushPromise         = connErr(ErrCodeProtocol, "client sent PUSH_PROMISE")
	ErrCompression         = connErr(ErrCodeCompression, "HPACK decoding failed")
	ErrConnFlowControl     = connErr(ErrCodeFlowControl, "connection flow-control window exceeded")
	ErrWindowOverflow      = connErr(ErrCodeFlowControl, "flow-control window above 2^31-1")
	ErrZeroWindowUpdate    = connErr(ErrCodeProtocol, "WINDOW_UPDATE with increment 0")
	ErrBadSetting          = connErr(ErrCodeProtocol, "invalid SETTINGS value")
	ErrBadWindowSetting    = connErr(ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
	ErrHeaderBlockTooLarge = connErr(ErrCodeEnhanceYourCalm, "header block too large")
	ErrContinuationFlood   = connErr(ErrCodeEnhanceYourCalm, "too many CONTINUATION frames")
	ErrRapidReset          = connErr(ErrCodeEnhanceYourCalm, "too many stream resets")
	ErrControlFlood        = connErr(ErrCodeEnhanceYourCalm, "too many control or empty frames")
	ErrProtocol            = connErr(ErrCodeProtocol, "protocol error")
)

// Errors returned by the methods that write to a stream.
var (
	// ErrStreamClosed: the stream is not open for sending (never opened,
	// reset by either side, or already ended by the proxy).
	ErrStreamClosed = errors.New("http2: stream not open for sending")
	// ErrHeaderOrder: a header block out of sequence (trailers before the
	// final response head, a second final head, an informational head
	// that ends the stream, data before a final head).
	ErrHeaderOrder = errors.New("http2: header block out of sequence")
)
