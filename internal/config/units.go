package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// parseSeconds converts a number of seconds, the seed's duration style, to
// a Duration.
func parseSeconds(sec float64) (time.Duration, error) {
	if math.IsNaN(sec) || math.IsInf(sec, 0) {
		return 0, errors.New("must be a finite number of seconds")
	}
	ns := math.Round(sec * float64(time.Second))
	if ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return 0, errors.New("duration out of range")
	}
	return time.Duration(ns), nil
}

// sizeUnits maps lower-case unit suffixes to their multiplier in bytes.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"kib": 1 << 10,
	"mb":  1000 * 1000,
	"mib": 1 << 20,
	"gb":  1000 * 1000 * 1000,
	"gib": 1 << 30,
}

// errSizeSyntax describes the accepted size forms.
var errSizeSyntax = errors.New(`expected a size: an integer number of bytes, optionally followed by a unit B, KB, KiB, MB, MiB, GB or GiB (e.g. "256KiB")`)

// parseSize parses a size such as "256KiB", "1 MB" or "4096". Units are
// case-insensitive; KB/MB/GB are powers of 1000 and KiB/MiB/GiB powers of
// 1024.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errSizeSyntax
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, errSizeSyntax
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("size out of range")
	}
	return n * mult, nil
}

// formatSize renders n bytes in the largest binary unit that divides it,
// for error messages.
func formatSize(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
