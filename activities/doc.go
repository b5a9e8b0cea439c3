// Package activities holds scimsync's Temporal activities: all of its I/O. They glue the
// store, the property mappings, the schema validator and the SCIM client together, are
// batch-shaped and idempotent, and record each object's outcome as they go so a retry
// redoes only unfinished work.
//
// Activities alone decide which errors are retryable: SCIM errors are classified per the
// error table of docs/architecture.md ("Error handling") and returned as Temporal
// application errors (Retry-After becomes NextRetryDelay). Workflow inputs and outputs
// carry ids and payloads, never secrets.
package activities
