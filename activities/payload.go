package activities

import (
	"encoding/json"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
)

// body is the payload to POST or PUT: a create's carries the on_create attributes, a PUT's
// never does. Groups carry their members when written whole: on every PUT, and on create
// when membership cannot be patched later.
func (w *writer) body(o MappedObject, create bool) map[string]any {
	payload := o.Payload
	if create {
		payload = o.CreatePayload()
	}
	if w.kind != object.Group || (create && w.caps.MemberPatch) {
		return payload
	}
	body := make(map[string]any, len(payload)+1)
	for k, v := range payload {
		body[k] = v
	}
	body["members"] = scim.MemberRefs(w.members[o.ID], w.caps)
	return body
}

// membersWritten is the member list a write left at the target: the whole desired list when
// the body carried it, an empty list after a create without members, nil (unchanged)
// otherwise.
func (w *writer) membersWritten(id string, whole bool) []string {
	if w.kind != object.Group {
		return nil
	}
	if whole {
		if m := w.members[id]; m != nil {
			return m
		}
		return []string{}
	}
	return nil
}

func encodePayload(p map[string]any) []byte {
	if p == nil {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	return b
}

func decodePayload(b []byte) map[string]any {
	if len(b) == 0 {
		return nil
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		return nil
	}
	return p
}

// primaryEmail returns the primary (else the first) email of a user payload.
func primaryEmail(p map[string]any) string {
	emails, _ := p["emails"].([]any)
	first := ""
	for _, e := range emails {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if first == "" {
			first = v
		}
		if primary, _ := m["primary"].(bool); primary && v != "" {
			return v
		}
	}
	return first
}
