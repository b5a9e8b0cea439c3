package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/changefeed"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// startRelay runs the change feed relay for the env until the test ends.
func (e *env) startRelay() *changefeed.Relay {
	r := &changefeed.Relay{Store: e.store, Temporal: e.temporal, DatabaseURL: e.dsn, TaskQueue: e.queue,
		PollInterval: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return r
}

// remoteUser returns the target's user with that userName, nil if none.
func remoteUser(s *scimtest.Server, userName string) map[string]any {
	return remoteUsers(s)[userName]
}

func TestDirectoryChangesReachTheTargetWithinSeconds(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	e.provider("live", nil)
	e.startRelay()
	const within = 15 * time.Second

	var ada store.User
	var staff store.Group
	e.tx(func(tx *store.Tx) (err error) {
		if staff, err = tx.CreateGroup(e.ctx, store.Group{Name: "staff"}); err != nil {
			return err
		}
		ada, err = tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true})
		return err
	})
	e.waitFor(within, func() string {
		return diffJSON(remoteUser(e.target, "ada"), expectedUser(ada))
	})
	e.waitFor(within, func() string {
		if g, ok := remoteGroups(e.target)["staff"]; !ok || diffJSON(g.Body, expectedGroup(staff)) != "" {
			return fmt.Sprintf("group staff: %+v", g)
		}
		return ""
	})

	// Update the user.
	ada.Email, ada.Name = "ada.lovelace@example.test", "Ada King"
	e.tx(func(tx *store.Tx) (err error) { ada, err = tx.UpdateUser(e.ctx, ada); return err })
	e.waitFor(within, func() string { return diffJSON(remoteUser(e.target, "ada"), expectedUser(ada)) })

	// Add and remove a member.
	e.tx(func(tx *store.Tx) error { return tx.AddMember(e.ctx, staff.ID, ada.ID) })
	e.waitFor(within, func() string {
		if m := remoteGroups(e.target)["staff"].Members; strings.Join(m, ",") != "ada" {
			return fmt.Sprintf("staff members = %v, want [ada]", m)
		}
		return ""
	})
	// Rename the group.
	staff.Name = "everyone"
	e.tx(func(tx *store.Tx) (err error) { staff, err = tx.UpdateGroup(e.ctx, staff); return err })
	e.waitFor(within, func() string {
		g, ok := remoteGroups(e.target)["everyone"]
		if !ok || diffJSON(g.Body, expectedGroup(staff)) != "" || strings.Join(g.Members, ",") != "ada" {
			return fmt.Sprintf("renamed group: %+v (groups %d)", g, len(remoteGroups(e.target)))
		}
		return ""
	})
	e.tx(func(tx *store.Tx) error { return tx.RemoveMember(e.ctx, staff.ID, ada.ID) })
	e.waitFor(within, func() string {
		if m := remoteGroups(e.target)["everyone"].Members; len(m) != 0 {
			return fmt.Sprintf("members after removal = %v", m)
		}
		return ""
	})

	// A burst of 50 updates to one user coalesces and ends in the latest state.
	before := e.target.Count("PATCH /Users/{id}") + e.target.Count("PUT /Users/{id}")
	for i := 1; i <= 50; i++ {
		ada.Name = fmt.Sprintf("Ada Burst%d", i)
		e.tx(func(tx *store.Tx) (err error) { ada, err = tx.UpdateUser(e.ctx, ada); return err })
	}
	e.waitFor(within, func() string { return diffJSON(remoteUser(e.target, "ada"), expectedUser(ada)) })
	writes := e.target.Count("PATCH /Users/{id}") + e.target.Count("PUT /Users/{id}") - before
	t.Logf("50 updates → %d writes", writes)
	if writes >= 25 {
		t.Errorf("50 quick updates caused %d writes, want far fewer", writes)
	}

	// Delete the user: deprovisioned (deleted) at the target.
	e.tx(func(tx *store.Tx) error { return tx.DeleteUser(e.ctx, ada.ID) })
	e.waitFor(within, func() string {
		if u := remoteUser(e.target, "ada"); u != nil {
			return "ada still exists remotely"
		}
		return ""
	})
	e.waitLink(mustProvider(t, e, "live").ID, object.User, ada.ID, func(l store.Link, ok bool) string {
		if ok {
			return fmt.Sprintf("the deleted user still has a link to %s; want none", l.Remote())
		}
		return ""
	})
}

func mustProvider(t *testing.T, e *env, name string) store.Provider {
	t.Helper()
	p, err := e.store.Provider(e.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
