package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestDirectDeprovisionsStopAtTheThreshold: deleting more users from the directory than
// the provider's deprovision threshold deletes only as many at the target through their
// own syncs; the others are held, starter status says so, and the next full sync asks for
// approval before it deprovisions them.
func TestDirectDeprovisionsStopAtTheThreshold(t *testing.T) {
	e := newEnv(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	p := e.provider("guard", func(p *store.Provider) { p.DeprovisionThreshold = 3 })
	users := smallDirectory(e, 8)
	if _, _, err := e.fullSync("guard", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, users)
	e.clearOutbox()
	e.startRelay()

	before := e.target.Counts()["DELETE /Users/{id}"]
	e.tx(func(tx *store.Tx) error {
		for _, u := range users {
			if err := tx.DeleteUser(e.ctx, u.ID); err != nil {
				return err
			}
		}
		return nil
	})
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = workflows.ObjectSyncID(e.inst, "guard", object.User, u.ID)
	}
	e.waitClosed(e.temporal, 2*time.Minute, ids...)

	if n := e.target.Counts()["DELETE /Users/{id}"] - before; n != 3 {
		t.Errorf("%d users deleted at the target by their own syncs, want the threshold's 3", n)
	}
	if n := len(remoteUsers(e.target)); n != 5 {
		t.Errorf("the target holds %d users, want the 5 held", n)
	}
	held, since, err := e.store.HeldDeprovisions(e.ctx, p.ID)
	if err != nil || held != 5 || since == nil {
		t.Errorf("held deprovisions %d since %v (%v), want 5", held, since, err)
	}
	out := e.starter("status", "--provider", "guard")
	if want := "5 direct deprovisions past the threshold of 3 an hour"; !strings.Contains(out.stdout, want) {
		t.Errorf("status does not say %q:\n%s", want, out.stdout)
	}

	// The full sync counts the held ones: 5 exceed the threshold, so it waits.
	run := e.startFullSync("guard", workflows.FullSyncInput{})
	e.waitFor(2*time.Minute, func() string {
		p, ok := queryProgress(e.ctx, e.temporal, run.GetID())
		if !ok || p.Phase != workflows.PhaseAwaitApproval || p.PendingDeletions != 5 {
			return fmt.Sprintf("progress %+v, want it waiting for approval to deprovision 5", p)
		}
		return ""
	})
	if n := len(remoteUsers(e.target)); n != 5 {
		t.Fatalf("the target holds %d users before approval, want 5", n)
	}
	if err := e.temporal.SignalWorkflow(e.ctx, run.GetID(), "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 5}); err != nil {
		t.Fatal(err)
	}
	var progress workflows.FullSyncProgress
	if err := run.Get(e.ctx, &progress); err != nil {
		t.Fatal(err)
	}
	if n := len(remoteUsers(e.target)); n != 0 || progress.Users.Deprovisioned != 5 {
		t.Errorf("after approval the target holds %d users and the sync deprovisioned %d, want 0 and 5", n, progress.Users.Deprovisioned)
	}
	if held, _, err := e.store.HeldDeprovisions(e.ctx, p.ID); err != nil || held != 0 {
		t.Errorf("held deprovisions after the full sync: %d (%v), want 0", held, err)
	}
}
