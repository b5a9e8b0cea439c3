package activities_test

import (
	"slices"
	"testing"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
)

// TestCreatePostsANewUser: a user never written is POSTed with its payload as mapped, and
// linked to the id the target answered: the link records that id, the payload and its
// hash, no error. (create_uncertain, set before the POST, is left as it is: it is read
// only on links without remote id.)
func TestCreatePostsANewUser(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, nil)
	ada := user("ada", "ext-ada")
	ada.Payload["displayName"] = "Ada Lovelace"
	w.writeExpect(activities.WriteResult{Created: 1, Linked: []string{ada.ID}}, object.User, ada)
	w.checkSent(`POST /Users {"schemas":["` + userSchema + `"],"userName":"ada","externalId":"ext-ada","active":true,"displayName":"Ada Lovelace"}`)
	users := w.target.Users()
	if len(users) != 1 || users[0]["userName"] != "ada" || users[0]["externalId"] != "ext-ada" {
		t.Fatalf("target users %v, want ada alone", users)
	}
	w.checkRow(object.User, ada, linkRow{Remote: users[0]["id"].(string), Hash: "h-ada", Payload: payloadJSON(t, ada),
		Members: "[]", CreateUncertain: true})
}

// TestCreatePostsANewGroup: a group never written is POSTed; its members go in the POST
// only where membership cannot be patched later (then the link records them), else the
// group is created empty (the link records no members: the membership sync adds them).
// Members are the directory group's members that are linked: bob is not, so he is left
// out.
func TestCreatePostsANewGroup(t *testing.T) {
	for _, tt := range []struct {
		name   string
		config scimtest.Config
		inline bool
	}{
		{"member patch", scimtest.Config{}, false},
		{"members inline (no patch)", scimtest.Config{NoPatch: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, scimtest.Options{Config: tt.config}, nil)
			gid, uids := w.directory("eng", "ada", "bob")
			remotes := w.linkUsers(uids[0])
			eng := group(gid, "eng", "ext-eng")
			w.writeExpect(activities.WriteResult{Created: 1, Linked: []string{gid}}, object.Group, eng)
			groups := w.target.Groups()
			if len(groups) != 1 || groups[0]["displayName"] != "eng" {
				t.Fatalf("target groups %v, want eng alone", groups)
			}
			id := groups[0]["id"].(string)
			body := `{"schemas":["` + groupSchema + `"],"displayName":"eng","externalId":"ext-eng"`
			members, atTarget := "[]", []string{}
			if tt.inline {
				body += `,"members":` + memberRefs(remotes[0])
				members, atTarget = jsonList(remotes...), remotes
			}
			w.checkSent(`POST /Groups ` + body + `}`)
			if got := w.target.GroupMembers(id); !slices.Equal(got, atTarget) {
				t.Errorf("members at the target %v, want %v", got, atTarget)
			}
			w.checkRow(object.Group, eng, linkRow{Remote: id, Hash: "h-eng", Payload: payloadJSON(t, eng),
				Members: members, CreateUncertain: true})
		})
	}
}
