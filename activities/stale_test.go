package activities_test

import (
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// TestARetriedWriteDoesNotPutBackWhatItMappedBefore: a full-sync batch maps a user and
// writes it; the user is renamed and its per-object sync writes the new name; then the
// batch's write runs again with its old input, as Temporal retries an activity whose
// result a server outage lost. The retry maps the user again (another writer changed its
// link since the write was scheduled) and leaves the new name at the target.
func TestARetriedWriteDoesNotPutBackWhatItMappedBefore(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, nil)
	var u store.User
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) {
		u, err = tx.CreateUser(w.ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mapped := func() activities.MappedObject {
		t.Helper()
		res, err := w.acts.MapObjects(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: object.User, IDs: []string{u.ID}})
		if err != nil || len(res.Changed) != 1 {
			t.Fatalf("map: %+v, %v", res, err)
		}
		return res.Changed[0]
	}
	var suite testsuite.WorkflowTestSuite
	write := func(o activities.MappedObject) activities.WriteResult {
		t.Helper()
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(w.acts.WriteObjects)
		v, err := env.ExecuteActivity(w.acts.WriteObjects, activities.WriteInput{Provider: w.provider.Name, Kind: object.User, Objects: []activities.MappedObject{o}})
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		var res activities.WriteResult
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	displayName := func() any {
		remote, ok := w.target.UserByName("ada")
		if !ok {
			t.Fatal("ada is not at the target")
		}
		return remote["displayName"]
	}

	batch := mapped()
	if res := write(batch); res.Created != 1 {
		t.Fatalf("first write: %+v", res)
	}
	u.Name = "Ada King"
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) {
		u, err = tx.UpdateUser(w.ctx, u)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if res := write(mapped()); res.Updated != 1 || displayName() != "Ada King" {
		t.Fatalf("the per-object sync: %+v, target has %v", res, displayName())
	}
	res := write(batch) // the batch's retry, with what it mapped before the rename
	if got := displayName(); got != "Ada King" {
		t.Errorf("after the retried batch write the target has displayName %v, want Ada King (result %+v)", got, res)
	}
	if res.Updated != 0 || res.Unchanged != 1 {
		t.Errorf("retried batch write: %+v, want 1 unchanged", res)
	}
}
