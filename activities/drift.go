package activities

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// What a read-back compares: the payload scimsync would write now against the resource the
// target holds. The target may hold more than scimsync writes (attributes it sets itself,
// ones an administrator added that no mapping manages): only what the payload sets is
// compared, and a multi-valued attribute element by element, each element only by what the
// payload sets in it. Strings compare as SCIM says (RFC 7643 §2.2: case-insensitive unless
// caseExact, which of the attributes scimsync writes only externalId is).

// covers reports whether the target's value remote holds want.
func covers(remote, want any, caseExact bool) bool {
	switch w := want.(type) {
	case nil:
		return remote == nil
	case map[string]any:
		r, ok := remote.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if skipCompare(k) {
				continue
			}
			if !covers(scim.Attr(r, k), wv, strings.EqualFold(k, "externalId")) {
				return false
			}
		}
		return true
	case []any:
		r, ok := remote.([]any)
		if !ok {
			return len(w) == 0 && remote == nil
		}
		if len(r) != len(w) {
			return false
		}
		used := make([]bool, len(r))
	next:
		for _, wv := range w {
			for i, rv := range r {
				if !used[i] && covers(rv, wv, caseExact) {
					used[i] = true
					continue next
				}
			}
			return false
		}
		return true
	case string:
		r, ok := remote.(string)
		if caseExact {
			return ok && r == w
		}
		return ok && strings.EqualFold(r, w)
	case bool:
		r, ok := remote.(bool)
		return ok && r == w
	case float64:
		return numberEqual(remote, w)
	case json.Number:
		f, err := w.Float64()
		return err == nil && numberEqual(remote, f)
	}
	b1, _ := json.Marshal(remote)
	b2, _ := json.Marshal(want)
	return string(b1) == string(b2)
}

func numberEqual(remote any, w float64) bool {
	switch r := remote.(type) {
	case float64:
		return math.Abs(r-w) < 1e-9
	case json.Number:
		f, err := r.Float64()
		return err == nil && math.Abs(f-w) < 1e-9
	}
	return false
}

// skipCompare tells the attributes a read-back never compares: what the target sets or
// hides, and what scimsync writes elsewhere.
func skipCompare(name string) bool {
	switch strings.ToLower(name) {
	case "schemas", "id", "meta", "members", "groups", "password":
		return true
	}
	return false
}

// driftedAttributes lists the top-level attributes of payload that body (a resource the
// target holds) does not hold as payload sets them.
func driftedAttributes(body, payload map[string]any) []string {
	var out []string
	for k, v := range payload {
		if skipCompare(k) {
			continue
		}
		if !covers(scim.Attr(body, k), v, strings.EqualFold(k, "externalId")) {
			out = append(out, k)
		}
	}
	return out
}

// observedView is what the target holds of an object, as the old side of a PATCH: the
// target's values of the attributes the payload or the payload last written set, so that
// the diff writes what differs at the target and removes what scimsync stopped writing,
// and never touches what the target holds beyond. An extension object is viewed attribute
// by attribute, as the diff patches it: an attribute of it that scimsync does not write
// (one an on_create mapping set, one the application added) is left out too.
func observedView(body, payload, written map[string]any) map[string]any {
	out := make(map[string]any, len(payload))
	for _, m := range []map[string]any{payload, written} {
		for k := range m {
			if skipCompare(k) {
				if k == "schemas" {
					out[k] = payload[k]
				}
				continue
			}
			if v := scim.Attr(body, k); v != nil {
				switch {
				case covers(v, payload[k], strings.EqualFold(k, "externalId")):
					out[k] = payload[k] // held as written: no operation
				case isExtension(k, v):
					out[k] = observedView(v.(map[string]any), asMap(payload[k]), asMap(written[k]))
				default:
					out[k] = v
				}
			}
		}
	}
	return out
}

