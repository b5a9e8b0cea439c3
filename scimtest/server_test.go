package scimtest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scimtest"
)

const (
	userSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	bulkSchema  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
)

// call sends one request and decodes the JSON answer.
func call(t testing.TB, srv *scimtest.Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	if tok := srv.Options.Token; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, path, data)
		}
	}
	return resp.StatusCode, out
}

func newUser(name string, extra ...any) map[string]any {
	u := map[string]any{"schemas": []any{userSchema}, "userName": name}
	for i := 0; i+1 < len(extra); i += 2 {
		u[extra[i].(string)] = extra[i+1]
	}
	return u
}

func listNames(t *testing.T, srv *scimtest.Server, filter string) []string {
	t.Helper()
	status, out := call(t, srv, "GET", "/Users?filter="+url.QueryEscape(filter), nil)
	if status != 200 {
		t.Fatalf("filter %q: status %d %v", filter, status, out)
	}
	var names []string
	for _, r := range out["Resources"].([]any) {
		names = append(names, r.(map[string]any)["userName"].(string))
	}
	sort.Strings(names)
	return names
}

func TestFilters(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{})
	defer srv.Close()
	srv.AddUser(newUser("Alice", "externalId", "EXT-1", "active", true, "title", "Engineer",
		"name", map[string]any{"givenName": "Alice", "familyName": "Archer"},
		"emails", []any{map[string]any{"value": "alice@example.com", "type": "work"}, map[string]any{"value": "a@home.example", "type": "home"}}))
	srv.AddUser(newUser("bob", "externalId", "ext-2", "active", false, "title", "Manager",
		"emails", []any{map[string]any{"value": "bob@example.com", "type": "work"}}))
	srv.AddUser(newUser("carol", "active", true))
	tests := []struct {
		filter string
		want   []string
	}{
		{`userName eq "ALICE"`, []string{"Alice"}}, // caseExact false
		{`USERNAME Eq "alice"`, []string{"Alice"}}, // attribute names and operators too
		{`externalId eq "ext-1"`, nil},             // externalId is caseExact
		{`externalId eq "EXT-1"`, []string{"Alice"}},
		{`userName ne "bob"`, []string{"Alice", "carol"}},
		{`title co "GIN"`, []string{"Alice"}},
		{`userName sw "c"`, []string{"carol"}},
		{`userName ew "B"`, []string{"bob"}},
		{`title pr`, []string{"Alice", "bob"}},
		{`active eq true and title pr`, []string{"Alice"}},
		{`active eq false or userName eq "carol"`, []string{"bob", "carol"}},
		{`not (active eq true)`, []string{"bob"}},
		{`name.familyName eq "archer"`, []string{"Alice"}},
		{`emails co "example.com"`, []string{"Alice", "bob"}},
		{`emails[type eq "home" and value ew ".example"]`, []string{"Alice"}},
		{`emails.value eq "BOB@example.com"`, []string{"bob"}},
		{`(userName eq "bob" or userName eq "carol") and active eq true`, []string{"carol"}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob"`, []string{"bob"}},
		{`userName gt "b"`, []string{"bob", "carol"}},
	}
	for _, tt := range tests {
		if got := listNames(t, srv, tt.filter); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("filter %s = %q, want %q", tt.filter, got, tt.want)
		}
	}
	for _, bad := range []string{`userName eq`, `userName xx "a"`, `(userName eq "a"`, `userName eq "a`, `userName eq "a" and`, `emails[type eq "x"`} {
		status, out := call(t, srv, "GET", "/Users?filter="+url.QueryEscape(bad), nil)
		if status != 400 || out["scimType"] != "invalidFilter" {
			t.Errorf("filter %q: %d %v, want 400 invalidFilter", bad, status, out)
		}
	}
}

