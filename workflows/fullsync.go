package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
)

// continueAfterEvents bounds a FullSync run's history well below Temporal's limits; the
// server's own suggestion also ends a run.
const continueAfterEvents = 10000

// FullSync reconciles everything a provider should have: it discovers the target's
// capabilities, syncs every in-scope user and then every in-scope group (members need the
// users' remote ids) in SyncBatch children of page_size objects, at most Parallelism at a
// time, and finally deprovisions linked objects that are deleted or out of scope. The
// listing of the scope (ListInScope) leaves out objects that have nothing to write, so
// batches hold only objects with work and an unchanged directory costs no batch. When the
// cleanup would deprovision more than the provider's threshold, it waits for an operator
// (SignalApproveDeletions, naming how many) unless started with AllowDeletions or approved
// for that many before; an approval received early is kept across continue-as-new.
//
// Progress is answered by the QueryProgress query and carried across continue-as-new.
func FullSync(ctx workflow.Context, in FullSyncInput) (FullSyncProgress, error) {
	st := in.State
	if st == nil {
		st = &FullSyncProgress{Phase: PhaseDiscover}
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (FullSyncProgress, error) { return *st, nil }); err != nil {
		return *st, err
	}
	approve := workflow.GetSignalChannel(ctx, SignalApproveDeletions)

	var info activities.ProviderInfo
	if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.LoadProvider,
		activities.ProviderInput{Provider: in.Provider}).Get(ctx, &info); err != nil {
		return *st, err
	}
	if !info.Enabled {
		st.Phase = PhaseDone
		return *st, nil
	}

	if st.Phase == PhaseDiscover {
		var caps activities.DiscoverResult
		if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.Discover,
			activities.ProviderInput{Provider: in.Provider}).Get(ctx, &caps); err != nil {
			return *st, err
		}
		st.Phase, st.Cursor = PhaseUsers, ""
		if decideReadBack(ctx, in, info, st); st.ReadBack != nil {
			st.Phase = PhaseReadTarget
		}
	}

	if st.Phase == PhaseReadTarget {
		done, err := readTarget(ctx, in, st)
		if err != nil {
			return *st, err
		}
		if !done {
			return *st, continueAsNew(ctx, in, st, approve)
		}
		st.Phase = PhaseUsers
	}

	for _, phase := range []struct{ name, kind, next string }{
		{PhaseUsers, object.User, PhaseGroups},
		{PhaseGroups, object.Group, PhaseCleanup},
	} {
		if st.Phase != phase.name {
			continue
		}
		done, err := syncPhase(ctx, in, info, st, phase.kind)
		if err != nil {
			return *st, err
		}
		if !done {
			return *st, continueAsNew(ctx, in, st, approve)
		}
		st.Phase, st.Cursor = phase.next, ""
	}

	if st.Phase == PhaseCleanup || st.Phase == PhaseAwaitApproval {
		if err := cleanup(ctx, in, info, st, approve); err != nil {
			return *st, err
		}
	}
	st.Phase = PhaseDone
	return *st, nil
}

// continueAsNew ends the run so that a new one goes on with st, keeping in st the
// approvals received so far: signals still in the channel would end with the run.
func continueAsNew(ctx workflow.Context, in FullSyncInput, st *FullSyncProgress, approve workflow.ReceiveChannel) error {
	if approve.Len() > 0 && countsApprovals(ctx) {
		takeApprovals(ctx, in, st, approve)
	}
	in.State = st
	st.Runs++
	return workflow.NewContinueAsNewError(ctx, FullSyncWorkflow, in)
}

// approvalCountVersion marks executions that keep an approval received before the cleanup
// (across continue-as-new too) and hold every approval to the count it names (see
// DeletionApproval). Executions recorded before it took the first approval signal, at the
// wait, for whatever was pending, and replay so.
const approvalCountVersion = "approval-count"

// countsApprovals reports whether the run is of approvalCountVersion. It is asked only
// where an approval matters (a signal to keep at continue-as-new, a threshold exceeded),
// so that other runs record no marker.
func countsApprovals(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, approvalCountVersion, workflow.DefaultVersion, 1) >= 1
}

