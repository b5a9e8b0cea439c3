package workflows_test

import (
	"slices"
	"testing"
	"time"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

// TestFullSyncReadsTheTargetBack: a full sync asked to read the target back reads users
// page by page, reads groups one by one (the target cannot list them), compares every
// batch with the read-back, and at the end counts the orphans (their deletion adding to
// the threshold), waits for approval, deletes them and records the figures.
func TestFullSyncReadsTheTargetBack(t *testing.T) {
	env := newEnv(t)
	f := &fake{
		Provider: activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 10, DeprovisionThreshold: 3,
			Orphans: "delete", DeprovisionAction: "delete"},
		InScope:    map[string][]string{object.User: ids("u", 3), object.Group: ids("g", 1)},
		Stale:      map[string][]string{object.User: {"u-x1"}},
		StaleCount: activities.StaleCount{Users: 1},
		ReadPages: map[string][]activities.ReadPageResult{
			object.User: {
				{Read: 100, Next: &activities.PageToken{StartIndex: 101, First: "r1"}},
				{Read: 7},
			},
			object.Group: {{NotListable: true, MembersHidden: true}},
		},
		ReadLinked: map[string][]activities.ReadLinkedResult{
			object.Group: {{Read: 100, Next: "g100"}, {Read: 1, Missing: 1}},
		},
		Orphans: map[string]activities.OrphanCounts{object.User: {Ours: 1, Known: 1, Strangers: 2}},
	}
	f.install(env)
	mockBatches(env)
	var c children
	c.watch(env)
	var waiting workflows.FullSyncProgress
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(workflows.QueryProgress)
		v.Get(&waiting)
		env.SignalWorkflow(workflows.SignalApproveDeletions, nil)
	}, time.Hour)
	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, ReadTarget: true})
	var got workflows.FullSyncProgress
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	rb := "wf"
	read := func(kind string, page activities.PageToken) call {
		return call{"ReadTargetPage", activities.ReadPageInput{Provider: provider, Kind: kind, ReadBack: rb, Page: page}}
	}
	linked := func(after string) call {
		return call{"ReadLinked", activities.ReadLinkedInput{Provider: provider, Kind: object.Group, ReadBack: rb, After: after, Limit: 100}}
	}
	list := func(kind, after string) call {
		return call{"ListInScope", activities.ListInput{Provider: provider, Kind: kind, After: after, Limit: 80, ReadBack: rb, EmptyPages: true}}
	}
	orphans := func(kind string, del bool) call {
		return call{"HandleOrphans", activities.OrphansInput{Provider: provider, Kind: kind, ReadBack: rb, Limit: 100, Delete: del}}
	}
	want := []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		{"Discover", activities.ProviderInput{Provider: provider}},
		{"StartReadBack", activities.ReadPageInput{Provider: provider, ReadBack: rb}},
		read(object.User, activities.PageToken{}),
		read(object.User, activities.PageToken{StartIndex: 101, First: "r1"}),
		read(object.Group, activities.PageToken{}),
		linked(""), linked("g100"),
		list(object.User, ""), list(object.User, "u03"),
		list(object.Group, ""), list(object.Group, "g01"),
		{"CountStale", activities.ProviderInput{Provider: provider}},
		orphans(object.User, false), // groups not listed: no orphan of theirs can be seen
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.User, Limit: 10}},
		deprovision(object.User, "u-x1"),
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.User, After: "u-x1", Limit: 10}},
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.Group, Limit: 10}},
		orphans(object.User, true),
	}
	calls := f.Calls()
	equal(t, "activity calls", calls[:len(calls)-1], want)
	if waiting.Phase != workflows.PhaseAwaitApproval || waiting.PendingDeletions != 1+3 {
		t.Errorf("while waiting: %+v, want 1 stale and 3 orphans pending approval", waiting)
	}
	for _, ch := range c.Started() {
		if ch.Input.ReadBack != rb {
			t.Errorf("batch %s compares with read-back %q, want %q", ch.ID, ch.Input.ReadBack, rb)
		}
	}
	if len(f.Finished) != 1 {
		t.Fatalf("FinishReadBack called %d times", len(f.Finished))
	}
	fig := f.Finished[0].Figures
	if fig.ID != rb || fig.UsersRead != 107 || fig.GroupsRead != 101 || !fig.MembersNotObservable ||
		!slices.Equal(fig.NotListable, []string{object.Group}) ||
		fig.UserOrphans != (activities.OrphanCounts{Ours: 1, Known: 1, Strangers: 2, Deleted: 3}) ||
		fig.RepairedUsers != got.Users.Repaired || fig.RepairedGroups != got.Groups.Repaired {
		t.Errorf("figures %+v", fig)
	}
	if got.ReadBack == nil || got.ReadBack.Reading != "" || got.Users.Deprovisioned != 1+3 {
		t.Errorf("result %+v (read-back %+v)", got, got.ReadBack)
	}
}
