package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"
	"github.com/scimsync/scimsync/object"
)

// Link ties a local user or group to its remote SCIM resource at one provider, with what
// was last written there. RemoteID is empty while a create is in flight (the POST may or
// may not have reached the target), so a retry must look the object up before posting.
type Link struct {
	ProviderID  string     `db:"provider_id"`
	Kind        string     `db:"kind"`
	ObjectID    string     `db:"object_id"`
	RemoteID    *string    `db:"remote_id"`
	PayloadHash string     `db:"payload_hash"`
	Payload     []byte     `db:"payload"` // JSON of the payload last written; nil: none
	Members     StringList `db:"members"` // remote ids of the members last written (groups); nil: never written
	LastError   string     `db:"last_error"`
	SyncedAt    *time.Time `db:"synced_at"`
	// DeprovisionedAt is set while the remote object is deactivated.
	DeprovisionedAt *time.Time `db:"deprovisioned_at"`
	// DeleteAfter, on a deactivated link of a provider whose action is
	// deactivate_then_delete, is when the remote object is to be deleted if it is still out
	// of scope then. Any write of the object clears it.
	DeleteAfter *time.Time `db:"delete_after"`
	// CreateUncertain, on a link without remote id, says that a create may have reached
	// the target without its answer being known: it must be looked up before it is posted
	// again. A create the target refused (MarkCreateRefused) is simply posted again.
	CreateUncertain bool      `db:"create_uncertain"`
	CreatedAt       time.Time `db:"created_at"`
	UpdatedAt       time.Time `db:"updated_at"`
	// Attempts counts the failed writes in a row since the last success, and NextAttemptAt
	// is when the escrow retries the object on its own (nil: only full syncs do); see
	// escrow.go.
	Attempts      int        `db:"error_attempts"`
	NextAttemptAt *time.Time `db:"next_attempt_at"`
}

// Live reports whether the object exists at the target as scimsync last wrote it: it has a
// remote id and is not deprovisioned (deactivated). Only a live object is updated in place,
// counted as a group member, or compared with what the target holds.
func (l Link) Live() bool { return l.Remote() != "" && l.DeprovisionedAt == nil }

// Remote returns the remote id, or "" while none is known.
func (l Link) Remote() string {
	if l.RemoteID == nil {
		return ""
	}
	return *l.RemoteID
}

const linkColumns = `provider_id, kind, object_id, remote_id, payload_hash, payload, members, last_error,
	synced_at, deprovisioned_at, create_uncertain, created_at, updated_at, delete_after, error_attempts, next_attempt_at`

// Links returns the provider's links for the given objects of one kind, keyed by object id.
// Objects without a link are absent from the map.
func (s *Store) Links(ctx context.Context, providerID, kind string, objectIDs []string) (map[string]Link, error) {
	out := make(map[string]Link, len(objectIDs))
	if len(objectIDs) == 0 {
		return out, nil
	}
	var links []Link
	err := s.db.SelectContext(ctx, &links, `SELECT `+linkColumns+` FROM sync_links
		WHERE provider_id = $1 AND kind = $2 AND object_id = ANY($3::uuid[])`,
		providerID, kind, pq.Array(objectIDs))
	if err != nil {
		return nil, fmt.Errorf("store: load links: %w", translate(err))
	}
	for _, l := range links {
		out[l.ObjectID] = l
	}
	return out, nil
}

// LiveLinks pages, in object id order after the given id, through the provider's links of
// one kind that hold a remote id and are not deactivated.
func (s *Store) LiveLinks(ctx context.Context, providerID, kind, after string, limit int) ([]Link, error) {
	links := []Link{}
	err := s.db.SelectContext(ctx, &links, `SELECT `+linkColumns+` FROM sync_links
		WHERE provider_id = $1 AND kind = $2 AND remote_id IS NOT NULL AND deprovisioned_at IS NULL
		  AND object_id > COALESCE(NULLIF($3, '')::uuid, '00000000-0000-0000-0000-000000000000')
		ORDER BY object_id LIMIT $4`, providerID, kind, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: live links: %w", translate(err))
	}
	return links, nil
}