// takeApprovals reads the approvals received so far into st.ApprovedDeletions, the largest
// count approved. An approval without a count approves the pending count while the sync
// waits for approval (st.Phase), the count starter status shows then; before that it
// approves nothing and is dropped.
func takeApprovals(ctx workflow.Context, in FullSyncInput, st *FullSyncProgress, approve workflow.ReceiveChannel) {
	waiting := st.Phase == PhaseAwaitApproval
	for {
		var a DeletionApproval
		if !approve.ReceiveAsync(&a) {
			return
		}
		switch {
		case a.Count > 0:
			st.ApprovedDeletions = max(st.ApprovedDeletions, a.Count)
			if waiting && a.Count < st.PendingDeletions {
				workflow.GetLogger(ctx).Warn("approval to deprovision fewer objects than pending: the full sync goes on waiting",
					"provider", in.Provider, "approved", a.Count, "pending", st.PendingDeletions)
			}
		case waiting:
			st.ApprovedDeletions = max(st.ApprovedDeletions, st.PendingDeletions)
		default:
			workflow.GetLogger(ctx).Warn("approval without a count before the full sync counted what it would deprovision: "+
				"dropped; approve once it waits (starter full-sync --allow-deletions), or name the count",
				"provider", in.Provider)
		}
	}
}

type pendingBatch struct {
	kind string
	ids  []string
}

// syncPhase runs the SyncBatch children of one kind with a sliding window of Parallelism.
// It returns done=false when the run should continue as new; it stops only between
// refills, with no child running, so the cursor marks exactly what has finished.
func syncPhase(ctx workflow.Context, in FullSyncInput, info activities.ProviderInfo, st *FullSyncProgress, kind string) (bool, error) {
	parallelism := in.Parallelism
	if parallelism <= 0 {
		parallelism = DefaultParallelism
	}
	pageSize := max(info.PageSize, 1)
	counts := &st.Users
	if kind == object.Group {
		counts = &st.Groups
	}
	parent := workflow.GetInfo(ctx).WorkflowExecution.ID
	emptyPages := workflow.GetVersion(ctx, listEmptyPagesVersion, workflow.DefaultVersion, 1) >= 1
	summaries := workflow.GetVersion(ctx, batchSummaryVersion, workflow.DefaultVersion, 1) >= 1
	idRange := workflow.GetVersion(ctx, batchIDRangeVersion, workflow.DefaultVersion, 1) >= 1

	for {
		var page activities.IDList
		list := activities.ListInput{Provider: in.Provider, Kind: kind, After: st.Cursor, Limit: pageSize * parallelism * 2,
			ReadBack: st.readBackID(), EmptyPages: emptyPages}
		if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.ListInScope, list).Get(ctx, &page); err != nil {
			return false, err
		}
		// The listing leaves out, and counts, objects with nothing to write (their payload and
		// members are those last written): a quiet directory costs no batch. Next is where it
		// stopped; histories of workers before it have neither, and the same path.
		counts.Unchanged += page.Unchanged
		counts.Skipped += page.Skipped
		if len(page.IDs) == 0 && page.Next == "" {
			return true, nil
		}
		var queue []pendingBatch
		for start := 0; start < len(page.IDs); start += pageSize {
			queue = append(queue, pendingBatch{kind: kind, ids: page.IDs[start:min(start+pageSize, len(page.IDs))]})
		}

		selector := workflow.NewSelector(ctx)
		running := 0
		var firstErr error
		// While batches run, the provider's pacing is read every pacingEvery for the
		// progress: the rate the target is written at, and any pause it asked for.
		stopPacing := watchPacing(ctx, in.Provider, selector, st)
		startNext := func() {
			b := queue[0]
			queue = queue[1:]
			st.BatchesTotal++
			attrs := []temporal.SearchAttributeUpdate{ProviderAttribute.ValueSet(in.Provider), ObjectKindAttribute.ValueSet(b.kind)}
			if idRange {
				attrs = append(attrs, batchIDRange(b.ids)...)
			}
			opts := workflow.ChildWorkflowOptions{
				WorkflowID:            fmt.Sprintf("%s/%s-batch-%d", parent, b.kind, st.BatchesTotal),
				TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
			}
			if summaries {
				opts.StaticSummary = SyncBatchSummary(in.Provider, b.kind, st.BatchesTotal, len(b.ids))
			}
			cctx := workflow.WithChildOptions(ctx, opts)
			f := workflow.ExecuteChildWorkflow(cctx, SyncBatchWorkflow,
				SyncBatchInput{Provider: in.Provider, Kind: b.kind, IDs: b.ids, ReadBack: st.readBackID()})
			running++
			selector.AddFuture(f, func(f workflow.Future) {
				running--
				var res SyncBatchResult
				if err := f.Get(ctx, &res); err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				st.BatchesDone++
				counts.Add(res.Counts)
			})
		}
		for len(queue) > 0 || running > 0 {
			for firstErr == nil && running < parallelism && len(queue) > 0 {
				startNext()
			}
			selector.Select(ctx)
			if firstErr != nil && running == 0 {
				stopPacing()
				return false, firstErr
			}
		}
		stopPacing()
		st.Cursor = page.Next
		if st.Cursor == "" {
			st.Cursor = page.IDs[len(page.IDs)-1]
		}

		run := workflow.GetInfo(ctx)
		if run.GetContinueAsNewSuggested() || run.GetCurrentHistoryLength() > continueAfterEvents {
			return false, nil
		}
	}
}

