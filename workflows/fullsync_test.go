package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

// child is a SyncBatch child as the parent started it.
type child struct {
	ID      string
	Input   workflows.SyncBatchInput
	Started time.Duration // workflow time since the parent started
}

// children records the SyncBatch children a FullSync starts, and how many run at once.
type children struct {
	mu      sync.Mutex
	started []child
	running int
	most    int
	ended   map[string]time.Duration
}

// watch records the children env starts and completes.
func (c *children) watch(env *testsuite.TestWorkflowEnvironment) {
	c.ended = map[string]time.Duration{}
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, ctx workflow.Context, args converter.EncodedValues) {
		var in workflows.SyncBatchInput
		if err := args.Get(&in); err != nil {
			panic(err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.started = append(c.started, child{ID: info.WorkflowExecution.ID, Input: in, Started: workflow.Now(ctx).Sub(start)})
		c.running++
		c.most = max(c.most, c.running)
	})
	env.SetOnChildWorkflowCompletedListener(func(info *workflow.Info, _ converter.EncodedValue, _ error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.running--
		c.ended[info.WorkflowExecution.ID] = env.Now().Sub(start)
	})
}

// Started returns the children started so far in the order the parent started them, that
// is by the batch number ending their IDs (children started at the same moment run
// concurrently and may reach the listener in either order).
func (c *children) Started() []child {
	c.mu.Lock()
	out := slices.Clone(c.started)
	c.mu.Unlock()
	slices.SortStableFunc(out, func(a, b child) int { return batchNumber(a.ID) - batchNumber(b.ID) })
	return out
}

// batchNumber returns the number that ends a SyncBatch child's ID: parent/kind-batch-N.
func batchNumber(id string) int {
	n, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	if err != nil {
		panic("child workflow ID without a batch number: " + id)
	}
	return n
}

// batchCounts is what the mocked SyncBatch children report: one object created (users) or
// updated (groups) per batch, the others unchanged.
func batchCounts(in workflows.SyncBatchInput) workflows.Counts {
	if in.Kind == object.User {
		return workflows.Counts{Created: 1, Unchanged: len(in.IDs) - 1}
	}
	return workflows.Counts{Updated: 1, Unchanged: len(in.IDs) - 1}
}

// mockBatches replaces the SyncBatch children with one that takes a minute of workflow
// time, three for the batch starting with u01, and reports batchCounts.
func mockBatches(env *testsuite.TestWorkflowEnvironment) {
	env.OnWorkflow(workflows.SyncBatchWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.SyncBatchInput) (workflows.SyncBatchResult, error) {
			d := time.Minute
			if in.IDs[0] == "u01" {
				d = 3 * time.Minute
			}
			if err := workflow.Sleep(ctx, d); err != nil {
				return workflows.SyncBatchResult{}, err
			}
			return workflows.SyncBatchResult{Counts: batchCounts(in)}, nil
		})
}

// fanOut is the directory of the fan-out tests: 10 users and 3 groups in scope, 3 users
// and 1 group stale (deprovisioning u-x2 fails), page size 2, no threshold.
func fanOut() *fake {
	return &fake{
		Provider: activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 2},
		InScope:  map[string][]string{object.User: ids("u", 10), object.Group: ids("g", 3)},
		Stale:    map[string][]string{object.User: {"u-x1", "u-x2", "u-x3"}, object.Group: {"g-x1"}},
		Deprovision: func(in activities.ObjectsInput) (activities.WriteResult, error) {
			var res activities.WriteResult
			for _, id := range in.IDs {
				if id == "u-x2" {
					res.Failed = append(res.Failed, activities.ObjectFailure{ID: id, Error: "500 from target"})
				} else {
					res.Deprovisioned++
				}
			}
			return res, nil
		},
	}
}

func batchInput(kind string, ids ...string) workflows.SyncBatchInput {
	return workflows.SyncBatchInput{Provider: provider, Kind: kind, IDs: ids}
}

