package activities_test

import (
	"testing"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
)

// TestRecreateOn404: an update answered 404 (the remote object vanished, or its id
// changed) looks the object up by every key; found under another id, it is written whole
// there (PUT: what it holds is unknown) and linked to that id; not found, its link is
// forgotten and it is POSTed again, and linked to the new id. The target holds it once.
func TestRecreateOn404(t *testing.T) {
	lookups := []string{
		`GET /Users?filter=externalId eq "ext-ada"`,
		`GET /Users?filter=userName eq "ada"`,
	}
	t.Run("not found: posted again", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{}, nil)
		ada := user("ada", "ext-ada")
		vanished := newID()
		w.saveLink(object.User, ada, vanished, nil)
		ada = changed(ada, "displayName", "Ada King")
		w.writeExpect(activities.WriteResult{Created: 1, Linked: []string{ada.ID}}, object.User, ada)
		users := w.target.Users()
		if len(users) != 1 || users[0]["displayName"] != "Ada King" {
			t.Fatalf("target users %v, want ada alone, renamed", users)
		}
		created := users[0]["id"].(string)
		w.checkSent(`PATCH /Users/`+vanished+` {"schemas":["`+patchSchema+`"],"Operations":[{"op":"add","path":"displayName","value":"Ada King"}]}`,
			lookups[0], lookups[1],
			`POST /Users {"schemas":["`+userSchema+`"],"userName":"ada","externalId":"ext-ada","active":true,"displayName":"Ada King"}`)
		w.checkRow(object.User, ada, linkRow{Remote: created, Hash: ada.Hash, Payload: payloadJSON(t, ada), Members: "[]", CreateUncertain: true})
	})
	t.Run("found under another id", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{}, nil)
		ada := user("ada", "ext-ada")
		vanished := newID()
		w.saveLink(object.User, ada, vanished, nil)
		moved := w.target.AddUser(ada.Payload)
		ada = changed(ada, "displayName", "Ada King")
		w.writeExpect(activities.WriteResult{Updated: 1, Linked: []string{ada.ID}}, object.User, ada)
		if n := len(w.target.Users()); n != 1 {
			t.Errorf("target has %d users, want ada once", n)
		}
		w.checkSent(`PATCH /Users/`+vanished+` {"schemas":["`+patchSchema+`"],"Operations":[{"op":"add","path":"displayName","value":"Ada King"}]}`,
			lookups[0],
			`PUT /Users/`+moved+` {"id":"`+moved+`","schemas":["`+userSchema+`"],"userName":"ada","externalId":"ext-ada","active":true,"displayName":"Ada King"}`)
		w.checkRow(object.User, ada, linkRow{Remote: moved, Hash: ada.Hash, Payload: payloadJSON(t, ada), Members: "null", CreateUncertain: true})
	})
	t.Run("read-back found it gone", func(t *testing.T) {
		// The read-back looked already: no update, no look-up; the link is forgotten and
		// the object posted again.
		w := newWorld(t, scimtest.Options{}, nil)
		ada := user("ada", "ext-ada")
		w.saveLink(object.User, ada, newID(), nil)
		ada.New, ada.Gone, ada.Repair = false, true, activities.RepairGone
		w.writeExpect(activities.WriteResult{Repaired: 1, Linked: []string{ada.ID}}, object.User, ada)
		users := w.target.Users()
		if len(users) != 1 {
			t.Fatalf("target users %v, want ada alone", users)
		}
		w.checkSent(`POST /Users {"schemas":["` + userSchema + `"],"userName":"ada","externalId":"ext-ada","active":true}`)
		w.checkRow(object.User, ada, linkRow{Remote: users[0]["id"].(string), Hash: ada.Hash, Payload: payloadJSON(t, ada),
			Members: "[]", CreateUncertain: true})
	})
}
