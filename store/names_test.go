package store_test

import (
	"reflect"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

// TestNamesByID reads usernames and group names of the asked ids in one call; deleted and
// unknown ids are absent, and an id asked as the other kind is not found.
func TestNamesByID(t *testing.T) {
	f := newScopeFixture(t)
	ctx := ctxT(t)
	mustTx(t, f.s, func(tx *store.Tx) error { return tx.DeleteUser(ctx, f.users["gina"]) })
	const unknown = "00000000-0000-4000-8000-000000000000"
	names, err := f.s.NamesByID(ctx, []string{f.users["bob"], f.users["gina"], unknown, f.groups["eng"]},
		[]string{f.groups["eng"], f.groups["sales"], f.users["alice"]})
	if err != nil {
		t.Fatal(err)
	}
	want := store.ObjectNames{
		Users:  map[string]string{f.users["bob"]: "bob"},
		Groups: map[string]string{f.groups["eng"]: "eng", f.groups["sales"]: "sales"},
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("NamesByID = %+v, want %+v", names, want)
	}
	if got := names.Of(object.Group, f.groups["eng"]); got != "eng" {
		t.Errorf("Of(group eng) = %q", got)
	}
	if got := names.Of(object.User, f.users["gina"]); got != "" {
		t.Errorf("Of(deleted user) = %q, want none", got)
	}
	empty, err := f.s.NamesByID(ctx, nil, nil)
	if err != nil || len(empty.Users)+len(empty.Groups) != 0 {
		t.Errorf("NamesByID of nothing = %+v, %v", empty, err)
	}
}