func list(kind, after string, limit int) call {
	return call{"ListInScope", activities.ListInput{Provider: provider, Kind: kind, After: after, Limit: limit, EmptyPages: true}}
}

func stale(kind, after string) call {
	return call{"ListStale", activities.ListInput{Provider: provider, Kind: kind, After: after, Limit: 2}}
}

// deprovision is a cleanup's call: it has checked the threshold, so Deprovision must not
// count these in the direct deprovisions' window.
func deprovision(kind string, ids ...string) call {
	return call{"Deprovision", activities.ObjectsInput{Provider: provider, Kind: kind, IDs: ids, ThresholdChecked: true}}
}

// fanOutCleanup is the cleanup of fanOut: stale users and then groups, a page of 2 each.
var fanOutCleanup = []call{
	stale(object.User, ""), deprovision(object.User, "u-x1", "u-x2"),
	stale(object.User, "u-x2"), deprovision(object.User, "u-x3"),
	stale(object.User, "u-x3"),
	stale(object.Group, ""), deprovision(object.Group, "g-x1"),
	stale(object.Group, "g-x1"),
}

// fanOutResult is the final progress of a full sync of fanOut.
var fanOutResult = workflows.FullSyncProgress{
	Phase: workflows.PhaseDone, BatchesDone: 7, BatchesTotal: 7,
	Users:  workflows.Counts{Created: 5, Unchanged: 5, Deprovisioned: 2, Failed: 1},
	Groups: workflows.Counts{Updated: 2, Unchanged: 1, Deprovisioned: 1},
	Pacing: &fakePacing, // read every 30s while the batches ran
}

// TestFullSyncFansOut checks the batches of a full sync with page size 2 and parallelism 2:
// which children start, with which ids, when (a sliding window: a new batch starts as soon
// as one ends, never more than two at once), users before groups, then the cleanup, and
// the counts adding up.
//
// Timeline (workflow time): ListInScope answers 8 users (4 batches); u01-u02 takes 3 min,
// the others 1 min. 0: batches 1, 2. 1m: 2 ends, 3 starts. 2m: 3 ends, 4 starts. 3m: 1 and 4
// end; the next page (u09, u10) is batch 5. 4m: groups g01-g02 and g03 in batches 6, 7.
func TestFullSyncFansOut(t *testing.T) {
	env := newEnv(t)
	f := fanOut()
	f.install(env)
	mockBatches(env)
	var c children
	c.watch(env)

	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, Parallelism: 2})

	var got workflows.FullSyncProgress
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	equal(t, "result", got, fanOutResult)
	equal(t, "children", c.Started(), []child{
		{"wf/user-batch-1", batchInput(object.User, "u01", "u02"), 0},
		{"wf/user-batch-2", batchInput(object.User, "u03", "u04"), 0},
		{"wf/user-batch-3", batchInput(object.User, "u05", "u06"), time.Minute},
		{"wf/user-batch-4", batchInput(object.User, "u07", "u08"), 2 * time.Minute},
		{"wf/user-batch-5", batchInput(object.User, "u09", "u10"), 3 * time.Minute},
		{"wf/group-batch-6", batchInput(object.Group, "g01", "g02"), 4 * time.Minute},
		{"wf/group-batch-7", batchInput(object.Group, "g03"), 4 * time.Minute},
	})
	if c.most != 2 {
		t.Errorf("at most %d children ran at once, want 2 (the parallelism)", c.most)
	}
	for _, ch := range c.Started() {
		if ch.Input.Kind == object.User && c.ended[ch.ID] > 4*time.Minute {
			t.Errorf("user batch %s ended at %s, after the groups started", ch.ID, c.ended[ch.ID])
		}
	}
	want := []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		{"Discover", activities.ProviderInput{Provider: provider}},
		list(object.User, "", 8), list(object.User, "u08", 8), list(object.User, "u10", 8),
		list(object.Group, "", 8), list(object.Group, "g03", 8),
	}
	equal(t, "activity calls", f.Calls(), append(want, fanOutCleanup...))
	if got := env.Now().Sub(start); got != 5*time.Minute {
		t.Errorf("took %s of workflow time, want 5m", got)
	}
	// Pages of batches ran from 0 to 3m, 3m to 4m and 4m to 5m: a reading every 30s of
	// each, none after. The readings strictly inside the pages (5 + 1 + 1) always happen;
	// the one due at a page's very end (3m, 4m, 5m) comes at the same instant as its last
	// batch's end, and the test environment may deliver either first.
	if n := f.PacingReads(); n < 7 || n > 10 {
		t.Errorf("pacing read %d times, want 7 to 10", n)
	}
}