func TestParseFilterString(t *testing.T) {
	f, err := scimtest.ParseFilter(`a eq "x\"y" and (b pr or not (c lt 3))`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.String(), `(a eq "x\"y" and (b pr or not (c lt 3)))`; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}

func TestCRUDAndErrors(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{Token: "tok"})
	defer srv.Close()
	status, created := call(t, srv, "POST", "/Users", newUser("alice", "active", true))
	if status != 201 || created["id"] == "" {
		t.Fatalf("POST = %d %v", status, created)
	}
	id := created["id"].(string)
	meta := created["meta"].(map[string]any)
	if meta["resourceType"] != "User" || meta["location"] != srv.URL+"/Users/"+id || meta["version"] != `W/"1"` {
		t.Errorf("meta = %v", meta)
	}
	tests := []struct {
		name           string
		method, path   string
		body           any
		status         int
		scimType       string
		token          string
		overrideHeader bool
	}{
		{name: "duplicate userName", method: "POST", path: "/Users", body: newUser("ALICE"), status: 409, scimType: "uniqueness"},
		{name: "missing userName", method: "POST", path: "/Users", body: map[string]any{"schemas": []any{userSchema}}, status: 400, scimType: "invalidValue"},
		{name: "missing schemas", method: "POST", path: "/Users", body: map[string]any{"userName": "x"}, status: 400, scimType: "invalidSyntax"},
		{name: "string boolean", method: "POST", path: "/Users", body: newUser("x", "active", "False"), status: 400, scimType: "invalidValue"},
		{name: "get missing", method: "GET", path: "/Users/nope", status: 404},
		{name: "put missing", method: "PUT", path: "/Users/nope", body: newUser("x"), status: 404},
		{name: "patch missing", method: "PATCH", path: "/Users/nope", body: map[string]any{"schemas": []any{patchSchema}, "Operations": []any{map[string]any{"op": "add", "path": "title", "value": "x"}}}, status: 404},
		{name: "delete missing", method: "DELETE", path: "/Users/nope", status: 404},
		{name: "unknown member", method: "POST", path: "/Groups", body: map[string]any{"schemas": []any{groupSchema}, "displayName": "g", "members": []any{map[string]any{"value": "nope"}}}, status: 400, scimType: "invalidValue"},
		{name: "unknown endpoint", method: "GET", path: "/Nope", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := call(t, srv, tt.method, tt.path, tt.body)
			if status != tt.status || (tt.scimType != "" && out["scimType"] != tt.scimType) {
				t.Errorf("%s %s = %d %v, want %d %s", tt.method, tt.path, status, out, tt.status, tt.scimType)
			}
			if out != nil && (out["status"] != fmt.Sprint(tt.status) || !reflect.DeepEqual(out["schemas"], []any{"urn:ietf:params:scim:api:messages:2.0:Error"})) {
				t.Errorf("error body = %v", out)
			}
		})
	}
	t.Run("bad token", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/Users", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("status = %d", resp.StatusCode)
		}
	})
	t.Run("put keeps created and bumps version", func(t *testing.T) {
		status, out := call(t, srv, "PUT", "/Users/"+id, newUser("alice2"))
		if status != 200 || out["userName"] != "alice2" || out["active"] != nil {
			t.Fatalf("PUT = %d %v", status, out)
		}
		m := out["meta"].(map[string]any)
		if m["created"] != meta["created"] || m["version"] != `W/"2"` {
			t.Errorf("meta = %v", m)
		}
		if _, ok := srv.UserByName("ALICE2"); !ok {
			t.Error("index not updated by PUT")
		}
		if status, _ := call(t, srv, "POST", "/Users", newUser("alice")); status != 201 {
			t.Errorf("old userName still taken: %d", status)
		}
	})
	if got := srv.Count("POST /Users"); got < 4 {
		t.Errorf("Count(POST /Users) = %d", got)
	}
}

func patch(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, op := range ops {
		list[i] = op
	}
	return map[string]any{"schemas": []any{patchSchema}, "Operations": list}
}

