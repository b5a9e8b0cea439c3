package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// historyEntry is an entry of `starter history --json`, as an operator's script reads it.
type historyEntry struct {
	Time       time.Time                `json:"time"`
	Trigger    string                   `json:"trigger"`
	Reasons    []string                 `json:"reasons"`
	Action     string                   `json:"action"`
	Requests   []activities.SentRequest `json:"requests"`
	Result     string                   `json:"result"`
	Error      string                   `json:"error"`
	WorkflowID string                   `json:"workflowId"`
	RunID      string                   `json:"runId"`
	FullSync   string                   `json:"fullSync"`
}

// A user is created and changed in the directory (each relayed to its own sync), then a
// mapping change makes a full sync rewrite it with its neighbour in one Bulk request:
// `starter history` shows the three syncs newest first, with what triggered each, what it
// did and the exact requests it sent, read from Temporal's histories alone.
func TestStarterHistoryShowsAnObjectsSyncsNewestFirst(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	p := e.provider("history", nil)
	e.startRelay()
	const within = 30 * time.Second

	var ada, bob store.User
	var staff store.Group
	e.tx(func(tx *store.Tx) (err error) {
		if staff, err = tx.CreateGroup(e.ctx, store.Group{Name: "staff"}); err != nil {
			return err
		}
		if bob, err = tx.CreateUser(e.ctx, store.User{Username: "bob", Name: "Bob Babbage", Email: "bob@example.test", IsActive: true}); err != nil {
			return err
		}
		ada, err = tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true})
		return err
	})
	adaSync := workflows.ObjectSyncID(e.inst, p.Name, object.User, ada.ID)
	bobSync := workflows.ObjectSyncID(e.inst, p.Name, object.User, bob.ID)
	staffSync := workflows.ObjectSyncID(e.inst, p.Name, object.Group, staff.ID)
	e.waitSynced(within, adaSync, bobSync, staffSync)
	remote := e.link(p.ID, object.User, ada.ID).Remote()
	if remote == "" {
		t.Fatal("ada was not linked")
	}

	ada.Name = "Ada King"
	e.tx(func(tx *store.Tx) (err error) { ada, err = tx.UpdateUser(e.ctx, ada); return err })
	e.waitFor(within, func() string {
		if got := remoteUser(e.target, "ada"); got == nil || fmt.Sprint(got["displayName"]) != "Ada King" {
			return fmt.Sprintf("remote ada = %v", got)
		}
		return ""
	})
	e.waitSynced(within, adaSync)

	// A mapping every user's payload changes with: the full sync rewrites ada and bob.
	e.tx(func(tx *store.Tx) error {
		m, err := tx.SaveMapping(e.ctx, store.PropertyMapping{Name: "history-title", Kind: "user", Expression: `return {"title": "Engineer"}`})
		if err != nil {
			return err
		}
		def, err := e.store.Mapping(e.ctx, store.DefaultUserMappingName)
		if err != nil {
			return err
		}
		return tx.SetProviderMappings(e.ctx, p.ID, []string{def.ID, m.ID})
	})
	progress, run, err := e.fullSync(p.Name, workflows.FullSyncInput{})
	if err != nil {
		t.Fatal(err)
	}
	if progress.Users.Updated != 2 || progress.BatchesTotal != 1 {
		t.Fatalf("full sync progress %+v, want 2 users updated in 1 batch", progress)
	}
	if got := fmt.Sprint(remoteUser(e.target, "ada")["title"]); got != "Engineer" {
		t.Fatalf("remote ada's title = %q", got)
	}

	// Visibility catches up with the closed runs within moments: wait for all three.
	var entries []historyEntry
	e.waitFor(within, func() string {
		r := e.starter("history", "user", "ada", "--json")
		if r.code != 0 {
			return fmt.Sprintf("exit %d: %s", r.code, r.stderr)
		}
		entries = nil
		if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
			return fmt.Sprintf("not a JSON array: %v\n%s", err, r.stdout)
		}
		if len(entries) < 3 {
			return fmt.Sprintf("%d entries: %s", len(entries), r.stdout)
		}
		return ""
	})
	batch := run.GetID() + "/user-batch-1"
	type shown struct {
		Trigger, Action, Result, Error, WorkflowID, FullSync string
		Reasons                                              []string
		Requests                                             []activities.SentRequest
	}
	var got []shown
	for _, h := range entries {
		got = append(got, shown{h.Trigger, h.Action, h.Result, h.Error, h.WorkflowID, h.FullSync, h.Reasons, h.Requests})
	}
	want := []shown{
		{Trigger: "full-sync", Action: "updated", Result: "ok", WorkflowID: batch, FullSync: run.GetID(),
			Requests: []activities.SentRequest{{Method: "PATCH", Path: "/Users/" + remote, Status: 200, Bulk: true}}},
		{Trigger: "directory-change", Reasons: []string{"user update"}, Action: "updated", Result: "ok", WorkflowID: adaSync,
			Requests: []activities.SentRequest{{Method: "PATCH", Path: "/Users/" + remote, Status: 200}}},
		{Trigger: "directory-change", Reasons: []string{"user insert"}, Action: "created", Result: "ok", WorkflowID: adaSync,
			Requests: []activities.SentRequest{{Method: "POST", Path: "/Users", Status: 201}}},
	}
	if diff := diffJSON(got, want); diff != "" {
		t.Errorf("history of ada:\n%s", diff)
	}
	for i := 1; i < len(entries); i++ {
		if !entries[i].Time.Before(entries[i-1].Time) {
			t.Errorf("entry %d (%s) is not older than entry %d (%s)", i, entries[i].Time, i-1, entries[i-1].Time)
		}
	}
	// The target received what the histories say: the creates (in any order), ada's PATCH,
	// and one Bulk request of the two users' PATCHes.
	var routes []string
	for _, req := range e.target.Requests() {
		if req.Method != "GET" {
			routes = append(routes, req.Route)
		}
	}
	if len(routes) > 3 {
		slices.Sort(routes[:3])
	}
	if want := []string{"POST /Groups", "POST /Users", "POST /Users", "PATCH /Users/{id}", "POST /Bulk"}; diffJSON(routes, want) != "" {
		t.Errorf("the target received %v, want %v", routes, want)
	}

	// The table, and --limit.
	r := e.starter("history", "user", "ada", "--limit", "2")
	r.expect(t, 0,
		"2 syncs of user ada ("+ada.ID+") at provider history, newest first\n",
		"TIME", "TRIGGER", "ACTION", "REQUESTS", "RESULT", "ERROR",
		"full-sync", "updated", "PATCH /Users/"+remote+" 200 (bulk)",
		"directory-change (user update)", "PATCH /Users/"+remote+" 200  ")
	if strings.Contains(r.stdout, "POST /Users") {
		t.Errorf("--limit 2 printed the third sync:\n%s", r.stdout)
	}
	// Bob's history is his own: his create, and the same batch.
	r = e.starter("history", "user", "bob", "--json")
	var bobs []historyEntry
	if err := json.Unmarshal([]byte(r.stdout), &bobs); err != nil || len(bobs) != 2 ||
		bobs[0].WorkflowID != batch || bobs[1].WorkflowID != bobSync || bobs[1].Action != "created" {
		t.Errorf("history of bob (%v): %+v", err, bobs)
	}
	// Bob leaves the directory: his sync deletes him at the target, and his history, asked
	// by his id now that no name finds him, begins with that.
	bobRemote := e.link(p.ID, object.User, bob.ID).Remote()
	e.tx(func(tx *store.Tx) error { return tx.DeleteUser(e.ctx, bob.ID) })
	e.waitFor(within, func() string {
		if remoteUser(e.target, "bob") != nil {
			return "bob is still at the target"
		}
		return ""
	})
	e.waitSynced(within, bobSync)
	e.starter("history", "user", "bob").expect(t, 2, `no user with userName "bob" in the directory`)
	e.waitFor(within, func() string {
		r := e.starter("history", "user", bob.ID, "--json")
		bobs = nil
		if err := json.Unmarshal([]byte(r.stdout), &bobs); err != nil || len(bobs) < 3 {
			return fmt.Sprintf("history of bob by id (%v): %s%s", err, r.stdout, r.stderr)
		}
		return ""
	})
	if diff := diffJSON(shown{bobs[0].Trigger, bobs[0].Action, bobs[0].Result, bobs[0].Error, bobs[0].WorkflowID,
		bobs[0].FullSync, bobs[0].Reasons, bobs[0].Requests}, shown{Trigger: "directory-change", Reasons: []string{"user delete"},
		Action: "deleted", Result: "ok", WorkflowID: bobSync,
		Requests: []activities.SentRequest{{Method: "DELETE", Path: "/Users/" + bobRemote, Status: 204}}}); diff != "" {
		t.Errorf("bob's deletion:\n%s", diff)
	}

	// The group's, by its displayName: created by its own sync, without members; the full
	// sync had nothing to write for it.
	r = e.starter("history", "group", "staff", "--json")
	var staffs []historyEntry
	if err := json.Unmarshal([]byte(r.stdout), &staffs); err != nil || len(staffs) != 1 {
		t.Fatalf("history of staff (%v): %s", err, r.stdout)
	}
	if diff := diffJSON(shown{staffs[0].Trigger, staffs[0].Action, staffs[0].Result, staffs[0].Error, staffs[0].WorkflowID,
		staffs[0].FullSync, staffs[0].Reasons, staffs[0].Requests}, shown{Trigger: "directory-change", Reasons: []string{"group insert"},
		Action: "created", Result: "ok", WorkflowID: staffSync,
		Requests: []activities.SentRequest{{Method: "POST", Path: "/Groups", Status: 201}}}); diff != "" {
		t.Errorf("history of staff:\n%s", diff)
	}

	// Ada joins staff: the group's sync adds her with a PATCH, hers finds nothing to write.
	e.tx(func(tx *store.Tx) error { return tx.AddMember(e.ctx, staff.ID, ada.ID) })
	e.waitFor(within, func() string {
		if m := remoteGroups(e.target)["staff"].Members; strings.Join(m, ",") != "ada" {
			return fmt.Sprintf("staff members = %v, want [ada]", m)
		}
		return ""
	})
	e.waitSynced(within, staffSync, adaSync)
	newest := func(kind, name string) historyEntry {
		t.Helper()
		var es []historyEntry
		e.waitFor(within, func() string {
			r := e.starter("history", kind, name, "--json", "--limit", "1")
			es = nil
			if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || len(es) != 1 {
				return fmt.Sprintf("history of %s (%v): %s%s", name, err, r.stdout, r.stderr)
			}
			if es[0].Reasons == nil || es[0].Reasons[0] != "membership insert" {
				return fmt.Sprintf("history of %s: newest %+v", name, es[0])
			}
			return ""
		})
		return es[0]
	}
	g := newest("group", "staff")
	if diff := diffJSON(shown{g.Trigger, g.Action, g.Result, g.Error, g.WorkflowID, g.FullSync, g.Reasons, g.Requests},
		shown{Trigger: "directory-change", Reasons: []string{"membership insert"}, Action: "members", Result: "ok", WorkflowID: staffSync,
			Requests: []activities.SentRequest{{Method: "PATCH", Path: "/Groups/" + e.link(p.ID, object.Group, staff.ID).Remote(), Status: 200}}}); diff != "" {
		t.Errorf("staff's new member:\n%s", diff)
	}
	a := newest("user", "ada")
	if diff := diffJSON(shown{a.Trigger, a.Action, a.Result, a.Error, a.WorkflowID, a.FullSync, a.Reasons, a.Requests},
		shown{Trigger: "directory-change", Reasons: []string{"membership insert"}, Action: "unchanged", Result: "ok", WorkflowID: adaSync,
			Requests: []activities.SentRequest{}}); diff != "" {
		t.Errorf("ada joining staff:\n%s", diff)
	}
}

