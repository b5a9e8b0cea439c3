package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Pacing is a provider's pacing state, shared by every worker (one row of
// provider_pacing). Package pacing decides what the fields mean and how they change; the
// store only keeps them, under a row lock and on the database's clock.
type Pacing struct {
	ProviderID      string     `db:"provider_id"`
	LearnedRate     *float64   `db:"learned_rate"` // requests per second; nil: none learned
	BaseRate        *float64   `db:"base_rate"`
	Tokens          *float64   `db:"tokens"` // nil: a full bucket
	RefilledAt      time.Time  `db:"refilled_at"`
	PausedUntil     *time.Time `db:"paused_until"`
	PauseCause      string     `db:"pause_cause"`
	Probing         bool       `db:"probing"`
	ProbeUntil      *time.Time `db:"probe_until"`
	Throttles       int64      `db:"throttles"`
	Strikes         int        `db:"strikes"`
	Epoch           int64      `db:"epoch"`
	LastThrottleAt  *time.Time `db:"last_throttle_at"`
	LastCutAt       *time.Time `db:"last_cut_at"`
	GrownAt         *time.Time `db:"grown_at"`
	WindowAt        time.Time  `db:"window_at"`
	WindowSent      int64      `db:"window_sent"`
	WindowOK        int64      `db:"window_ok"`
	WindowThrottled int64      `db:"window_throttled"`
	PrevSeconds     float64    `db:"prev_seconds"`
	PrevSent        int64      `db:"prev_sent"`
	PrevOK          int64      `db:"prev_ok"`
	PrevThrottled   int64      `db:"prev_throttled"`
	SentTotal       int64      `db:"sent_total"`
	UpdatedAt       time.Time  `db:"updated_at"`
}

// PacingSlot is one worker's claim on a provider's requests in flight.
type PacingSlot struct {
	Holder    string    `db:"holder"`
	Slots     int       `db:"slots"`
	Wanted    int       `db:"wanted"`
	ExpiresAt time.Time `db:"expires_at"`
}

// PacingChannel is the NOTIFY channel on which a change of a provider's pacing that other
// workers must act on at once (a pause, its end) is announced; the payload is the
// provider id.
const PacingChannel = "scimsync_pacing"

const pacingColumns = `provider_id, learned_rate, base_rate, tokens, refilled_at, paused_until, pause_cause, probing,
	probe_until, throttles, strikes, epoch, last_throttle_at, last_cut_at, grown_at, window_at, window_sent,
	window_ok, window_throttled, prev_seconds, prev_sent, prev_ok, prev_throttled, sent_total, updated_at`

// PacingUpdate is what a PacingFunc leaves to save.
type PacingUpdate struct {
	// Slot, when not nil, is the holder's new claim (Slots 0 and Wanted 0 drop it).
	Slot *PacingSlot
	// Notify announces the change on PacingChannel.
	Notify bool
}

// PacingFunc changes a provider's pacing row in place. now is the database's clock; slots
// are every holder's unexpired claims.
type PacingFunc func(now time.Time, p *Pacing, slots []PacingSlot) (PacingUpdate, error)

