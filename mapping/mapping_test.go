package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
)

const (
	secret = "test-secret"
	// uid1 is sha256("u-1-test-secret"), computed with sha256sum.
	uid1 = "6cc2dfb4b4554e0b9a3b023f7409f4af8b58cfa5208b652b072eb8b6556f1375"
)

var provider = mapping.Provider{Name: "acme", CompatibilityMode: "default"}

// canonical returns the canonical JSON of v (sorted keys), for comparisons.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return string(b)
}

// canonicalString re-encodes a JSON document canonically.
func canonicalString(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, doc)
	}
	return canonical(t, v)
}

func compile(t *testing.T, name string, kind object.Kind, src string) *mapping.Program {
	t.Helper()
	p, err := mapping.Compile(name, kind, src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", name, err)
	}
	return p
}

func TestDefaultUserMapping(t *testing.T) {
	full := mapping.User{
		ID: "u-1", Username: "alice", Name: "Alice Smith", Email: "alice@example.com",
		IsActive: true, Type: "internal", Locale: "en-GB", Avatar: "https://cdn.example.com/a.png",
	}
	tests := []struct {
		name string
		edit func(u *mapping.User)
		want string
	}{
		{
			name: "every field",
			edit: func(*mapping.User) {},
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"name": {"formatted": "Alice Smith", "givenName": "Alice", "familyName": "Smith"},
				"displayName": "Alice Smith",
				"emails": [{"value": "alice@example.com", "type": "other", "primary": true}],
				"photos": [{"value": "https://cdn.example.com/a.png", "type": "photo", "primary": true}],
				"locale": "en-GB",
				"active": true
			}`,
		},
		{
			name: "no name, email, avatar or locale; inactive",
			edit: func(u *mapping.User) { u.Name, u.Email, u.Avatar, u.Locale, u.IsActive = "", "", "", "", false },
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"active": false
			}`,
		},
		{
			name: "blank name",
			edit: func(u *mapping.User) { u.Name = "   " },
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"emails": [{"value": "alice@example.com", "type": "other", "primary": true}],
				"photos": [{"value": "https://cdn.example.com/a.png", "type": "photo", "primary": true}],
				"locale": "en-GB",
				"active": true
			}`,
		},
		{
			name: "one-word name has no familyName",
			edit: func(u *mapping.User) { u.Name, u.Email, u.Avatar, u.Locale = "Cher", "", "", "" },
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"name": {"formatted": "Cher", "givenName": "Cher"},
				"displayName": "Cher",
				"active": true
			}`,
		},
		{
			name: "name split at the first space, outer spaces trimmed",
			edit: func(u *mapping.User) { u.Name, u.Email, u.Avatar, u.Locale = " Mary Ann  Smith ", "", "", "" },
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"name": {"formatted": "Mary Ann  Smith", "givenName": "Mary", "familyName": "Ann  Smith"},
				"displayName": "Mary Ann  Smith",
				"active": true
			}`,
		},
		{
			name: "email only",
			edit: func(u *mapping.User) { u.Name, u.Avatar, u.Locale = "", "", "" },
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"emails": [{"value": "alice@example.com", "type": "other", "primary": true}],
				"active": true
			}`,
		},
		{
			name: "avatar that is not a URL is left out",
			edit: func(u *mapping.User) {
				u.Avatar, u.Email, u.Name, u.Locale = "data:image/svg+xml;base64,PHN2Zz4=", "", "", ""
			},
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"active": true
			}`,
		},
		{
			name: "http avatar and locale only",
			edit: func(u *mapping.User) { u.Avatar, u.Email, u.Name = "http://intranet/a.png", "", "" },
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"externalId": "` + uid1 + `",
				"userName": "alice",
				"photos": [{"value": "http://intranet/a.png", "type": "photo", "primary": true}],
				"locale": "en-GB",
				"active": true
			}`,
		},
	}
	e := &mapping.Engine{Secret: secret}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := full
			tt.edit(&u)
			got, err := e.MapUser(context.Background(), mapping.Defaults(object.User), u, provider)
			if err != nil {
				t.Fatalf("MapUser: %v", err)
			}
			if g, w := canonical(t, got), canonicalString(t, tt.want); g != w {
				t.Errorf("payload\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestDefaultGroupMapping(t *testing.T) {
	e := &mapping.Engine{Secret: secret}
	g := mapping.Group{ID: "g-7", Name: "Engineering", ParentName: "Staff"}
	got, err := e.MapGroup(context.Background(), mapping.Defaults(object.Group), g, provider)
	if err != nil {
		t.Fatalf("MapGroup: %v", err)
	}
	want := `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "externalId": "g-7"}`
	if g, w := canonical(t, got), canonicalString(t, want); g != w {
		t.Errorf("payload\n got %s\nwant %s", g, w)
	}
}

func TestDefaultsCompiledOnce(t *testing.T) {
	a, b := mapping.Defaults(object.User), mapping.Defaults(object.User)
	if len(a) != 1 || a[0] != b[0] {
		t.Fatalf("Defaults(user) = %v then %v, want the same single program", a, b)
	}
	if got := a[0].Name(); got != mapping.DefaultUserMappingName {
		t.Errorf("Name() = %q, want %q", got, mapping.DefaultUserMappingName)
	}
	if got := mapping.Defaults("device"); got != nil {
		t.Errorf("Defaults(device) = %v, want nil", got)
	}
}

func TestMerge(t *testing.T) {
	u := mapping.User{ID: "u-1", Username: "alice", Name: "Alice Smith", Email: "alice@example.com", IsActive: true}
	tests := []struct {
		name     string
		mappings map[string]string // name → source; passed in reverse name order
		want     string
	}{
		{
			name: "dicts merged, lists appended, scalars overridden, in name order",
			mappings: map[string]string{
				"10-base": `return {
					"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
					"userName": user.username,
					"title": "Engineer",
					"name": {"givenName": "Alice", "familyName": "Smith"},
					"emails": [{"value": user.email, "type": "work", "primary": True}],
				}`,
				"20-extra": `return {
					"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
					            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
					"title": "Staff Engineer",
					"name": {"familyName": "Smith-Jones", "middleName": None},
					"emails": [{"value": "alice@home.example", "type": "home"}],
					"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
				}`,
			},
			want: `{
				"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
				            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
				"userName": "alice",
				"title": "Staff Engineer",
				"name": {"givenName": "Alice", "familyName": "Smith-Jones"},
				"emails": [{"value": "alice@example.com", "type": "work", "primary": true},
				           {"value": "alice@home.example", "type": "home"}],
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
				"externalId": "` + uid1 + `"
			}`,
		},
		{
			name: "a later None unsets, a None result is ignored",
			mappings: map[string]string{
				"a": `return {"userName": user.username, "nickName": "Al", "locale": "en", "tags": ["x", None, "y"]}`,
				"b": `return {"nickName": None}`,
				"c": `return None`,
			},
			want: `{"userName": "alice", "locale": "en", "tags": ["x", "y"], "externalId": "` + uid1 + `"}`,
		},
		{
			name: "a mapping overrides the default externalId; None keeps the default",
			mappings: map[string]string{
				"a": `return {"userName": user.username, "externalId": "ext-" + user.id}`,
			},
			want: `{"userName": "alice", "externalId": "ext-u-1"}`,
		},
		{
			name: "externalId None falls back to the hashed id",
			mappings: map[string]string{
				"a": `return {"userName": user.username, "externalId": None}`,
			},
			want: `{"userName": "alice", "externalId": "` + uid1 + `"}`,
		},
		{
			name: "every mapping returns None",
			mappings: map[string]string{
				"a": `return None`,
				"b": `pass`,
			},
			want: `{"externalId": "` + uid1 + `"}`,
		},
		{
			name: "types of a later value win when they differ",
			mappings: map[string]string{
				"a": `return {"x": {"k": 1}, "y": [1], "z": "s"}`,
				"b": `return {"x": [2], "y": {"k": 2}, "z": {"k": 3}}`,
			},
			want: `{"x": [2], "y": {"k": 2}, "z": {"k": 3}, "externalId": "` + uid1 + `"}`,
		},
	}
	e := &mapping.Engine{Secret: secret}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var programs []*mapping.Program
			for name, src := range tt.mappings {
				programs = append(programs, compile(t, name, object.User, src))
			}
			// Reverse name order, so that the engine has to sort.
			slices.SortFunc(programs, func(a, b *mapping.Program) int { return strings.Compare(b.Name(), a.Name()) })
			got, err := e.MapUser(context.Background(), programs, u, provider)
			if err != nil {
				t.Fatalf("MapUser: %v", err)
			}
			if g, w := canonical(t, got), canonicalString(t, tt.want); g != w {
				t.Errorf("payload\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestMappingSees(t *testing.T) {
	u := mapping.User{
		ID: "u-1", Username: "alice", Name: "Alice Smith", Email: "alice@example.com", IsActive: true,
		Type: "external", Locale: "fr", Avatar: "https://a/b.png",
		Attributes: map[string]any{
			"title": "Engineer", "level": float64(3), "ratio": 0.5, "tags": []any{"a", "b"},
			"nested": map[string]any{"b": true, "a": nil}, "n": json.Number("12"),
		},
		Groups: []string{"staff", "admins"},
	}
	src := `return {
		"id": user.id, "uid": user.uid, "username": user.username, "name": user.name,
		"email": user.email, "is_active": user.is_active, "type": user.type,
		"locale": user.locale, "avatar": user.avatar, "groups": user.groups,
		"level_plus_one": user.attributes["level"] + 1,
		"attribute_keys": list(user.attributes.keys()),
		"nested_keys": list(user.attributes["nested"].keys()),
		"missing": user.attributes.get("missing", "default"),
		"ratio": user.attributes["ratio"], "tags": user.attributes["tags"], "n": user.attributes["n"],
		"provider": [provider.name, provider.compatibility_mode],
		"str": str(user),
	}`
	e := &mapping.Engine{Secret: secret}
	got, err := e.MapUser(context.Background(), []*mapping.Program{compile(t, "sees", object.User, src)}, u, provider)
	if err != nil {
		t.Fatalf("MapUser: %v", err)
	}
	want := `{
		"id": "u-1", "uid": "` + uid1 + `", "username": "alice", "name": "Alice Smith",
		"email": "alice@example.com", "is_active": true, "type": "external",
		"locale": "fr", "avatar": "https://a/b.png", "groups": ["admins", "staff"],
		"level_plus_one": 4,
		"attribute_keys": ["level", "n", "nested", "ratio", "tags", "title"],
		"nested_keys": ["a", "b"],
		"missing": "default",
		"ratio": 0.5, "tags": ["a", "b"], "n": 12,
		"provider": ["acme", "default"],
		"str": "<user>",
		"externalId": "` + uid1 + `"
	}`
	if g, w := canonical(t, got), canonicalString(t, want); g != w {
		t.Errorf("payload\n got %s\nwant %s", g, w)
	}

	g := mapping.Group{ID: "g-1", Name: "Engineering", ParentName: "Staff", Attributes: map[string]any{"code": "ENG"}}
	gsrc := `return {"displayName": group.name, "x": [group.id, group.parent_name, group.attributes["code"]]}`
	gotG, err := e.MapGroup(context.Background(), []*mapping.Program{compile(t, "sees", object.Group, gsrc)}, g, provider)
	if err != nil {
		t.Fatalf("MapGroup: %v", err)
	}
	wantG := `{"displayName": "Engineering", "x": ["g-1", "Staff", "ENG"], "externalId": "g-1"}`
	if g, w := canonical(t, gotG), canonicalString(t, wantG); g != w {
		t.Errorf("group payload\n got %s\nwant %s", g, w)
	}
}

func TestSkipObject(t *testing.T) {
	src := `if user.type == "service_account":
    skip_object()
return {"userName": user.username}`
	p := compile(t, "skip-service-accounts", object.User, src)
	e := &mapping.Engine{Secret: secret}

	_, err := e.MapUser(context.Background(), []*mapping.Program{p}, mapping.User{ID: "u-9", Username: "bot", Type: "service_account"}, provider)
	if !errors.Is(err, mapping.ErrSkipObject) {
		t.Fatalf("MapUser(service account) error = %v, want ErrSkipObject", err)
	}
	if want := `mapping "skip-service-accounts": user u-9: object skipped by skip_object()`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	var ee *mapping.EvalError
	if errors.As(err, &ee) {
		t.Errorf("skip is reported as an EvalError: %v", ee)
	}

	got, err := e.MapUser(context.Background(), []*mapping.Program{p}, mapping.User{ID: "u-1", Username: "alice", Type: "internal"}, provider)
	if err != nil {
		t.Fatalf("MapUser(internal user): %v", err)
	}
	if g, w := canonical(t, got), canonicalString(t, `{"userName": "alice", "externalId": "`+uid1+`"}`); g != w {
		t.Errorf("payload\n got %s\nwant %s", g, w)
	}

	// A later mapping is not run once an earlier one skipped.
	g := compile(t, "a-skip", object.Group, "skip_object()")
	h := compile(t, "b-fail", object.Group, `fail("must not run")`)
	if _, err := e.MapGroup(context.Background(), []*mapping.Program{h, g}, mapping.Group{ID: "g-1"}, provider); !errors.Is(err, mapping.ErrSkipObject) {
		t.Errorf("MapGroup error = %v, want ErrSkipObject", err)
	}
}

func TestEvalErrors(t *testing.T) {
	u := mapping.User{
		ID: "u-1", Username: "alice.w", Name: "Alice Wonder", Email: "alice@example.com",
		Attributes: map[string]any{"phone": "+44 20 7946 0000"},
	}
	tests := []struct {
		name       string
		src        string
		engine     mapping.Engine
		line, col  int
		msg        string // substring of EvalError.Msg
		cause      error
		notInError []string
	}{
		{
			name: "runtime error names the line and column",
			src:  "x = 1\ny = user.username + 1\nreturn {}",
			line: 2, col: 19,
			msg:        "unknown binary op: string + int",
			notInError: []string{"alice.w"},
		},
		{
			name: "error inside a helper function points at the innermost line",
			src:  "def f(v):\n    return int(v)\nreturn {\"x\": f(user.email)}",
			line: 2, col: 15,
			msg:        "invalid literal",
			notInError: []string{"alice@example.com"},
		},
		{
			name: "fail() with personal data is redacted",
			src:  `fail("bad user " + user.name + " " + user.email + " " + user.attributes["phone"])`,
			line: 1, col: 5,
			msg:        "fail: bad user <redacted> <redacted> <redacted>",
			notInError: []string{"Alice", "Wonder", "alice@example.com", "7946", secret},
		},
		{
			name: "unknown attribute",
			src:  "return {\"x\": user.phone}",
			line: 1, col: 18,
			msg: "user has no .phone field or method",
		},
		{
			name: "attributes are read-only",
			src:  "user.attributes[\"x\"] = 1\nreturn {}",
			line: 1, col: 16,
			msg: "frozen",
		},
		{
			name: "non-dict result",
			src:  `return ["userName", user.username]`,
			msg:  "a mapping must return a dict or None, not a list",
		},
		{
			name: "result that is not JSON names the path",
			src:  "def f():\n    pass\nreturn {\"emails\": [{\"value\": f}]}",
			msg:  `result["emails"][0]["value"]: a function is not a JSON value`,
		},
		{
			name: "non-string key",
			src:  "return {\"name\": {1: \"x\"}}",
			msg:  `result["name"]: key 1 is a int, want a string`,
		},
		{
			name: "a list that contains itself",
			src:  "x = []\nx.append(x)\nreturn {\"x\": x}",
			msg:  "nested deeper than 64 levels",
		},
		{
			name:   "endless loop stopped by the step bound",
			src:    "n = 0\nwhile True:\n    n += 1\nreturn {}",
			engine: mapping.Engine{MaxSteps: 10_000},
			msg:    "more than 10000 execution steps",
			cause:  mapping.ErrTooManySteps,
		},
		{
			name:   "endless for loop stopped by the default step bound",
			src:    "for i in range(1 << 62):\n    pass\nreturn {}",
			msg:    "more than 1000000 execution steps",
			cause:  mapping.ErrTooManySteps,
			engine: mapping.Engine{Timeout: time.Minute},
		},
		{
			name:   "endless loop stopped by the timeout",
			src:    "while True:\n    pass",
			engine: mapping.Engine{MaxSteps: 1 << 62, Timeout: 50 * time.Millisecond},
			msg:    "timed out after 50ms",
			cause:  mapping.ErrTimeout,
		},
		{
			name: "recursion",
			src:  "def f(n):\n    return f(n)\nreturn f(1)",
			line: 2, col: 12,
			msg: "called recursively",
		},
		{
			name: "skip_object takes no arguments",
			src:  `skip_object("why")`,
			line: 1, col: 12,
			msg: "skip_object: got 1 arguments, want at most 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.engine
			e.Secret = secret
			p := compile(t, "m1", object.User, tt.src)
			got, err := e.MapUser(context.Background(), []*mapping.Program{p}, u, provider)
			var ee *mapping.EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("MapUser = %v, %v; want an *EvalError", got, err)
			}
			if ee.Mapping != "m1" || ee.Kind != object.User || ee.ObjectID != "u-1" {
				t.Errorf("EvalError names mapping %q, %s %q; want m1, user u-1", ee.Mapping, ee.Kind, ee.ObjectID)
			}
			if tt.line != 0 && (ee.Line != tt.line || ee.Column != tt.col) {
				t.Errorf("position = %d:%d, want %d:%d (%v)", ee.Line, ee.Column, tt.line, tt.col, err)
			}
			if !strings.Contains(ee.Msg, tt.msg) {
				t.Errorf("Msg = %q, want it to contain %q", ee.Msg, tt.msg)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %v does not match %v", err, tt.cause)
			}
			for _, s := range tt.notInError {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	e := &mapping.Engine{Secret: secret, MaxSteps: 1 << 62, Timeout: time.Minute}
	p := compile(t, "loop", object.User, "while True:\n    pass")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := e.MapUser(ctx, []*mapping.Program{p}, mapping.User{ID: "u-1"}, provider)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("MapUser error = %v, want context.Canceled", err)
	}
	if errors.Is(err, mapping.ErrTimeout) {
		t.Errorf("error %v matches ErrTimeout too", err)
	}

	// A context cancelled before the call.
	_, err = e.MapUser(ctx, mapping.Defaults(object.User), mapping.User{ID: "u-1"}, provider)
	var ee *mapping.EvalError
	if !errors.As(err, &ee) || !errors.Is(err, context.Canceled) {
		t.Fatalf("MapUser(cancelled context) error = %v, want an *EvalError matching context.Canceled", err)
	}
}

func TestMapErrors(t *testing.T) {
	userProg := mapping.Defaults(object.User)
	groupProg := mapping.Defaults(object.Group)
	u := mapping.User{ID: "u-1", Username: "alice"}
	tests := []struct {
		name string
		run  func() error
		want error  // matched with errors.Is, when set
		msg  string // exact error text
	}{
		{
			name: "no mapping at all",
			run: func() error {
				_, err := (&mapping.Engine{Secret: secret}).MapUser(context.Background(), nil, u, provider)
				return err
			},
			want: mapping.ErrNoMappings,
			msg:  "mapping: no mappings for user u-1",
		},
		{
			name: "no secret",
			run: func() error {
				_, err := (&mapping.Engine{}).MapUser(context.Background(), userProg, u, provider)
				return err
			},
			want: mapping.ErrNoSecret,
			msg:  "mapping: installation secret is not set",
		},
		{
			name: "group mapping given to MapUser",
			run: func() error {
				_, err := (&mapping.Engine{Secret: secret}).MapUser(context.Background(), groupProg, u, provider)
				return err
			},
			msg: `mapping: "00-default-group" is a group mapping, not a user mapping`,
		},
		{
			name: "no group mapping",
			run: func() error {
				_, err := (&mapping.Engine{}).MapGroup(context.Background(), nil, mapping.Group{ID: "g-1"}, provider)
				return err
			},
			want: mapping.ErrNoMappings,
			msg:  "mapping: no mappings for group g-1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("got no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v does not match %v", err, tt.want)
			}
			if err.Error() != tt.msg {
				t.Errorf("error = %q, want %q", err, tt.msg)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name      string
		kind      object.Kind
		src       string
		line, col int
		msg       string // substring of CompileError.Msg
	}{
		{name: "syntax error", src: "x = {\"a\": 1\nreturn x", line: 2, col: 1, msg: "got return, want '}'"},
		{name: "unexpected indent", src: "x = 1\n  y = 2\nreturn {}", line: 2, col: 3, msg: "indent"},
		{name: "undefined name", src: "return {\"userName\": usr.username}", line: 1, col: 21, msg: "undefined: usr"},
		{name: "group mapping does not see user", kind: object.Group, src: "return {\"x\": user.id}", line: 1, col: 14, msg: "undefined: user"},
		{name: "empty", src: "", line: 1, col: 1, msg: "the mapping is empty"},
		{name: "only comments", src: "# nothing yet\n", line: 1, col: 1, msg: "the mapping is empty"},
		{name: "try/except", src: "try:\n    x = 1\nexcept Exception:\n    x = 2\nreturn {}", line: 1, col: 1, msg: "try/except is not supported in Starlark"},
		{name: "class", src: "x = 1\nclass Foo:\n    pass", line: 2, col: 1, msg: "classes are not supported in Starlark"},
		{name: "import", src: "import os\nreturn {}", line: 1, col: 1, msg: "import is not supported in Starlark"},
		{name: "from import", src: "from os import path", line: 1, col: 1, msg: "import is not supported in Starlark"},
		{name: "raise", src: "raise ValueError(\"x\")", line: 1, col: 1, msg: "raise is not supported in Starlark; use fail"},
		{name: "with", src: "with x:\n    pass", line: 1, col: 1, msg: "with statements are not supported in Starlark"},
		{name: "is None", src: "if user.email is None:\n    pass", line: 1, col: 15, msg: "the is operator is not supported in Starlark"},
		{name: "del", src: "d = {}\ndel d[\"x\"]", line: 2, col: 1, msg: "del is not supported in Starlark"},
		{name: "f-string", src: "return {\"displayName\": f\"{user.name}\"}", line: 1, msg: "f-strings are not supported in Starlark"},
		{name: "isinstance", src: "if isinstance(user.attributes, dict):\n    pass", line: 1, col: 4, msg: "isinstance is not supported in Starlark"},
		{name: "open", src: "open(\"/etc/passwd\")", line: 1, col: 1, msg: "open is not available: mappings cannot do I/O"},
		{name: "load", src: "load(\"x.star\", \"y\")", line: 1, col: 1, msg: "load is not supported in mappings"},
		{name: "unreachable code compiles", src: "return {}\nreturn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := tt.kind
			if kind == "" {
				kind = object.User
			}
			_, err := mapping.Compile("my-mapping", kind, tt.src)
			if tt.msg == "" { // the source compiles
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			var ce *mapping.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile error = %v, want a *CompileError", err)
			}
			if ce.Mapping != "my-mapping" {
				t.Errorf("Mapping = %q, want my-mapping", ce.Mapping)
			}
			if ce.Line != tt.line || (tt.col != 0 && ce.Column != tt.col) {
				t.Errorf("position = %d:%d, want %d:%d (%v)", ce.Line, ce.Column, tt.line, tt.col, err)
			}
			if !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("Msg = %q, want it to contain %q", ce.Msg, tt.msg)
			}
			if want := fmt.Sprintf(`mapping "my-mapping": line %d:%d: `, ce.Line, ce.Column); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err, want)
			}
		})
	}

	t.Run("bad name or kind", func(t *testing.T) {
		if _, err := mapping.Compile("", object.User, "return {}"); err == nil || err.Error() != `mapping "": a mapping needs a name` {
			t.Errorf("Compile without name = %v", err)
		}
		if _, err := mapping.Compile("x", "device", "return {}"); err == nil || err.Error() != `mapping "x": unknown kind "device" (want "user" or "group")` {
			t.Errorf("Compile with unknown kind = %v", err)
		}
	})
}

func TestStarlarkOK(t *testing.T) {
	// Python that Starlark does support, including while loops.
	src := `def initials(name):
    return "".join([p[0] for p in name.split(" ") if p])
n = 0
while n < 3:
    n += 1
s = set(["a", "b", "a"])
return {
    "displayName": "%s (%s)" % (user.name, initials(user.name)),
    "nickName": "{}-{}".format(user.username, n),
    "count": len(s),
    "short": (lambda x: x[:3])(user.username),
}`
	e := &mapping.Engine{Secret: secret}
	got, err := e.MapUser(context.Background(), []*mapping.Program{compile(t, "ok", object.User, src)},
		mapping.User{ID: "u-1", Username: "alice", Name: "Alice Smith"}, provider)
	if err != nil {
		t.Fatalf("MapUser: %v", err)
	}
	want := `{"displayName": "Alice Smith (AS)", "nickName": "alice-3", "count": 2, "short": "ali", "externalId": "` + uid1 + `"}`
	if g, w := canonical(t, got), canonicalString(t, want); g != w {
		t.Errorf("payload\n got %s\nwant %s", g, w)
	}
}

func TestResultTypes(t *testing.T) {
	src := `return {"i": 3, "f": 1.5, "b": False, "s": "x", "t": (1, "a"), "n": {"m": [None]}}`
	e := &mapping.Engine{Secret: secret}
	got, err := e.MapUser(context.Background(), []*mapping.Program{compile(t, "types", object.User, src)}, mapping.User{ID: "u-1"}, provider)
	if err != nil {
		t.Fatalf("MapUser: %v", err)
	}
	want := map[string]any{
		"i": int64(3), "f": 1.5, "b": false, "s": "x", "t": []any{int64(1), "a"},
		"n": map[string]any{"m": []any{}}, "externalId": uid1,
	}
	if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w {
		t.Errorf("payload\n got %s\nwant %s", g, w)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := &mapping.Engine{Secret: secret}
	programs := append(mapping.Defaults(object.User), compile(t, "zz-extra", object.User,
		`return {"groups": [{"value": g} for g in user.groups], "x": user.attributes.get("x")}`))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			u := mapping.User{ID: fmt.Sprint("u-", i), Username: fmt.Sprint("user", i), Name: "A B",
				Groups: []string{"b", "a"}, Attributes: map[string]any{"x": float64(i)}}
			got, err := e.MapUser(context.Background(), programs, u, provider)
			if err != nil {
				errs <- err
				return
			}
			if got["userName"] != u.Username || got["x"] != int64(i) || len(got["groups"].([]any)) != 2 {
				errs <- fmt.Errorf("user %d: got %v", i, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHash(t *testing.T) {
	a := map[string]any{"userName": "alice", "name": map[string]any{"givenName": "A", "familyName": "B"}, "n": int64(3), "u": "<&>"}
	b := map[string]any{"u": "<&>", "n": float64(3), "name": map[string]any{"familyName": "B", "givenName": "A"}, "userName": "alice"}
	c := map[string]any{"userName": "alice", "name": map[string]any{"givenName": "A", "familyName": "C"}, "n": int64(3), "u": "<&>"}
	ha, hb, hc := mustHash(t, a), mustHash(t, b), mustHash(t, c)
	if ha != hb {
		t.Errorf("Hash differs for equal payloads: %s vs %s", ha, hb)
	}
	if ha == hc {
		t.Errorf("Hash is equal for different payloads: %s", ha)
	}
	// sha256 of `{"n":3,"u":"<&>"}`, computed with sha256sum.
	if got, want := mustHash(t, map[string]any{"u": "<&>", "n": 3}), "1cee0ce17d1a85d2d548d9b012833aafe0587a59e2103013635c1ad5c1fc9e3a"; got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	if _, err := mapping.Hash(map[string]any{"c": make(chan int)}); err == nil {
		t.Error("Hash of a channel succeeded")
	}
}

func mustHash(t *testing.T, payload map[string]any) string {
	t.Helper()
	h, err := mapping.Hash(payload)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return h
}

func TestHashedUserID(t *testing.T) {
	// sha256 of "42-s3cret", computed with sha256sum.
	if got, want := mapping.HashedUserID("42", "s3cret"), "f548fec2b048ed6165656fc61575f9b37d57feeab0910725c4f46f8226601fc9"; got != want {
		t.Errorf("HashedUserID = %s, want %s", got, want)
	}
}

func BenchmarkMapUser(b *testing.B) {
	e := &mapping.Engine{Secret: secret}
	programs := mapping.Defaults(object.User)
	u := mapping.User{
		ID: "4f1c2b9e-8d7a-4c3b-9e2f-1a2b3c4d5e6f", Username: "alice", Name: "Alice Smith", Email: "alice@example.com",
		IsActive: true, Type: "internal", Locale: "en-GB", Avatar: "https://cdn.example.com/a.png",
		Attributes: map[string]any{"department": "R&D"}, Groups: []string{"staff", "engineering"},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.MapUser(ctx, programs, u, provider); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileDefaultUser(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mapping.Compile("x", object.User, mapping.DefaultUserMapping); err != nil {
			b.Fatal(err)
		}
	}
}
