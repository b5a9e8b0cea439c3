package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Quarantine: a provider whose writes mostly fail, the target refusing nearly every object
// (a wrong mapping, a full license pool, a schema the target changed), is quarantined: its
// objects in error are no longer retried by the escrow and its directory changes are left
// to its full syncs, so that a broken target is not hammered by retries that will fail the
// same way. Its full syncs go on at their cadence and write everything that changed; the
// first write call that succeeds without a failure ends the quarantine.
//
// It is decided on the provider's last QuarantineWindow write outcomes (creates and
// updates of WriteObjects, an outcome per object), kept in target_health beside what the
// workers saw of the target's availability: quarantined when at least
// QuarantineMinOutcomes are known and more than QuarantineFailedShare of them failed.
// Outages (no answer, 5xx) are no outcomes: their writes are retried until the target
// answers, and target_health shows them as failing.
const (
	QuarantineWindow      = 100
	QuarantineMinOutcomes = 20
	QuarantineFailedShare = 0.9
)

// QuarantineChange says what a recorded batch of outcomes did to the quarantine.
type QuarantineChange int

const (
	QuarantineUnchanged QuarantineChange = iota
	QuarantineEntered
	QuarantineLeft
)

// Quarantine is a provider's quarantine as of a recorded batch.
type Quarantine struct {
	Since  *time.Time // nil: not quarantined
	Error  string     // the most frequent error of the window, while quarantined
	Change QuarantineChange
}

// nextQuarantine is the quarantine rule: the window after a write call that succeeded
// for succeeded objects and failed for the others with failures (their errors), whether
// the provider is quarantined after it, and the window's most frequent error.
func nextQuarantine(window []string, quarantined bool, succeeded int, failures []string) ([]string, bool, string) {
	if quarantined && succeeded > 0 && len(failures) == 0 {
		return trimWindow(make([]string, succeeded)), false, ""
	}
	window = append(append(window, make([]string, succeeded)...), failures...)
	window = trimWindow(window)
	failed := 0
	count := map[string]int{}
	dominant := ""
	for _, e := range window {
		if e == "" {
			continue
		}
		failed++
		count[e]++
		// The most frequent error; of equally frequent ones the latest.
		if count[e] >= count[dominant] {
			dominant = e
		}
	}
	if !quarantined {
		quarantined = len(window) >= QuarantineMinOutcomes && float64(failed) > QuarantineFailedShare*float64(len(window))
	}
	if !quarantined {
		dominant = ""
	}
	return window, quarantined, dominant
}

func trimWindow(w []string) []string {
	if len(w) > QuarantineWindow {
		w = append([]string(nil), w[len(w)-QuarantineWindow:]...)
	}
	return w
}

// RecordWriteOutcomes records the outcomes of one write call to the provider's target:
// succeeded objects written, and the errors of those that failed (no personal data), and
// returns the provider's quarantine after them. Concurrent callers take turns on the
// provider's row.
func (s *Store) RecordWriteOutcomes(ctx context.Context, providerID string, succeeded int, failures []string) (Quarantine, error) {
	if succeeded == 0 && len(failures) == 0 {
		return Quarantine{}, nil
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Quarantine{}, fmt.Errorf("store: record write outcomes: %w", translate(err))
	}
	defer tx.Rollback()
	var row struct {
		Window pq.StringArray `db:"write_outcomes"`
		Since  *time.Time     `db:"quarantined_since"`
	}
	if err := tx.GetContext(ctx, &row, `
		INSERT INTO target_health AS h (provider_id) VALUES ($1)
		ON CONFLICT (provider_id) DO UPDATE SET provider_id = h.provider_id
		RETURNING write_outcomes, quarantined_since`, providerID); err != nil {
		return Quarantine{}, fmt.Errorf("store: record write outcomes: %w", translate(err))
	}
	window, quarantined, dominant := nextQuarantine(row.Window, row.Since != nil, succeeded, failures)
	q := Quarantine{Error: dominant, Since: row.Since}
	switch {
	case quarantined && row.Since == nil:
		now := s.now()
		q.Since, q.Change = &now, QuarantineEntered
	case !quarantined && row.Since != nil:
		q.Since, q.Change = nil, QuarantineLeft
	}
	if _, err := tx.ExecContext(ctx, `UPDATE target_health
		SET write_outcomes = $2, quarantined_since = $3, quarantine_error = $4 WHERE provider_id = $1`,
		providerID, pq.StringArray(window), q.Since, q.Error); err != nil {
		return Quarantine{}, fmt.Errorf("store: record write outcomes: %w", translate(err))
	}
	if err := tx.Commit(); err != nil {
		return Quarantine{}, fmt.Errorf("store: record write outcomes: %w", translate(err))
	}
	return q, nil
}

// QuarantinedProviders returns the ids of the providers quarantined now.
func (s *Store) QuarantinedProviders(ctx context.Context) (map[string]bool, error) {
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, `SELECT provider_id FROM target_health WHERE quarantined_since IS NOT NULL`); err != nil {
		return nil, fmt.Errorf("store: quarantined providers: %w", translate(err))
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