// UpdatePacing runs fn on the provider's pacing row (created when missing) under a row
// lock, with the database's clock, and saves what it leaves, in one transaction. Workers
// of every process serialise on that row, which is what makes the row one limit for all.
// withSlots reads the holders' claims too (expired ones are dropped first).
func (s *Store) UpdatePacing(ctx context.Context, providerID string, withSlots bool, fn PacingFunc) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: pacing: begin: %w", translate(err))
	}
	defer tx.Rollback()
	var row struct {
		Pacing
		Now time.Time `db:"now"`
	}
	get := func() error {
		return tx.GetContext(ctx, &row, `SELECT clock_timestamp() AS now, `+pacingColumns+`
			FROM provider_pacing WHERE provider_id = $1 FOR UPDATE`, providerID)
	}
	err = get()
	if errors.Is(err, sql.ErrNoRows) {
		if _, err = tx.ExecContext(ctx, `INSERT INTO provider_pacing (provider_id) VALUES ($1)
			ON CONFLICT (provider_id) DO NOTHING`, providerID); err == nil {
			err = get()
		}
	}
	if err != nil {
		return fmt.Errorf("store: pacing of provider %s: %w", providerID, translate(err))
	}
	var slots []PacingSlot
	if withSlots {
		if _, err := tx.ExecContext(ctx, `DELETE FROM provider_pacing_slots WHERE provider_id = $1 AND expires_at <= $2`,
			providerID, row.Now); err != nil {
			return fmt.Errorf("store: pacing slots: %w", translate(err))
		}
		if err := tx.SelectContext(ctx, &slots, `SELECT holder, slots, wanted, expires_at FROM provider_pacing_slots
			WHERE provider_id = $1 ORDER BY holder`, providerID); err != nil {
			return fmt.Errorf("store: pacing slots: %w", translate(err))
		}
	}
	p := row.Pacing
	up, err := fn(row.Now, &p, slots)
	if err != nil {
		return err
	}
	p.UpdatedAt = row.Now
	if _, err := tx.NamedExecContext(ctx, `UPDATE provider_pacing SET learned_rate = :learned_rate, base_rate = :base_rate, tokens = :tokens,
		refilled_at = :refilled_at, paused_until = :paused_until, pause_cause = :pause_cause, probing = :probing,
		probe_until = :probe_until, throttles = :throttles, strikes = :strikes, epoch = :epoch,
		last_throttle_at = :last_throttle_at, last_cut_at = :last_cut_at, grown_at = :grown_at,
		window_at = :window_at, window_sent = :window_sent, window_ok = :window_ok,
		window_throttled = :window_throttled, prev_seconds = :prev_seconds, prev_sent = :prev_sent,
		prev_ok = :prev_ok, prev_throttled = :prev_throttled, sent_total = :sent_total, updated_at = :updated_at
		WHERE provider_id = :provider_id`, &p); err != nil {
		return fmt.Errorf("store: save pacing: %w", translate(err))
	}
	if sl := up.Slot; sl != nil {
		if sl.Slots == 0 && sl.Wanted == 0 {
			_, err = tx.ExecContext(ctx, `DELETE FROM provider_pacing_slots WHERE provider_id = $1 AND holder = $2`,
				providerID, sl.Holder)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO provider_pacing_slots (provider_id, holder, slots, wanted, expires_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider_id, holder) DO UPDATE
				SET slots = EXCLUDED.slots, wanted = EXCLUDED.wanted, expires_at = EXCLUDED.expires_at`,
				providerID, sl.Holder, sl.Slots, sl.Wanted, sl.ExpiresAt)
		}
		if err != nil {
			return fmt.Errorf("store: save pacing slot: %w", translate(err))
		}
	}
	if up.Notify {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, PacingChannel, providerID); err != nil {
			return fmt.Errorf("store: notify pacing: %w", translate(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: pacing: commit: %w", translate(err))
	}
	return nil
}

// PacingState returns the provider's pacing row and the database's clock, for status
// displays; ok is false when the provider has never been paced.
func (s *Store) PacingState(ctx context.Context, providerID string) (p Pacing, now time.Time, ok bool, err error) {
	var row struct {
		Pacing
		Now time.Time `db:"now"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT clock_timestamp() AS now, `+pacingColumns+`
		FROM provider_pacing WHERE provider_id = $1`, providerID)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.db.GetContext(ctx, &now, `SELECT clock_timestamp()`)
		return Pacing{}, now, false, err
	}
	if err != nil {
		return Pacing{}, time.Time{}, false, fmt.Errorf("store: pacing of provider %s: %w", providerID, translate(err))
	}
	return row.Pacing, row.Now, true, nil
}