// TestFullSyncProgressQuery queries the progress of the fan-out of TestFullSyncFansOut
// mid-run: while users batches run and while group batches run.
func TestFullSyncProgressQuery(t *testing.T) {
	env := newEnv(t)
	f := fanOut()
	f.install(env)
	mockBatches(env)

	answers := map[time.Duration]workflows.FullSyncProgress{}
	for _, at := range []time.Duration{90 * time.Second, 4*time.Minute + 30*time.Second} {
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(workflows.QueryProgress)
			if err != nil {
				t.Errorf("query at %s: %v", at, err)
				return
			}
			var p workflows.FullSyncProgress
			if err := v.Get(&p); err != nil {
				t.Errorf("query at %s: %v", at, err)
				return
			}
			answers[at] = p
		}, at)
	}
	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, Parallelism: 2})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	equal(t, "progress", answers, map[time.Duration]workflows.FullSyncProgress{
		// Batch 2 is done, 1 and 3 run.
		90 * time.Second: {Phase: workflows.PhaseUsers, BatchesDone: 1, BatchesTotal: 3,
			Users: workflows.Counts{Created: 1, Unchanged: 1}, Pacing: &fakePacing},
		// Every user batch is done, the two group batches run.
		4*time.Minute + 30*time.Second: {Phase: workflows.PhaseGroups, BatchesDone: 5, BatchesTotal: 7,
			Users: workflows.Counts{Created: 5, Unchanged: 5}, Pacing: &fakePacing},
	})
}

// TestFullSyncContinuesAsNew suggests continue-as-new during the first page of users: the
// run ends after that page's batches with the cursor in its state, and a run started with
// that input resumes after the cursor, without discovering again, numbering its batches
// on, and ends with the same result as one uninterrupted run.
func TestFullSyncContinuesAsNew(t *testing.T) {
	env := newEnv(t)
	f := fanOut()
	f.OnList = func(in activities.ListInput) {
		if in.Kind == object.User && in.After == "" {
			env.SetContinueAsNewSuggested(true)
		}
	}
	f.install(env)
	mockBatches(env)
	var c children
	c.watch(env)
	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, Parallelism: 2})

	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("workflow error = %v, want a ContinueAsNewError", err)
	}
	if can.WorkflowType.Name != workflows.FullSyncWorkflow {
		t.Errorf("continues as %q, want %q", can.WorkflowType.Name, workflows.FullSyncWorkflow)
	}
	var next workflows.FullSyncInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	equal(t, "continue-as-new input", next, workflows.FullSyncInput{Provider: provider, Parallelism: 2,
		State: &workflows.FullSyncProgress{Phase: workflows.PhaseUsers, Cursor: "u08", BatchesDone: 4, BatchesTotal: 4,
			Users: workflows.Counts{Created: 4, Unchanged: 4}, Runs: 1, Pacing: &fakePacing}})
	equal(t, "first run's activity calls", f.Calls(), []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		{"Discover", activities.ProviderInput{Provider: provider}},
		list(object.User, "", 8),
	})
	if n := len(c.Started()); n != 4 {
		t.Errorf("first run started %d children, want 4", n)
	}

	env2 := newEnv(t)
	f2 := fanOut()
	f2.install(env2)
	mockBatches(env2)
	var c2 children
	c2.watch(env2)
	env2.ExecuteWorkflow(workflows.FullSyncWorkflow, next)

	var got workflows.FullSyncProgress
	if err := env2.GetWorkflowResult(&got); err != nil {
		t.Fatalf("second run: workflow error: %v", err)
	}
	want := fanOutResult
	want.Runs = 1
	equal(t, "second run's result", got, want)
	var startedIDs []string
	for _, ch := range c2.Started() {
		startedIDs = append(startedIDs, ch.ID)
	}
	equal(t, "second run's children", startedIDs, []string{"wf/user-batch-5", "wf/group-batch-6", "wf/group-batch-7"})
	calls := []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		list(object.User, "u08", 8), list(object.User, "u10", 8),
		list(object.Group, "", 8), list(object.Group, "g03", 8),
	}
	equal(t, "second run's activity calls", f2.Calls(), append(calls, fanOutCleanup...))
}

