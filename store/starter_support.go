package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Reads and writes the operator CLI (package starter) needs: configuration as code reads
// the whole configuration inside the transaction that rewrites it, and the directory import
// looks objects up by name. They live here so that every SQL statement stays in the store.

// LockConfig takes a transaction-scoped lock that serialises configuration rewrites
// (`starter apply`): two applies never interleave their reads and writes. It is released
// when the transaction ends.
func (tx *Tx) LockConfig(ctx context.Context) error {
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('scimsync/config', 0))`); err != nil {
		return fmt.Errorf("store: lock configuration: %w", translate(err))
	}
	return nil
}

// Providers lists all providers by name, as the transaction sees them.
func (tx *Tx) Providers(ctx context.Context) ([]Provider, error) {
	ps := []Provider{}
	if err := tx.tx.SelectContext(ctx, &ps, `SELECT `+providerColumns+` FROM providers ORDER BY name`); err != nil {
		return nil, fmt.Errorf("store: list providers: %w", translate(err))
	}
	for i := range ps {
		ps[i].afterScan()
	}
	return ps, nil
}

// Mappings lists every property mapping by name, as the transaction sees them.
func (tx *Tx) Mappings(ctx context.Context) ([]PropertyMapping, error) {
	ms := []PropertyMapping{}
	if err := tx.tx.SelectContext(ctx, &ms, `SELECT `+mappingColumns+`
		FROM property_mappings ORDER BY name`); err != nil {
		return nil, fmt.Errorf("store: list mappings: %w", translate(err))
	}
	return ms, nil
}

// Applications lists every application by name.
func (s *Store) Applications(ctx context.Context) ([]Application, error) {
	return listApplications(ctx, s.db)
}

// Applications lists every application by name, as the transaction sees them.
func (tx *Tx) Applications(ctx context.Context) ([]Application, error) {
	return listApplications(ctx, tx.tx)
}

func listApplications(ctx context.Context, q sqlx.QueryerContext) ([]Application, error) {
	as := []Application{}
	if err := sqlx.SelectContext(ctx, q, &as, `SELECT id, name, policy_engine_mode, created_at, updated_at
		FROM applications ORDER BY name`); err != nil {
		return nil, fmt.Errorf("store: list applications: %w", translate(err))
	}
	return as, nil
}

// UpdateApplication sets the policy engine mode of the application a.ID.
func (tx *Tx) UpdateApplication(ctx context.Context, a Application) error {
	return execOne(ctx, tx.tx, "update application "+a.Name,
		`UPDATE applications SET policy_engine_mode = $2, updated_at = now() WHERE id = $1`, a.ID, a.PolicyEngineMode)
}

// DeleteApplication removes an application with its bindings; providers attached to it
// are detached (and then admit every user).
func (tx *Tx) DeleteApplication(ctx context.Context, name string) error {
	return execOne(ctx, tx.tx, "delete application "+name, `DELETE FROM applications WHERE name = $1`, name)
}

// NamedBinding is a Binding with the names of what it refers to.
type NamedBinding struct {
	Binding
	Application string `db:"application"`
	GroupName   string `db:"group_name"` // "" for a user binding
	Username    string `db:"username"`   // "" for a group binding
}

// Bindings lists every application binding with the names it refers to, ordered by
// application, then group, then user.
func (tx *Tx) Bindings(ctx context.Context) ([]NamedBinding, error) {
	bs := []NamedBinding{}
	err := tx.tx.SelectContext(ctx, &bs, `
		SELECT b.id, b.application_id, b.group_id, b.user_id, b.negate, b.enabled, b.created_at,
		       a.name AS application, COALESCE(g.name, '') AS group_name, COALESCE(u.username, '') AS username
		FROM application_bindings b
		JOIN applications a ON a.id = b.application_id
		LEFT JOIN groups g ON g.id = b.group_id
		LEFT JOIN users u ON u.id = b.user_id
		ORDER BY a.name, g.name NULLS LAST, u.username NULLS LAST, b.id`)
	if err != nil {
		return nil, fmt.Errorf("store: list bindings: %w", translate(err))
	}
	return bs, nil
}

// ProviderSelection is what a provider selects by name: its group filters and mappings,
// each sorted.
type ProviderSelection struct {
	GroupFilters []string
	Mappings     []string
}

// ProviderSelections returns the selections of every provider, keyed by provider id.
// Providers that select nothing are absent.
func (s *Store) ProviderSelections(ctx context.Context) (map[string]ProviderSelection, error) {
	return providerSelections(ctx, s.db)
}

// ProviderSelections is Store.ProviderSelections inside the transaction.
func (tx *Tx) ProviderSelections(ctx context.Context) (map[string]ProviderSelection, error) {
	return providerSelections(ctx, tx.tx)
}

func providerSelections(ctx context.Context, q sqlx.QueryerContext) (map[string]ProviderSelection, error) {
	var rows []struct {
		ProviderID string `db:"provider_id"`
		What       string `db:"what"`
		Name       string `db:"name"`
	}
	err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT provider_id, what, name FROM (
			SELECT f.provider_id, 'group' AS what, g.name FROM provider_group_filters f JOIN groups g ON g.id = f.group_id
			UNION ALL
			SELECT pm.provider_id, 'mapping', m.name FROM provider_mappings pm JOIN property_mappings m ON m.id = pm.mapping_id
		) s ORDER BY provider_id, what, name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("store: provider selections: %w", translate(err))
	}
	out := map[string]ProviderSelection{}
	for _, r := range rows {
		sel := out[r.ProviderID]
		if r.What == "group" {
			sel.GroupFilters = append(sel.GroupFilters, r.Name)
		} else {
			sel.Mappings = append(sel.Mappings, r.Name)
		}
		out[r.ProviderID] = sel
	}
	return out, nil
}

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
