package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/workflows"
)

// S8, reconciliation: after S1 (and S3, S4 when they run), the target is changed directly,
// as its administrators would in the application's console, by a SCIM client of its own:
//
//	100 users edited (displayName)        users 1-100
//	20 users deleted                      users 101-120 (which leaves their groups too)
//	50 memberships removed                one member of each of the first 50 groups
//	20 strangers added to groups          a remote-only user each, in groups 51-70
//	10 orphan users                       copies of users 201-210 under another userName,
//	                                      with their externalId: left behind ("ours")
//
// Then one full sync reads the target back (FullSyncInput.ReadTarget) and must repair every
// drift in that one run: the exact remote state afterwards is the directory's, plus the 30
// remote-only users (orphans: report keeps them), and exactly the repairing requests were
// sent.

// Drift sizes of S8.
const (
	s8Edited         = 100
	s8Deleted        = 20
	s8MembersRemoved = 50
	s8Strangers      = 20
	s8Orphans        = 10
)

// s8MinUsers and s8MinGroups are the smallest directory S8's drift fits in.
const (
	s8MinUsers  = 210
	s8MinGroups = s8MembersRemoved + s8Strangers
)

// ReconcileResult is what S8 measured.
type ReconcileResult struct {
	// Drift made at the target, and the groups it touched (members removed, strangers
	// added, deleted users dropped from them).
	Edited         int `json:"usersEdited"`
	Deleted        int `json:"usersDeleted"`
	MembersRemoved int `json:"membershipsRemoved"`
	StrangersAdded int `json:"strangersAdded"`
	Orphans        int `json:"orphanUsers"`
	GroupsTouched  int `json:"groupsTouched"`
	// GroupsDrifted lost a member or gained a stranger: their repair is counted as one. The
	// other groups touched only lost deleted users, whom they get back with the users'
	// repair (an ordinary membership update).
	GroupsDrifted int `json:"groupsDrifted"`
	// ReadRequests are the read-back's list requests (GET /Users and GET /Groups), and
	// ReadShareOfS1 their share of S1's requests.
	ReadRequests  int     `json:"readRequests"`
	S1Requests    int     `json:"s1Requests"`
	ReadShareOfS1 float64 `json:"readShareOfS1"`
	// What the sync's read-back found and repaired.
	Figures *workflows.ReadBackProgress `json:"figures,omitempty"`
	// S3WallSeconds is the full sync without read-back of the same world, when S3 ran.
	S3WallSeconds float64 `json:"s3WallSeconds,omitempty"`
}

type s8Drift struct {
	ReconcileResult
	extra   []string        // userNames of the remote-only users
	touched map[string]bool // remote ids of the groups touched
	drifted map[string]bool // remote ids of the groups whose members were changed
}

