// Package scim is the SCIM 2.0 client of scimsync (RFC 7643, RFC 7644):
// discovery of a target's ServiceProviderConfig, create / get / replace /
// patch / delete / search of Users and Groups, PATCH computation,
// membership changes chunked to the target's limits, Bulk, and one typed
// error (*Error) with classification helpers that follow the error table of
// docs/architecture.md ("Error handling").
//
// A Client is shaped like http.Client: build it once per target with
// New(Options), then call its methods with a context.Context first. The
// zero value of every option but BaseURL is usable.
//
// Vendor differences live in one table of compatibility modes (Compat),
// applied to the discovered configuration to give the effective
// Capabilities; callers decide request shapes from Capabilities alone.
//
// The package does no retrying and no logging: it classifies errors
// (IsRetryable, IsRateLimited with RetryAfterOf, IsNotFound, IsConflict,
// IsProviderFatal, IsObjectError) and leaves the decision to the caller.
// Error strings never contain request bodies, query strings, filter
// values or credentials, and the Authorization header is never exposed to
// hooks. It knows nothing of the store, mappings or Temporal.
package scim
