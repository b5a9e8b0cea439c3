package mapping_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// TestApplyOnCreateSplitsThePayload: the attributes of on_create mappings are kept apart
// from those of always mappings, an extension object's attributes split one by one; a
// create gets both, and the payload of every write (and its hash) is what it would be
// without the on_create mappings.
func TestApplyOnCreateSplitsThePayload(t *testing.T) {
	ctx := context.Background()
	e := &mapping.Engine{Secret: secret}
	u := mapping.User{ID: "u-1", Username: "alice", Name: "Alice", IsActive: true,
		Attributes: map[string]any{"department": "R&D", "employee": "E-17"}}
	dept := compile(t, "10-dept", object.User, `return {
    "schemas": ["`+enterprise+`"],
    "`+enterprise+`": {"department": user.attributes.get("department")},
}`)
	initial := compile(t, "20-initial", object.User, `return {
    "schemas": ["`+enterprise+`"],
    "password": "initial-" + user.username,
    "`+enterprise+`": {"employeeNumber": user.attributes.get("employee"), "costCenter": None},
    "nickName": None,
}`).WithApply(mapping.ApplyOnCreate)
	if initial.Apply() != mapping.ApplyOnCreate || dept.Apply() != mapping.ApplyAlways || initial.Name() != "20-initial" {
		t.Fatalf("apply: %s %s", initial.Apply(), dept.Apply())
	}
	programs := append(mapping.Defaults(object.User), dept, initial)
	got, err := e.MapUserPayloads(ctx, programs, u, provider)
	if err != nil {
		t.Fatal(err)
	}
	wantAlways := canonicalString(t, `{"active":true,"displayName":"Alice","externalId":"`+uid1+`","name":{"formatted":"Alice","givenName":"Alice"},`+
		`"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","`+enterprise+`"],"userName":"alice","`+
		enterprise+`":{"department":"R&D"}}`)
	wantOnCreate := canonicalString(t, `{"password":"initial-alice","schemas":["`+enterprise+`"],"`+enterprise+`":{"employeeNumber":"E-17"}}`)
	wantCreate := canonicalString(t, `{"active":true,"displayName":"Alice","externalId":"`+uid1+`","name":{"formatted":"Alice","givenName":"Alice"},`+
		`"password":"initial-alice","schemas":["urn:ietf:params:scim:schemas:core:2.0:User","`+enterprise+`"],"userName":"alice","`+
		enterprise+`":{"department":"R&D","employeeNumber":"E-17"}}`)
	if c := canonical(t, got.Always); c != wantAlways {
		t.Errorf("Always = %s\nwant     %s", c, wantAlways)
	}
	if c := canonical(t, got.OnCreate); c != wantOnCreate {
		t.Errorf("OnCreate = %s\nwant       %s", c, wantOnCreate)
	}
	if c := canonical(t, got.Create()); c != wantCreate {
		t.Errorf("Create() = %s\nwant       %s", c, wantCreate)
	}
	if c := canonical(t, got.Always); c != wantAlways {
		t.Errorf("Create() modified Always: %s", c)
	}
	created, err := e.MapUser(ctx, programs, u, provider)
	if err != nil || canonical(t, created) != wantCreate {
		t.Errorf("MapUser = %s, %v; want the create payload", canonical(t, created), err)
	}

	// Without the on_create mapping the payload of every write, and so its hash, is the same.
	without, err := e.MapUserPayloads(ctx, programs[:2], u, provider)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := mapping.Hash(got.Always)
	h2, _ := mapping.Hash(without.Always)
	if h1 != h2 || without.OnCreate != nil {
		t.Errorf("hash with the on_create mapping %s, without %s (OnCreate %v); want equal", h1, h2, without.OnCreate)
	}
	if c := canonical(t, without.Create()); c != wantAlways {
		t.Errorf("Create() without on_create attributes = %s, want Always", c)
	}

	// An on_create mapping that sets nothing leaves OnCreate nil.
	nothing := compile(t, "30-nothing", object.User, `return {"title": None}`).WithApply(mapping.ApplyOnCreate)
	got, err = e.MapUserPayloads(ctx, append(programs[:2:2], nothing), u, provider)
	if err != nil || got.OnCreate != nil {
		t.Errorf("OnCreate = %v, %v; want nil", got.OnCreate, err)
	}

	// Groups split the same way.
	gp := compile(t, "50-code", object.Group, `return {"schemas": ["urn:x:Custom"], "urn:x:Custom": {"code": group.name.upper()}}`).
		WithApply(mapping.ApplyOnCreate)
	gs, err := e.MapGroupPayloads(ctx, append(mapping.Defaults(object.Group), gp), mapping.Group{ID: "g-1", Name: "eng"}, provider)
	if err != nil {
		t.Fatal(err)
	}
	if c, want := canonical(t, gs.Create()), `{"displayName":"eng","externalId":"g-1","schemas":["urn:ietf:params:scim:schemas:core:2.0:Group","urn:x:Custom"],"urn:x:Custom":{"code":"ENG"}}`; c != want {
		t.Errorf("group create = %s\nwant           %s", c, want)
	}
	if c, want := canonical(t, gs.Always), `{"displayName":"eng","externalId":"g-1","schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}`; c != want {
		t.Errorf("group always = %s, want %s", c, want)
	}
}