// driftTarget changes the target as S8 says, through a SCIM client of its own.
func (w *world) driftTarget(ctx context.Context) (*s8Drift, error) {
	c, err := scim.New(scim.Options{BaseURL: w.target.URL, Token: targetToken})
	if err != nil {
		return nil, err
	}
	d := &s8Drift{touched: map[string]bool{}, drifted: map[string]bool{}}
	remote := func(i int) (map[string]any, error) {
		u, ok := w.target.UserByName(userName(i))
		if !ok {
			return nil, fmt.Errorf("user %s is not at the target", userName(i))
		}
		return u, nil
	}
	for i := 1; i <= s8Edited; i++ {
		u, err := remote(i)
		if err != nil {
			return nil, err
		}
		if _, err := c.Patch(ctx, scim.Users, u["id"].(string),
			[]scim.PatchOp{{Op: scim.OpReplace, Path: "displayName", Value: fmt.Sprintf("Edited At The Target %d", i)}}); err != nil {
			return nil, fmt.Errorf("edit %s: %w", userName(i), err)
		}
		d.Edited++
	}
	memberOf := map[string][]string{} // user remote id → group remote ids
	groups := w.target.Groups()
	for _, g := range groups {
		for _, m := range w.target.GroupMembers(g["id"].(string)) {
			memberOf[m] = append(memberOf[m], g["id"].(string))
		}
	}
	deleted := map[string]bool{}
	for i := s8Edited + 1; i <= s8Edited+s8Deleted; i++ {
		u, err := remote(i)
		if err != nil {
			return nil, err
		}
		id := u["id"].(string)
		if err := c.Delete(ctx, scim.Users, id); err != nil {
			return nil, fmt.Errorf("delete %s: %w", userName(i), err)
		}
		deleted[id] = true
		for _, g := range memberOf[id] {
			d.touched[g] = true
		}
		d.Deleted++
	}
	slices.SortFunc(groups, func(a, b map[string]any) int {
		return strings.Compare(a["displayName"].(string), b["displayName"].(string))
	})
	for _, g := range groups[:s8MembersRemoved] {
		gid := g["id"].(string)
		members := w.target.GroupMembers(gid)
		if len(members) == 0 {
			return nil, fmt.Errorf("group %s has no member to remove", g["displayName"])
		}
		if err := c.UpdateMembers(ctx, gid, nil, members[:1]); err != nil {
			return nil, fmt.Errorf("remove a member of %s: %w", g["displayName"], err)
		}
		d.touched[gid], d.drifted[gid] = true, true
		d.MembersRemoved++
	}
	for k, g := range groups[s8MembersRemoved : s8MembersRemoved+s8Strangers] {
		name := fmt.Sprintf("stranger%03d", k)
		s, err := c.Create(ctx, scim.Users, map[string]any{"userName": name, "displayName": "A Stranger", "active": true})
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		gid := g["id"].(string)
		if err := c.UpdateMembers(ctx, gid, []string{s.ID}, nil); err != nil {
			return nil, fmt.Errorf("add %s to %s: %w", name, g["displayName"], err)
		}
		d.touched[gid], d.drifted[gid] = true, true
		d.extra = append(d.extra, name)
		d.StrangersAdded++
	}
	for i := 201; i < 201+s8Orphans; i++ {
		name := userName(i) + "-old"
		if _, err := c.Create(ctx, scim.Users, map[string]any{"userName": name, "active": true,
			"externalId": mapping.HashedUserID(benchUserID(i), benchSecret)}); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		d.extra = append(d.extra, name)
		d.Orphans++
	}
	d.GroupsTouched, d.GroupsDrifted = len(d.touched), len(d.drifted)
	return d, nil
}

// reconcileScenario runs S8 in a world where S1 ran: the drift, then one full sync with a
// read-back, and the checks.
func (w *world) reconcileScenario(ctx context.Context, round int, s1, s3 *Result) (*Result, error) {
	cfg := w.h.cfg
	label := fmt.Sprintf("S8-r%d", round)
	d, err := w.driftTarget(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: drift: %w", label, err)
	}
	cfg.logf("%s: the target changed: %d users edited, %d deleted, %d memberships removed, %d strangers added to groups, %d orphan users (%d groups touched)",
		label, d.Edited, d.Deleted, d.MembersRemoved, d.StrangersAdded, d.Orphans, d.GroupsTouched)
	res := &Result{Scenario: "S8", Round: round, Description: describe("S8", cfg), Users: w.opts.users,
		Groups: w.opts.groups, Memberships: w.memberships, Objects: w.opts.users + w.opts.groups}
	progress, err := w.timedFullSync(ctx, res, label, workflows.FullSyncInput{ReadTarget: true})
	if err != nil {
		return nil, err
	}
	r := &d.ReconcileResult
	r.ReadRequests = res.Routes["GET /Users"] + res.Routes["GET /Groups"]
	r.S1Requests = s1.RequestsTotal
	if r.S1Requests > 0 {
		r.ReadShareOfS1 = float64(r.ReadRequests) / float64(r.S1Requests)
	}
	if s3 != nil {
		r.S3WallSeconds = s3.WallSeconds
	}
	r.Figures = progress.ReadBack
	res.Reconcile = r

	// The exact remote state: the directory, plus the remote-only users.
	if err := w.checkDirectoryAtTarget(ctx, res, d.extra); err != nil {
		return nil, err
	}
	// Exactly the repairs were written: a PATCH per edited user, a POST per deleted one, one
	// membership PATCH per group touched (members added and removed in one request),
	// nothing else.
	want := map[string]int{"PATCH /Users/{id}": d.Edited, "POST /Users": d.Deleted, "PATCH /Groups/{id}": d.GroupsTouched}
	got := map[string]int{}
	for route, n := range res.Routes {
		if !strings.HasPrefix(route, "GET ") {
			got[route] = n
		}
	}
	if !maps.Equal(got, want) {
		res.fail("mutating requests %v, want %v", got, want)
	}
	u, g := progress.Users, progress.Groups
	if u.Repaired != d.Edited+d.Deleted || g.Repaired != d.GroupsDrifted || u.Failed+g.Failed > 0 {
		res.fail("repaired %d users and %d groups (%d and %d failed), want %d and %d", u.Repaired, g.Repaired,
			u.Failed, g.Failed, d.Edited+d.Deleted, d.GroupsDrifted)
	}
	if f := r.Figures; f == nil {
		res.fail("the full sync reports no read-back")
	} else if f.UsersRead != w.opts.users-d.Deleted+len(d.extra) || f.GroupsRead != w.opts.groups ||
		f.UserOrphans.Ours != d.Orphans || f.UserOrphans.Strangers != d.StrangersAdded || f.UserOrphans.Known != 0 ||
		f.GroupOrphans != (activities.OrphanCounts{}) || f.MembersNotObservable || len(f.NotListable) > 0 {
		res.fail("read-back figures %+v, want %d users and %d groups read, %d ours and %d strangers among the users",
			f.ReadBackFigures, w.opts.users-d.Deleted+len(d.extra), w.opts.groups, d.Orphans, d.StrangersAdded)
	}
	if r.ReadShareOfS1 > 0.03 {
		res.fail("the read-back took %d requests, %.1f%% of S1's %d", r.ReadRequests, 100*r.ReadShareOfS1, r.S1Requests)
	}
	cfg.logf("%s: %.2fs, %d requests (%d to read back, %.2f%% of S1's), %d users and %d groups repaired",
		label, res.WallSeconds, res.RequestsTotal, r.ReadRequests, 100*r.ReadShareOfS1, u.Repaired, g.Repaired)
	return res, nil
}

