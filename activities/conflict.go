package activities

import (
	"context"
	"errors"
)

// createConflict links the single existing match of an object whose create got 409. Where
// the target can neither filter nor list, the 409 stands.
func (w *writer) createConflict(ctx context.Context, o MappedObject, conflict error) error {
	found, err := w.lookup(ctx, o)
	if errors.Is(err, errCannotLookUp) {
		return w.fail(ctx, o, conflict)
	}
	if err != nil {
		return w.fail(ctx, o, err)
	}
	if found == nil {
		return w.fail(ctx, o, conflict)
	}
	w.seedMembers(ctx, o.ID, found)
	return w.update(ctx, o, found.ID, nil, true)
}