// TestApplyOnCreateConflicts: an attribute both kinds of mapping set, and an externalId
// set only on create, are errors naming the on_create mapping, the attribute and the
// always mapping.
func TestApplyOnCreateConflicts(t *testing.T) {
	ctx := context.Background()
	e := &mapping.Engine{Secret: secret}
	u := mapping.User{ID: "u-1", Username: "alice", Name: "Alice Smith", IsActive: true}
	dept := compile(t, "10-dept", object.User, `return {"schemas": ["`+enterprise+`"], "`+enterprise+`": {"department": "R&D"}}`)
	for _, tt := range []struct {
		name, src string
		want      string
	}{
		{"a core attribute", `return {"DisplayName": "Someone"}`,
			`mapping "50-create": user u-1: sets DisplayName, which mapping "00-default-user" (apply: always) sets too: an attribute is written either always or only on create; set it in one of them`},
		{"a complex attribute", `return {"name": {"middleName": "M"}}`,
			`mapping "50-create": user u-1: sets name, which mapping "00-default-user" (apply: always) sets too`},
		{"an attribute of an extension", `return {"` + enterprise + `": {"employeeNumber": "1", "department": "Ops"}}`,
			`mapping "50-create": user u-1: sets ` + enterprise + `:department, which mapping "10-dept" (apply: always) sets too`},
		{"externalId", `return {"externalId": "mine"}`,
			`mapping "50-create": user u-1: externalId cannot be applied on_create only: every write carries it, scimsync finds the objects it wrote by it; set it in an always mapping, or leave it to its default`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			onCreate := compile(t, "50-create", object.User, tt.src).WithApply(mapping.ApplyOnCreate)
			_, err := e.MapUserPayloads(ctx, append(mapping.Defaults(object.User), dept, onCreate), u, provider)
			var ee *mapping.EvalError
			if !errors.As(err, &ee) || ee.Mapping != "50-create" || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v\nwant %s", err, tt.want)
			}
			if _, err := e.MapUser(ctx, append(mapping.Defaults(object.User), dept, onCreate), u, provider); err == nil {
				t.Errorf("MapUser accepted the conflict")
			}
		})
	}
	// An attribute an always mapping removes (None) is not set by it: no conflict.
	noLocale := compile(t, "10-no-title", object.User, `return {"title": None}`)
	title := compile(t, "50-title", object.User, `return {"title": "Newcomer"}`).WithApply(mapping.ApplyOnCreate)
	got, err := e.MapUserPayloads(ctx, append(mapping.Defaults(object.User), noLocale, title), u, provider)
	if err != nil || got.OnCreate["title"] != "Newcomer" {
		t.Errorf("OnCreate %v, %v; want the title", got.OnCreate, err)
	}
}

func TestParseApply(t *testing.T) {
	for in, want := range map[string]mapping.Apply{"": mapping.ApplyAlways, "always": mapping.ApplyAlways, "on_create": mapping.ApplyOnCreate} {
		if got, err := mapping.ParseApply(in); err != nil || got != want {
			t.Errorf("ParseApply(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := mapping.ParseApply("once"); err == nil || err.Error() != `unknown apply "once": use always or on_create` {
		t.Errorf("ParseApply(once) = %v", err)
	}
}
