package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Escrow: an object whose write failed (its link carries last_error) is retried on its own,
// with a growing delay, instead of waiting for the next full sync or directory change.
// SetLinkError counts the failed attempt on the link (error_attempts) and sets when it is
// due again (next_attempt_at): attempt n is retried RetryDelays[n-1] after it failed, and
// past the last delay only full syncs retry it (next_attempt_at NULL). A successful write
// clears both. Every worker's escrow loop claims due links with ClaimDueRetries and
// signals their ObjectSync. The schedule is the same for every error: one that no retry can
// fix may be fixed at the target, so it is retried too, never faster.

// DefaultRetryDelays is the escrow's schedule when Store.RetryDelays is nil.
var DefaultRetryDelays = []time.Duration{time.Minute, 10 * time.Minute, time.Hour}

// clearEscrow is the SET clause of a successful write: nothing to retry.
const clearEscrow = `error_attempts = 0, next_attempt_at = NULL`

// retryDelays returns the escrow's schedule.
func (s *Store) retryDelays() []time.Duration {
	if s.RetryDelays != nil {
		return s.RetryDelays
	}
	return DefaultRetryDelays
}

// retryDelaySeconds is the schedule as SQL takes it: index n (1-based) is the delay
// after the n-th failed attempt; past the end the array answers NULL, no escrow retry.
func (s *Store) retryDelaySeconds() any {
	d := s.retryDelays()
	secs := make([]float64, len(d))
	for i, v := range d {
		secs[i] = v.Seconds()
	}
	return pq.Float64Array(secs)
}

// NextAttempt returns when an object whose attempts-th failed attempt in a row ended at
// failedAt is retried by the escrow, or false when only full syncs retry it.
func (s *Store) NextAttempt(attempts int, failedAt time.Time) (time.Time, bool) {
	d := s.retryDelays()
	if attempts < 1 || attempts > len(d) {
		return time.Time{}, false
	}
	return failedAt.Add(d[attempts-1]), true
}

// DueRetry is a link the escrow claimed: its object's ObjectSync is to be signalled.
type DueRetry struct {
	Provider string `db:"provider"` // the provider's name, as workflow IDs have it
	Kind     string `db:"kind"`
	ObjectID string `db:"object_id"`
	Attempts int    `db:"error_attempts"`
}

// ClaimDueRetries claims up to limit links whose escrow retry is due, of enabled providers
// that are not quarantined, earliest first. Claiming moves a link's next attempt on as if
// the retry had failed (the next delay of its schedule, or none past the last), in the
// same statement that selects it under FOR UPDATE SKIP LOCKED: two claimers never get one
// link, and a retry that ends without writing (the object is unchanged now, or the worker
// died before signalling) comes again no sooner than its schedule says. The retry's own
// outcome then sets the link as every write does.
func (s *Store) ClaimDueRetries(ctx context.Context, limit int) ([]DueRetry, error) {
	claimed := []DueRetry{}
	err := s.db.SelectContext(ctx, &claimed, `
		UPDATE sync_links l
		SET next_attempt_at = $1::timestamptz + ($3::float8[])[l.error_attempts + 1] * interval '1 second'
		FROM (SELECT d.provider_id, d.kind, d.object_id, p.name
		      FROM sync_links d
		      JOIN providers p ON p.id = d.provider_id AND p.enabled
		      LEFT JOIN target_health h ON h.provider_id = d.provider_id
		      WHERE d.next_attempt_at <= $1 AND h.quarantined_since IS NULL
		      ORDER BY d.next_attempt_at
		      LIMIT $2
		      FOR UPDATE OF d SKIP LOCKED) due
		WHERE l.provider_id = due.provider_id AND l.kind = due.kind AND l.object_id = due.object_id
		RETURNING due.name AS provider, l.kind, l.object_id, l.error_attempts`,
		s.now(), limit, s.retryDelaySeconds())
	if err != nil {
		return nil, fmt.Errorf("store: claim due retries: %w", translate(err))
	}
	return claimed, nil
}

// ReleaseRetry makes a claimed retry due again at once, for a claimer that could not
// signal it: the next pass claims it again. A link written since (cleared, or failed
// again) is left as its write set it.
func (s *Store) ReleaseRetry(ctx context.Context, r DueRetry) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE sync_links l SET next_attempt_at = $5
		FROM providers p
		WHERE p.name = $1 AND l.provider_id = p.id AND l.kind = $2 AND l.object_id = $3
		  AND l.error_attempts = $4 AND l.last_error <> ''`,
		r.Provider, r.Kind, r.ObjectID, r.Attempts, s.now())
	if err != nil {
		return fmt.Errorf("store: release retry of %s %s: %w", r.Kind, r.ObjectID, translate(err))
	}
	return nil
}
