// Package ratelimit limits request rates with token buckets: one bucket for
// all traffic, or one per client (its IP address, the address a trusted
// proxy reports in X-Forwarded-For, or a header value such as an API key)
// in a table whose size is bounded, so that clients rotating through
// addresses cannot grow memory.
//
// A bucket holds up to Burst tokens and gains RequestsPerSec tokens per
// second; each request takes one or is refused with 429. Buckets are
// integer GCRA state, exact to the nanosecond, one int64 each.
//
// The proxy calls Limiter.Decide once per request, from any event loop; it
// does not allocate, and takes one mutex: the global bucket's, or the
// client's table shard's. Decision.AppendTooMany writes the whole 429
// response, with Retry-After and the RateLimit and RateLimit-Policy fields
// of draft-ietf-httpapi-ratelimit-headers-11. A reload builds a new
// Limiter with New(cfg, previous), which keeps the clients' buckets.
//
// Nothing here starts a goroutine: idle buckets are dropped lazily, during
// Decide. A Config.Store (internal/redisync) shares buckets between
// instances; it collects counts and applies the shared state from its own
// goroutine, and Decide never waits for it.
package ratelimit
