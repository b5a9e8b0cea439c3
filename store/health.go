package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// TargetFailingFresh is how recent a target's last failure must be for it to count as
// failing now: longer than the longest retry interval of a sync (2 minutes), so that a
// target that keeps failing is never shown as answering, and a failure recorded by a
// worker that stopped before it saw the target answer again fades on its own.
const TargetFailingFresh = 3 * time.Minute

// TargetHealth is what the workers saw of a provider's target lately.
type TargetHealth struct {
	FailingSince  *time.Time `db:"failing_since"`
	LastFailureAt *time.Time `db:"last_failure_at"`
	LastError     string     `db:"last_error"`
	Failures      int64      `db:"failures"` // since FailingSince
	// QuarantinedSince is set while the provider is quarantined, with the most frequent
	// error of its recent writes (quarantine.go).
	QuarantinedSince *time.Time `db:"quarantined_since"`
	QuarantineError  string     `db:"quarantine_error"`
}

// Failing reports whether the target is failing as of now.
func (h TargetHealth) Failing(now time.Time) bool {
	return h.FailingSince != nil && h.LastFailureAt != nil && now.Sub(*h.LastFailureAt) < TargetFailingFresh
}

// RecordTargetFailures records n failed requests to the provider's target with the last
// one's error (which must carry no personal data), starting its failing period if none
// runs.
func (s *Store) RecordTargetFailures(ctx context.Context, providerID string, n int, lastError string) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO target_health AS h (provider_id, failing_since, last_failure_at, last_error, failures)
		VALUES ($1, now(), now(), $2, $3)
		ON CONFLICT (provider_id) DO UPDATE SET
			failing_since = CASE WHEN h.failing_since IS NULL OR h.last_failure_at < now() - $4::interval
			                     THEN now() ELSE h.failing_since END,
			failures = CASE WHEN h.failing_since IS NULL OR h.last_failure_at < now() - $4::interval
			                THEN $3 ELSE h.failures + $3 END,
			last_failure_at = now(), last_error = $2`,
		providerID, lastError, n, fmt.Sprintf("%d seconds", int(TargetFailingFresh.Seconds())))
	if err != nil {
		return fmt.Errorf("store: record target failure: %w", translate(err))
	}
	return nil
}

// ClearTargetFailing ends the provider's failing period: its target answered.
func (s *Store) ClearTargetFailing(ctx context.Context, providerID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE target_health SET failing_since = NULL, failures = 0
		WHERE provider_id = $1 AND failing_since IS NOT NULL`, providerID)
	if err != nil {
		return fmt.Errorf("store: clear target failure: %w", translate(err))
	}
	return nil
}

// TargetHealthOf returns what the workers saw of the provider's target lately, and the
// database's clock to judge it by.
func (s *Store) TargetHealthOf(ctx context.Context, providerID string) (TargetHealth, time.Time, error) {
	var row struct {
		TargetHealth
		Now time.Time `db:"now"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT failing_since, last_failure_at, last_error, failures,
		quarantined_since, quarantine_error, now() AS now
		FROM target_health WHERE provider_id = $1`, providerID)
	if errors.Is(err, sql.ErrNoRows) {
		var now time.Time
		if err := s.db.GetContext(ctx, &now, `SELECT now()`); err != nil {
			return TargetHealth{}, time.Time{}, fmt.Errorf("store: target health: %w", translate(err))
		}
		return TargetHealth{}, now, nil
	}
	if err != nil {
		return TargetHealth{}, time.Time{}, fmt.Errorf("store: target health: %w", translate(err))
	}
	return row.TargetHealth, row.Now, nil
}
