package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/starter"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// The operator CLI driven end to end, in process, as cmd/starter runs it: the commands get
// the test's database, the shared dev server and the test's task queue, and talk to the
// env's scimtest target.

// starterProvider is the example configuration's provider, renamed so that its schedule
// cannot meet another test's on the shared dev server.
const starterProvider = "starter-demo"

type starterResult struct {
	code           int
	stdout, stderr string
}

// starter runs one starter command line.
func (e *env) starter(args ...string) starterResult {
	e.t.Helper()
	return e.runStarter(nil, args...)
}

// starterDialing runs one starter command line that dials Temporal itself, as
// cmd/starter does, at TEMPORAL_ADDRESS with the settings in extra.
func (e *env) starterDialing(extra map[string]string, args ...string) starterResult {
	e.t.Helper()
	if extra["TEMPORAL_ADDRESS"] == "" {
		e.t.Fatal("starterDialing needs TEMPORAL_ADDRESS")
	}
	return e.runStarter(extra, args...)
}

// runStarter runs the command with the test's settings and extra; without
// TEMPORAL_ADDRESS in extra it uses the env's Temporal client.
func (e *env) runStarter(extra map[string]string, args ...string) starterResult {
	e.t.Helper()
	env := map[string]string{
		"SCIMSYNC_TASK_QUEUE":          e.queue,
		"SCIMSYNC_INSTALLATION_SECRET": installationSecret,
		"TEMPORAL_NAMESPACE":           testenv.Namespace,
	}
	maps.Copy(env, extra)
	deps := &starter.Deps{
		Getenv:       func(k string) string { return env[k] },
		Store:        e.store,
		PollInterval: 100 * time.Millisecond,
	}
	if env["TEMPORAL_ADDRESS"] == "" {
		deps.Temporal = e.temporal
	}
	var out, errOut bytes.Buffer
	code := starter.Main(e.ctx, deps, args, &out, &errOut)
	e.t.Logf("starter %s → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return starterResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// expect fails the test unless the command exited with code and its stdout (or, for a
// failure, stderr too) holds every golden substring.
func (r starterResult) expect(t *testing.T, code int, golden ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, g := range golden {
		if !strings.Contains(r.stdout+r.stderr, g) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", g, r.stdout, r.stderr)
		}
	}
}

// exampleConfig writes examples/config.yaml pointed at the env's target, its provider
// renamed, with edit applied to the text; it returns the file's path.
func (e *env) exampleConfig(edit func(string) string) string {
	e.t.Helper()
	src, err := os.ReadFile("../examples/config.yaml")
	if err != nil {
		e.t.Fatal(err)
	}
	text := strings.Replace(string(src), "http://127.0.0.1:8088/scim/v2", e.target.URL, 1)
	text = strings.Replace(text, "- name: demo", "- name: "+starterProvider, 1)
	if edit != nil {
		text = edit(text)
	}
	return e.writeFile("config.yaml", text)
}

func (e *env) writeFile(name, text string) string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// exampleDirectory is examples/directory.json as the test reads it, to compute the
// expected remote state without the product's code.
type exampleDirectory struct {
	Groups []struct {
		Name   string `json:"name"`
		Parent string `json:"parent"`
	} `json:"groups"`
	Users []struct {
		Username   string            `json:"username"`
		Type       string            `json:"type"`
		Attributes map[string]string `json:"attributes"`
		Groups     []string          `json:"groups"`
	} `json:"users"`
	Memberships []struct{ Group, User string } `json:"memberships"`
}

func loadExampleDirectory(t *testing.T) exampleDirectory {
	t.Helper()
	b, err := os.ReadFile("../examples/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	var d exampleDirectory
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// staffTree is what the example configuration syncs: the groups of its group filters,
// which are also the groups whose members the application portal admits (staff and below).
var staffTree = []string{"backend", "engineering", "frontend", "sales", "staff", "support"}

// inScope tells whether the example provider syncs a user: not a service account, and a
// direct member of a group of the staff tree.
func (d exampleDirectory) inScope(username string) bool {
	for _, u := range d.Users {
		if u.Username == username {
			if u.Type == store.UserServiceAccount {
				return false
			}
			for _, g := range u.Groups {
				if slices.Contains(staffTree, g) {
					return true
				}
			}
		}
	}
	return false
}

// members returns each staff-tree group's direct members in scope, sorted.
func (d exampleDirectory) members() map[string][]string {
	out := map[string][]string{}
	for _, g := range staffTree {
		out[g] = nil
	}
	add := func(group, user string) {
		if _, ok := out[group]; ok && d.inScope(user) {
			out[group] = append(out[group], user)
		}
	}
	for _, u := range d.Users {
		for _, g := range u.Groups {
			add(g, u.Username)
		}
	}
	for _, m := range d.Memberships {
		add(m.Group, m.User)
	}
	for g := range out {
		sort.Strings(out[g])
	}
	return out
}

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// expectedDemoUser is what the example's mappings must produce: the default payload plus
// the enterprise extension's department.
func expectedDemoUser(u store.User) map[string]any {
	p := expectedUser(u)
	if dept, ok := u.Attributes["department"].(string); ok && dept != "" {
		p["schemas"] = []any{"urn:ietf:params:scim:schemas:core:2.0:User", enterpriseURN}
		p[enterpriseURN] = map[string]any{"department": dept}
	}
	return normalize(p)
}

func (e *env) user(username string) store.User {
	e.t.Helper()
	u, err := e.store.UserByUsername(e.ctx, username)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) countRows(table string) int {
	e.t.Helper()
	var n int
	if err := e.store.DB().GetContext(e.ctx, &n, `SELECT count(*) FROM `+table); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestStarterImportIsIdempotent(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	r := e.starter("import", "-f", "../examples/directory.json")
	r.expect(t, 0, "import ../examples/directory.json:\n"+
		"  groups:      8 created, 0 updated, 0 unchanged\n"+
		"  users:       51 created, 0 updated, 0 unchanged\n"+
		"  memberships: 55 added, 0 unchanged\n")
	r = e.starter("import", "-f", "../examples/directory.json")
	r.expect(t, 0, "  groups:      0 created, 0 updated, 8 unchanged\n"+
		"  users:       0 created, 0 updated, 51 unchanged\n"+
		"  memberships: 0 added, 55 unchanged\n")

	// Exact rows: nested groups, the service account, attributes, memberships.
	var groups []struct {
		Name   string `db:"name"`
		Parent string `db:"parent"`
	}
	if err := e.store.DB().SelectContext(e.ctx, &groups, `SELECT g.name, COALESCE(p.name, '') AS parent
		FROM groups g LEFT JOIN groups p ON p.id = g.parent_id ORDER BY g.name`); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(groups)
	want := "[{backend engineering} {contractors everyone} {engineering staff} {everyone } {frontend engineering} {sales staff} {staff everyone} {support staff}]"
	if got != want {
		t.Errorf("groups = %s\nwant %s", got, want)
	}
	bot := e.user("ci-bot")
	if bot.Type != store.UserServiceAccount || !bot.IsActive {
		t.Errorf("ci-bot = %+v", bot)
	}
	ada := e.user("alovelace")
	if ada.Name != "Ada Lovelace" || ada.Email != "alovelace@example.com" || ada.Locale != "en-GB" || ada.Attributes["department"] != "Engineering" {
		t.Errorf("alovelace = %+v", ada)
	}
	if n := e.countRows("group_members"); n != 55 {
		t.Errorf("%d memberships, want 55", n)
	}

	// A CSV import updates what changed and adds memberships, by username and group name.
	csv := e.writeFile("people.csv", "kind,username,name,email,is_active,groups,parent,attr.department\n"+
		"group,,interns,,,,staff,\n"+
		"user,alovelace,Ada King,alovelace@example.com,true,backend;interns,,Engineering\n"+
		"user,newbie,New Bie,newbie@example.com,false,interns,,Sales\n")
	r = e.starter("import", "-f", csv)
	r.expect(t, 0, "  groups:      1 created, 0 updated, 0 unchanged\n"+
		"  users:       1 created, 1 updated, 0 unchanged\n"+
		"  memberships: 2 added, 1 unchanged\n")
	if ada := e.user("alovelace"); ada.Name != "Ada King" || ada.Locale != "" {
		t.Errorf("alovelace after CSV = %+v", ada)
	}

	// A file with errors imports nothing.
	bad := e.writeFile("bad.json", `{"users": [{"username": "x", "groups": ["nope"]}, {"username": "x"}], "groups": [{"name": "a", "parent": "b"}, {"name": "b", "parent": "a"}]}`)
	r = e.starter("import", "-f", bad)
	r.expect(t, 2, bad+`: users[1]: username: "x" is listed twice (first at `+bad+`: users[0])`,
		"nothing was imported")
	if _, err := e.store.UserByUsername(e.ctx, "x"); err == nil {
		t.Error("user x was imported from a bad file")
	}
}

func TestStarterApplyIsIdempotentAndPrunes(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	t.Setenv("SCIMSYNC_DEMO_TOKEN", targetToken)
	e.starter("import", "-f", "../examples/directory.json").expect(t, 0)
	file := e.exampleConfig(nil)

	r := e.starter("apply", "-f", file)
	r.expect(t, 0, "application portal: created\n"+
		"mapping enterprise-department: created\n"+
		"provider starter-demo: created\n"+
		"binding portal → group staff: created\n"+
		"apply "+file+": 4 created, 0 updated, 0 deleted, 0 unchanged\n")
	if r.stderr != "" {
		t.Errorf("stderr = %q, want nothing (the token is a reference)", r.stderr)
	}

	// Exact rows.
	p, err := e.store.Provider(e.ctx, starterProvider)
	if err != nil {
		t.Fatal(err)
	}
	app, err := e.store.ApplicationByName(e.ctx, "portal")
	if err != nil {
		t.Fatal(err)
	}
	if p.BaseURL != e.target.URL || p.AuthMode != "token" || p.Token != "env:SCIMSYNC_DEMO_TOKEN" || p.CompatibilityMode != "default" ||
		!p.ExcludeServiceAccounts || p.ApplicationID == nil || *p.ApplicationID != app.ID || p.DryRun || !p.VerifyTLS ||
		p.PageSize != 100 || p.DeprovisionAction != "delete" || p.DeprovisionThreshold != 10 || p.FlattenGroups ||
		p.LinkExisting || p.FullSyncInterval != time.Hour || !p.Enabled || app.PolicyEngineMode != "any" {
		t.Errorf("provider = %+v, application = %+v", p, app)
	}
	sels, err := e.store.ProviderSelections(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sels[p.ID]); got != "{[backend engineering frontend sales staff support] [00-default-group 00-default-user enterprise-department]}" {
		t.Errorf("selection = %s", got)
	}
	m, err := e.store.Mapping(e.ctx, "enterprise-department")
	if err != nil || m.Kind != "user" || !strings.HasPrefix(m.Expression, "# The department of the enterprise extension") {
		t.Errorf("mapping = %+v, %v", m, err)
	}
	var bindings []string
	if err := e.store.DB().SelectContext(e.ctx, &bindings, `SELECT a.name || '/' || g.name || '/' || b.negate || '/' || b.enabled
		FROM application_bindings b JOIN applications a ON a.id = b.application_id JOIN groups g ON g.id = b.group_id`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(bindings) != "[portal/staff/false/true]" {
		t.Errorf("bindings = %v", bindings)
	}

	// Again: nothing changes, and it says so; not even updated_at moves.
	r = e.starter("apply", "-f", file)
	r.expect(t, 0, "application portal: unchanged\n"+
		"mapping enterprise-department: unchanged\n"+
		"provider starter-demo: unchanged\n"+
		"binding portal → group staff: unchanged\n"+
		"apply "+file+": no changes, 4 unchanged\n")
	if again, _ := e.store.Provider(e.ctx, starterProvider); !again.UpdatedAt.Equal(p.UpdatedAt) {
		t.Errorf("updated_at moved from %s to %s", p.UpdatedAt, again.UpdatedAt)
	}

	// A changed field: an update naming the fields; a dry run of one writes nothing.
	changed := e.exampleConfig(func(s string) string {
		s = strings.Replace(s, "page_size: 100", "page_size: 50", 1)
		return strings.Replace(s, "    group: staff ", "    group: staff\n    negate: true ", 1)
	})
	r = e.starter("apply", "-f", changed, "--dry-run")
	r.expect(t, 0, "provider starter-demo: updated (page_size)\n", "binding portal → group staff: updated (negate)\n",
		"apply "+changed+": 0 created, 2 updated, 0 deleted, 2 unchanged (dry run: nothing was written)\n")
	if again, _ := e.store.Provider(e.ctx, starterProvider); again.PageSize != 100 {
		t.Errorf("dry run wrote page_size %d", again.PageSize)
	}
	r = e.starter("apply", "-f", changed)
	r.expect(t, 0, "provider starter-demo: updated (page_size)\n", "binding portal → group staff: updated (negate)\n",
		"apply "+changed+": 0 created, 2 updated, 0 deleted, 2 unchanged\n")
	if again, _ := e.store.Provider(e.ctx, starterProvider); again.PageSize != 50 {
		t.Errorf("page_size = %d, want 50", again.PageSize)
	}

	// --prune deletes what the file no longer lists; without it, nothing is deleted.
	e.provider("legacy", nil)
	pruned := e.writeFile("pruned.yaml", fmt.Sprintf(`providers:
  - name: %s
    base_url: %s
    auth: {token: env:SCIMSYNC_DEMO_TOKEN}
    page_size: 50
    deprovision: {threshold: 10}
`, starterProvider, e.target.URL))
	r = e.starter("apply", "-f", pruned)
	r.expect(t, 0, "provider starter-demo: updated (application, group_filters, mappings)\n"+
		"apply "+pruned+": 0 created, 1 updated, 0 deleted, 0 unchanged\n")
	r = e.starter("apply", "-f", pruned, "--prune")
	r.expect(t, 0, "application portal: deleted\n"+
		"mapping enterprise-department: deleted\n"+
		"provider legacy: deleted\n"+
		"provider starter-demo: unchanged\n"+
		"binding portal → group staff: deleted\n"+
		"apply "+pruned+": 0 created, 0 updated, 4 deleted, 1 unchanged\n")
	var providers, mappings []string
	e.store.DB().SelectContext(e.ctx, &providers, `SELECT name FROM providers ORDER BY name`)
	e.store.DB().SelectContext(e.ctx, &mappings, `SELECT name FROM property_mappings ORDER BY name`)
	if fmt.Sprint(providers) != "[starter-demo]" || fmt.Sprint(mappings) != "[00-default-group 00-default-user]" ||
		e.countRows("applications") != 0 || e.countRows("application_bindings") != 0 {
		t.Errorf("after prune: providers %v, mappings %v, %d applications, %d bindings", providers, mappings,
			e.countRows("applications"), e.countRows("application_bindings"))
	}
}

func TestStarterApplyRejectsABadFileAndWritesNothing(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	e.starter("import", "-f", "../examples/directory.json").expect(t, 0)
	bad := e.writeFile("bad.yaml", `applications:
  - name: portal
bindings:
  - application: portal
    group: nobody-group
  - application: intranet
    user: ghost
mappings:
  - name: title
    kind: user
    expression: |
      title = user.attributes.get("title")
      return {"title": title +}
providers:
  - name: acme
    base_url: "not a url"
    compatibility_mode: okta
    auth:
      token: env:ACME_TOKEN
      tokn: oops
    group_filters: [staff, interns]
    mappings: [00-default-user, title, missing]
`)
	r := e.starter("apply", "-f", bad)
	r.expect(t, 2,
		bad+`:5:12: bindings[0].group: unknown group "nobody-group": no group of that name in the directory`,
		bad+`:6:18: bindings[1].application: unknown application "intranet": define it under applications`,
		bad+`:7:11: bindings[1].user: unknown user "ghost": no user of that username in the directory`,
		bad+`:13:31: mappings[0].expression: line 2:25 of mapping "title": got '}', want primary expression`,
		bad+`:16:15: providers[0].base_url: invalid URL "not a url": the scheme must be http or https`,
		bad+`:17:25: providers[0].compatibility_mode: unknown value "okta": use default, aws, slack, salesforce, webex, vcenter or gitlab`,
		bad+`:20:7: providers[0].auth.tokn: unknown field (did you mean token?)`,
		bad+`:21:28: providers[0].group_filters[1]: unknown group "interns": no group of that name in the directory`,
		bad+`:22:40: providers[0].mappings[2]: unknown mapping "missing": define it under mappings, or use a built-in one (00-default-user, 00-default-group)`,
		"starter apply: "+bad+" has 9 errors; nothing was written\n")
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	// Every error is on its own line, in file order.
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 10 {
		t.Errorf("%d lines on stderr, want 9 errors and a summary", len(lines))
	}
	if e.countRows("providers") != 0 || e.countRows("applications") != 0 || e.countRows("application_bindings") != 0 ||
		e.countRows("property_mappings") != 2 || e.countRows("provider_mappings") != 0 {
		t.Errorf("a bad file wrote rows: %d providers, %d applications, %d bindings, %d mappings",
			e.countRows("providers"), e.countRows("applications"), e.countRows("application_bindings"), e.countRows("property_mappings"))
	}

	// The same errors as JSON, for scripts.
	r = e.starter("apply", "-f", bad, "--json")
	var res struct {
		Errors []starter.Diagnostic `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 2 || len(res.Errors) != 9 ||
		res.Errors[0] != (starter.Diagnostic{File: bad, Line: 5, Column: 12, Field: "bindings[0].group",
			Message: `unknown group "nobody-group": no group of that name in the directory`}) {
		t.Errorf("--json: exit %d, %v, %+v", r.code, err, res.Errors)
	}

	// A literal secret is accepted, with a warning that does not echo it, and stored sealed
	// under the installation secret: the database never holds it in clear, applying the
	// file again changes nothing, and the pipeline opens it to authenticate.
	e.tx(func(tx *store.Tx) error {
		_, err := tx.CreateUser(e.ctx, store.User{Username: "lit-user", Name: "Lit User", Email: "lit@example.test", IsActive: true})
		return err
	})
	literal := e.writeFile("literal.yaml", "providers:\n  - name: lit\n    base_url: "+e.target.URL+"\n    auth: {token: "+targetToken+"}\n")
	r = e.starter("apply", "-f", literal)
	r.expect(t, 0, literal+":4:19: providers[0].auth.token: a literal secret is stored sealed under the installation secret; a reference such as env:NAME or file:/path keeps it out of the database (warning)\n",
		"provider lit: created\n")
	if strings.Contains(r.stdout+r.stderr, targetToken) {
		t.Error("the literal secret was printed")
	}
	var stored string
	if err := e.store.DB().GetContext(e.ctx, &stored, `SELECT token FROM providers WHERE name = 'lit'`); err != nil ||
		!strings.HasPrefix(stored, "sealed:v1:") || strings.Contains(stored, targetToken) {
		t.Errorf("stored token = %q, %v; want it sealed", stored, err)
	}
	e.starter("apply", "-f", literal).expect(t, 0, "provider lit: unchanged\n")
	e.starter("providers").expect(t, 0, "lit ")
	if r := e.starter("providers", "--json"); strings.Contains(r.stdout, targetToken) || !strings.Contains(r.stdout, `"token": "<sealed>"`) {
		t.Errorf("providers --json shows the secret or no placeholder:\n%s", r.stdout)
	}
	e.starter("sync", "user", "lit-user", "--provider", "lit").expect(t, 0, "→ POST /Users 201")
	if remoteUser(e.target, "lit-user") == nil {
		t.Error("lit-user was not created with the sealed token")
	}
	// Without the installation secret a literal cannot be sealed: refused, nothing written.
	providers := e.countRows("providers")
	other := e.writeFile("literal2.yaml", "providers:\n  - name: lit2\n    base_url: https://lit2.example.com/scim\n    auth: {token: an0ther-s3cret}\n")
	r = e.runStarter(map[string]string{"SCIMSYNC_INSTALLATION_SECRET": ""}, "apply", "-f", other)
	r.expect(t, 2, other+":4:19: providers[0].auth.token: a literal secret is stored sealed with a key derived from the workers' installation secret, and SCIMSYNC_INSTALLATION_SECRET (or --installation-secret) is not set; set it, or give a reference such as env:NAME or file:/path\n")
	if strings.Contains(r.stdout+r.stderr, "an0ther") || e.countRows("providers") != providers {
		t.Errorf("refused literal: secret printed or a provider written (%d providers, want %d)", e.countRows("providers"), providers)
	}
}

func TestStarterSyncMappingTestFullSyncAndStatus(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	t.Setenv("SCIMSYNC_DEMO_TOKEN", targetToken)
	e.starter("migrate").expect(t, 0, "migrate: the database schema is up to date; nothing applied\n")
	e.starter("import", "-f", "../examples/directory.json").expect(t, 0)
	config := e.exampleConfig(nil)
	e.starter("apply", "-f", config).expect(t, 0)
	dir := loadExampleDirectory(t)
	p, err := e.store.Provider(e.ctx, starterProvider)
	if err != nil {
		t.Fatal(err)
	}

	// mapping test: the validated payload, exactly.
	ada := e.user("alovelace")
	r := e.starter("mapping", "test", "--provider", starterProvider, "user", "alovelace")
	r.expect(t, 0, "# provider starter-demo, user alovelace ("+ada.ID+"), mappings 00-default-user, enterprise-department\n")
	var payload map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &payload); err != nil {
		t.Fatalf("mapping test output is not JSON: %v", err)
	}
	if diff := diffJSON(payload, expectedDemoUser(ada)); diff != "" {
		t.Errorf("mapping test payload:\n%s", diff)
	}
	backend, _ := e.store.GroupByName(e.ctx, "backend")
	r = e.starter("mapping", "test", "--provider", starterProvider, "group", "backend")
	r.expect(t, 0, "{\n  \"displayName\": \"backend\",\n  \"externalId\": \""+backend.ID+"\",\n  \"schemas\": [\n    \"urn:ietf:params:scim:schemas:core:2.0:Group\"\n  ]\n}\n")
	r = e.starter("mapping", "test", "--provider", starterProvider, "user", "ci-bot")
	r.expect(t, 0, "# note: out of the provider's scope, so a sync would not send this payload: service accounts are excluded (exclude_service_accounts)\n")
	// A mapping that produces an invalid payload names the field.
	e.tx(func(tx *store.Tx) error {
		_, err := tx.SaveMapping(e.ctx, store.PropertyMapping{Name: "zz-bad", Kind: "user", Expression: `return {"emails": "not-a-list"}`})
		return err
	})
	bad, _ := e.store.Mapping(e.ctx, "zz-bad")
	e.tx(func(tx *store.Tx) error {
		dept, _ := e.store.Mapping(e.ctx, "enterprise-department")
		def, _ := e.store.Mapping(e.ctx, store.DefaultUserMappingName)
		return tx.SetProviderMappings(e.ctx, p.ID, []string{def.ID, dept.ID, bad.ID})
	})
	r = e.starter("mapping", "test", "--provider", starterProvider, "user", "alovelace")
	r.expect(t, 1, "the payload is not a valid SCIM User:\n  emails: ")
	e.tx(func(tx *store.Tx) error { return tx.DeleteMapping(e.ctx, "zz-bad") })
	e.starter("apply", "-f", config).expect(t, 0, "provider starter-demo: updated (mappings)\n")

	// sync user: the steps, the requests, the remote state.
	r = e.starter("sync", "user", "alovelace", "--provider", starterProvider)
	r.expect(t, 0,
		"sync user alovelace to provider starter-demo (in process)\n",
		"provider   starter-demo at "+e.target.URL+": mode default, dry run off, deprovision delete\n",
		"           → GET /ServiceProviderConfig 200 (",
		"discover   PATCH yes, Bulk yes (at most 1000 operations), filter yes\n",
		"scope      in scope: application portal admits the user\n",
		"map        mappings 00-default-user, enterprise-department → payload (valid SCIM User):\n",
		`             "userName": "alovelace"`,
		"write      create\n",
		"           → POST /Users 201 (",
		"           created: remote id ",
		"groups     not at the target yet: backend; the first sync of each adds the member (now: starter sync group NAME --provider starter-demo)\n",
		"result     ok\n")
	if strings.Contains(r.stdout+r.stderr, targetToken) {
		t.Error("the token was printed")
	}
	if got := remoteUsers(e.target); len(got) != 1 || diffJSON(got["alovelace"], expectedDemoUser(ada)) != "" {
		t.Errorf("remote users after sync = %v", got)
	}
	r = e.starter("sync", "user", "alovelace", "--provider", starterProvider)
	r.expect(t, 0, "map        unchanged: the target got this very payload before (remote id ", "result     ok\n")
	if strings.Contains(r.stdout, "POST") || e.target.Count("POST /Users") != 1 {
		t.Errorf("an unchanged user was written again: %d POSTs", e.target.Count("POST /Users"))
	}

	// Out of scope and not linked: nothing happens, successfully.
	r = e.starter("sync", "user", "cbabbage", "--provider", starterProvider)
	r.expect(t, 0, "scope      out of scope: application portal does not admit the user (its bindings)\n",
		"map        nothing to do: the object is out of scope, and not linked\n")

	// A target error fails the object: exit 1, the error on its link.
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 400, ScimType: "invalidValue", Times: 1})
	r = e.starter("sync", "user", "aturing", "--provider", starterProvider)
	r.expect(t, 1, "           → POST /Users 400 (",
		"           failed: scim: create POST /Users: 400 Bad Request (scimType invalidValue) (recorded on the object's link; starter status shows it)\n",
		"result     failed\n")

	// sync group: created, then its linked members.
	r = e.starter("sync", "group", "backend", "--provider", starterProvider)
	r.expect(t, 0, "scope      in scope: selected by the provider's group filters\n",
		"           → POST /Groups 201 (",
		"           → PATCH /Groups/",
		"members    1 members at the target (1 added, 0 removed)\n")
	if g := remoteGroups(e.target)["backend"]; fmt.Sprint(g.Members) != "[alovelace]" {
		t.Errorf("remote backend members = %v", g.Members)
	}

	// full-sync --wait through the provider's schedule: exact counts, exact remote state.
	if err := worker.ReconcileSchedules(e.ctx, e.temporal, e.store, worker.ScheduleOptions{TaskQueue: e.queue, NoInitialRun: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.temporal.ScheduleClient().GetHandle(context.Background(), workflows.FullSyncScheduleID(e.inst, starterProvider)).Delete(context.Background())
	})
	inScope := 0
	for _, u := range dir.Users {
		if dir.inScope(u.Username) {
			inScope++
		}
	}
	r = e.starter("full-sync", "--provider", starterProvider, "--wait")
	r.expect(t, 0, "full sync of starter-demo started: workflow "+workflows.FullSyncWorkflowID(e.inst, starterProvider),
		fmt.Sprintf("  users:  %d created, 0 updated, 1 unchanged, 0 skipped, 0 failed, 0 deprovisioned\n", inScope-1),
		"  groups: 5 created, 0 updated, 1 unchanged, 0 skipped, 0 failed, 0 deprovisioned\n")
	gotUsers := remoteUsers(e.target)
	if len(gotUsers) != inScope {
		t.Errorf("remote has %d users, want %d", len(gotUsers), inScope)
	}
	for _, u := range dir.Users {
		if !dir.inScope(u.Username) {
			continue
		}
		if diff := diffJSON(gotUsers[u.Username], expectedDemoUser(e.user(u.Username))); diff != "" {
			t.Errorf("remote user %s:\n%s", u.Username, diff)
		}
	}
	gotGroups := remoteGroups(e.target)
	wantMembers := dir.members()
	if len(gotGroups) != len(staffTree) {
		t.Errorf("remote has %d groups, want %d", len(gotGroups), len(staffTree))
	}
	for _, name := range staffTree {
		g, _ := e.store.GroupByName(e.ctx, name)
		if diff := diffJSON(gotGroups[name].Body, expectedGroup(g)); diff != "" {
			t.Errorf("remote group %s:\n%s", name, diff)
		}
		if fmt.Sprint(gotGroups[name].Members) != fmt.Sprint(wantMembers[name]) {
			t.Errorf("remote group %s members = %v, want %v", name, gotGroups[name].Members, wantMembers[name])
		}
	}

	// status: schedule, last run, linked counts, and an object in error with its reason.
	e.tx(func(tx *store.Tx) error {
		u := e.user("ghopper")
		u.Name = "Grace Brewster Hopper"
		_, err := tx.UpdateUser(e.ctx, u)
		return err
	})
	e.target.AddFault(scimtest.Fault{Method: "PATCH", Route: "/Users/{id}", Status: 400, ScimType: "mutability", Times: 1})
	e.starter("sync", "user", "ghopper", "--provider", starterProvider).expect(t, 1, "→ PATCH /Users/")
	errs, err := e.store.LinkErrors(e.ctx, p.ID, 10)
	if err != nil || len(errs) != 1 || !strings.HasPrefix(errs[0].LastError, "scim: patch PATCH /Users/") {
		t.Fatalf("link errors = %+v, %v", errs, err)
	}
	r = e.starter("status", "--provider", starterProvider)
	r.expect(t, 0, "installation "+string(e.inst)+" (task queue "+e.queue+"; created ",
		"provider starter-demo: enabled\n",
		"  target     "+e.target.URL+" (mode default, dry run off)\n",
		"  schedule   "+workflows.FullSyncScheduleID(e.inst, starterProvider)+" every 1h0m0s; next run ",
		"  last run   "+workflows.FullSyncWorkflowID(e.inst, starterProvider),
		fmt.Sprintf(" completed %s", time.Now().UTC().Format("2006-01-02")),
		fmt.Sprintf("; users %d created, 0 updated, 1 unchanged, 0 skipped, 0 failed, 0 deprovisioned; groups 5 created", inScope-1),
		"  running    no full sync\n",
		fmt.Sprintf("  linked     %d users, 6 groups\n", inScope),
		"  errors     1 object in error:\n",
		"               user ghopper: "+errs[0].LastError+"; since "+time.Now().UTC().Format("2006-01-02"),
		"outbox: ")
	var st struct {
		Installation struct{ ID, TaskQueue string } `json:"installation"`
		Providers    []struct {
			LinkedUsers int `json:"linkedUsers"`
			Errors      []struct{ Kind, Name, Error string }
		} `json:"providers"`
	}
	r = e.starter("status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Providers) != 1 || st.Providers[0].LinkedUsers != inScope ||
		len(st.Providers[0].Errors) != 1 || st.Providers[0].Errors[0].Name != "ghopper" ||
		st.Installation.ID != string(e.inst) || st.Installation.TaskQueue != e.queue {
		t.Errorf("status --json: %v %+v", err, st)
	}

	// sync --via-temporal: the worker's ObjectSync writes the change and clears the error.
	r = e.starter("sync", "user", "ghopper", "--provider", starterProvider, "--via-temporal")
	r.expect(t, 0, "workflow   "+workflows.ObjectSyncID(e.inst, starterProvider, object.User, e.user("ghopper").ID)+" (run ", "completed after ", "link       remote id ", "result     ok\n")
	if got := remoteUser(e.target, "ghopper"); diffJSON(got, expectedDemoUser(e.user("ghopper"))) != "" {
		t.Errorf("remote ghopper = %v", got)
	}
	e.starter("status", "--provider", starterProvider).expect(t, 0, "  errors     none\n")

	// A second full sync writes nothing: the directory has not changed.
	r = e.starter("full-sync", "--provider", starterProvider, "--wait")
	r.expect(t, 0, fmt.Sprintf("  users:  0 created, 0 updated, %d unchanged, 0 skipped, 0 failed, 0 deprovisioned\n", inScope),
		"  groups: 0 created, 0 updated, 6 unchanged, 0 skipped, 0 failed, 0 deprovisioned\n")

	// Listings.
	e.starter("providers").expect(t, 0, "starter-demo  yes      default  portal       1h0m0s    no       00-default-group,00-default-user,enterprise-department  "+e.target.URL)
	e.starter("mappings").expect(t, 0, "enterprise-department  user   starter-demo")
}

// TestStarterSyncOfANewUserJoinsItsGroupsAtTheTarget syncs a group before its member: the
// sync of the member, never synced before, then adds it to the group at the target, with
// one PATCH, as the workers' sync does (there through the group's own sync).
func TestStarterSyncOfANewUserJoinsItsGroupsAtTheTarget(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	t.Setenv("SCIMSYNC_DEMO_TOKEN", targetToken)
	e.starter("import", "-f", "../examples/directory.json").expect(t, 0)
	e.starter("apply", "-f", e.exampleConfig(nil)).expect(t, 0)
	p, err := e.store.Provider(e.ctx, starterProvider)
	if err != nil {
		t.Fatal(err)
	}
	// backend is at the target, without members: none of them is linked yet.
	e.starter("sync", "group", "backend", "--provider", starterProvider).expect(t, 0, "→ POST /Groups 201",
		"members    0 members at the target, up to date\n")
	if g, ok := remoteGroups(e.target)["backend"]; !ok || len(g.Members) != 0 {
		t.Fatalf("remote backend = %+v, %v; want it without members", g, ok)
	}
	backend, _ := e.store.GroupByName(e.ctx, "backend")
	groupRemote := e.link(p.ID, object.Group, backend.ID).Remote()

	// alovelace, a member of backend (and of everyone, not in the provider's scope).
	sent := len(e.target.Requests())
	r := e.starter("sync", "user", "alovelace", "--provider", starterProvider)
	r.expect(t, 0, "           → POST /Users 201 (",
		"           created: remote id ",
		"           → PATCH /Groups/"+groupRemote+" ",
		"groups     backend: 1 members at the target (1 added, 0 removed)\n",
		"result     ok\n")
	ada := e.user("alovelace")
	userRemote := e.link(p.ID, object.User, ada.ID).Remote()
	if g := remoteGroups(e.target)["backend"]; fmt.Sprint(g.Members) != "[alovelace]" {
		t.Errorf("remote backend members = %v, want [alovelace]", g.Members)
	}
	var writes []string
	for _, req := range e.target.Requests()[sent:] {
		if req.Method != "GET" {
			writes = append(writes, req.Method+" "+strings.TrimPrefix(req.Path, "/scim/v2")+" "+string(req.Body))
		}
	}
	wantPatch := fmt.Sprintf(`PATCH /Groups/%s {"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"%s"}]}]}`,
		groupRemote, userRemote)
	if len(writes) != 2 || !strings.HasPrefix(writes[0], "POST /Users ") || writes[1] != wantPatch {
		t.Errorf("requests that change the target:\n%s\nwant POST /Users, then\n%s", strings.Join(writes, "\n"), wantPatch)
	}
	if l := e.link(p.ID, object.Group, backend.ID); fmt.Sprint(l.Members) != "["+userRemote+"]" {
		t.Errorf("backend's link records members %v, want [%s]", l.Members, userRemote)
	}

	// Again: the user is unchanged and so is the group, nothing is sent.
	sent = len(e.target.Requests())
	r = e.starter("sync", "user", "alovelace", "--provider", starterProvider)
	r.expect(t, 0, "map        unchanged: ", "groups     backend: 1 members at the target, up to date\n", "result     ok\n")
	for _, req := range e.target.Requests()[sent:] {
		if req.Method != "GET" {
			t.Errorf("the second sync sent %s %s", req.Method, req.Path)
		}
	}
}

// link returns the provider's link of one object.
func (e *env) link(providerID, kind, id string) store.Link {
	e.t.Helper()
	links, err := e.store.Links(e.ctx, providerID, kind, []string{id})
	if err != nil {
		e.t.Fatal(err)
	}
	return links[id]
}

func TestStarterSyncDeprovisionsAnObjectDeletedFromTheDirectory(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	t.Setenv("SCIMSYNC_DEMO_TOKEN", targetToken)
	e.starter("import", "-f", "../examples/directory.json").expect(t, 0)
	e.starter("apply", "-f", e.exampleConfig(nil)).expect(t, 0)
	e.starter("sync", "user", "aturing", "--provider", starterProvider).expect(t, 0, "→ POST /Users 201")
	alan := e.user("aturing")
	e.tx(func(tx *store.Tx) error { return tx.DeleteUser(e.ctx, alan.ID) })

	e.starter("sync", "user", "aturing", "--provider", starterProvider).expect(t, 1, `no user named "aturing" in the directory`)
	r := e.starter("sync", "user", alan.ID, "--provider", starterProvider)
	r.expect(t, 0, "scope      out of scope: deleted from the directory\n",
		"map        no payload: the object is deleted from the directory, and linked (remote id ",
		"deprovision action delete\n",
		"           → DELETE /Users/",
		"           deleted at the target; the link is forgotten\n")
	if n := len(e.target.Users()); n != 0 {
		t.Errorf("remote has %d users, want 0", n)
	}
}

func TestStarterFullSyncWaitsForApprovalToDeprovisionBeyondTheThreshold(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	t.Setenv("SCIMSYNC_DEMO_TOKEN", targetToken)
	e.starter("import", "-f", "../examples/directory.json").expect(t, 0)
	e.starter("apply", "-f", e.exampleConfig(func(s string) string {
		return strings.Replace(s, "threshold: 10", "threshold: 1", 1)
	})).expect(t, 0)
	if err := worker.ReconcileSchedules(e.ctx, e.temporal, e.store, worker.ScheduleOptions{TaskQueue: e.queue, NoInitialRun: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.temporal.ScheduleClient().GetHandle(context.Background(), workflows.FullSyncScheduleID(e.inst, starterProvider)).Delete(context.Background())
	})
	e.starter("full-sync", "--provider", starterProvider, "--wait").expect(t, 0, "  users:  42 created, ")

	// Two users leave the directory: deprovisioning them exceeds the threshold of 1.
	for _, name := range []string{"aturing", "ghopper"} {
		u := e.user(name)
		e.tx(func(tx *store.Tx) error { return tx.DeleteUser(e.ctx, u.ID) })
	}
	r := e.starter("full-sync", "--provider", starterProvider, "--wait", "--timeout", "3s")
	r.expect(t, 1, "full sync of starter-demo started: workflow "+workflows.FullSyncWorkflowID(e.inst, starterProvider)+"-",
		// Only the groups batch runs: the users have nothing to write, so the listing leaves
		// them out (counted as unchanged); the groups lost members.
		"progress: phase awaiting-deletion-approval, batches 1 of 1 done; users 0 created, 0 updated, 40 unchanged, 0 skipped, 0 failed, 0 deprovisioned; "+
			"groups 0 created, 0 updated, 6 unchanged, 0 skipped, 0 failed, 0 deprovisioned; waiting for approval to deprovision 2 objects (starter full-sync --allow-deletions)\n",
		"stopped waiting after ")
	e.starter("status", "--provider", starterProvider).expect(t, 0, "  running    "+workflows.FullSyncWorkflowID(e.inst, starterProvider)+"-",
		": phase awaiting-deletion-approval, ")
	if remoteUser(e.target, "aturing") == nil {
		t.Fatal("aturing was deprovisioned without approval")
	}

	// An approval for fewer than it waits for approves nothing: it goes on waiting, and
	// starter status shows both counts.
	r = e.starter("full-sync", "--provider", starterProvider, "--allow-deletions", "--deletions", "1")
	r.expect(t, 0, "a full sync of starter-demo is already running: workflow "+workflows.FullSyncWorkflowID(e.inst, starterProvider)+"-",
		"deprovisioning of up to 1 objects approved (signal approve-deletions): as given (--deletions)\n")
	e.waitFor(time.Minute, func() string {
		r := e.starter("status", "--provider", starterProvider)
		if !strings.Contains(r.stdout, "waiting for approval to deprovision 2 objects (starter full-sync --allow-deletions); approved for 1 only") {
			return "status does not show the approval for 1 of 2:\n" + r.stdout
		}
		return ""
	})
	if remoteUser(e.target, "aturing") == nil || remoteUser(e.target, "ghopper") == nil {
		t.Fatal("a user was deprovisioned on an approval for fewer objects than pending")
	}

	// --allow-deletions approves the running full sync (no second one starts) for the count
	// it waits for, and waits.
	r = e.starter("full-sync", "--provider", starterProvider, "--allow-deletions", "--wait")
	r.expect(t, 0, "a full sync of starter-demo is already running: workflow "+workflows.FullSyncWorkflowID(e.inst, starterProvider)+"-",
		"deprovisioning of up to 2 objects approved (signal approve-deletions): the 2 the full sync waits to deprovision\n",
		"  users:  0 created, 0 updated, 40 unchanged, 0 skipped, 0 failed, 2 deprovisioned\n")
	if got := remoteUsers(e.target); len(got) != 40 || got["aturing"] != nil || got["ghopper"] != nil {
		t.Errorf("remote has %d users (aturing %v, ghopper %v), want 40 without them", len(got), got["aturing"] != nil, got["ghopper"] != nil)
	}

	// Two more leave: --allow-deletions with no full sync running approves, as it starts
	// one, the 2 stale now, and the sync deprovisions them without waiting.
	for _, name := range []string{"ltorvalds", "mhamilton"} {
		if remoteUser(e.target, name) == nil {
			t.Fatalf("%s is not at the target", name)
		}
		u := e.user(name)
		e.tx(func(tx *store.Tx) error { return tx.DeleteUser(e.ctx, u.ID) })
	}
	r = e.starter("full-sync", "--provider", starterProvider, "--allow-deletions", "--wait", "--timeout", "2m")
	r.expect(t, 0, "full sync of starter-demo started: workflow "+workflows.FullSyncWorkflowID(e.inst, starterProvider)+"-",
		"deprovisioning of up to 2 objects approved (signal approve-deletions): the 2 users and 0 groups deleted or out of scope now; ",
		"  users:  0 created, 0 updated, 38 unchanged, 0 skipped, 0 failed, 2 deprovisioned\n")
	if got := remoteUsers(e.target); len(got) != 38 || got["ltorvalds"] != nil || got["mhamilton"] != nil {
		t.Errorf("remote has %d users (ltorvalds %v, mhamilton %v), want 38 without them", len(got), got["ltorvalds"] != nil, got["mhamilton"] != nil)
	}
}
