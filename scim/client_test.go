package scim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

func TestRequestShape(t *testing.T) {
	var mu sync.Mutex
	var infos []scim.RequestInfo
	srv, c := newPair(t, scimtest.Options{}, scim.Options{
		UserAgent: "scimsync-test/1",
		OnRequest: func(i scim.RequestInfo) { mu.Lock(); infos = append(infos, i); mu.Unlock() },
	})
	ctx := context.Background()
	r, err := c.Create(ctx, scim.Users, map[string]any{"userName": "a", "id": "ignored", "meta": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, scim.Users, scim.Eq("userName", "a")); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests = %d, want 2", len(reqs))
	}
	post := reqs[0]
	for h, want := range map[string]string{
		"Content-Type":  scim.MediaType,
		"User-Agent":    "scimsync-test/1",
		"Authorization": "Bearer " + testToken,
	} {
		if got := post.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if !strings.HasPrefix(post.Header.Get("Accept"), scim.MediaType) {
		t.Errorf("Accept = %q, want %s first", post.Header.Get("Accept"), scim.MediaType)
	}
	var body map[string]any
	_ = json.Unmarshal(post.Body, &body)
	if _, ok := body["id"]; ok {
		t.Errorf("POST body has id: %s", post.Body)
	}
	if !reflect.DeepEqual(body["schemas"], []any{scim.SchemaUser}) {
		t.Errorf("POST schemas = %v, want the core schema added", body["schemas"])
	}
	if got := reqs[1].Query.Get("filter"); got != `userName eq "a"` {
		t.Errorf("filter = %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []scim.RequestInfo{
		{Op: "create", Method: "POST", Path: "/Users", Status: 201},
		{Op: "search", Method: "GET", Path: "/Users", Status: 200},
	}
	for i := range infos {
		infos[i].Duration = 0
	}
	if !reflect.DeepEqual(infos, want) {
		t.Errorf("OnRequest got %+v, want %+v", infos, want)
	}
	if r.Meta.ResourceType != "User" || r.Meta.Created.IsZero() || r.Meta.Location == "" {
		t.Errorf("Meta = %+v", r.Meta)
	}
}

func TestSearchPaging(t *testing.T) {
	for _, pageSize := range []int{1, 2, 3, 100} {
		t.Run(fmt.Sprint("server page ", pageSize), func(t *testing.T) {
			srv, c := newPair(t, scimtest.Options{MaxPageSize: pageSize}, scim.Options{})
			var want []string
			for i := range 7 {
				name := fmt.Sprintf("user%d", i)
				srv.AddUser(map[string]any{"userName": name, "title": "x"})
				want = append(want, name)
			}
			got, err := c.Search(context.Background(), scim.Users, scim.Eq("title", "x"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range got {
				names = append(names, r.Attributes["userName"].(string))
			}
			if !reflect.DeepEqual(names, want) {
				t.Errorf("Search = %v, want %v", names, want)
			}
			if n, w := srv.Count("GET /Users"), (7+pageSize-1)/pageSize; n != w {
				t.Errorf("GET /Users requests = %d, want %d", n, w)
			}
		})
	}
}

// TestScanStopsWhenAsked: Scan reads the pages it needs and no more, and returns the error
// that stopped it as is.
func TestScanStopsWhenAsked(t *testing.T) {
	srv, c := newPair(t, scimtest.Options{MaxPageSize: 2}, scim.Options{})
	for i := range 7 {
		srv.AddUser(map[string]any{"userName": fmt.Sprintf("user%d", i)})
	}
	errFound := errors.New("found")
	var seen []string
	err := c.Scan(context.Background(), scim.Users, "", func(r scim.Resource) error {
		seen = append(seen, r.Attributes["userName"].(string))
		if len(seen) == 3 {
			return fmt.Errorf("stop: %w", errFound)
		}
		return nil
	})
	if !errors.Is(err, errFound) || fmt.Sprint(seen) != "[user0 user1 user2]" {
		t.Errorf("Scan = %v after %v, want the callback's error after three users", err, seen)
	}
	if n := srv.Count("GET /Users"); n != 2 {
		t.Errorf("GET /Users requests = %d, want 2 (pages of 2)", n)
	}
}

func TestFilterEscaping(t *testing.T) {
	srv, c := newPair(t, scimtest.Options{}, scim.Options{})
	names := []string{`a"b`, `a\b`, `a\"b`, `a b`, "tab\tline\nend", `"`, `\`, `a) or (userName pr`, "ünïcødé"}
	for _, n := range names {
		srv.AddUser(map[string]any{"userName": n})
	}
	srv.AddUser(map[string]any{"userName": "ab"})
	for _, n := range names {
		got, err := c.Search(context.Background(), scim.Users, scim.Eq("userName", n))
		if err != nil {
			t.Fatalf("Search(%q): %v", n, err)
		}
		if len(got) != 1 || got[0].Attributes["userName"] != n {
			t.Errorf("Search(Eq(userName, %q)) = %d results, want exactly that user", n, len(got))
		}
	}
	tests := []struct {
		got  scim.Filter
		want string
	}{
		{scim.Eq("userName", `a"b`), `userName eq "a\"b"`},
		{scim.Eq("userName", `a\b`), `userName eq "a\\b"`},
		{scim.Eq("active", true), `active eq true`},
		{scim.Eq("x", nil), `x eq null`},
		{scim.Gt("n", 2.5), `n gt 2.5`},
		{scim.Eq("userName", "<&>"), `userName eq "<&>"`},
		{scim.And(scim.Eq("a", "1"), scim.Eq("b", "2")), `a eq "1" and b eq "2"`},
		{scim.And(scim.Or(scim.Eq("a", "1"), scim.Eq("b", "2")), scim.Pr("c")), `(a eq "1" or b eq "2") and c pr`},
		{scim.And(scim.Eq("a", " or "), scim.Pr("c")), `a eq " or " and c pr`},
		{scim.Or(scim.Eq("a", "1"), "", scim.Eq("b", "2")), `a eq "1" or b eq "2"`},
		{scim.Not(scim.Co("emails", "x")), `not (emails co "x")`},
		{scim.ValuePath("members", scim.Eq("value", "id1")), `members[value eq "id1"]`},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("filter = %s, want %s", tt.got, tt.want)
		}
	}
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		server   scimtest.Options
		client   scim.Options
		want     scim.ServiceProviderConfig
		wantErr  bool
		wantCaps func(scim.Capabilities) bool
	}{
		{name: "default", want: scim.ServiceProviderConfig{
			Patch: scim.Supported{Supported: true}, Bulk: scim.BulkConfig{Supported: true, MaxOperations: 1000, MaxPayloadSize: 1 << 20},
			Filter: scim.FilterConfig{Supported: true, MaxResults: 200}}},
		{name: "salesforce plural path", server: scimtest.Options{Quirks: scimtest.Profile("salesforce")},
			client: scim.Options{Mode: scim.ModeSalesforce},
			want: scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true}, Bulk: scim.BulkConfig{Supported: true, MaxOperations: 1000, MaxPayloadSize: 1 << 20},
				Filter: scim.FilterConfig{Supported: true, MaxResults: 200}}},
		{name: "salesforce server, default mode: fallback", server: scimtest.Options{Quirks: scimtest.Profile("salesforce")},
			want: scim.FallbackConfig()},
		{name: "no discovery endpoint: fallback", server: scimtest.Options{Config: scimtest.Config{DiscoveryNotFound: true}},
			want: scim.FallbackConfig()},
		{name: "custom fallback", server: scimtest.Options{Config: scimtest.Config{DiscoveryNotFound: true}},
			client: scim.Options{Fallback: &scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true}}},
			want:   scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true}, Fallback: true}},
		{name: "strings and numbers as booleans", server: scimtest.Options{Config: scimtest.Config{Raw: json.RawMessage(
			`{"patch":{"supported":"True"},"bulk":{"supported":1,"maxOperations":"50","maxPayloadSize":1048576.0},"filter":{"supported":0,"maxResults":"x"},"sort":{"supported":"false"},"etag":{"supported":null}}`)}},
			want: scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true},
				Bulk: scim.BulkConfig{Supported: true, MaxOperations: 50, MaxPayloadSize: 1 << 20}}},
		{name: "slack: filter forced", server: scimtest.Options{Quirks: scimtest.Profile("slack")}, client: scim.Options{Mode: scim.ModeSlack},
			want: scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true}, Bulk: scim.BulkConfig{Supported: true, MaxOperations: 1000, MaxPayloadSize: 1 << 20},
				Filter: scim.FilterConfig{Supported: false, MaxResults: 200}},
			wantCaps: func(c scim.Capabilities) bool { return c.Filter }},
		{name: "aws", server: scimtest.Options{Quirks: scimtest.Profile("aws")}, client: scim.Options{Mode: scim.ModeAWS},
			want: scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true}, Bulk: scim.BulkConfig{Supported: false, MaxOperations: 1000, MaxPayloadSize: 1 << 20},
				Filter: scim.FilterConfig{Supported: true, MaxResults: 200}},
			wantCaps: func(c scim.Capabilities) bool {
				return c.UserUpdate == scim.UpdatePut && c.GroupUpdate == scim.UpdatePatch && c.MemberPatch &&
					c.MaxMembersPerRequest == 100 && c.FilterEqOnly && !c.Bulk &&
					reflect.DeepEqual(c.GroupPatchPaths, []string{"displayName", "externalId"})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newPair(t, tt.server, tt.client)
			got, err := c.Discover(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Discover err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Discover = %+v, want %+v", got, tt.want)
			}
			caps, err := c.Capabilities(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCaps != nil && !tt.wantCaps(caps) {
				t.Errorf("Capabilities = %+v", caps)
			}
		})
	}
	t.Run("server error: no fallback remembered", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		srv.AddFault(scimtest.Fault{Route: "/ServiceProviderConfig", Status: 503, Times: 1})
		got, err := c.Discover(ctx)
		if !scim.IsRetryable(err) || !got.Fallback {
			t.Fatalf("Discover = %+v, %v; want the fallback and a retryable error", got, err)
		}
		if _, ok := c.Config(); ok {
			t.Error("a failed discovery was remembered")
		}
		caps, err := c.Capabilities(ctx) // discovers again, now successfully
		if err != nil || !caps.Bulk {
			t.Errorf("Capabilities = %+v, %v", caps, err)
		}
	})
	t.Run("known config skips discovery", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{Config: &scim.ServiceProviderConfig{}})
		caps, err := c.Capabilities(ctx)
		if err != nil || caps.Bulk || caps.MemberPatch {
			t.Errorf("Capabilities = %+v, %v", caps, err)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("%d requests sent, want 0", n)
		}
	})
	t.Run("cached config round-trips through JSON", func(t *testing.T) {
		_, c := newPair(t, scimtest.Options{}, scim.Options{})
		spc, _ := c.Discover(ctx)
		b, err := json.Marshal(spc)
		if err != nil {
			t.Fatal(err)
		}
		var back scim.ServiceProviderConfig
		if err := json.Unmarshal(b, &back); err != nil || back != spc {
			t.Errorf("round trip = %+v, %v; want %+v", back, err, spc)
		}
	})
	t.Run("unknown mode", func(t *testing.T) {
		if _, err := scim.New(scim.Options{BaseURL: "http://x", Mode: "okta"}); err == nil {
			t.Error("New accepted an unknown mode")
		}
	})
}

// TestPatchShapesPerMode: membership PATCHes against a server imitating
// each vendor, checked request by request.
func TestPatchShapesPerMode(t *testing.T) {
	ctx := context.Background()
	const nUsers = 250
	tests := []struct {
		mode       scim.Mode
		profile    string
		wantPuts   int    // PATCH requests for adding all users
		memberType string // "type" in member references
	}{
		{scim.ModeDefault, "default", 1, ""},
		{scim.ModeAWS, "aws", 3, ""},
		{scim.ModeSlack, "slack", 1, ""},
		{scim.ModeSalesforce, "salesforce", 1, ""},
		{scim.ModeWebex, "webex", 1, "user"},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			srv, c := newPair(t, scimtest.Options{Quirks: scimtest.Profile(tt.profile)}, scim.Options{Mode: tt.mode})
			var ids []string
			for i := range nUsers {
				ids = append(ids, srv.AddUser(map[string]any{"userName": fmt.Sprintf("u%03d", i)}))
			}
			gid := srv.AddGroup(map[string]any{"displayName": "g"})
			if err := c.UpdateMembers(ctx, gid, ids, nil); err != nil {
				t.Fatalf("UpdateMembers add: %v", err)
			}
			if got := srv.Count("PATCH /Groups/{id}"); got != tt.wantPuts {
				t.Errorf("PATCH requests = %d, want %d", got, tt.wantPuts)
			}
			for _, r := range srv.Requests() {
				if r.Method != http.MethodPatch {
					continue
				}
				var pr scim.PatchRequest
				if err := json.Unmarshal(r.Body, &pr); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(pr.Schemas, []string{scim.SchemaPatchOp}) {
					t.Errorf("schemas = %v", pr.Schemas)
				}
				for _, op := range pr.Operations {
					refs, _ := op.Value.([]any)
					if op.Op != "add" || op.Path != "members" || len(refs) == 0 {
						t.Fatalf("op = %+v, want add members", op)
					}
					ref := refs[0].(map[string]any)
					if typ, _ := ref["type"].(string); typ != tt.memberType {
						t.Errorf("member ref = %v, want type %q", ref, tt.memberType)
					}
				}
			}
			if got := srv.GroupMembers(gid); len(got) != nUsers {
				t.Errorf("members = %d, want %d", len(got), nUsers)
			}
			srv.ResetLog()
			if err := c.UpdateMembers(ctx, gid, nil, ids[:150]); err != nil {
				t.Fatalf("UpdateMembers remove: %v", err)
			}
			removeReqs := 1
			if tt.mode == scim.ModeAWS {
				removeReqs = 2
			}
			if got := srv.Count("PATCH /Groups/{id}"); got != removeReqs {
				t.Errorf("remove PATCH requests = %d, want %d", got, removeReqs)
			}
			want := append([]string(nil), ids[150:]...)
			sort.Strings(want)
			if got := srv.GroupMembers(gid); !reflect.DeepEqual(got, want) {
				t.Errorf("members after remove = %d ids, want %d", len(got), len(want))
			}
			// The remove operations use the filtered path of RFC 7644 §3.5.2.2.
			var pr scim.PatchRequest
			_ = json.Unmarshal(srv.Requests()[0].Body, &pr)
			if op := pr.Operations[0]; op.Op != "remove" || op.Path != fmt.Sprintf(`members[value eq %q]`, ids[0]) || op.Value != nil {
				t.Errorf("remove op = %s %s, want remove members[value eq ...] without value", op.Op, op.Path)
			}
		})
	}
	t.Run("the quirks bite without the mode", func(t *testing.T) {
		for _, profile := range []string{"aws", "webex"} {
			srv, c := newPair(t, scimtest.Options{Quirks: scimtest.Profile(profile)}, scim.Options{})
			var ids []string
			for i := range 101 {
				ids = append(ids, srv.AddUser(map[string]any{"userName": fmt.Sprint(i)}))
			}
			gid := srv.AddGroup(map[string]any{"displayName": "g"})
			if err := c.UpdateMembers(ctx, gid, ids, nil); scim.StatusOf(err) != 400 {
				t.Errorf("%s server, default mode: err = %v, want 400", profile, err)
			}
		}
	})
	t.Run("no PATCH: unsupported", func(t *testing.T) {
		_, c := newPair(t, scimtest.Options{Config: scimtest.Config{NoPatch: true}}, scim.Options{})
		if err := c.UpdateMembers(ctx, "g", []string{"u"}, nil); !errors.Is(err, scim.ErrUnsupported) {
			t.Errorf("err = %v, want ErrUnsupported", err)
		}
	})
}

func TestGroupPutWithEmptyMembers(t *testing.T) {
	srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{NoPatch: true}}, scim.Options{})
	ctx := context.Background()
	u := srv.AddUser(map[string]any{"userName": "a"})
	caps, _ := c.Capabilities(ctx)
	g, err := c.Create(ctx, scim.Groups, map[string]any{"displayName": "g", "members": scim.MemberRefs([]string{u}, caps)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Replace(ctx, scim.Groups, g.ID, map[string]any{"displayName": "g", "members": scim.MemberRefs(nil, caps)}); err != nil {
		t.Fatal(err)
	}
	if m := srv.GroupMembers(g.ID); len(m) != 0 {
		t.Errorf("members after PUT with an empty list = %v", m)
	}
}

func TestPatchNoContent(t *testing.T) {
	srv, c := newPair(t, scimtest.Options{PatchNoContent: true}, scim.Options{})
	id := srv.AddUser(map[string]any{"userName": "a"})
	r, err := c.Patch(context.Background(), scim.Users, id, []scim.PatchOp{{Op: "replace", Path: "title", Value: "t"}})
	if err != nil || r.ID != id || r.Attributes != nil {
		t.Errorf("Patch = %+v, %v", r, err)
	}
	if u, _ := srv.User(id); u["title"] != "t" {
		t.Errorf("title = %v", u["title"])
	}
}

func TestOAuth2(t *testing.T) {
	ctx := context.Background()
	extra := url.Values{"audience": {"scim"}, "resource": {"https://app.example"}}
	run := func(t *testing.T, so scimtest.OAuth, co scim.OAuth2) (*scimtest.Server, *scim.Client) {
		srv := scimtest.NewServer(scimtest.Options{OAuth: &so})
		t.Cleanup(srv.Close)
		co.TokenURL = srv.TokenURL()
		c, err := scim.New(scim.Options{BaseURL: srv.URL, OAuth2: &co, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return srv, c
	}
	get := func(c *scim.Client) error { _, err := c.Search(ctx, scim.Users, ""); return err }

	t.Run("client credentials, extra parameters, cached token", func(t *testing.T) {
		srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret", RequiredParams: extra},
			scim.OAuth2{ClientID: "id", ClientSecret: "secret", Params: extra, Scopes: []string{"scim"}})
		for range 3 {
			if err := get(c); err != nil {
				t.Fatal(err)
			}
		}
		if n := srv.IssuedTokens(); n != 1 {
			t.Errorf("tokens issued = %d, want 1 (cached)", n)
		}
		reqs := srv.TokenRequests()
		if len(reqs) != 1 {
			t.Fatalf("token requests = %d", len(reqs))
		}
		r := reqs[0]
		if r.Get("grant_type") != "client_credentials" || r.Get("audience") != "scim" || r.Get("resource") != "https://app.example" || r.Get("scope") != "scim" {
			t.Errorf("token request = %v", r)
		}
	})
	t.Run("password grant", func(t *testing.T) {
		srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret", Username: "svc", Password: "pw"},
			scim.OAuth2{ClientID: "id", ClientSecret: "secret", Username: "svc", Password: "pw"})
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		if r := srv.TokenRequests()[0]; r.Get("grant_type") != "password" || r.Get("username") != "svc" {
			t.Errorf("token request = %v", r)
		}
	})
	t.Run("grant_type given as an extra parameter", func(t *testing.T) {
		srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret", Username: "svc", Password: "pw"},
			scim.OAuth2{ClientID: "id", ClientSecret: "secret",
				Params: url.Values{"grant_type": {"password"}, "username": {"svc"}, "password": {"pw"}}})
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		if r := srv.TokenRequests()[0]; r.Get("grant_type") != "password" {
			t.Errorf("token request = %v", r)
		}
	})
	t.Run("refresh after expiry", func(t *testing.T) {
		// x/oauth2 renews 10 s before expiry: an 11 s token is fresh for 1 s.
		srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret", TokenTTL: 11 * time.Second},
			scim.OAuth2{ClientID: "id", ClientSecret: "secret"})
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		if n := srv.IssuedTokens(); n != 1 {
			t.Fatalf("tokens issued = %d, want 1", n)
		}
		time.Sleep(1100 * time.Millisecond)
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		if n := srv.IssuedTokens(); n != 2 {
			t.Errorf("tokens issued after expiry = %d, want 2", n)
		}
		auth := map[string]bool{}
		for _, r := range srv.Requests() {
			if r.Route == "GET /Users" {
				auth[r.Header.Get("Authorization")] = true
			}
		}
		if len(auth) != 2 {
			t.Errorf("distinct bearer tokens used = %d, want 2", len(auth))
		}
	})
	t.Run("revoked token: one new token and one retry", func(t *testing.T) {
		srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret"}, scim.OAuth2{ClientID: "id", ClientSecret: "secret"})
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		srv.RevokeTokens()
		if err := get(c); err != nil {
			t.Fatalf("after revoke: %v", err)
		}
		if n := srv.IssuedTokens(); n != 2 {
			t.Errorf("tokens issued = %d, want 2", n)
		}
	})
	t.Run("bad client secret is provider fatal and not leaked", func(t *testing.T) {
		_, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret"}, scim.OAuth2{ClientID: "id", ClientSecret: "wrong-secret"})
		err := get(c)
		if !errors.Is(err, scim.ErrAuth) || !scim.IsProviderFatal(err) || scim.IsRetryable(err) || scim.StatusOf(err) != 401 {
			t.Fatalf("err = %v, want a fatal ErrAuth with status 401", err)
		}
		if strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("error string leaks the token endpoint's answer: %q", err)
		}
	})
	t.Run("token endpoint down is retryable", func(t *testing.T) {
		srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret"}, scim.OAuth2{ClientID: "id", ClientSecret: "secret"})
		// x/oauth2 auto-detects the auth style: it tries twice.
		srv.AddFault(scimtest.Fault{Route: "/oauth/token", Status: 503, Times: 2})
		err := get(c)
		if !errors.Is(err, scim.ErrAuth) || !scim.IsRetryable(err) || scim.IsProviderFatal(err) {
			t.Fatalf("err = %v, want a retryable ErrAuth", err)
		}
		if err := get(c); err != nil {
			t.Errorf("second try: %v", err)
		}
	})
	for _, status := range []int{408, 522} {
		t.Run(fmt.Sprintf("token endpoint answering %d is retryable", status), func(t *testing.T) {
			srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret"}, scim.OAuth2{ClientID: "id", ClientSecret: "secret"})
			srv.AddFault(scimtest.Fault{Route: "/oauth/token", Status: status, Times: 2})
			err := get(c)
			if !errors.Is(err, scim.ErrAuth) || !scim.IsRetryable(err) || scim.IsProviderFatal(err) || scim.StatusOf(err) != status {
				t.Fatalf("err = %v, want a retryable ErrAuth with status %d", err, status)
			}
		})
	}
	t.Run("token endpoint answering 501 is not retryable", func(t *testing.T) {
		srv, c := run(t, scimtest.OAuth{ClientID: "id", ClientSecret: "secret"}, scim.OAuth2{ClientID: "id", ClientSecret: "secret"})
		srv.AddFault(scimtest.Fault{Route: "/oauth/token", Status: 501, Times: 2})
		if err := get(c); !errors.Is(err, scim.ErrAuth) || scim.IsRetryable(err) {
			t.Fatalf("err = %v, want a non-retryable ErrAuth", err)
		}
	})
}

// TestDryRun: no mutating request reaches the server; GETs do; every
// write is recorded with method, path and body.
func TestDryRun(t *testing.T) {
	ctx := context.Background()
	var hooked []scim.RecordedRequest
	srv, c := newPair(t, scimtest.Options{}, scim.Options{DryRun: true, OnDryRun: func(r scim.RecordedRequest) { hooked = append(hooked, r) }})
	existing := srv.AddUser(map[string]any{"userName": "existing"})
	gid := srv.AddGroup(map[string]any{"displayName": "g"})

	r, err := c.Create(ctx, scim.Users, map[string]any{"userName": "new"})
	if err != nil || !strings.HasPrefix(r.ID, "dry-run-") {
		t.Fatalf("Create = %+v, %v", r, err)
	}
	if _, err := c.Replace(ctx, scim.Users, existing, map[string]any{"userName": "existing", "title": "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Patch(ctx, scim.Users, existing, []scim.PatchOp{{Op: "replace", Path: "title", Value: "y"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateMembers(ctx, gid, []string{existing}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := c.Bulk(ctx, []scim.BulkOperation{{Method: "POST", Kind: scim.Users, Data: map[string]any{"userName": "b"}}}, 0)
	if err != nil || res[0].Err != nil || res[0].Status != 201 {
		t.Fatalf("Bulk = %+v, %v", res, err)
	}
	if err := c.Delete(ctx, scim.Users, existing); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, scim.Users, existing); err != nil || got.Attributes["userName"] != "existing" {
		t.Errorf("Get in dry run = %+v, %v; want the real user", got, err)
	}

	if n := srv.Mutations(); n != 0 {
		t.Errorf("mutating requests that reached the server = %d, want 0", n)
	}
	if u, _ := srv.User(existing); u["title"] != nil {
		t.Errorf("user changed in dry run: %v", u)
	}
	log := c.DryRunLog()
	var lines []string
	for _, r := range log {
		lines = append(lines, r.Method+" "+r.Path)
	}
	want := []string{"POST /Users", "PUT /Users/" + existing, "PATCH /Users/" + existing, "PATCH /Groups/" + gid, "POST /Bulk", "DELETE /Users/" + existing}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("dry-run log = %q, want %q", lines, want)
	}
	if !strings.Contains(string(log[0].Body), `"userName":"new"`) || log[5].Body != nil {
		t.Errorf("recorded bodies: %s / %s", log[0].Body, log[5].Body)
	}
	if !reflect.DeepEqual(hooked, log) {
		t.Errorf("OnDryRun saw %d requests, log has %d", len(hooked), len(log))
	}
}
