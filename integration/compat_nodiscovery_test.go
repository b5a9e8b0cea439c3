package integration

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestModesWithoutDiscoveryAgainstQuirkProfiles: a full sync into a target imitating
// vCenter (discovery answers 500, member PATCHes refused) or GitLab (discovery answers 404,
// no PUT /Users), in the matching mode, ends in the exact remote state without one request
// for the ServiceProviderConfig; so does the sync after a user and a membership change,
// written as each mode says: vcenter groups whole with their members, gitlab users by PATCH.
func TestModesWithoutDiscoveryAgainstQuirkProfiles(t *testing.T) {
	for _, mode := range []string{"vcenter", "gitlab"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, scimtest.Options{Quirks: scimtest.Profile(mode)})
			d := buildDirectory(e, 100) // 60 in scope
			app, _ := e.store.ApplicationByName(e.ctx, d.application)
			e.provider(mode, func(p *store.Provider) { p.ApplicationID = &app.ID; p.CompatibilityMode = mode })

			if _, _, err := e.fullSync(mode, workflows.FullSyncInput{}); err != nil {
				t.Fatalf("full sync: %v", err)
			}
			checkRemoteState(t, e.target, d, false)
			checkNoDiscoveryWrites(t, e.target, mode)
			if n := e.target.Count("POST /Groups"); n != len(d.groups) {
				t.Errorf("%d POST /Groups, want %d", n, len(d.groups))
			}

			// Rename user0001; take user0005 out of g18 (it stays in scope through g05).
			e.target.ResetLog()
			renamed, left := d.users[1], d.users[5]
			e.tx(func(tx *store.Tx) error {
				renamed.Name = "Renamed One"
				u, err := tx.UpdateUser(e.ctx, renamed)
				d.users[1] = u
				if err != nil {
					return err
				}
				g18 := d.groups[18]
				return tx.RemoveMember(e.ctx, g18.ID, left.ID)
			})
			d.members["g18"] = withoutName(d.members["g18"], left.Username)
			if _, _, err := e.fullSync(mode, workflows.FullSyncInput{}); err != nil {
				t.Fatalf("second full sync: %v", err)
			}
			checkRemoteState(t, e.target, d, false)
			checkNoDiscoveryWrites(t, e.target, mode)
			switch mode {
			case "vcenter":
				if n := e.target.Count("PUT /Groups/{id}"); n != 1 {
					t.Errorf("%d PUT /Groups/{id} for one membership change, want 1 (counts %v)", n, e.target.Counts())
				}
			case "gitlab":
				if n := e.target.Count("PATCH /Users/{id}"); n != 1 {
					t.Errorf("%d PATCH /Users/{id} for one renamed user, want 1 (counts %v)", n, e.target.Counts())
				}
			}
		})
	}
}

// checkNoDiscoveryWrites checks what no mode without discovery may send: a request for the
// ServiceProviderConfig, a Bulk request (none is assumed), a refused write; and per mode:
// vcenter never PATCHes a group and posts and puts groups with their members; gitlab never
// PUTs a user.
func checkNoDiscoveryWrites(t *testing.T, target *scimtest.Server, mode string) {
	t.Helper()
	for _, route := range []string{"GET /ServiceProviderConfig", "GET /ServiceProviderConfigs", "POST /Bulk"} {
		if n := target.Count(route); n != 0 {
			t.Errorf("%d requests %s, want none", n, route)
		}
	}
	for _, r := range target.Requests() {
		if r.Status >= 400 {
			t.Errorf("%s answered %d: %s", r.Route, r.Status, r.Body)
		}
		switch {
		case mode == "vcenter" && r.Route == "PATCH /Groups/{id}":
			t.Errorf("vcenter: a group was PATCHed: %s", r.Body)
		case mode == "vcenter" && (r.Route == "POST /Groups" || r.Route == "PUT /Groups/{id}"):
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			if _, ok := body["members"]; !ok {
				t.Errorf("vcenter: %s without members: %s", r.Route, r.Body)
			}
		case mode == "gitlab" && r.Route == "PUT /Users/{id}":
			t.Errorf("gitlab: a user was PUT: %s", r.Body)
		}
	}
}

