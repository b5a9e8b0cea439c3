package store_test

import (
	"errors"
	"testing"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/store"
)

func TestSaveMappingRefusesWhatDoesNotCompile(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.SaveMapping(ctx, store.PropertyMapping{Name: "broken", Kind: "user", Expression: "return {\"title\": user.username\n"})
		return err
	})
	var ce *mapping.CompileError
	if !errors.As(err, &ce) || ce.Mapping != "broken" || ce.Line == 0 {
		t.Fatalf("SaveMapping of a syntax error = %v, want a *mapping.CompileError naming the mapping and line", err)
	}
	if _, err := s.Mapping(ctx, "broken"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a mapping that does not compile was stored: %v", err)
	}
}

func TestProviderMappingsDefaultAndOrder(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("maps"))

	got, err := s.ProviderMappings(ctx, p.ID, store.KindUser)
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
	got, err = s.ProviderMappings(ctx, p.ID, store.KindUser)
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
	groups, err := s.ProviderMappings(ctx, p.ID, store.KindGroup)
	if err != nil || len(groups) != 1 || groups[0].Name != store.DefaultGroupMappingName {
		t.Fatalf("group mappings = %+v, %v; want the built-in group mapping", groups, err)
	}
}
