// Package route decides which configured route a request belongs to.
//
// [Compile] turns the routes of one config snapshot into an immutable
// [Table]; [Table.Lookup] picks the best route for a request by host, path,
// method and header fields. Matching is done on a normalised path:
// [Normalize] turns the request-target the HTTP/1 parser gives into that
// form, or refuses it (the proxy answers 400), and the same normalised path
// is what the backend receives, so that a route cannot be bypassed by
// spelling the path differently. docs/routing.md states the rules.
//
// The package does no I/O and knows nothing of pools, actions or the
// config file: a route is a [Match] and a position in the slice given to
// Compile, and Lookup returns that position. Lookup and Normalize do not
// allocate (Normalize may grow the caller's buffer, see its comment).
package route
