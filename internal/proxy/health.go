package proxy

import (
	"strconv"
	"time"

	"github.com/connx/connx/internal/breaker"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/health"
)

// The config package holds what operators write; these map it onto the
// health and breaker packages' own settings.

func breakerConfig(cb *config.CircuitBreaker) breaker.Config {
	return breaker.Config{
		Enabled:          cb.Enabled,
		MaxFailures:      cb.MaxFailures,
		Timeout:          cb.Timeout,
		ResetTimeout:     cb.ResetTimeout,
		HalfOpenSuccess:  cb.HalfOpenSuccess,
		HalfOpenRequests: cb.HalfOpenRequests,
		FailureOn5xx:     cb.FailureOn5xx,
	}
}

func checkConfig(h *config.HealthCheck) health.CheckConfig {
	return health.CheckConfig{
		Enabled:            h.Enabled,
		Interval:           h.Interval,
		Timeout:            h.Timeout,
		Path:               h.Path,
		Method:             h.Method,
		ExpectedStatus:     health.MustParseStatusSet(h.ExpectedStatus), // validated
		HealthyThreshold:   h.HealthyThreshold,
		UnhealthyThreshold: h.UnhealthyThreshold,
		Host:               h.Host,
		Jitter:             min(h.Jitter, h.Interval/2),
	}
}

func outlierConfig(o *config.Outlier) health.OutlierConfig {
	return health.OutlierConfig{
		Enabled:             o.Enabled,
		ConsecutiveFailures: o.ConsecutiveFailures,
		FailureOn5xx:        o.FailureOn5xx,
		FailurePercent:      o.FailurePercent,
		Window:              o.Window,
		MinRequests:         o.MinRequests,
		BaseEjection:        o.BaseEjection,
		MaxEjection:         o.MaxEjection,
		MaxEjectedPercent:   o.MaxEjectedPercent,
	}
}

// outcomeOf is how a failure counts for the breaker and outlier detection.
func outcomeOf(f failure) breaker.Outcome {
	switch f {
	case failTimeout, failUpstreamIdle:
		return breaker.Timeout
	case 0:
		return breaker.Success
	case failLocal, failEarlySwitch:
		return breaker.Canceled // not the backend's doing
	case failUnsupported:
		return breaker.ServerError // an application's answer: counts only with failureOn5xx
	}
	return breaker.ConnectError
}

// retryAfter is the Retry-After, in whole seconds (at least 1), for a 503
// when no backend is available: until the earliest one may be back.
func (pl *pool) retryAfter(now int64) int {
	at := int64(0)
	for _, m := range pl.members {
		if m.weight == 0 {
			continue
		}
		a := max(m.hb.AvailableAt(now), m.downUntil.Load())
		if at == 0 || a < at {
			at = a
		}
	}
	secs := int((at - now + int64(time.Second) - 1) / int64(time.Second))
	return max(secs, 1)
}

// appendUnavailable appends a complete 503 response with Retry-After.
func appendUnavailable(b []byte, secs int) []byte {
	const body = "503 Service Unavailable\n"
	b = append(b, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nRetry-After: "...)
	b = strconv.AppendInt(b, int64(secs), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"+body...)
	return b
}
