package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/scimsync/scimsync/object"
)

// User types, as stored in users.type.
const (
	UserInternal       = "internal"
	UserExternal       = "external"
	UserServiceAccount = "service_account"
)

// User is a person or service account in the directory.
type User struct {
	ID         string    `db:"id"`
	Username   string    `db:"username"`
	Name       string    `db:"name"`
	Email      string    `db:"email"`
	IsActive   bool      `db:"is_active"`
	Type       string    `db:"type"` // UserInternal, UserExternal or UserServiceAccount; empty means internal
	Locale     string    `db:"locale"`
	Avatar     string    `db:"avatar"`
	Attributes JSONMap   `db:"attributes"`
	CreatedAt  time.Time `db:"created_at"`
	UpdatedAt  time.Time `db:"updated_at"`

	// Groups holds the names of the groups the user is a direct member of, sorted. It is
	// filled by UsersByIDs and ignored on writes.
	Groups []string `db:"-"`
}

// Group is a directory group; ParentID makes groups nest.
type Group struct {
	ID         string    `db:"id"`
	Name       string    `db:"name"`
	ParentID   *string   `db:"parent_id"`
	Attributes JSONMap   `db:"attributes"`
	CreatedAt  time.Time `db:"created_at"`
	UpdatedAt  time.Time `db:"updated_at"`

	// ParentName is the parent's name, filled by GroupsByIDs and ignored on writes.
	ParentName string `db:"parent_name"`
}

// Application is something users may be allowed to use; a provider attached to it syncs
// only the users it admits.
type Application struct {
	ID               string    `db:"id"`
	Name             string    `db:"name"`
	PolicyEngineMode string    `db:"policy_engine_mode"` // "any" (default) or "all"
	CreatedAt        time.Time `db:"created_at"`
	UpdatedAt        time.Time `db:"updated_at"`
}

// Binding admits (or, negated, excludes) a user or the members of a group and its
// descendants to an application. Exactly one of GroupID and UserID is set.
type Binding struct {
	ID            string    `db:"id"`
	ApplicationID string    `db:"application_id"`
	GroupID       *string   `db:"group_id"`
	UserID        *string   `db:"user_id"`
	Negate        bool      `db:"negate"`
	Enabled       bool      `db:"enabled"`
	CreatedAt     time.Time `db:"created_at"`
}

const userColumns = `id, username, name, email, is_active, type, locale, avatar, attributes, created_at, updated_at`

// CreateUser inserts u (its ID is generated when empty) and returns the stored row.
func (tx *Tx) CreateUser(ctx context.Context, u User) (User, error) {
	if u.Type == "" {
		u.Type = UserInternal
	}
	var out User
	err := tx.tx.QueryRowxContext(ctx, `
		INSERT INTO users (id, username, name, email, is_active, type, locale, avatar, attributes)
		VALUES (COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING `+userColumns,
		u.ID, u.Username, u.Name, u.Email, u.IsActive, u.Type, u.Locale, u.Avatar, u.Attributes).StructScan(&out)
	if err != nil {
		return User{}, fmt.Errorf("store: create user: %w", translate(err))
	}
	return out, nil
}

// UpdateUser overwrites every field of the user u.ID.
func (tx *Tx) UpdateUser(ctx context.Context, u User) (User, error) {
	if u.Type == "" {
		u.Type = UserInternal
	}
	var out User
	err := tx.tx.QueryRowxContext(ctx, `
		UPDATE users SET username = $2, name = $3, email = $4, is_active = $5, type = $6,
		       locale = $7, avatar = $8, attributes = $9, updated_at = now()
		WHERE id = $1 RETURNING `+userColumns,
		u.ID, u.Username, u.Name, u.Email, u.IsActive, u.Type, u.Locale, u.Avatar, u.Attributes).StructScan(&out)
	if err != nil {
		return User{}, fmt.Errorf("store: update user %s: %w", u.ID, translate(err))
	}
	return out, nil
}

// DeleteUser removes a user and its memberships. Its sync links stay, so the remote
// account can still be deprovisioned.
func (tx *Tx) DeleteUser(ctx context.Context, id string) error {
	return execOne(ctx, tx.tx, "delete user "+id, `DELETE FROM users WHERE id = $1`, id)
}

// CreateGroup inserts g (its ID is generated when empty).
func (tx *Tx) CreateGroup(ctx context.Context, g Group) (Group, error) {
	var out Group
	err := tx.tx.QueryRowxContext(ctx, `
		INSERT INTO groups (id, name, parent_id, attributes)
		VALUES (COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3, $4)
		RETURNING id, name, parent_id, attributes, created_at, updated_at, '' AS parent_name`,
		g.ID, g.Name, g.ParentID, g.Attributes).StructScan(&out)
	if err != nil {
		return Group{}, fmt.Errorf("store: create group: %w", translate(err))
	}
	return out, nil
}

