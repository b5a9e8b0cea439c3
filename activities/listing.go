package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
)

// Look-ups at targets that cannot filter (discovery says so, or discovery failed and the
// fallback is in use): the object is looked for in a listing of the target's users or
// groups, compared by the keys a filter would have used. Without that, a create whose
// answer was lost would be posted again, making a duplicate or failing for good with 409.

// errCannotLookUp: the target can neither filter nor list the objects of a kind, so none
// can be looked up.
var errCannotLookUp = errors.New("the target can neither filter nor list")

// uncertainCreateError is the object error of an object whose earlier create may have
// reached the target without its answer, where it cannot be looked up: posting it again
// could make a duplicate, so it is not, and the operator must decide.
type uncertainCreateError struct {
	kind string
	err  error // errCannotLookUp, with the listing's refusal
}

func (e *uncertainCreateError) Error() string {
	return fmt.Sprintf("not created again: an earlier create of this %s may have reached the target without its "+
		"answer, and it cannot be looked up there (%v). Enable filtering or listing of %ss at the target, so that "+
		"the next sync finds it; or make sure the target has no copy of it and clear the link's "+
		"sync_links.create_uncertain, so that the next sync creates it", e.kind, e.err, e.kind)
}

func (e *uncertainCreateError) Unwrap() error { return e.err }

// remoteIndex is what one listing of the target found, by lookupKey: externalId compared
// exactly (it is caseExact, RFC 7643 §3.1), names and emails case-insensitively. It keeps
// ids and, for groups, members: what a look-up's caller uses.
type remoteIndex struct {
	byKey map[lookupKey][]*scim.Resource
	// refused is the target's refusal to list, when it refused (see notListable).
	refused error
}

func indexKey(attr, value string) lookupKey {
	if attr != "externalId" {
		value = strings.ToLower(value)
	}
	return lookupKey{attr, value}
}

func (x *remoteIndex) add(kind string, r scim.Resource) {
	if r.ID == "" {
		return
	}
	ref := &scim.Resource{ID: r.ID, ExternalID: r.ExternalID}
	name := "userName"
	if kind == object.Group {
		name = "displayName"
		ref.Attributes = map[string]any{"members": scim.Attr(r.Attributes, "members")}
	}
	keys := []lookupKey{indexKey("externalId", r.ExternalID)}
	if v, _ := scim.Attr(r.Attributes, name).(string); v != "" {
		keys = append(keys, indexKey(name, v))
	}
	if kind == object.User {
		emails, _ := scim.Attr(r.Attributes, "emails").([]any)
		for _, e := range emails {
			m, _ := e.(map[string]any)
			if v, _ := scim.Attr(m, "value").(string); v != "" {
				keys = append(keys, indexKey("emails.value", v))
			}
		}
	}
	for _, k := range keys {
		if k.value != "" {
			x.byKey[k] = append(x.byKey[k], ref)
		}
	}
}

// listing returns the listing of the target's objects of the writer's kind, read at the
// first look-up that needs it since the current pass of each began (resetListing): a pass
// looks up only objects whose requests went out before it, so what it lists holds them. A
// target that cannot list gives an index with refused set; other failures are returned and
// the next look-up lists again.
func (w *writer) listing(ctx context.Context) (*remoteIndex, error) {
	w.listMu.Lock()
	defer w.listMu.Unlock()
	if w.listed != nil {
		return w.listed, nil
	}
	x := &remoteIndex{byKey: map[lookupKey][]*scim.Resource{}}
	err := w.t.client.Scan(ctx, w.skind, "", func(r scim.Resource) error {
		x.add(w.kind, r)
		return nil
	})
	switch {
	case notListable(err):
		x = &remoteIndex{refused: err}
	case err != nil:
		return nil, err
	}
	w.listed = x
	return x, nil
}

// resetListing drops the listing: writes went out since it was read.
func (w *writer) resetListing() {
	w.listMu.Lock()
	w.listed = nil
	w.listMu.Unlock()
}

// findListed is findBy over the target's listing: each key in turn, with firstAnswer the
// first one deciding.
func (w *writer) findListed(ctx context.Context, keys []lookupKey, firstAnswer bool) (*scim.Resource, error) {
	x, err := w.listing(ctx)
	if err != nil {
		return nil, err
	}
	if x.refused != nil {
		return nil, fmt.Errorf("%w: %w", errCannotLookUp, x.refused)
	}
	for _, k := range keys {
		var found []*scim.Resource
		for _, r := range x.byKey[indexKey(k.attr, k.value)] {
			// A resource may hold a key twice (two equal emails), or come on two pages of
			// a target whose order shifted while it was listed.
			if !slices.ContainsFunc(found, func(f *scim.Resource) bool { return f.ID == r.ID }) {
				found = append(found, r)
			}
		}
		switch len(found) {
		case 0:
			if firstAnswer {
				return nil, nil
			}
		case 1:
			r := *found[0]
			return &r, nil
		default:
			return nil, w.ambiguous(len(found))
		}
	}
	return nil, nil
}

// ambiguous is the object error of a look-up that found n remote objects: linking either
// could be wrong.
func (w *writer) ambiguous(n int) error {
	return &scim.Error{Op: "search", Status: 409, ScimType: "uniqueness", Detail: fmt.Sprintf("%d remote %s match", n, w.skind)}
}
