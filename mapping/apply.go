package mapping

import (
	"fmt"
	"slices"
	"strings"
)

// Apply says when the attributes of a mapping are written to the target, as Entra's
// "apply this mapping" does.
type Apply string

// The values of Apply.
const (
	// ApplyAlways mappings are written by every create and update, and decide whether an
	// object is unchanged (Hash of Payloads.Always).
	ApplyAlways Apply = "always"
	// ApplyOnCreate mappings are written only by the create of an object at the target (an
	// initial password, a value the application owns afterwards): never by an update,
	// which neither changes nor removes them, and they do not count in whether an object
	// is unchanged.
	ApplyOnCreate Apply = "on_create"
)

// ParseApply parses the apply setting of a mapping; "" means ApplyAlways.
func ParseApply(s string) (Apply, error) {
	switch Apply(s) {
	case "", ApplyAlways:
		return ApplyAlways, nil
	case ApplyOnCreate:
		return ApplyOnCreate, nil
	}
	return "", fmt.Errorf("unknown apply %q: use %s or %s", s, ApplyAlways, ApplyOnCreate)
}

// Payloads is what a provider's mappings make of one object, split by when it is written.
type Payloads struct {
	// Always is the payload of every write, from the ApplyAlways mappings, externalId
	// defaulted: what updates send and compare, what is recorded as written and hashed.
	Always map[string]any
	// OnCreate holds the attributes that only ApplyOnCreate mappings set, added to Always
	// in a create (Create) and sent nowhere else; nil when there are none. Its "schemas",
	// if any, are added to those of Always in a create.
	OnCreate map[string]any
}

// Create returns the payload of a create: Always with the attributes of OnCreate added
// (those of an extension object merged into it) and both lists of schemas joined. It is
// Always itself when there is nothing to add; Always is never modified.
func (p Payloads) Create() map[string]any {
	if len(p.OnCreate) == 0 {
		return p.Always
	}
	out := make(map[string]any, len(p.Always)+len(p.OnCreate))
	for k, v := range p.Always {
		out[k] = v
	}
	for k, v := range p.OnCreate {
		ak, ok := lookupFold(out, k)
		if !ok {
			out[k] = v
			continue
		}
		switch cur := out[ak].(type) {
		case []any: // schemas: a set
			list := slices.Clone(cur)
			add, _ := v.([]any)
			for _, s := range add {
				if !slices.Contains(list, s) {
					list = append(list, s)
				}
			}
			out[ak] = list
		case map[string]any: // an extension object, different attributes of it
			ext := make(map[string]any, len(cur))
			for sk, sv := range cur {
				ext[sk] = sv
			}
			add, _ := v.(map[string]any)
			for sk, sv := range add {
				ext[sk] = sv
			}
			out[ak] = ext
		}
	}
	return out
}

// lookupFold returns the key of m that equals k case-insensitively (SCIM attribute names
// are, RFC 7643 §2.1), preferring an exact match.
func lookupFold(m map[string]any, k string) (string, bool) {
	if _, ok := m[k]; ok {
		return k, true
	}
	for mk := range m {
		if strings.EqualFold(mk, k) {
			return mk, true
		}
	}
	return "", false
}

func isURN(k string) bool { return strings.HasPrefix(strings.ToLower(k), "urn:") }

// attributePaths lists the attributes a mapping result sets, as split between always and
// on_create: its top-level attributes, and each attribute of an extension object
// ("urn:...:User:employeeNumber"), lower-cased. "schemas" is left out (joined, never a
// conflict) and so are None values (they set nothing).
func attributePaths(m map[string]any) []string {
	var out []string
	for k, v := range m {
		if v == nil || strings.EqualFold(k, "schemas") {
			continue
		}
		if ext, ok := v.(map[string]any); ok && isURN(k) {
			for sk, sv := range ext {
				if sv != nil {
					out = append(out, strings.ToLower(k)+":"+strings.ToLower(sk))
				}
			}
			continue
		}
		out = append(out, strings.ToLower(k))
	}
	return out
}

// conflict returns the first attribute (in name order) that both always and onCreate set,
// as written in onCreate: a top-level attribute, or an attribute of an extension object
// that both set ("urn:...:User:employeeNumber").
func conflict(always, onCreate map[string]any) (string, bool) {
	var found []string
	for k, v := range onCreate {
		if strings.EqualFold(k, "schemas") {
			continue
		}
		ak, ok := lookupFold(always, k)
		if !ok {
			continue
		}
		cext, cok := v.(map[string]any)
		aext, aok := always[ak].(map[string]any)
		if !isURN(k) || !cok || !aok {
			found = append(found, k)
			continue
		}
		for sk := range cext {
			if _, ok := lookupFold(aext, sk); ok {
				found = append(found, k+":"+sk)
			}
		}
	}
	if len(found) == 0 {
		return "", false
	}
	slices.Sort(found)
	return found[0], true
}
