package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// The configuration as a whole: configuration as code (`starter apply`) reads every
// provider, mapping, application, binding and selection inside the one transaction that
// rewrites them, under a lock that serialises rewrites.

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
