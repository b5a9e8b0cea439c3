package workflows_test

import (
	"slices"
	"testing"
	"time"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

// graceFake is a provider that deletes deactivated users after a grace period: 2 users
// and 1 group stale (to deprovision now), and 3 deactivated users whose grace period has
// passed (deleting u-d02 fails), page size 2, threshold 5.
func graceFake(action string) *fake {
	return &fake{
		Provider: activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 2, DeprovisionThreshold: 5,
			DeprovisionAction: action},
		Stale:      map[string][]string{object.User: ids("u-x", 2), object.Group: ids("g-x", 1)},
		StaleCount: activities.StaleCount{Users: 2, Groups: 1, Due: 3},
		Due:        ids("u-d", 3),
		DeleteDue: func(in activities.ObjectsInput) (activities.WriteResult, error) {
			var res activities.WriteResult
			for _, id := range in.IDs {
				if id == "u-d02" {
					res.Failed = append(res.Failed, activities.ObjectFailure{ID: id, Error: "500 from target"})
				} else {
					res.Deprovisioned++
				}
			}
			return res, nil
		},
	}
}

var (
	graceHead = []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		{"Discover", activities.ProviderInput{Provider: provider}},
		list(object.User, "", 2*4*2), list(object.Group, "", 2*4*2),
		{"CountStale", activities.ProviderInput{Provider: provider}},
	}
	graceStale = []call{
		stale(object.User, ""), deprovision(object.User, "u-x01", "u-x02"), stale(object.User, "u-x02"),
		stale(object.Group, ""), deprovision(object.Group, "g-x01"), stale(object.Group, "g-x01"),
	}
	graceDeletions = []call{
		dueList(""), deleteDue("u-d01", "u-d02"), dueList("u-d02"), deleteDue("u-d03"), dueList("u-d03"),
	}
)

func dueList(after string) call {
	return call{"ListDueDeletions", activities.ListInput{Provider: provider, Kind: object.User, After: after, Limit: 2}}
}

func deleteDue(ids ...string) call {
	return call{"DeleteDue", activities.ObjectsInput{Provider: provider, Kind: object.User, IDs: ids, ThresholdChecked: true}}
}

// TestFullSyncDeletesUsersWhoseGraceHasPassed: under deactivate_then_delete the cleanup
// deletes the due users after the stale objects, a page at a time, and counts them in the
// threshold: 3 stale and 3 due exceed 5, so it waits for an approval of 6 (one of 5 is not
// enough). Under deactivate, the due count and the listing are ignored.
func TestFullSyncDeletesUsersWhoseGraceHasPassed(t *testing.T) {
	t.Run("deactivate_then_delete", func(t *testing.T) {
		env := newEnv(t)
		f := graceFake("deactivate_then_delete")
		f.install(env)
		var waiting workflows.FullSyncProgress
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 5}) }, time.Minute)
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(workflows.QueryProgress)
			if err == nil {
				err = v.Get(&waiting)
			}
			if err != nil {
				t.Errorf("query: %v", err)
			}
			env.SignalWorkflow(workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 6})
		}, time.Hour)
		env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider})

		var got workflows.FullSyncProgress
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "progress while waiting", waiting, workflows.FullSyncProgress{Phase: workflows.PhaseAwaitApproval,
			PendingDeletions: 6, ApprovedDeletions: 5})
		equal(t, "result", got, workflows.FullSyncProgress{Phase: workflows.PhaseDone,
			Users: workflows.Counts{Deprovisioned: 2 + 2, Failed: 1}, Groups: workflows.Counts{Deprovisioned: 1},
			ApprovedDeletions: 6})
		equal(t, "activity calls", f.Calls(), slices.Concat(graceHead, graceStale, graceDeletions))
	})

	t.Run("deactivate", func(t *testing.T) {
		env := newEnv(t)
		f := graceFake("deactivate")
		f.install(env)
		env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider})

		var got workflows.FullSyncProgress
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "result", got, workflows.FullSyncProgress{Phase: workflows.PhaseDone,
			Users: workflows.Counts{Deprovisioned: 2}, Groups: workflows.Counts{Deprovisioned: 1}})
		equal(t, "activity calls", f.Calls(), slices.Concat(graceHead, graceStale))
	})
}