// cleanup deprovisions linked objects that are deleted or out of scope, users first, then
// (deactivate_then_delete) deletes the deactivated users whose grace period has passed;
// after a read-back, it then deals with the orphans by the provider's policy and records
// what the read-back found. Due deletions and deprovisioning orphans count in the
// threshold.
func cleanup(ctx workflow.Context, in FullSyncInput, info activities.ProviderInfo, st *FullSyncProgress, approve workflow.ReceiveChannel) error {
	// Asked only of providers that delete after a grace period, so that other runs record
	// no marker; the provider's action is the recorded result of LoadProvider.
	graceDeletions := info.DeletesAfterGrace() &&
		workflow.GetVersion(ctx, graceDeletionsVersion, workflow.DefaultVersion, 1) >= 1
	if info.DeprovisionThreshold > 0 && !in.AllowDeletions {
		var stale activities.StaleCount
		if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.CountStale,
			activities.ProviderInput{Provider: in.Provider}).Get(ctx, &stale); err != nil {
			return err
		}
		orphans := 0
		if st.ReadBack != nil && info.DeletesOrphans() {
			var err error
			if orphans, err = countOrphans(ctx, in, st); err != nil {
				return err
			}
		}
		total := stale.Users + stale.Groups + orphans
		if graceDeletions {
			total += stale.Due
		}
		if total > info.DeprovisionThreshold {
			wait := awaitAnyApproval
			if countsApprovals(ctx) {
				wait = awaitApproval
			}
			if err := wait(ctx, in, info, st, approve, total); err != nil {
				return err
			}
		}
	}
	st.Phase = PhaseCleanup
	// The threshold was checked above: Deprovision must not hold these as direct ones.
	checked := workflow.GetVersion(ctx, cleanupThresholdVersion, workflow.DefaultVersion, 1) >= 1
	pageSize := max(info.PageSize, 1)
	for _, kind := range []string{object.User, object.Group} {
		counts := &st.Users
		if kind == object.Group {
			counts = &st.Groups
		}
		after := ""
		for {
			var page activities.IDList
			list := activities.ListInput{Provider: in.Provider, Kind: kind, After: after, Limit: pageSize}
			if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.ListStale, list).Get(ctx, &page); err != nil {
				return err
			}
			if len(page.IDs) == 0 {
				break
			}
			var res activities.WriteResult
			gone := activities.ObjectsInput{Provider: in.Provider, Kind: kind, IDs: page.IDs, ThresholdChecked: checked}
			if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.Deprovision, gone).Get(ctx, &res); err != nil {
				return err
			}
			counts.Deprovisioned += res.Deprovisioned
			counts.Failed += len(res.Failed)
			after = page.IDs[len(page.IDs)-1]
		}
	}
	if graceDeletions {
		if err := deleteDue(ctx, in, info, st); err != nil {
			return err
		}
	}
	if st.ReadBack == nil {
		return nil
	}
	if err := handleOrphans(ctx, in, info, st); err != nil {
		return err
	}
	return finishReadBack(ctx, in, st)
}

