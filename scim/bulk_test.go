package scim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

func postUser(name string) scim.BulkOperation {
	return scim.BulkOperation{Method: http.MethodPost, Kind: scim.Users, BulkID: name, Data: map[string]any{"userName": name}}
}

// bulkRequestSizes returns the operation counts and body sizes of the
// /Bulk requests the server received.
func bulkRequestSizes(t *testing.T, srv *scimtest.Server) (ops, sizes []int) {
	t.Helper()
	for _, r := range srv.Requests() {
		if r.Route != "POST /Bulk" {
			continue
		}
		var body struct{ Operations []json.RawMessage }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, len(body.Operations))
		sizes = append(sizes, len(r.Body))
	}
	return ops, sizes
}

func TestBulkChunking(t *testing.T) {
	ctx := context.Background()
	t.Run("maxOperations", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{BulkMaxOperations: 3}}, scim.Options{})
		var ops []scim.BulkOperation
		for i := range 8 {
			ops = append(ops, postUser(fmt.Sprint("u", i)))
		}
		res, err := c.Bulk(ctx, ops, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || r.Status != 201 || r.ID == "" || r.BulkID != fmt.Sprint("u", i) {
				t.Errorf("result %d = %+v", i, r)
			}
			if u, ok := srv.User(r.ID); !ok || u["userName"] != fmt.Sprint("u", i) {
				t.Errorf("result %d id %q does not name user u%d", i, r.ID, i)
			}
		}
		if got, _ := bulkRequestSizes(t, srv); fmt.Sprint(got) != "[3 3 2]" {
			t.Errorf("operations per request = %v, want [3 3 2]", got)
		}
	})
	t.Run("maxPayloadSize", func(t *testing.T) {
		const limit = 600
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{BulkMaxPayloadSize: limit}}, scim.Options{})
		var ops []scim.BulkOperation
		for i := range 10 {
			ops = append(ops, scim.BulkOperation{Method: "POST", Kind: scim.Users, Data: map[string]any{
				"userName": fmt.Sprint("user", i), "title": strings.Repeat("t", 100)}})
		}
		res, err := c.Bulk(ctx, ops, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Errorf("result %d: %v", i, r.Err)
			}
		}
		counts, sizes := bulkRequestSizes(t, srv)
		if len(counts) < 3 {
			t.Errorf("requests = %v, want the 10 operations split by size", counts)
		}
		for _, s := range sizes {
			if s > limit {
				t.Errorf("request of %d bytes exceeds maxPayloadSize %d", s, limit)
			}
		}
		if u, _ := srv.Len(); u != 10 {
			t.Errorf("users = %d, want 10", u)
		}
	})
	t.Run("one operation larger than maxPayloadSize", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{BulkMaxPayloadSize: 400}}, scim.Options{})
		ops := []scim.BulkOperation{postUser("a"),
			{Method: "POST", Kind: scim.Users, Data: map[string]any{"userName": "big", "title": strings.Repeat("x", 1000)}},
			postUser("b")}
		res, err := c.Bulk(ctx, ops, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[2].Err != nil || !errors.Is(res[1].Err, scim.ErrPayloadTooLarge) || !scim.IsObjectError(res[1].Err) {
			t.Errorf("results = %+v", res)
		}
		if u, _ := srv.Len(); u != 2 {
			t.Errorf("users = %d, want 2", u)
		}
	})
	t.Run("bulkId references across chunks", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{BulkMaxOperations: 1}}, scim.Options{})
		ops := []scim.BulkOperation{
			postUser("alice"),
			{Method: "POST", Kind: scim.Groups, BulkID: "g", Data: map[string]any{
				"displayName": "g", "members": []any{map[string]any{"value": "bulkId:alice"}}}},
			{Method: "PATCH", Kind: scim.Users, ID: "bulkId:alice", Data: []scim.PatchOp{{Op: "replace", Path: "title", Value: "x"}}},
			{Method: "DELETE", Kind: scim.Groups, ID: "bulkId:g"},
		}
		res, err := c.Bulk(ctx, ops, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("result %d: %v", i, r.Err)
			}
		}
		if res[2].ID != res[0].ID || res[3].ID != res[1].ID {
			t.Errorf("ids = %+v", res)
		}
		if u, _ := srv.User(res[0].ID); u["title"] != "x" {
			t.Errorf("user = %v", u)
		}
		if _, ok := srv.Group(res[1].ID); ok {
			t.Error("group not deleted")
		}
	})
}