// Bad input stops history before Temporal is asked, naming what to fix.
func TestStarterHistoryRejectsUnknownNamesAndAmbiguousProviders(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	e.provider("first", nil)
	e.tx(func(tx *store.Tx) error {
		_, err := tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true})
		return err
	})
	e.starter("history", "user", "nobody").expect(t, 2,
		`starter history: no user with userName "nobody" in the directory: give the userName exactly as the directory has it, or the user's id`)
	e.starter("history", "group", "nobody", "--provider", "first").expect(t, 2,
		`starter history: no group with displayName "nobody" in the directory`)
	e.starter("history", "member", "ada").expect(t, 2, `"member" is not an object kind: use history user NAME or history group NAME`)
	e.starter("history", "user", "ada", "--limit", "0").expect(t, 2, "--limit must be at least 1, got 0")
	e.starter("history", "user").expect(t, 2, "starter history: missing arguments")
	e.starter("history", "user", "ada", "--provider", "second").expect(t, 1, `provider "second" does not exist (see starter providers)`)
	e.starter("history", "user", "ada").expect(t, 0, "no sync of user ada (")

	e.provider("second", nil)
	e.starter("history", "user", "ada").expect(t, 2,
		"starter history: --provider is required when there are several providers; there are 2: first, second")
	r := e.starter("history", "user", "ada", "--provider", "second", "--json")
	r.expect(t, 0, "[]\n")
	e.starter("history", "--help").expect(t, 0, "usage: starter history user|group NAME [--provider P] [--json] [--limit N]")
}