// deleteDue deletes, a page at a time, the deactivated users whose grace period has passed
// (ListDueDeletions, DeleteDue), counted with the users deprovisioned.
func deleteDue(ctx workflow.Context, in FullSyncInput, info activities.ProviderInfo, st *FullSyncProgress) error {
	after := ""
	for {
		var page activities.IDList
		list := activities.ListInput{Provider: in.Provider, Kind: object.User, After: after, Limit: max(info.PageSize, 1)}
		if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.ListDueDeletions, list).Get(ctx, &page); err != nil {
			return err
		}
		if len(page.IDs) == 0 {
			return nil
		}
		var res activities.WriteResult
		due := activities.ObjectsInput{Provider: in.Provider, Kind: object.User, IDs: page.IDs, ThresholdChecked: true}
		if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.DeleteDue, due).Get(ctx, &res); err != nil {
			return err
		}
		st.Users.Deprovisioned += res.Deprovisioned
		st.Users.Failed += len(res.Failed)
		after = page.IDs[len(page.IDs)-1]
	}
}

// awaitApproval returns once deprovisioning total objects, more than the provider's
// threshold, is approved: at once when an approval received before covers them, else when
// one comes within approvalWaitTimeout (an error after it).
func awaitApproval(ctx workflow.Context, in FullSyncInput, info activities.ProviderInfo, st *FullSyncProgress,
	approve workflow.ReceiveChannel, total int) error {
	takeApprovals(ctx, in, st, approve)
	if st.ApprovedDeletions >= total {
		workflow.GetLogger(ctx).Info("deprovisioning beyond the threshold approved before the cleanup",
			"provider", in.Provider, "pending", total, "approved", st.ApprovedDeletions, "threshold", info.DeprovisionThreshold)
		return nil
	}
	st.Phase, st.PendingDeletions = PhaseAwaitApproval, total
	workflow.GetLogger(ctx).Warn("full sync waits for approval to deprovision",
		"provider", in.Provider, "pending", total, "approved", st.ApprovedDeletions, "threshold", info.DeprovisionThreshold)
	ok, err := workflow.AwaitWithTimeout(ctx, approvalWaitTimeout, func() bool {
		takeApprovals(ctx, in, st, approve)
		return st.ApprovedDeletions >= total
	})
	if err != nil {
		return err
	}
	if !ok {
		fewer := ""
		if st.ApprovedDeletions > 0 {
			fewer = fmt.Sprintf(" (the largest approval was for %d)", st.ApprovedDeletions)
		}
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"full sync of %s: %d objects to deprovision exceed the threshold of %d and nobody approved them within %s%s; "+
				"run `starter full-sync --provider %s --allow-deletions` or signal %s with {\"count\": %d}",
			in.Provider, total, info.DeprovisionThreshold, approvalWaitTimeout, fewer, in.Provider, SignalApproveDeletions, total),
			"DeprovisionThresholdExceeded", nil)
	}
	st.PendingDeletions = 0
	return nil
}

// awaitAnyApproval is awaitApproval of the executions before approvalCountVersion: the
// first approval signal, whatever it says, approves whatever is pending.
func awaitAnyApproval(ctx workflow.Context, in FullSyncInput, info activities.ProviderInfo, st *FullSyncProgress,
	approve workflow.ReceiveChannel, total int) error {
	st.Phase, st.PendingDeletions = PhaseAwaitApproval, total
	workflow.GetLogger(ctx).Warn("full sync waits for approval to deprovision",
		"provider", in.Provider, "pending", total, "threshold", info.DeprovisionThreshold)
	ok, err := workflow.AwaitWithTimeout(ctx, approvalWaitTimeout, func() bool { return approve.ReceiveAsync(nil) })
	if err != nil {
		return err
	}
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"full sync of %s: %d objects to deprovision exceed the threshold of %d and nobody approved within %s; "+
				"run `starter full-sync --provider %s --allow-deletions` or signal %s",
			in.Provider, total, info.DeprovisionThreshold, approvalWaitTimeout, in.Provider, SignalApproveDeletions),
			"DeprovisionThresholdExceeded", nil)
	}
	st.PendingDeletions = 0
	return nil
}

