package scimtest

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// patchOp is one PATCH operation as received.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

// patchLocked applies a PatchOp message to resource id. Caller holds s.mu.
func (s *Server) patchLocked(kind, id string, req patchRequest, base string) (map[string]any, *apiError) {
	c := s.coll(kind)
	o := c.byID[id]
	if o == nil {
		return nil, errorf(http.StatusNotFound, "", "%s %s not found", c.resourceType(), id)
	}
	if !containsFold(req.Schemas, schemaPatchOp) {
		return nil, errorf(http.StatusBadRequest, "invalidSyntax", "schemas must be [%s]", schemaPatchOp)
	}
	if len(req.Operations) == 0 {
		return nil, errorf(http.StatusBadRequest, "invalidSyntax", "Operations is empty")
	}
	if s.quirks.MembersInlineOnly && kind == "Groups" && touchesMembers(req.Operations) {
		return nil, errorf(http.StatusBadRequest, "invalidValue", "members are written with the group (POST or PUT), not by PATCH")
	}
	if limit := s.quirks.MaxMembershipChanges; limit > 0 && kind == "Groups" {
		if n := membershipChanges(req.Operations, o.body); n > limit {
			return nil, errorf(http.StatusBadRequest, "tooMany", "at most %d membership changes per request, got %d", limit, n)
		}
	}
	body := copyMap(o.body)
	for i, op := range req.Operations {
		if err := applyOp(body, op); err != nil {
			err.detail = "operation " + strconv.Itoa(i) + ": " + err.detail
			return nil, err
		}
	}
	return s.replaceLocked(kind, id, body, base)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// touchesMembers reports whether an operation of ops changes members: its path starts
// with members, or it has no path and its value sets members.
func touchesMembers(ops []patchOp) bool {
	for _, op := range ops {
		if op.Path == "" {
			if m, ok := op.Value.(map[string]any); ok {
				for k := range m {
					if strings.EqualFold(k, "members") {
						return true
					}
				}
			}
			continue
		}
		if len(op.Path) >= len("members") && strings.EqualFold(op.Path[:len("members")], "members") {
			return true
		}
	}
	return false
}

// membershipChanges counts the member additions and removals of ops.
func membershipChanges(ops []patchOp, body map[string]any) int {
	n := 0
	count := func(v any) int {
		if arr, ok := v.([]any); ok {
			return len(arr)
		}
		if v == nil {
			return 0
		}
		return 1
	}
	for _, op := range ops {
		p := strings.ToLower(strings.TrimSpace(op.Path))
		switch {
		case p == "members":
			if strings.EqualFold(op.Op, "remove") && op.Value == nil {
				n += len(memberIDs(body))
			} else {
				n += count(op.Value)
			}
		case strings.HasPrefix(p, "members["):
			n++
		case p == "":
			if m, ok := op.Value.(map[string]any); ok {
				if v, ok := getCI(m, "members"); ok {
					n += count(v)
				}
			}
		}
	}
	return n
}

// applyOp applies one operation to body (a private deep copy).
func applyOp(body map[string]any, op patchOp) *apiError {
	name := strings.ToLower(op.Op)
	switch name {
	case "add", "replace", "remove":
	default:
		return errorf(http.StatusBadRequest, "invalidSyntax", "unknown op")
	}
	if strings.TrimSpace(op.Path) == "" {
		if name == "remove" {
			return errorf(http.StatusBadRequest, "noTarget", "remove needs a path")
		}
		m, ok := op.Value.(map[string]any)
		if !ok {
			return errorf(http.StatusBadRequest, "invalidValue", "a no-path operation needs an object value")
		}
		for k, v := range m {
			if strings.HasPrefix(strings.ToLower(k), "urn:") {
				if sub, ok := v.(map[string]any); ok && !isCoreSchema(k) {
					// An extension object: apply each of its attributes.
					for sk, sv := range sub {
						if err := applyPath(body, name, k+":"+sk, sv); err != nil {
							return err
						}
					}
					continue
				}
			}
			if err := applyPath(body, name, k, v); err != nil {
				return err
			}
		}
		return nil
	}
	return applyPath(body, name, op.Path, op.Value)
}

// parsePatchPath splits `attr`, `attr.sub`, `urn:...:attr`, `attr[filter]`
// and `attr[filter].sub`.
func parsePatchPath(path string) (attrPath string, filter *Filter, sub string, err *apiError) {
	i := strings.IndexByte(path, '[')
	if i < 0 {
		return strings.TrimSpace(path), nil, "", nil
	}
	j, inStr := -1, false
	for k := i + 1; k < len(path); k++ {
		switch c := path[k]; {
		case inStr && c == '\\':
			k++
		case c == '"':
			inStr = !inStr
		case !inStr && c == ']':
			j = k
		}
		if j >= 0 {
			break
		}
	}
	if j < 0 {
		return "", nil, "", errorf(http.StatusBadRequest, "invalidPath", "unterminated value filter")
	}
	f, perr := ParseFilter(path[i+1 : j])
	if perr != nil {
		return "", nil, "", errorf(http.StatusBadRequest, "invalidFilter", "value filter: %v", perr)
	}
	rest := path[j+1:]
	if rest != "" {
		if !strings.HasPrefix(rest, ".") || len(rest) == 1 {
			return "", nil, "", errorf(http.StatusBadRequest, "invalidPath", "bad text after value filter")
		}
		sub = rest[1:]
	}
	return strings.TrimSpace(path[:i]), f, sub, nil
}

func applyPath(body map[string]any, op, path string, value any) *apiError {
	attrPath, filter, fsub, perr := parsePatchPath(path)
	if perr != nil {
		return perr
	}
	urn, attr, sub := splitAttrPath(attrPath)
	if attr == "" {
		return errorf(http.StatusBadRequest, "invalidPath", "empty attribute")
	}
	if filter != nil && sub != "" {
		return errorf(http.StatusBadRequest, "invalidPath", "sub-attribute before value filter")
	}
	if strings.EqualFold(attr, "id") || strings.EqualFold(attr, "meta") || strings.EqualFold(attr, "schemas") {
		if urn == "" {
			return errorf(http.StatusBadRequest, "mutability", "%s is read-only", attr)
		}
	}
	container := body
	if urn != "" {
		ext, ok := getCI(body, urn)
		m, isMap := ext.(map[string]any)
		if !ok || !isMap {
			if op == "remove" {
				return nil
			}
			m = map[string]any{}
			body[urn] = m
			addSchema(body, urn)
		}
		container = m
	}
	key := keyCI(container, attr)
	if filter != nil {
		return applyFiltered(container, key, op, filter, fsub, value)
	}
	if sub != "" {
		parent, _ := container[key].(map[string]any)
		if parent == nil {
			if _, isArr := container[key].([]any); isArr {
				return errorf(http.StatusBadRequest, "invalidPath", "sub-attribute of a multi-valued attribute needs a value filter")
			}
			if op == "remove" {
				return nil
			}
			parent = map[string]any{}
			container[key] = parent
		}
		return applyPlain(parent, keyCI(parent, sub), op, value)
	}
	return applyPlain(container, key, op, value)
}

func addSchema(body map[string]any, urn string) {
	v, _ := getCI(body, "schemas")
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok && strings.EqualFold(s, urn) {
			return
		}
	}
	body[keyCI(body, "schemas")] = append(list, urn)
}

