package mapping

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"go.starlark.net/starlark"
)

// User is the directory user a user mapping sees. The zero value is a valid
// user with empty fields.
type User struct {
	ID       string
	Username string
	Name     string // full name
	Email    string
	IsActive bool
	Type     string // e.g. "internal", "external", "service_account"
	Locale   string
	Avatar   string // URL (or data URI) of the avatar
	// Attributes are free-form attributes, as decoded from JSON: nil, bool,
	// string, float64, json.Number, any Go integer, []any, []string and
	// map[string]any, nested at most 64 levels.
	Attributes map[string]any
	// Groups are the names of the user's groups, in any order; mappings see
	// them sorted.
	Groups []string
}

// Group is the directory group a group mapping sees.
type Group struct {
	ID         string
	Name       string
	ParentName string // "" for a top-level group
	Attributes map[string]any
}

// Provider is the SCIM provider a mapping runs for.
type Provider struct {
	Name              string
	CompatibilityMode string // "default", "aws", "slack", ...
}

// userValue is the read-only Starlark value of a User. Attributes and groups
// are converted on first use: the default mapping reads neither.
type userValue struct {
	u      *User
	uid    string
	attrs  starlark.Value
	groups starlark.Value
}

var userAttrNames = []string{"attributes", "avatar", "email", "groups", "id", "is_active", "locale", "name", "type", "uid", "username"}

func (v *userValue) String() string        { return "<user>" } // no personal data in messages
func (v *userValue) Type() string          { return "user" }
func (v *userValue) Freeze()               {}
func (v *userValue) Truth() starlark.Bool  { return true }
func (v *userValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: user") }
func (v *userValue) AttrNames() []string   { return userAttrNames }

func (v *userValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "id":
		return starlark.String(v.u.ID), nil
	case "uid":
		return starlark.String(v.uid), nil
	case "username":
		return starlark.String(v.u.Username), nil
	case "name":
		return starlark.String(v.u.Name), nil
	case "email":
		return starlark.String(v.u.Email), nil
	case "is_active":
		return starlark.Bool(v.u.IsActive), nil
	case "type":
		return starlark.String(v.u.Type), nil
	case "locale":
		return starlark.String(v.u.Locale), nil
	case "avatar":
		return starlark.String(v.u.Avatar), nil
	case "attributes":
		if v.attrs == nil {
			d, err := attributesValue(v.u.Attributes)
			if err != nil {
				return nil, err
			}
			v.attrs = d
		}
		return v.attrs, nil
	case "groups":
		if v.groups == nil {
			names := slices.Clone(v.u.Groups)
			slices.Sort(names)
			elems := make([]starlark.Value, len(names))
			for i, n := range names {
				elems[i] = starlark.String(n)
			}
			l := starlark.NewList(elems)
			l.Freeze()
			v.groups = l
		}
		return v.groups, nil
	}
	return nil, nil // starlark reports "user has no .x field or method"
}

// groupValue is the read-only Starlark value of a Group.
type groupValue struct {
	g     *Group
	attrs starlark.Value
}

var groupAttrNames = []string{"attributes", "id", "name", "parent_name"}

func (v *groupValue) String() string        { return "<group>" }
func (v *groupValue) Type() string          { return "group" }
func (v *groupValue) Freeze()               {}
func (v *groupValue) Truth() starlark.Bool  { return true }
func (v *groupValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: group") }
func (v *groupValue) AttrNames() []string   { return groupAttrNames }

func (v *groupValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "id":
		return starlark.String(v.g.ID), nil
	case "name":
		return starlark.String(v.g.Name), nil
	case "parent_name":
		return starlark.String(v.g.ParentName), nil
	case "attributes":
		if v.attrs == nil {
			d, err := attributesValue(v.g.Attributes)
			if err != nil {
				return nil, err
			}
			v.attrs = d
		}
		return v.attrs, nil
	}
	return nil, nil
}

// providerValue is the read-only Starlark value of a Provider.
type providerValue struct{ p *Provider }

var providerAttrNames = []string{"compatibility_mode", "name"}

func (v providerValue) String() string        { return "<provider>" }
func (v providerValue) Type() string          { return "provider" }
func (v providerValue) Freeze()               {}
func (v providerValue) Truth() starlark.Bool  { return true }
func (v providerValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: provider") }
func (v providerValue) AttrNames() []string   { return providerAttrNames }

func (v providerValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(v.p.Name), nil
	case "compatibility_mode":
		return starlark.String(v.p.CompatibilityMode), nil
	}
	return nil, nil
}

