package scim

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// PATCH operation names (RFC 7644 §3.5.2).
const (
	OpAdd     = "add"
	OpReplace = "replace"
	OpRemove  = "remove"
)

// PatchOp is one PATCH operation. Path is empty for a no-path operation
// whose Value is a map of attributes; Value is omitted when nil.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

// diffSkipped are the top-level keys DiffPatch never touches: read-only
// attributes, and members, which change through MemberPatches.
var diffSkipped = map[string]bool{"schemas": true, "id": true, "meta": true, "members": true}

// DiffPatch computes the minimal PATCH that turns the payload last
// written (old) into the new one: "add" for attributes that appear,
// "replace" for changed ones, "remove" for vanished ones. Single-valued
// complex attributes (name) and extension objects (urn:...:User) are
// compared one level down, giving paths like "name.givenName" and
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
// multi-valued attributes (emails) are replaced whole. "schemas", "id",
// "meta" and "members" are ignored (membership: MemberPatches). Values
// are compared after a JSON round trip, so 1 and 1.0 are equal. The
// operations are sorted by path; nil means nothing changed.
//
// Attribute names are compared case-insensitively (RFC 7643 §2.1), at every level: old
// may be what a target answered ("DisplayName", "Name": {"GivenName"}), and an attribute
// spelled otherwise is the same attribute, not one removed and another added. Paths are
// spelled as in new.
func DiffPatch(old, new map[string]any) []PatchOp {
	o, n := normalize(old), normalize(new)
	var ops []PatchOp
	for _, k := range unionKeys(o, n) {
		if diffSkipped[strings.ToLower(k)] {
			continue
		}
		ops = append(ops, diffAttr(k, Attr(o, k), Attr(n, k), isURN(k), 0)...)
	}
	return ops
}

func isURN(k string) bool { return strings.HasPrefix(strings.ToLower(k), "urn:") }

