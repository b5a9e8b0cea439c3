package activities

import (
	"context"
	"errors"

	"github.com/scimsync/scimsync/scim"
)

// recreateGone creates again an object the read-back found gone from the target: no
// lookup (the read-back looked), its link forgotten first; the create is recorded before
// its POST like every other, so a lost answer is looked up next time.
func (w *writer) recreateGone(ctx context.Context, o MappedObject) error {
	if !w.dry {
		if err := w.a.Store.DeleteLink(ctx, w.t.provider.ID, w.kind, o.ID); err != nil {
			return err
		}
	}
	return w.create(ctx, o)
}

// recreate handles an update answered 404: the remote object is gone, or its id changed.
// It looks the object up (it may exist under another id) and creates it when not found, or
// when the target can neither filter nor list (the 404 says it is not where it was).
func (w *writer) recreate(ctx context.Context, o MappedObject) error {
	found, err := w.lookup(ctx, o)
	if errors.Is(err, errCannotLookUp) {
		found, err = nil, nil
	}
	if err != nil {
		return w.fail(ctx, o, err)
	}
	if found != nil {
		w.seedMembers(ctx, o.ID, found)
		method, body := w.updateRequest(o, nil)
		switch method {
		case "PATCH":
			_, err = w.t.client.Patch(ctx, w.skind, found.ID, body.([]scim.PatchOp))
		case "PUT":
			_, err = w.t.client.Replace(ctx, w.skind, found.ID, body.(map[string]any))
		}
		if err != nil {
			return w.fail(ctx, o, err)
		}
		return w.saved(ctx, o, found.ID, w.membersWritten(o.ID, method == "PUT"), false, true)
	}
	if !w.dry {
		if err := w.a.Store.DeleteLink(ctx, w.t.provider.ID, w.kind, o.ID); err != nil {
			return err
		}
	}
	return w.create(ctx, o)
}
