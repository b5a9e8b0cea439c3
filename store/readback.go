package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// TargetObject is one remote object as a read-back of the target found it.
type TargetObject struct {
	Kind       string `db:"kind"`
	RemoteID   string `db:"remote_id"`
	ExternalID string `db:"external_id"`
	Name       string `db:"name"` // userName or displayName
	// Body is the resource as read (JSON), without meta and members.
	Body []byte `db:"body"`
	// Members are the remote ids of a group's members; nil when the target does not show
	// them (not observable).
	Members StringList `db:"members"`
	// ReadAt is when it was read (when its request left).
	ReadAt time.Time `db:"read_at"`
}

// Fresh reports whether o says more of the remote object than l: l was not written since
// o was read (a write of this very sync, or a per-object sync meanwhile, knows better).
func (o TargetObject) Fresh(l Link) bool { return l.SyncedAt == nil || !l.SyncedAt.After(o.ReadAt) }

const targetObjectColumns = `kind, remote_id, external_id, name, body, members, read_at`

// PutTargetObjects records objects a read-back read at readAt (when the request left);
// reading a page again (a retried activity) replaces what it read before.
func (s *Store) PutTargetObjects(ctx context.Context, readBack, providerID string, readAt time.Time, objs []TargetObject) error {
	if len(objs) == 0 {
		return nil
	}
	n := len(objs)
	kinds, ids, exts, names := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	bodies, members := make([]string, n), make([]sql.NullString, n)
	for i, o := range objs {
		kinds[i], ids[i], exts[i], names[i], bodies[i] = o.Kind, o.RemoteID, o.ExternalID, o.Name, string(o.Body)
		if o.Members != nil {
			b, err := json.Marshal([]string(o.Members))
			if err != nil {
				return err
			}
			members[i] = sql.NullString{String: string(b), Valid: true}
		}
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO target_objects (read_back, provider_id, kind, remote_id, external_id, name, body, members, read_at)
		SELECT $1, $2::uuid, t.kind, t.remote_id, t.external_id, t.name, t.body::jsonb, t.members::jsonb, $9
		FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
			AS t(kind, remote_id, external_id, name, body, members)
		ON CONFLICT (read_back, provider_id, kind, remote_id) DO UPDATE SET external_id = EXCLUDED.external_id,
			name = EXCLUDED.name, body = EXCLUDED.body, members = EXCLUDED.members, read_at = EXCLUDED.read_at`,
		readBack, providerID, pq.Array(kinds), pq.Array(ids), pq.Array(exts), pq.Array(names), pq.Array(bodies), pq.Array(members),
		readAt)
	if err != nil {
		return fmt.Errorf("store: put %d target objects: %w", n, translate(err))
	}
	return nil
}

// TargetObjects returns what the read-back found under the given remote ids, by remote id.
func (s *Store) TargetObjects(ctx context.Context, readBack, providerID, kind string, remoteIDs []string) (map[string]TargetObject, error) {
	out := map[string]TargetObject{}
	if len(remoteIDs) == 0 {
		return out, nil
	}
	var rows []TargetObject
	err := s.db.SelectContext(ctx, &rows, `SELECT `+targetObjectColumns+` FROM target_objects
		WHERE read_back = $1 AND provider_id = $2 AND kind = $3 AND remote_id = ANY($4::text[])`,
		readBack, providerID, kind, pq.Array(remoteIDs))
	if err != nil {
		return nil, fmt.Errorf("store: target objects: %w", translate(err))
	}
	for _, r := range rows {
		out[r.RemoteID] = r
	}
	return out, nil
}

// TargetObjectsByKey returns what the read-back found under the given external ids (and,
// when names is not nil, userNames or displayNames, compared case-insensitively), keyed by
// the external id or the lower-cased name. An object found under several keys is under
// each.
func (s *Store) TargetObjectsByKey(ctx context.Context, readBack, providerID, kind string, externalIDs, names []string) (byExternal, byName map[string][]TargetObject, err error) {
	byExternal, byName = map[string][]TargetObject{}, map[string][]TargetObject{}
	if len(externalIDs) == 0 && len(names) == 0 {
		return byExternal, byName, nil
	}
	var rows []TargetObject
	err = s.db.SelectContext(ctx, &rows, `SELECT `+targetObjectColumns+` FROM target_objects
		WHERE read_back = $1 AND provider_id = $2 AND kind = $3
		  AND (external_id = ANY($4::text[]) OR lower(name) = ANY($5::text[]))`,
		readBack, providerID, kind, pq.Array(externalIDs), pq.Array(lowerAll(names)))
	if err != nil {
		return nil, nil, fmt.Errorf("store: target objects by key: %w", translate(err))
	}
	wantExt := make(map[string]bool, len(externalIDs))
	for _, e := range externalIDs {
		wantExt[e] = true
	}
	for _, r := range rows {
		if r.ExternalID != "" && wantExt[r.ExternalID] {
			byExternal[r.ExternalID] = append(byExternal[r.ExternalID], r)
		}
		if names != nil && r.Name != "" {
			k := lower(r.Name)
			byName[k] = append(byName[k], r)
		}
	}
	return byExternal, byName, nil
}

// UnlinkedTargetObjects pages, in remote id order after the given one, through what the
// read-back found that no link of the provider holds: the orphans at the target.
func (s *Store) UnlinkedTargetObjects(ctx context.Context, readBack, providerID, kind, after string, limit int) ([]TargetObject, error) {
	rows := []TargetObject{}
	err := s.db.SelectContext(ctx, &rows, `SELECT `+targetObjectColumns+` FROM target_objects t
		WHERE t.read_back = $1 AND t.provider_id = $2 AND t.kind = $3 AND t.remote_id > $4
		  AND NOT EXISTS (SELECT 1 FROM sync_links l WHERE l.provider_id = t.provider_id AND l.kind = t.kind
		                  AND l.remote_id = t.remote_id)
		ORDER BY t.remote_id LIMIT $5`, readBack, providerID, kind, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: unlinked target objects: %w", translate(err))
	}
	return rows, nil
}

// CountTargetObjects counts what the read-back found, per kind.
func (s *Store) CountTargetObjects(ctx context.Context, readBack, providerID string) (users, groups int, err error) {
	var row struct {
		Users  int `db:"users"`
		Groups int `db:"groups"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT count(*) FILTER (WHERE kind = 'user') AS users,
		count(*) FILTER (WHERE kind = 'group') AS groups FROM target_objects WHERE read_back = $1 AND provider_id = $2`,
		readBack, providerID)
	if err != nil {
		return 0, 0, fmt.Errorf("store: count target objects: %w", translate(err))
	}
	return row.Users, row.Groups, nil
}

// ReadBack is one read-back of a provider's target.
type ReadBack struct {
	ID         string     `db:"id"`
	ProviderID string     `db:"provider_id"`
	StartedAt  time.Time  `db:"started_at"`
	FinishedAt *time.Time `db:"finished_at"`
	// Figures is what it found and did (JSON; see activities.ReadBackFigures).
	Figures []byte `db:"figures"`
}

// StartReadBack records that a read-back began (again, after a retry: nothing changes)
// and forgets what an earlier attempt of it read.
func (s *Store) StartReadBack(ctx context.Context, providerID, id string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `INSERT INTO read_backs (id, provider_id, started_at) VALUES ($1, $2, $3)
			ON CONFLICT (provider_id, id) DO NOTHING`, id, providerID, s.now())
		if err != nil {
			return fmt.Errorf("store: start read-back: %w", translate(err))
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // begun before: keep what it read
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM target_objects WHERE read_back = $1 AND provider_id = $2`,
			id, providerID); err != nil {
			return fmt.Errorf("store: start read-back: %w", translate(err))
		}
		return nil
	})
}

