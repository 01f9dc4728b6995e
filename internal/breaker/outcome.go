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
	// ServerError: the backend answered with a 5xx status. A failure when
	// [Config.FailureOn5xx] is set.
	ServerError
	// Canceled: the exchange ended for a reason that says nothing about the
	// backend (the client went away, the proxy is shutting down). It is
	// neither success nor failure; reporting it returns a probe slot.
	Canceled
)

var outcomeNames = [...]string{
	Success:      "success",
	ConnectError: "connect error",
	Timeout:      "timeout",
	ServerError:  "5xx response",
	Canceled:     "canceled",
}

// String returns a short lower-case name such as "connect error".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown outcome"
}

// Failure reports whether o counts as a failure when 5xx responses count
// as failures only if count5xx is set. [Canceled] and [Success] never do.
func (o Outcome) Failure(count5xx bool) bool {
	switch o {
	case ConnectError, Timeout:
		return true
	case ServerError:
		return count5xx
	}
	return false
}
