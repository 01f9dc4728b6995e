package accesslog

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// formatCases are entries and the fields each must produce, in order,
// the same in both formats except for the values in logfmt.
var formatCases = []struct {
	name   string
	e      func() Entry
	want   []field
	logfmt map[string]string // values that differ in logfmt
}{
	{
		name: "every field",
		e:    testEntry,
		want: []field{
			{"time", "2026-03-04T04:06:07.089Z"},
			{"client", "2001:db8::1"},
			{"method", "POST"},
			{"path", "/api/v1/items?id=7"},
			{"proto", "HTTP/1.1"},
			{"status", "502"},
			{"bytes_in", "1234"},
			{"bytes_out", "5678"},
			{"duration_ms", "12.346"},
			{"backend", "http://backend1:8080"},
			{"upstream_ms", "1.5"},
			{"error", "connect"},
		},
	},
	{
		name: "no upstream response, no error, awkward path",
		e: func() Entry {
			return Entry{
				Time:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
				Client:   netip.MustParseAddr("::ffff:10.0.0.7"),
				Method:   "GET",
				Path:     "/a b\"c\nd=e\\f\x00ü",
				Proto:    "HTTP/1.0",
				Status:   499,
				BytesOut: 0,
				Duration: 20 * time.Minute,
				Upstream: -1,
			}
		},
		want: []field{
			{"time", "2026-01-02T03:04:05.000Z"},
			{"client", "10.0.0.7"},
			{"method", "GET"},
			{"path", "/a b\"c\nd=e\\f\x00ü"},
			{"proto", "HTTP/1.0"},
			{"status", "499"},
			{"bytes_in", "0"},
			{"bytes_out", "0"},
			{"duration_ms", "1200000"},
			{"backend", ""},
		},
		// slog writes floats of 1e6 and more in exponent form in logfmt
		// (strconv 'g'), in plain decimal in JSON (as encoding/json).
		logfmt: map[string]string{"duration_ms": "1.2e+06"},
	},
	{
		name: "HTTP/2 stream with route, pool and connection",
		e: func() Entry {
			return Entry{
				Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Method: "GET", Path: "/", Proto: "HTTP/2.0",
				Status: 200, Upstream: -1, ID: "r1", Route: "api", Pool: "p", Conn: 42,
			}
		},
		want: []field{
			{"time", "2026-01-02T03:04:05.000Z"},
			{"client", ""},
			{"method", "GET"},
			{"path", "/"},
			{"proto", "HTTP/2.0"},
			{"status", "200"},
			{"bytes_in", "0"},
			{"bytes_out", "0"},
			{"duration_ms", "0"},
			{"backend", ""},
			{"request_id", "r1"},
			{"route", "api"},
			{"pool", "p"},
			{"conn", "42"},
		},
	},
	{
		name: "zero entry, upstream 0",
		e:    func() Entry { return Entry{} },
		want: []field{
			{"time", "0001-01-01T00:00:00.000Z"},
			{"client", ""},
			{"method", ""},
			{"path", ""},
			{"proto", ""},
			{"status", "0"},
			{"bytes_in", "0"},
			{"bytes_out", "0"},
			{"duration_ms", "0"},
			{"backend", ""},
			{"upstream_ms", "0"},
		},
	},
}

func TestFormats(t *testing.T) {
	parsers := map[string]func(*testing.T, string) []field{
		"json":   parseJSON,
		"logfmt": parseLogfmt,
	}
	for format, parse := range parsers {
		for _, tc := range formatCases {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				var out lineBuffer
				l, err := New(Config{Format: format, Writer: &out})
				if err != nil {
					t.Fatal(err)
				}
				e := tc.e()
				l.Log(&e)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				lines := out.lines(t)
				if len(lines) != 1 {
					t.Fatalf("%d lines, want 1: %q", len(lines), lines)
				}
				want := slices.Clone(tc.want)
				for i, f := range want {
					if v, ok := tc.logfmt[f.key]; ok && format == "logfmt" {
						want[i].val = v
					}
				}
				if got := parse(t, lines[0]); !slices.Equal(got, want) {
					t.Errorf("line %s\ngot  %q\nwant %q", lines[0], got, want)
				}
			})
		}
	}
}

// TestFormatShape pins the look of a line, as documented in
// docs/accesslog.md.
func TestFormatShape(t *testing.T) {
	want := map[string]string{
		"json":   `{"time":"2026-03-04T04:06:07.089Z","client":"2001:db8::1","method":"POST","path":"/api/v1/items?id=7","proto":"HTTP/1.1","status":502,"bytes_in":1234,"bytes_out":5678,"duration_ms":12.346,"backend":"http://backend1:8080","upstream_ms":1.5,"error":"connect"}`,
		"logfmt": `time=2026-03-04T04:06:07.089Z client=2001:db8::1 method=POST path="/api/v1/items?id=7" proto=HTTP/1.1 status=502 bytes_in=1234 bytes_out=5678 duration_ms=12.346 backend=http://backend1:8080 upstream_ms=1.5 error=connect`,
	}
	for format, w := range want {
		var out lineBuffer
		l, err := New(Config{Format: format, Writer: &out})
		if err != nil {
			t.Fatal(err)
		}
		e := testEntry()
		l.Log(&e)
		l.Close()
		if got := strings.Join(out.lines(t), "\n"); got != w {
			t.Errorf("%s:\ngot  %s\nwant %s", format, got, w)
		}
	}
}

// TestTimeCache checks that entries in the same millisecond share a time
// string and entries in others do not, whatever their zone.
func TestTimeCache(t *testing.T) {
	f := newFormatter("json", &lineBuffer{})
	base := time.Date(2026, 3, 4, 5, 6, 7, 89_000_000, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{base, "2026-03-04T05:06:07.089Z"},
		{base.Add(999 * time.Microsecond), "2026-03-04T05:06:07.089Z"},
		{base.In(time.FixedZone("X", -7200)), "2026-03-04T05:06:07.089Z"},
		{base.Add(time.Millisecond), "2026-03-04T05:06:07.090Z"},
		{base, "2026-03-04T05:06:07.089Z"},
		{base.Add(-time.Nanosecond), "2026-03-04T05:06:07.088Z"},
	} {
		if got := f.time(tc.t); got != tc.want {
			t.Errorf("time(%v) = %s, want %s", tc.t, got, tc.want)
		}
	}
}
