package mapping

import "slices"

// deepMerge merges src into dst: dicts recursively, lists appended, anything
// else (scalars, None, or values of different types) overridden by src. Both
// maps come fresh from a mapping's result, so src's values are moved into dst
// without copying.
func deepMerge(dst, src map[string]any) {
	for k, sv := range src {
		switch s := sv.(type) {
		case map[string]any:
			if d, ok := dst[k].(map[string]any); ok {
				deepMerge(d, s)
				continue
			}
		case []any:
			if d, ok := dst[k].([]any); ok {
				dst[k] = append(d, s...)
				continue
			}
		}
		dst[k] = sv
	}
}

// removeNone deletes None values from dicts and None elements from lists, at
// every depth. Containers left empty are kept: {"name": {}} stays as it is.
func removeNone(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			removeNone(v)
		case []any:
			if out := removeNoneList(v); len(out) != len(v) {
				m[k] = out
			}
		}
	}
}

// removeNoneList filters v in place and returns the shortened list.
func removeNoneList(v []any) []any {
	out := v[:0]
	for _, e := range v {
		switch e := e.(type) {
		case nil:
			continue
		case map[string]any:
			removeNone(e)
		case []any:
			out = append(out, removeNoneList(e))
			continue
		}
		out = append(out, e)
	}
	clear(v[len(out):])
	return out
}

// dedupeSchemas removes repeated URNs from the top-level "schemas" list, which
// RFC 7643 §3 defines as a set: two mappings that both list the core schema
// URN (lists are appended) must not send it twice.
func dedupeSchemas(payload map[string]any) {
	list, ok := payload["schemas"].([]any)
	if !ok || len(list) < 2 {
		return
	}
	out := make([]any, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok && slices.Contains(out, any(s)) {
			continue
		}
		out = append(out, v)
	}
	payload["schemas"] = out
}