// TestFullSyncDeprovisionThreshold checks the stop before deprovisioning more objects
// than the provider's threshold (5; 3 users and 4 groups are stale).
func TestFullSyncDeprovisionThreshold(t *testing.T) {
	newFake := func(threshold int) *fake {
		return &fake{
			Provider:   activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 10, DeprovisionThreshold: threshold},
			Stale:      map[string][]string{object.User: ids("u", 3), object.Group: ids("g", 4)},
			StaleCount: activities.StaleCount{Users: 3, Groups: 4},
		}
	}
	head := []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		{"Discover", activities.ProviderInput{Provider: provider}},
		{"ListInScope", activities.ListInput{Provider: provider, Kind: object.User, Limit: 10 * 4 * 2, EmptyPages: true}},
		{"ListInScope", activities.ListInput{Provider: provider, Kind: object.Group, Limit: 10 * 4 * 2, EmptyPages: true}},
	}
	count := call{"CountStale", activities.ProviderInput{Provider: provider}}
	deletions := []call{
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.User, Limit: 10}},
		deprovision(object.User, ids("u", 3)...),
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.User, After: "u03", Limit: 10}},
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.Group, Limit: 10}},
		deprovision(object.Group, ids("g", 4)...),
		{"ListStale", activities.ListInput{Provider: provider, Kind: object.Group, After: "g04", Limit: 10}},
	}
	deprovisioned := workflows.FullSyncProgress{Phase: workflows.PhaseDone,
		Users: workflows.Counts{Deprovisioned: 3}, Groups: workflows.Counts{Deprovisioned: 4}}

	t.Run("approved", func(t *testing.T) {
		env := newEnv(t)
		f := newFake(5)
		f.install(env)
		var waiting workflows.FullSyncProgress
		var callsWhileWaiting []call
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(workflows.QueryProgress)
			if err == nil {
				err = v.Get(&waiting)
			}
			if err != nil {
				t.Errorf("query: %v", err)
			}
			callsWhileWaiting = f.Calls()
			env.SignalWorkflow(workflows.SignalApproveDeletions, nil)
		}, time.Hour)
		env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider})

		var got workflows.FullSyncProgress
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "progress while waiting", waiting,
			workflows.FullSyncProgress{Phase: workflows.PhaseAwaitApproval, PendingDeletions: 7})
		equal(t, "activity calls while waiting", callsWhileWaiting, append(slices.Clone(head), count))
		// The approval without a count approves the 7 the sync waited for.
		approved := deprovisioned
		approved.ApprovedDeletions = 7
		equal(t, "result", got, approved)
		equal(t, "activity calls", f.Calls(), slices.Concat(head, []call{count}, deletions))
		if got := env.Now().Sub(start); got != time.Hour {
			t.Errorf("took %s of workflow time, want 1h (until the approval)", got)
		}
	})

	t.Run("allow deletions", func(t *testing.T) {
		env := newEnv(t)
		f := newFake(5)
		f.install(env)
		env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, AllowDeletions: true})

		var got workflows.FullSyncProgress
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "result", got, deprovisioned)
		equal(t, "activity calls", f.Calls(), slices.Concat(head, deletions))
		if got := env.Now().Sub(start); got != 0 {
			t.Errorf("took %s of workflow time, want no wait", got)
		}
	})

	t.Run("at the threshold", func(t *testing.T) {
		env := newEnv(t)
		f := newFake(7)
		f.install(env)
		env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider})

		var got workflows.FullSyncProgress
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "result", got, deprovisioned)
		equal(t, "activity calls", f.Calls(), slices.Concat(head, []call{count}, deletions))
		if got := env.Now().Sub(start); got != 0 {
			t.Errorf("took %s of workflow time, want no wait", got)
		}
	})

	t.Run("not approved", func(t *testing.T) {
		env := newEnv(t)
		f := newFake(5)
		f.install(env)
		env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider})

		err := env.GetWorkflowError()
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			t.Fatalf("workflow error = %v, want an application error", err)
		}
		if !appErr.NonRetryable() || appErr.Type() != "DeprovisionThresholdExceeded" {
			t.Errorf("error type %q, non-retryable %v; want DeprovisionThresholdExceeded, non-retryable",
				appErr.Type(), appErr.NonRetryable())
		}
		want := "full sync of acme: 7 objects to deprovision exceed the threshold of 5 and nobody approved them within 24h0m0s; " +
			"run `starter full-sync --provider acme --allow-deletions` or signal approve-deletions with {\"count\": 7}"
		if appErr.Message() != want {
			t.Errorf("error message:\n got %s\nwant %s", appErr.Message(), want)
		}
		equal(t, "activity calls", f.Calls(), append(slices.Clone(head), count))
		if got := env.Now().Sub(start); got != 24*time.Hour {
			t.Errorf("failed after %s of workflow time, want 24h", got)
		}
	})
}