// waitSynced waits until each ObjectSync workflow has run and completed.
func (e *env) waitSynced(timeout time.Duration, ids ...string) {
	e.t.Helper()
	e.waitFor(timeout, func() string {
		for _, id := range ids {
			d, err := e.temporal.DescribeWorkflowExecution(e.ctx, id, "")
			if err != nil {
				return fmt.Sprintf("%s: %v", id, err)
			}
			if s := d.GetWorkflowExecutionInfo().GetStatus().String(); s != "Completed" {
				return fmt.Sprintf("%s: %s", id, s)
			}
		}
		return ""
	})
}

// With the workers encrypting payloads, history reads the histories with their keys, and
// without them says what is missing. Its entries show a create the target refused (400)
// with its error, and a create that met a 503 and went through in the next pass, its
// look-up included.
func TestStarterHistoryReadsSealedHistoriesWithTheKeys(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	key := make([]byte, 32)
	rand.Read(key)
	t.Setenv("IT_HISTORY_KEY", base64.StdEncoding.EncodeToString(key))
	sealed := codecClient(t, codec.Key{ID: "k1", Secret: key})
	w := sdkworker.New(sealed, e.queue, sdkworker.Options{
		Interceptors: []interceptor.WorkerInterceptor{worker.InstallationGuard(e.inst)},
	})
	worker.Register(w, e.acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	p := e.provider("sealed", nil)
	var grace store.User
	e.tx(func(tx *store.Tx) (err error) {
		grace, err = tx.CreateUser(e.ctx, store.User{Username: "grace", Name: "Grace Hopper", Email: "grace@example.test", IsActive: true})
		return err
	})
	id := workflows.ObjectSyncID(e.inst, p.Name, object.User, grace.ID)
	const within = 30 * time.Second
	syncOnce := func(reason string) {
		t.Helper()
		if err := workflows.SignalObjectSync(e.ctx, sealed, e.queue, e.inst, p.Name, object.User, grace.ID, reason); err != nil {
			t.Fatal(err)
		}
		e.waitSynced(within, id)
	}
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 400, ScimType: "invalidValue", Times: 1})
	syncOnce("user insert")
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 503, Times: 1})
	syncOnce("starter sync")
	if remoteUser(e.target, "grace") == nil {
		t.Fatal("grace is not at the target")
	}

	keys := map[string]string{"SCIMSYNC_CODEC_KEYS": "k1=env:IT_HISTORY_KEY"}
	var entries []historyEntry
	e.waitFor(within, func() string {
		r := e.runStarter(keys, "history", "user", "grace", "--json")
		entries = nil
		if err := json.Unmarshal([]byte(r.stdout), &entries); r.code != 0 || err != nil || len(entries) < 2 {
			return fmt.Sprintf("exit %d, %v: %s%s", r.code, err, r.stdout, r.stderr)
		}
		return ""
	})
	type shown struct {
		Trigger, Action, Result, Error string
		Requests                       []activities.SentRequest
	}
	var got []shown
	for _, h := range entries {
		got = append(got, shown{h.Trigger, h.Action, h.Result, h.Error, h.Requests})
	}
	want := []shown{
		{Trigger: "operator", Action: "created", Result: "ok", Requests: []activities.SentRequest{
			{Method: "POST", Path: "/Users", Status: 503}, {Method: "GET", Path: "/Users", Status: 200},
			{Method: "POST", Path: "/Users", Status: 201}}},
		{Trigger: "directory-change", Action: "failed", Result: "failed", Error: "scim: create POST /Users: 400 Bad Request (scimType invalidValue)",
			Requests: []activities.SentRequest{{Method: "POST", Path: "/Users", Status: 400}}},
	}
	if diff := diffJSON(got, want); diff != "" {
		t.Errorf("history of grace:\n%s", diff)
	}

	e.starter("history", "user", "grace").expect(t, 2,
		"starter history: the workers encrypt payloads (SCIMSYNC_CODEC_KEYS) and this starter has not got their keys: "+
			"set SCIMSYNC_CODEC_KEYS (or --codec-keys) as the workers have it\n")
	other := make([]byte, 32)
	rand.Read(other)
	t.Setenv("IT_HISTORY_OTHER", hex.EncodeToString(other))
	e.runStarter(map[string]string{"SCIMSYNC_CODEC_KEYS": "k2=env:IT_HISTORY_OTHER"}, "history", "user", "grace").expect(t, 2,
		`codec: payload sealed with key "k1", which is not configured (have k2)`)
}
