package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"
)

// Change kinds in the outbox.
const (
	ChangeUser       = "user"       // ObjectID is the user
	ChangeGroup      = "group"      // ObjectID is the group
	ChangeMembership = "membership" // ObjectID is the group, RelatedID the user
	ChangeBinding    = "binding"    // ObjectID is the application
)

// ChangesChannel is the PostgreSQL NOTIFY channel raised when changes are committed.
const ChangesChannel = "scimsync_changes"

// Change is one outbox row: something in the directory changed.
type Change struct {
	ID        int64     `db:"id"`
	Kind      string    `db:"kind"`
	Op        string    `db:"op"` // insert, update or delete
	ObjectID  string    `db:"object_id"`
	RelatedID *string   `db:"related_id"`
	CreatedAt time.Time `db:"created_at"`
}

// ClaimChanges locks up to limit of the oldest outbox rows that no other consumer holds,
// passes them to handle, and deletes them when handle returns nil. When handle fails, the
// rows stay for a later attempt. Concurrent consumers never receive the same row. It
// returns how many rows were handled.
func (s *Store) ClaimChanges(ctx context.Context, limit int, handle func(ctx context.Context, changes []Change) error) (int, error) {
	relayed, _, err := s.RelayChanges(ctx, limit, func(ctx context.Context, changes []Change) ([]Refusal, error) {
		return nil, handle(ctx, changes)
	})
	return relayed, err
}

// Refusal names a change of a batch that its consumer could not hand on, ever: Temporal
// refused it permanently. RelayChanges parks it.
type Refusal struct {
	ChangeID int64
	// Provider is the provider whose signal or schedule trigger was refused.
	Provider string
	// Error is the refusal, as stored and shown to operators: ids only, never personal data.
	Error string
}

// RelayChanges is ClaimChanges for a consumer that may refuse some of the changes it is
// handed: when handle returns nil error, the changes it names in its refusals are moved to
// the dead-letter table (sync_changes_parked, see ParkedChanges) with their error, their
// attempts counted, and the others are deleted, in the one transaction that claimed them;
// so a change is either relayed, parked or still in the outbox, never two of these nor
// none. When handle fails, every row stays and nothing is parked. It returns how many rows
// were relayed and how many parked.
func (s *Store) RelayChanges(ctx context.Context, limit int,
	handle func(ctx context.Context, changes []Change) ([]Refusal, error)) (relayed, parked int, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		changes := []Change{}
		if err := tx.tx.SelectContext(ctx, &changes, `
			SELECT id, kind, op, object_id, related_id, created_at FROM sync_changes
			ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit); err != nil {
			return fmt.Errorf("store: claim changes: %w", translate(err))
		}
		if len(changes) == 0 {
			return nil
		}
		refusals, err := handle(ctx, changes)
		if err != nil {
			return err
		}
		inBatch := make(map[int64]bool, len(changes))
		for _, c := range changes {
			inBatch[c.ID] = true
		}
		var parkIDs []int64
		var providers, errs []string
		refused := map[int64]bool{}
		for _, r := range refusals {
			if !inBatch[r.ChangeID] {
				return fmt.Errorf("store: refusal of change %d, which is not in the batch", r.ChangeID)
			}
			if refused[r.ChangeID] {
				continue // the first refusal of a change is the one kept
			}
			refused[r.ChangeID] = true
			parkIDs, providers, errs = append(parkIDs, r.ChangeID), append(providers, r.Provider), append(errs, r.Error)
		}
		ids := make([]int64, 0, len(changes)-len(parkIDs))
		for _, c := range changes {
			if !refused[c.ID] {
				ids = append(ids, c.ID)
			}
		}
		if len(ids) > 0 {
			if _, err := tx.tx.ExecContext(ctx, `DELETE FROM sync_changes WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
				return fmt.Errorf("store: delete changes: %w", translate(err))
			}
		}
		if len(parkIDs) > 0 {
			res, err := tx.tx.ExecContext(ctx, `
				WITH moved AS (
					DELETE FROM sync_changes c
					USING unnest($1::bigint[], $2::text[], $3::text[]) AS r (id, provider, error)
					WHERE c.id = r.id
					RETURNING c.id, c.kind, c.op, c.object_id, c.related_id, c.created_at, c.attempts, r.provider, r.error)
				INSERT INTO sync_changes_parked (id, kind, op, object_id, related_id, created_at, provider, error, attempts)
				SELECT id, kind, op, object_id, related_id, created_at, provider, error, attempts + 1 FROM moved`,
				pq.Array(parkIDs), pq.Array(providers), pq.Array(errs))
			if err != nil {
				return fmt.Errorf("store: park changes: %w", translate(err))
			}
			if n, err := res.RowsAffected(); err != nil || n != int64(len(parkIDs)) {
				return fmt.Errorf("store: park changes: %d of %d parked (%v)", n, len(parkIDs), err)
			}
		}
		relayed, parked = len(ids), len(parkIDs)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return relayed, parked, nil
}

