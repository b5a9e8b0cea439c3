package activities_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/pacing"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// TestListInScopeReturnsEmptyPagesOnlyToCallersThatGoOn: 29 users written and unchanged,
// then one changed, last in id order. A listing of 2 looks at 20 objects at most and
// returns an empty page with a cursor, but only to a caller that goes on after one
// (ListInput.EmptyPages); for a workflow recorded before, which ends its phase at the first
// empty page, it scans on to the changed user.
func TestListInScopeReturnsEmptyPagesOnlyToCallersThatGoOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := store.Open(ctx, testenv.NewDatabase(t, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	target := scimtest.NewServer(scimtest.Options{Token: targetToken})
	t.Cleanup(target.Close)
	p := store.ProviderDefaults()
	p.Name, p.BaseURL, p.Token = "listing", target.URL, targetToken
	if err := s.InTx(ctx, func(tx *store.Tx) (err error) { p, err = tx.UpsertProvider(ctx, p); return err }); err != nil {
		t.Fatal(err)
	}
	pacers := pacing.NewRegistry(s, nil)
	t.Cleanup(pacers.Close)
	acts := &activities.Activities{Store: s, Mapper: &mapping.Engine{Secret: "activities-test-secret"},
		RequestTimeout: 5 * time.Second, Pacing: pacers}

	var users []store.User
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		for i := range 30 {
			u, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("u%02d", i), Name: "U", Email: fmt.Sprintf("u%02d@example.test", i), IsActive: true})
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(users, func(a, b store.User) int { return strings.Compare(a.ID, b.ID) })
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	mapped, err := acts.MapObjects(ctx, activities.ObjectsInput{Provider: p.Name, Kind: object.User, IDs: ids})
	if err != nil || len(mapped.Changed) != 30 {
		t.Fatalf("map: %d changed, %v", len(mapped.Changed), err)
	}
	if _, err := acts.WriteObjects(ctx, activities.WriteInput{Provider: p.Name, Kind: object.User, Objects: mapped.Changed}); err != nil {
		t.Fatal(err)
	}
	last := users[len(users)-1]
	last.Name = "Changed"
	if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.UpdateUser(ctx, last); return err }); err != nil {
		t.Fatal(err)
	}

	page, err := acts.ListInScope(ctx, activities.ListInput{Provider: p.Name, Kind: object.User, Limit: 2, EmptyPages: true})
	if err != nil || len(page.IDs) != 0 || page.Next != ids[19] || page.Unchanged != 20 {
		t.Errorf("with EmptyPages: %+v (%v), want an empty page after 20 unchanged, next %s", page, err, ids[19])
	}
	page, err = acts.ListInScope(ctx, activities.ListInput{Provider: p.Name, Kind: object.User, Limit: 2})
	if err != nil || !slices.Equal(page.IDs, []string{last.ID}) || page.Unchanged != 29 {
		t.Errorf("without EmptyPages: %+v (%v), want the changed user after 29 unchanged", page, err)
	}
}
