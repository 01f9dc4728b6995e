package breaker

import (
	"fmt"
	"time"
)

// MaxCount is the largest value accepted for [Config.MaxFailures],
// [Config.HalfOpenSuccess] and [Config.HalfOpenRequests]: the counters are
// packed into the breaker's state word with 10 bits each.
const MaxCount = 1000

// Config is the breaker's configuration. The zero value is not valid (it is
// disabled and every count is 0); start from [DefaultConfig]. A Config is a
// plain value: [Breaker.Configure] copies it.
//
// YAML keys (section circuitBreaker) are given with each field.
type Config struct {
	// Enabled turns the breaker on; a disabled breaker admits everything
	// and records nothing. Key enabled, default true.
	Enabled bool
	// MaxFailures is the number of consecutive failures that opens a
	// closed breaker, 1..MaxCount. Key maxFailures, default 5.
	MaxFailures int
	// Timeout is how long the breaker stays open before it lets probe
	// requests through (half-open), > 0. Millisecond resolution. Key
	// timeout, default 60s. It also bounds how long a half-open breaker
	// waits for probes that never report before it starts a new round.
	Timeout time.Duration
	// ResetTimeout clears a closed breaker's failure count: a failure
	// that comes more than ResetTimeout after the previous one starts the
	// count again at 1, > 0. Key resetTimeout, default 30s.
	ResetTimeout time.Duration
	// HalfOpenSuccess is the number of successful probes that closes a
	// half-open breaker, 1..MaxCount. Key halfOpenSuccess, default 2.
	HalfOpenSuccess int
	// HalfOpenRequests is the number of probe requests a half-open breaker
	// lets through at the same time, 1..MaxCount. Key halfOpenRequests,
	// default 1.
	HalfOpenRequests int
	// FailureOn5xx counts every 5xx response ([ServerError]) as a
	// failure. Without it only the gateway failures count: connect errors,
	// resets, timeouts and 502, 503 and 504 responses ([GatewayError]),
	// which say the backend is broken rather than one request of the
	// application. Key failureOn5xx, default false.
	FailureOn5xx bool
}

// DefaultConfig returns the default configuration. The caller owns the
// result.
func DefaultConfig() Config {
	return Config{
		Enabled:          true,
		MaxFailures:      5,
		Timeout:          60 * time.Second,
		ResetTimeout:     30 * time.Second,
		HalfOpenSuccess:  2,
		HalfOpenRequests: 1,
	}
}

// Validate reports the first value out of range, naming its YAML key. It
// checks the count fields even when the breaker is disabled.
func (c Config) Validate() error {
	counts := []struct {
		key string
		n   int
	}{
		{"maxFailures", c.MaxFailures},
		{"halfOpenSuccess", c.HalfOpenSuccess},
		{"halfOpenRequests", c.HalfOpenRequests},
	}
	for _, k := range counts {
		if k.n < 1 || k.n > MaxCount {
			return fmt.Errorf("circuitBreaker.%s: must be between 1 and %d, got %d", k.key, MaxCount, k.n)
		}
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("circuitBreaker.timeout: must be greater than 0, got %v", c.Timeout)
	}
	if c.ResetTimeout <= 0 {
		return fmt.Errorf("circuitBreaker.resetTimeout: must be greater than 0, got %v", c.ResetTimeout)
	}
	return nil
}

// settings is a Config prepared for the hot path: counts clamped into
// range, durations in the units the state word uses.
type settings struct {
	cfg          Config
	maxFailures  uint64
	halfSuccess  uint64
	halfRequests uint64
	openMillis   uint64 // Timeout in ms
	resetMillis  uint64 // ResetTimeout in ms
	staleSecs    uint64 // Timeout in whole seconds, at least 1
}

func newSettings(c Config) *settings {
	clamp := func(n int) uint64 { return uint64(min(max(n, 1), MaxCount)) }
	return &settings{
		cfg:          c,
		maxFailures:  clamp(c.MaxFailures),
		halfSuccess:  clamp(c.HalfOpenSuccess),
		halfRequests: clamp(c.HalfOpenRequests),
		openMillis:   uint64(max(c.Timeout.Milliseconds(), 0)),
		resetMillis:  uint64(max(c.ResetTimeout.Milliseconds(), 0)),
		staleSecs:    uint64(max((c.Timeout+time.Second-1)/time.Second, 1)),
	}
}

// defaults is used by a zero Breaker until Configure is called.
var defaults = newSettings(DefaultConfig())