// RemoteIDs returns the remote ids of the given objects of one kind at the provider, keyed
// by object id, for those linked and not deactivated there. It reads only the ids, not the
// payloads: membership syncs look up thousands of members at once.
func (s *Store) RemoteIDs(ctx context.Context, providerID, kind string, objectIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(objectIDs))
	if len(objectIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		ObjectID string `db:"object_id"`
		RemoteID string `db:"remote_id"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT object_id, remote_id FROM sync_links
		WHERE provider_id = $1 AND kind = $2 AND object_id = ANY($3::uuid[])
		  AND remote_id IS NOT NULL AND deprovisioned_at IS NULL`,
		providerID, kind, pq.Array(objectIDs))
	if err != nil {
		return nil, fmt.Errorf("store: load remote ids: %w", translate(err))
	}
	for _, r := range rows {
		out[r.ObjectID] = r.RemoteID
	}
	return out, nil
}

// UsernamesByRemoteID returns the usernames of the users linked to the given remote ids at
// the provider, keyed by remote id.
func (s *Store) UsernamesByRemoteID(ctx context.Context, providerID string, remoteIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(remoteIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		RemoteID string `db:"remote_id"`
		Username string `db:"username"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT l.remote_id, u.username FROM sync_links l JOIN users u ON u.id = l.object_id
		WHERE l.provider_id = $1 AND l.kind = 'user' AND l.remote_id = ANY($2::text[])`, providerID, pq.Array(remoteIDs))
	if err != nil {
		return nil, fmt.Errorf("store: usernames by remote id: %w", translate(err))
	}
	for _, r := range rows {
		out[r.RemoteID] = r.Username
	}
	return out, nil
}

// LinkedRemoteIDs returns which of remoteIDs a link of the provider's kind still holds.
// Like RemoteIDs it reads only ids, in one query however many are asked.
func (s *Store) LinkedRemoteIDs(ctx context.Context, providerID, kind string, remoteIDs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(remoteIDs))
	if len(remoteIDs) == 0 {
		return out, nil
	}
	var found []string
	err := s.db.SelectContext(ctx, &found, `SELECT remote_id FROM sync_links
		WHERE provider_id = $1 AND kind = $2 AND remote_id = ANY($3::text[])`,
		providerID, kind, pq.Array(remoteIDs))
	if err != nil {
		return nil, fmt.Errorf("store: find remote ids: %w", translate(err))
	}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// MarkCreating records that a create of the object is about to be sent, before the POST,
// with the payload about to be sent (so that a retry, or a deprovisioning, can look the
// object up remotely if the POST went through but its answer was lost). A link that
// already has a remote id is returned untouched: a remote id is never forgotten.
func (s *Store) MarkCreating(ctx context.Context, providerID, kind, objectID string, payload []byte) (Link, error) {
	var l Link
	err := s.db.GetContext(ctx, &l, `
		INSERT INTO sync_links (provider_id, kind, object_id, payload, create_uncertain) VALUES ($1, $2, $3, $4, true)
		ON CONFLICT (provider_id, kind, object_id) DO UPDATE
			SET payload = CASE WHEN sync_links.remote_id IS NULL THEN COALESCE(EXCLUDED.payload, sync_links.payload)
			                   ELSE sync_links.payload END,
			    create_uncertain = sync_links.remote_id IS NULL
		RETURNING `+linkColumns, providerID, kind, objectID, nullJSON(payload))
	if err != nil {
		return Link{}, fmt.Errorf("store: mark creating: %w", translate(err))
	}
	s.linksWritten(1)
	return l, nil
}

