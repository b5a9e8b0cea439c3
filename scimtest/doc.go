// Package scimtest is an in-memory SCIM 2.0 server for tests, the demo and
// the benchmark, shaped like net/http/httptest: NewServer(Options) starts
// it on a loopback port, URL is its SCIM base URL, Client() trusts its
// certificate, Close blocks until it has stopped.
//
// It serves Users and Groups (with members), filters (eq, ne, co, sw, ew,
// gt, ge, lt, le, pr, and, or, not, value paths; case-insensitive except
// for caseExact attributes such as id and externalId), ListResponse
// paging, PATCH with filtered paths, Bulk with bulkId references, a
// configurable ServiceProviderConfig, uniqueness (409 on userName and
// group displayName), bearer and HTTP Basic authentication and an OAuth2 token endpoint.
//
// Tests inject faults (errors at a rate, 429 with Retry-After, latency,
// hangs, HTML bodies) with AddFault, imitate vendors with Quirks (see
// Profile), and inspect the exact state (Users, Groups, GroupMembers), the
// request log (Requests) and counters (Counts, Mutations).
//
// Lookups by id, userName, displayName and externalId use indexes, and
// stored bodies are copy-on-write, so it holds 100k users and serves
// concurrent requests quickly. It uses the standard library only and
// must never be used as a production SCIM server.
package scimtest
