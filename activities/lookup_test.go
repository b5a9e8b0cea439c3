package activities_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// lostAnswer makes the target act on the first request to route and lose its answer.
func lostAnswer(route string) scimtest.Fault {
	return scimtest.Fault{Method: "POST", Route: route, AfterServing: true, Times: 1}
}

// checkLinked fails unless the target holds exactly users users, among them one for each
// of objs, linked by it.
func (w *world) checkLinked(users int, objs ...activities.MappedObject) {
	w.t.Helper()
	if n := len(w.target.Users()); n != users {
		w.t.Errorf("target has %d users, want %d", n, users)
	}
	for _, o := range objs {
		remote, ok := w.target.UserByName(o.Payload["userName"].(string))
		if !ok {
			w.t.Errorf("%s is not at the target", o.Payload["userName"])
			continue
		}
		if l, _ := w.link(object.User, o.ID); l.Remote() != remote["id"] || l.LastError != "" {
			w.t.Errorf("link of %s %+v, want remote id %v and no error", o.Payload["userName"], l, remote["id"])
		}
	}
}

// checkListedWithoutFilter fails unless every GET /Users the target received was a plain
// listing: a target that cannot filter may ignore a filter and answer everyone.
func (w *world) checkListedWithoutFilter() {
	w.t.Helper()
	for _, r := range w.target.Requests() {
		if r.Route == "GET /Users" && r.Query.Has("filter") {
			w.t.Errorf("GET /Users with a filter %q at a target that cannot filter", r.Query.Get("filter"))
		}
	}
}

// TestLostCreateFoundInTheListing: at a target that cannot filter (discovery says so, or
// discovery failed and the fallback is in use), a create whose answer was lost is looked
// for in the listing of the target's users before it is posted again: found by its
// externalId, it is linked, and the target holds the user once.
func TestLostCreateFoundInTheListing(t *testing.T) {
	for _, tt := range []struct {
		name   string
		config scimtest.Config
	}{
		{"filter unsupported", scimtest.Config{NoFilter: true}},
		{"discovery fallback", scimtest.Config{DiscoveryNotFound: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, scimtest.Options{Config: tt.config}, nil)
			w.target.AddUser(map[string]any{"userName": "someone-else", "externalId": "ext-other"})
			w.target.AddFault(lostAnswer("/Users"))
			ada := user("ada", "ext-ada")
			res, err := w.write(object.User, ada)
			if err != nil || len(res.Failed) != 0 {
				t.Fatalf("WriteObjects: %+v, %v", res, err)
			}
			w.checkLinked(2, ada)
			want := []string{"GET /ServiceProviderConfig", "POST /Users", "GET /Users", "PUT /Users/{id}"}
			if got := w.routes(); !slices.Equal(got, want) {
				t.Errorf("requests %v, want %v", got, want)
			}
			w.checkListedWithoutFilter()
		})
	}
}

// TestLostBulkAnswerFoundInTheListing: the same for creates sent in a Bulk request whose
// answer was lost: the activity fails retryably, and its retry finds both users in one
// listing and writes them to what it found.
func TestLostBulkAnswerFoundInTheListing(t *testing.T) {
	w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoFilter: true}}, nil)
	w.target.AddFault(lostAnswer("/Bulk"))
	ada, bob := user("ada", "ext-ada"), user("bob", "ext-bob")
	_, err := w.write(object.User, ada, bob)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.NonRetryable() {
		t.Fatalf("first attempt: %v, want a retryable error", err)
	}
	w.target.ResetLog()
	res, err := w.write(object.User, ada, bob)
	if err != nil || len(res.Failed) != 0 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	w.checkLinked(2, ada, bob)
	if got, want := w.routes(), []string{"GET /Users", "POST /Bulk"}; !slices.Equal(got, want) {
		t.Errorf("requests of the retry %v, want %v", got, want)
	}
	for _, r := range w.target.Requests() {
		if r.Route == "POST /Bulk" && strings.Contains(string(r.Body), `"method":"POST"`) {
			t.Errorf("the retry's Bulk request creates again: %s", r.Body)
		}
	}
	w.checkListedWithoutFilter()
}