// TestDiscoveryOffFullSyncUsesTheOverride: with discovery off and a service_provider_config
// of PATCH and filter without Bulk, a full sync into a target that has Bulk ends in the
// exact state without a request for the ServiceProviderConfig and without /Bulk: users are
// posted one by one, memberships PATCHed.
func TestDiscoveryOffFullSyncUsesTheOverride(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	d := buildDirectory(e, 100)
	app, _ := e.store.ApplicationByName(e.ctx, d.application)
	yes := true
	e.provider("off", func(p *store.Provider) {
		p.ApplicationID = &app.ID
		p.Discovery = store.DiscoveryOff
		p.ServiceConfig = store.ServiceConfigOverride{Patch: &yes, Filter: &yes, Bulk: &store.BulkOverride{}}
	})
	if _, _, err := e.fullSync("off", workflows.FullSyncInput{}); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	checkRemoteState(t, e.target, d, false)
	counts := e.target.Counts()
	for _, route := range []string{"GET /ServiceProviderConfig", "GET /ServiceProviderConfigs", "POST /Bulk"} {
		if counts[route] != 0 {
			t.Errorf("%d requests %s, want none (counts %v)", counts[route], route, counts)
		}
	}
	if counts["POST /Users"] != 60 || counts["PATCH /Groups/{id}"] == 0 {
		t.Errorf("counts %v, want 60 POST /Users and membership by PATCH", counts)
	}
	for _, r := range e.target.Requests() {
		if r.Route == "POST /Groups" && strings.Contains(string(r.Body), `"members"`) {
			t.Errorf("a group was created with its members although PATCH is configured: %s", r.Body)
		}
	}
}

// withoutName returns names without name.
func withoutName(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// TestStarterBasicAuthLiteralPasswordIsSealedAndUsed: a configuration with auth mode basic
// and a literal password is applied with a warning that does not echo it, stored sealed
// (the row never holds it in clear, starter providers shows <sealed>), and opened by the
// pipeline to send the exact Basic credentials; a wrong password fails the sync with the
// 401 and no trace of the password.
func TestStarterBasicAuthLiteralPasswordIsSealedAndUsed(t *testing.T) {
	const username, password = "scim-admin", "b4sic-it-pa55-8c1e"
	e := newEnv(t, scimtest.Options{Basic: &scimtest.BasicAuth{Username: username, Password: password}})
	e.tx(func(tx *store.Tx) error {
		_, err := tx.CreateUser(e.ctx, store.User{Username: "basic-user", Name: "Basic User", Email: "basic@example.test", IsActive: true})
		return err
	})
	file := func(pass string) string {
		return e.writeFile("basic.yaml", "providers:\n  - name: vc\n    base_url: "+e.target.URL+
			"\n    compatibility_mode: vcenter\n    auth: {mode: basic, username: "+username+", password: "+pass+"}\n")
	}
	cfg := file(password)
	r := e.starter("apply", "-f", cfg)
	r.expect(t, 0, cfg+":5:57: providers[0].auth.password: a literal secret is stored sealed under the installation secret",
		"provider vc: created\n")
	var row string
	if err := e.store.DB().GetContext(e.ctx, &row, `SELECT row_to_json(p)::text FROM providers p WHERE name = 'vc'`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row, password) || !strings.Contains(row, `"basic_password":"sealed:v1:`) || !strings.Contains(row, `"auth_mode":"basic"`) {
		t.Errorf("stored row %s: want auth mode basic with the password sealed", row)
	}
	if r := e.starter("providers", "--json"); strings.Contains(r.stdout, password) || !strings.Contains(r.stdout, `"basicPassword": "<sealed>"`) {
		t.Errorf("providers --json shows the password or no placeholder:\n%s", r.stdout)
	}
	e.starter("apply", "-f", cfg).expect(t, 0, "provider vc: unchanged\n")

	e.starter("sync", "user", "basic-user", "--provider", "vc").expect(t, 0, "→ POST /Users 201")
	if remoteUser(e.target, "basic-user") == nil {
		t.Fatal("basic-user was not created")
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
	for _, req := range e.target.Requests() {
		if req.Header.Get("Authorization") != want {
			t.Errorf("%s: Authorization %q, want %q", req.Route, req.Header.Get("Authorization"), want)
		}
		if strings.HasPrefix(req.Route, "GET /ServiceProviderConfig") {
			t.Errorf("vcenter asked for the ServiceProviderConfig")
		}
	}

	const wrong = "wr0ng-it-pa55-41f0"
	e.starter("apply", "-f", file(wrong)).expect(t, 0, "provider vc: updated (auth.password)")
	e.target.ResetLog()
	e.tx(func(tx *store.Tx) error { // a change, so that the sync has something to send
		u, err := e.store.UserByUsername(e.ctx, "basic-user")
		if err != nil {
			return err
		}
		u.Name = "Basic Renamed"
		_, err = tx.UpdateUser(e.ctx, u)
		return err
	})
	r = e.starter("sync", "user", "basic-user", "--provider", "vc")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "401") || strings.Contains(r.stdout+r.stderr, wrong) || strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("sync with a wrong password: exit %d\n%s%s\nwant a failure naming the 401, without the password", r.code, r.stdout, r.stderr)
	}
	if reqs := e.target.Requests(); len(reqs) == 0 || reqs[0].Status != 401 {
		t.Errorf("requests %v, want the first answered 401", e.target.Counts())
	}
}