// SaveLink records a successful write: the remote id, the payload written and its hash,
// and (for groups, when members is non-nil) the members written. It clears last_error.
func (s *Store) SaveLink(ctx context.Context, l Link) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO sync_links (provider_id, kind, object_id, remote_id, payload_hash, payload, members,
			last_error, synced_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $8)
		ON CONFLICT (provider_id, kind, object_id) DO UPDATE SET remote_id = EXCLUDED.remote_id,
			payload_hash = EXCLUDED.payload_hash, payload = EXCLUDED.payload,
			members = COALESCE(EXCLUDED.members, sync_links.members),
			last_error = '', synced_at = EXCLUDED.synced_at, updated_at = EXCLUDED.updated_at,
			deprovisioned_at = NULL, delete_after = NULL, `+clearEscrow,
		l.ProviderID, l.Kind, l.ObjectID, l.RemoteID, l.PayloadHash, nullJSON(l.Payload), l.Members, s.now())
	if err != nil {
		return fmt.Errorf("store: save link %s/%s: %w", l.Kind, l.ObjectID, translate(err))
	}
	s.linksWritten(1)
	return nil
}

// MarkCreatingMany is MarkCreating for several objects of one kind, in one statement:
// payloads maps object ids to the payload about to be sent (nil or empty: none). Links
// that already have a remote id keep it and their payload.
func (s *Store) MarkCreatingMany(ctx context.Context, providerID, kind string, payloads map[string][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	ids := make([]string, 0, len(payloads))
	bodies := make([]sql.NullString, 0, len(payloads))
	for id, p := range payloads {
		ids = append(ids, id)
		bodies = append(bodies, sql.NullString{String: string(p), Valid: len(p) > 0})
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO sync_links (provider_id, kind, object_id, payload, create_uncertain)
		SELECT $1::uuid, $2::text, t.id, t.payload::jsonb, true FROM unnest($3::uuid[], $4::text[]) AS t(id, payload)
		ON CONFLICT (provider_id, kind, object_id) DO UPDATE
			SET payload = CASE WHEN sync_links.remote_id IS NULL THEN COALESCE(EXCLUDED.payload, sync_links.payload)
			                   ELSE sync_links.payload END,
			    create_uncertain = sync_links.remote_id IS NULL`,
		providerID, kind, pq.Array(ids), pq.Array(bodies))
	if err != nil {
		return fmt.Errorf("store: mark %d %ss creating: %w", len(ids), kind, translate(err))
	}
	s.linksWritten(len(ids))
	return nil
}

// MarkCreatesRefused records that the target refused the creates of objects whose links
// have no remote id (it answered 4xx or 429, or the requests never reached it): the next
// attempt posts again without looking the objects up first.
func (s *Store) MarkCreatesRefused(ctx context.Context, providerID, kind string, objectIDs []string) error {
	if len(objectIDs) == 0 {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE sync_links SET create_uncertain = false, updated_at = $4
		WHERE provider_id = $1 AND kind = $2 AND object_id = ANY($3::uuid[]) AND remote_id IS NULL`,
		providerID, kind, pq.Array(objectIDs), s.now()); err != nil {
		return fmt.Errorf("store: mark %d creates refused: %w", len(objectIDs), translate(err))
	}
	return nil
}

// SaveLinks is SaveLink for several links, in one statement. They must all be of one
// provider and kind, each object at most once.
func (s *Store) SaveLinks(ctx context.Context, links []Link) error {
	if len(links) == 0 {
		return nil
	}
	n := len(links)
	ids, remotes, hashes := make([]string, n), make([]sql.NullString, n), make([]string, n)
	payloads, members := make([]sql.NullString, n), make([]sql.NullString, n)
	for i, l := range links {
		if l.ProviderID != links[0].ProviderID || l.Kind != links[0].Kind {
			return fmt.Errorf("store: save links: links of several providers or kinds")
		}
		ids[i], hashes[i] = l.ObjectID, l.PayloadHash
		remotes[i] = sql.NullString{String: l.Remote(), Valid: l.RemoteID != nil}
		payloads[i] = sql.NullString{String: string(l.Payload), Valid: len(l.Payload) > 0}
		if l.Members != nil {
			b, err := json.Marshal([]string(l.Members))
			if err != nil {
				return err
			}
			members[i] = sql.NullString{String: string(b), Valid: true}
		}
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO sync_links (provider_id, kind, object_id, remote_id, payload_hash, payload, members,
			last_error, synced_at, updated_at)
		SELECT $1::uuid, $2::text, t.id, t.remote_id, t.hash, t.payload::jsonb, t.members::jsonb, '', $3::timestamptz, $3::timestamptz
		FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[]) AS t(id, remote_id, hash, payload, members)
		ON CONFLICT (provider_id, kind, object_id) DO UPDATE SET remote_id = EXCLUDED.remote_id,
			payload_hash = EXCLUDED.payload_hash, payload = EXCLUDED.payload,
			members = COALESCE(EXCLUDED.members, sync_links.members),
			last_error = '', synced_at = EXCLUDED.synced_at, updated_at = EXCLUDED.updated_at,
			deprovisioned_at = NULL, delete_after = NULL, `+clearEscrow,
		links[0].ProviderID, links[0].Kind, s.now(), pq.Array(ids), pq.Array(remotes), pq.Array(hashes),
		pq.Array(payloads), pq.Array(members))
	if err != nil {
		return fmt.Errorf("store: save %d %s links: %w", n, links[0].Kind, translate(err))
	}
	s.linksWritten(n)
	return nil
}

