// Package pacing keeps every worker of an installation under each target's rate limit
// together: one token bucket and one pause per provider, shared through PostgreSQL, and a
// cap on requests in flight claimed across workers. It learns from the target: a 429 (or a
// 503 with Retry-After) pauses the provider on every worker until Retry-After, the next
// request is a single probe, and frequent throttles cut the allowed rate, which grows back
// while none come; RateLimit headers are honoured where a target sends them.
//
// A Registry per process holds a Limiter per provider; a Limiter is the scim.Pacer of the
// provider's SCIM client. Requests take tokens from small leases, so the hot path rarely
// touches the database. docs/pacing.md describes the design and its numbers.
package pacing