// TestLostCreateNeverPostedAgainWhereNothingCanBeLookedUp: at a target that can neither
// filter nor list, a create whose answer was lost is not posted again, by the activity's
// next pass nor by a later write: the object fails with an error that tells the operator
// what to do, its link keeps the create uncertain, and the target holds the user once.
func TestLostCreateNeverPostedAgainWhereNothingCanBeLookedUp(t *testing.T) {
	check := func(t *testing.T, w *world, res activities.WriteResult, err error, objs ...activities.MappedObject) {
		t.Helper()
		if err != nil || len(res.Failed) != len(objs) {
			t.Fatalf("WriteObjects: %+v, %v; want %d objects failed", res, err, len(objs))
		}
		for i, o := range objs {
			f := res.Failed[i]
			if !slices.ContainsFunc(res.Failed, func(f activities.ObjectFailure) bool { return f.ID == o.ID }) ||
				!strings.HasPrefix(f.Error, "not created again: an earlier create of this user may have reached the target") ||
				!strings.Contains(f.Error, "sync_links.create_uncertain") || !strings.Contains(f.Error, "400 Bad Request (scimType tooMany)") {
				t.Errorf("failure %+v, want the uncertain create explained", f)
			}
			for _, personal := range []string{"ada", "bob"} {
				if strings.Contains(f.Error, personal) {
					t.Errorf("failure %q names the user", f.Error)
				}
			}
			l, _ := w.link(object.User, o.ID)
			if l.RemoteID != nil || !l.CreateUncertain || !strings.HasPrefix(l.LastError, "not created again") {
				t.Errorf("link %+v, want no remote id, the create uncertain and the error recorded", l)
			}
		}
		if n := len(w.target.Users()); n != len(objs) {
			t.Errorf("target has %d users, want %d", n, len(objs))
		}
	}
	noLookUp := scimtest.Options{Config: scimtest.Config{NoFilter: true, NoListing: true}}

	t.Run("single requests", func(t *testing.T) {
		w := newWorld(t, noLookUp, nil)
		w.target.AddFault(lostAnswer("/Users"))
		ada := user("ada", "ext-ada")
		res, err := w.write(object.User, ada)
		check(t, w, res, err, ada)
		if got, want := w.routes(), []string{"GET /ServiceProviderConfig", "POST /Users", "GET /Users"}; !slices.Equal(got, want) {
			t.Errorf("requests %v, want %v", got, want)
		}
		w.target.ResetLog()
		res, err = w.write(object.User, ada)
		check(t, w, res, err, ada)
		if got, want := w.routes(), []string{"GET /Users"}; !slices.Equal(got, want) {
			t.Errorf("requests of the next write %v, want %v", got, want)
		}
	})
	t.Run("bulk", func(t *testing.T) {
		w := newWorld(t, noLookUp, nil)
		w.target.AddFault(lostAnswer("/Bulk"))
		ada, bob := user("ada", "ext-ada"), user("bob", "ext-bob")
		if _, err := w.write(object.User, ada, bob); err == nil {
			t.Fatal("first attempt succeeded with its answer lost")
		}
		w.target.ResetLog()
		res, err := w.write(object.User, ada, bob)
		check(t, w, res, err, ada, bob)
		// One listing refused for both, and nothing posted.
		if got, want := w.routes(), []string{"GET /Users"}; !slices.Equal(got, want) {
			t.Errorf("requests of the retry %v, want %v", got, want)
		}
	})
}

// TestConflictResolvedInTheListing: at a target that cannot filter, a create refused with
// 409 because the target has the account already (its userName spelled otherwise, without
// externalId) links that account, found in the listing, instead of failing for good; with
// link_existing the account is found before any create, by its email.
func TestConflictResolvedInTheListing(t *testing.T) {
	t.Run("409", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoFilter: true}}, nil)
		id := w.target.AddUser(map[string]any{"userName": "ADA"})
		ada := user("ada", "ext-ada")
		res, err := w.write(object.User, ada)
		if err != nil || len(res.Failed) != 0 {
			t.Fatalf("WriteObjects: %+v, %v", res, err)
		}
		w.checkLinked(1, ada)
		if l, _ := w.link(object.User, ada.ID); l.Remote() != id {
			t.Errorf("linked to %q, want the existing account %s", l.Remote(), id)
		}
		want := []string{"GET /ServiceProviderConfig", "POST /Users", "GET /Users", "PUT /Users/{id}"}
		if got := w.routes(); !slices.Equal(got, want) {
			t.Errorf("requests %v, want %v", got, want)
		}
		w.checkListedWithoutFilter()
	})
	t.Run("link_existing", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoFilter: true}},
			func(_ *scimtest.Server, p *store.Provider) { p.LinkExisting = true })
		id := w.target.AddUser(map[string]any{"userName": "alovelace", "emails": []any{map[string]any{"Value": "ADA@EXAMPLE.TEST"}}})
		ada := user("ada", "ext-ada")
		ada.Payload["emails"] = []any{map[string]any{"value": "ada@example.test", "primary": true}}
		res, err := w.write(object.User, ada)
		if err != nil || len(res.Failed) != 0 {
			t.Fatalf("WriteObjects: %+v, %v", res, err)
		}
		w.checkLinked(1, ada)
		if l, _ := w.link(object.User, ada.ID); l.Remote() != id {
			t.Errorf("linked to %q, want the existing account %s", l.Remote(), id)
		}
		want := []string{"GET /ServiceProviderConfig", "GET /Users", "PUT /Users/{id}"}
		if got := w.routes(); !slices.Equal(got, want) {
			t.Errorf("requests %v, want %v", got, want)
		}
	})
}

