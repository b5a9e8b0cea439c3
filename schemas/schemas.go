// Package schemas validates SCIM payloads against JSON Schemas (draft-07)
// written from RFC 7643 §4 and §8.7: the core User with the enterprise
// extension, and the Group.
//
// The schemas are embedded and compiled once per process; ValidateUser and
// ValidateGroup are safe for concurrent use. Beyond the JSON Schemas, the Go
// side checks what draft-07 cannot say: every extension key (an attribute
// name starting with "urn:") must be listed in "schemas", and at most one
// value of a multi-valued attribute may be primary (RFC 7643 §2.4).
//
// Attribute names are matched in their canonical case ("userName", not
// "username"): RFC 7643 calls them case-insensitive, but an outbound client
// should send the canonical spelling, and a strict match catches typos in
// mappings. Unknown core attributes are refused for the same reason; custom
// attributes belong in an extension.
//
// This package does no I/O and knows nothing of mappings or SCIM servers.
package schemas

import (
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonschema"
)

// Schema URNs (RFC 7643 §8.7.1).
const (
	UserURN           = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

//go:embed *.schema.json
var files embed.FS

// A FieldError is one reason a payload is invalid. Path names the attribute
// with dots and list indexes, e.g. "emails", "name.givenName",
// "members.0.value"; it is "" for the payload as a whole. Msg never repeats
// the attribute's value.
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) String() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// A ValidationError lists why a payload does not conform to the schema of its
// resource type ("User" or "Group"). Errors is never empty and sorted by path.
type ValidationError struct {
	Resource string
	Errors   []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	return fmt.Sprintf("schemas: invalid SCIM %s: %s", e.Resource, strings.Join(parts, "; "))
}

// ValidateUser reports whether payload is a valid SCIM User (core schema with
// the enterprise extension; other extensions when listed in "schemas"). It
// returns nil or a *ValidationError.
func ValidateUser(payload map[string]any) error {
	return validate("User", compiled().user, payload)
}

// ValidateGroup reports whether payload is a valid SCIM Group. It returns nil
// or a *ValidationError.
func ValidateGroup(payload map[string]any) error {
	return validate("Group", compiled().group, payload)
}

type schemaSet struct{ user, group *gojsonschema.Schema }

// compiled loads the embedded schemas once. They are part of the binary and
// covered by tests, so a failure is a programming error and panics.
var compiled = sync.OnceValue(func() schemaSet {
	load := func(name string) gojsonschema.JSONLoader {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("schemas: read %s: %v", name, err))
		}
		return gojsonschema.NewBytesLoader(b)
	}
	compile := func(root string) *gojsonschema.Schema {
		sl := gojsonschema.NewSchemaLoader()
		sl.Draft = gojsonschema.Draft7
		sl.AutoDetect = false
		sl.Validate = true // check each schema against the draft-07 metaschema
		if err := sl.AddSchemas(load("common.schema.json"), load("enterprise-user.schema.json")); err != nil {
			panic(fmt.Sprintf("schemas: add shared schemas: %v", err))
		}
		s, err := sl.Compile(load(root))
		if err != nil {
			panic(fmt.Sprintf("schemas: compile %s: %v", root, err))
		}
		return s
	}
	return schemaSet{user: compile("user.schema.json"), group: compile("group.schema.json")}
})

func validate(resource string, schema *gojsonschema.Schema, payload map[string]any) error {
	doc, ok := normalize(payload)
	var loader gojsonschema.JSONLoader
	if ok {
		loader = gojsonschema.NewRawLoader(doc)
	} else {
		// Values of other Go types (structs, typed slices): let encoding/json
		// turn them into JSON values first.
		loader = gojsonschema.NewGoLoader(payload)
	}
	result, err := schema.Validate(loader)
	if err != nil {
		return &ValidationError{Resource: resource, Errors: []FieldError{{Msg: "not a JSON document: " + err.Error()}}}
	}
	var errs []FieldError
	for _, re := range result.Errors() {
		switch re.Type() {
		case "number_all_of", "const":
			// Noise: an allOf failure repeats its parts' errors, and a failed
			// "contains" (the only user of const) adds one item's mismatch.
			continue
		}
		errs = append(errs, fieldError(re))
	}
	errs = append(errs, checkExtensions(payload)...)
	errs = append(errs, checkPrimary(payload)...)
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b FieldError) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Msg, b.Msg))
	})
	errs = slices.Compact(errs)
	return &ValidationError{Resource: resource, Errors: errs}
}