// UpdateGroup overwrites the name, parent and attributes of the group g.ID.
func (tx *Tx) UpdateGroup(ctx context.Context, g Group) (Group, error) {
	var out Group
	err := tx.tx.QueryRowxContext(ctx, `
		UPDATE groups SET name = $2, parent_id = $3, attributes = $4, updated_at = now()
		WHERE id = $1
		RETURNING id, name, parent_id, attributes, created_at, updated_at, '' AS parent_name`,
		g.ID, g.Name, g.ParentID, g.Attributes).StructScan(&out)
	if err != nil {
		return Group{}, fmt.Errorf("store: update group %s: %w", g.ID, translate(err))
	}
	return out, nil
}

// DeleteGroup removes a group and its memberships; its child groups become top-level.
func (tx *Tx) DeleteGroup(ctx context.Context, id string) error {
	return execOne(ctx, tx.tx, "delete group "+id, `DELETE FROM groups WHERE id = $1`, id)
}

// AddMember makes a user a direct member of a group. Adding an existing member is a no-op
// and writes no change.
func (tx *Tx) AddMember(ctx context.Context, groupID, userID string) error {
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		groupID, userID)
	if err != nil {
		return fmt.Errorf("store: add member %s to group %s: %w", userID, groupID, translate(err))
	}
	return nil
}

// RemoveMember ends a direct membership; ErrNotFound when there was none.
func (tx *Tx) RemoveMember(ctx context.Context, groupID, userID string) error {
	return execOne(ctx, tx.tx, "remove member "+userID+" from group "+groupID,
		`DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, groupID, userID)
}

// CreateApplication inserts an application; an empty mode means "any".
func (tx *Tx) CreateApplication(ctx context.Context, a Application) (Application, error) {
	if a.PolicyEngineMode == "" {
		a.PolicyEngineMode = "any"
	}
	var out Application
	err := tx.tx.QueryRowxContext(ctx, `
		INSERT INTO applications (id, name, policy_engine_mode)
		VALUES (COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3)
		RETURNING id, name, policy_engine_mode, created_at, updated_at`,
		a.ID, a.Name, a.PolicyEngineMode).StructScan(&out)
	if err != nil {
		return Application{}, fmt.Errorf("store: create application: %w", translate(err))
	}
	return out, nil
}

// CreateBinding inserts a binding.
func (tx *Tx) CreateBinding(ctx context.Context, b Binding) (Binding, error) {
	var out Binding
	err := tx.tx.QueryRowxContext(ctx, `
		INSERT INTO application_bindings (id, application_id, group_id, user_id, negate, enabled)
		VALUES (COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3, $4, $5, $6)
		RETURNING id, application_id, group_id, user_id, negate, enabled, created_at`,
		b.ID, b.ApplicationID, b.GroupID, b.UserID, b.Negate, b.Enabled).StructScan(&out)
	if err != nil {
		return Binding{}, fmt.Errorf("store: create binding: %w", translate(err))
	}
	return out, nil
}

// UpdateBinding overwrites negate and enabled of the binding b.ID.
func (tx *Tx) UpdateBinding(ctx context.Context, b Binding) error {
	return execOne(ctx, tx.tx, "update binding "+b.ID,
		`UPDATE application_bindings SET negate = $2, enabled = $3 WHERE id = $1`, b.ID, b.Negate, b.Enabled)
}

// DeleteBinding removes a binding.
func (tx *Tx) DeleteBinding(ctx context.Context, id string) error {
	return execOne(ctx, tx.tx, "delete binding "+id, `DELETE FROM application_bindings WHERE id = $1`, id)
}

// UsersByIDs loads the users with the given ids, with their direct group names, in id
// order. Ids that do not exist are left out.
func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]User, error) {
	users := []User{}
	if len(ids) == 0 {
		return users, nil
	}
	if err := s.db.SelectContext(ctx, &users,
		`SELECT `+userColumns+` FROM users WHERE id = ANY($1::uuid[]) ORDER BY id`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("store: load users: %w", translate(err))
	}
	var rows []struct {
		UserID string `db:"user_id"`
		Name   string `db:"name"`
	}
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT gm.user_id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id
		WHERE gm.user_id = ANY($1::uuid[]) ORDER BY gm.user_id, g.name`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("store: load user groups: %w", translate(err))
	}
	byID := make(map[string]*User, len(users))
	for i := range users {
		byID[users[i].ID] = &users[i]
	}
	for _, r := range rows {
		if u := byID[r.UserID]; u != nil {
			u.Groups = append(u.Groups, r.Name)
		}
	}
	return users, nil
}