// RequestReadBack asks for the provider's next full sync to read the target back.
func (s *Store) RequestReadBack(ctx context.Context, providerID string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO read_back_requests (provider_id, requested_at) VALUES ($1, $2)
		ON CONFLICT (provider_id) DO UPDATE SET requested_at = EXCLUDED.requested_at`, providerID, s.now()); err != nil {
		return fmt.Errorf("store: request read-back: %w", translate(err))
	}
	return nil
}

// ReadBackRequested reports whether a read-back was asked for that no read-back begun
// since fulfils.
func (s *Store) ReadBackRequested(ctx context.Context, providerID string) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM read_back_requests r WHERE r.provider_id = $1
		AND NOT EXISTS (SELECT 1 FROM read_backs b WHERE b.provider_id = r.provider_id AND b.started_at >= r.requested_at)`,
		providerID)
	if err != nil {
		return false, fmt.Errorf("store: read-back requested: %w", translate(err))
	}
	return n > 0, nil
}

// FinishReadBack records the read-back's figures and drops what it read.
func (s *Store) FinishReadBack(ctx context.Context, providerID, id string, figures []byte) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if err := execOne(ctx, tx.tx, "finish read-back "+id, `UPDATE read_backs SET finished_at = $3, figures = $4
			WHERE provider_id = $1 AND id = $2`, providerID, id, s.now(), figures); err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM target_objects WHERE read_back = $1 AND provider_id = $2`,
			id, providerID); err != nil {
			return fmt.Errorf("store: finish read-back: %w", translate(err))
		}
		return nil
	})
}

// DropReadBack forgets a read-back and what it read (a plan's, when it is done).
func (s *Store) DropReadBack(ctx context.Context, providerID, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM target_objects WHERE read_back = $1 AND provider_id = $2`,
		id, providerID); err != nil {
		return fmt.Errorf("store: drop read-back: %w", translate(err))
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM read_backs WHERE id = $1 AND provider_id = $2`, id, providerID); err != nil {
		return fmt.Errorf("store: drop read-back: %w", translate(err))
	}
	return nil
}

// ReadBackByID returns one of the provider's read-backs; ErrNotFound when there is none.
func (s *Store) ReadBackByID(ctx context.Context, providerID, id string) (ReadBack, error) {
	var rb ReadBack
	err := s.db.GetContext(ctx, &rb, `SELECT id, provider_id, started_at, finished_at, figures FROM read_backs
		WHERE provider_id = $1 AND id = $2`, providerID, id)
	if err != nil {
		return ReadBack{}, fmt.Errorf("store: read-back %s: %w", id, translate(err))
	}
	return rb, nil
}

// LastReadBack returns the provider's last finished read-back; ok is false when none
// finished yet.
func (s *Store) LastReadBack(ctx context.Context, providerID string) (rb ReadBack, ok bool, err error) {
	err = s.db.GetContext(ctx, &rb, `SELECT id, provider_id, started_at, finished_at, figures FROM read_backs
		WHERE provider_id = $1 AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1`, providerID)
	if errors.Is(err, sql.ErrNoRows) {
		return ReadBack{}, false, nil
	}
	if err != nil {
		return ReadBack{}, false, fmt.Errorf("store: last read-back: %w", translate(err))
	}
	return rb, true, nil
}

func lower(s string) string { return strings.ToLower(s) }

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = lower(s)
	}
	return out
}
