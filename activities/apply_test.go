package activities_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// onCreateMappings selects for w's provider the default user mapping, an always mapping
// writing the enterprise department, and an on_create one setting an initial password and
// the enterprise employeeNumber.
func (w *world) onCreateMappings() {
	w.t.Helper()
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) error {
		def, err := w.store.Mapping(w.ctx, store.DefaultUserMappingName)
		if err != nil {
			return err
		}
		ids := []string{def.ID}
		for _, m := range []store.PropertyMapping{
			{Name: w.provider.Name + "-dept", Kind: object.User, Expression: `return {
    "schemas": ["` + enterpriseURN + `"],
    "` + enterpriseURN + `": {"department": user.attributes.get("department")},
}`},
			{Name: w.provider.Name + "-initial", Kind: object.User, Apply: "on_create", Expression: `return {
    "password": "Initial-" + user.username,
    "` + enterpriseURN + `": {"employeeNumber": user.attributes.get("employee")},
}`},
		} {
			saved, err := tx.SaveMapping(w.ctx, m)
			if err != nil {
				return err
			}
			ids = append(ids, saved.ID)
		}
		return tx.SetProviderMappings(w.ctx, w.provider.ID, ids)
	}); err != nil {
		w.t.Fatal(err)
	}
}

// mapAndWrite maps the users and writes those changed, as a SyncBatch does.
func (w *world) mapAndWrite(ids ...string) (activities.MapResult, activities.WriteResult) {
	w.t.Helper()
	mapped, err := w.acts.MapObjects(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: object.User, IDs: ids})
	if err != nil {
		w.t.Fatalf("MapObjects: %v", err)
	}
	res, err := w.acts.WriteObjects(w.ctx, activities.WriteInput{Provider: w.provider.Name, Kind: object.User, Objects: mapped.Changed})
	if err != nil {
		w.t.Fatalf("WriteObjects: %v", err)
	}
	return mapped, res
}

// mutations returns the mutating requests the target received since its log was reset, as
// "METHOD route body" with the body in canonical JSON.
func (w *world) mutations() []string {
	var out []string
	for _, r := range w.target.Requests() {
		if r.Method == "GET" {
			continue
		}
		var v any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			w.t.Fatalf("%s body %q: %v", r.Route, r.Body, err)
		}
		b, _ := json.Marshal(v)
		out = append(out, r.Route+" "+string(b))
	}
	return out
}

