package activities_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// TestNumericIDAbove2Pow53RoundTrips: a target that gives users integer ids beyond what a
// float64 holds exactly, with attribute names spelled its own way, has its user linked
// under the exact id, and the next write goes to that id.
func TestNumericIDAbove2Pow53RoundTrips(t *testing.T) {
	const id = "9007199254740993"
	var mu sync.Mutex
	var requests []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		var in map[string]any
		_ = json.Unmarshal(body, &in)
		w.Header().Set("Content-Type", "application/scim+json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/Users":
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"ID":` + id + `,"USERNAME":"ada","externalID":"ext-ada"}`))
		case r.Method == http.MethodPut && r.URL.Path == "/Users/"+id:
			_, _ = w.Write([]byte(`{"ID":` + id + `,"USERNAME":"ada","externalID":"ext-ada"}`))
		default: // discovery among others: the client falls back to PUT without filter
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status":"404"}`))
		}
	}))
	defer target.Close()
	w := newWorld(t, scimtest.Options{}, func(_ *scimtest.Server, p *store.Provider) { p.BaseURL = target.URL })
	ada := user("ada", "ext-ada")
	if res, err := w.write(object.User, ada); err != nil || res.Created != 1 {
		t.Fatalf("create: %+v, %v", res, err)
	}
	if l, _ := w.link(object.User, ada.ID); l.Remote() != id {
		t.Fatalf("link remote id %q, want %s", l.Remote(), id)
	}
	ada.Payload["active"], ada.Hash = false, "h-ada-inactive"
	if res, err := w.write(object.User, ada); err != nil || res.Updated != 1 {
		t.Fatalf("update: %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(requests); n < 2 || !slices.Equal(requests[n-2:], []string{"POST /Users", "PUT /Users/" + id}) {
		t.Errorf("requests %v, want the create, then the update at /Users/%s", requests, id)
	}
}

// TestRepairPatchesOnlyWhatDiffersWhateverTheSpelling: a read-back found a user's name
// edited at the target, which spells attribute names its own way ("Name", "FamilyName"):
// the repair is one PATCH operation on name.familyName, nothing for the attributes that
// only differ in case.
func TestRepairPatchesOnlyWhatDiffersWhateverTheSpelling(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, nil)
	ada := user("ada", "ext-ada")
	ada.Payload["name"] = map[string]any{"givenName": "Ada", "familyName": "Lovelace"}
	if _, err := w.write(object.User, ada); err != nil {
		t.Fatal(err)
	}
	l, _ := w.link(object.User, ada.ID)
	edited, _ := json.Marshal(map[string]any{"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"UserName": "ada", "ExternalId": "ext-ada", "Active": true, "Name": map[string]any{"GivenName": "Ada", "FamilyName": "Edited"}})
	req, _ := http.NewRequest(http.MethodPut, w.target.URL+"/Users/"+l.Remote(), bytes.NewReader(edited))
	req.Header.Set("Authorization", "Bearer "+targetToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("edit at the target: %v %v", resp, err)
	}
	resp.Body.Close()

	readBack := uuid.NewString()
	in := activities.ReadPageInput{Provider: w.provider.Name, Kind: object.User, ReadBack: readBack}
	if err := w.acts.StartReadBack(w.ctx, in); err != nil {
		t.Fatal(err)
	}
	if res, err := w.acts.ReadTargetPage(w.ctx, in); err != nil || res.Read != 1 {
		t.Fatalf("read-back: %+v, %v", res, err)
	}
	w.target.ResetLog()
	ada.Repair = activities.RepairAttributes
	res, err := w.acts.WriteObjects(w.ctx, activities.WriteInput{Provider: w.provider.Name, Kind: object.User,
		ReadBack: readBack, Objects: []activities.MappedObject{ada}})
	if err != nil || res.Repaired != 1 {
		t.Fatalf("repair: %+v, %v", res, err)
	}
	reqs := w.target.Requests()
	if len(reqs) != 1 || reqs[0].Route != "PATCH /Users/{id}" {
		t.Fatalf("requests %v, want one PATCH", w.routes())
	}
	var body struct{ Operations []map[string]any }
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"op": "replace", "path": "name.familyName", "value": "Lovelace"}}
	if got, _ := json.Marshal(body.Operations); !bytes.Equal(got, mustJSON(t, want)) {
		t.Errorf("PATCH operations %s, want %s", got, mustJSON(t, want))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
