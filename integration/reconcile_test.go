package integration

// Reconciliation (issue 13): a full sync that reads the target back repairs what was
// changed at the target itself, and deals with the orphans by the provider's policy.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/starter"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// driftWorld is a small directory synced once: six users, alpha (users 0-2) and beta
// (users 3-4), and a service account that the provider leaves out of scope.
type driftWorld struct {
	e       *env
	p       store.Provider
	users   []store.User
	groups  map[string]store.Group
	svc     store.User
	members map[string][]string // group → usernames
	c       *scim.Client        // straight to the target, as an administrator would
}

func newDriftWorld(t *testing.T, opts scimtest.Options, edit func(*store.Provider)) *driftWorld {
	t.Helper()
	e := newEnv(t, opts)
	w := &driftWorld{e: e, users: smallDirectory(e, 6), groups: map[string]store.Group{},
		members: map[string][]string{"alpha": {"user0000", "user0001", "user0002"}, "beta": {"user0003", "user0004"}}}
	e.tx(func(tx *store.Tx) (err error) {
		w.svc, err = tx.CreateUser(e.ctx, store.User{Username: "svc-bot", Name: "Bot", Type: "service_account", IsActive: true})
		if err != nil {
			return err
		}
		for _, name := range []string{"alpha", "beta"} {
			g, err := tx.CreateGroup(e.ctx, store.Group{Name: name})
			if err != nil {
				return err
			}
			w.groups[name] = g
			for _, u := range w.members[name] {
				if err := tx.AddMember(e.ctx, g.ID, w.user(u).ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	w.p = e.provider("drift", edit)
	if _, _, err := e.fullSync("drift", workflows.FullSyncInput{}); err != nil {
		t.Fatalf("first full sync: %v", err)
	}
	w.checkExact(t, nil)
	var err error
	if w.c, err = scim.New(scim.Options{BaseURL: e.target.URL, Token: targetToken, Mode: scim.Mode(w.p.CompatibilityMode)}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *driftWorld) user(name string) store.User {
	for _, u := range w.users {
		if u.Username == name {
			return u
		}
	}
	panic("no user " + name)
}

// remoteID is the remote id of a user or group by name, at the target.
func (w *driftWorld) remoteID(t *testing.T, kind, name string) string {
	t.Helper()
	if kind == object.User {
		if u, ok := w.e.target.UserByName(name); ok {
			return u["id"].(string)
		}
	} else {
		for _, g := range w.e.target.Groups() {
			if g["displayName"] == name {
				return g["id"].(string)
			}
		}
	}
	t.Fatalf("no %s %s at the target", kind, name)
	return ""
}

// checkExact checks that the target holds the directory exactly, plus the remote-only
// users extra (by userName).
func (w *driftWorld) checkExact(t *testing.T, extra []string) {
	t.Helper()
	got := remoteUsers(w.e.target)
	want := len(w.users) + len(extra)
	if len(got) != want {
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Errorf("target has %d users %v, want %d", len(got), names, want)
	}
	for _, u := range w.users {
		if diff := diffJSON(got[u.Username], expectedUser(u)); diff != "" {
			t.Errorf("remote user %s:\n%s", u.Username, diff)
		}
	}
	for _, n := range extra {
		if _, ok := got[n]; !ok {
			t.Errorf("remote-only user %s is gone", n)
		}
	}
	groups := remoteGroups(w.e.target)
	if len(groups) != len(w.groups) {
		t.Errorf("target has %d groups, want %d", len(groups), len(w.groups))
	}
	for name, g := range w.groups {
		rg := groups[name]
		if diff := diffJSON(rg.Body, expectedGroup(g)); diff != "" {
			t.Errorf("remote group %s:\n%s", name, diff)
		}
		if strings.Join(rg.Members, ",") != strings.Join(w.members[name], ",") {
			t.Errorf("remote group %s has members %v, want %v", name, rg.Members, w.members[name])
		}
	}
}

// drift changes the target as its administrators might, and returns the remote-only
// users it added.
func (w *driftWorld) drift(t *testing.T) []string {
	t.Helper()
	ctx := w.e.ctx
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// An attribute edited in the application's console.
	_, err := w.c.Patch(ctx, scim.Users, w.remoteID(t, object.User, "user0000"),
		[]scim.PatchOp{{Op: scim.OpReplace, Path: "displayName", Value: "Edited In The Console"}})
	must(err)
	// A user deleted there.
	must(w.c.Delete(ctx, scim.Users, w.remoteID(t, object.User, "user0001")))
	// A member removed from alpha, a stranger added to beta.
	must(w.c.UpdateMembers(ctx, w.remoteID(t, object.Group, "alpha"), nil, []string{w.remoteID(t, object.User, "user0002")}))
	stranger, err := w.c.Create(ctx, scim.Users, map[string]any{"userName": "stranger", "active": true})
	must(err)
	must(w.c.UpdateMembers(ctx, w.remoteID(t, object.Group, "beta"), []string{stranger.ID}, nil))
	// A user deleted and created again by hand: the same user under another id.
	moved := w.remoteID(t, object.User, "user0004")
	body, _ := w.e.target.User(moved)
	must(w.c.Delete(ctx, scim.Users, moved))
	again := map[string]any{}
	for k, v := range stripServerFields(body) {
		again[k] = v
	}
	_, err = w.c.Create(ctx, scim.Users, again)
	must(err)
	// Left behind: an account with the externalId of the service account, out of scope.
	_, err = w.c.Create(ctx, scim.Users, map[string]any{"userName": "svc-bot-old", "active": true,
		"externalId": mapping.HashedUserID(w.svc.ID, installationSecret)})
	must(err)
	return []string{"stranger", "svc-bot-old"}
}

func TestReadBackRepairsDriftMadeAtTheTarget(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		t.Run(fmt.Sprintf("bulk=%v", bulk), func(t *testing.T) {
			w := newDriftWorld(t, scimtest.Options{Config: scimtest.Config{NoBulk: !bulk}}, nil)
			extra := w.drift(t)
			movedAway := w.remoteID(t, object.User, "user0004")
			w.e.target.ResetLog()

			progress, _, err := w.e.fullSync("drift", workflows.FullSyncInput{ReadTarget: true})
			if err != nil {
				t.Fatal(err)
			}
			w.checkExact(t, extra) // report: the orphans stay
			// user0001 created again, once; user0004 relinked to where it is now, not posted.
			posts := w.e.target.Count("POST /Users")
			if bulk {
				posts = 0
				for _, r := range w.e.target.Requests() {
					if r.Route == "POST /Bulk" {
						posts += strings.Count(string(r.Body), `"POST"`)
					}
				}
			}
			if posts != 1 {
				t.Errorf("%d user creates, want 1 (user0001, deleted at the target)", posts)
			}
			links, _ := w.e.store.Links(w.e.ctx, w.p.ID, object.User, []string{w.user("user0004").ID})
			if got := links[w.user("user0004").ID].Remote(); got != movedAway {
				t.Errorf("user0004 linked to %q, want %q, where it is at the target now", got, movedAway)
			}
			rb := progress.ReadBack
			if rb == nil {
				t.Fatal("progress has no read-back")
			}
			// Read: users 0, 2, 3, 5, 4 (again) and the 2 orphans; 2 groups.
			if rb.UsersRead != 7 || rb.GroupsRead != 2 || progress.Users.Repaired != 3 || progress.Groups.Repaired != 2 {
				t.Errorf("read %d users, %d groups; repaired %d users, %d groups; want 7, 2; 3 (edited, deleted, moved), 2 (members)",
					rb.UsersRead, rb.GroupsRead, progress.Users.Repaired, progress.Groups.Repaired)
			}
			if rb.UserOrphans != (activities.OrphanCounts{Ours: 1, Strangers: 1}) || rb.GroupOrphans.Total() != 0 {
				t.Errorf("orphans: users %+v, groups %+v; want 1 of ours (svc-bot-old) and 1 stranger", rb.UserOrphans, rb.GroupOrphans)
			}
			if progress.Users.Updated != 0 || progress.Users.Created != 0 {
				t.Errorf("progress %+v: repairs counted as ordinary writes", progress.Users)
			}
			last, ok, err := w.e.store.LastReadBack(w.e.ctx, w.p.ID)
			var figures activities.ReadBackFigures
			if err == nil && ok {
				err = json.Unmarshal(last.Figures, &figures)
			}
			if err != nil || !ok || figures.UsersRead != 7 || figures.RepairedUsers != 3 || figures.UserOrphans.Strangers != 1 {
				t.Errorf("last read-back recorded %+v (%v, %v)", figures, ok, err)
			}
			var left int
			w.e.store.DB().GetContext(w.e.ctx, &left, `SELECT count(*) FROM target_objects`)
			if left != 0 {
				t.Errorf("%d rows of the read-back left in target_objects", left)
			}

			// Nothing differs any more: a read-back finds nothing to do.
			w.e.target.ResetLog()
			progress, _, err = w.e.fullSync("drift", workflows.FullSyncInput{ReadTarget: true})
			if err != nil {
				t.Fatal(err)
			}
			if m := w.e.target.Mutations(); m != 0 || progress.Users.Repaired+progress.Groups.Repaired != 0 {
				t.Errorf("second read-back: %d mutating requests, %d repairs; want none (%v)", m,
					progress.Users.Repaired+progress.Groups.Repaired, w.e.target.Counts())
			}
			// And without a read-back due (24h), a full sync reads nothing at all.
			w.e.target.ResetLog()
			if _, _, err := w.e.fullSync("drift", workflows.FullSyncInput{}); err != nil {
				t.Fatal(err)
			}
			if n := len(w.e.target.Requests()); n != 0 {
				t.Errorf("a full sync with no read-back due sent %d requests: %v", n, w.e.target.Counts())
			}
		})
	}
}

func TestOrphansAreDeletedWithinTheThreshold(t *testing.T) {
	w := newDriftWorld(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}}, func(p *store.Provider) {
		p.Orphans, p.DeprovisionThreshold = store.OrphansDelete, 1
	})
	extra := w.drift(t)
	strangerGroup, err := w.c.Create(w.e.ctx, scim.Groups, map[string]any{"displayName": "made-in-the-console"})
	if err != nil {
		t.Fatal(err)
	}
	run := w.e.startFullSync("drift", workflows.FullSyncInput{ReadTarget: true})
	// Three orphans to delete (2 users, 1 group) exceed the threshold of 1: the sync waits.
	w.e.waitFor(2*time.Minute, func() string {
		p, ok := queryProgress(w.e.ctx, w.e.temporal, run.GetID())
		if !ok || p.Phase != workflows.PhaseAwaitApproval || p.PendingDeletions != 3 {
			return fmt.Sprintf("progress %+v, want it waiting for approval to deprovision 3", p)
		}
		return ""
	})
	if _, ok := w.e.target.Group(strangerGroup.ID); !ok {
		t.Fatal("an orphan was deleted before approval")
	}
	if err := w.e.temporal.SignalWorkflow(w.e.ctx, run.GetID(), "", workflows.SignalApproveDeletions, nil); err != nil {
		t.Fatal(err)
	}
	var progress workflows.FullSyncProgress
	if err := run.Get(w.e.ctx, &progress); err != nil {
		t.Fatal(err)
	}
	w.checkExact(t, nil)
	if _, ok := w.e.target.Group(strangerGroup.ID); ok {
		t.Error("the orphan group is still at the target")
	}
	rb := progress.ReadBack
	if rb.UserOrphans.Deleted != 2 || rb.GroupOrphans.Deleted != 1 {
		t.Errorf("deleted %d user and %d group orphans, want 2 and 1", rb.UserOrphans.Deleted, rb.GroupOrphans.Deleted)
	}
	_ = extra
}

func TestOrphansMatchingTheDirectoryAreAdopted(t *testing.T) {
	e := newEnv(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	users := smallDirectory(e, 3)
	// Accounts the application had before scimsync: same userName, another externalId.
	before := e.target.AddUser(map[string]any{"userName": "user0001", "externalId": "from-the-old-tool", "active": false})
	e.target.AddGroup(map[string]any{"displayName": "nobody-knows"})
	p := e.provider("adopt", func(p *store.Provider) { p.Orphans = store.OrphansAdopt })
	progress, _, err := e.fullSync("adopt", workflows.FullSyncInput{})
	if err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, users)
	if n := e.target.Count("POST /Users"); n != 2 {
		t.Errorf("%d POST /Users, want 2: user0001 is adopted, not created", n)
	}
	links, _ := e.store.Links(e.ctx, p.ID, object.User, []string{users[1].ID})
	if got := links[users[1].ID].Remote(); got != before {
		t.Errorf("user0001 linked to %q, want the account it had, %q", got, before)
	}
	if progress.Users.Repaired != 1 || progress.ReadBack.GroupOrphans.Strangers != 1 {
		t.Errorf("progress %+v, read-back %+v: want user0001 adopted and the unknown group reported", progress.Users, *progress.ReadBack)
	}
}

func TestReadBackOnAWSRepairsUsersAndSaysMembershipIsNotObservable(t *testing.T) {
	w := newDriftWorld(t, scimtest.Options{Quirks: scimtest.Profile("aws")}, func(p *store.Provider) {
		p.CompatibilityMode = "aws"
	})
	ctx := w.e.ctx
	if _, err := w.c.Replace(ctx, scim.Users, w.remoteID(t, object.User, "user0003"),
		map[string]any{"userName": "user0003", "displayName": "Changed", "active": true}); err != nil {
		t.Fatal(err)
	}
	if err := w.c.UpdateMembers(ctx, w.remoteID(t, object.Group, "alpha"), nil, []string{w.remoteID(t, object.User, "user0000")}); err != nil {
		t.Fatal(err)
	}
	w.e.target.ResetLog()
	progress, _, err := w.e.fullSync("drift", workflows.FullSyncInput{ReadTarget: true})
	if err != nil {
		t.Fatal(err)
	}
	got := remoteUsers(w.e.target)
	if diff := diffJSON(got["user0003"], expectedUser(w.user("user0003"))); diff != "" {
		t.Errorf("user0003 not repaired:\n%s", diff)
	}
	rb := progress.ReadBack
	if !rb.MembersNotObservable || progress.Users.Repaired != 1 || progress.Groups.Repaired != 0 {
		t.Errorf("read-back %+v, repaired %d users and %d groups; want the user repaired and membership not observable",
			*rb, progress.Users.Repaired, progress.Groups.Repaired)
	}
	// The listing went by cursor, 100 at a time at most.
	for _, r := range w.e.target.Requests() {
		if r.Method == http.MethodGet && (r.Route == "GET /Users" || r.Route == "GET /Groups") && !r.Query.Has("filter") && !r.Query.Has("cursor") {
			t.Errorf("%s %s?%s: a listing without a cursor", r.Method, r.Path, r.Query.Encode())
		}
	}
}

// TestPlanShowsEveryChangeAndSendsOnlyGETs: starter plan lists each drift made at the
// target with before → after, what the directory changed, and the orphans, exits 3, and
// the target sees nothing but GETs; after a full sync it exits 0.
func TestPlanShowsEveryChangeAndSendsOnlyGETs(t *testing.T) {
	w := newDriftWorld(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}}, nil)
	w.drift(t)
	// And the directory changes too: a rename and a new user.
	renamed := w.user("user0005")
	renamed.Name = "Renamed Person"
	w.e.tx(func(tx *store.Tx) (err error) { renamed, err = tx.UpdateUser(w.e.ctx, renamed); return err })
	w.e.tx(func(tx *store.Tx) error {
		_, err := tx.CreateUser(w.e.ctx, store.User{Username: "newbie", Name: "New Person", Email: "newbie@example.test", IsActive: true})
		return err
	})
	w.e.target.ResetLog()

	out := w.e.starter("plan", "--provider", "drift", "--read-target")
	out.expect(t, starter.ExitChanges,
		"plan for provider drift (target read back: 7 users, 2 groups)",
		"update (repair: attributes) user user0000",
		`displayName: "Edited In The Console" → "Given0 Family0"`,
		"create (repair: gone) user user0001",
		"update (repair: relinked) user user0004",
		"update user user0005",
		`displayName: "Given5 Family5" → "Renamed Person"`,
		"create user newbie",
		`userName = "newbie"`,
		"members (repair: members) group alpha",
		"+ member user0002",
		"members (repair: members) group beta",
		"(no user of the directory)",
		"orphan users at the target: 1 of ours (left behind), 0 known to the directory, 1 strangers; reported",
	)
	for _, r := range w.e.target.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("plan sent %s %s", r.Method, r.Path)
		}
	}
	var left int
	w.e.store.DB().GetContext(w.e.ctx, &left, `SELECT count(*) FROM target_objects`)
	if left != 0 {
		t.Errorf("the plan left %d rows of its read-back", left)
	}
	var plan struct {
		Changes []activities.PlannedChange `json:"changes"`
		Counts  map[string]int             `json:"counts"`
	}
	js := w.e.starter("plan", "--provider", "drift", "--read-target", "--json")
	if js.code != starter.ExitChanges || json.Unmarshal([]byte(js.stdout), &plan) != nil {
		t.Fatalf("plan --json: exit %d, %q", js.code, js.stdout)
	}
	want := map[string]int{"user create": 2, "user update": 3, "user repair": 3, "group members": 2, "group repair": 2}
	if fmt.Sprint(plan.Counts) != fmt.Sprint(want) {
		t.Errorf("plan counts %v, want %v", plan.Counts, want)
	}

	if _, _, err := w.e.fullSync("drift", workflows.FullSyncInput{ReadTarget: true}); err != nil {
		t.Fatal(err)
	}
	w.e.starter("plan", "--provider", "drift", "--read-target").expect(t, starter.ExitOK, "no changes")
}