// TestFullSyncRealBatches runs the real SyncBatch children on the mocked activities: users
// linked in a batch signal no group (the groups phase follows), groups get their members
// synced, and the children's counts add up in the result.
func TestFullSyncRealBatches(t *testing.T) {
	env := newEnv(t)
	f := &fake{
		Provider: activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 2},
		InScope:  map[string][]string{object.User: ids("u", 3), object.Group: ids("g", 1)},
		Write: func(in activities.WriteInput) (activities.WriteResult, error) {
			res := activities.WriteResult{Created: len(in.Objects)}
			for _, o := range in.Objects {
				res.Linked = append(res.Linked, o.ID)
			}
			return res, nil
		},
	}
	f.install(env)
	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, Parallelism: 2})

	var got workflows.FullSyncProgress
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	equal(t, "result", got, workflows.FullSyncProgress{Phase: workflows.PhaseDone, BatchesDone: 3, BatchesTotal: 3,
		Users: workflows.Counts{Created: 3}, Groups: workflows.Counts{Created: 1}})
	if n := len(f.Inputs("SignalGroupsOfUsers")); n != 0 {
		t.Errorf("SignalGroupsOfUsers called %d times in a full sync, want 0", n)
	}
	// The two user batches run at once, so only their set is certain.
	maps := f.Inputs("MapObjects")
	slices.SortFunc(maps, func(a, b any) int {
		return strings.Compare(a.(activities.ObjectsInput).IDs[0], b.(activities.ObjectsInput).IDs[0])
	})
	equal(t, "MapObjects inputs", maps, []any{
		activities.ObjectsInput{Provider: provider, Kind: object.Group, IDs: []string{"g01"}},
		activities.ObjectsInput{Provider: provider, Kind: object.User, IDs: []string{"u01", "u02"}},
		activities.ObjectsInput{Provider: provider, Kind: object.User, IDs: []string{"u03"}},
	})
	equal(t, "SyncMembers inputs", f.Inputs("SyncMembers"), []any{
		activities.ObjectsInput{Provider: provider, Kind: object.Group, IDs: []string{"g01"}},
	})
}