func op(o, path string, value any) map[string]any {
	m := map[string]any{"op": o}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

func TestPatch(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{})
	defer srv.Close()
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	uid := srv.AddUser(newUser("u", "title", "t", "name", map[string]any{"givenName": "G", "familyName": "F"},
		"emails", []any{map[string]any{"value": "w@x", "type": "work"}, map[string]any{"value": "h@x", "type": "home"}}))
	u2 := srv.AddUser(newUser("u2"))
	u3 := srv.AddUser(newUser("u3"))
	gid := srv.AddGroup(map[string]any{"displayName": "g", "members": []any{map[string]any{"value": uid}}})
	tests := []struct {
		name   string
		path   string
		body   map[string]any
		status int
		check  func(t *testing.T)
	}{
		{"replace scalar", "/Users/" + uid, patch(op("replace", "title", "T2")), 200, func(t *testing.T) {
			if u, _ := srv.User(uid); u["title"] != "T2" {
				t.Errorf("title = %v", u["title"])
			}
		}},
		{"sub-attribute", "/Users/" + uid, patch(op("replace", "name.givenName", "H"), op("remove", "name.familyName", nil)), 200, func(t *testing.T) {
			if u, _ := srv.User(uid); !reflect.DeepEqual(u["name"], map[string]any{"givenName": "H"}) {
				t.Errorf("name = %v", u["name"])
			}
		}},
		{"no path, capitalised op (Entra)", "/Users/" + uid, patch(op("Replace", "", map[string]any{"title": "T3", "active": false})), 200, func(t *testing.T) {
			if u, _ := srv.User(uid); u["title"] != "T3" || u["active"] != false {
				t.Errorf("user = %v", u)
			}
		}},
		{"filtered path sub-attribute", "/Users/" + uid, patch(op("replace", `emails[type eq "work"].value`, "w2@x")), 200, func(t *testing.T) {
			u, _ := srv.User(uid)
			if v := u["emails"].([]any)[0].(map[string]any)["value"]; v != "w2@x" {
				t.Errorf("emails = %v", u["emails"])
			}
		}},
		{"filtered remove", "/Users/" + uid, patch(op("remove", `emails[type eq "home"]`, nil)), 200, func(t *testing.T) {
			if u, _ := srv.User(uid); len(u["emails"].([]any)) != 1 {
				t.Errorf("emails = %v", u["emails"])
			}
		}},
		{"extension attribute", "/Users/" + uid, patch(op("add", ent+":department", "Ops")), 200, func(t *testing.T) {
			u, _ := srv.User(uid)
			if !reflect.DeepEqual(u[ent], map[string]any{"department": "Ops"}) || !strings.Contains(fmt.Sprint(u["schemas"]), ent) {
				t.Errorf("user = %v", u)
			}
		}},
		{"filter matching nothing on replace", "/Users/" + uid, patch(op("replace", `emails[type eq "nope"].value`, "x")), 400, nil},
		{"read-only id", "/Users/" + uid, patch(op("replace", "id", "x")), 400, nil},
		{"bad op", "/Users/" + uid, patch(op("move", "title", "x")), 400, nil},
		{"no schemas", "/Users/" + uid, map[string]any{"Operations": []any{op("add", "title", "x")}}, 400, nil},
		{"uniqueness on patch", "/Users/" + u2, patch(op("replace", "userName", "U")), 409, nil},
		{"members add", "/Groups/" + gid, patch(op("add", "members", []any{map[string]any{"value": u2}, map[string]any{"value": u3}, map[string]any{"value": uid}})), 200, func(t *testing.T) {
			if m := srv.GroupMembers(gid); len(m) != 3 {
				t.Errorf("members = %v", m)
			}
		}},
		{"members remove by filter", "/Groups/" + gid, patch(op("remove", fmt.Sprintf("members[value eq %q]", u2), nil)), 200, func(t *testing.T) {
			if m := srv.GroupMembers(gid); len(m) != 2 {
				t.Errorf("members = %v", m)
			}
		}},
		{"members remove again is a no-op", "/Groups/" + gid, patch(op("remove", fmt.Sprintf("members[value eq %q]", u2), nil)), 200, nil},
		{"members remove with value list (Entra)", "/Groups/" + gid, patch(op("Remove", "members", []any{map[string]any{"value": u3}})), 200, func(t *testing.T) {
			if m := srv.GroupMembers(gid); !reflect.DeepEqual(m, []string{uid}) {
				t.Errorf("members = %v", m)
			}
		}},
		{"members replace", "/Groups/" + gid, patch(op("replace", "members", []any{map[string]any{"value": u2}})), 200, func(t *testing.T) {
			if m := srv.GroupMembers(gid); !reflect.DeepEqual(m, []string{u2}) {
				t.Errorf("members = %v", m)
			}
		}},
		{"unknown member", "/Groups/" + gid, patch(op("add", "members", []any{map[string]any{"value": "nope"}})), 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := call(t, srv, "PATCH", tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("PATCH = %d %v, want %d", status, out, tt.status)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	t.Run("deleting a user drops it from groups", func(t *testing.T) {
		if status, _ := call(t, srv, "DELETE", "/Users/"+u2, nil); status != 204 {
			t.Fatal(status)
		}
		if m := srv.GroupMembers(gid); len(m) != 0 {
			t.Errorf("members = %v", m)
		}
	})
}

func TestPaging(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{MaxPageSize: 3})
	defer srv.Close()
	for i := range 8 {
		srv.AddUser(newUser(fmt.Sprintf("u%d", i)))
	}
	tests := []struct {
		query           string
		total, start, n int
		first           string
	}{
		{"", 8, 1, 3, "u0"},
		{"?startIndex=4&count=2", 8, 4, 2, "u3"},
		{"?startIndex=7&count=10", 8, 7, 2, "u6"},
		{"?startIndex=20", 8, 20, 0, ""},
		{"?count=0", 8, 1, 0, ""},
		{"?startIndex=0&count=1", 8, 1, 1, "u0"},
	}
	for _, tt := range tests {
		status, out := call(t, srv, "GET", "/Users"+tt.query, nil)
		res := out["Resources"].([]any)
		if status != 200 || int(out["totalResults"].(float64)) != tt.total || int(out["startIndex"].(float64)) != tt.start || len(res) != tt.n || int(out["itemsPerPage"].(float64)) != tt.n {
			t.Errorf("GET /Users%s = %d total %v start %v n %d", tt.query, status, out["totalResults"], out["startIndex"], len(res))
			continue
		}
		if tt.n > 0 && res[0].(map[string]any)["userName"] != tt.first {
			t.Errorf("GET /Users%s first = %v, want %s", tt.query, res[0].(map[string]any)["userName"], tt.first)
		}
	}
}

func TestBulk(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{Config: scimtest.Config{BulkMaxOperations: 4, BulkMaxPayloadSize: 4096}})
	defer srv.Close()
	srv.AddUser(newUser("taken"))
	bulk := func(failOnErrors int, ops ...map[string]any) (int, map[string]any) {
		list := make([]any, len(ops))
		for i, o := range ops {
			list[i] = o
		}
		return call(t, srv, "POST", "/Bulk", map[string]any{"schemas": []any{bulkSchema}, "failOnErrors": failOnErrors, "Operations": list})
	}
	status, out := bulk(0,
		map[string]any{"method": "POST", "path": "/Users", "bulkId": "a", "data": newUser("a")},
		map[string]any{"method": "POST", "path": "/Groups", "bulkId": "g", "data": map[string]any{"schemas": []any{groupSchema}, "displayName": "g", "members": []any{map[string]any{"value": "bulkId:a"}}}},
		map[string]any{"method": "POST", "path": "/Users", "bulkId": "dup", "data": newUser("TAKEN")},
		map[string]any{"method": "PATCH", "path": "/Users/bulkId:a", "data": patch(op("add", "title", "x"))},
	)
	if status != 200 {
		t.Fatalf("bulk = %d %v", status, out)
	}
	var statuses []string
	for _, r := range out["Operations"].([]any) {
		statuses = append(statuses, r.(map[string]any)["status"].(string))
	}
	if fmt.Sprint(statuses) != "[201 201 409 200]" {
		t.Errorf("statuses = %v", statuses)
	}
	a, _ := srv.UserByName("a")
	if a["title"] != "x" {
		t.Errorf("user a = %v", a)
	}
	groups := srv.Groups()
	if len(groups) != 1 || !reflect.DeepEqual(srv.GroupMembers(groups[0]["id"].(string)), []string{a["id"].(string)}) {
		t.Errorf("groups = %v", groups)
	}
	status, out = bulk(1,
		map[string]any{"method": "POST", "path": "/Users", "bulkId": "x", "data": newUser("taken")},
		map[string]any{"method": "POST", "path": "/Users", "bulkId": "y", "data": newUser("y")},
	)
	if status != 200 || len(out["Operations"].([]any)) != 1 {
		t.Errorf("failOnErrors 1: %d %v", status, out)
	}
	ops := make([]map[string]any, 5)
	for i := range ops {
		ops[i] = map[string]any{"method": "DELETE", "path": "/Users/x"}
	}
	if status, _ := bulk(0, ops...); status != 413 {
		t.Errorf("over maxOperations: %d, want 413", status)
	}
	if status, _ := bulk(0, map[string]any{"method": "POST", "path": "/Users", "bulkId": "big", "data": newUser(strings.Repeat("b", 5000))}); status != 413 {
		t.Errorf("over maxPayloadSize: %d, want 413", status)
	}
}

func TestQuirks(t *testing.T) {
	t.Run("aws", func(t *testing.T) {
		srv := scimtest.NewServer(scimtest.Options{Quirks: scimtest.Profile("aws")})
		defer srv.Close()
		uid := srv.AddUser(newUser("u"))
		gid := srv.AddGroup(map[string]any{"displayName": "g", "members": []any{map[string]any{"value": uid}}})
		if _, out := call(t, srv, "GET", "/Groups/"+gid, nil); out["members"] != nil {
			t.Errorf("GET group has members: %v", out)
		}
		if len(srv.GroupMembers(gid)) != 1 {
			t.Error("members not stored")
		}
		if status, _ := call(t, srv, "GET", "/Users?filter="+url.QueryEscape(`userName sw "u"`), nil); status != 400 {
			t.Errorf("sw filter: %d, want 400", status)
		}
		if got := listNames(t, srv, `userName eq "u" and externalId eq "x"`); got != nil {
			t.Errorf("eq and eq = %v", got)
		}
		if status, _ := call(t, srv, "POST", "/Bulk", map[string]any{"schemas": []any{bulkSchema}, "Operations": []any{}}); status != 501 {
			t.Errorf("bulk: %d, want 501", status)
		}
		var refs []any
		for i := range 101 {
			refs = append(refs, map[string]any{"value": srv.AddUser(newUser(fmt.Sprint("m", i)))})
		}
		if status, _ := call(t, srv, "PATCH", "/Groups/"+gid, patch(op("add", "members", refs))); status != 400 {
			t.Errorf("101 member changes: %d, want 400", status)
		}
		if status, _ := call(t, srv, "PATCH", "/Groups/"+gid, patch(op("add", "members", refs[:100]))); status != 200 {
			t.Errorf("100 member changes: %d, want 200", status)
		}
	})
	t.Run("slack", func(t *testing.T) {
		srv := scimtest.NewServer(scimtest.Options{Quirks: scimtest.Profile("slack")})
		defer srv.Close()
		_, spc := call(t, srv, "GET", "/ServiceProviderConfig", nil)
		if spc["filter"].(map[string]any)["supported"] != false {
			t.Errorf("discovery = %v", spc)
		}
		uid := srv.AddUser(newUser("u", "active", true))
		if got := listNames(t, srv, `userName eq "u"`); len(got) != 1 {
			t.Errorf("filter does not work: %v", got)
		}
		if status, _ := call(t, srv, "DELETE", "/Users/"+uid, nil); status != 204 {
			t.Fatal(status)
		}
		if u, ok := srv.User(uid); !ok || u["active"] != false {
			t.Errorf("user after DELETE = %v, %v; want deactivated", u, ok)
		}
	})
	t.Run("salesforce", func(t *testing.T) {
		srv := scimtest.NewServer(scimtest.Options{Quirks: scimtest.Profile("salesforce")})
		defer srv.Close()
		if status, _ := call(t, srv, "GET", "/ServiceProviderConfig", nil); status != 404 {
			t.Errorf("singular: %d", status)
		}
		if status, _ := call(t, srv, "GET", "/ServiceProviderConfigs", nil); status != 200 {
			t.Errorf("plural: %d", status)
		}
	})
	t.Run("webex", func(t *testing.T) {
		srv := scimtest.NewServer(scimtest.Options{Quirks: scimtest.Profile("webex")})
		defer srv.Close()
		uid := srv.AddUser(newUser("u"))
		gid := srv.AddGroup(map[string]any{"displayName": "g"})
		if status, _ := call(t, srv, "PATCH", "/Groups/"+gid, patch(op("add", "members", []any{map[string]any{"value": uid}}))); status != 400 {
			t.Errorf("member without type: %d, want 400", status)
		}
		if status, _ := call(t, srv, "PATCH", "/Groups/"+gid, patch(op("add", "members", []any{map[string]any{"value": uid, "type": "user"}}))); status != 200 {
			t.Errorf("member with type user: %d, want 200", status)
		}
	})
	t.Run("vcenter", func(t *testing.T) {
		srv := scimtest.NewServer(scimtest.Options{Quirks: scimtest.Profile("vcenter")})
		defer srv.Close()
		for _, path := range []string{"/ServiceProviderConfig", "/ServiceProviderConfigs"} {
			if status, _ := call(t, srv, "GET", path, nil); status != 500 {
				t.Errorf("GET %s: %d, want 500", path, status)
			}
		}
		u1, u2 := srv.AddUser(newUser("u1")), srv.AddUser(newUser("u2"))
		status, g := call(t, srv, "POST", "/Groups", map[string]any{"schemas": []any{groupSchema}, "displayName": "g",
			"members": []any{map[string]any{"value": u1}}})
		if status != 201 {
			t.Fatalf("POST group with members: %d", status)
		}
		gid := g["id"].(string)
		for _, body := range []map[string]any{
			patch(op("add", "members", []any{map[string]any{"value": u2}})),
			patch(op("remove", `members[value eq "`+u1+`"]`, nil)),
			patch(op("replace", "", map[string]any{"members": []any{}})),
		} {
			if status, _ := call(t, srv, "PATCH", "/Groups/"+gid, body); status != 400 {
				t.Errorf("member PATCH %v: %d, want 400", body, status)
			}
		}
		if status, _ := call(t, srv, "PATCH", "/Groups/"+gid, patch(op("replace", "displayName", "h"))); status != 200 {
			t.Errorf("displayName PATCH: %d, want 200", status)
		}
		if status, _ := call(t, srv, "PUT", "/Groups/"+gid, map[string]any{"schemas": []any{groupSchema}, "displayName": "h",
			"members": []any{map[string]any{"value": u2}}}); status != 200 {
			t.Errorf("PUT group with members: %d, want 200", status)
		}
		if got := srv.GroupMembers(gid); len(got) != 1 || got[0] != u2 {
			t.Errorf("members = %v, want [%s]", got, u2)
		}
		if status, _ := call(t, srv, "POST", "/Bulk", map[string]any{"schemas": []any{bulkSchema}, "Operations": []any{}}); status != 501 {
			t.Errorf("bulk: %d, want 501", status)
		}
	})
	t.Run("gitlab", func(t *testing.T) {
		srv := scimtest.NewServer(scimtest.Options{Quirks: scimtest.Profile("gitlab")})
		defer srv.Close()
		for _, path := range []string{"/ServiceProviderConfig", "/ServiceProviderConfigs"} {
			if status, _ := call(t, srv, "GET", path, nil); status != 404 {
				t.Errorf("GET %s: %d, want 404", path, status)
			}
		}
		uid := srv.AddUser(newUser("u"))
		if status, _ := call(t, srv, "PUT", "/Users/"+uid, newUser("u", "title", "t")); status != 405 {
			t.Errorf("PUT user: %d, want 405", status)
		}
		if status, _ := call(t, srv, "PATCH", "/Users/"+uid, patch(op("replace", "title", "t"))); status != 200 {
			t.Errorf("PATCH user: %d, want 200", status)
		}
		if u, _ := srv.User(uid); u["title"] != "t" {
			t.Errorf("user after PATCH = %v", u)
		}
		if status, _ := call(t, srv, "POST", "/Bulk", map[string]any{"schemas": []any{bulkSchema}, "Operations": []any{}}); status != 501 {
			t.Errorf("bulk: %d, want 501", status)
		}
	})
	t.Run("unknown profile panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		scimtest.Profile("nope")
	})
}

