package workflows_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

// TestFullSyncStartsBatchesOnlyForObjectsWithWork runs a full sync against a listing that
// leaves out unchanged and skipped objects (as ListInScope does): the batches hold only
// the ids it returns, the cursor follows Next (also across pages that return no id), and
// the objects left out are counted in the progress.
func TestFullSyncStartsBatchesOnlyForObjectsWithWork(t *testing.T) {
	env := newEnv(t)
	pages := map[string]map[string]activities.IDList{
		object.User: {
			"":    {IDs: []string{"u02", "u05"}, Next: "u06", Unchanged: 3, Skipped: 1},
			"u06": {IDs: []string{}, Next: "u09", Unchanged: 3},
			"u09": {IDs: []string{}, Unchanged: 1},
		},
		object.Group: {
			"": {IDs: []string{}, Unchanged: 2},
		},
	}
	var lists []activities.ListInput
	env.OnActivity(acts.LoadProvider, mock.Anything, mock.Anything).Return(
		activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 2}, nil)
	env.OnActivity(acts.Discover, mock.Anything, mock.Anything).Return(activities.DiscoverResult{}, nil)
	env.OnActivity(acts.ListInScope, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ListInput) (activities.IDList, error) {
			lists = append(lists, in)
			return pages[in.Kind][in.After], nil
		})
	env.OnActivity(acts.ListStale, mock.Anything, mock.Anything).Return(activities.IDList{IDs: []string{}}, nil)
	var batches []workflows.SyncBatchInput
	env.OnWorkflow(workflows.SyncBatchWorkflow, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.SyncBatchInput) (workflows.SyncBatchResult, error) {
			batches = append(batches, in)
			return workflows.SyncBatchResult{Counts: workflows.Counts{Updated: len(in.IDs)}}, nil
		})

	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, Parallelism: 2})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var got workflows.FullSyncProgress
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	equal(t, "batches", batches, []workflows.SyncBatchInput{
		{Provider: provider, Kind: object.User, IDs: []string{"u02", "u05"}},
	})
	equal(t, "listings", lists, []activities.ListInput{
		{Provider: provider, Kind: object.User, After: "", Limit: 8, EmptyPages: true},
		{Provider: provider, Kind: object.User, After: "u06", Limit: 8, EmptyPages: true},
		{Provider: provider, Kind: object.User, After: "u09", Limit: 8, EmptyPages: true},
		{Provider: provider, Kind: object.Group, After: "", Limit: 8, EmptyPages: true},
	})
	equal(t, "progress", got, workflows.FullSyncProgress{
		Phase: workflows.PhaseDone, BatchesDone: 1, BatchesTotal: 1,
		Users:  workflows.Counts{Updated: 2, Unchanged: 7, Skipped: 1},
		Groups: workflows.Counts{Unchanged: 2},
	})
}
