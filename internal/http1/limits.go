package http1

import "math"

// Limits bounds the size of a message head. A Limits is read-only while a
// parser uses it and may be shared by any number of goroutines. A field that
// is zero or negative means its DefaultLimits value; a nil *Limits means
// DefaultLimits.
type Limits struct {
	// MaxRequestLine is the largest request line (status line, for
	// responses) in bytes, excluding its CRLF. A longer request line is
	// rejected with 414 as soon as that many bytes have arrived without a
	// line end.
	MaxRequestLine int
	// MaxHeaderBytes bounds the whole head: empty lines before the start
	// line, start line, fields and the final CRLF. A head not complete
	// within that many bytes is rejected with 431. ChunkedScanner applies it
	// to the trailer section.
	MaxHeaderBytes int
	// MaxHeaders is the largest number of header fields (trailer fields,
	// for ChunkedScanner); more are rejected with 431. The parsers allocate
	// room for this many fields once per Request or Response.
	MaxHeaders int
}

// DefaultLimits returns the limits used where a Limits field is not set:
// an 8 KiB request line, a 16 KiB head and 100 fields.
func DefaultLimits() Limits {
	return Limits{MaxRequestLine: 8192, MaxHeaderBytes: 16384, MaxHeaders: 100}
}

// resolved returns lim's effective values.
func (lim *Limits) resolved() (maxLine, maxHead, maxFields int) {
	d := DefaultLimits()
	if lim != nil {
		if lim.MaxRequestLine > 0 {
			d.MaxRequestLine = lim.MaxRequestLine
		}
		if lim.MaxHeaderBytes > 0 {
			d.MaxHeaderBytes = lim.MaxHeaderBytes
		}
		if lim.MaxHeaders > 0 {
			d.MaxHeaders = lim.MaxHeaders
		}
	}
	// Offsets inside a head are kept as int32.
	if d.MaxHeaderBytes > math.MaxInt32 {
		d.MaxHeaderBytes = math.MaxInt32
	}
	return d.MaxRequestLine, d.MaxHeaderBytes, d.MaxHeaders
}