// applyPlain applies op to container[key] (no value filter).
func applyPlain(container map[string]any, key, op string, value any) *apiError {
	existing, exists := container[key]
	switch op {
	case "remove":
		if arr, ok := existing.([]any); ok && value != nil {
			// Entra style: remove the listed values of a multi-valued attribute.
			drop := asList(value)
			kept := make([]any, 0, len(arr))
			for _, e := range arr {
				if !containsValue(drop, e) {
					kept = append(kept, e)
				}
			}
			container[key] = kept
			return nil
		}
		delete(container, key)
		return nil
	case "add":
		if arr, ok := existing.([]any); ok && exists {
			for _, v := range asList(value) {
				if !containsValue(arr, v) {
					arr = append(arr, v)
				}
			}
			container[key] = arr
			return nil
		}
		fallthrough
	case "replace":
		if em, ok := existing.(map[string]any); ok {
			if vm, ok := value.(map[string]any); ok {
				for k, v := range vm {
					em[keyCI(em, k)] = v
				}
				return nil
			}
		}
		if value == nil {
			delete(container, key)
			return nil
		}
		container[key] = value
	}
	return nil
}

// applyFiltered applies op to the values of container[key] matching f.
func applyFiltered(container map[string]any, key, op string, f *Filter, sub string, value any) *apiError {
	arr, _ := container[key].([]any)
	var matched []int
	for i, e := range arr {
		if m, ok := e.(map[string]any); ok && f.Match(m) {
			matched = append(matched, i)
		}
	}
	if op == "remove" {
		if len(matched) == 0 {
			return nil // already gone: removal is idempotent
		}
		kept := make([]any, 0, len(arr))
		mi := 0
		for i, e := range arr {
			if mi < len(matched) && matched[mi] == i {
				mi++
				if sub == "" {
					continue
				}
				m := e.(map[string]any)
				delete(m, keyCI(m, sub))
			}
			kept = append(kept, e)
		}
		container[key] = kept
		return nil
	}
	if len(matched) == 0 {
		return errorf(http.StatusBadRequest, "noTarget", "value filter matched nothing")
	}
	for _, i := range matched {
		m := arr[i].(map[string]any)
		if sub != "" {
			m[keyCI(m, sub)] = value
			continue
		}
		vm, ok := value.(map[string]any)
		if !ok {
			return errorf(http.StatusBadRequest, "invalidValue", "value must be an object")
		}
		for k, v := range vm {
			m[keyCI(m, k)] = v
		}
	}
	return nil
}

func asList(v any) []any {
	if arr, ok := v.([]any); ok {
		return arr
	}
	return []any{v}
}

// containsValue reports whether list holds v; objects with a "value" are
// compared by it, others deeply.
func containsValue(list []any, v any) bool {
	vv := valueKey(v)
	for _, e := range list {
		if vv != nil && reflect.DeepEqual(valueKey(e), vv) {
			return true
		}
		if reflect.DeepEqual(e, v) {
			return true
		}
	}
	return false
}

func valueKey(v any) any {
	if m, ok := v.(map[string]any); ok {
		if x, ok := getCI(m, "value"); ok {
			return x
		}
	}
	return nil
}
