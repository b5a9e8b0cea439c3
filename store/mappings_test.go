package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

func TestProviderMappingsDefaultAndOrder(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("maps"))

	got, err := s.ProviderMappings(ctx, p.ID, object.User)
	if err != nil || len(got) != 1 || got[0].Name != store.DefaultUserMappingName || got[0].Expression != mapping.DefaultUserMapping {
		t.Fatalf("without a selection: %+v, %v; want the built-in user mapping", got, err)
	}
	var ids []string
	mustTx(t, s, func(tx *store.Tx) error {
		for _, m := range []store.PropertyMapping{
			{Name: "zz-title", Kind: "user", Expression: `return {"title": user.attributes.get("title")}`},
			{Name: "aa-locale", Kind: "user", Expression: `return {"locale": "en"}`},
			{Name: "group-extra", Kind: "group", Expression: `return None`},
		} {
			saved, err := tx.SaveMapping(ctx, m)
			if err != nil {
				return err
			}
			ids = append(ids, saved.ID)
		}
		def, err := s.Mapping(ctx, store.DefaultUserMappingName)
		if err != nil {
			return err
		}
		return tx.SetProviderMappings(ctx, p.ID, append(ids[:2:2], def.ID))
	})
	got, err = s.ProviderMappings(ctx, p.ID, object.User)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.Name)
	}
	if !equal(names, []string{store.DefaultUserMappingName, "aa-locale", "zz-title"}) {
		t.Fatalf("user mappings = %v, want name order", names)
	}
	groups, err := s.ProviderMappings(ctx, p.ID, object.Group)
	if err != nil || len(groups) != 1 || groups[0].Name != store.DefaultGroupMappingName {
		t.Fatalf("group mappings = %+v, %v; want the built-in group mapping", groups, err)
	}
}

// TestSaveMappingApply: a mapping's apply is stored (always by default), changing it alone
// is a change (updated_at moves, so workers compile it again), and an unknown value is
// refused with nothing written.
func TestSaveMappingApply(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("apply"))
	var first store.PropertyMapping
	mustTx(t, s, func(tx *store.Tx) (err error) {
		if first, err = tx.SaveMapping(ctx, store.PropertyMapping{Name: "initial", Kind: "user", Expression: `return {"password": "x"}`}); err != nil {
			return err
		}
		return tx.SetProviderMappings(ctx, p.ID, []string{first.ID})
	})
	if first.Apply != "always" {
		t.Fatalf("apply of a mapping saved without one = %q, want always", first.Apply)
	}
	var second store.PropertyMapping
	mustTx(t, s, func(tx *store.Tx) (err error) {
		second, err = tx.SaveMapping(ctx, store.PropertyMapping{Name: "initial", Kind: "user", Expression: `return {"password": "x"}`, Apply: "on_create"})
		return err
	})
	if second.Apply != "on_create" || !second.UpdatedAt.After(first.UpdatedAt) {
		t.Fatalf("after setting apply: %+v (was %+v), want on_create and a later updated_at", second, first)
	}
	for _, load := range []func() (store.PropertyMapping, error){
		func() (store.PropertyMapping, error) { return s.Mapping(ctx, "initial") },
		func() (store.PropertyMapping, error) {
			ms, err := s.ProviderMappings(ctx, p.ID, object.User)
			if err != nil || len(ms) != 1 {
				return store.PropertyMapping{}, fmt.Errorf("provider mappings %+v, %v", ms, err)
			}
			return ms[0], nil
		},
		func() (store.PropertyMapping, error) {
			ms, err := s.Mappings(ctx)
			for _, m := range ms {
				if m.Name == "initial" {
					return m, err
				}
			}
			return store.PropertyMapping{}, fmt.Errorf("not listed: %v", err)
		},
	} {
		if m, err := load(); err != nil || m.Apply != "on_create" || m.UpdatedAt != second.UpdatedAt {
			t.Errorf("loaded %+v, %v; want apply on_create", m, err)
		}
	}
	err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.SaveMapping(ctx, store.PropertyMapping{Name: "initial", Kind: "user", Expression: `return None`, Apply: "once"})
		return err
	})
	var invalid *store.InvalidError
	if !errors.As(err, &invalid) || invalid.Constraint != "property_mappings_apply_check" {
		t.Fatalf("SaveMapping with apply once = %v; want the check constraint's *store.InvalidError", err)
	}
	if m, _ := s.Mapping(ctx, "initial"); m.Expression != `return {"password": "x"}` || m.Apply != "on_create" {
		t.Errorf("a refused save changed the mapping: %+v", m)
	}
	def, err := s.Mapping(ctx, store.DefaultUserMappingName)
	if err != nil || def.Apply != "always" {
		t.Errorf("built-in mapping %+v, %v; want apply always", def, err)
	}
}
