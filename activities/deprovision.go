package activities

import (
	"context"
	"errors"
	"time"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// Deprovision applies the provider's deprovision action to linked objects that were
// deleted or left scope: "delete" deletes them at the target (a 404 counts as done) and
// forgets the link; "deactivate" sets active=false on users (and deletes groups, which have
// no such state) and keeps the link, so a user who comes back is updated, not duplicated;
// "deactivate_then_delete" deactivates users as "deactivate" does and keeps on the link the
// deadline of their deletion (now plus the provider's grace period), which a full sync's
// cleanup acts on (DeleteDue); "none" only forgets the link. A link whose create may have
// gone through without an answer is looked up first.
func (a *Activities) Deprovision(ctx context.Context, in ObjectsInput) (WriteResult, error) {
	var res WriteResult
	if len(in.IDs) == 0 {
		return res, nil
	}
	w, err := a.newWriter(ctx, in.Provider, in.Kind, in.IDs)
	if err != nil {
		return res, err
	}
	defer w.close()
	var objs []MappedObject
	for _, id := range in.IDs {
		if l, ok := w.links[id]; ok && l.DeprovisionedAt == nil {
			objs = append(objs, MappedObject{ID: id, Payload: decodePayload(l.Payload)})
		}
	}
	if objs, err = w.holdPastThreshold(ctx, in, objs); err != nil {
		return res, err
	}
	err = w.each(ctx, objs, w.deprovisionOne)
	w.mu.Lock()
	defer w.mu.Unlock()
	res.Deprovisioned, res.Failed, res.DryRun, res.Planned, res.Held = w.res.Deprovisioned, w.res.Failed, w.dryRunLog(), w.res.Planned, w.res.Held
	res.Objects = w.objectRecords()
	if w.dry {
		return res, err
	}
	a.observe(w.t.provider.Name, w.kind, map[string]int{"deprovisioned": res.Deprovisioned, "failed": len(res.Failed), "held": res.Held})
	if err == nil {
		// A deactivated user stays at the target, so the groups it belongs to must drop it;
		// their syncs may already have run (a full sync writes groups before its cleanup).
		err = a.signalGroupsOf(ctx, w.t.provider, w.deactivated, "member deactivated")
	}
	return res, err
}

// holdPastThreshold returns the objects a direct deprovision may act on now: the
// provider's threshold counts the direct deprovisions of the last hour, and those past it
// are held (recorded on their links) for a full sync, which asks for approval. Objects
// that never reached the target, and the action "none", change nothing there and are not
// counted. A full sync's cleanup has counted its own (in.ThresholdChecked); a dry run
// changes nothing.
func (w *writer) holdPastThreshold(ctx context.Context, in ObjectsInput, objs []MappedObject) ([]MappedObject, error) {
	threshold := w.t.provider.DeprovisionThreshold
	if in.ThresholdChecked || w.dry || threshold <= 0 || w.t.provider.DeprovisionAction == store.DeprovisionNone {
		return objs, nil
	}
	var ids []string
	for _, o := range objs {
		if l := w.links[o.ID]; l.Remote() != "" || l.CreateUncertain {
			ids = append(ids, o.ID)
		}
	}
	_, held, err := w.a.Store.ReserveDirectDeprovisions(ctx, w.t.provider.ID, w.kind, ids, threshold, store.DirectDeprovisionWindow)
	if err != nil || len(held) == 0 {
		return objs, err
	}
	logger(ctx).Warn("direct deprovisions held past the threshold; a full sync deprovisions them once approved",
		"provider", w.t.provider.Name, "kind", w.kind, "held", len(held), "threshold", threshold,
		"window", store.DirectDeprovisionWindow)
	isHeld := make(map[string]bool, len(held))
	for _, id := range held {
		isHeld[id] = true
	}
	kept := objs[:0:0]
	for _, o := range objs {
		if !isHeld[o.ID] {
			kept = append(kept, o)
		}
	}
	w.mu.Lock()
	w.res.Held += len(held)
	for _, id := range held {
		w.acted(id, ActionHeld)
	}
	w.mu.Unlock()
	return kept, nil
}

func (w *writer) deprovisionOne(ctx context.Context, o MappedObject) error {
	link := w.links[o.ID]
	remote := link.Remote()
	if remote == "" && link.CreateUncertain && o.Payload != nil {
		// Its create may have gone through: find what it made. A refused create made nothing,
		// and where nothing can be looked up the link is forgotten, as it always was.
		found, err := w.lookupCreated(ctx, o)
		if errors.Is(err, errCannotLookUp) {
			found, err = nil, nil
		}
		if err != nil {
			return w.fail(ctx, o, err)
		}
		if found != nil {
			remote = found.ID
		}
	}
	action := w.t.provider.DeprovisionAction
	if remote == "" || action == store.DeprovisionNone {
		return w.forget(ctx, o.ID, ActionUnlinked)
	}
	w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanDeprovision})
	if w.t.provider.DeactivatesUsers() && w.kind == object.User {
		return w.deactivate(ctx, o, remote)
	}
	if err := w.t.client.Delete(ctx, w.skind, remote); err != nil && !scim.IsNotFound(err) {
		return w.fail(ctx, o, err)
	}
	return w.forget(ctx, o.ID, ActionDeleted)
}

func (w *writer) deactivate(ctx context.Context, o MappedObject, remote string) error {
	payload := o.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	payload["active"] = false
	var err error
	if w.caps.UserUpdate == scim.UpdatePatch {
		_, err = w.t.client.Patch(ctx, scim.Users, remote, []scim.PatchOp{{Op: scim.OpReplace, Path: "active", Value: false}})
	} else {
		_, err = w.t.client.Replace(ctx, scim.Users, remote, payload)
	}
	if scim.IsNotFound(err) {
		return w.forget(ctx, o.ID, ActionDeleted) // gone from the target already
	}
	if err != nil {
		return w.fail(ctx, o, err)
	}
	if !w.dry {
		hash, err := mapping.Hash(payload)
		if err != nil {
			return err
		}
		if err := w.a.Store.MarkDeprovisioned(ctx, w.t.provider.ID, w.kind, o.ID, hash, encodePayload(payload), w.gracePeriod()); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.deactivated = append(w.deactivated, o.ID)
	w.mu.Unlock()
	w.count(o.ID, ActionDeactivated)
	return nil
}

// gracePeriod is how long a user deactivated now stays at the target before a full sync
// deletes it: the provider's delete_after under deactivate_then_delete, else 0 (never).
func (w *writer) gracePeriod() time.Duration {
	if w.t.provider.DeprovisionAction != store.DeprovisionDeactivateThenDelete {
		return 0
	}
	return w.t.provider.DeprovisionDeleteAfter
}

// forget drops the link; action says what became of the remote object: ActionDeleted
// counts it as deprovisioned, ActionUnlinked does not (nothing was done there).
func (w *writer) forget(ctx context.Context, id, action string) error {
	if !w.dry {
		if err := w.a.Store.DeleteLink(ctx, w.t.provider.ID, w.kind, id); err != nil {
			return err
		}
	}
	if action == ActionUnlinked {
		w.actedLocked(id, action)
		return nil
	}
	w.count(id, action)
	return nil
}

// count counts object id as deprovisioned by action.
func (w *writer) count(id, action string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.res.Deprovisioned++
	w.acted(id, action)
	w.done++
}
