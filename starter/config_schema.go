package starter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"

	"github.com/scimsync/scimsync/schemas"
)

// The configuration file is validated against schemas/config.schema.json, the schema that
// editors use too. gojsonschema says which keyword failed at which location; this file
// words that for a person, at the position the location was written (config_positions.go),
// reading what the message needs (the allowed values, the bounds, the x- hints) from the
// subschemas that applied there.

// fileSchema is the compiled configuration schema and its JSON, to read hints from.
type fileSchema struct {
	compiled *gojsonschema.Schema
	root     map[string]any

	mu  sync.Mutex
	ifs map[string]*gojsonschema.Schema // the if subschemas, compiled when first needed
}

// configSchema loads the embedded schema once. It is part of the binary and covered by
// tests (it is also checked against the draft-07 metaschema here), so a failure is a
// programming error and panics.
var configSchema = sync.OnceValue(func() *fileSchema {
	src := schemas.ConfigSchema()
	sl := gojsonschema.NewSchemaLoader()
	sl.Draft = gojsonschema.Draft7
	sl.AutoDetect = false
	sl.Validate = true
	compiled, err := sl.Compile(gojsonschema.NewBytesLoader(src))
	if err != nil {
		panic(fmt.Sprintf("starter: compile config.schema.json: %v", err))
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber() // bounds print as written: 1000000, not 1e+06
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		panic(fmt.Sprintf("starter: decode config.schema.json: %v", err))
	}
	return &fileSchema{compiled: compiled, root: root, ifs: map[string]*gojsonschema.Schema{}}
})

// schemaErrors validates the document and returns its errors as diagnostics, and the
// field paths that have one (so that the checks in Go leave those alone).
func (s *fileSchema) schemaErrors(file string, doc any, pos positions) ([]Diagnostic, map[string]bool) {
	res, err := s.compiled.Validate(gojsonschema.NewGoLoader(doc))
	if err != nil { // the document is made of JSON values only: cannot happen
		return []Diagnostic{{File: file, Message: "cannot validate the file: " + err.Error()}}, nil
	}
	errs := res.Errors()
	typeErr := map[string]bool{} // a value of the wrong type is that error only
	oneOf := map[string]bool{}
	for _, e := range errs {
		switch e.Type() {
		case "invalid_type":
			typeErr[location(e)] = true
		case "number_one_of":
			oneOf[location(e)] = true
		}
	}
	var out []Diagnostic
	bad := map[string]bool{}
	for _, e := range errs {
		loc := location(e)
		if e.Type() != "invalid_type" && typeErr[loc] {
			continue
		}
		if e.Type() == "required" && oneOf[loc] && s.oneOfBranchRequires(doc, loc, detail(e, "property")) {
			continue // said by the oneOf's own message
		}
		d, ok := s.describe(e, doc, pos)
		if !ok {
			continue
		}
		d.File = file
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
		bad[d.Field] = true
	}
	return out, bad
}

func location(e gojsonschema.ResultError) string { return e.Context().String(locSep) }

func detail(e gojsonschema.ResultError, key string) string {
	return fmt.Sprint(e.Details()[key])
}

