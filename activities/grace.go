package activities

import (
	"context"
	"fmt"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
)

// Deletion after a grace period (deprovision action deactivate_then_delete): Deprovision
// deactivates a user that left scope and keeps the deadline of its deletion on its link; a
// full sync's cleanup lists the users whose deadline has passed (ListDueDeletions), counts
// them against the deprovision threshold with the other deprovisions (CountStale), and
// deletes them (DeleteDue). An object's own sync never deletes: a user already deactivated
// has nothing new to deprovision, so every deletion goes through a full sync's threshold
// and approval and shows in starter plan.

// ListDueDeletions pages through the ids of deactivated users whose deletion is due: their
// grace period has passed and they are still deleted or out of scope.
func (a *Activities) ListDueDeletions(ctx context.Context, in ListInput) (IDList, error) {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return IDList{}, err
	}
	if in.Kind != object.User {
		return IDList{IDs: []string{}}, nil // groups are deleted at once, never scheduled
	}
	ids, err := a.Store.DueDeletionIDs(ctx, p.ID, in.After, in.Limit)
	return IDList{IDs: ids}, err
}

// DeleteDue deletes at the target the users among in.IDs whose deletion is due, and
// forgets their links; a 404 counts as deleted. Each is asked again under its lock: a user
// who came back in scope (and was reactivated) since it was listed is left alone. The
// caller, a full sync's cleanup, has counted them against the threshold. In dry run the
// deletions are recorded, not sent.
func (a *Activities) DeleteDue(ctx context.Context, in ObjectsInput) (WriteResult, error) {
	var res WriteResult
	if len(in.IDs) == 0 {
		return res, nil
	}
	if in.Kind != object.User {
		return res, nonRetryable(ErrTypeConfig, fmt.Errorf("DeleteDue deletes users, not %ss", in.Kind))
	}
	w, err := a.newWriter(ctx, in.Provider, in.Kind, in.IDs)
	if err != nil {
		return res, err
	}
	defer w.close()
	due, err := a.Store.DueDeletionsAmong(ctx, w.t.provider.ID, in.IDs)
	if err != nil {
		return res, err
	}
	objs := make([]MappedObject, 0, len(due))
	for _, id := range due {
		if l, ok := w.links[id]; ok {
			objs = append(objs, MappedObject{ID: id, Payload: decodePayload(l.Payload)})
		}
	}
	err = w.each(ctx, objs, w.deleteDueOne)
	w.mu.Lock()
	defer w.mu.Unlock()
	res.Deprovisioned, res.Failed, res.DryRun, res.Planned = w.res.Deprovisioned, w.res.Failed, w.dryRunLog(), w.res.Planned
	if !w.dry {
		a.observe(w.t.provider.Name, w.kind, map[string]int{"deprovisioned": res.Deprovisioned, "failed": len(res.Failed)})
	}
	return res, err
}

func (w *writer) deleteDueOne(ctx context.Context, o MappedObject) error {
	remote := w.links[o.ID].Remote()
	if remote == "" {
		return w.forget(ctx, o.ID, ActionUnlinked)
	}
	w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanDelete})
	if err := w.t.client.Delete(ctx, w.skind, remote); err != nil && !scim.IsNotFound(err) {
		return w.fail(ctx, o, err)
	}
	return w.forget(ctx, o.ID, ActionDeleted)
}
