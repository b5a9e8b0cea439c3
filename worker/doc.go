// Package worker runs scimsync's Temporal worker: it registers the workflows and
// activities, relays the change outbox to Temporal, keeps each enabled provider's
// full-sync schedule, and serves health and metrics. cmd/worker is its thin main.
package worker
