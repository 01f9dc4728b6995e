package http1

import (
	"errors"
	"strings"
	"testing"
)

// scanAll feeds pieces to a fresh scanner. It returns the bytes accepted,
// done, and the first error, stopping at done or error.
func scanAll(pieces [][]byte, lim *Limits) (total int, done bool, err error) {
	var s ChunkedScanner
	for _, p := range pieces {
		n, d, e := s.Scan(p, lim)
		total += n
		if e != nil {
			return total, false, e
		}
		if d {
			return total, true, nil
		}
		if n != len(p) {
			return total, false, nil // cannot happen: not done means all consumed
		}
	}
	return total, false, nil
}

// splits returns data whole, split in two at every offset, and byte by byte.
func splits(data []byte) [][][]byte {
	out := [][][]byte{{data}}
	for i := 1; i < len(data); i++ {
		out = append(out, [][]byte{data[:i], data[i:]})
	}
	var bytewise [][]byte
	for i := range data {
		bytewise = append(bytewise, data[i:i+1])
	}
	return append(out, bytewise)
}

// checkSplits asserts that every split of data gives the same result as
// the whole, and returns that result.
func checkSplits(t *testing.T, data []byte, lim *Limits) (int, bool, error) {
	t.Helper()
	n, done, err := scanAll([][]byte{data}, lim)
	for _, p := range splits(data) {
		pn, pd, pe := scanAll(p, lim)
		if err == nil && (pn != n || pd != done || pe != nil) || err != nil && pe != err {
			t.Fatalf("split %d pieces (first %d bytes): %d, %v, %v; whole: %d, %v, %v",
				len(p), len(p[0]), pn, pd, pe, n, done, err)
		}
	}
	return n, done, err
}

func TestChunkedScanValid(t *testing.T) {
	tests := []struct {
		name string
		body string
		rest string // the next message
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", ""},
		{"next message follows", "5\r\nhello\r\n0\r\n\r\n", "GET / HTTP/1.1\r\n"},
		{"empty body", "0\r\n\r\n", "X"},
		{"several chunks, upper and lower hex", "3\r\nabc\r\nA\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n", ""},
		{"16 hex digits", "000000000000000A\r\n0123456789\r\n0000000000000000\r\n\r\n", ""},
		{"extensions", "5;name=value;flag\r\nhello\r\n0;last=\"q s\"\r\n\r\n", ""},
		{"BWS before extension", "5 \t;a=b\r\nhello\r\n0\r\n\r\n", ""},
		{"extension with HTAB and obs-text", "1;a=\"\t\xff\"\r\nx\r\n0\r\n\r\n", ""},
		{"extension of 4096 bytes", "1;" + strings.Repeat("e", 4095) + "\r\nx\r\n0\r\n\r\n", ""},
		{"trailers", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\nx-t:  v v \r\n\r\n", "next"},
		{"data containing CRLF", "4\r\n\r\n\r\n\r\n0\r\n\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, done, err := checkSplits(t, []byte(tc.body+tc.rest), nil)
			if err != nil || !done || n != len(tc.body) {
				t.Fatalf("Scan = %d, %v, %v; want %d, true, nil", n, done, err, len(tc.body))
			}
		})
	}
}

func TestChunkedScanIncomplete(t *testing.T) {
	body := "5\r\nhello\r\n0\r\nX: y\r\n\r\n"
	for i := 0; i < len(body); i++ {
		n, done, err := scanAll([][]byte{[]byte(body[:i])}, nil)
		if n != i || done || err != nil {
			t.Fatalf("prefix %d: %d, %v, %v; want %d, false, nil", i, n, done, err, i)
		}
	}
}

