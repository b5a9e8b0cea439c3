package scim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

// bigID is above 2^53: a float64 would read it as 9007199254740992.
const bigID = "9007199254740993"

// answer makes the target answer requests of method to route with body, as JSON.
func answer(srv *scimtest.Server, method, route string, status int, body string) {
	srv.AddFault(scimtest.Fault{Method: method, Route: route, Status: status, ContentType: "application/scim+json", Body: body})
}

// TestResponsesReadWhateverTheCaseAndSize: attribute names in answers are read
// case-insensitively (RFC 7643 §2.1) and integers keep every digit, in every kind of
// answer: a resource, a create, a list page and a Bulk result.
func TestResponsesReadWhateverTheCaseAndSize(t *testing.T) {
	ctx := context.Background()
	const user = `{"ID":` + bigID + `,"externalID":"ext-1","USERNAME":"ada","employeeNumber":12345678901234567890,
		"META":{"ResourceType":"User","LOCATION":"https://t.example/Users/` + bigID + `","lastmodified":"2030-01-02T03:04:05Z","Version":"W/\"1\""}}`
	check := func(t *testing.T, r scim.Resource) {
		t.Helper()
		if r.ID != bigID || r.ExternalID != "ext-1" {
			t.Errorf("id %q externalId %q, want %s and ext-1", r.ID, r.ExternalID, bigID)
		}
		m := r.Meta
		if m.ResourceType != "User" || m.Location != "https://t.example/Users/"+bigID || m.Version != `W/"1"` ||
			!m.LastModified.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("meta %+v", m)
		}
		if v := scim.Attr(r.Attributes, "userName"); v != "ada" {
			t.Errorf("userName %v, want ada", v)
		}
		if v := r.Attributes["employeeNumber"]; v != json.Number("12345678901234567890") {
			t.Errorf("employeeNumber %#v, want every digit", v)
		}
	}
	t.Run("get", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		answer(srv, "GET", "/Users/{id}", 200, user)
		r, err := c.Get(ctx, scim.Users, bigID)
		if err != nil {
			t.Fatal(err)
		}
		check(t, r)
	})
	t.Run("create", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		answer(srv, "POST", "/Users", 201, user)
		r, err := c.Create(ctx, scim.Users, map[string]any{"userName": "ada"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, r)
	})
	t.Run("list", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		answer(srv, "GET", "/Users", 200, `{"schemas":["`+scim.SchemaListResponse+`"],"TOTALRESULTS":1,"resources":[`+user+`]}`)
		page, err := c.SearchPage(ctx, scim.Users, scim.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if page.TotalResults != 1 || len(page.Resources) != 1 {
			t.Fatalf("page %+v, want the one resource", page)
		}
		check(t, page.Resources[0])
	})
	t.Run("bulk", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		answer(srv, "POST", "/Bulk", 200, `{"schemas":["`+scim.SchemaBulkResponse+`"],"Operations":[
			{"METHOD":"POST","BulkId":"ada","Status":"201","Response":{"Id":`+bigID+`}}]}`)
		res, err := c.Bulk(ctx, []scim.BulkOperation{postUser("ada")}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[0].ID != bigID || res[0].Status != http.StatusCreated {
			t.Errorf("result %+v, want created with id %s", res[0], bigID)
		}
	})
}
