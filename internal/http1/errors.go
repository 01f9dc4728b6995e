package http1

import "errors"

// ErrNeedMore is returned by ParseRequest and ParseResponse when buf does
// not yet hold a complete head. Call again with the same buffer extended by
// the bytes that arrive next.
var ErrNeedMore = errors.New("http1: need more data")

// Error is a protocol error in a message head or a chunked body.
//
// Status is the HTTP status a server should answer a client with: 400, 414,
// 431, 501 or 505 for requests and request bodies. Errors from
// ParseResponse carry 502, because the proxy answers a malformed backend
// response with 502 whatever the reason.
//
// Every *Error returned by this package is a predeclared package-level value,
// so returning one never allocates; compare with == or errors.Is. Callers
// must not modify them.
type Error struct {
	Status int
	Reason string
}

// Error implements the error interface.
func (e *Error) Error() string { return "http1: " + e.Reason }

// errCode names a head-parsing failure independently of the message kind;
// reqErrors and respErrors map it to the *Error a request or a response
// parser returns.
type errCode uint8

const (
	ecNone errCode = iota
	ecNeedMore
	ecBareLF
	ecBareCR
	ecTooManyEmptyLines
	ecLineTooLong
	ecHeadTooLarge
	ecTooManyHeaders
	ecBadMethod
	ecBadStartLine
	ecBadTarget
	ecFragment
	ecBadVersion
	ecVersionNotSupported
	ecBadStatus
	ecBadReason
	ecObsFold
	ecEmptyName
	ecSpaceBeforeColon
	ecBadName
	ecNoColon
	ecBadValue
	ecMissingHost
	ecDupHost
	ecBadHost
	ecDupCL
	ecBadCL
	ecCLAndTE
	ecTEOnHTTP10
	ecDupChunked
	ecBadTE
	ecUnsupportedTE
	ecBadConnection
	ecBadTrailerDecl
	ecBufferShrank
	ecCount
)

var errInfo = [ecCount]struct {
	status int
	reason string
}{
	ecBareLF:              {400, "bare LF line terminator"},
	ecBareCR:              {400, "bare CR in head"},
	ecTooManyEmptyLines:   {400, "too many empty lines before the start line"},
	ecLineTooLong:         {414, "start line too long"},
	ecHeadTooLarge:        {431, "header section too large"},
	ecTooManyHeaders:      {431, "too many header fields"},
	ecBadMethod:           {400, "invalid method"},
	ecBadStartLine:        {400, "malformed start line"},
	ecBadTarget:           {400, "invalid request-target"},
	ecFragment:            {400, "fragment in request-target"},
	ecBadVersion:          {400, "malformed HTTP version"},
	ecVersionNotSupported: {505, "HTTP version not supported"},
	ecBadStatus:           {400, "invalid status code"},
	ecBadReason:           {400, "invalid reason phrase"},
	ecObsFold:             {400, "obsolete line folding"},
	ecEmptyName:           {400, "empty header field name"},
	ecSpaceBeforeColon:    {400, "whitespace between field name and colon"},
	ecBadName:             {400, "invalid character in header field name"},
	ecNoColon:             {400, "header field line without colon"},
	ecBadValue:            {400, "invalid character in header field value"},
	ecMissingHost:         {400, "missing Host header"},
	ecDupHost:             {400, "repeated Host header"},
	ecBadHost:             {400, "invalid Host header"},
	ecDupCL:               {400, "repeated Content-Length"},
	ecBadCL:               {400, "invalid Content-Length"},
	ecCLAndTE:             {400, "both Content-Length and Transfer-Encoding"},
	ecTEOnHTTP10:          {400, "Transfer-Encoding in an HTTP/1.0 message"},
	ecDupChunked:          {400, "chunked applied more than once"},
	ecBadTE:               {400, "malformed Transfer-Encoding"},
	ecUnsupportedTE:       {501, "unsupported transfer coding"},
	ecBadConnection:       {400, "malformed Connection header"},
	ecBadTrailerDecl:      {400, "Trailer names a framing or routing field"},
	ecBufferShrank:        {500, "buffer shorter than in the previous call (missing Reset?)"},
}

// reqErrors and respErrors hold one predeclared *Error per errCode.
var (
	reqErrors  = buildErrors(false)
	respErrors = buildErrors(true)
)

func buildErrors(response bool) (t [ecCount]*Error) {
	for c := ecBareLF; c < ecCount; c++ {
		e := errInfo[c]
		if response {
			e.status = 502
			if c == ecLineTooLong {
				e.reason = "status line too long"
			}
		}
		t[c] = &Error{Status: e.status, Reason: e.reason}
	}
	return t
}

// Errors that callers may want to recognise by identity. Each is the value
// ParseRequest returns; ParseResponse returns distinct values with status 502.
var (
	ErrRequestLineTooLong = reqErrors[ecLineTooLong]         // 414: beyond Limits.MaxRequestLine
	ErrHeaderTooLarge     = reqErrors[ecHeadTooLarge]        // 431: beyond Limits.MaxHeaderBytes
	ErrTooManyHeaders     = reqErrors[ecTooManyHeaders]      // 431: beyond Limits.MaxHeaders
	ErrUnsupportedTE      = reqErrors[ecUnsupportedTE]       // 501: a transfer coding other than chunked
	ErrVersion            = reqErrors[ecVersionNotSupported] // 505: HTTP/x.y other than 1.0 and 1.1

	// ErrResponseUnsupportedTE is ParseResponse's error for a well-formed
	// transfer coding other than a single chunked (502).
	ErrResponseUnsupportedTE = respErrors[ecUnsupportedTE]
)

// Errors of the chunked body scanner; all have status 400.
var (
	errChunkSize         = &Error{400, "invalid chunk size"}
	errChunkSizeTooLong  = &Error{400, "chunk size has more than 16 hex digits"}
	errChunkSizeTooLarge = &Error{400, "chunk size of 2^63 or more"}
	errChunkLine         = &Error{400, "malformed chunk size line"}
	errChunkExtTooLong   = &Error{400, "chunk extension too long"}
	errChunkExtChar      = &Error{400, "control character in chunk extension"}
	errChunkBareLF       = &Error{400, "bare LF in chunked body"}
	errChunkBareCR       = &Error{400, "CR not followed by LF in chunked body"}
	errChunkDataCRLF     = &Error{400, "missing CRLF after chunk data"}
	errTrailerObsFold    = &Error{400, "obsolete line folding in trailer section"}
	errTrailerName       = &Error{400, "invalid trailer field name"}
	errTrailerValue      = &Error{400, "invalid character in trailer field value"}
	errTrailerForbidden  = &Error{400, "framing or routing field in trailer section"}
	errTrailerTooLarge   = &Error{400, "trailer section too large"}
	errTrailerTooMany    = &Error{400, "too many trailer fields"}
)