// fieldError turns a gojsonschema error into a FieldError whose path names the
// attribute itself, also for "required" and "additional property" errors,
// which gojsonschema reports on the enclosing object.
func fieldError(re gojsonschema.ResultError) FieldError {
	path := re.Field()
	if path == gojsonschema.STRING_CONTEXT_ROOT {
		path = ""
	}
	child := func() string {
		p, _ := re.Details()["property"].(string)
		if path == "" {
			return p
		}
		return path + "." + p
	}
	switch re.Type() {
	case "required":
		return FieldError{Path: child(), Msg: "is required"}
	case "additional_property_not_allowed":
		return FieldError{Path: child(), Msg: "is not an attribute of the schema (custom attributes go in an extension listed in schemas)"}
	case "contains":
		if path == "schemas" {
			return FieldError{Path: path, Msg: "must list the resource's core schema URN"}
		}
	case "string_gte":
		if re.Details()["min"] == 1 {
			return FieldError{Path: path, Msg: "must not be empty"}
		}
	}
	return FieldError{Path: path, Msg: re.Description()}
}

// checkExtensions requires every extension key of payload to be listed in
// its "schemas" (RFC 7643 §3). Keys are checked in sorted order.
func checkExtensions(payload map[string]any) []FieldError {
	listed, _ := payload["schemas"].([]any)
	var errs []FieldError
	for key := range payload {
		if !strings.HasPrefix(key, "urn:") || slices.Contains(listed, any(key)) {
			continue
		}
		errs = append(errs, FieldError{Path: key, Msg: "extension is not listed in schemas"})
	}
	return errs
}

// checkPrimary allows at most one primary value per multi-valued attribute
// (RFC 7643 §2.4), e.g. when two mappings each append a primary email.
func checkPrimary(payload map[string]any) []FieldError {
	var errs []FieldError
	for key, v := range payload {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		n := 0
		for _, item := range list {
			if m, ok := item.(map[string]any); ok && m["primary"] == true {
				n++
			}
		}
		if n > 1 {
			errs = append(errs, FieldError{Path: key, Msg: fmt.Sprintf("%d values are primary; at most one may be", n)})
		}
	}
	return errs
}

// normalize returns payload as gojsonschema expects a decoded document:
// numbers as json.Number, lists as []any, objects as map[string]any. It
// copies only the containers that hold a value to convert, and reports false
// for a value of any other Go type (or a NaN or infinite float).
func normalize(payload map[string]any) (map[string]any, bool) {
	v, _, ok := normalizeValue(payload)
	if !ok {
		return nil, false
	}
	return v.(map[string]any), true
}

// normalizeValue returns v converted and whether that changed it.
func normalizeValue(v any) (out any, changed, ok bool) {
	switch v := v.(type) {
	case nil, bool, string, json.Number:
		return v, false, true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false, false
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), true, true
	case int:
		return json.Number(strconv.Itoa(v)), true, true
	case int64:
		return json.Number(strconv.FormatInt(v, 10)), true, true
	case []any:
		var out []any // a copy, made at the first changed element
		for i, e := range v {
			n, changed, ok := normalizeValue(e)
			if !ok {
				return nil, false, false
			}
			if changed && out == nil {
				out = slices.Clone(v)
			}
			if out != nil {
				out[i] = n
			}
		}
		if out == nil {
			return v, false, true
		}
		return out, true, true
	case map[string]any:
		var out map[string]any
		for k, e := range v {
			n, changed, ok := normalizeValue(e)
			if !ok {
				return nil, false, false
			}
			if changed && out == nil {
				out = maps.Clone(v)
			}
			if out != nil {
				out[k] = n
			}
		}
		if out == nil {
			return v, false, true
		}
		return out, true, true
	}
	return nil, false, false
}
