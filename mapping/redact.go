package mapping

import (
	"cmp"
	"slices"
	"strings"

	"go.starlark.net/syntax"
)

// redacted replaces personal values in error messages.
const redacted = "<redacted>"

// Values shorter than these are not redacted: they would garble messages
// ("de", "true") and say little about a person.
const (
	minRedactLen          = 3
	minRedactAttributeLen = 4
)

// userSecrets lists the personal values of u that error messages must not
// show: its username, name and each part of it, email, avatar and string
// attributes. The object id is allowed; the installation secret is never
// visible to a mapping, so it cannot appear.
func userSecrets(u *User) []string {
	out := []string{u.Username, u.Name, u.Email, u.Avatar}
	out = append(out, strings.Fields(u.Name)...)
	return stringLeaves(u.Attributes, out, 0)
}

// stringLeaves appends the string values found in v to out.
func stringLeaves(v any, out []string, depth int) []string {
	if depth > maxDepth {
		return out
	}
	switch v := v.(type) {
	case string:
		if len(v) >= minRedactAttributeLen {
			out = append(out, v)
		}
	case []string:
		for _, s := range v {
			out = stringLeaves(s, out, depth+1)
		}
	case []any:
		for _, e := range v {
			out = stringLeaves(e, out, depth+1)
		}
	case map[string]any:
		for _, e := range v {
			out = stringLeaves(e, out, depth+1)
		}
	}
	return out
}

// redact replaces each value of personal in msg, as written and as Starlark
// quotes it, longest first so that a name is replaced before its parts.
func redact(msg string, personal []string) string {
	var olds []string
	for _, s := range personal {
		if len(s) < minRedactLen {
			continue
		}
		olds = append(olds, s)
		if q := syntax.Quote(s, false); q[1:len(q)-1] != s {
			olds = append(olds, q[1:len(q)-1])
		}
	}
	slices.SortFunc(olds, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, s := range olds {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return msg
}