// ParkedChange is a change in the dead-letter table: Temporal refused it permanently.
type ParkedChange struct {
	Change
	// Provider is the provider whose signal or schedule trigger Temporal refused.
	Provider string `db:"provider"`
	// Error is Temporal's refusal (ids only, never personal data).
	Error string `db:"error"`
	// Attempts counts the relay attempts Temporal refused: 1, plus one for every time an
	// operator put the change back and it was refused again.
	Attempts int       `db:"attempts"`
	ParkedAt time.Time `db:"parked_at"`
}

const parkedColumns = `id, kind, op, object_id, related_id, created_at, provider, error, attempts, parked_at`

// ParkedChanges lists up to limit parked changes (every one when limit is 0), the
// longest parked first.
func (s *Store) ParkedChanges(ctx context.Context, limit int) ([]ParkedChange, error) {
	out := []ParkedChange{}
	if err := s.db.SelectContext(ctx, &out, `SELECT `+parkedColumns+` FROM sync_changes_parked
		ORDER BY parked_at, id LIMIT NULLIF($1, 0)`, limit); err != nil {
		return nil, fmt.Errorf("store: list parked changes: %w", translate(err))
	}
	return out, nil
}

// ParkedLag returns the number of parked changes and how long the longest parked one has
// been parked.
func (s *Store) ParkedLag(ctx context.Context) (count int, oldest time.Duration, err error) {
	var row struct {
		N      int        `db:"n"`
		Oldest *time.Time `db:"oldest"`
	}
	if err := s.db.GetContext(ctx, &row, `SELECT count(*) AS n, min(parked_at) AS oldest FROM sync_changes_parked`); err != nil {
		return 0, 0, fmt.Errorf("store: parked changes: %w", translate(err))
	}
	if row.Oldest != nil {
		oldest = s.now().Sub(*row.Oldest)
	}
	return row.N, oldest, nil
}

// RetryParked puts the parked changes ids back in the outbox, under their ids, with their
// attempts, and wakes the relays. It returns the ids it put back, in order; an id that is
// not parked is left out.
func (s *Store) RetryParked(ctx context.Context, ids []int64) ([]int64, error) {
	return s.retryParked(ctx, `WHERE id = ANY($1)`, pq.Array(ids))
}

// RetryAllParked puts every parked change back in the outbox (see RetryParked).
func (s *Store) RetryAllParked(ctx context.Context) ([]int64, error) {
	return s.retryParked(ctx, ``)
}

func (s *Store) retryParked(ctx context.Context, where string, args ...any) ([]int64, error) {
	moved := []int64{}
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.tx.SelectContext(ctx, &moved, `
			WITH moved AS (DELETE FROM sync_changes_parked `+where+`
				RETURNING id, kind, op, object_id, related_id, created_at, attempts)
			INSERT INTO sync_changes (id, kind, op, object_id, related_id, created_at, attempts)
			SELECT id, kind, op, object_id, related_id, created_at, attempts FROM moved
			RETURNING id`, args...); err != nil {
			return fmt.Errorf("store: retry parked changes: %w", translate(err))
		}
		if len(moved) == 0 {
			return nil
		}
		// Delivered at commit, like the directory triggers' notifications.
		if _, err := tx.tx.ExecContext(ctx, `SELECT pg_notify($1, '')`, ChangesChannel); err != nil {
			return fmt.Errorf("store: retry parked changes: notify: %w", translate(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(moved)
	return moved, nil
}

// DropParked deletes the parked changes ids: they will not be relayed (a full sync of
// the provider still brings their objects up to date). It returns the ids it deleted, in
// order; an id that is not parked is left out.
func (s *Store) DropParked(ctx context.Context, ids []int64) ([]int64, error) {
	return s.dropParked(ctx, `WHERE id = ANY($1)`, pq.Array(ids))
}

// DropAllParked deletes every parked change (see DropParked).
func (s *Store) DropAllParked(ctx context.Context) ([]int64, error) {
	return s.dropParked(ctx, ``)
}

func (s *Store) dropParked(ctx context.Context, where string, args ...any) ([]int64, error) {
	dropped := []int64{}
	if err := s.db.SelectContext(ctx, &dropped, `DELETE FROM sync_changes_parked `+where+` RETURNING id`, args...); err != nil {
		return nil, fmt.Errorf("store: drop parked changes: %w", translate(err))
	}
	slices.Sort(dropped)
	return dropped, nil
}

// OutboxLag returns the number of waiting changes and the age of the oldest one.
func (s *Store) OutboxLag(ctx context.Context) (count int, oldest time.Duration, err error) {
	var row struct {
		N      int        `db:"n"`
		Oldest *time.Time `db:"oldest"`
	}
	if err := s.db.GetContext(ctx, &row, `SELECT count(*) AS n, min(created_at) AS oldest FROM sync_changes`); err != nil {
		return 0, 0, fmt.Errorf("store: outbox lag: %w", translate(err))
	}
	if row.Oldest != nil {
		oldest = s.now().Sub(*row.Oldest)
	}
	return row.N, oldest, nil
}
