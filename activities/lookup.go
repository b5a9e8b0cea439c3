package activities

import (
	"context"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
)

// seedMembers records the members a matched remote group already has, so the next
// membership sync adds and removes from what is really there. Targets that return no
// members (aws) leave the list empty.
func (w *writer) seedMembers(ctx context.Context, id string, found *scim.Resource) {
	if w.kind != object.Group || w.dry {
		return
	}
	ids := memberValues(scim.Attr(found.Attributes, "members"))
	w.mu.Lock()
	if w.seeded == nil {
		w.seeded = map[string][]string{}
	}
	w.seeded[id] = ids
	w.mu.Unlock()
}

// lookupCreated finds an object whose create may have reached the target: by the
// externalId every create carries, in one request; by userName (displayName for groups)
// when the payload has no externalId or the target refuses to filter on it.
func (w *writer) lookupCreated(ctx context.Context, o MappedObject) (*scim.Resource, error) {
	return w.find(ctx, w.lookupKeys(o, false), true)
}

// lookup finds the object at the target by externalId, then by userName (users) or
// displayName (groups), then by primary email. Exactly one match is returned; none gives
// nil; several are an object error, since linking either could be wrong.
func (w *writer) lookup(ctx context.Context, o MappedObject) (*scim.Resource, error) {
	return w.find(ctx, w.lookupKeys(o, true), false)
}

// lookupKey is one attribute value a look-up compares: "externalId", "userName" or
// "displayName", or "emails.value".
type lookupKey struct{ attr, value string }

// lookupKeys returns the keys that find o, in order: externalId, userName (or
// displayName), and with email the primary email.
func (w *writer) lookupKeys(o MappedObject, email bool) []lookupKey {
	var keys []lookupKey
	if ext, ok := o.Payload["externalId"].(string); ok && ext != "" {
		keys = append(keys, lookupKey{"externalId", ext})
	}
	key := "userName"
	if w.kind == object.Group {
		key = "displayName"
	}
	if v, ok := o.Payload[key].(string); ok && v != "" {
		keys = append(keys, lookupKey{key, v})
	}
	if e := primaryEmail(o.Payload); email && e != "" && w.kind == object.User {
		keys = append(keys, lookupKey{"emails.value", e})
	}
	return keys
}

// find looks keys up: by filter where the target filters, else in a listing of the target
// (see listing). An errCannotLookUp says that the target can do neither.
func (w *writer) find(ctx context.Context, keys []lookupKey, firstAnswer bool) (*scim.Resource, error) {
	if !w.caps.Filter {
		return w.findListed(ctx, keys, firstAnswer)
	}
	var filters []scim.Filter
	for _, k := range keys {
		if k.attr == "emails.value" && w.caps.FilterEqOnly {
			continue // targets with eq-only filters (aws) cannot filter on emails
		}
		filters = append(filters, scim.Eq(k.attr, k.value))
	}
	return w.findBy(ctx, filters, firstAnswer)
}

// findBy searches with each filter in turn, skipping those the target refuses. With
// firstAnswer the first filter the target answers decides (no match: nil); else one without
// match passes on to the next.
func (w *writer) findBy(ctx context.Context, filters []scim.Filter, firstAnswer bool) (*scim.Resource, error) {
	for _, f := range filters {
		found, err := w.t.client.Search(ctx, w.skind, f)
		if err != nil {
			if scim.IsObjectError(err) && !scim.IsNotFound(err) {
				continue // the target refuses this filter; try the next
			}
			return nil, err
		}
		switch len(found) {
		case 0:
			if firstAnswer {
				return nil, nil
			}
		case 1:
			return &found[0], nil
		default:
			return nil, w.ambiguous(len(found))
		}
	}
	return nil, nil
}
