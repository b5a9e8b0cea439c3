package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// DirectDeprovisionWindow is how far back the direct deprovisions of a provider count
// against its deprovision threshold.
const DirectDeprovisionWindow = time.Hour

// ReserveDirectDeprovisions decides which of ids an object's own sync may deprovision now:
// as many as keep the provider's direct deprovisions of the last window within threshold,
// in the order given. An id reserved earlier in the window (a retried activity) is allowed
// again without counting twice. The others are held: their links are marked, for status
// and for the full sync that deprovisions them once approved. threshold <= 0 allows all.
//
// Reservations of one provider are serialised by an advisory lock, so that concurrent
// syncs never together pass the threshold.
func (s *Store) ReserveDirectDeprovisions(ctx context.Context, providerID, kind string, ids []string, threshold int, window time.Duration) (allowed, held []string, err error) {
	if threshold <= 0 || len(ids) == 0 {
		return ids, nil, nil
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		allowed, held = nil, nil
		if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('scimsync-deprovisions:' || $1))`, providerID); err != nil {
			return err
		}
		cutoff := time.Now().Add(-window)
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM direct_deprovisions WHERE provider_id = $1 AND at < $2`, providerID, cutoff); err != nil {
			return err
		}
		var reserved []string
		if err := tx.tx.SelectContext(ctx, &reserved, `SELECT object_id FROM direct_deprovisions
			WHERE provider_id = $1 AND kind = $2 AND object_id = ANY($3)`, providerID, kind, pq.Array(ids)); err != nil {
			return err
		}
		again := make(map[string]bool, len(reserved))
		for _, id := range reserved {
			again[id] = true
		}
		var used int
		if err := tx.tx.GetContext(ctx, &used, `SELECT count(*) FROM direct_deprovisions WHERE provider_id = $1`, providerID); err != nil {
			return err
		}
		var fresh []string
		for _, id := range ids {
			switch {
			case again[id]:
				allowed = append(allowed, id)
			case used < threshold:
				used++
				fresh = append(fresh, id)
				allowed = append(allowed, id)
			default:
				held = append(held, id)
			}
		}
		if _, err := tx.tx.ExecContext(ctx, `INSERT INTO direct_deprovisions (provider_id, kind, object_id)
			SELECT $1, $2, unnest($3::uuid[])`, providerID, kind, pq.Array(fresh)); err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE sync_links SET deprovision_held_at = NULL
			WHERE provider_id = $1 AND kind = $2 AND object_id = ANY($3) AND deprovision_held_at IS NOT NULL`,
			providerID, kind, pq.Array(allowed)); err != nil {
			return err
		}
		_, err := tx.tx.ExecContext(ctx, `UPDATE sync_links SET deprovision_held_at = COALESCE(deprovision_held_at, now())
			WHERE provider_id = $1 AND kind = $2 AND object_id = ANY($3)`, providerID, kind, pq.Array(held))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: reserve direct deprovisions: %w", translate(err))
	}
	return allowed, held, nil
}

// HeldDeprovisions counts the provider's objects whose direct deprovision was held past
// the threshold and that still wait for it (deleted or out of scope, not deprovisioned),
// and since when the oldest waits.
func (s *Store) HeldDeprovisions(ctx context.Context, providerID string) (n int, oldest *time.Time, err error) {
	var row struct {
		N      int        `db:"n"`
		Oldest *time.Time `db:"oldest"`
	}
	err = s.db.GetContext(ctx, &row, scopedUsersCTE+`
		SELECT count(*) AS n, min(l.deprovision_held_at) AS oldest FROM sync_links l
		WHERE l.provider_id = $1 AND l.deprovision_held_at IS NOT NULL
		  AND CASE l.kind WHEN 'user' THEN `+staleUser+` ELSE `+staleGroup+` END`, providerID)
	if err != nil {
		return 0, nil, fmt.Errorf("store: held deprovisions: %w", translate(err))
	}
	return row.N, row.Oldest, nil
}