// SaveMembers records the remote member ids last written to a linked group.
func (s *Store) SaveMembers(ctx context.Context, providerID, groupID string, members []string) error {
	if members == nil {
		members = []string{}
	}
	return execOne(ctx, s.db, "save members of group "+groupID, `
		UPDATE sync_links SET members = $3, synced_at = $4, updated_at = $4
		WHERE provider_id = $1 AND kind = 'group' AND object_id = $2`,
		providerID, groupID, StringList(members), s.now())
}

// SetLinkError records why the last sync of an object failed; the link is created when
// missing. msg must not contain secrets or personal data. It counts the attempt and sets
// when the escrow retries the object (escrow.go).
func (s *Store) SetLinkError(ctx context.Context, providerID, kind, objectID, msg string) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO sync_links (provider_id, kind, object_id, last_error, updated_at, create_uncertain,
			error_attempts, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5::timestamptz, false, 1, $5::timestamptz + ($6::float8[])[1] * interval '1 second')
		ON CONFLICT (provider_id, kind, object_id) DO UPDATE SET last_error = EXCLUDED.last_error,
			updated_at = EXCLUDED.updated_at, error_attempts = sync_links.error_attempts + 1,
			next_attempt_at = EXCLUDED.updated_at + ($6::float8[])[sync_links.error_attempts + 1] * interval '1 second'`,
		providerID, kind, objectID, msg, s.now(), s.retryDelaySeconds())
	if err != nil {
		return fmt.Errorf("store: set link error: %w", translate(err))
	}
	return nil
}

// MarkDeprovisioned records that the remote object was deactivated, with the payload and
// hash that did it; the link is kept and no longer counts as stale. deleteAfter > 0 (the
// grace period of deactivate_then_delete) sets the link's deletion deadline that long from
// now; 0 leaves it without one.
func (s *Store) MarkDeprovisioned(ctx context.Context, providerID, kind, objectID, hash string, payload []byte, deleteAfter time.Duration) error {
	now := s.now()
	var deadline *time.Time
	if deleteAfter > 0 {
		d := now.Add(deleteAfter)
		deadline = &d
	}
	return execOne(ctx, s.db, "mark deprovisioned "+kind+" "+objectID, `
		UPDATE sync_links SET deprovisioned_at = $4, payload_hash = $5, payload = COALESCE($6, payload),
			last_error = '', updated_at = $4, delete_after = $7, `+clearEscrow+`
		WHERE provider_id = $1 AND kind = $2 AND object_id = $3`,
		providerID, kind, objectID, now, hash, nullJSON(payload), deadline)
}

// DeleteLink forgets a link, once the remote object is deprovisioned or found gone.
func (s *Store) DeleteLink(ctx context.Context, providerID, kind, objectID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sync_links WHERE provider_id = $1 AND kind = $2 AND object_id = $3`,
		providerID, kind, objectID); err != nil {
		return fmt.Errorf("store: delete link: %w", translate(err))
	}
	return nil
}

