package scim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Filter is a SCIM filter expression (RFC 7644 §3.4.2.2). Build it with
// the helpers below so values are always quoted and escaped; the
// attribute paths given to them are program text and are not checked.
// The zero Filter matches everything (no filter parameter is sent).
//
// A Filter holds values (e-mail addresses, names): never log it. Errors of
// this package never include it.
type Filter string

// String returns the filter text.
func (f Filter) String() string { return string(f) }

// Value formats v as a SCIM comparison value: strings as JSON strings
// (quotes, backslashes and control characters escaped; no HTML
// escaping), booleans and null as literals, numbers in plain notation.
// Other types are formatted as the JSON string of their fmt %v form.
func Value(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case string:
		return quote(x)
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) == 0 || b[0] == '{' || b[0] == '[' {
		return quote("")
	}
	return string(b)
}

// quote encodes s as a JSON string, as RFC 7644 requires for string values.
func quote(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

func compare(attr, op string, v any) Filter {
	return Filter(attr + " " + op + " " + Value(v))
}

// Eq is `attr eq value`, e.g. Eq("userName", `a"b`) is `userName eq "a\"b"`.
func Eq(attr string, value any) Filter { return compare(attr, "eq", value) }

// Ne is `attr ne value`.
func Ne(attr string, value any) Filter { return compare(attr, "ne", value) }

// Co is `attr co value` (contains).
func Co(attr string, value any) Filter { return compare(attr, "co", value) }

// Sw is `attr sw value` (starts with).
func Sw(attr string, value any) Filter { return compare(attr, "sw", value) }

// Ew is `attr ew value` (ends with).
func Ew(attr string, value any) Filter { return compare(attr, "ew", value) }

// Gt is `attr gt value`.
func Gt(attr string, value any) Filter { return compare(attr, "gt", value) }

// Ge is `attr ge value`.
func Ge(attr string, value any) Filter { return compare(attr, "ge", value) }

// Lt is `attr lt value`.
func Lt(attr string, value any) Filter { return compare(attr, "lt", value) }

// Le is `attr le value`.
func Le(attr string, value any) Filter { return compare(attr, "le", value) }

// Pr is `attr pr` (present).
func Pr(attr string) Filter { return Filter(attr + " pr") }

func join(op string, fs []Filter) Filter {
	var parts []string
	for _, f := range fs {
		if f == "" {
			continue
		}
		if op == "and" && hasTopLevelOr(string(f)) {
			f = "(" + f + ")"
		}
		parts = append(parts, string(f))
	}
	return Filter(strings.Join(parts, " "+op+" "))
}

// hasTopLevelOr reports whether f has an "or" outside quotes, parentheses
// and brackets, which "and" binds tighter than.
func hasTopLevelOr(f string) bool {
	depth, inStr := 0, false
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case depth == 0 && c == ' ' && i+3 < len(f) && strings.EqualFold(f[i+1:i+3], "or") && f[i+3] == ' ':
			return true
		}
	}
	return false
}

// And joins filters with "and"; empty filters are dropped and an operand
// holding a top-level "or" is put in parentheses, so And(Eq(a), Eq(b))
// stays `a eq "x" and b eq "y"`, the only shape some targets accept.
func And(fs ...Filter) Filter { return join("and", fs) }

// Or joins filters with "or"; empty filters are dropped.
func Or(fs ...Filter) Filter { return join("or", fs) }

// Not is `not (f)`.
func Not(f Filter) Filter { return Filter("not (" + string(f) + ")") }

// ValuePath is a filter on the values of a multi-valued attribute:
// ValuePath("emails", Eq("type", "work")) is `emails[type eq "work"]`.
func ValuePath(attr string, f Filter) Filter { return Filter(attr + "[" + string(f) + "]") }
