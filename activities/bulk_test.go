package activities_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/activities"
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

// TestBulkResultsToLinks: one Bulk request whose operations end every way there is, and
// what each leaves: a create that went through is linked to the id the target answered; a
// create answered 409 links the account the target has (looked up, then written whole);
// a create answered 400 fails its object, with its error on a link without remote id that
// does not keep the create uncertain (the target refused it); an update that went through
// records its payload; an update answered 404 is created again (looked up, not found,
// posted); an update answered 409 fails its object and leaves the link as last written,
// the error on it.
func TestBulkResultsToLinks(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, nil)
	bobAccount := w.target.AddUser(map[string]any{"userName": "bob"})
	w.target.AddUser(map[string]any{"userName": "zed"})
	ada, bob, cy := user("ada", "ext-ada"), user("bob", "ext-bob"), user("cy", "ext-cy")
	delete(cy.Payload, "userName") // the target requires one: 400
	dee, eve, fay := user("dee", "ext-dee"), user("eve", "ext-eve"), user("fay", "ext-fay")
	deeRemote, fayRemote, vanished := w.target.AddUser(dee.Payload), w.target.AddUser(fay.Payload), newID()
	w.saveLink(object.User, dee, deeRemote, nil)
	w.saveLink(object.User, eve, vanished, nil)
	w.saveLink(object.User, fay, fayRemote, nil)
	fayBefore := fay
	dee, eve, fay = changed(dee, "displayName", "Dee"), changed(eve, "displayName", "Eve"), changed(fay, "userName", "zed")

	res, err := w.write(object.User, ada, bob, cy, dee, eve, fay)
	if err != nil {
		t.Fatalf("WriteObjects: %v", err)
	}
	const (
		badCreate   = "scim: bulk POST /Users: 400 Bad Request (scimType invalidValue)"
		takenUpdate = "scim: bulk PATCH /Users/%s: 409 Conflict (scimType uniqueness)"
	)
	slices.Sort(res.Linked)
	wantLinked := []string{ada.ID, bob.ID, eve.ID}
	slices.Sort(wantLinked)
	want := activities.WriteResult{Created: 2, Updated: 2, Linked: wantLinked, Failed: []activities.ObjectFailure{
		{ID: cy.ID, Error: badCreate}, {ID: fay.ID, Error: fmt.Sprintf(takenUpdate, fayRemote)}}}
	if !reflect.DeepEqual(outcome(res), want) {
		t.Errorf("result %+v\nwant %+v", res, want)
	}

	adaRemote, _ := w.target.UserByName("ada")
	eveRemote, _ := w.target.UserByName("eve")
	body := func(o activities.MappedObject) string { return payloadJSON(t, o) }
	patch := func(attr, value string) string {
		return `{"schemas":["` + patchSchema + `"],"Operations":[{"op":"replace","path":"` + attr + `","value":"` + value + `"}]}`
	}
	w.checkSent(
		`POST /Bulk {"schemas":["`+bulkSchema+`"],"Operations":[`+
			`{"method":"POST","path":"/Users","bulkId":"`+ada.ID+`","data":`+body(ada)+`},`+
			`{"method":"POST","path":"/Users","bulkId":"`+bob.ID+`","data":`+body(bob)+`},`+
			`{"method":"POST","path":"/Users","bulkId":"`+cy.ID+`","data":`+body(cy)+`},`+
			`{"method":"PATCH","path":"/Users/`+deeRemote+`","bulkId":"`+dee.ID+`","data":`+
			`{"schemas":["`+patchSchema+`"],"Operations":[{"op":"add","path":"displayName","value":"Dee"}]}},`+
			`{"method":"PATCH","path":"/Users/`+vanished+`","bulkId":"`+eve.ID+`","data":`+
			`{"schemas":["`+patchSchema+`"],"Operations":[{"op":"add","path":"displayName","value":"Eve"}]}},`+
			`{"method":"PATCH","path":"/Users/`+fayRemote+`","bulkId":"`+fay.ID+`","data":`+patch("userName", "zed")+`}]}`,
		`GET /Users?filter=externalId eq "ext-bob"`,
		`GET /Users?filter=userName eq "bob"`,
		`PUT /Users/`+bobAccount+` {"id":"`+bobAccount+`",`+body(bob)[1:],
		`GET /Users?filter=externalId eq "ext-eve"`,
		`GET /Users?filter=userName eq "eve"`,
		`POST /Users `+body(eve),
	)
	if n := len(w.target.Users()); n != 6 { // bob, zed, dee, fay, ada, eve: nothing for cy
		t.Errorf("target has %d users, want 6", n)
	}
	w.checkRow(object.User, ada, linkRow{Remote: adaRemote["id"].(string), Hash: ada.Hash, Payload: body(ada), Members: "[]", CreateUncertain: true})
	w.checkRow(object.User, bob, linkRow{Remote: bobAccount, Hash: bob.Hash, Payload: body(bob), Members: "null"})
	w.checkRow(object.User, cy, linkRow{Remote: "-", Payload: body(cy), Members: "null", LastError: badCreate})
	w.checkRow(object.User, dee, linkRow{Remote: deeRemote, Hash: dee.Hash, Payload: body(dee), Members: "null", CreateUncertain: true})
	w.checkRow(object.User, eve, linkRow{Remote: eveRemote["id"].(string), Hash: eve.Hash, Payload: body(eve), Members: "[]", CreateUncertain: true})
	w.checkRow(object.User, fay, linkRow{Remote: fayRemote, Hash: fayBefore.Hash, Payload: body(fayBefore), Members: "null",
		LastError: fmt.Sprintf(takenUpdate, fayRemote), CreateUncertain: true})
}
