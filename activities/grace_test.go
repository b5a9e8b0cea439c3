package activities_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// TestDeleteDueDeletesOnlyUsersStillDue: under deactivate_then_delete, Deprovision
// deactivates two users that left scope and keeps their deadlines; once passed, both are
// listed as due. One comes back before DeleteDue runs: DeleteDue deletes the other only
// (in dry run it records that DELETE and sends nothing), and the one back is reactivated
// by its next write under the same remote id, its deadline cleared.
func TestDeleteDueDeletesOnlyUsersStillDue(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, func(_ *scimtest.Server, p *store.Provider) {
		p.DeprovisionAction, p.DeprovisionDeleteAfter = store.DeprovisionDeactivateThenDelete, time.Hour
	})
	now := time.Now().UTC().Truncate(time.Microsecond)
	w.store.Now = func() time.Time { return now }
	kind := object.User
	var ada, bob store.User
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) {
		if ada, err = tx.CreateUser(w.ctx, store.User{Username: "ada", Name: "Ada Lovelace", IsActive: true}); err != nil {
			return err
		}
		bob, err = tx.CreateUser(w.ctx, store.User{Username: "bob", Name: "Bob Babbage", IsActive: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ids := []string{ada.ID, bob.ID}
	slices.Sort(ids)
	sync := func() activities.WriteResult {
		t.Helper()
		mapped, err := w.acts.MapObjects(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: kind, IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		var res activities.WriteResult
		if len(mapped.Gone) > 0 {
			if res, err = w.acts.Deprovision(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: kind, IDs: mapped.Gone}); err != nil {
				t.Fatal(err)
			}
		}
		if len(mapped.Changed) > 0 {
			if res, err = w.write(kind, mapped.Changed...); err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	setType := func(u *store.User, typ string) {
		t.Helper()
		u.Type = typ
		if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) { *u, err = tx.UpdateUser(w.ctx, *u); return err }); err != nil {
			t.Fatal(err)
		}
	}
	remote := func(name string) map[string]any {
		t.Helper()
		u, ok := w.target.UserByName(name)
		if !ok {
			return nil
		}
		return u
	}
	due := func(acts *activities.Activities) []string {
		t.Helper()
		page, err := acts.ListDueDeletions(w.ctx, activities.ListInput{Provider: w.provider.Name, Kind: kind, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return page.IDs
	}

	if res := sync(); res.Created != 2 {
		t.Fatalf("first sync: %+v", res)
	}
	adaRemote, bobRemote := remote("ada")["id"], remote("bob")["id"]
	// Both leave scope (service accounts are excluded): deactivated, kept, deadline set.
	setType(&ada, store.UserServiceAccount)
	setType(&bob, store.UserServiceAccount)
	if res := sync(); res.Deprovisioned != 2 {
		t.Fatalf("deprovision: %+v", res)
	}
	for _, u := range []store.User{ada, bob} {
		l, ok := w.link(kind, u.ID)
		if !ok || l.DeprovisionedAt == nil || l.DeleteAfter == nil || !l.DeleteAfter.Equal(now.Add(time.Hour)) {
			t.Fatalf("link of %s after deactivation: %+v (linked %v), want a deadline at %s", u.Username, l, ok, now.Add(time.Hour))
		}
		if r := remote(u.Username); r == nil || r["active"] != false {
			t.Fatalf("%s at the target after deactivation: %v, want active false", u.Username, r)
		}
	}
	if got := due(w.acts); len(got) != 0 {
		t.Fatalf("due before the deadline: %v", got)
	}
	now = now.Add(time.Hour + time.Second)
	if got := due(w.acts); !slices.Equal(got, ids) {
		t.Fatalf("due after the deadline: %v, want %v", got, ids)
	}

	// Bob comes back before the cleanup gets to him; a dry run shows ada's deletion only.
	setType(&bob, store.UserInternal)
	before := len(w.target.Requests())
	dry := &activities.Activities{Store: w.store, Mapper: w.acts.Mapper, RequestTimeout: 5 * time.Second, Pacing: w.acts.Pacing, DryRun: true}
	res, err := dry.DeleteDue(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: kind, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	wantPlan := []activities.PlannedChange{{Kind: kind, ID: ada.ID, Name: "ada", Action: activities.PlanDelete}}
	wantDry := []activities.DryRunRequest{{Method: "DELETE", Path: "/Users/" + adaRemote.(string)}}
	if !reflect.DeepEqual(res.Planned, wantPlan) || !slices.Equal(res.DryRun, wantDry) || res.Deprovisioned != 1 {
		t.Errorf("dry run: %+v, want planned %+v and dry-run %+v", res, wantPlan, wantDry)
	}
	if got := writes(w.routes()[before:]); len(got) != 0 {
		t.Errorf("the dry run sent writes: %v", got)
	}
	if _, ok := w.link(kind, ada.ID); !ok || remote("ada") == nil {
		t.Fatal("the dry run deleted ada")
	}

	res, err = w.acts.DeleteDue(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: kind, IDs: ids})
	if err != nil || res.Deprovisioned != 1 || len(res.Failed) != 0 {
		t.Fatalf("DeleteDue: %+v, %v; want ada deleted", res, err)
	}
	if got := writes(w.routes()[before:]); !slices.Equal(got, []string{"DELETE /Users/{id}"}) {
		t.Errorf("requests of DeleteDue: %v, want one DELETE", got)
	}
	if _, ok := w.link(kind, ada.ID); ok || remote("ada") != nil {
		t.Errorf("ada after DeleteDue: linked %v, at the target %v; want neither", ok, remote("ada"))
	}

	// Bob's next sync reactivates him: same remote object, updated, deadline gone.
	before = len(w.target.Requests())
	if res := sync(); res.Updated != 1 || res.Created != 0 {
		t.Errorf("bob's sync: %+v, want 1 updated", res)
	}
	if r := remote("bob"); r == nil || r["id"] != bobRemote || r["active"] != true {
		t.Errorf("bob at the target: %v, want active under id %v", r, bobRemote)
	}
	if got := writes(w.routes()[before:]); !slices.Equal(got, []string{"PATCH /Users/{id}"}) {
		t.Errorf("bob's sync sent %v, want one PATCH (not created again)", got)
	}
	if l, ok := w.link(kind, bob.ID); !ok || l.Remote() != bobRemote || l.DeleteAfter != nil || l.DeprovisionedAt != nil {
		t.Errorf("bob's link: %+v, want remote %v, no deadline, not deprovisioned", l, bobRemote)
	}
	if got := due(w.acts); len(got) != 0 {
		t.Errorf("due at the end: %v", got)
	}
}

// writes are the routes that are not GETs.
func writes(routes []string) []string {
	var out []string
	for _, r := range routes {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}
