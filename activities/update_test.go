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

// linkedUser is ada as an earlier sync wrote her: at the target and linked.
func (w *world) linkedUser() (activities.MappedObject, string) {
	w.t.Helper()
	ada := user("ada", "ext-ada")
	ada.Payload["displayName"] = "Ada Lovelace"
	remote := w.target.AddUser(ada.Payload)
	w.saveLink(object.User, ada, remote, nil)
	return ada, remote
}

// linkedGroup is the directory group eng of ada and bob (both linked) as an earlier sync
// wrote it, with ada alone as its member, at the target and linked. It returns the group,
// its remote id and the remote ids of ada and bob.
func (w *world) linkedGroup() (activities.MappedObject, string, []string) {
	w.t.Helper()
	gid, uids := w.directory("eng", "ada", "bob")
	members := w.linkUsers(uids...)
	eng := group(gid, "eng", "ext-eng")
	body := map[string]any{"displayName": "eng", "externalId": "ext-eng", "members": []any{map[string]any{"value": members[0]}}}
	remote := w.target.AddGroup(body)
	w.saveLink(object.Group, eng, remote, members[:1])
	return eng, remote, members
}

// TestUpdatePatchesWhatChanged: at a target that takes PATCH, a linked object whose
// payload changed is sent a PATCH of what changed since the payload last written, and
// nothing else; the link records the new payload and hash. A group's members are not
// touched (the membership sync does that): the link keeps the members last written.
func TestUpdatePatchesWhatChanged(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{}, nil)
		ada, remote := w.linkedUser()
		ada = changed(ada, "displayName", "Ada King")
		w.writeExpect(activities.WriteResult{Updated: 1}, object.User, ada)
		w.checkSent(`PATCH /Users/` + remote + ` {"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"displayName","value":"Ada King"}]}`)
		if u, _ := w.target.User(remote); u["displayName"] != "Ada King" || u["userName"] != "ada" {
			t.Errorf("remote user %v, want ada renamed Ada King", u)
		}
		w.checkRow(object.User, ada, linkRow{Remote: remote, Hash: ada.Hash, Payload: payloadJSON(t, ada), Members: "null", CreateUncertain: true})
	})
	t.Run("group", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{}, nil)
		eng, remote, members := w.linkedGroup()
		eng = changed(eng, "displayName", "engineering")
		w.writeExpect(activities.WriteResult{Updated: 1}, object.Group, eng)
		w.checkSent(`PATCH /Groups/` + remote + ` {"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"displayName","value":"engineering"}]}`)
		if got := w.target.GroupMembers(remote); !slices.Equal(got, members[:1]) {
			t.Errorf("members at the target %v, want ada's %v alone", got, members[:1])
		}
		w.checkRow(object.Group, eng, linkRow{Remote: remote, Hash: eng.Hash, Payload: payloadJSON(t, eng),
			Members: jsonList(members[0]), CreateUncertain: true})
	})
}

// TestUpdatePutsWhenPatchIsUnsupported: where user updates cannot be PATCHed (discovery
// says PATCH is unsupported, or the compatibility mode says so: aws), the user is PUT
// whole with its id; a group is PUT with its whole member list, so a PUT never drops
// members, and the link records that list.
func TestUpdatePutsWhenPatchIsUnsupported(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts scimtest.Options
		mode string
	}{
		{"discovery", scimtest.Options{Config: scimtest.Config{NoPatch: true}}, ""},
		{"compatibility mode aws", scimtest.Options{Quirks: scimtest.Profile("aws")}, "aws"},
	} {
		t.Run(tt.name+"/user", func(t *testing.T) {
			w := newWorld(t, tt.opts, func(_ *scimtest.Server, p *store.Provider) {
				if tt.mode != "" {
					p.CompatibilityMode = tt.mode
				}
			})
			ada, remote := w.linkedUser()
			ada = changed(ada, "displayName", "Ada King")
			res, err := w.write(object.User, ada)
			if err != nil {
				t.Fatalf("WriteObjects: %v", err)
			}
			if want := (activities.WriteResult{Updated: 1}); !reflect.DeepEqual(outcome(res), want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
			w.checkSent(`PUT /Users/` + remote + ` {"id":"` + remote + `","schemas":["` + userSchema + `"],"userName":"ada","externalId":"ext-ada","active":true,"displayName":"Ada King"}`)
			w.checkRow(object.User, ada, linkRow{Remote: remote, Hash: ada.Hash, Payload: payloadJSON(t, ada), Members: "null", CreateUncertain: true})
		})
	}
	t.Run("discovery/group", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoPatch: true}}, nil)
		eng, remote, members := w.linkedGroup()
		eng = changed(eng, "displayName", "engineering")
		w.writeExpect(activities.WriteResult{Updated: 1}, object.Group, eng)
		want := slices.Sorted(slices.Values(members))
		w.checkSent(`PUT /Groups/` + remote + ` {"id":"` + remote + `","schemas":["` + groupSchema + `"],"displayName":"engineering","externalId":"ext-eng","members":` + memberRefs(want...) + `}`)
		if got := w.target.GroupMembers(remote); !slices.Equal(got, want) {
			t.Errorf("members at the target %v, want ada's and bob's %v", got, want)
		}
		w.checkRow(object.Group, eng, linkRow{Remote: remote, Hash: eng.Hash, Payload: payloadJSON(t, eng),
			Members: jsonList(members...), CreateUncertain: true})
	})
}