// UserByUsername finds a user by username (exact match); ErrNotFound when none.
func (s *Store) UserByUsername(ctx context.Context, username string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE username = $1`, username)
	if err != nil {
		return User{}, fmt.Errorf("store: find user: %w", translate(err))
	}
	return u, nil
}

// GroupsByIDs loads the groups with the given ids, with their parent's name, in id order.
func (s *Store) GroupsByIDs(ctx context.Context, ids []string) ([]Group, error) {
	groups := []Group{}
	if len(ids) == 0 {
		return groups, nil
	}
	err := s.db.SelectContext(ctx, &groups, `
		SELECT g.id, g.name, g.parent_id, g.attributes, g.created_at, g.updated_at,
		       COALESCE(p.name, '') AS parent_name
		FROM groups g LEFT JOIN groups p ON p.id = g.parent_id
		WHERE g.id = ANY($1::uuid[]) ORDER BY g.id`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("store: load groups: %w", translate(err))
	}
	return groups, nil
}

// GroupByName finds a group by name; ErrNotFound when none.
func (s *Store) GroupByName(ctx context.Context, name string) (Group, error) {
	var g Group
	err := s.db.GetContext(ctx, &g, `
		SELECT g.id, g.name, g.parent_id, g.attributes, g.created_at, g.updated_at,
		       COALESCE(p.name, '') AS parent_name
		FROM groups g LEFT JOIN groups p ON p.id = g.parent_id WHERE g.name = $1`, name)
	if err != nil {
		return Group{}, fmt.Errorf("store: find group: %w", translate(err))
	}
	return g, nil
}

// GroupMembers returns, for each of the given groups, the ids of its members, sorted. With
// nested true a group's members include those of all its descendants (for targets without
// nested groups). Groups without members map to an empty slice.
func (s *Store) GroupMembers(ctx context.Context, groupIDs []string, nested bool) (map[string][]string, error) {
	out := make(map[string][]string, len(groupIDs))
	for _, id := range groupIDs {
		out[id] = []string{}
	}
	if len(groupIDs) == 0 {
		return out, nil
	}
	query := `SELECT group_id AS root, user_id FROM group_members WHERE group_id = ANY($1::uuid[]) ORDER BY 1, 2`
	if nested {
		query = `
		WITH RECURSIVE tree(root, id) AS (
			SELECT id, id FROM groups WHERE id = ANY($1::uuid[])
			UNION
			SELECT t.root, g.id FROM tree t JOIN groups g ON g.parent_id = t.id
		)
		SELECT DISTINCT t.root, gm.user_id FROM tree t JOIN group_members gm ON gm.group_id = t.id ORDER BY 1, 2`
	}
	var rows []struct {
		Root   string `db:"root"`
		UserID string `db:"user_id"`
	}
	if err := s.db.SelectContext(ctx, &rows, query, pq.Array(groupIDs)); err != nil {
		return nil, fmt.Errorf("store: load members: %w", translate(err))
	}
	for _, r := range rows {
		out[r.Root] = append(out[r.Root], r.UserID)
	}
	return out, nil
}

// GroupIDsOfUser returns the ids of the groups the user is a direct member of.
func (s *Store) GroupIDsOfUser(ctx context.Context, userID string) ([]string, error) {
	ids := []string{}
	if err := s.db.SelectContext(ctx, &ids,
		`SELECT group_id FROM group_members WHERE user_id = $1 ORDER BY group_id`, userID); err != nil {
		return nil, fmt.Errorf("store: groups of user %s: %w", userID, translate(err))
	}
	return ids, nil
}

// ApplicationByName finds an application; ErrNotFound when none.
func (s *Store) ApplicationByName(ctx context.Context, name string) (Application, error) {
	var a Application
	err := s.db.GetContext(ctx, &a,
		`SELECT id, name, policy_engine_mode, created_at, updated_at FROM applications WHERE name = $1`, name)
	if err != nil {
		return Application{}, fmt.Errorf("store: find application: %w", translate(err))
	}
	return a, nil
}

// execOne runs a statement that must touch exactly one row.
func execOne(ctx context.Context, q sqlx.ExecerContext, what, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, translate(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return nil
}

// UserIDs returns the id of every user, in id order.
func (s *Store) UserIDs(ctx context.Context) ([]string, error) {
	ids := []string{}
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM users ORDER BY id`); err != nil {
		return nil, fmt.Errorf("store: user ids: %w", translate(err))
	}
	return ids, nil
}

// IDsByName returns the ids of the users (kind "user", by username) or groups (by name)
// with the given names, compared case-insensitively, keyed by the lower-cased name.
func (s *Store) IDsByName(ctx context.Context, kind string, names []string) (map[string]string, error) {
	out := map[string]string{}
	if len(names) == 0 {
		return out, nil
	}
	q := `SELECT id, lower(username) AS name FROM users WHERE lower(username) = ANY($1::text[])`
	if kind == object.Group {
		q = `SELECT id, lower(name) AS name FROM groups WHERE lower(name) = ANY($1::text[])`
	}
	var rows []struct {
		ID   string `db:"id"`
		Name string `db:"name"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, pq.Array(lowerAll(names))); err != nil {
		return nil, fmt.Errorf("store: ids by name: %w", translate(err))
	}
	for _, r := range rows {
		out[r.Name] = r.ID
	}
	return out, nil
}