// isExtension reports whether the attribute k with value v is an extension object
// ("urn:...:User": {...}).
func isExtension(k string, v any) bool {
	_, ok := v.(map[string]any)
	return ok && strings.HasPrefix(strings.ToLower(k), "urn:")
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// readBackView is what a read-back found for a batch of objects of one kind.
type readBackView struct {
	byRemote   map[string]store.TargetObject
	byExternal map[string][]store.TargetObject
	byName     map[string][]store.TargetObject
	// linkedElsewhere holds the remote ids of the objects found that another object's
	// link holds: never relinked or adopted.
	linkedElsewhere map[string]bool
	// started is when the read-back began: an object linked since may not be in it.
	started time.Time
}

// viewReadBack loads what the read-back found of the objects: under their links' remote
// ids, under their payloads' externalIds, and, with adopt, under their names.
func (a *Activities) viewReadBack(ctx context.Context, p store.Provider, kind, readBack string, links map[string]store.Link, payloads map[string]map[string]any, adopt bool) (*readBackView, error) {
	var remotes, exts, names []string
	for id, payload := range payloads {
		if r := links[id].Remote(); r != "" {
			remotes = append(remotes, r)
		}
		if e, _ := payload["externalId"].(string); e != "" {
			exts = append(exts, e)
		}
		if adopt {
			if n := payloadName(kind, payload); n != "" {
				names = append(names, n)
			}
		}
	}
	v := &readBackView{linkedElsewhere: map[string]bool{}}
	rb, err := a.Store.ReadBackByID(ctx, p.ID, readBack)
	if err != nil {
		return nil, err
	}
	v.started = rb.StartedAt
	if v.byRemote, err = a.Store.TargetObjects(ctx, readBack, p.ID, kind, remotes); err != nil {
		return nil, err
	}
	if !adopt {
		names = nil
	}
	if v.byExternal, v.byName, err = a.Store.TargetObjectsByKey(ctx, readBack, p.ID, kind, exts, names); err != nil {
		return nil, err
	}
	var candidates []string
	for _, m := range []map[string][]store.TargetObject{v.byExternal, v.byName} {
		for _, objs := range m {
			for _, o := range objs {
				candidates = append(candidates, o.RemoteID)
			}
		}
	}
	linked, err := a.Store.LinkedRemoteIDs(ctx, p.ID, kind, candidates)
	if err != nil {
		return nil, err
	}
	for id := range linked {
		v.linkedElsewhere[id] = true
	}
	return v, nil
}

// payloadName is the userName or displayName of a payload.
func payloadName(kind string, payload map[string]any) string {
	key := "userName"
	if kind == object.Group {
		key = "displayName"
	}
	s, _ := payload[key].(string)
	return s
}

// drift says what the read-back asks of one mapped object: whether the target holds it
// otherwise than payload (repair), under which remote id when its link does not say
// (remote), and whether its remote copy is gone.
func (v *readBackView) drift(kind string, link store.Link, linked bool, payload map[string]any) (repair, remote string, gone bool) {
	live := linked && link.Live()
	if linked && link.DeprovisionedAt != nil {
		return "", "", false // deactivated there: the ordinary write reactivates it
	}
	if live {
		t, ok := v.byRemote[link.Remote()]
		switch {
		case ok && !t.Fresh(link):
			return "", "", false // written since it was read: what was written stands
		case ok:
			if len(driftedAttributes(decodePayload(t.Body), payload)) > 0 {
				return RepairAttributes, "", false
			}
			return "", "", false
		case link.SyncedAt != nil && link.SyncedAt.After(v.started):
			return "", "", false // written since the read-back began: not missing, just new
		}
	}
	// Not at the target under its link's id, or never linked: is it there under another?
	if t, ok := v.single(v.byExternal, stringOf(payload["externalId"])); ok {
		return RepairRelinked, t.RemoteID, false
	}
	if live {
		return RepairGone, "", true
	}
	if t, ok := v.single(v.byName, strings.ToLower(payloadName(kind, payload))); ok {
		return RepairAdopted, t.RemoteID, false
	}
	return "", "", false
}

// single returns the one object found under key that no other link holds.
func (v *readBackView) single(m map[string][]store.TargetObject, key string) (store.TargetObject, bool) {
	if key == "" {
		return store.TargetObject{}, false
	}
	var found []store.TargetObject
	for _, o := range m[key] {
		if !v.linkedElsewhere[o.RemoteID] {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		return store.TargetObject{}, false
	}
	return found[0], true
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

// attributeChanges lists what a write of payload changes over old (nil: a create), by
// top-level attribute, in name order.
func attributeChanges(old, payload map[string]any) []AttributeChange {
	keys := map[string]bool{}
	for k := range payload {
		keys[k] = true
	}
	for k := range old {
		keys[k] = true
	}
	var out []AttributeChange
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if skipCompare(k) {
			continue
		}
		before, after := scim.Attr(old, k), payload[k]
		if _, set := payload[k]; set && before != nil && covers(before, after, strings.EqualFold(k, "externalId")) {
			continue
		}
		if _, set := payload[k]; !set && before == nil {
			continue
		}
		out = append(out, AttributeChange{Attribute: k, Before: before, After: after})
	}
	return out
}
