package scim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scim"
)

// TestContract runs one suite against scimtest and against SCIMMY (a
// third-party server): create, get, filter, PATCH attributes, PATCH
// members add/remove, PUT, delete and Bulk, then compares the exact
// stored state of each peer with the same expected state.
func TestContract(t *testing.T) {
	peers := []func(*testing.T) peer{scimtestPeer, func(t *testing.T) peer { return scimmyPeer(t) }}
	for i, start := range peers {
		name := []string{"scimtest", "scimmy"}[i]
		t.Run(name, func(t *testing.T) {
			p := start(t)
			runContract(t, p)
		})
	}
}

func user(userName, externalID, given, family string) map[string]any {
	return map[string]any{
		"schemas":     []any{scim.SchemaUser},
		"userName":    userName,
		"externalId":  externalID,
		"displayName": given + " " + family,
		"name":        map[string]any{"givenName": given, "familyName": family},
		"emails":      []any{map[string]any{"value": strings.ToLower(given) + "@example.com", "type": "work", "primary": true}},
		"active":      true,
	}
}

func runContract(t *testing.T, p peer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.reset(t)
	c, err := scim.New(scim.Options{BaseURL: p.url, Token: p.token, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // userName → id
	payloads := map[string]map[string]any{}

	t.Run("discover", func(t *testing.T) {
		spc, err := c.Discover(ctx)
		if err != nil {
			t.Fatalf("Discover: %v", err)
		}
		if spc.Fallback || !spc.Patch.Supported || !spc.Filter.Supported || spc.Bulk.Supported != p.bulk {
			t.Errorf("Discover = %+v, want patch, filter, bulk=%v", spc, p.bulk)
		}
	})

	// A userName with a quote and a backslash proves filter escaping.
	bobName := `bob "the builder" \ smith`
	t.Run("create and get", func(t *testing.T) {
		for _, u := range []map[string]any{
			user("Alice@Example.com", "ext-alice", "Alice", "Archer"),
			user(bobName, "ext-bob", "Bob", "Builder"),
			user("carol", "ext-carol", "Carol", "Cook"),
		} {
			r, err := c.Create(ctx, scim.Users, u)
			if err != nil {
				t.Fatalf("Create %s: %v", u["userName"], err)
			}
			name := u["userName"].(string)
			ids[name], payloads[name] = r.ID, u
			got, err := c.Get(ctx, scim.Users, r.ID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.ID != r.ID || got.ExternalID != u["externalId"] || got.Attributes["userName"] != name {
				t.Errorf("Get = id %q externalId %q userName %v, want %q %q %q", got.ID, got.ExternalID, got.Attributes["userName"], r.ID, u["externalId"], name)
			}
		}
		_, err := c.Create(ctx, scim.Users, user("alice@example.com", "other", "A", "B"))
		if !scim.IsConflict(err) {
			t.Errorf("Create duplicate userName (other case): err = %v, want 409 conflict", err)
		}
	})

	t.Run("filter", func(t *testing.T) {
		tests := []struct {
			filter scim.Filter
			want   []string
		}{
			{scim.Eq("userName", "ALICE@EXAMPLE.COM"), []string{"Alice@Example.com"}},
			{scim.Eq("userName", bobName), []string{bobName}},
			{scim.Eq("externalId", "ext-carol"), []string{"carol"}},
			{scim.Eq("externalId", "EXT-CAROL"), nil}, // externalId is caseExact
			{scim.Sw("userName", "car"), []string{"carol"}},
			{scim.Or(scim.Eq("userName", "carol"), scim.Eq("externalId", "ext-bob")), []string{bobName, "carol"}},
			{"", []string{"Alice@Example.com", bobName, "carol"}}, // 3 users over pages of 2
		}
		if !p.jsonFilterStrings {
			// Known deviation of the peer: it must refuse the escaped
			// value rather than match something else.
			_, err := c.Search(ctx, scim.Users, tests[1].filter)
			if scim.StatusOf(err) != http.StatusBadRequest {
				t.Errorf("Search(escaped quote) on %s: err = %v, want 400", p.name, err)
			}
			tests = append(tests[:1], tests[2:]...)
		}
		for _, tt := range tests {
			got, err := c.Search(ctx, scim.Users, tt.filter)
			if err != nil {
				t.Fatalf("Search(%s): %v", tt.filter, err)
			}
			var names []string
			for _, r := range got {
				names = append(names, r.Attributes["userName"].(string))
			}
			sort.Strings(names)
			if !reflect.DeepEqual(names, tt.want) {
				t.Errorf("Search(%s) = %q, want %q", tt.filter, names, tt.want)
			}
		}
	})

	t.Run("patch attributes", func(t *testing.T) {
		name := "Alice@Example.com"
		old := payloads[name]
		next := user(name, "ext-alice", "Alicia", "Archer")
		next["title"] = "Engineer"
		ops := scim.DiffPatch(old, next)
		if len(ops) == 0 {
			t.Fatal("DiffPatch found no change")
		}
		if _, err := c.Patch(ctx, scim.Users, ids[name], ops); err != nil {
			t.Fatalf("Patch %+v: %v", ops, err)
		}
		payloads[name] = next
		got, err := c.Get(ctx, scim.Users, ids[name])
		if err != nil {
			t.Fatal(err)
		}
		if rest := scim.DiffPatch(got.Attributes, next); len(rest) != 0 {
			t.Errorf("after Patch the remote user differs from the payload: %+v", rest)
		}
	})

	var groupID string
	t.Run("patch members", func(t *testing.T) {
		g, err := c.Create(ctx, scim.Groups, map[string]any{"displayName": "Engineering", "externalId": "ext-eng"})
		if err != nil {
			t.Fatalf("Create group: %v", err)
		}
		groupID = g.ID
		all := []string{ids["Alice@Example.com"], ids[bobName], ids["carol"]}
		if err := c.UpdateMembers(ctx, groupID, all, nil); err != nil {
			t.Fatalf("UpdateMembers add: %v", err)
		}
		if err := c.UpdateMembers(ctx, groupID, nil, []string{ids[bobName]}); err != nil {
			t.Fatalf("UpdateMembers remove: %v", err)
		}
		got, err := c.Get(ctx, scim.Groups, groupID)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{ids["Alice@Example.com"], ids["carol"]}
		sort.Strings(want)
		if m := members(got.Attributes); !reflect.DeepEqual(m, want) {
			t.Errorf("members = %q, want %q", m, want)
		}
	})

	t.Run("put", func(t *testing.T) {
		next := user("carol", "ext-carol", "Caroline", "Cook")
		next["active"] = false
		r, err := c.Replace(ctx, scim.Users, ids["carol"], next)
		if err != nil {
			t.Fatalf("Replace: %v", err)
		}
		if r.ID != ids["carol"] {
			t.Errorf("Replace id = %q, want %q", r.ID, ids["carol"])
		}
		payloads["carol"] = next
		got, err := c.Get(ctx, scim.Users, ids["carol"])
		if err != nil {
			t.Fatal(err)
		}
		if rest := scim.DiffPatch(got.Attributes, next); len(rest) != 0 {
			t.Errorf("after Replace the remote user differs: %+v", rest)
		}
		if _, err := c.Replace(ctx, scim.Users, "does-not-exist", next); !scim.IsNotFound(err) {
			t.Errorf("Replace missing: err = %v, want 404", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := c.Delete(ctx, scim.Users, ids[bobName]); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := c.Get(ctx, scim.Users, ids[bobName]); !scim.IsNotFound(err) {
			t.Errorf("Get deleted: err = %v, want 404", err)
		}
		if err := c.Delete(ctx, scim.Users, ids[bobName]); !scim.IsNotFound(err) {
			t.Errorf("Delete twice: err = %v, want 404", err)
		}
		delete(payloads, bobName)
	})

	bulkUsers := 0
	t.Run("bulk", func(t *testing.T) {
		if !p.bulk {
			t.Skip("peer has no Bulk")
		}
		ops := []scim.BulkOperation{
			{Method: http.MethodPost, Kind: scim.Users, BulkID: "dave", Data: user("dave", "ext-dave", "Dave", "Diver")},
			{Method: http.MethodPost, Kind: scim.Groups, BulkID: "ops", Data: map[string]any{
				"displayName": "Operations", "members": []any{map[string]any{"value": "bulkId:dave"}},
			}},
			{Method: http.MethodPatch, Kind: scim.Users, ID: ids["carol"], Data: []scim.PatchOp{{Op: "replace", Path: "title", Value: "Chef"}}},
			{Method: http.MethodPost, Kind: scim.Users, BulkID: "dup", Data: user("CAROL", "x", "C", "C")},
		}
		res, err := c.Bulk(ctx, ops, 0)
		if err != nil {
			t.Fatalf("Bulk: %v", err)
		}
		var statuses []int
		for _, r := range res {
			statuses = append(statuses, r.Status)
		}
		if want := []int{201, 201, 200, 409}; !reflect.DeepEqual(statuses, want) {
			t.Fatalf("Bulk statuses = %v, want %v (results %+v)", statuses, want, res)
		}
		if !scim.IsConflict(res[3].Err) || res[0].Err != nil || res[0].ID == "" {
			t.Errorf("Bulk results = %+v, want ok, ok, ok, conflict", res)
		}
		ids["dave"] = res[0].ID
		payloads["dave"] = user("dave", "ext-dave", "Dave", "Diver")
		payloads["carol"]["title"] = "Chef"
		bulkUsers = 1
	})

	t.Run("exact state", func(t *testing.T) {
		users, groups := p.state(t)
		names := map[string]string{}
		for name, id := range ids {
			names[id] = name
		}
		gotUsers := map[string]map[string]any{}
		for _, u := range users {
			gotUsers[u["userName"].(string)] = comparable(u)
		}
		wantUsers := map[string]map[string]any{}
		for name, p := range payloads {
			wantUsers[name] = comparable(p)
		}
		if !reflect.DeepEqual(gotUsers, wantUsers) {
			g, _ := json.MarshalIndent(gotUsers, "", " ")
			w, _ := json.MarshalIndent(wantUsers, "", " ")
			t.Errorf("users =\n%s\nwant\n%s", g, w)
		}
		if len(users) != 2+bulkUsers {
			t.Errorf("len(users) = %d, want %d", len(users), 2+bulkUsers)
		}
		gotGroups := map[string][]string{}
		for _, g := range groups {
			var ms []string
			for _, id := range members(g) {
				ms = append(ms, names[id])
			}
			sort.Strings(ms)
			gotGroups[g["displayName"].(string)] = ms
		}
		wantGroups := map[string][]string{"Engineering": {"Alice@Example.com", "carol"}}
		if bulkUsers > 0 {
			wantGroups["Operations"] = []string{"dave"}
		}
		if !reflect.DeepEqual(gotGroups, wantGroups) {
			t.Errorf("groups = %q, want %q", gotGroups, wantGroups)
		}
	})
}

// comparable drops what the server adds (id, meta, schemas) for comparison.
func comparable(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	for _, k := range []string{"id", "meta", "schemas", "groups"} {
		delete(out, k)
	}
	return out
}

// members returns the sorted member ids of a group body.
func members(g map[string]any) []string {
	arr, _ := g["members"].([]any)
	ids := []string{}
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			if v, ok := m["value"].(string); ok {
				ids = append(ids, v)
			}
		}
	}
	sort.Strings(ids)
	return ids
}
