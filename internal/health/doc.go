// Package health decides which backends may receive traffic. It combines
// three signals per backend, each kept on the long-lived [Backend] record
// that survives reloads:
//
//   - Active checks: a [Checker] sends an HTTP request to every backend
//     each Interval from its own goroutines (never from an event loop) and
//     marks a backend unhealthy after UnhealthyThreshold failed checks in
//     a row and healthy again after HealthyThreshold passed ones.
//   - Passive checks (outlier detection): the proxy reports every
//     request's outcome ([Backend.Done]); an [Outlier] ejects a backend
//     that fails too often, for a time that doubles with repeated
//     ejections, never ejecting more than MaxEjectedPercent of its [Pool].
//   - A circuit breaker ([breaker.Breaker]) per backend.
//
// A backend is available when it is healthy AND not ejected AND its
// breaker admits requests ([Backend.Available]). Only gateway failures
// (connect errors, timeouts, 502/503/504: breaker.Outcome.Failure)
// count against a backend unless FailureOn5xx is set. [Backend.Held] tells
// the proxy's panic mode whether ejection or an open breaker is what keeps
// a backend out. The per-request calls
// (Available, Allow, Done) are lock-free and allocation-free, for use from
// the event loops; times are passed in as Unix nanoseconds so the caller
// chooses the clock. [Backend.State] is the one read-only view for
// metrics and the admin API.
//
// Every change of state is logged with log/slog: "backend healthy",
// "backend unhealthy", "backend ejected", "backend not ejected: too many
// ejected", "backend ejection ended early", "circuit breaker open",
// "circuit breaker half-open", "circuit breaker closed"; each with the
// backend URL and a reason.
package health