// TestScimmyReadBackRepairsDrift: the same on SCIMMY, a third-party SCIM server: an
// attribute edited there, a user deleted there, a member removed and a stranger added
// there, are repaired by the next full sync that reads back, and the stranger, an orphan,
// is deleted (orphans: delete); then a plan finds nothing to change.
func TestScimmyReadBackRepairsDrift(t *testing.T) {
	sc := startScimmy(t)
	e := newEnv(t, scimtest.Options{})
	var ada, bob store.User
	var staff store.Group
	e.tx(func(tx *store.Tx) (err error) {
		if staff, err = tx.CreateGroup(e.ctx, store.Group{Name: "staff"}); err != nil {
			return err
		}
		for name, u := range map[string]*store.User{"ada": &ada, "bob": &bob} {
			if *u, err = tx.CreateUser(e.ctx, store.User{Username: name, Name: "Person " + name, Email: name + "@example.test", IsActive: true}); err != nil {
				return err
			}
			if err := tx.AddMember(e.ctx, staff.ID, u.ID); err != nil {
				return err
			}
		}
		return nil
	})
	e.scimmyProvider(sc, "scimmy-drift", func(p *store.Provider) { p.Orphans = store.OrphansDelete })
	if _, _, err := e.fullSync("scimmy-drift", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	want := scimmyWant{
		Users:  map[string]map[string]any{"ada": scimmyStored(expectedUser(ada)), "bob": scimmyStored(expectedUser(bob))},
		Groups: map[string]remoteGroup{"staff": {Body: scimmyStored(expectedGroup(staff)), Members: []string{"ada", "bob"}}},
	}
	if diff := want.diff(sc.State(t)); diff != "" {
		t.Fatalf("SCIMMY after the first full sync:\n%s", diff)
	}

	// Straight at SCIMMY, past the proxy: what its administrators might do.
	c, err := scim.New(scim.Options{BaseURL: sc.root + "/scim/v2", Token: scimmyToken})
	if err != nil {
		t.Fatal(err)
	}
	_, ids, _ := sc.State(t).usersByName()
	var staffID string
	for _, g := range sc.State(t).Groups {
		staffID, _ = g["id"].(string)
	}
	ctx := e.ctx
	if _, err := c.Patch(ctx, scim.Users, ids["ada"], []scim.PatchOp{{Op: scim.OpReplace, Path: "displayName", Value: "Changed at SCIMMY"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, scim.Users, ids["bob"]); err != nil {
		t.Fatal(err)
	}
	eve := sc.Create(t, "Users", map[string]any{"userName": "eve", "active": true})
	if err := c.UpdateMembers(ctx, staffID, []string{eve}, []string{ids["ada"]}); err != nil {
		t.Fatal(err)
	}
	sc.ResetLog()

	progress, _, err := e.fullSync("scimmy-drift", workflows.FullSyncInput{ReadTarget: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := want.diff(sc.State(t)); diff != "" {
		t.Errorf("SCIMMY after the read-back:\n%s", diff)
	}
	rb := progress.ReadBack
	if progress.Users.Repaired != 2 || progress.Groups.Repaired != 1 || rb.UserOrphans.Deleted != 1 || rb.UserOrphans.Strangers != 1 {
		t.Errorf("repaired %d users and %d groups, orphans %+v; want ada and bob, staff, and eve deleted",
			progress.Users.Repaired, progress.Groups.Repaired, rb.UserOrphans)
	}
	sc.checkNoRejections(t)
	e.starter("plan", "--provider", "scimmy-drift", "--read-target").expect(t, starter.ExitOK, "no changes")
}

// TestReadBackOfATargetThatCannotListReadsLinkedObjectsOneByOne: a target that refuses to
// list (400 tooMany) is read back by GET of each linked object: an edit and a deletion
// there are repaired, and the figures say its orphans could not be seen.
func TestReadBackOfATargetThatCannotListReadsLinkedObjectsOneByOne(t *testing.T) {
	w := newDriftWorld(t, scimtest.Options{Config: scimtest.Config{NoBulk: true, NoListing: true}}, nil)
	ctx := w.e.ctx
	if _, err := w.c.Patch(ctx, scim.Users, w.remoteID(t, object.User, "user0002"),
		[]scim.PatchOp{{Op: scim.OpReplace, Path: "displayName", Value: "Edited"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.c.Delete(ctx, scim.Users, w.remoteID(t, object.User, "user0005")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Create(ctx, scim.Users, map[string]any{"userName": "unseen", "active": true}); err != nil {
		t.Fatal(err)
	}
	w.e.target.ResetLog()
	progress, _, err := w.e.fullSync("drift", workflows.FullSyncInput{ReadTarget: true})
	if err != nil {
		t.Fatal(err)
	}
	w.checkExact(t, []string{"unseen"})
	rb := progress.ReadBack
	if !slices.Equal(rb.NotListable, []string{object.User, object.Group}) || rb.UsersRead != 5 ||
		rb.GroupsRead != 2 || progress.Users.Repaired != 2 || rb.UserOrphans.Total() != 0 {
		t.Errorf("read-back %+v, users repaired %d; want both kinds read one by one (5 users, 2 groups), 2 repaired, no orphan seen",
			*rb, progress.Users.Repaired)
	}
	if n := w.e.target.Count("GET /Users/{id}"); n != 6 {
		t.Errorf("%d GET /Users/{id}, want one per linked user (6)", n)
	}
}
