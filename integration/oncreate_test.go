package integration

// Mappings applied only on create (issue 16): an apply: on_create mapping's attributes go
// in the create and in no later write, and never count in whether an object changed or
// drifted at the target.

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// mutationBodies returns the mutating requests the target received since its log was
// reset, each as its route and decoded body, sorted by route then body.
func mutationBodies(t *testing.T, target *scimtest.Server) []request {
	t.Helper()
	var out []request
	for _, r := range target.Requests() {
		if r.Method == "GET" {
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("%s: body %q: %v", r.Route, r.Body, err)
		}
		out = append(out, request{Route: r.Route, Path: r.Path, Body: body})
	}
	sort.Slice(out, func(i, j int) bool {
		bi, _ := json.Marshal(out[i])
		bj, _ := json.Marshal(out[j])
		return string(bi) < string(bj)
	})
	return out
}

type request struct {
	Route string         `json:"route"`
	Path  string         `json:"path"`
	Body  map[string]any `json:"body"`
}

func TestOnCreateMappingIsWrittenOnlyByTheCreate(t *testing.T) {
	e := newEnv(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	var ada, bob store.User
	e.tx(func(tx *store.Tx) (err error) {
		if ada, err = tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true,
			Attributes: store.JSONMap{"department": "R&D", "employee": "E-1"}}); err != nil {
			return err
		}
		bob, err = tx.CreateUser(e.ctx, store.User{Username: "bob", Name: "Bob Babbage", Email: "bob@example.test", IsActive: true,
			Attributes: store.JSONMap{"department": "Ops", "employee": "E-2"}})
		return err
	})
	p := e.provider("oncreate", nil)
	e.tx(func(tx *store.Tx) error {
		ids := []string{}
		for _, m := range []store.PropertyMapping{
			{Name: "department", Kind: object.User, Expression: `return {
    "schemas": ["` + enterpriseURN + `"],
    "` + enterpriseURN + `": {"department": user.attributes.get("department")},
}`},
			{Name: "initial", Kind: object.User, Apply: "on_create", Expression: `return {
    "password": "Initial-" + user.username,
    "` + enterpriseURN + `": {"employeeNumber": user.attributes.get("employee")},
}`},
		} {
			saved, err := tx.SaveMapping(e.ctx, m)
			if err != nil {
				return err
			}
			ids = append(ids, saved.ID)
		}
		for _, name := range []string{store.DefaultUserMappingName, store.DefaultGroupMappingName} {
			def, err := e.store.Mapping(e.ctx, name)
			if err != nil {
				return err
			}
			ids = append(ids, def.ID)
		}
		return tx.SetProviderMappings(e.ctx, p.ID, ids)
	})
	// always is what every write of u sends; create adds the on_create attributes.
	always := func(u store.User, dept string) map[string]any {
		body := expectedUser(u)
		body["schemas"] = []any{"urn:ietf:params:scim:schemas:core:2.0:User", enterpriseURN}
		body[enterpriseURN] = map[string]any{"department": dept}
		return body
	}
	create := func(u store.User, dept, employee string) map[string]any {
		body := always(u, dept)
		body[enterpriseURN] = map[string]any{"department": dept, "employeeNumber": employee}
		body["password"] = "Initial-" + u.Username
		return body
	}
	fullSync := func(in workflows.FullSyncInput) workflows.FullSyncProgress {
		t.Helper()
		progress, _, err := e.fullSync(p.Name, in)
		if err != nil {
			t.Fatal(err)
		}
		return progress
	}
	expectRequests := func(step string, want []request) {
		t.Helper()
		got := mutationBodies(t, e.target)
		if diff := diffJSON(normalizeAny(got), normalizeAny(want)); diff != "" {
			t.Errorf("%s: requests:\n%s", step, diff)
		}
	}

	// The first full sync creates both users with the on_create attributes.
	fullSync(workflows.FullSyncInput{})
	expectRequests("first full sync", []request{
		{Route: "POST /Users", Path: "/scim/v2/Users", Body: create(ada, "R&D", "E-1")},
		{Route: "POST /Users", Path: "/scim/v2/Users", Body: create(bob, "Ops", "E-2")},
	})
	adaID := e.link(p.ID, object.User, ada.ID).Remote()
	bobID := e.link(p.ID, object.User, bob.ID).Remote()
	for _, u := range []store.User{ada, bob} {
		l := e.link(p.ID, object.User, u.ID)
		if strings.Contains(string(l.Payload), "Initial-") || strings.Contains(string(l.Payload), "employeeNumber") {
			t.Errorf("link of %s records the on_create attributes: %s", u.Username, l.Payload)
		}
	}

	// Nothing changed: a full sync sends nothing at all.
	e.target.ResetLog()
	fullSync(workflows.FullSyncInput{})
	if n := len(e.target.Requests()); n != 0 {
		t.Errorf("a full sync of an unchanged directory sent %d requests: %v", n, e.target.Counts())
	}

	// Only what the on_create mapping reads changes (bob's employee number): still nothing.
	bob.Attributes = store.JSONMap{"department": "Ops", "employee": "E-200"}
	e.tx(func(tx *store.Tx) (err error) { bob, err = tx.UpdateUser(e.ctx, bob); return err })
	fullSync(workflows.FullSyncInput{})
	if n := len(e.target.Requests()); n != 0 {
		t.Errorf("a change of what only an on_create mapping reads sent %d requests: %v", n, e.target.Counts())
	}

	// Ada's name and department change: one PATCH of them, without the on_create attributes.
	ada.Name = "Ada King"
	ada.Attributes = store.JSONMap{"department": "Maths", "employee": "E-100"}
	e.tx(func(tx *store.Tx) (err error) { ada, err = tx.UpdateUser(e.ctx, ada); return err })
	fullSync(workflows.FullSyncInput{})
	patchOp := "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	expectRequests("update", []request{{Route: "PATCH /Users/{id}", Path: "/scim/v2/Users/" + adaID, Body: map[string]any{
		"schemas": []any{patchOp},
		"Operations": []any{
			map[string]any{"op": "replace", "path": "displayName", "value": "Ada King"},
			map[string]any{"op": "replace", "path": "name.familyName", "value": "King"},
			map[string]any{"op": "replace", "path": "name.formatted", "value": "Ada King"},
			map[string]any{"op": "replace", "path": enterpriseURN + ":department", "value": "Maths"},
		},
	}}})
	if got, want := remoteUsers(e.target)["ada"], create(ada, "Maths", "E-1"); diffJSON(got, want) != "" {
		t.Errorf("remote ada after the update:\n%s", diffJSON(got, want))
	}

	// At the target, ada sets her own password and the application renumbers her; bob's
	// number is cleared; an administrator edits ada's department. A read-back repairs the
	// department alone, and leaves what the on_create mapping set as the target has it.
	c, err := scim.New(scim.Options{BaseURL: e.target.URL, Token: targetToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Patch(e.ctx, scim.Users, adaID, []scim.PatchOp{
		{Op: scim.OpReplace, Path: "password", Value: "chosen-by-ada"},
		{Op: scim.OpReplace, Path: enterpriseURN + ":employeeNumber", Value: "APP-7"},
		{Op: scim.OpReplace, Path: enterpriseURN + ":department", Value: "Edited In The Console"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Patch(e.ctx, scim.Users, bobID, []scim.PatchOp{{Op: scim.OpRemove, Path: enterpriseURN + ":employeeNumber"}}); err != nil {
		t.Fatal(err)
	}
	e.target.ResetLog()
	progress := fullSync(workflows.FullSyncInput{ReadTarget: true})
	expectRequests("read-back", []request{{Route: "PATCH /Users/{id}", Path: "/scim/v2/Users/" + adaID, Body: map[string]any{
		"schemas":    []any{patchOp},
		"Operations": []any{map[string]any{"op": "replace", "path": enterpriseURN + ":department", "value": "Maths"}},
	}}})
	if progress.Users.Repaired != 1 {
		t.Errorf("read-back repaired %d users, want 1 (ada's department)", progress.Users.Repaired)
	}
	wantAda := create(ada, "Maths", "APP-7")
	wantAda["password"] = "chosen-by-ada"
	if got := remoteUsers(e.target)["ada"]; diffJSON(got, wantAda) != "" {
		t.Errorf("remote ada after the read-back:\n%s", diffJSON(got, wantAda))
	}
	if got, want := remoteUsers(e.target)["bob"], always(bob, "Ops"); diffJSON(got, normalizeWith(want, "password", "Initial-bob")) != "" {
		t.Errorf("remote bob after the read-back:\n%s", diffJSON(got, normalizeWith(want, "password", "Initial-bob")))
	}

	// And a second read-back finds nothing to do.
	e.target.ResetLog()
	progress = fullSync(workflows.FullSyncInput{ReadTarget: true})
	if m := e.target.Mutations(); m != 0 || progress.Users.Repaired != 0 {
		t.Errorf("second read-back: %d mutating requests, %d repaired; want none (%v)", m, progress.Users.Repaired, e.target.Counts())
	}
}

// normalizeAny round-trips v through JSON so comparisons ignore Go types.
func normalizeAny(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

// normalizeWith returns a normalized copy of m with k set to v.
func normalizeWith(m map[string]any, k string, v any) map[string]any {
	out := normalize(m)
	out[k] = v
	return out
}