func canonicalJSON(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, doc)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestOnCreateMappingIsWrittenOnlyByTheCreate: an apply: on_create mapping's attributes
// are in the create (POST, or the POST of a Bulk) and in no update, PATCH or PUT, which
// neither change nor remove them; the link records the payload without them (no password
// in the database), and a change of what only they are mapped from leaves the user
// unchanged.
func TestOnCreateMappingIsWrittenOnlyByTheCreate(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts scimtest.Options
	}{
		{"patch", scimtest.Options{Config: scimtest.Config{NoBulk: true}}},
		{"put", scimtest.Options{Config: scimtest.Config{NoBulk: true, NoPatch: true}}},
		{"bulk", scimtest.Options{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts, nil)
			w.onCreateMappings()
			var ada, bob store.User
			if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) {
				if ada, err = tx.CreateUser(w.ctx, store.User{Username: "ada-" + tt.name, Name: "Ada Lovelace", IsActive: true,
					Attributes: store.JSONMap{"department": "R&D", "employee": "E-1"}}); err != nil {
					return err
				}
				bob, err = tx.CreateUser(w.ctx, store.User{Username: "bob-" + tt.name, Name: "Bob", IsActive: true,
					Attributes: store.JSONMap{"department": "Ops", "employee": "E-2"}})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			ids := []string{ada.ID}
			if tt.name == "bulk" {
				ids = append(ids, bob.ID) // Bulk is used for more than one object
			}
			ext := func(u store.User) string { return mapping.HashedUserID(u.ID, "activities-test-secret") }
			always := func(u store.User, given, family, dept string) string {
				familyJSON := ""
				if family != "" {
					familyJSON = `,"familyName":"` + family + `"`
				}
				return `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","` + enterpriseURN + `"],"userName":"` + u.Username +
					`","active":true,"externalId":"` + ext(u) + `","displayName":"` + strings.TrimSpace(given+" "+family) +
					`","name":{"formatted":"` + strings.TrimSpace(given+" "+family) + `","givenName":"` + given + `"` + familyJSON + `},"` +
					enterpriseURN + `":{"department":"` + dept + `"`
			}
			createBody := func(u store.User, given, family, dept, employee string) string {
				return canonicalJSON(t, `{`+always(u, given, family, dept)+`,"employeeNumber":"`+employee+`"},"password":"Initial-`+u.Username+`"}`)
			}

			mapped, res := w.mapAndWrite(ids...)
			if res.Created != len(ids) || len(res.Failed) != 0 {
				t.Fatalf("first write %+v, want %d created", res, len(ids))
			}
			if o := mapped.Changed[0]; o.OnCreate == nil || o.Payload["password"] != nil {
				t.Errorf("mapped %+v: want the password in OnCreate only", o)
			}
			var want []string
			if tt.name == "bulk" {
				var ops []string
				for _, o := range mapped.Changed {
					u, given, family, dept, emp := ada, "Ada", "Lovelace", "R&D", "E-1"
					if o.ID == bob.ID {
						u, given, family, dept, emp = bob, "Bob", "", "Ops", "E-2"
					}
					ops = append(ops, `{"method":"POST","path":"/Users","bulkId":"`+o.ID+`","data":`+createBody(u, given, family, dept, emp)+`}`)
				}
				want = []string{"POST /Bulk " + canonicalJSON(t, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[`+strings.Join(ops, ",")+`]}`)}
			} else {
				want = []string{"POST /Users " + createBody(ada, "Ada", "Lovelace", "R&D", "E-1")}
			}
			if got := w.mutations(); !slices.Equal(got, want) {
				t.Errorf("create requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			l, _ := w.link(object.User, ada.ID)
			if got, wantLink := canonicalJSON(t, string(l.Payload)), canonicalJSON(t, `{`+always(ada, "Ada", "Lovelace", "R&D")+`}}`); got != wantLink {
				t.Errorf("link payload %s\nwant %s", got, wantLink)
			}
			if h, _ := mapping.Hash(mapped.Changed[0].Payload); l.PayloadHash != h && mapped.Changed[0].ID == ada.ID {
				t.Errorf("link hash %s, want the hash of the payload without the on_create attributes %s", l.PayloadHash, h)
			}

			// What only the on_create mapping reads changes: nothing to write.
			w.target.ResetLog()
			ada.Attributes = store.JSONMap{"department": "R&D", "employee": "E-99"}
			if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) { ada, err = tx.UpdateUser(w.ctx, ada); return err }); err != nil {
				t.Fatal(err)
			}
			mapped, res = w.mapAndWrite(ada.ID)
			if len(mapped.Unchanged) != 1 || len(mapped.Changed) != 0 || len(w.target.Requests()) != 0 {
				t.Errorf("after a change of the on_create source: %+v, %d requests; want unchanged, none", mapped, len(w.target.Requests()))
			}

			// The name and the department change: the update carries them, never the
			// on_create attributes.
			w.target.ResetLog()
			ada.Name = "Ada King"
			ada.Attributes = store.JSONMap{"department": "Maths", "employee": "E-99"}
			if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) { ada, err = tx.UpdateUser(w.ctx, ada); return err }); err != nil {
				t.Fatal(err)
			}
			mapped, res = w.mapAndWrite(ada.ID)
			if res.Updated != 1 || len(res.Failed) != 0 {
				t.Fatalf("update %+v, want 1 updated", res)
			}
			remote := l.Remote()
			switch tt.name {
			case "put":
				want = []string{"PUT /Users/{id} " + canonicalJSON(t, `{"id":"`+remote+`",`+always(ada, "Ada", "King", "Maths")+`}}`)}
			default:
				want = []string{"PATCH /Users/{id} " + canonicalJSON(t, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
					{"op":"replace","path":"displayName","value":"Ada King"},
					{"op":"replace","path":"name.familyName","value":"King"},
					{"op":"replace","path":"name.formatted","value":"Ada King"},
					{"op":"replace","path":"`+enterpriseURN+`:department","value":"Maths"}]}`)}
			}
			if got := w.mutations(); !slices.Equal(got, want) {
				t.Errorf("update requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			body, _ := w.target.User(remote)
			if tt.name != "put" {
				// PATCH leaves what the create set; a PUT replaces the resource (see README).
				ent, _ := body[enterpriseURN].(map[string]any)
				if body["password"] != "Initial-"+ada.Username || ent["employeeNumber"] != "E-1" || ent["department"] != "Maths" {
					t.Errorf("remote user after the update: %v; want the initial password and employeeNumber E-1 kept", body)
				}
			}
		})
	}
}

