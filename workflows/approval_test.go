package workflows_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

// approvalFake is the directory of the approval tests: 10 users and 3 groups in scope
// (page size 10: one batch of each; mockBatches takes 3 minutes for the users', one for the
// groups'), and 3 users and 4 groups stale: 7 to deprovision, above the threshold of 5.
func approvalFake() *fake {
	return &fake{
		Provider:   activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 10, DeprovisionThreshold: 5},
		InScope:    map[string][]string{object.User: ids("u", 10), object.Group: ids("g", 3)},
		Stale:      map[string][]string{object.User: ids("u-x", 3), object.Group: ids("g-x", 4)},
		StaleCount: activities.StaleCount{Users: 3, Groups: 4},
	}
}

// Calls of a full sync of approvalFake: the listing of one run from the start, the count,
// the deprovisioning.
var (
	approvalListing = []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		{"Discover", activities.ProviderInput{Provider: provider}},
		list(object.User, "", 80), list(object.User, "u10", 80),
		list(object.Group, "", 80), list(object.Group, "g03", 80),
	}
	approvalCount     = call{"CountStale", activities.ProviderInput{Provider: provider}}
	approvalDeletions = []call{
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.User, Limit: 10}},
		deprovision(object.User, ids("u-x", 3)...),
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.User, After: "u-x03", Limit: 10}},
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.Group, Limit: 10}},
		deprovision(object.Group, ids("g-x", 4)...),
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.Group, After: "g-x04", Limit: 10}},
	}
)

// approvalDone is the result of a full sync of approvalFake that deprovisioned, approved
// for approved objects.
func approvalDone(approved int) workflows.FullSyncProgress {
	return workflows.FullSyncProgress{Phase: workflows.PhaseDone, BatchesDone: 2, BatchesTotal: 2,
		Users:  workflows.Counts{Created: 1, Unchanged: 9, Deprovisioned: 3},
		Groups: workflows.Counts{Updated: 1, Unchanged: 2, Deprovisioned: 4},
		Pacing: &fakePacing, ApprovedDeletions: approved}
}

// approvalWaiting is the progress of a full sync of approvalFake waiting for approval.
func approvalWaiting(approved int) workflows.FullSyncProgress {
	return workflows.FullSyncProgress{Phase: workflows.PhaseAwaitApproval, BatchesDone: 2, BatchesTotal: 2,
		Users: workflows.Counts{Created: 1, Unchanged: 9}, Groups: workflows.Counts{Updated: 1, Unchanged: 2},
		Pacing: &fakePacing, PendingDeletions: 7, ApprovedDeletions: approved}
}

// approveAt sends the approval signal with payload at the workflow time at.
func approveAt(env *testsuite.TestWorkflowEnvironment, at time.Duration, payload any) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.SignalApproveDeletions, payload) }, at)
}

// snapshot is a full sync's progress and the activity calls so far at some moment.
type snapshot struct {
	Progress workflows.FullSyncProgress
	Calls    []call
}

// snapshotAt takes a snapshot at the workflow time at.
func snapshotAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, f *fake, at time.Duration) *snapshot {
	s := &snapshot{}
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryProgress)
		if err == nil {
			err = v.Get(&s.Progress)
		}
		if err != nil {
			t.Errorf("query at %s: %v", at, err)
		}
		s.Calls = f.Calls()
	}, at)
	return s
}

// thresholdError checks that err is the full sync's error for 7 pending deprovisionings
// nobody approved, with the given remark on the approvals received.
func thresholdError(t *testing.T, err error, remark string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("workflow error = %v, want an application error", err)
	}
	if !appErr.NonRetryable() || appErr.Type() != "DeprovisionThresholdExceeded" {
		t.Errorf("error type %q, non-retryable %v; want DeprovisionThresholdExceeded, non-retryable", appErr.Type(), appErr.NonRetryable())
	}
	want := "full sync of acme: 7 objects to deprovision exceed the threshold of 5 and nobody approved them within 24h0m0s" +
		remark + "; run `starter full-sync --provider acme --allow-deletions` or signal approve-deletions with {\"count\": 7}"
	if appErr.Message() != want {
		t.Errorf("error message:\n got %s\nwant %s", appErr.Message(), want)
	}
}