// describe words one schema error. Errors that only wrap the errors of their branches
// (allOf, if/then) are left out: the branches' own errors say it.
func (s *fileSchema) describe(e gojsonschema.ResultError, doc any, pos positions) (Diagnostic, bool) {
	loc := location(e)
	at := pos[loc]
	d := Diagnostic{Field: at.field}
	place := func(n located) {
		if n.value != nil {
			d.Line, d.Column = n.value.Line, n.value.Column
		}
	}
	place(at)
	nodes := s.applied(doc, loc)
	invalid := func(keyword string) string {
		msg, _ := firstWith(nodes, keyword)["x-invalid"].(string)
		if strings.Contains(msg, "%q") {
			msg = fmt.Sprintf(msg, truncate(redactURL(at.value.Value), 70))
		}
		return msg
	}
	switch e.Type() {
	case "number_all_of", "condition_then", "condition_else":
		return d, false
	case "invalid_type":
		want, _ := firstWith(nodes, "x-expected")["x-expected"].(string)
		if want == "" {
			want = typePhrase(detail(e, "expected"))
		}
		d.Message = fmt.Sprintf("expected %s, got %s", want, kindName(at.value))
	case "required":
		prop := detail(e, "property")
		d.Field = join(at.field, prop)
		owner := s.requiredBy(nodes, prop)
		if key, _ := owner["x-at"].(string); key != "" {
			if n, ok := pos[child(loc, key)]; ok {
				place(n)
			}
		}
		d.Message = "required"
		if when, _ := owner["x-when"].(string); when != "" {
			d.Message += " " + when
		}
		if hint, _ := firstWith(s.applied(doc, child(loc, prop)), "x-required")["x-required"].(string); hint != "" {
			d.Message += ": " + hint
		}
	case "additional_property_not_allowed":
		prop := detail(e, "property")
		n := pos[child(loc, prop)]
		d.Field = n.field
		if n.key != nil {
			d.Line, d.Column = n.key.Line, n.key.Column
		}
		d.Message = "unknown field" + suggest(prop, knownFields(nodes))
	case "enum":
		allowed := enumValues(firstWith(nodes, "enum"))
		if at.value.Kind == yaml.ScalarNode {
			d.Message = fmt.Sprintf("unknown value %q: use %s", truncate(at.value.Value, 40), orList(allowed))
		} else {
			d.Message = fmt.Sprintf("expected %s, got %s", orList(allowed), kindName(at.value))
		}
	case "number_gte", "number_gt", "number_lte", "number_lt":
		d.Message = rangeMessage(firstWith(nodes, "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")) + ", got " + at.value.Value
	case "pattern":
		pattern := detail(e, "pattern")
		for _, n := range nodes {
			if n["pattern"] == pattern {
				d.Message, _ = n["x-invalid"].(string)
				if strings.Contains(d.Message, "%q") {
					d.Message = fmt.Sprintf(d.Message, truncate(redactURL(at.value.Value), 80))
				}
				break
			}
		}
		if d.Message == "" {
			d.Message = fmt.Sprintf("%q does not have the expected form (%s)", truncate(redactURL(at.value.Value), 80), pattern)
		}
	case "number_not":
		if d.Message = invalid("not"); d.Message == "" {
			d.Message = "not allowed here"
		}
	case "number_one_of":
		if d.Message = invalid("oneOf"); d.Message == "" {
			d.Message = "matches none, or more than one, of the forms allowed here"
		}
	case "string_gte":
		d.Message = "must not be empty"
	case "unique":
		j, _ := strconv.Atoi(detail(e, "j"))
		n := pos[child(loc, strconv.Itoa(j))]
		d.Field = n.field
		place(n)
		d.Message = fmt.Sprintf("%q is listed twice", truncate(n.value.Value, 70))
	default:
		d.Message = e.Description()
	}
	return d, true
}

// applied lists the subschemas that applied to the value at loc, in the order the schema
// has them: those reached through properties, items and additionalProperties along loc,
// and at each step those that $ref, allOf, anyOf and oneOf name, and the then or else that
// its if chose for the document.
func (s *fileSchema) applied(doc any, loc string) []map[string]any {
	value := doc
	set := s.expand(s.root, value, nil)
	for _, seg := range strings.Split(loc, locSep)[1:] {
		switch p := value.(type) {
		case map[string]any:
			value = p[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			value = nil
			if err == nil && i < len(p) {
				value = p[i]
			}
		default:
			value = nil
		}
		var next []map[string]any
		for _, n := range set {
			props, _ := n["properties"].(map[string]any)
			_, notIndex := strconv.Atoi(seg)
			switch ap, _ := n["additionalProperties"].(map[string]any); {
			case props[seg] != nil:
				next = s.expand(props[seg], value, next)
			case n["items"] != nil && notIndex == nil:
				next = s.expand(n["items"], value, next)
			case ap != nil:
				next = s.expand(ap, value, next)
			}
		}
		set = next
	}
	return set
}

func (s *fileSchema) expand(node, value any, out []map[string]any) []map[string]any {
	n, ok := node.(map[string]any)
	if !ok {
		return out
	}
	out = append(out, n)
	if ref, ok := n["$ref"].(string); ok {
		defs, _ := s.root["definitions"].(map[string]any)
		out = s.expand(defs[strings.TrimPrefix(ref, "#/definitions/")], value, out)
	}
	for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
		branches, _ := n[kw].([]any)
		for _, b := range branches {
			out = s.expand(b, value, out)
		}
	}
	if cond, ok := n["if"]; ok && value != nil {
		if s.holds(cond, value) {
			out = s.expand(n["then"], value, out)
		} else {
			out = s.expand(n["else"], value, out)
		}
	}
	return out
}