func TestFaults(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{Seed: 42})
	defer srv.Close()
	srv.AddFault(scimtest.Fault{Method: "GET", Route: "/Users", Status: 500, Rate: 0.3})
	fails := 0
	for range 200 {
		if status, _ := call(t, srv, "GET", "/Users", nil); status == 500 {
			fails++
		}
	}
	if fails < 35 || fails > 85 || srv.FaultsFired() != fails {
		t.Errorf("failures at rate 0.3 = %d of 200 (fired %d)", fails, srv.FaultsFired())
	}
	srv.ClearFaults()
	srv.AddFault(scimtest.Fault{Route: "/Users/{id}", Status: 429, RetryAfter: "3", Times: 2})
	for i, want := range []int{429, 429, 404} {
		req, _ := http.NewRequest("GET", srv.URL+"/Users/x", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == 429 && resp.Header.Get("Retry-After") != "3") {
			t.Errorf("request %d = %d Retry-After %q", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	srv.ClearFaults()
	srv.AddFault(scimtest.Fault{Route: "/Users", Latency: 100 * time.Millisecond})
	start := time.Now()
	if status, _ := call(t, srv, "GET", "/Users", nil); status != 200 || time.Since(start) < 100*time.Millisecond {
		t.Errorf("latency fault: %d after %s", status, time.Since(start))
	}
	srv.ClearFaults()
	srv.AddFault(scimtest.Fault{Hang: true})
	hc := srv.Client()
	hc.Timeout = 100 * time.Millisecond
	if _, err := hc.Get(srv.URL + "/Users"); err == nil {
		t.Error("hang answered")
	}
	srv.ClearFaults()
	// The server sees the client give up a little later: poll the log.
	deadline := time.Now().Add(5 * time.Second)
	for {
		reqs := srv.Requests()
		last := reqs[len(reqs)-1]
		if last.Route == "GET /Users" && last.Status == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hung request not logged with status 0; last = %s %d", last.Route, last.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Reset()
	if len(srv.Requests()) != 0 || len(srv.Counts()) != 0 {
		t.Error("Reset kept the log")
	}
}

// TestFaultAfterServing: a fault AfterServing keeps what the request did and loses its
// answer: replaced by the fault's status, or the connection closed without one.
func TestFaultAfterServing(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{Token: "t"})
	defer srv.Close()
	srv.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", AfterServing: true, Status: 502, Times: 1})
	if status, _ := call(t, srv, "POST", "/Users", newUser("ada")); status != 502 {
		t.Errorf("POST answered %d, want the fault's 502", status)
	}
	srv.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", AfterServing: true, Times: 1})
	req, _ := http.NewRequest("POST", srv.URL+"/Users", strings.NewReader(`{"schemas":["`+userSchema+`"],"userName":"bob"}`))
	req.Header.Set("Authorization", "Bearer t")
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("POST answered %d, want the connection closed without an answer", resp.StatusCode)
	}
	if _, ok := srv.UserByName("ada"); !ok {
		t.Error("ada not created")
	}
	if _, ok := srv.UserByName("bob"); !ok {
		t.Error("bob not created")
	}
	var statuses []int
	for _, r := range srv.Requests() {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[502 0]" || srv.FaultsFired() != 2 {
		t.Errorf("logged statuses %v, fired %d; want [502 0] as the client saw them, 2 fired", statuses, srv.FaultsFired())
	}
	// Unauthenticated requests are refused before they can act, as without the fault.
	srv.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", AfterServing: true, Status: 500, Times: 1})
	req, _ = http.NewRequest("POST", srv.URL+"/Users", strings.NewReader(`{"schemas":["`+userSchema+`"],"userName":"eve"}`))
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != 500 {
		t.Fatalf("unauthenticated POST: %v %v", resp, err)
	}
	if _, ok := srv.UserByName("eve"); ok {
		t.Error("an unauthenticated request created eve")
	}
}

func TestCloseReleasesHangs(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{})
	srv.AddFault(scimtest.Fault{Hang: true})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := srv.Client().Get(srv.URL + "/Users")
		if err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hanging request")
	}
	<-done
}

