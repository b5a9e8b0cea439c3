package store

import (
	"context"
	"fmt"
	"time"
)

// Installation is the scimsync installation the database belongs to: its id, generated
// once (migration 00010), and when. Package workflows derives from the id the short form
// that scopes the installation's workflow IDs, schedules and default task queue.
type Installation struct {
	ID        string    `db:"id"` // a uuid
	CreatedAt time.Time `db:"created_at"`
}

// Installation returns the database's installation. The migration creates it; should its
// row be gone (deleted to give a copied database an id of its own), a new one is generated,
// once, whoever asks first.
func (s *Store) Installation(ctx context.Context) (Installation, error) {
	var inst Installation
	const read = `SELECT id, created_at FROM installation`
	err := s.db.GetContext(ctx, &inst, read)
	if translate(err) == ErrNotFound {
		if _, err = s.db.ExecContext(ctx, `INSERT INTO installation DEFAULT VALUES ON CONFLICT DO NOTHING`); err == nil {
			err = s.db.GetContext(ctx, &inst, read)
		}
	}
	if err != nil {
		return Installation{}, fmt.Errorf("store: read the installation id (is the database migrated? start a worker or run starter migrate): %w", translate(err))
	}
	return inst, nil
}