func TestChunkedScanInvalid(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *Error
	}{
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"hex overflow", "10000000000000000\r\n", errChunkSizeTooLong},
		{"17 digits of leading zeros", "00000000000000005\r\nhello\r\n0\r\n\r\n", errChunkSizeTooLong},
		{"empty size", "\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"non-hex size", "g\r\n", errChunkSize},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"plus sign", "+5\r\nhello\r\n", errChunkSize},
		{"space before size", " 5\r\nhello\r\n", errChunkSize},
		{"whitespace after size without extension", "5 \r\nhello\r\n0\r\n\r\n", errChunkLine},
		{"junk after BWS", "5 x\r\nhello\r\n", errChunkLine},
		{"extension too long", "1;" + strings.Repeat("e", 4096) + "\r\nx\r\n0\r\n\r\n", errChunkExtTooLong},
		{"BWS too long", "1" + strings.Repeat(" ", 4097) + ";\r\nx\r\n", errChunkExtTooLong},
		{"NUL in extension", "5;a\x00\r\nhello\r\n", errChunkExtChar},
		{"DEL in extension", "5;a\x7f\r\nhello\r\n", errChunkExtChar},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", errChunkBareLF},
		{"bare LF in extension", "5;a\nhello\r\n", errChunkBareLF},
		{"bare LF after empty size", "\nhello", errChunkBareLF},
		{"bare CR after size", "5\rhello\r\n", errChunkBareCR},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", errChunkDataCRLF},
		{"missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", errChunkDataCRLF},
		{"data longer than size", "3\r\nhello\r\n0\r\n\r\n", errChunkDataCRLF},
		{"CR without LF after data", "5\r\nhello\rX", errChunkDataCRLF},
		{"bare LF after last chunk", "0\n\r\n", errChunkBareLF},
		{"bare LF ending trailers", "0\r\n\n", errChunkBareLF},
		{"bare LF after trailer field", "0\r\nX: y\n\r\n", errChunkBareLF},
		{"bare CR ending trailers", "0\r\n\rX", errChunkBareCR},
		{"trailer obs-fold", "0\r\nX: y\r\n z\r\n\r\n", errTrailerObsFold},
		{"trailer space before colon", "0\r\nX : y\r\n\r\n", errTrailerName},
		{"trailer empty name", "0\r\n: y\r\n\r\n", errTrailerName},
		{"trailer without colon", "0\r\nXy\r\n\r\n", errTrailerName},
		{"trailer NUL in value", "0\r\nX: a\x00\r\n\r\n", errTrailerValue},
		{"trailer Content-Length", "0\r\nContent-Length: 5\r\n\r\n", errTrailerForbidden},
		{"trailer Transfer-Encoding", "0\r\ntransfer-encoding: chunked\r\n\r\n", errTrailerForbidden},
		{"trailer Host", "0\r\nHOST: a\r\n\r\n", errTrailerForbidden},
		{"trailer section too large", "0\r\nX: " + strings.Repeat("v", 16384) + "\r\n\r\n", errTrailerTooLarge},
		{"too many trailers", "0\r\n" + strings.Repeat("X: y\r\n", 101) + "\r\n", errTrailerTooMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.body)
			var n int
			var err error
			if len(data) < 512 {
				n, _, err = checkSplits(t, data, nil)
			} else {
				n, _, err = scanAll([][]byte{data}, nil)
			}
			if err != tc.want {
				t.Fatalf("Scan = %d, %v; want %v", n, err, tc.want)
			}
			if err.(*Error).Status != 400 {
				t.Errorf("status %d", err.(*Error).Status)
			}
			// The error is sticky.
			var s ChunkedScanner
			s.Scan(data, nil)
			if _, _, err2 := s.Scan([]byte("0\r\n\r\n"), nil); err2 != tc.want {
				t.Errorf("after error: %v", err2)
			}
		})
	}
}

func TestChunkedScanLimits(t *testing.T) {
	lim := &Limits{MaxHeaderBytes: 16, MaxHeaders: 2}
	tests := []struct {
		name string
		body string
		want error
	}{
		{"trailer section at limit", "0\r\nA: 1\r\nBB: 23\r\n\r\n", nil},
		{"trailer section over limit", "0\r\nA: 1\r\nBB: 234\r\n\r\n", errTrailerTooLarge},
		{"two trailers", "0\r\nA:\r\nB:\r\n\r\n", nil},
		{"three trailers", "0\r\nA:\r\nB:\r\nC:\r\n\r\n", errTrailerTooMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, done, err := checkSplits(t, []byte(tc.body), lim)
			if err != tc.want || (err == nil) != done {
				t.Fatalf("Scan: done %v, err %v; want %v", done, err, tc.want)
			}
		})
	}
}

func TestChunkedScanReset(t *testing.T) {
	var s ChunkedScanner
	body := []byte("3\r\nabc\r\n0\r\n\r\n")
	for i := 0; i < 3; i++ {
		n, done, err := s.Scan(body, nil)
		if n != len(body) || !done || err != nil {
			t.Fatalf("round %d: %d, %v, %v", i, n, done, err)
		}
		if n, done, err := s.Scan(body, nil); n != 0 || !done || err != nil {
			t.Fatalf("after done: %d, %v, %v", n, done, err)
		}
		s.Reset()
	}
}

// TestChunkedScanLinear feeds a body one byte at a time and checks that
// only framing bytes were examined one at a time, chunk data in bulk.
func TestChunkedScanLinear(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 16; i++ {
		sb.WriteString("400\r\n" + strings.Repeat("d", 0x400) + "\r\n")
	}
	sb.WriteString("0\r\n\r\n")
	data := []byte(sb.String())
	var s ChunkedScanner
	for i := range data {
		n, done, err := s.Scan(data[i:i+1], nil)
		if n != 1 || err != nil || done != (i == len(data)-1) {
			t.Fatalf("at %d: %d, %v, %v", i, n, done, err)
		}
	}
	if framing := 16*7 + 5; s.work != framing {
		t.Errorf("work = %d, want %d", s.work, framing)
	}
	s.Reset()
	if _, done, _ := s.Scan(data, nil); !done || s.work != 16*7+5 {
		t.Errorf("whole: done %v, work %d", done, s.work)
	}
}

