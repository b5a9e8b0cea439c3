package activities_test

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// TestBulkCreateAnsweredWithoutID: a Bulk POST the target answers with success but
// neither location nor id fails its object alone, like a single create answered so: no
// link is saved with an empty remote id, and the object's create stays uncertain, so the
// next write looks it up (it was made) instead of posting it again.
func TestBulkCreateAnsweredWithoutID(t *testing.T) {
	ada, bob := user("ada", "ext-ada"), user("bob", "ext-bob")
	w := newWorld(t, scimtest.Options{}, func(target *scimtest.Server, p *store.Provider) {
		p.BaseURL = bulkWithoutIDs(t, target, ada.ID).URL + basePath(target)
	})
	res, err := w.write(object.User, ada, bob)
	if err != nil {
		t.Fatalf("WriteObjects: %v", err)
	}
	if w.target.Count("POST /Bulk") != 1 {
		t.Fatalf("requests %v, want the users written through one Bulk request", w.routes())
	}
	if res.Created != 1 || len(res.Failed) != 1 || res.Failed[0].ID != ada.ID ||
		!strings.Contains(res.Failed[0].Error, "create response has no id") {
		t.Fatalf("result %+v, want bob created and ada failed for a create answered without id", res)
	}
	l, ok := w.link(object.User, ada.ID)
	if !ok || l.RemoteID != nil || !l.CreateUncertain || l.LastError != res.Failed[0].Error {
		t.Errorf("ada's link %+v, want no remote id, the create uncertain and the error recorded", l)
	}
	remoteBob, _ := w.target.UserByName("bob")
	if l, ok := w.link(object.User, bob.ID); !ok || l.Remote() != remoteBob["id"] {
		t.Errorf("bob's link %+v, want remote id %v", l, remoteBob["id"])
	}

	// The next write finds what the first made, by the externalId it carried.
	w.target.ResetLog()
	if res, err = w.write(object.User, ada, bob); err != nil || len(res.Failed) != 0 {
		t.Fatalf("second write: %+v, %v", res, err)
	}
	remoteAda, _ := w.target.UserByName("ada")
	if l, ok := w.link(object.User, ada.ID); !ok || l.Remote() != remoteAda["id"] || l.LastError != "" {
		t.Errorf("ada's link %+v after the second write, want remote id %v", l, remoteAda["id"])
	}
	if n := len(w.target.Users()); n != 2 || w.target.Count("POST /Users")+w.target.Count("POST /Bulk") != 0 {
		t.Errorf("%d users at the target after requests %v, want 2 and no create", n, w.routes())
	}
}

// TestBulkWritesNothingForAFailedLookUp: an object whose look-up before a Bulk write fails
// (with link_existing, two accounts match its email) is reported failed and left out of
// the Bulk request, not posted anyway.
func TestBulkWritesNothingForAFailedLookUp(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, func(_ *scimtest.Server, p *store.Provider) { p.LinkExisting = true })
	for _, name := range []string{"a1", "a2"} {
		w.target.AddUser(map[string]any{"userName": name, "emails": []any{map[string]any{"value": "ada@example.test"}}})
	}
	ada, bob := user("ada", "ext-ada"), user("bob", "ext-bob")
	ada.Payload["emails"] = []any{map[string]any{"value": "ada@example.test", "primary": true}}
	res, err := w.write(object.User, ada, bob)
	if err != nil {
		t.Fatalf("WriteObjects: %v", err)
	}
	if res.Created != 1 || len(res.Failed) != 1 || res.Failed[0].ID != ada.ID || !strings.Contains(res.Failed[0].Error, "uniqueness") {
		t.Fatalf("result %+v, want bob created and ada failed as ambiguous", res)
	}
	if _, ok := w.target.UserByName("ada"); ok || len(w.target.Users()) != 3 {
		t.Errorf("ada was created, or the target holds other than a1, a2 and bob: %d users", len(w.target.Users()))
	}
	for _, r := range w.target.Requests() {
		if r.Route == "POST /Bulk" && strings.Contains(string(r.Body), `"ada"`) {
			t.Errorf("the Bulk request carries ada: %s", r.Body)
		}
	}
}