// TestDeprovisionFindsALostCreateInTheListing: deprovisioning an object whose create may
// have gone through, at a target that cannot filter, deletes what the create made, found
// in the listing, rather than forgetting the link and leaving the account behind.
func TestDeprovisionFindsALostCreateInTheListing(t *testing.T) {
	w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoFilter: true}}, nil)
	ada := user("ada", "ext-ada")
	if _, err := w.store.MarkCreating(w.ctx, w.provider.ID, object.User, ada.ID, mustJSON(t, ada.Payload)); err != nil {
		t.Fatal(err)
	}
	id := w.target.AddUser(ada.Payload) // what the create whose answer was lost made
	w.target.AddUser(map[string]any{"userName": "someone-else"})
	res, err := w.acts.Deprovision(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: object.User, IDs: []string{ada.ID}})
	if err != nil || res.Deprovisioned != 1 || len(res.Failed) != 0 {
		t.Fatalf("Deprovision: %+v, %v", res, err)
	}
	if _, ok := w.target.User(id); ok {
		t.Error("the account the lost create made is still at the target")
	}
	if n := len(w.target.Users()); n != 1 {
		t.Errorf("target has %d users, want 1 (someone-else)", n)
	}
	if _, ok := w.link(object.User, ada.ID); ok {
		t.Error("link kept")
	}
	want := []string{"GET /ServiceProviderConfig", "GET /Users", "DELETE /Users/{id}"}
	if got := w.routes(); !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

// TestLostCreateFoundByFilter: at a target that filters, a create whose answer was lost is
// looked up before it is posted again, in the activity's next pass: by the externalId the
// create carried, in one request whose answer decides; by userName when the payload has
// no externalId, or when the target refuses to filter on it. Found, the user is linked
// and written whole; the target holds it once.
func TestLostCreateFoundByFilter(t *testing.T) {
	for _, tt := range []struct {
		name       string
		externalID string
		fault      *scimtest.Fault
		lookups    []string
	}{
		{"by externalId", "ext-ada", nil, []string{`GET /Users?filter=externalId eq "ext-ada"`}},
		{"without externalId", "", nil, []string{`GET /Users?filter=userName eq "ada"`}},
		{"externalId filter refused", "ext-ada", &scimtest.Fault{Method: "GET", Route: "/Users", Status: 400, ScimType: "invalidFilter", Times: 1},
			[]string{`GET /Users?filter=externalId eq "ext-ada"`, `GET /Users?filter=userName eq "ada"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, scimtest.Options{}, nil)
			w.target.AddFault(lostAnswer("/Users"))
			if tt.fault != nil {
				w.target.AddFault(*tt.fault)
			}
			ada := user("ada", tt.externalID)
			body := `"schemas":["` + userSchema + `"],"userName":"ada","active":true`
			if tt.externalID == "" {
				delete(ada.Payload, "externalId")
			} else {
				body += `,"externalId":"` + tt.externalID + `"`
			}
			w.writeExpect(activities.WriteResult{Updated: 1, Linked: []string{ada.ID}}, object.User, ada)
			users := w.target.Users()
			if len(users) != 1 {
				t.Fatalf("target users %v, want ada once", users)
			}
			id := users[0]["id"].(string)
			want := append([]string{`POST /Users {` + body + `}`}, tt.lookups...)
			w.checkSent(append(want, `PUT /Users/`+id+` {"id":"`+id+`",`+body+`}`)...)
			w.checkRow(object.User, ada, linkRow{Remote: id, Hash: ada.Hash, Payload: payloadJSON(t, ada), Members: "null", CreateUncertain: true})
		})
	}
}
