package activities_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// TestConflictLinksTheExistingObject: a create answered 409 because the target has the
// object already (made before scimsync, without externalId) looks it up by filter, by
// externalId and then by name, links the single match and writes the object to it, whole
// (what it holds is unknown): no duplicate is made. The 409 refused the create, so the
// link does not keep it uncertain.
func TestConflictLinksTheExistingObject(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{}, nil)
		existing := w.target.AddUser(map[string]any{"userName": "ADA", "displayName": "A. Lovelace"})
		ada := user("ada", "ext-ada")
		w.writeExpect(activities.WriteResult{Updated: 1, Linked: []string{ada.ID}}, object.User, ada)
		body := `"schemas":["` + userSchema + `"],"userName":"ada","externalId":"ext-ada","active":true}`
		w.checkSent(`POST /Users {`+body,
			`GET /Users?filter=externalId eq "ext-ada"`,
			`GET /Users?filter=userName eq "ada"`,
			`PUT /Users/`+existing+` {"id":"`+existing+`",`+body)
		if users := w.target.Users(); len(users) != 1 || users[0]["id"] != existing || users[0]["externalId"] != "ext-ada" {
			t.Errorf("target users %v, want the existing account alone, written", users)
		}
		w.checkRow(object.User, ada, linkRow{Remote: existing, Hash: ada.Hash, Payload: payloadJSON(t, ada), Members: "null", CreateUncertain: false})
	})
	t.Run("group", func(t *testing.T) {
		// Written whole with its members: those of the directory replace what the group
		// had, and the link records them.
		w := newWorld(t, scimtest.Options{}, nil)
		stranger := w.target.AddUser(map[string]any{"userName": "stranger"})
		existing := w.target.AddGroup(map[string]any{"displayName": "eng", "members": []any{map[string]any{"value": stranger}}})
		gid, uids := w.directory("eng", "ada")
		members := w.linkUsers(uids...)
		eng := group(gid, "eng", "ext-eng")
		w.writeExpect(activities.WriteResult{Updated: 1, Linked: []string{gid}}, object.Group, eng)
		body := `"schemas":["` + groupSchema + `"],"displayName":"eng","externalId":"ext-eng"`
		w.checkSent(`POST /Groups {`+body+`}`,
			`GET /Groups?filter=externalId eq "ext-eng"`,
			`GET /Groups?filter=displayName eq "eng"`,
			`PUT /Groups/`+existing+` {"id":"`+existing+`",`+body+`,"members":`+memberRefs(members...)+`}`)
		if n := len(w.target.Groups()); n != 1 {
			t.Errorf("target has %d groups, want eng once", n)
		}
		if got := w.target.GroupMembers(existing); !slices.Equal(got, members) {
			t.Errorf("members at the target %v, want %v", got, members)
		}
		w.checkRow(object.Group, eng, linkRow{Remote: existing, Hash: eng.Hash, Payload: payloadJSON(t, eng),
			Members: jsonList(members...), CreateUncertain: false})
	})
	t.Run("group/aws", func(t *testing.T) {
		// aws takes only displayName and externalId in a group PATCH and answers groups
		// without members: the match is patched, and the link records no members (the
		// membership sync adds them).
		w := newWorld(t, scimtest.Options{Quirks: scimtest.Profile("aws")},
			func(_ *scimtest.Server, p *store.Provider) { p.CompatibilityMode = "aws" })
		stranger := w.target.AddUser(map[string]any{"userName": "stranger"})
		existing := w.target.AddGroup(map[string]any{"displayName": "eng", "members": []any{map[string]any{"value": stranger}}})
		gid, uids := w.directory("eng", "ada")
		w.linkUsers(uids...)
		eng := group(gid, "eng", "ext-eng")
		w.writeExpect(activities.WriteResult{Updated: 1, Linked: []string{gid}}, object.Group, eng)
		w.checkSent(`POST /Groups {"schemas":["`+groupSchema+`"],"displayName":"eng","externalId":"ext-eng"}`,
			`GET /Groups?filter=externalId eq "ext-eng"`,
			`GET /Groups?filter=displayName eq "eng"`,
			`PATCH /Groups/`+existing+` {"schemas":["`+patchSchema+`"],"Operations":[{"op":"add","path":"displayName","value":"eng"},{"op":"add","path":"externalId","value":"ext-eng"}]}`)
		if got := w.target.GroupMembers(existing); !slices.Equal(got, []string{stranger}) {
			t.Errorf("members at the target %v, want the stranger's, untouched", got)
		}
		w.checkRow(object.Group, eng, linkRow{Remote: existing, Hash: eng.Hash, Payload: payloadJSON(t, eng),
			Members: "[]", CreateUncertain: false})
	})
}

// TestConflictWithoutMatchIsARefusedCreate: a create answered 409 whose look-up finds
// nothing (or that cannot be looked up) fails its object with the 409. The target refused
// it, so the create is not uncertain: the next write posts it again at once, without a
// look-up, and where the target can neither filter nor list, it is not held back as a
// create that may have gone through.
func TestConflictWithoutMatchIsARefusedCreate(t *testing.T) {
	const conflict = "scim: create POST /Users: 409 Conflict (scimType uniqueness)"
	for _, tt := range []struct {
		name    string
		config  scimtest.Config
		lookups []string
	}{
		{"filter", scimtest.Config{}, []string{`GET /Users?filter=externalId eq "ext-ada"`, `GET /Users?filter=userName eq "ada"`}},
		{"no look-up", scimtest.Config{NoFilter: true, NoListing: true}, []string{`GET /Users`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, scimtest.Options{Config: tt.config}, nil)
			w.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 409, ScimType: "uniqueness", Times: 1})
			ada := user("ada", "ext-ada")
			res, err := w.write(object.User, ada)
			if err != nil {
				t.Fatalf("WriteObjects: %v", err)
			}
			if want := (activities.WriteResult{Failed: []activities.ObjectFailure{{ID: ada.ID, Error: conflict}}}); !reflect.DeepEqual(outcome(res), want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
			post := `POST /Users {"schemas":["` + userSchema + `"],"userName":"ada","externalId":"ext-ada","active":true}`
			w.checkSent(append([]string{post}, tt.lookups...)...)
			w.checkRow(object.User, ada, linkRow{Remote: "-", Payload: payloadJSON(t, ada), Members: "null", LastError: conflict})

			w.target.ResetLog()
			res, err = w.write(object.User, ada)
			if err != nil || res.Created != 1 || len(res.Failed) != 0 {
				t.Fatalf("the next write: %+v, %v; want ada created", res, err)
			}
			w.checkSent(post)
			users := w.target.Users()
			if len(users) != 1 {
				t.Fatalf("target users %v, want ada alone", users)
			}
			w.checkRow(object.User, ada, linkRow{Remote: users[0]["id"].(string), Hash: ada.Hash, Payload: payloadJSON(t, ada),
				Members: "[]", CreateUncertain: true})
		})
	}
}
