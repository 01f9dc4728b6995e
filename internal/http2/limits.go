package http2

import "time"

// Limits bounds what one HTTP/2 connection may make ConnX hold or do. A
// Limits is read-only while a Conn uses it and may be shared by any number
// of goroutines. A field that is zero means its DefaultLimits value; a nil
// *Limits means DefaultLimits.
type Limits struct {
	// MaxConcurrentStreams is advertised in SETTINGS_MAX_CONCURRENT_STREAMS;
	// a stream opened beyond it is refused with RST_STREAM(REFUSED_STREAM).
	MaxConcurrentStreams uint32
	// MaxHeaderListSize is advertised in SETTINGS_MAX_HEADER_LIST_SIZE and
	// bounds a decoded request header or trailer section (RFC 9113 6.5.2:
	// name and value lengths plus 32 per field). A larger request head is
	// answered with 431; larger trailers reset the stream. A header block
	// whose encoded size exceeds four times this value, however it
	// decodes, is a connection error (ENHANCE_YOUR_CALM).
	MaxHeaderListSize uint32
	// HeaderTableSize is the HPACK dynamic table the peer may make ConnX
	// keep for decoding (SETTINGS_HEADER_TABLE_SIZE).
	HeaderTableSize uint32
	// MaxFrameSize is the largest frame payload accepted
	// (SETTINGS_MAX_FRAME_SIZE); between 16384 and 16777215.
	MaxFrameSize uint32
	// StreamWindow is the receive window of each stream
	// (SETTINGS_INITIAL_WINDOW_SIZE): the most request body bytes a
	// client may send on a stream before the proxy has consumed them.
	// Values below 65535 are raised to 65535.
	StreamWindow uint32
	// ConnWindow is the connection's receive window: the most request
	// body bytes of all streams together a client may send before the
	// proxy has consumed them. Values below 65535 are raised to 65535.
	ConnWindow uint32
	// MaxContinuations bounds the CONTINUATION frames of one header block
	// (CVE-2023-45288); more is a connection error (ENHANCE_YOUR_CALM).
	MaxContinuations int
	// MaxResets bounds, per FloodWindow, the streams the client resets and
	// the streams ConnX resets because of a client error (rapid reset,
	// CVE-2023-44487); more is a connection error (ENHANCE_YOUR_CALM).
	MaxResets int
	// MaxControlFrames bounds, per FloodWindow, the frames that carry no
	// request: PING, SETTINGS, PRIORITY, frames of unknown type, empty
	// DATA and CONTINUATION frames that do not end anything, and
	// WINDOW_UPDATE or RST_STREAM frames for streams already closed
	// (CVE-2019-9512, -9515, -9516, -9518). More is a connection error
	// (ENHANCE_YOUR_CALM).
	MaxControlFrames int
	// FloodWindow is the interval MaxResets and MaxControlFrames count in.
	FloodWindow time.Duration
}

// DefaultLimits returns the limits used where a Limits field is not set:
// 100 concurrent streams, a 32 KiB header list, a 4 KiB HPACK table,
// 16 KiB frames, a 64 KiB stream window, a 1 MiB connection window, 16
// CONTINUATION frames per header block, and per 10 s at most 200 resets
// and 1000 control frames.
func DefaultLimits() Limits {
	return Limits{
		MaxConcurrentStreams: 100,
		MaxHeaderListSize:    32 << 10,
		HeaderTableSize:      4096,
		MaxFrameSize:         16384,
		StreamWindow:         65535,
		ConnWindow:           1 << 20,
		MaxContinuations:     16,
		MaxResets:            200,
		MaxControlFrames:     1000,
		FloodWindow:          10 * time.Second,
	}
}

// resolved returns lim with defaults filled in and values clamped to what
// the protocol allows.
func (lim *Limits) resolved() Limits {
	d := DefaultLimits()
	if lim == nil {
		return d
	}
	r := *lim
	if r.MaxConcurrentStreams == 0 {
		r.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if r.MaxHeaderListSize == 0 {
		r.MaxHeaderListSize = d.MaxHeaderListSize
	}
	if r.HeaderTableSize == 0 {
		r.HeaderTableSize = d.HeaderTableSize
	}
	if r.MaxFrameSize == 0 {
		r.MaxFrameSize = d.MaxFrameSize
	}
	r.MaxFrameSize = min(max(r.MaxFrameSize, minMaxFrameSize), maxFrameSizeLimit)
	if r.StreamWindow == 0 {
		r.StreamWindow = d.StreamWindow
	}
	r.StreamWindow = min(max(r.StreamWindow, defaultWindow), maxWindow)
	if r.ConnWindow == 0 {
		r.ConnWindow = d.ConnWindow
	}
	r.ConnWindow = min(max(r.ConnWindow, defaultWindow), maxWindow)
	if r.MaxContinuations <= 0 {
		r.MaxContinuations = d.MaxContinuations
	}
	if r.MaxResets <= 0 {
		r.MaxResets = d.MaxResets
	}
	if r.MaxControlFrames <= 0 {
		r.MaxControlFrames = d.MaxControlFrames
	}
	if r.FloodWindow <= 0 {
		r.FloodWindow = d.FloodWindow
	}
	return r
}

// Clock tells a Conn the time; it is read only when a frame counts
// against a flood budget. The proxy passes its coarse loop clock.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
