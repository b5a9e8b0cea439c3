package integration

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestSecondFullSyncBatchesOnlyWhatChanged checks the full sync's listing, which leaves
// out objects with nothing to write: after a user is renamed, a group renamed and a member
// added to another group, the second full sync runs one batch of users and one of groups,
// holding exactly those, sends exactly their three writes, and leaves the exact state.
func TestSecondFullSyncBatchesOnlyWhatChanged(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	d := buildDirectory(e, 140) // 100 in scope
	app, err := e.store.ApplicationByName(e.ctx, d.application)
	if err != nil {
		t.Fatal(err)
	}
	e.provider("portal", func(p *store.Provider) { p.ApplicationID = &app.ID })
	if _, _, err := e.fullSync("portal", workflows.FullSyncInput{}); err != nil {
		t.Fatalf("first full sync: %v", err)
	}
	checkRemoteState(t, e.target, d, false)

	e.tx(func(tx *store.Tx) error {
		u := d.users[1]
		u.Name = "Renamed One"
		saved, err := tx.UpdateUser(e.ctx, u)
		d.users[1] = saved
		if err != nil {
			return err
		}
		g := d.groups[5]
		g.Name = "g05-renamed"
		if d.groups[5], err = tx.UpdateGroup(e.ctx, g); err != nil {
			return err
		}
		d.members["g05-renamed"] = d.members["g05"]
		delete(d.members, "g05")
		// user0002 (in scope) joins g19, a group outside the application's tree.
		d.members["g19"] = append(d.members["g19"], d.users[2].Username)
		return tx.AddMember(e.ctx, d.groups[19].ID, d.users[2].ID)
	})

	e.target.ResetLog()
	progress, run, err := e.fullSync("portal", workflows.FullSyncInput{})
	if err != nil {
		t.Fatalf("second full sync: %v", err)
	}
	checkRemoteState(t, e.target, d, false)
	if got, want := strings.Join(childWorkflows(t, e, run.GetID(), run.GetRunID()), ","), "group-batch-2,user-batch-1"; got != want {
		t.Errorf("child workflows = %s, want %s", got, want)
	}
	counts := e.target.Counts()
	if counts["PATCH /Users/{id}"] != 1 || counts["PATCH /Groups/{id}"] != 2 || e.target.Mutations() != 3 {
		t.Errorf("second full sync sent %v, want one user PATCH and two group PATCHes (rename, member)", counts)
	}
	if u, g := progress.Users, progress.Groups; u.Updated != 1 || u.Unchanged != 99 || g.Updated != 1 || g.Unchanged != 19 ||
		u.Failed+g.Failed != 0 || progress.BatchesTotal != 2 {
		t.Errorf("progress = %+v", progress)
	}
}