// TestFullSyncFailsOnBatchError checks that a non-retryable activity error in a batch
// fails the full sync with that error and message once the running batches finish, and
// that no further batch, phase or cleanup starts.
func TestFullSyncFailsOnBatchError(t *testing.T) {
	env := newEnv(t)
	f := &fake{
		Provider: activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 2},
		InScope:  map[string][]string{object.User: ids("u", 8), object.Group: ids("g", 2)},
		Stale:    map[string][]string{object.User: {"u-x1"}},
		MapDelay: time.Minute,
	}
	const msg = `map user u01: mapping "scim-user" field userName: name error: boom`
	// Registered before the fake's catch-all, so it answers the first batch: at once, with
	// the error.
	env.OnActivity(acts.MapObjects, mock.Anything, batchObjects("u01", "u02")).Return(
		func(_ context.Context, in activities.ObjectsInput) (activities.MapResult, error) {
			f.record("MapObjects", in)
			return activities.MapResult{}, temporal.NewNonRetryableApplicationError(msg, activities.ErrTypeMapping, nil)
		})
	f.install(env)
	var c children
	c.watch(env)
	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, Parallelism: 2})

	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("workflow error = %v, want the batch's application error", err)
	}
	if appErr.Type() != activities.ErrTypeMapping || appErr.Message() != msg || !appErr.NonRetryable() {
		t.Errorf("error: type %q, message %q, non-retryable %v; want %q, %q, true",
			appErr.Type(), appErr.Message(), appErr.NonRetryable(), activities.ErrTypeMapping, msg)
	}
	var childErr *temporal.ChildWorkflowExecutionError
	if !errors.As(err, &childErr) {
		t.Errorf("workflow error = %v, want it to come from the SyncBatch child", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("workflow error %q does not say %q", err, msg)
	}
	var started []string
	for _, ch := range c.Started() {
		started = append(started, ch.ID)
	}
	equal(t, "children", started, []string{"wf/user-batch-1", "wf/user-batch-2"})
	maps := f.Inputs("MapObjects")
	slices.SortFunc(maps, func(a, b any) int {
		return strings.Compare(a.(activities.ObjectsInput).IDs[0], b.(activities.ObjectsInput).IDs[0])
	})
	equal(t, "MapObjects inputs", maps, []any{batchObjects("u01", "u02"), batchObjects("u03", "u04")})
	equal(t, "WriteObjects inputs", f.Inputs("WriteObjects"), []any{
		activities.WriteInput{Provider: provider, Kind: object.User, Objects: changed("u03", "u04")},
	})
	equal(t, "ListInScope inputs", f.Inputs("ListInScope"), []any{
		activities.ListInput{Provider: provider, Kind: object.User, Limit: 8, EmptyPages: true},
	})
	if n := len(f.Inputs("ListStale")) + len(f.Inputs("Deprovision")); n != 0 {
		t.Errorf("cleanup ran (%d calls) after a failed batch", n)
	}
	if got := env.Now().Sub(start); got != time.Minute {
		t.Errorf("failed after %s of workflow time, want 1m (when the running batch ended)", got)
	}
}

func batchObjects(ids ...string) activities.ObjectsInput {
	return activities.ObjectsInput{Provider: provider, Kind: object.User, IDs: ids}
}

// TestFullSyncDisabledProvider checks that a full sync of a disabled provider only loads
// the provider and is done.
func TestFullSyncDisabledProvider(t *testing.T) {
	env := newEnv(t)
	f := fanOut()
	f.Provider.Enabled = false
	f.install(env)
	env.ExecuteWorkflow(workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: provider, AllowDeletions: true})

	var got workflows.FullSyncProgress
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	equal(t, "result", got, workflows.FullSyncProgress{Phase: workflows.PhaseDone})
	equal(t, "activity calls", f.Calls(), []call{{"LoadProvider", activities.ProviderInput{Provider: provider}}})
}