// holds reports whether value satisfies an if subschema. The configuration schema's if
// subschemas stand alone (no $ref), so each compiles on its own.
func (s *fileSchema) holds(cond, value any) bool {
	src, err := json.Marshal(cond)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sch := s.ifs[string(src)]
	if sch == nil {
		if sch, err = gojsonschema.NewSchema(gojsonschema.NewBytesLoader(src)); err != nil {
			return false
		}
		s.ifs[string(src)] = sch
	}
	res, err := sch.Validate(gojsonschema.NewGoLoader(value))
	return err == nil && res.Valid()
}

// requiredBy is the subschema whose required list names prop.
func (s *fileSchema) requiredBy(nodes []map[string]any, prop string) map[string]any {
	for _, n := range nodes {
		if req, _ := n["required"].([]any); slices.Contains(req, any(prop)) {
			return n
		}
	}
	return nil
}

// oneOfBranchRequires reports whether prop is required by a oneOf branch at loc rather than
// by the object itself.
func (s *fileSchema) oneOfBranchRequires(doc any, loc, prop string) bool {
	for _, n := range s.applied(doc, loc) {
		branches, _ := n["oneOf"].([]any)
		for _, b := range branches {
			if bm, _ := b.(map[string]any); bm != nil {
				if req, _ := bm["required"].([]any); slices.Contains(req, any(prop)) {
					return true
				}
			}
		}
	}
	return false
}

// firstWith is the first subschema that has one of the keywords.
func firstWith(nodes []map[string]any, keywords ...string) map[string]any {
	for _, n := range nodes {
		for _, kw := range keywords {
			if _, ok := n[kw]; ok {
				return n
			}
		}
	}
	return map[string]any{}
}

func knownFields(nodes []map[string]any) []string {
	var known []string
	for _, n := range nodes {
		props, _ := n["properties"].(map[string]any)
		for k := range props {
			if !slices.Contains(known, k) {
				known = append(known, k)
			}
		}
	}
	sort.Strings(known)
	return known
}

func enumValues(n map[string]any) []string {
	vals, _ := n["enum"].([]any)
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// typePhrase words a JSON Schema type, or a list of them ("[string,number]"): a string
// field takes a YAML number as its text, so it is "a string" to the reader.
func typePhrase(expected string) string {
	types := strings.Split(strings.Trim(expected, "[]"), ",")
	for _, t := range []struct{ name, phrase string }{
		{"string", "a string"}, {"object", "a mapping of fields"}, {"array", "a list"},
		{"integer", "a whole number"}, {"number", "a number"}, {"boolean", "true or false"},
	} {
		if slices.Contains(types, t.name) {
			return t.phrase
		}
	}
	return expected
}

// rangeMessage words the bounds of a number, with what it counts.
func rangeMessage(n map[string]any) string {
	bound := func(k string) string {
		if v, ok := n[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	}
	lo, exLo, hi := bound("minimum"), bound("exclusiveMinimum"), bound("maximum")
	var msg string
	switch {
	case lo != "" && hi != "":
		msg = fmt.Sprintf("must be between %s and %s", lo, hi)
	case exLo != "" && hi != "":
		msg = fmt.Sprintf("must be more than %s and at most %s", exLo, hi)
	case lo != "":
		msg = fmt.Sprintf("must be %s or more", lo)
	case exLo != "":
		msg = fmt.Sprintf("must be more than %s", exLo)
	case hi != "":
		msg = fmt.Sprintf("must be at most %s", hi)
	}
	if unit, _ := n["x-unit"].(string); unit != "" {
		msg += " (" + unit + ")"
	}
	return msg
}

// suggest proposes the closest known key to a misspelt one, or lists them all.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := levenshtein(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (known fields: " + strings.Join(known, ", ") + ")"
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func orList(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}
