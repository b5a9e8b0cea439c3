package integration

import (
	"testing"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

func TestFlattenedGroupsCarryTheMembersOfTheirDescendants(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	d := buildDirectory(e, 120)
	app, _ := e.store.ApplicationByName(e.ctx, d.application)
	e.provider("flat", func(p *store.Provider) { p.ApplicationID = &app.ID; p.FlattenGroups = true })
	if _, _, err := e.fullSync("flat", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkRemoteState(t, e.target, d, true)
	if got := len(remoteGroups(e.target)["g00"].Members); got != 80 {
		t.Errorf("g00 (the root) has %d members, want all 80 users of its tree", got)
	}
}

func TestChangingGroupFiltersRemovesNothingSyncedBefore(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	d := buildDirectory(e, 60)
	app, _ := e.store.ApplicationByName(e.ctx, d.application)
	p := e.provider("filtered", func(p *store.Provider) { p.ApplicationID = &app.ID })
	if _, _, err := e.fullSync("filtered", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkRemoteState(t, e.target, d, false)

	// Select only g01: g01 stays in scope, every other group was synced before and stays
	// as it is; users are not limited by group filters.
	e.tx(func(tx *store.Tx) error { return tx.SetGroupFilters(e.ctx, p.ID, []string{d.groups[1].ID}) })
	e.target.ResetLog()
	progress, _, err := e.fullSync("filtered", workflows.FullSyncInput{})
	if err != nil {
		t.Fatal(err)
	}
	checkRemoteState(t, e.target, d, false)
	if m := e.target.Mutations(); m != 0 {
		t.Errorf("changing the group filters caused %d writes (%v), want none", m, e.target.Counts())
	}
	if progress.Groups.Unchanged != 1 || progress.Groups.Deprovisioned != 0 || progress.Users.Unchanged != 20 {
		t.Errorf("progress = %+v", progress)
	}
}
