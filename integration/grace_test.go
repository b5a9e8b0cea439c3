package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/starter"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestDeactivateThenDeleteUndoesAMistakenRemoval: with deprovision action
// deactivate_then_delete and a grace period of 2s, a user removed from the group that
// admits it is deactivated at the target at once (its link kept, with a deadline 2s after
// its deactivation, no DELETE); put back, it is reactivated under the same remote id (no
// POST) and its deadline cleared. Removed again, status shows its pending deletion; once
// the deadline has passed, its own sync deletes nothing, the plan shows the deletion
// (GETs only), and the next full sync deletes it at the target and forgets its link.
func TestDeactivateThenDeleteUndoesAMistakenRemoval(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	var staff store.Group
	var ada, bob store.User
	e.tx(func(tx *store.Tx) (err error) {
		if staff, err = tx.CreateGroup(e.ctx, store.Group{Name: "staff"}); err != nil {
			return err
		}
		for _, u := range []*store.User{&ada, &bob} {
			name := "ada"
			if u == &bob {
				name = "bob"
			}
			if *u, err = tx.CreateUser(e.ctx, store.User{Username: name, Name: strings.ToUpper(name[:1]) + name[1:] + " Example",
				Email: name + "@example.test", IsActive: true}); err != nil {
				return err
			}
			if err := tx.AddMember(e.ctx, staff.ID, u.ID); err != nil {
				return err
			}
		}
		return nil
	})
	config := fmt.Sprintf(`applications:
  - name: portal
bindings:
  - application: portal
    group: staff
providers:
  - name: offboard
    base_url: %s
    auth: {token: env:IT_TARGET_TOKEN}
    application: portal
    deprovision:
      action: deactivate_then_delete
      delete_after: 2s
`, e.target.URL)
	if code, out := e.applyConfig(config); code != starter.ExitOK {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	p := mustProvider(t, e, "offboard")
	if p.DeprovisionAction != store.DeprovisionDeactivateThenDelete || p.DeprovisionDeleteAfter != 2*time.Second {
		t.Fatalf("stored deprovision %s after %s", p.DeprovisionAction, p.DeprovisionDeleteAfter)
	}
	if _, _, err := e.fullSync("offboard", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	remoteID := func(name string) string {
		u, _ := e.target.UserByName(name)
		id, _ := u["id"].(string)
		return id
	}
	adaRemote, bobRemote := remoteID("ada"), remoteID("bob")
	staffRemote, _ := e.target.Groups()[0]["id"].(string)
	if adaRemote == "" || bobRemote == "" || len(e.target.Groups()) != 1 {
		t.Fatalf("after the first full sync the target holds %v and %v", e.target.Users(), e.target.Groups())
	}
	names := map[string]string{ada.ID: "ada", bob.ID: "bob", staff.ID: "staff"}
	live := []string{"group staff " + staffRemote + " live", "user ada " + adaRemote + " live", "user bob " + bobRemote + " live"}
	deactivated := []string{"group staff " + staffRemote + " live", "user ada " + adaRemote + " deactivated, deleted 2s after", "user bob " + bobRemote + " live"}
	e.checkGraceLinks(p.ID, names, live)
	e.clearOutbox()
	e.startRelay()
	posts := e.target.Count("POST /Users")

	// wantRemote waits until the target holds ada as active says, staff with members, and
	// ada's link as linked says.
	wantRemote := func(active bool, members []string, deadline bool) {
		t.Helper()
		e.waitFor(30*time.Second, func() string {
			r := remoteUser(e.target, "ada")
			if r == nil || r["active"] != active {
				return fmt.Sprintf("ada at the target: %v, want active %v", r, active)
			}
			if got := remoteGroups(e.target)["staff"].Members; !slices.Equal(got, members) {
				return fmt.Sprintf("staff at the target has %v, want %v", got, members)
			}
			links, err := e.store.Links(e.ctx, p.ID, object.User, []string{ada.ID})
			if l, ok := links[ada.ID]; err != nil || !ok || (l.DeleteAfter != nil) != deadline {
				return fmt.Sprintf("ada's link %+v (%v), want a deadline: %v", l, err, deadline)
			}
			return ""
		})
	}
	leave := func() {
		t.Helper()
		e.tx(func(tx *store.Tx) error { return tx.RemoveMember(e.ctx, staff.ID, ada.ID) })
		wantRemote(false, []string{"bob"}, true)
		off := expectedUser(ada)
		off["active"] = false
		if diff := diffJSON(remoteUser(e.target, "ada"), off); diff != "" {
			t.Errorf("ada deactivated at the target:\n%s", diff)
		}
	}

	// Leaves scope: deactivated at once, kept, with its deadline.
	leave()
	e.checkGraceLinks(p.ID, names, deactivated)
	if d := e.target.Count("DELETE /Users/{id}"); d != 0 {
		t.Errorf("%d users deleted at the target when ada left scope, want none", d)
	}

	// Comes back: reactivated under the same remote id, not created again; deadline gone.
	e.tx(func(tx *store.Tx) error { return tx.AddMember(e.ctx, staff.ID, ada.ID) })
	wantRemote(true, []string{"ada", "bob"}, false)
	if id := remoteID("ada"); id != adaRemote || e.target.Count("POST /Users") != posts {
		t.Errorf("ada came back as %v with %d more POSTs, want %s and none", id, e.target.Count("POST /Users")-posts, adaRemote)
	}
	e.checkGraceLinks(p.ID, names, live)
	if diff := diffJSON(remoteUser(e.target, "ada"), expectedUser(ada)); diff != "" {
		t.Errorf("ada after coming back:\n%s", diff)
	}

	// Leaves again: status shows the pending deletion.
	leave()
	e.checkGraceLinks(p.ID, names, deactivated)
	e.starter("status", "--provider", "offboard").expect(t, starter.ExitOK,
		"deletions  1 deactivated user to delete 2s after they left scope; next: ada at ")

	// The deadline passes (waited for, never slept).
	e.waitFor(30*time.Second, func() string {
		links, err := e.store.Links(e.ctx, p.ID, object.User, []string{ada.ID})
		if l := links[ada.ID]; err != nil || l.DeleteAfter == nil || !time.Now().After(*l.DeleteAfter) {
			return fmt.Sprintf("ada's deadline %v has not passed (%v)", l.DeleteAfter, err)
		}
		return ""
	})
	// Its own sync does not delete it: deletions are the full sync's, within the threshold.
	e.signal("offboard", object.User, ada.ID)
	e.waitClosed(e.temporal, time.Minute, workflows.ObjectSyncID(e.inst, "offboard", object.User, ada.ID))
	e.checkGraceLinks(p.ID, names, deactivated)
	e.starter("status", "--provider", "offboard").expect(t, starter.ExitOK,
		"deletions  1 deactivated user to delete 2s after they left scope, 1 due (the next full sync deletes them); next: ada at ")
	writes := e.target.Mutations()
	e.starter("plan", "--provider", "offboard").expect(t, starter.ExitChanges, "  delete user ada\n")
	if m := e.target.Mutations(); m != writes {
		t.Errorf("the plan sent %d writes", m-writes)
	}
	if d := e.target.Count("DELETE /Users/{id}"); d != 0 {
		t.Fatalf("%d users deleted at the target before the full sync, want none", d)
	}

	// The full sync deletes it: one DELETE, gone at the target, link gone; bob untouched.
	progress, _, err := e.fullSync("offboard", workflows.FullSyncInput{})
	if err != nil {
		t.Fatal(err)
	}
	if progress.Users.Deprovisioned != 1 || progress.Users.Failed != 0 {
		t.Errorf("full sync users %+v, want 1 deprovisioned", progress.Users)
	}
	if d := e.target.Count("DELETE /Users/{id}"); d != 1 {
		t.Errorf("%d DELETEs of users, want 1", d)
	}
	if got := remoteUsers(e.target); len(got) != 1 || diffJSON(got["bob"], expectedUser(bob)) != "" {
		t.Errorf("the target holds %v, want bob only, as the directory has him", got)
	}
	if got := remoteGroups(e.target)["staff"].Members; !slices.Equal(got, []string{"bob"}) {
		t.Errorf("staff has %v, want bob", got)
	}
	e.checkGraceLinks(p.ID, names, []string{"group staff " + staffRemote + " live", "user bob " + bobRemote + " live"})
	e.starter("status", "--provider", "offboard").expect(t, starter.ExitOK,
		"deletions  none (deactivated users are deleted 2s after they leave scope)")
}

// checkGraceLinks compares the provider's sync_links rows, as "<kind> <name> <remote id>
// live" or "... deactivated, deleted <grace> after" (delete_after minus deprovisioned_at),
// sorted, with want.
func (e *env) checkGraceLinks(providerID string, names map[string]string, want []string) {
	e.t.Helper()
	var rows []struct {
		Kind          string     `db:"kind"`
		ObjectID      string     `db:"object_id"`
		RemoteID      *string    `db:"remote_id"`
		Deprovisioned *time.Time `db:"deprovisioned_at"`
		DeleteAfter   *time.Time `db:"delete_after"`
		LastError     string     `db:"last_error"`
	}
	if err := e.store.DB().SelectContext(e.ctx, &rows, `SELECT kind, object_id, remote_id, deprovisioned_at, delete_after,
		last_error FROM sync_links WHERE provider_id = $1`, providerID); err != nil {
		e.t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		s := fmt.Sprintf("%s %s %s", r.Kind, names[r.ObjectID], deref(r.RemoteID))
		switch {
		case r.Deprovisioned == nil && r.DeleteAfter == nil:
			s += " live"
		case r.Deprovisioned != nil && r.DeleteAfter != nil:
			s += fmt.Sprintf(" deactivated, deleted %s after", r.DeleteAfter.Sub(*r.Deprovisioned))
		default:
			s += fmt.Sprintf(" deprovisioned %v, delete after %v", r.Deprovisioned, r.DeleteAfter)
		}
		if r.LastError != "" {
			s += " error " + r.LastError
		}
		got = append(got, s)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		e.t.Errorf("sync_links rows:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<no remote id>"
	}
	return *s
}

// TestDueDeletionsWaitForApprovalPastTheThreshold: deletions after the grace period count
// in the deprovision threshold like every other deprovision. Two users deactivated by a full
// sync (allowed past the threshold of 1) are due after 2s; the next full sync finds 2 to
// deprovision, more than 1, and waits for approval with both still at the target; approved
// for 2, it deletes both and forgets their links.
func TestDueDeletionsWaitForApprovalPastTheThreshold(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	p := e.provider("grace-guard", func(p *store.Provider) {
		p.DeprovisionAction, p.DeprovisionDeleteAfter, p.DeprovisionThreshold = store.DeprovisionDeactivateThenDelete, 2*time.Second, 1
	})
	users := smallDirectory(e, 3)
	if _, _, err := e.fullSync("grace-guard", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, users)
	// Two leave scope (service accounts are excluded); the full sync deactivates them.
	e.tx(func(tx *store.Tx) error {
		for _, u := range users[:2] {
			u.Type = store.UserServiceAccount
			if _, err := tx.UpdateUser(e.ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	progress, _, err := e.fullSync("grace-guard", workflows.FullSyncInput{AllowDeletions: true})
	if err != nil || progress.Users.Deprovisioned != 2 {
		t.Fatalf("deactivating full sync: %+v (%v), want 2 deprovisioned", progress.Users, err)
	}
	for _, u := range users[:2] {
		if r := remoteUser(e.target, u.Username); r == nil || r["active"] != false {
			t.Fatalf("%s at the target: %v, want deactivated", u.Username, r)
		}
	}
	e.waitFor(30*time.Second, func() string {
		if n, err := e.store.CountDueDeletions(e.ctx, p.ID); err != nil || n != 2 {
			return fmt.Sprintf("%d deletions due (%v), want 2", n, err)
		}
		return ""
	})

	run := e.startFullSync("grace-guard", workflows.FullSyncInput{})
	e.waitFor(2*time.Minute, func() string {
		p, ok := queryProgress(e.ctx, e.temporal, run.GetID())
		if !ok || p.Phase != workflows.PhaseAwaitApproval || p.PendingDeletions != 2 {
			return fmt.Sprintf("progress %+v, want it waiting for approval to deprovision 2", p)
		}
		return ""
	})
	if n := len(remoteUsers(e.target)); n != 3 || e.target.Count("DELETE /Users/{id}") != 0 {
		t.Fatalf("before approval the target holds %d users after %d DELETEs, want 3 and none", n, e.target.Count("DELETE /Users/{id}"))
	}
	if err := e.temporal.SignalWorkflow(e.ctx, run.GetID(), "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 2}); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(e.ctx, &progress); err != nil {
		t.Fatal(err)
	}
	if progress.Users.Deprovisioned != 2 || progress.ApprovedDeletions != 2 || e.target.Count("DELETE /Users/{id}") != 2 {
		t.Errorf("approved full sync: users %+v, approved %d, %d DELETEs; want 2 deprovisioned, 2 approved, 2 DELETEs",
			progress.Users, progress.ApprovedDeletions, e.target.Count("DELETE /Users/{id}"))
	}
	checkUsers(t, e.target, users[2:])
	links, err := e.store.Links(e.ctx, p.ID, object.User, []string{users[0].ID, users[1].ID, users[2].ID})
	if err != nil || len(links) != 1 || links[users[2].ID].Remote() == "" {
		t.Errorf("links after the deletions: %+v (%v), want only %s's", links, err, users[2].Username)
	}
}