func TestConcurrentUse(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{})
	defer srv.Close()
	gid := srv.AddGroup(map[string]any{"displayName": "g"})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				status, out := call(t, srv, "POST", "/Users", newUser(fmt.Sprintf("w%d-%d", w, i)))
				if status != 201 {
					t.Errorf("POST = %d", status)
					return
				}
				call(t, srv, "PATCH", "/Groups/"+gid, patch(op("add", "members", []any{map[string]any{"value": out["id"]}})))
				call(t, srv, "GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf(`userName eq "w%d-%d"`, w, i)), nil)
				_ = srv.Users()
			}
		}()
	}
	wg.Wait()
	if n := len(srv.GroupMembers(gid)); n != 200 {
		t.Errorf("members = %d, want 200", n)
	}
}

// TestLargeDirectory: 100k users stay fast to look up by userName,
// externalId and id (indexes, not scans).
func TestLargeDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	srv := scimtest.NewServer(scimtest.Options{MaxLogEntries: -1})
	defer srv.Close()
	const n = 100_000
	var last string
	for i := range n {
		last = srv.AddUser(map[string]any{"userName": fmt.Sprintf("user%06d@example.com", i), "externalId": fmt.Sprintf("ext-%d", i)})
	}
	start := time.Now()
	for i := range 200 {
		j := (i * 7919) % n
		if got := listNames(t, srv, fmt.Sprintf(`userName eq "USER%06d@example.com"`, j)); len(got) != 1 {
			t.Fatalf("lookup %d = %v", j, got)
		}
		status, out := call(t, srv, "GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf(`externalId eq "ext-%d"`, j)), nil)
		if status != 200 || out["totalResults"].(float64) != 1 {
			t.Fatalf("externalId lookup = %d %v", status, out["totalResults"])
		}
	}
	if status, out := call(t, srv, "GET", "/Users/"+last, nil); status != 200 || out["userName"] != fmt.Sprintf("user%06d@example.com", n-1) {
		t.Errorf("GET last = %d", status)
	}
	if status, out := call(t, srv, "GET", "/Users?startIndex=99990&count=100", nil); status != 200 || len(out["Resources"].([]any)) != 11 {
		t.Errorf("last page = %d", status)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("400 indexed lookups on 100k users took %s", d)
	}
	if u, _ := srv.Len(); u != n {
		t.Errorf("users = %d", u)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `a eq "x\"y" and (b pr or not (c lt 3))`, `emails[type eq "work"]`, `a eq`, `((`, `a eq 1e5`, `x eq null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := scimtest.ParseFilter(s)
		if err != nil {
			return
		}
		// What parses, re-parses to the same tree and can be evaluated.
		again, err := scimtest.ParseFilter(flt.String())
		if err != nil || again.String() != flt.String() {
			t.Fatalf("%q → %q → %v, %v", s, flt.String(), again, err)
		}
		flt.Match(map[string]any{"userName": "a", "emails": []any{map[string]any{"value": "x"}}, "name": map[string]any{"givenName": "g"}})
	})
}
