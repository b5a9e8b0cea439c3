package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"
	"github.com/scimsync/scimsync/object"
)

// Directory objects by the names people give them (a group's display name, a user's
// username), for imports and operator commands that are given names, not ids.

// GroupsByName returns the groups with the given names, keyed by name; names that do not
// exist are absent.
func (tx *Tx) GroupsByName(ctx context.Context, names []string) (map[string]Group, error) {
	groups := []Group{}
	out := map[string]Group{}
	if len(names) == 0 {
		return out, nil
	}
	err := tx.tx.SelectContext(ctx, &groups, `
		SELECT g.id, g.name, g.parent_id, g.attributes, g.created_at, g.updated_at,
		       COALESCE(p.name, '') AS parent_name
		FROM groups g LEFT JOIN groups p ON p.id = g.parent_id WHERE g.name = ANY($1::text[])`, pq.Array(names))
	if err != nil {
		return nil, fmt.Errorf("store: find groups: %w", translate(err))
	}
	for _, g := range groups {
		out[g.Name] = g
	}
	return out, nil
}

// UsersByUsername returns the users with the given usernames, keyed by username; usernames
// that do not exist are absent.
func (tx *Tx) UsersByUsername(ctx context.Context, usernames []string) (map[string]User, error) {
	users := []User{}
	out := map[string]User{}
	if len(usernames) == 0 {
		return out, nil
	}
	if err := tx.tx.SelectContext(ctx, &users, `SELECT `+userColumns+` FROM users WHERE username = ANY($1::text[])`,
		pq.Array(usernames)); err != nil {
		return nil, fmt.Errorf("store: find users: %w", translate(err))
	}
	for _, u := range users {
		out[u.Username] = u
	}
	return out, nil
}

// Membership is one direct membership.
type Membership struct {
	GroupID string `db:"group_id"`
	UserID  string `db:"user_id"`
}

// Memberships returns the direct memberships of the given groups.
func (tx *Tx) Memberships(ctx context.Context, groupIDs []string) (map[Membership]bool, error) {
	out := map[Membership]bool{}
	if len(groupIDs) == 0 {
		return out, nil
	}
	var rows []Membership
	if err := tx.tx.SelectContext(ctx, &rows, `SELECT group_id, user_id FROM group_members WHERE group_id = ANY($1::uuid[])`,
		pq.Array(groupIDs)); err != nil {
		return nil, fmt.Errorf("store: memberships: %w", translate(err))
	}
	for _, m := range rows {
		out[m] = true
	}
	return out, nil
}

// ObjectNames are the names of directory objects by id: users' usernames and groups' names.
type ObjectNames struct {
	Users, Groups map[string]string
}

// Of returns the name of the object of kind (object.User or object.Group) with id, "" when it is
// not known (not asked for, or no longer in the directory).
func (n ObjectNames) Of(kind, id string) string {
	if kind == object.Group {
		return n.Groups[id]
	}
	return n.Users[id]
}

// NamesByID returns the usernames of the users and the names of the groups with the given
// ids, in one query; ids that do not exist (deleted objects) are absent. It is the change
// feed's one read of the directory per batch, for the summaries of the workflows it starts.
func (s *Store) NamesByID(ctx context.Context, userIDs, groupIDs []string) (ObjectNames, error) {
	out := ObjectNames{Users: map[string]string{}, Groups: map[string]string{}}
	if len(userIDs) == 0 && len(groupIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		Kind string `db:"kind"`
		ID   string `db:"id"`
		Name string `db:"name"`
	}
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT 'user' AS kind, id, username AS name FROM users WHERE id = ANY($1::uuid[])
		UNION ALL
		SELECT 'group', id, name FROM groups WHERE id = ANY($2::uuid[])`,
		pq.Array(userIDs), pq.Array(groupIDs)); err != nil {
		return ObjectNames{}, fmt.Errorf("store: names by id: %w", translate(err))
	}
	for _, r := range rows {
		if r.Kind == object.Group {
			out.Groups[r.ID] = r.Name
		} else {
			out.Users[r.ID] = r.Name
		}
	}
	return out, nil
}