// What makes a link l stale: not deprovisioned, and its user out of scope (the query
// starts with scopedUsersCTE) or its group deleted.
const (
	staleUser  = `l.deprovisioned_at IS NULL AND NOT EXISTS (SELECT 1 FROM scoped WHERE scoped.id = l.object_id)`
	staleGroup = `l.deprovisioned_at IS NULL AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = l.object_id)`
)

// StaleLinkIDs pages through the ids of objects that are linked at the provider but are no
// longer in its scope (deleted, or out of scope), in id order after the given id. For
// groups, a group that was synced but is no longer selected by the group filters is not
// stale: changing filters removes nothing synced before.
func (s *Store) StaleLinkIDs(ctx context.Context, providerID, kind, after string, limit int) ([]string, error) {
	ids := []string{}
	var err error
	afterClause := `l.object_id > COALESCE(NULLIF($2, '')::uuid, '00000000-0000-0000-0000-000000000000')`
	switch kind {
	case object.User:
		err = s.db.SelectContext(ctx, &ids, scopedUsersCTE+`
			SELECT l.object_id FROM sync_links l
			WHERE l.provider_id = $1 AND l.kind = 'user' AND `+staleUser+` AND `+afterClause+`
			ORDER BY l.object_id LIMIT $3`, providerID, after, limit)
	case object.Group:
		err = s.db.SelectContext(ctx, &ids, `
			SELECT l.object_id FROM sync_links l
			WHERE l.provider_id = $1 AND l.kind = 'group' AND `+staleGroup+` AND `+afterClause+`
			ORDER BY l.object_id LIMIT $3`, providerID, after, limit)
	default:
		return nil, fmt.Errorf("store: stale links: unknown kind %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("store: stale links of provider %s: %w", providerID, translate(err))
	}
	return ids, nil
}

// LinkCounts reports how many objects of each kind are linked at the provider, and how
// many carry an error.
type LinkCounts struct {
	Users       int `db:"users"`
	Groups      int `db:"groups"`
	UserErrors  int `db:"user_errors"`
	GroupErrors int `db:"group_errors"`
}

// CountLinks counts the provider's links.
func (s *Store) CountLinks(ctx context.Context, providerID string) (LinkCounts, error) {
	var c LinkCounts
	err := s.db.GetContext(ctx, &c, `
		SELECT count(*) FILTER (WHERE kind = 'user' AND remote_id IS NOT NULL) AS users,
		       count(*) FILTER (WHERE kind = 'group' AND remote_id IS NOT NULL) AS groups,
		       count(*) FILTER (WHERE kind = 'user' AND last_error <> '') AS user_errors,
		       count(*) FILTER (WHERE kind = 'group' AND last_error <> '') AS group_errors
		FROM sync_links WHERE provider_id = $1`, providerID)
	if err != nil {
		return LinkCounts{}, fmt.Errorf("store: count links: %w", translate(err))
	}
	return c, nil
}

// LinkErrors returns up to limit links of the provider that carry an error, newest first.
func (s *Store) LinkErrors(ctx context.Context, providerID string, limit int) ([]Link, error) {
	links := []Link{}
	err := s.db.SelectContext(ctx, &links, `SELECT `+linkColumns+` FROM sync_links
		WHERE provider_id = $1 AND last_error <> '' ORDER BY updated_at DESC LIMIT $2`, providerID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: link errors: %w", translate(err))
	}
	return links, nil
}

func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// CountStaleLinks counts the provider's links that StaleLinkIDs would return, per kind.
func (s *Store) CountStaleLinks(ctx context.Context, providerID string) (users, groups int, err error) {
	var row struct {
		Users  int `db:"users"`
		Groups int `db:"groups"`
	}
	err = s.db.GetContext(ctx, &row, scopedUsersCTE+`
		SELECT
			(SELECT count(*) FROM sync_links l WHERE l.provider_id = $1 AND l.kind = 'user'
				AND `+staleUser+`) AS users,
			(SELECT count(*) FROM sync_links l WHERE l.provider_id = $1 AND l.kind = 'group'
				AND `+staleGroup+`) AS groups`,
		providerID)
	if err != nil {
		return 0, 0, fmt.Errorf("store: count stale links: %w", translate(err))
	}
	return row.Users, row.Groups, nil
}
