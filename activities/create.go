package activities

import (
	"context"
	"errors"

	"github.com/scimsync/scimsync/scim"
)

// findBeforeCreate looks an object without remote id up at the target when it may be there
// already: with link_existing, by every key (it may predate scimsync); when an earlier
// create's outcome is unknown (sent, never answered for sure), by the externalId that
// create carried. A create the target refused (a 4xx, a 429, a request that never left) is
// not looked for: it is simply sent again.
//
// Where the target can neither filter nor list, nothing can be looked up: an object whose
// create is uncertain is then an *uncertainCreateError, never posted again, since a second
// POST could make a duplicate; with link_existing alone the object is created (an account
// that predates scimsync makes that create fail with 409).
func (w *writer) findBeforeCreate(ctx context.Context, o MappedObject) (*scim.Resource, error) {
	link, linked := w.links[o.ID]
	uncertain := linked && link.CreateUncertain
	var found *scim.Resource
	var err error
	switch {
	case w.t.provider.LinkExisting:
		found, err = w.lookup(ctx, o)
	case uncertain:
		found, err = w.lookupCreated(ctx, o)
	default:
		return nil, nil
	}
	if errors.Is(err, errCannotLookUp) {
		if uncertain {
			return nil, &uncertainCreateError{kind: w.kind, err: err}
		}
		return nil, nil
	}
	return found, err
}

// markCreating records, in one statement, that the objects without a remote id may be
// created by this call, before any request is sent: what MarkCreating does for one object
// right before its POST, for all of them at once, so a batch of creates costs one
// statement instead of one per object. A link without remote id makes a later attempt look
// the object up before posting, which is right whether or not this call got to post it.
func (w *writer) markCreating(ctx context.Context, objs []MappedObject) error {
	if w.dry {
		return nil
	}
	payloads := map[string][]byte{}
	for _, o := range objs {
		if w.links[o.ID].Remote() == "" {
			payloads[o.ID] = encodePayload(o.Payload)
		}
	}
	if err := w.a.Store.MarkCreatingMany(ctx, w.t.provider.ID, w.kind, payloads); err != nil {
		return err
	}
	w.marked = make(map[string]bool, len(payloads))
	for id := range payloads {
		w.marked[id] = true
	}
	return nil
}

// create POSTs the object; a 409 links the single existing match instead.
func (w *writer) create(ctx context.Context, o MappedObject) error {
	body := w.body(o, true)
	w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanCreate, Repair: o.Repair,
		Changes: attributeChanges(nil, o.CreatePayload())})
	if !w.dry && !w.marked[o.ID] {
		if _, err := w.a.Store.MarkCreating(ctx, w.t.provider.ID, w.kind, o.ID, encodePayload(o.Payload)); err != nil {
			return err
		}
	}
	created, err := w.t.client.Create(ctx, w.skind, body)
	// A 409 is a refusal too: whether or not its look-up finds a match, the target did not
	// create the object, so its next attempt must not be held back as maybe made.
	if scim.IsRefused(err) {
		if merr := w.markRefused(ctx, o.ID); merr != nil {
			return merr
		}
	}
	if scim.IsConflict(err) {
		return w.createConflict(ctx, o, err)
	}
	if err != nil {
		return w.fail(ctx, o, err)
	}
	return w.saved(ctx, o, created.ID, w.membersWritten(o.ID, !w.caps.MemberPatch), true, true)
}

// markRefused records that the target certainly did not act on the creates of ids, so
// that their next attempt posts again without looking them up.
func (w *writer) markRefused(ctx context.Context, ids ...string) error {
	if w.dry || len(ids) == 0 {
		return nil
	}
	return w.a.Store.MarkCreatesRefused(ctx, w.t.provider.ID, w.kind, ids)
}