// listEmptyPagesVersion marks executions that go on after an empty page of ListInScope
// that has a cursor (ListInput.EmptyPages). Executions recorded before it ended a phase at
// the first empty page; their listing never returns one.
const listEmptyPagesVersion = "list-empty-pages"

// batchSummaryVersion marks executions whose SyncBatch children carry a summary
// (SyncBatchSummary): the StartChildWorkflowExecution commands of the runs before it had none.
const batchSummaryVersion = "batch-summary"

// batchIDRangeVersion marks executions whose SyncBatch children carry the range of their
// object ids as search attributes (BatchFirstIDAttribute, BatchLastIDAttribute), by which
// `starter history` finds the batches of an object. Children started before it have none.
const batchIDRangeVersion = "batch-id-range"

// graceDeletionsVersion marks executions whose cleanup deletes the deactivated users whose
// grace period has passed (deprovision action deactivate_then_delete), counting them in
// the threshold. It is asked only of such providers; executions before it never had one.
const graceDeletionsVersion = "grace-deletions"

// cleanupThresholdVersion marks executions whose cleanup tells Deprovision that the
// threshold was checked (ObjectsInput.ThresholdChecked); before it, every deprovision was
// unguarded, and a cleanup replayed from then sends none.
const cleanupThresholdVersion = "cleanup-threshold-checked"

// readBackID is the id of the sync's read-back of the target, "" when it reads none.
func (p *FullSyncProgress) readBackID() string {
	if p.ReadBack == nil {
		return ""
	}
	return p.ReadBack.ID
}

// pacingEvery is how often a full sync reads its provider's pacing while batches run.
const pacingEvery = 30 * time.Second

// pacingProgressVersion marks executions that read the pacing for their progress;
// executions recorded before it have no such timers and replay without them.
const pacingProgressVersion = "pacing-progress"

// watchPacing reads the provider's pacing into st.Pacing every pacingEvery, through
// selector (whose Select the caller loops on), until stop is called. The reading is a
// local activity: no round trip through the server, one marker in the history. Nothing
// waits for it: a reading that fails is simply tried again at the next tick.
func watchPacing(ctx workflow.Context, provider string, selector workflow.Selector, st *FullSyncProgress) (stop func()) {
	if workflow.GetVersion(ctx, pacingProgressVersion, workflow.DefaultVersion, 1) < 1 {
		return func() {}
	}
	tctx, cancel := workflow.WithCancel(ctx)
	lctx := workflow.WithLocalActivityOptions(tctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	stopped := false
	var arm func()
	arm = func() {
		selector.AddFuture(workflow.NewTimer(tctx, pacingEvery), func(f workflow.Future) {
			if stopped || f.Get(tctx, nil) != nil {
				return
			}
			read := workflow.ExecuteLocalActivity(lctx, a.PacingState, activities.ProviderInput{Provider: provider})
			selector.AddFuture(read, func(f workflow.Future) {
				if stopped {
					return
				}
				var info activities.PacingInfo
				if f.Get(tctx, &info) == nil {
					st.Pacing = &info
				}
				arm()
			})
		})
	}
	arm()
	return func() {
		if !stopped {
			stopped = true
			cancel()
		}
	}
}

// batchIDRange returns the search attributes of a batch of ids: their smallest and
// largest, compared as strings (as Temporal compares Keyword values; lower-case uuids
// compare so as PostgreSQL orders them).
func batchIDRange(ids []string) []temporal.SearchAttributeUpdate {
	if len(ids) == 0 {
		return nil
	}
	return []temporal.SearchAttributeUpdate{
		BatchFirstIDAttribute.ValueSet(slices.Min(ids)), BatchLastIDAttribute.ValueSet(slices.Max(ids)),
	}
}
