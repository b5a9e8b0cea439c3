package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Deletions after a grace period (deprovision action deactivate_then_delete): a user who
// leaves scope is deactivated at once and its link keeps a deadline (delete_after); a full
// sync's cleanup deletes it at the target once the deadline has passed. What is pending or
// due is decided here, in one place, for the cleanup, its count, the plan and status.

// scheduledUser is what makes a link l a scheduled deletion: a deactivated user with a
// deadline, still out of scope (the query starts with scopedUsersCTE), of a provider
// whose action is still deactivate_then_delete. A user back in scope is reactivated by its
// next write, which clears the deadline; one whose provider changed its action is no
// longer deleted (its deadline is kept, should the action come back).
const scheduledUser = `l.kind = 'user' AND l.deprovisioned_at IS NOT NULL AND l.delete_after IS NOT NULL
	AND NOT EXISTS (SELECT 1 FROM scoped WHERE scoped.id = l.object_id)
	AND EXISTS (SELECT 1 FROM providers p WHERE p.id = l.provider_id AND p.deprovision_action = 'deactivate_then_delete')`

// DueDeletionIDs pages, in id order after the given id, through the ids of the provider's
// users whose deletion is due: scheduled, with a deadline that has passed.
func (s *Store) DueDeletionIDs(ctx context.Context, providerID, after string, limit int) ([]string, error) {
	ids := []string{}
	err := s.db.SelectContext(ctx, &ids, scopedUsersCTE+`
		SELECT l.object_id FROM sync_links l
		WHERE l.provider_id = $1 AND `+scheduledUser+` AND l.delete_after <= $4
		  AND l.object_id > COALESCE(NULLIF($2, '')::uuid, '00000000-0000-0000-0000-000000000000')
		ORDER BY l.object_id LIMIT $3`, providerID, after, limit, s.now())
	if err != nil {
		return nil, fmt.Errorf("store: due deletions of provider %s: %w", providerID, translate(err))
	}
	return ids, nil
}

// DueDeletionsAmong returns those of ids whose deletion is due now, sorted: a deleting
// activity asks again under the objects' locks, since a user may have come back (and been
// reactivated) after it was listed.
func (s *Store) DueDeletionsAmong(ctx context.Context, providerID string, ids []string) ([]string, error) {
	out := []string{}
	if len(ids) == 0 {
		return out, nil
	}
	err := s.db.SelectContext(ctx, &out, scopedUsersCTE+`
		SELECT l.object_id FROM sync_links l
		WHERE l.provider_id = $1 AND `+scheduledUser+` AND l.delete_after <= $3
		  AND l.object_id = ANY($2::uuid[])
		ORDER BY l.object_id`, providerID, pq.Array(ids), s.now())
	if err != nil {
		return nil, fmt.Errorf("store: due deletions among %d users: %w", len(ids), translate(err))
	}
	return out, nil
}

// CountDueDeletions counts the provider's users whose deletion is due: what a full sync's
// cleanup deletes, and counts against the deprovision threshold.
func (s *Store) CountDueDeletions(ctx context.Context, providerID string) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, scopedUsersCTE+`
		SELECT count(*) FROM sync_links l WHERE l.provider_id = $1 AND `+scheduledUser+` AND l.delete_after <= $2`,
		providerID, s.now())
	if err != nil {
		return 0, fmt.Errorf("store: count due deletions: %w", translate(err))
	}
	return n, nil
}

// ScheduledDeletion is one deactivated user waiting for its deletion.
type ScheduledDeletion struct {
	ObjectID    string    `db:"object_id"`
	RemoteID    string    `db:"remote_id"`
	DeleteAfter time.Time `db:"delete_after"`
}

// ScheduledDeletions reports the provider's scheduled deletions: how many there are, how
// many of them are due, and the limit next ones, earliest deadline first.
func (s *Store) ScheduledDeletions(ctx context.Context, providerID string, limit int) (total, due int, next []ScheduledDeletion, err error) {
	var counts struct {
		Total int `db:"total"`
		Due   int `db:"due"`
	}
	err = s.db.GetContext(ctx, &counts, scopedUsersCTE+`
		SELECT count(*) AS total, count(*) FILTER (WHERE l.delete_after <= $2) AS due
		FROM sync_links l WHERE l.provider_id = $1 AND `+scheduledUser, providerID, s.now())
	if err != nil {
		return 0, 0, nil, fmt.Errorf("store: count scheduled deletions: %w", translate(err))
	}
	next = []ScheduledDeletion{}
	if counts.Total > 0 && limit > 0 {
		err = s.db.SelectContext(ctx, &next, scopedUsersCTE+`
			SELECT l.object_id, COALESCE(l.remote_id, '') AS remote_id, l.delete_after FROM sync_links l
			WHERE l.provider_id = $1 AND `+scheduledUser+`
			ORDER BY l.delete_after, l.object_id LIMIT $2`, providerID, limit)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("store: scheduled deletions: %w", translate(err))
		}
	}
	return counts.Total, counts.Due, next, nil
}
