package breaker

// Outcome is how one request to a backend ended, as the proxy reports it to
// [Breaker.Done] (and to the passive health detector). The zero value is
// [Success].
type Outcome uint8

// Outcomes.
const (
	// Success: the backend answered with a status below 500.
	Success Outcome = iota
	// ConnectError: the connection to the backend could not be made, or
	// broke before a complete response head arrived. Always a failure.
	ConnectError
	// Timeout: the backend did not answer in time (connect, response head
	// or read timeout). Always a failure.
	Timeout
	// ServerError: the backend answered with a 5xx status other than 502,
	// 503 and 504: the application failed, which says nothing about the
	// backend itself. A failure only when [Config.FailureOn5xx] is set.
	ServerError
	// Canceled: the exchange ended for a reason that says nothing about the
	// backend (the client went away, the proxy is shutting down). It is
	// neither success nor failure; reporting it returns a probe slot.
	Canceled
	// GatewayError: the backend answered 502, 503 or 504, the statuses
	// that say the backend (or what stands behind it) cannot serve. Always
	// a failure, like [ConnectError] and [Timeout]: these are the gateway
	// failures, as Envoy calls them.
	GatewayError
)

var outcomeNames = [...]string{
	Success:      "success",
	ConnectError: "connect error",
	Timeout:      "timeout",
	ServerError:  "5xx response",
	Canceled:     "canceled",
	GatewayError: "502/503/504 response",
}

// String returns a short lower-case name such as "connect error".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown outcome"
}

// StatusOutcome is how a response with status counts: [GatewayError] for
// 502, 503 and 504, [ServerError] for the other 5xx, [Success] below 500.
func StatusOutcome(status int) Outcome {
	switch {
	case status == 502 || status == 503 || status == 504:
		return GatewayError
	case status >= 500:
		return ServerError
	}
	return Success
}

// Failure reports whether o counts as a failure. The gateway failures
// ([ConnectError], [Timeout], [GatewayError]) always do; [ServerError]
// does only when count5xx is set; [Canceled] and [Success] never do.
func (o Outcome) Failure(count5xx bool) bool {
	switch o {
	case ConnectError, Timeout, GatewayError:
		return true
	case ServerError:
		return count5xx
	}
	return false
}