// maxDepth bounds the nesting of values converted in either direction; it
// also stops a self-containing list (x.append(x)) from recursing forever.
const maxDepth = 64

// attributesValue converts attributes to a frozen Starlark dict whose keys are
// in sorted order, so that mappings iterating over it are deterministic.
func attributesValue(attrs map[string]any) (starlark.Value, error) {
	v, err := toStarlark(attrs, 0)
	if err != nil {
		return nil, fmt.Errorf("attributes%s", err)
	}
	v.Freeze()
	return v, nil
}

// toStarlark converts a JSON-like Go value. Its errors start with the path of
// the offending value (".key", "[2]") so that callers can prefix a name.
func toStarlark(x any, depth int) (starlark.Value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf(": nested deeper than %d levels", maxDepth)
	}
	switch x := x.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(x), nil
	case string:
		return starlark.String(x), nil
	case float64:
		// JSON numbers decode as float64; whole numbers become ints, as in Python.
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return starlark.MakeInt64(int64(x)), nil
		}
		return starlark.Float(x), nil
	case float32:
		return toStarlark(float64(x), depth)
	case int:
		return starlark.MakeInt(x), nil
	case int8:
		return starlark.MakeInt64(int64(x)), nil
	case int16:
		return starlark.MakeInt64(int64(x)), nil
	case int32:
		return starlark.MakeInt64(int64(x)), nil
	case int64:
		return starlark.MakeInt64(x), nil
	case uint:
		return starlark.MakeUint64(uint64(x)), nil
	case uint8:
		return starlark.MakeUint64(uint64(x)), nil
	case uint16:
		return starlark.MakeUint64(uint64(x)), nil
	case uint32:
		return starlark.MakeUint64(uint64(x)), nil
	case uint64:
		return starlark.MakeUint64(x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return starlark.MakeInt64(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf(": invalid number")
		}
		return starlark.Float(f), nil
	case []string:
		elems := make([]starlark.Value, len(x))
		for i, s := range x {
			elems[i] = starlark.String(s)
		}
		return starlark.NewList(elems), nil
	case []any:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			v, err := toStarlark(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]%w", i, err)
			}
			elems[i] = v
		}
		return starlark.NewList(elems), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := starlark.NewDict(len(x))
		for _, k := range keys {
			v, err := toStarlark(x[k], depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%s]%w", strconv.Quote(k), err)
			}
			if err := d.SetKey(starlark.String(k), v); err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf(": unsupported value of Go type %T", x)
}

// toGo converts a mapping's result to plain JSON-ready Go values: nil, bool,
// string, int64, float64, []any and map[string]any. Its errors start with the
// path of the offending value.
func toGo(v starlark.Value, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf(": nested deeper than %d levels (does a list contain itself?)", maxDepth)
	}
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(v), nil
	case starlark.String:
		return string(v), nil
	case starlark.Int:
		i, ok := v.Int64()
		if !ok {
			return nil, fmt.Errorf(": integer out of the 64-bit range")
		}
		return i, nil
	case starlark.Float:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf(": %s cannot be written as JSON", v)
		}
		return f, nil
	case *starlark.List:
		return listToGo(v.Len(), v.Index, depth)
	case starlark.Tuple:
		return listToGo(v.Len(), v.Index, depth)
	case *starlark.Dict:
		return dictToGo(v, depth)
	}
	return nil, fmt.Errorf(": a %s is not a JSON value (want dict, list, string, int, float, bool or None)", v.Type())
}

func listToGo(n int, index func(int) starlark.Value, depth int) ([]any, error) {
	out := make([]any, n)
	for i := range n {
		x, err := toGo(index(i), depth+1)
		if err != nil {
			return nil, fmt.Errorf("[%d]%w", i, err)
		}
		out[i] = x
	}
	return out, nil
}

func dictToGo(d *starlark.Dict, depth int) (map[string]any, error) {
	out := make(map[string]any, d.Len())
	for k, v := range d.Entries() {
		key, ok := k.(starlark.String)
		if !ok {
			return nil, fmt.Errorf(": key %s is a %s, want a string", k, k.Type())
		}
		x, err := toGo(v, depth+1)
		if err != nil {
			return nil, fmt.Errorf("[%s]%w", strconv.Quote(string(key)), err)
		}
		out[string(key)] = x
	}
	return out, nil
}
