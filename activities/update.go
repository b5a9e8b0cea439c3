package activities

import (
	"context"
	"strings"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
)

// oldPayload is the old side of o's change at remote: what a read-back found there, else
// the payload last written (when remote is the link's), else nothing (a PUT of it whole).
// It leaves out o's on_create attributes, which no update touches: even when the payload
// last written had them (their mapping was applied always then), they are not removed.
func (w *writer) oldPayload(o MappedObject, remote string) map[string]any {
	link := w.links[o.ID]
	written := withoutOnCreate(decodePayload(link.Payload), o.OnCreate)
	if t, ok := w.observed[remote]; ok && remote != "" && (remote != link.Remote() || t.Fresh(link)) {
		return observedView(decodePayload(t.Body), o.Payload, written)
	}
	if remote != "" && remote == link.Remote() {
		return written
	}
	return nil
}

// withoutOnCreate returns old without the attributes onCreate sets: its top-level ones, and
// those of its extension objects within old's (names compared case-insensitively). It is
// old itself when onCreate is empty.
func withoutOnCreate(old, onCreate map[string]any) map[string]any {
	if len(old) == 0 || len(onCreate) == 0 {
		return old
	}
	out := make(map[string]any, len(old))
	for k, v := range old {
		cv := scim.Attr(onCreate, k)
		switch {
		case cv == nil || strings.EqualFold(k, "schemas"):
			out[k] = v
		case isExtension(k, v) && isExtension(k, cv):
			ext := map[string]any{}
			for sk, sv := range v.(map[string]any) {
				if scim.Attr(cv.(map[string]any), sk) == nil {
					ext[sk] = sv
				}
			}
			out[k] = ext
		}
	}
	return out
}

// update writes the object's changes to its remote resource. linkedNow is true when the
// remote id was just found (not known from a link), which counts as linking.
func (w *writer) update(ctx context.Context, o MappedObject, remote string, old map[string]any, linkedNow bool) error {
	method, body := w.updateRequest(o, old)
	if method != "" || o.Repair != "" {
		w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanUpdate, Repair: o.Repair,
			Remote: o.Remote, Changes: attributeChanges(old, o.Payload)})
	}
	var err error
	switch method {
	case "":
	case "PATCH":
		_, err = w.t.client.Patch(ctx, w.skind, remote, body.([]scim.PatchOp))
	case "PUT":
		_, err = w.t.client.Replace(ctx, w.skind, remote, body.(map[string]any))
	}
	if scim.IsNotFound(err) {
		return w.recreate(ctx, o)
	}
	if err != nil {
		return w.fail(ctx, o, err)
	}
	return w.saved(ctx, o, remote, w.membersWritten(o.ID, method == "PUT"), false, linkedNow)
}

// updateRequest decides how to write o's changes: PATCH with the changed attributes when
// the target takes it and the payload last written is known, else PUT of the whole object
// (groups with their whole member list, so a PUT never drops members).
func (w *writer) updateRequest(o MappedObject, old map[string]any) (method string, body any) {
	patch := w.caps.UserUpdate == scim.UpdatePatch
	if w.kind == object.Group {
		patch = w.caps.GroupUpdate == scim.UpdatePatch
		if w.caps.GroupPatchPaths != nil {
			ops := scim.RestrictPaths(scim.DiffPatch(old, o.Payload), w.caps.GroupPatchPaths)
			if len(ops) == 0 {
				return "", nil
			}
			return "PATCH", ops
		}
	}
	if patch && old != nil {
		ops := scim.DiffPatch(old, o.Payload)
		if len(ops) == 0 {
			return "", nil
		}
		return "PATCH", ops
	}
	return "PUT", w.body(o, false)
}