// TestChunkedPayload checks Payload counts the chunk data only: not the
// size lines, extensions, CRLFs or trailers, and a chunk in full as soon as
// its size line is complete, however the body is split.
func TestChunkedPayload(t *testing.T) {
	oneByteChunks := strings.Repeat("1;ext=x\r\nx\r\n", 9000) + "0\r\nX-Trailer: " + strings.Repeat("t", 1000) + "\r\n\r\n"
	tests := []struct {
		name   string
		body   string
		want   int64 // Payload after the whole body
		chunks int   // Chunks after the whole body
	}{
		{"empty body", "0\r\n\r\n", 0, 1},
		{"last chunk without the final CRLF", "0\r\n", 0, 1},
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", 5, 2},
		{"9000 one-byte chunks with extensions and a trailer", oneByteChunks, 9000, 9001},
		{"hex sizes", "a\r\n0123456789\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n", 26, 3},
		{"declared, data not yet here", "400\r\nabc", 0x400, 1},
		{"size line incomplete", "400", 0, 0},
		{"size line before its LF", "400;x=y\r", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.body)
			pieces := [][][]byte{{data}}
			if len(data) < 256 {
				pieces = splits(data)
			} else {
				var bytewise [][]byte
				for i := range data {
					bytewise = append(bytewise, data[i:i+1])
				}
				pieces = append(pieces, bytewise)
			}
			for _, p := range pieces {
				var s ChunkedScanner
				for _, b := range p {
					if _, _, err := s.Scan(b, nil); err != nil {
						t.Fatalf("Scan: %v", err)
					}
				}
				if got := s.Payload(); got != tc.want {
					t.Fatalf("%d pieces: Payload = %d, want %d", len(p), got, tc.want)
				}
				if got := s.Chunks(); got != tc.chunks {
					t.Fatalf("%d pieces: Chunks = %d, want %d", len(p), got, tc.chunks)
				}
			}
		})
	}
	// Declared sizes add up without overflowing.
	var s ChunkedScanner
	for range 3 {
		if _, _, err := s.Scan([]byte("7fffffffffffffff\r\n"), nil); err != nil {
			t.Fatal(err)
		}
		s.state = csSizeStart // pretend the data went by
	}
	if got := s.Payload(); got != 1<<63-1 {
		t.Errorf("Payload after huge chunks = %d, want MaxInt64", got)
	}
	s.Reset()
	if got, n := s.Payload(), s.Chunks(); got != 0 || n != 0 {
		t.Errorf("Payload, Chunks after Reset = %d, %d", got, n)
	}
}

// TestChunkedForbid: a name given to Forbid is refused in the trailers,
// in any case, and only that exact name; Reset forgets it.
func TestChunkedForbid(t *testing.T) {
	lim := &Limits{}
	for _, tc := range []struct {
		forbid, trailer string
		refused         bool
	}{
		{"X-Client-Subject", "x-client-subject: a", true},
		{"X-Client-Subject", "X-CLIENT-SUBJECT: a", true},
		{"x-client-subject", "X-Client-Subject:a", true},
		{"X-Client-Subject", "X-Client-Subjects: a", false},
		{"X-Client-Subject", "X-Client-Subjec: a", false},
		{"X-Client-Subject", "Y-Client-Subject: a", false},
		{"", "X-Client-Subject: a", false},
		{"A-Very-Long-Field-Name-Of-Forty-Bytes-X", "a-very-long-field-name-of-forty-bytes-x: 1", true},
		{"A-Very-Long-Field-Name-Of-Forty-Bytes-X", "a-very-long-field-name-of-forty-bytes-y: 1", false},
	} {
		var s ChunkedScanner
		s.Forbid(tc.forbid)
		body := "3\r\nabc\r\n0\r\nX-Other: 1\r\n" + tc.trailer + "\r\n\r\n"
		_, done, err := s.Scan([]byte(body), lim)
		if tc.refused {
			var e *Error
			if !errors.As(err, &e) || e != errTrailerForbidden {
				t.Errorf("forbid %q, trailer %q: done %v err %v, want %v", tc.forbid, tc.trailer, done, err, errTrailerForbidden)
			}
			continue
		}
		if err != nil || !done {
			t.Errorf("forbid %q, trailer %q: done %v err %v, want accepted", tc.forbid, tc.trailer, done, err)
		}
	}
	var s ChunkedScanner
	s.Forbid("X-Client-Subject")
	s.Reset()
	if _, done, err := s.Scan([]byte("0\r\nX-Client-Subject: a\r\n\r\n"), lim); err != nil || !done {
		t.Errorf("after Reset: done %v err %v, want accepted", done, err)
	}
}

// TestChunkSizeBelow2To63: a chunk size a signed 64-bit reader would see
// as negative is refused, as nginx and HAProxy refuse it; the largest
// positive one is accepted.
func TestChunkSizeBelow2To63(t *testing.T) {
	for _, tc := range []struct {
		size string
		want error
	}{
		{"7fffffffffffffff", nil},
		{"07fffffffffffffff", errChunkSizeTooLong},
		{"8000000000000000", errChunkSizeTooLarge},
		{"ffffffffffffffff", errChunkSizeTooLarge},
		{"FFFFFFFFFFFFFFFF", errChunkSizeTooLarge},
	} {
		var s ChunkedScanner
		_, _, err := s.Scan([]byte(tc.size+"\r\n"), nil)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("size %s: %v, want %v", tc.size, err, tc.want)
		}
	}
}
