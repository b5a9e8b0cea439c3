package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
)

// ObjectSync keeps one user or group in sync at one provider as it changes. It is started
// (or signalled, when running) with SignalWithStart on ObjectSyncID, so a burst of changes
// to one object coalesces into few syncs, and syncs of one object never overlap.
//
// Each round drains every pending signal, then syncs the object's current state: it is
// created, updated, or deprovisioned when deleted or out of scope. Changes that arrive
// during a round cause one more round. The workflow completes when a round ends with no
// new signal.
func ObjectSync(ctx workflow.Context, in ObjectSyncInput) error {
	changed := workflow.GetSignalChannel(ctx, SignalObjectChanged)
	drain(changed)
	local := useLocalReads(ctx)
	for {
		if err := syncObject(ctx, in, local); err != nil {
			return err
		}
		if drain(changed) == 0 {
			// A signal that lands before this completes makes the server reject the
			// completion; the task is retried with it and the loop goes round again.
			return nil
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return workflow.NewContinueAsNewError(ctx, ObjectSyncWorkflow, in)
		}
	}
}

// drain consumes every buffered signal and returns how many there were.
func drain(ch workflow.ReceiveChannel) int {
	n := 0
	for ch.ReceiveAsync(nil) {
		n++
	}
	return n
}

func syncObject(ctx workflow.Context, in ObjectSyncInput, local bool) error {
	objects := activities.ObjectsInput{Provider: in.Provider, Kind: in.Kind, IDs: []string{in.ObjectID}}
	var info activities.ProviderInfo
	if err := read(ctx, local, a.LoadProvider,
		activities.ProviderInput{Provider: in.Provider}).Get(ctx, &info); err != nil {
		return err
	}
	if !info.Enabled {
		return nil
	}
	_, err := syncObjects(ctx, objects, local)
	return err
}

// syncObjects maps, validates and writes objects of one kind, deprovisions those that are
// gone, and for groups brings membership up to date. A user that gets linked makes its
// groups sync, so their members include it. local runs the mapping as a local activity.
func syncObjects(ctx workflow.Context, in activities.ObjectsInput, local bool) (Counts, error) {
	var counts Counts
	var mapped activities.MapResult
	if err := read(ctx, local, a.MapObjects, in).Get(ctx, &mapped); err != nil {
		return counts, err
	}
	counts.Unchanged += len(mapped.Unchanged)
	counts.Skipped += len(mapped.Skipped)

	if len(mapped.Gone) > 0 {
		var res activities.WriteResult
		gone := activities.ObjectsInput{Provider: in.Provider, Kind: in.Kind, IDs: mapped.Gone}
		if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.Deprovision, gone).Get(ctx, &res); err != nil {
			return counts, err
		}
		counts.Deprovisioned += res.Deprovisioned
		counts.Failed += len(res.Failed)
	}

	var written activities.WriteResult
	if len(mapped.Changed) > 0 {
		write := activities.WriteInput{Provider: in.Provider, Kind: in.Kind, Objects: mapped.Changed, ReadBack: in.ReadBack}
		if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.WriteObjects, write).Get(ctx, &written); err != nil {
			return counts, err
		}
		counts.Created += written.Created
		counts.Updated += written.Updated
		counts.Repaired += written.Repaired
		counts.Unchanged += written.Unchanged
		counts.Failed += len(written.Failed)
	}

	switch in.Kind {
	case object.Group:
		present := presentIDs(in.IDs, mapped)
		if len(present) > 0 {
			var res activities.WriteResult
			members := activities.ObjectsInput{Provider: in.Provider, Kind: in.Kind, IDs: present, ReadBack: in.ReadBack}
			if err := workflow.ExecuteActivity(withWriteActivity(ctx), a.SyncMembers, members).Get(ctx, &res); err != nil {
				return counts, err
			}
			counts.Failed += len(res.Failed)
			counts.Repaired += res.Repaired
		}
	case object.User:
		if len(written.Linked) > 0 && !isFullSyncBatch(ctx) {
			sig := activities.SignalInput{Provider: in.Provider, Kind: object.Group, IDs: written.Linked, Reason: "member linked"}
			if err := workflow.ExecuteActivity(withQuickActivity(ctx), a.SignalGroupsOfUsers, sig).Get(ctx, nil); err != nil {
				return counts, err
			}
		}
	}
	return counts, nil
}

// presentIDs are the ids that were neither skipped nor gone, in input order.
func presentIDs(ids []string, m activities.MapResult) []string {
	absent := make(map[string]bool, len(m.Skipped)+len(m.Gone))
	for _, id := range m.Skipped {
		absent[id] = true
	}
	for _, id := range m.Gone {
		absent[id] = true
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !absent[id] {
			out = append(out, id)
		}
	}
	return out
}

// isFullSyncBatch reports whether this runs as a full sync's batch, whose groups phase
// follows anyway.
func isFullSyncBatch(ctx workflow.Context) bool {
	return workflow.GetInfo(ctx).WorkflowType.Name == SyncBatchWorkflow
}
