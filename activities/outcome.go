package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// saved records a successful write on the object's link.
func (w *writer) saved(ctx context.Context, o MappedObject, remote string, members []string, created, linked bool) error {
	if !w.dry {
		w.mu.Lock()
		if seeded, ok := w.seeded[o.ID]; ok && members == nil {
			members = seeded
		}
		w.mu.Unlock()
		if members == nil && created {
			members = []string{}
		}
		link := store.Link{
			ProviderID: w.t.provider.ID, Kind: w.kind, ObjectID: o.ID, RemoteID: &remote,
			PayloadHash: o.Hash, Payload: encodePayload(o.Payload), Members: members,
		}
		err := w.saver.Save(ctx, link)
		if isRemoteIDTaken(err) {
			// This link or another of the group commit: store it alone to tell.
			err = w.a.Store.SaveLink(ctx, link)
		}
		if isRemoteIDTaken(err) {
			return w.failObject(ctx, o, remoteIDTaken(remote, w.kind))
		}
		if err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acted(o.ID, w.res.count(o, created))
	if created || linked || o.New {
		w.res.Linked = append(w.res.Linked, o.ID)
	}
	w.done++
	return nil
}

// count counts one object written: repaired when a read-back asked for it, else created
// or updated. It returns that action.
func (r *WriteResult) count(o MappedObject, created bool) string {
	switch {
	case o.Repair != "":
		r.Repaired++
		return ActionRepaired
	case created:
		r.Created++
		return ActionCreated
	default:
		r.Updated++
		return ActionUpdated
	}
}

// fail records an object error on the object's link and goes on; any other error is
// returned, classified, and stops the activity.
func (w *writer) fail(ctx context.Context, o MappedObject, err error) error {
	if ue := (*uncertainCreateError)(nil); errors.As(err, &ue) {
		return w.failObject(ctx, o, ue.Error())
	}
	if !scim.IsObjectError(err) {
		return classify(w.t.provider.Name, err)
	}
	return w.failObject(ctx, o, objectMessage(err))
}

// failObject records the object error msg on the object's link and in the result.
func (w *writer) failObject(ctx context.Context, o MappedObject, msg string) error {
	if !w.dry {
		if serr := w.a.Store.SetLinkError(ctx, w.t.provider.ID, w.kind, o.ID, msg); serr != nil {
			return serr
		}
	}
	logger(ctx).Warn("object not written", "provider", w.t.provider.Name, "kind", w.kind, "id", o.ID, "error", msg)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.res.Failed = append(w.res.Failed, ObjectFailure{ID: o.ID, Error: msg})
	w.acted(o.ID, ActionFailed)
	w.done++
	return nil
}

// isRemoteIDTaken reports whether err is the store refusing a link whose remote id another
// object of the provider is linked to: the target answered one id for two objects.
func isRemoteIDTaken(err error) bool {
	var ce *store.ConflictError
	return errors.As(err, &ce) && strings.Contains(ce.Constraint, "remote_id")
}

// remoteIDTaken is the object error of an object whose write the target answered with an
// id that another object holds. Retrying would only post the object again.
func remoteIDTaken(remote, kind string) string {
	return fmt.Sprintf("the target answered id %q, which another %s is linked to; not linked", remote, kind)
}