// diffAttr compares one attribute at path. Maps are descended once for a
// core attribute (a.b) and twice for an extension (urn:a.b).
func diffAttr(path string, ov, nv any, urn bool, depth int) []PatchOp {
	oPresent, nPresent := present(ov), present(nv)
	switch {
	case !oPresent && !nPresent:
		return nil
	case !nPresent:
		return []PatchOp{{Op: OpRemove, Path: path}}
	case !oPresent:
		return []PatchOp{{Op: OpAdd, Path: path, Value: nv}}
	case equalFoldNames(ov, nv):
		return nil
	}
	om, oIsMap := ov.(map[string]any)
	nm, nIsMap := nv.(map[string]any)
	maxDepth := 0
	if urn {
		maxDepth = 1
	}
	if oIsMap && nIsMap && depth <= maxDepth {
		sep := "."
		if urn && depth == 0 {
			sep = ":"
		}
		var ops []PatchOp
		for _, k := range unionKeys(om, nm) {
			ops = append(ops, diffAttr(path+sep+k, Attr(om, k), Attr(nm, k), urn, depth+1)...)
		}
		return ops
	}
	return []PatchOp{{Op: OpReplace, Path: path, Value: nv}}
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// unionKeys returns the attribute names of a and b, sorted, each once whatever its case:
// spelled as in b when b has it.
func unionKeys(a, b map[string]any) []string {
	keys := make([]string, 0, len(a)+len(b))
	seen := make(map[string]bool, len(a)+len(b))
	for _, m := range []map[string]any{b, a} {
		for k := range m {
			if lk := strings.ToLower(k); !seen[lk] {
				seen[lk] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// equalFoldNames reports whether a and b are equal JSON values with attribute names
// compared case-insensitively; values themselves are compared exactly.
func equalFoldNames(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for _, k := range unionKeys(x, y) {
			if !equalFoldNames(Attr(x, k), Attr(y, k)) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalFoldNames(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// normalize returns m after a JSON round trip (numbers become float64,
// typed slices []any); m itself when it does not marshal.
func normalize(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return m
	}
	return out
}

// RestrictPaths keeps the operations whose attribute (the part of the
// path before any "." or "[") is one of paths, compared case-insensitively.
// A nil paths keeps everything. Used with Capabilities.GroupPatchPaths.
func RestrictPaths(ops []PatchOp, paths []string) []PatchOp {
	if paths == nil {
		return ops
	}
	var out []PatchOp
	for _, op := range ops {
		attr := op.Path
		if i := strings.IndexAny(attr, ".["); i >= 0 && !isURN(attr) {
			attr = attr[:i]
		}
		if slices.ContainsFunc(paths, func(p string) bool { return strings.EqualFold(p, attr) }) {
			out = append(out, op)
		}
	}
	return out
}

// DiffMembers compares the member ids last written with the wanted ones
// and returns those to add and to remove, each sorted and without
// duplicates.
func DiffMembers(old, new []string) (add, remove []string) {
	oldSet := make(map[string]bool, len(old))
	for _, id := range old {
		oldSet[id] = true
	}
	newSet := make(map[string]bool, len(new))
	for _, id := range new {
		if !newSet[id] && !oldSet[id] {
			add = append(add, id)
		}
		newSet[id] = true
	}
	for id := range oldSet {
		if !newSet[id] {
			remove = append(remove, id)
		}
	}
	sort.Strings(add)
	sort.Strings(remove)
	return add, remove
}

// MemberRef returns the member reference for id: {"value": id}, plus
// "type" when memberType is set (webex: "user").
func MemberRef(id, memberType string) map[string]any {
	ref := map[string]any{"value": id}
	if memberType != "" {
		ref["type"] = memberType
	}
	return ref
}

// MemberRefs returns the member references for ids, in order, as used in
// a group body for POST or PUT. It never returns nil: an empty list must
// still be sent to remove the last member.
func MemberRefs(ids []string, caps Capabilities) []any {
	refs := make([]any, 0, len(ids))
	for _, id := range ids {
		refs = append(refs, MemberRef(id, caps.MemberType))
	}
	return refs
}

// MemberPatches turns membership changes into PATCH requests, each with
// at most caps.MaxMembersPerRequest changes: one "add" of path "members"
// carrying the ids to add, then one "remove" per id with path
// `members[value eq "<id>"]`. Member references carry caps.MemberType.
// nil when there is nothing to change.
func MemberPatches(add, remove []string, caps Capabilities) [][]PatchOp {
	limit := caps.MaxMembersPerRequest
	if limit <= 0 {
		limit = DefaultMaxMembersPerRequest
	}
	var reqs [][]PatchOp
	var cur []PatchOp
	n := 0
	flush := func() {
		if len(cur) > 0 {
			reqs = append(reqs, cur)
		}
		cur, n = nil, 0
	}
	for len(add) > 0 {
		take := min(limit-n, len(add))
		cur = append(cur, PatchOp{Op: OpAdd, Path: "members", Value: MemberRefs(add[:take], caps)})
		add, n = add[take:], n+take
		if n == limit {
			flush()
		}
	}
	for _, id := range remove {
		cur = append(cur, RemoveMemberOp(id))
		if n++; n == limit {
			flush()
		}
	}
	flush()
	return reqs
}

// AddMembers is MemberPatches(ids, nil, caps).
func AddMembers(ids []string, caps Capabilities) [][]PatchOp { return MemberPatches(ids, nil, caps) }

// RemoveMembers is MemberPatches(nil, ids, caps).
func RemoveMembers(ids []string, caps Capabilities) [][]PatchOp {
	return MemberPatches(nil, ids, caps)
}

// RemoveMemberOp is the operation removing one member:
// {"op":"remove","path":"members[value eq \"<id>\"]"}.
func RemoveMemberOp(id string) PatchOp {
	return PatchOp{Op: OpRemove, Path: string(ValuePath("members", Eq("value", id)))}
}

// UpdateMembers adds and removes members of group id by PATCH, chunked
// to the target's limits (Capabilities). It stops at the first failing
// request and returns its error; the requests before it took effect.
// When the target has no PATCH for members it returns an *Error wrapping
// ErrUnsupported: PUT the group with MemberRefs of the whole list instead.
func (c *Client) UpdateMembers(ctx context.Context, groupID string, add, remove []string) error {
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return err
	}
	if !caps.MemberPatch {
		return &Error{Op: "patch", Err: ErrUnsupported}
	}
	for _, ops := range MemberPatches(add, remove, caps) {
		if _, err := c.Patch(ctx, Groups, groupID, ops); err != nil {
			return err
		}
	}
	return nil
}
