package scim_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

// Each context's observer sees its own requests, and only those; nested observers see them
// both, innermost first.
func TestRequestObserverSeesTheRequestsOfItsContext(t *testing.T) {
	_, c := newPair(t, scimtest.Options{}, scim.Options{})
	type seen struct{ who, method, path string }
	var got []seen
	watch := func(ctx context.Context, who string) context.Context {
		return scim.WithRequestObserver(ctx, func(i scim.RequestInfo) { got = append(got, seen{who, i.Method, i.Path}) })
	}
	ctx := context.Background()
	outer := watch(ctx, "outer")
	created, err := c.Create(watch(outer, "inner"), scim.Users, map[string]any{"userName": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(outer, scim.Users, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, scim.Users, scim.Eq("userName", "a")); err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{"inner", "POST", "/Users"}, {"outer", "POST", "/Users"},
		{"outer", "DELETE", "/Users/" + created.ID},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}