func TestBulkPartialFailure(t *testing.T) {
	ctx := context.Background()
	t.Run("errors per operation", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{BulkMaxOperations: 2}}, scim.Options{})
		srv.AddUser(map[string]any{"userName": "taken"})
		ops := []scim.BulkOperation{postUser("a"), postUser("TAKEN"), postUser("b"),
			{Method: "DELETE", Kind: scim.Users, ID: "missing"}, postUser("c")}
		res, err := c.Bulk(ctx, ops, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []int{201, 409, 201, 404, 201}
		for i, r := range res {
			if r.Status != want[i] {
				t.Errorf("result %d status = %d, want %d", i, r.Status, want[i])
			}
		}
		if !scim.IsConflict(res[1].Err) || !scim.IsNotFound(res[3].Err) {
			t.Errorf("errors = %v / %v", res[1].Err, res[3].Err)
		}
		var e *scim.Error
		if errors.As(res[1].Err, &e); e.ScimType != "uniqueness" || e.Op != "bulk" || e.Path != "/Users" {
			t.Errorf("conflict error = %+v", e)
		}
		if u, _ := srv.Len(); u != 4 {
			t.Errorf("users = %d, want 4", u)
		}
	})
	t.Run("failOnErrors stops the server and the client", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{BulkMaxOperations: 3}}, scim.Options{})
		srv.AddUser(map[string]any{"userName": "taken"})
		dup := func(bulkID string) scim.BulkOperation {
			return scim.BulkOperation{Method: "POST", Kind: scim.Users, BulkID: bulkID, Data: map[string]any{"userName": "taken"}}
		}
		ops := []scim.BulkOperation{dup("t1"), postUser("a"), dup("t2"), postUser("b"), postUser("c"), postUser("d")}
		res, err := c.Bulk(ctx, ops, 2)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res {
			switch {
			case errors.Is(r.Err, scim.ErrNotAttempted):
				got = append(got, "skipped")
			case r.Err != nil:
				got = append(got, fmt.Sprint(r.Status))
			default:
				got = append(got, "ok")
			}
		}
		if fmt.Sprint(got) != "[409 ok 409 skipped skipped skipped]" {
			t.Errorf("results = %v", got)
		}
		if n := srv.Count("POST /Bulk"); n != 1 {
			t.Errorf("bulk requests = %d, want 1", n)
		}
	})
	t.Run("a create answered without location or id", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		srv.AddFault(scimtest.Fault{Route: "/Bulk", ContentType: "application/scim+json", Body: `{"schemas":["` +
			scim.SchemaBulkResponse + `"],"Operations":[
			{"method":"POST","bulkId":"a","status":"201","location":"` + srv.URL + `/Users/id-a"},
			{"method":"POST","bulkId":"b","status":"201"},
			{"method":"POST","bulkId":"c","status":"201","response":{"userName":"c"}},
			{"method":"POST","bulkId":"d","status":"201","response":{"id":"id-d","userName":"d"}}]}`})
		res, err := c.Bulk(ctx, []scim.BulkOperation{postUser("a"), postUser("b"), postUser("c"), postUser("d")}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[0].ID != "id-a" || res[3].Err != nil || res[3].ID != "id-d" {
			t.Errorf("results a, d = %+v, %+v; want ids id-a and id-d", res[0], res[3])
		}
		for _, r := range res[1:3] {
			var e *scim.Error
			if !errors.As(r.Err, &e) || !errors.Is(r.Err, scim.ErrNoID) || e.Status != 201 || e.Method != "POST" || e.Path != "/Users" {
				t.Errorf("result %s = %+v, want a 201 *scim.Error wrapping ErrNoID", r.BulkID, r)
			}
			if !scim.IsObjectError(r.Err) || scim.IsRetryable(r.Err) || scim.IsRefused(r.Err) {
				t.Errorf("result %s: %v, want an object error, neither retryable nor refused (it may exist)", r.BulkID, r.Err)
			}
			if r.ID != "" {
				t.Errorf("result %s id %q, want none", r.BulkID, r.ID)
			}
		}
	})
	t.Run("duplicate bulkId", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		if _, err := c.Bulk(ctx, []scim.BulkOperation{postUser("a"), postUser("a")}, 0); err == nil || srv.Count("POST /Bulk") != 0 {
			t.Errorf("err = %v, want a refusal before sending", err)
		}
	})
	t.Run("whole request fails", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{BulkMaxOperations: 1}}, scim.Options{})
		srv.AddFault(scimtest.Fault{Route: "/Bulk", Status: 503, RetryAfter: "5", Rate: 1})
		res, err := c.Bulk(ctx, []scim.BulkOperation{postUser("a"), postUser("b")}, 0)
		if !scim.IsRateLimited(err) || scim.RetryAfterOf(err).Seconds() != 5 {
			t.Fatalf("err = %v, want 503 with Retry-After", err)
		}
		for _, r := range res {
			if !errors.Is(r.Err, scim.ErrNotAttempted) {
				t.Errorf("result = %+v, want not attempted", r)
			}
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			so   scimtest.Options
			mode scim.Mode
		}{
			{"discovery says no", scimtest.Options{Config: scimtest.Config{NoBulk: true}}, scim.ModeDefault},
			{"aws", scimtest.Options{Quirks: scimtest.Profile("aws")}, scim.ModeAWS},
		} {
			srv, c := newPair(t, tc.so, scim.Options{Mode: tc.mode})
			_, err := c.Bulk(ctx, []scim.BulkOperation{postUser("a")}, 0)
			if !errors.Is(err, scim.ErrUnsupported) {
				t.Errorf("%s: err = %v, want ErrUnsupported", tc.name, err)
			}
			if srv.Count("POST /Bulk") != 0 {
				t.Errorf("%s: a bulk request was sent", tc.name)
			}
		}
	})
}
