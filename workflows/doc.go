// Package workflows holds scimsync's Temporal workflows: deterministic orchestration only.
// Every piece of I/O (database, SCIM, clock beyond workflow.Now) lives in activities; this
// package never imports store or scim.
package workflows