// checkDirectoryAtTarget checks that the target holds the directory exactly: every user
// once with the directory's displayName, every group with exactly its directory members,
// and besides them only the remote-only users extra.
func (w *world) checkDirectoryAtTarget(ctx context.Context, res *Result, extra []string) error {
	var users []struct{ Username, Name string }
	if err := w.store.DB().SelectContext(ctx, &users, `SELECT username, name FROM users ORDER BY username`); err != nil {
		return err
	}
	var members []struct{ Group, Username string }
	if err := w.store.DB().SelectContext(ctx, &members, `SELECT g.name AS "group", u.username
		FROM group_members m JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id
		ORDER BY 1, 2`); err != nil {
		return err
	}
	names := map[string]string{} // remote id → userName
	for _, u := range w.target.Users() {
		names[u["id"].(string)] = u["userName"].(string)
	}
	if len(names) != len(users)+len(extra) {
		res.fail("the target holds %d users, want %d and %d remote-only", len(names), len(users), len(extra))
	}
	wrong := &capped{res: res}
	for _, u := range users {
		r, ok := w.target.UserByName(u.Username)
		if !ok || r["displayName"] != u.Name {
			wrong.fail("user %s at the target: %v, want displayName %q", u.Username, r["displayName"], u.Name)
		}
	}
	for _, n := range extra {
		if _, ok := w.target.UserByName(n); !ok {
			res.fail("remote-only user %s is gone", n)
		}
	}
	want := map[string][]string{}
	for _, m := range members {
		want[m.Group] = append(want[m.Group], m.Username)
	}
	groups := w.target.Groups()
	if len(groups) != w.opts.groups {
		res.fail("the target holds %d groups, want %d", len(groups), w.opts.groups)
	}
	for _, g := range groups {
		var got []string
		for _, id := range w.target.GroupMembers(g["id"].(string)) {
			got = append(got, names[id])
		}
		slices.Sort(got)
		name := g["displayName"].(string)
		if !slices.Equal(got, want[name]) {
			wrong.fail("group %s has members %v, want %v", name, got, want[name])
		}
	}
	wrong.done()
	res.Remote = remoteState(w.target)
	return nil
}

// capped reports the first few failures of a check over every object, then how many more.
type capped struct {
	res *Result
	n   int
}

func (c *capped) fail(format string, args ...any) {
	if c.n++; c.n <= 5 {
		c.res.fail(format, args...)
	}
}

func (c *capped) done() {
	if c.n > 5 {
		c.res.fail("and %d more objects differ", c.n-5)
	}
}