// TestOnCreateMappingErrors: an attribute an always mapping sets too stops the sync with a
// mapping error naming both mappings; nothing is sent.
func TestOnCreateMappingErrors(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, nil)
	var u store.User
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) {
		m, err := tx.SaveMapping(w.ctx, store.PropertyMapping{Name: w.provider.Name + "-name", Kind: object.User, Apply: "on_create",
			Expression: `return {"displayName": "New " + user.username}`})
		if err != nil {
			return err
		}
		def, err := w.store.Mapping(w.ctx, store.DefaultUserMappingName)
		if err != nil {
			return err
		}
		if err := tx.SetProviderMappings(w.ctx, w.provider.ID, []string{def.ID, m.ID}); err != nil {
			return err
		}
		u, err = tx.CreateUser(w.ctx, store.User{Username: "clash", Name: "Clash User", IsActive: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err := w.acts.MapObjects(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: object.User, IDs: []string{u.ID}})
	want := fmt.Sprintf(`user %s: mapping %q: user %s: sets displayName, which mapping "00-default-user" (apply: always) sets too`, u.ID, w.provider.Name+"-name", u.ID)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("MapObjects error %v\nwant one with %s", err, want)
	}
	if n := len(w.target.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestSwitchingAMappingToOnCreateRemovesNothing: a mapping applied always, then switched to
// on_create, leaves its attributes at the target as they are: the next write, with or
// without a read-back, sends nothing for them (no remove), and records the payload without
// them.
func TestSwitchingAMappingToOnCreateRemovesNothing(t *testing.T) {
	for _, readBack := range []bool{false, true} {
		t.Run(fmt.Sprintf("readBack=%v", readBack), func(t *testing.T) {
			w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}}, nil)
			w.onCreateMappings()
			initial := w.provider.Name + "-initial"
			setApply := func(apply string) {
				t.Helper()
				m, err := w.store.Mapping(w.ctx, initial)
				if err != nil {
					t.Fatal(err)
				}
				m.Apply = apply
				if err := w.store.InTx(w.ctx, func(tx *store.Tx) error { _, err := tx.SaveMapping(w.ctx, m); return err }); err != nil {
					t.Fatal(err)
				}
			}
			setApply("always")
			var ada store.User
			if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) {
				ada, err = tx.CreateUser(w.ctx, store.User{Username: fmt.Sprintf("ada-switch-%v", readBack), Name: "Ada", IsActive: true,
					Attributes: store.JSONMap{"department": "R&D", "employee": "E-1"}})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if _, res := w.mapAndWrite(ada.ID); res.Created != 1 {
				t.Fatalf("create %+v", res)
			}
			l, _ := w.link(object.User, ada.ID)
			if !strings.Contains(string(l.Payload), "Initial-"+ada.Username) {
				t.Fatalf("applied always, the link records %s", l.Payload)
			}

			setApply("on_create")
			w.target.ResetLog()
			in := activities.ObjectsInput{Provider: w.provider.Name, Kind: object.User, IDs: []string{ada.ID}}
			if readBack {
				in.ReadBack = "rb-switch"
				page := activities.ReadPageInput{Provider: w.provider.Name, Kind: object.User, ReadBack: in.ReadBack}
				if err := w.acts.StartReadBack(w.ctx, page); err != nil {
					t.Fatal(err)
				}
				if res, err := w.acts.ReadTargetPage(w.ctx, page); err != nil || res.Read != 1 || res.Next != nil {
					t.Fatalf("ReadTargetPage %+v, %v; want the one user", res, err)
				}
			}
			mapped, err := w.acts.MapObjects(w.ctx, in)
			if err != nil || len(mapped.Changed) != 1 || mapped.Changed[0].Repair != "" {
				t.Fatalf("MapObjects %+v, %v; want ada changed (her payload hash), no repair", mapped, err)
			}
			res, err := w.acts.WriteObjects(w.ctx, activities.WriteInput{Provider: w.provider.Name, Kind: object.User,
				Objects: mapped.Changed, ReadBack: in.ReadBack})
			if err != nil || res.Updated != 1 {
				t.Fatalf("WriteObjects %+v, %v", res, err)
			}
			if got := w.mutations(); len(got) != 0 {
				t.Errorf("requests after switching to on_create: %v; want none", got)
			}
			body, _ := w.target.User(l.Remote())
			if ent, _ := body[enterpriseURN].(map[string]any); body["password"] != "Initial-"+ada.Username || ent["employeeNumber"] != "E-1" {
				t.Errorf("remote user %v: want the password and employeeNumber kept", body)
			}
			l, _ = w.link(object.User, ada.ID)
			if strings.Contains(string(l.Payload), "Initial-") || strings.Contains(string(l.Payload), "employeeNumber") ||
				l.PayloadHash != mapped.Changed[0].Hash {
				t.Errorf("link %s (hash %s), want the payload without the on_create attributes (hash %s)", l.Payload, l.PayloadHash, mapped.Changed[0].Hash)
			}
		})
	}
}
