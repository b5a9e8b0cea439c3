package store

import (
	"context"
	"fmt"
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
	var n int
	err := s.InTx(ctx, func(tx *Tx) error {
		changes := []Change{}
		if err := tx.tx.SelectContext(ctx, &changes, `
			SELECT id, kind, op, object_id, related_id, created_at FROM sync_changes
			ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit); err != nil {
			return fmt.Errorf("store: claim changes: %w", translate(err))
		}
		if len(changes) == 0 {
			return nil
		}
		if err := handle(ctx, changes); err != nil {
			return err
		}
		ids := make([]int64, len(changes))
		for i, c := range changes {
			ids[i] = c.ID
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM sync_changes WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
			return fmt.Errorf("store: delete changes: %w", translate(err))
		}
		n = len(changes)
		return nil
	})
	return n, err
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