// TestFullSyncKeepsAnEarlyApprovalAcrossContinueAsNew approves 7 deprovisionings while the
// users batch runs (as `starter full-sync --allow-deletions` does right after starting
// one), and the run continues as new after that batch: the approval is in the state the
// next run starts with, which then deprovisions the 7 without waiting.
func TestFullSyncKeepsAnEarlyApprovalAcrossContinueAsNew(t *testing.T) {
	env := newEnv(t)
	f := approvalFake()
	f.OnList = func(in activities.ListInput) {
		if in.Kind == object.User && in.After == "" {
			env.SetContinueAsNewSuggested(true)
		}
	}
	f.install(env)
	mockBatches(env)
	approveAt(env, 30*time.Second, workflows.DeletionApproval{Count: 7})
	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider})

	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want a ContinueAsNewError", err)
	}
	var next workflows.FullSyncInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	equal(t, "continue-as-new input", next, workflows.FullSyncInput{Provider: provider,
		State: &workflows.FullSyncProgress{Phase: workflows.PhaseUsers, Cursor: "u10", BatchesDone: 1, BatchesTotal: 1,
			Users: workflows.Counts{Created: 1, Unchanged: 9}, Pacing: &fakePacing, Runs: 1, ApprovedDeletions: 7}})
	equal(t, "first run's activity calls", f.Calls(), approvalListing[:3])

	env2 := newEnv(t)
	f2 := approvalFake()
	f2.install(env2)
	mockBatches(env2)
	env2.ExecuteWorkflow(workflows.FullSyncWorkflow, next)

	var got workflows.FullSyncProgress
	if err := env2.GetWorkflowResult(&got); err != nil {
		t.Fatalf("second run: workflow error: %v", err)
	}
	want := approvalDone(7)
	want.Runs = 1
	equal(t, "second run's result", got, want)
	calls := []call{{"LoadProvider", activities.ProviderInput{Provider: provider}}}
	equal(t, "second run's activity calls", f2.Calls(), slices.Concat(calls, approvalListing[3:], []call{approvalCount}, approvalDeletions))
	// The groups batch took the minute; no wait for approval followed.
	if got := env2.Now().Sub(start); got != time.Minute {
		t.Errorf("second run took %s of workflow time, want 1m (its batch)", got)
	}
}

// TestFullSyncApprovalNamesItsCount checks what an approval approves: at most the count it
// names, whether it comes before the sync counts its deprovisionings or while it waits; an
// approval without a count (an older starter's, or a signal by hand) approves only a sync
// that waits already, whose pending count starter status shows.
func TestFullSyncApprovalNamesItsCount(t *testing.T) {
	// The batches end at 4m; the cleanup counts then.
	const counted = 4 * time.Minute
	run := func(t *testing.T, signals map[time.Duration]any, snapAt time.Duration) (*testsuite.TestWorkflowEnvironment, *fake, *snapshot) {
		env := newEnv(t)
		f := approvalFake()
		f.install(env)
		mockBatches(env)
		for at, payload := range signals {
			approveAt(env, at, payload)
		}
		snap := snapshotAt(t, env, f, snapAt)
		env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider})
		return env, f, snap
	}
	done := func(t *testing.T, env *testsuite.TestWorkflowEnvironment, f *fake, approved int, at time.Duration) {
		t.Helper()
		var got workflows.FullSyncProgress
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "result", got, approvalDone(approved))
		equal(t, "activity calls", f.Calls(), slices.Concat(approvalListing, []call{approvalCount}, approvalDeletions))
		if got := env.Now().Sub(start); got != at {
			t.Errorf("ended after %s of workflow time, want %s", got, at)
		}
	}
	notApproved := func(t *testing.T, env *testsuite.TestWorkflowEnvironment, f *fake, snap *snapshot, approved int, remark string) {
		t.Helper()
		thresholdError(t, env.GetWorkflowError(), remark)
		equal(t, "progress while waiting", snap.Progress, approvalWaiting(approved))
		equal(t, "activity calls", f.Calls(), append(slices.Clone(approvalListing), approvalCount))
		if got := env.Now().Sub(start); got != counted+24*time.Hour {
			t.Errorf("failed after %s of workflow time, want %s (24h of waiting)", got, counted+24*time.Hour)
		}
	}

	t.Run("early, for the count", func(t *testing.T) {
		env, f, _ := run(t, map[time.Duration]any{30 * time.Second: workflows.DeletionApproval{Count: 7}}, time.Hour)
		done(t, env, f, 7, counted)
	})
	t.Run("early, for more", func(t *testing.T) {
		env, f, _ := run(t, map[time.Duration]any{30 * time.Second: workflows.DeletionApproval{Count: 9}}, time.Hour)
		done(t, env, f, 9, counted)
	})
	t.Run("early, for fewer", func(t *testing.T) {
		env, f, snap := run(t, map[time.Duration]any{30 * time.Second: workflows.DeletionApproval{Count: 6}}, time.Hour)
		notApproved(t, env, f, snap, 6, " (the largest approval was for 6)")
	})
	t.Run("early, without a count", func(t *testing.T) {
		env, f, snap := run(t, map[time.Duration]any{30 * time.Second: nil}, time.Hour)
		notApproved(t, env, f, snap, 0, "")
	})
	t.Run("waiting, for fewer and then for the count", func(t *testing.T) {
		env, f, snap := run(t, map[time.Duration]any{
			time.Hour:     workflows.DeletionApproval{Count: 6},
			2 * time.Hour: workflows.DeletionApproval{Count: 7},
		}, 90*time.Minute)
		equal(t, "progress after the approval for 6", snap.Progress, approvalWaiting(6))
		equal(t, "activity calls after the approval for 6", snap.Calls, append(slices.Clone(approvalListing), approvalCount))
		done(t, env, f, 7, 2*time.Hour)
	})
	t.Run("waiting, without a count", func(t *testing.T) {
		env, f, snap := run(t, map[time.Duration]any{time.Hour: nil}, 30*time.Minute)
		equal(t, "progress before the approval", snap.Progress, approvalWaiting(0))
		done(t, env, f, 7, time.Hour)
	})
}
