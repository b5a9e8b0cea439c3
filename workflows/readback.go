package workflows

import (
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
)

// readBackVersion marks executions that may read the target back; executions recorded
// before it never do, and replay so.
const readBackVersion = "read-back"

// decideReadBack starts a read-back in st when the run may (its version) and should: asked
// for by the input, or due by the provider's reconcile_interval (or an operator's request).
func decideReadBack(ctx workflow.Context, in FullSyncInput, info activities.ProviderInfo, st *FullSyncProgress) {
	if workflow.GetVersion(ctx, readBackVersion, workflow.DefaultVersion, 1) < 1 {
		return
	}
	if !in.ReadTarget && !info.ReadBackDue {
		return
	}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	st.ReadBack = &ReadBackProgress{Reading: object.User}
	st.ReadBack.ID = id
	st.ReadBack.StartedAt = workflow.Now(ctx).UTC()
}

// readTarget reads the target's users and then its groups into the store, a page per
// activity (each may run on any worker, every request paced), for the batches to compare
// with. A kind the target cannot list is read one linked object at a time. It returns
// done=false when the run should continue as new.
func readTarget(ctx workflow.Context, in FullSyncInput, st *FullSyncProgress) (bool, error) {
	rb := st.ReadBack
	if !rb.Started {
		start := activities.ReadPageInput{Provider: in.Provider, ReadBack: rb.ID}
		if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.StartReadBack, start).Get(ctx, nil); err != nil {
			return false, err
		}
		rb.Started = true
	}
	for rb.Reading != "" {
		read, more := 0, false
		if rb.Linked == "" {
			var res activities.ReadPageResult
			page := activities.ReadPageInput{Provider: in.Provider, Kind: rb.Reading, ReadBack: rb.ID, Page: rb.Page}
			if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.ReadTargetPage, page).Get(ctx, &res); err != nil {
				return false, err
			}
			rb.MembersNotObservable = rb.MembersNotObservable || res.MembersHidden
			if res.NotListable {
				rb.NotListable = append(rb.NotListable, rb.Reading)
				rb.Linked = linkedStart
				continue
			}
			read, more = res.Read, res.Next != nil
			if more {
				rb.Page = *res.Next
			}
		} else {
			var res activities.ReadLinkedResult
			after := rb.Linked
			if after == linkedStart {
				after = ""
			}
			page := activities.ReadLinkedInput{Provider: in.Provider, Kind: rb.Reading, ReadBack: rb.ID, After: after,
				Limit: readLinkedPage}
			if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.ReadLinked, page).Get(ctx, &res); err != nil {
				return false, err
			}
			read, more = res.Read, res.Next != ""
			if more {
				rb.Linked = res.Next
			}
		}
		if rb.Reading == object.User {
			rb.UsersRead += read
		} else {
			rb.GroupsRead += read
		}
		if !more {
			next := ""
			if rb.Reading == object.User {
				next = object.Group
			}
			rb.Reading, rb.Page, rb.Linked = next, activities.PageToken{}, ""
		}
		if continueSuggested(ctx) {
			return false, nil
		}
	}
	return true, nil
}

// readLinkedPage is how many linked objects one ReadLinked reads one by one.
const readLinkedPage = 100

// linkedStart marks a reading one by one that has not read its first page yet.
const linkedStart = "-"

// orphansPage is how many orphans one HandleOrphans looks at.
const orphansPage = 100

// countOrphans pages through the read-back's orphans of both kinds without touching them,
// and returns how many the policy would deprovision (with their counts in st).
func countOrphans(ctx workflow.Context, in FullSyncInput, st *FullSyncProgress) (deletable int, err error) {
	for _, kind := range []string{object.User, object.Group} {
		if slices.Contains(st.ReadBack.NotListable, kind) {
			continue
		}
		counts, err := orphansOf(ctx, in, st.ReadBack.ID, kind, false)
		if err != nil {
			return 0, err
		}
		deletable += counts.Ours + counts.Strangers
	}
	return deletable, nil
}

// handleOrphans deals with the read-back's orphans by the provider's policy (deprovisions
// them with delete), and records their counts in st.
func handleOrphans(ctx workflow.Context, in FullSyncInput, info activities.ProviderInfo, st *FullSyncProgress) error {
	rb := st.ReadBack
	for _, kind := range []string{object.User, object.Group} {
		if slices.Contains(rb.NotListable, kind) {
			continue // not listed: no orphan can be seen
		}
		counts, err := orphansOf(ctx, in, rb.ID, kind, info.DeletesOrphans())
		if err != nil {
			return err
		}
		if kind == object.User {
			rb.UserOrphans = counts
			st.Users.Deprovisioned += counts.Deleted
		} else {
			rb.GroupOrphans = counts
			st.Groups.Deprovisioned += counts.Deleted
		}
	}
	return nil
}

// orphansOf pages through the orphans of one kind, deleting those the policy lets go when
// del is set.
func orphansOf(ctx workflow.Context, in FullSyncInput, readBack, kind string, del bool) (activities.OrphanCounts, error) {
	var counts activities.OrphanCounts
	after := ""
	for {
		var res activities.OrphansResult
		page := activities.OrphansInput{Provider: in.Provider, Kind: kind, ReadBack: readBack, After: after,
			Limit: orphansPage, Delete: del}
		if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.HandleOrphans, page).Get(ctx, &res); err != nil {
			return counts, err
		}
		counts.Add(res.Counts)
		if res.Next == "" {
			return counts, nil
		}
		after = res.Next
	}
}

// finishReadBack records the read-back's figures and drops what it read.
func finishReadBack(ctx workflow.Context, in FullSyncInput, st *FullSyncProgress) error {
	rb := st.ReadBack
	rb.RepairedUsers, rb.RepairedGroups = st.Users.Repaired, st.Groups.Repaired
	rb.FinishedAt = workflow.Now(ctx).UTC()
	finish := activities.FinishReadBackInput{Provider: in.Provider, Figures: rb.ReadBackFigures}
	return workflow.ExecuteActivity(withQuickActivity(ctx), a.FinishReadBack, finish).Get(ctx, nil)
}

func continueSuggested(ctx workflow.Context) bool {
	run := workflow.GetInfo(ctx)
	return run.GetContinueAsNewSuggested() || run.GetCurrentHistoryLength() > continueAfterEvents
}
