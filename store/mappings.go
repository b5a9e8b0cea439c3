package store

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
)

// Names of the built-in mappings, kept in property_mappings by Migrate with the current
// default source. A provider that selects no mapping of a kind uses the built-in one. The
// names sort first, so mappings an operator adds run after them and override them.
const (
	DefaultUserMappingName  = mapping.DefaultUserMappingName
	DefaultGroupMappingName = mapping.DefaultGroupMappingName
)

// PropertyMapping is a Starlark property mapping (see package mapping).
type PropertyMapping struct {
	ID         string `db:"id"`
	Name       string `db:"name"`
	Kind       string `db:"kind"` // "user" or "group"
	Expression string `db:"expression"`
	// Apply is when the mapping's attributes are written: "always" (also when empty) or
	// "on_create" (see mapping.Apply).
	Apply     string    `db:"apply"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// mappingColumns are the columns of a PropertyMapping, for SELECT and RETURNING.
const mappingColumns = `id, name, kind, expression, apply, created_at, updated_at`

// SaveMapping creates or replaces the mapping m.Name, as given: the caller compiles the
// expression first (starter apply reports a mapping that does not compile at its file
// position), so that the store needs nothing of the mapping language. An unknown Apply
// ("" means always) is refused by the table's check constraint with an *InvalidError, and
// nothing is written.
func (tx *Tx) SaveMapping(ctx context.Context, m PropertyMapping) (PropertyMapping, error) {
	var out PropertyMapping
	err := tx.tx.QueryRowxContext(ctx, `
		INSERT INTO property_mappings (name, kind, expression, apply) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, expression = EXCLUDED.expression, apply = EXCLUDED.apply,
			updated_at = CASE WHEN (property_mappings.kind, property_mappings.expression, property_mappings.apply)
				IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.expression, EXCLUDED.apply) THEN now() ELSE property_mappings.updated_at END
		RETURNING `+mappingColumns, m.Name, m.Kind, m.Expression, cmp.Or(m.Apply, string(mapping.ApplyAlways))).StructScan(&out)
	if err != nil {
		return PropertyMapping{}, fmt.Errorf("store: save mapping %s: %w", m.Name, translate(err))
	}
	return out, nil
}

// DeleteMapping removes a mapping and its selection by providers.
func (tx *Tx) DeleteMapping(ctx context.Context, name string) error {
	return execOne(ctx, tx.tx, "delete mapping "+name, `DELETE FROM property_mappings WHERE name = $1`, name)
}

// SetProviderMappings replaces the mappings a provider selects (by mapping id).
func (tx *Tx) SetProviderMappings(ctx context.Context, providerID string, mappingIDs []string) error {
	if _, err := tx.tx.ExecContext(ctx, `
		DELETE FROM provider_mappings WHERE provider_id = $1 AND mapping_id <> ALL($2::uuid[])`,
		providerID, pq.Array(mappingIDs)); err != nil {
		return fmt.Errorf("store: set provider mappings: %w", translate(err))
	}
	if _, err := tx.tx.ExecContext(ctx, `
		INSERT INTO provider_mappings (provider_id, mapping_id) SELECT $1, unnest($2::uuid[])
		ON CONFLICT DO NOTHING`, providerID, pq.Array(mappingIDs)); err != nil {
		return fmt.Errorf("store: set provider mappings: %w", translate(err))
	}
	return nil
}

// Mapping loads a mapping by name; ErrNotFound when none.
func (s *Store) Mapping(ctx context.Context, name string) (PropertyMapping, error) {
	var m PropertyMapping
	if err := s.db.GetContext(ctx, &m, `SELECT `+mappingColumns+`
		FROM property_mappings WHERE name = $1`, name); err != nil {
		return PropertyMapping{}, fmt.Errorf("store: mapping %s: %w", name, translate(err))
	}
	return m, nil
}

// Mappings lists every mapping by name.
func (s *Store) Mappings(ctx context.Context) ([]PropertyMapping, error) {
	ms := []PropertyMapping{}
	if err := s.db.SelectContext(ctx, &ms, `SELECT `+mappingColumns+`
		FROM property_mappings ORDER BY name`); err != nil {
		return nil, fmt.Errorf("store: list mappings: %w", translate(err))
	}
	return ms, nil
}

// ProviderMappings returns the mappings of one kind that the provider selects, in order of
// their name (the order they run in). When it selects none of that kind, it returns the
// built-in default mapping of the kind.
func (s *Store) ProviderMappings(ctx context.Context, providerID, kind string) ([]PropertyMapping, error) {
	ms := []PropertyMapping{}
	err := s.db.SelectContext(ctx, &ms, `
		SELECT m.id, m.name, m.kind, m.expression, m.apply, m.created_at, m.updated_at
		FROM provider_mappings pm JOIN property_mappings m ON m.id = pm.mapping_id
		WHERE pm.provider_id = $1 AND m.kind = $2 ORDER BY m.name COLLATE "C"`, providerID, kind)
	if err != nil {
		return nil, fmt.Errorf("store: provider mappings: %w", translate(err))
	}
	if len(ms) > 0 {
		return ms, nil
	}
	name := DefaultUserMappingName
	if kind == object.Group {
		name = DefaultGroupMappingName
	}
	m, err := s.Mapping(ctx, name)
	if err != nil {
		return nil, err
	}
	return []PropertyMapping{m}, nil
}

// saveDefaultMappings keeps the built-in mappings at the current default source.
func (s *Store) saveDefaultMappings(ctx context.Context) error {
	return s.InTx(ctx, func(tx *Tx) error {
		for _, m := range []PropertyMapping{
			{Name: DefaultUserMappingName, Kind: object.User, Expression: mapping.DefaultUserMapping, Apply: string(mapping.ApplyAlways)},
			{Name: DefaultGroupMappingName, Kind: object.Group, Expression: mapping.DefaultGroupMapping, Apply: string(mapping.ApplyAlways)},
		} {
			if _, err := tx.SaveMapping(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
}
