package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

// TestScheduledDeletionsAfterTheGracePeriod: a user deactivated under
// deactivate_then_delete keeps its deadline on the link; it is due once the deadline has
// passed while it is still out of scope, never before, never back in scope, never once
// written again (reactivated), never when the provider's action changed.
func TestScheduledDeletionsAfterTheGracePeriod(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	now := t0
	s.Now = func() time.Time { return now }
	p := provider("grace")
	p.DeprovisionAction, p.DeprovisionDeleteAfter = store.DeprovisionDeactivateThenDelete, time.Hour
	p = createProvider(t, s, p)
	if p.DeprovisionDeleteAfter != time.Hour {
		t.Fatalf("stored grace period %s, want 1h", p.DeprovisionDeleteAfter)
	}

	users := map[string]string{} // name → id
	for _, name := range []string{"gone-due", "gone-later", "back", "gone-no-deadline", "gone-live"} {
		u := createUser(t, s, store.User{Username: name, IsActive: true})
		users[name] = u.ID
		remote := "r-" + name
		if err := s.SaveLink(ctx, store.Link{ProviderID: p.ID, Kind: object.User, ObjectID: u.ID, RemoteID: &remote, PayloadHash: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	mark := func(name string, at time.Time, grace time.Duration) {
		t.Helper()
		now = at
		if err := s.MarkDeprovisioned(ctx, p.ID, object.User, users[name], "h-off", []byte(`{"active":false}`), grace); err != nil {
			t.Fatal(err)
		}
	}
	mark("gone-due", t0, time.Hour)
	mark("back", t0, time.Hour)
	mark("gone-later", t0.Add(90*time.Minute), time.Hour)
	mark("gone-no-deadline", t0, 0)
	for _, name := range []string{"gone-due", "gone-later", "gone-no-deadline", "gone-live"} {
		mustTx(t, s, func(tx *store.Tx) error { return tx.DeleteUser(ctx, users[name]) })
	}

	links, err := s.Links(ctx, p.ID, object.User, []string{users["gone-due"], users["gone-no-deadline"]})
	if err != nil {
		t.Fatal(err)
	}
	if l := links[users["gone-due"]]; l.DeleteAfter == nil || !l.DeleteAfter.Equal(t0.Add(time.Hour)) ||
		l.DeprovisionedAt == nil || !l.DeprovisionedAt.Equal(t0) || l.Remote() != "r-gone-due" {
		t.Errorf("link of gone-due: deprovisioned %v, delete after %v, remote %q; want %s, %s, r-gone-due",
			l.DeprovisionedAt, l.DeleteAfter, l.Remote(), t0, t0.Add(time.Hour))
	}
	if l := links[users["gone-no-deadline"]]; l.DeleteAfter != nil {
		t.Errorf("a deactivation without grace period set delete_after %v", l.DeleteAfter)
	}

	check := func(at time.Time, wantDue []string, wantScheduled []string) {
		t.Helper()
		now = at
		var want []string
		for _, n := range wantDue {
			want = append(want, users[n])
		}
		want = sorted(want...)
		got, err := s.DueDeletionIDs(ctx, p.ID, "", 100)
		if err != nil || !equal(got, want) {
			t.Errorf("at %s: DueDeletionIDs = %v (%v), want %v", at, got, err, wantDue)
		}
		all := make([]string, 0, len(users))
		for _, id := range users {
			all = append(all, id)
		}
		among, err := s.DueDeletionsAmong(ctx, p.ID, all)
		if err != nil || !equal(among, want) {
			t.Errorf("at %s: DueDeletionsAmong = %v (%v), want %v", at, among, err, wantDue)
		}
		n, err := s.CountDueDeletions(ctx, p.ID)
		if err != nil || n != len(wantDue) {
			t.Errorf("at %s: CountDueDeletions = %d (%v), want %d", at, n, err, len(wantDue))
		}
		total, due, next, err := s.ScheduledDeletions(ctx, p.ID, 10)
		var gotNext []string
		for _, d := range next {
			gotNext = append(gotNext, d.ObjectID)
		}
		var wantNext []string
		for _, n := range wantScheduled {
			wantNext = append(wantNext, users[n])
		}
		if err != nil || total != len(wantScheduled) || due != len(wantDue) || !slices.Equal(gotNext, wantNext) {
			t.Errorf("at %s: ScheduledDeletions = %d, %d due, next %v (%v); want %d, %d due, next %v",
				at, total, due, gotNext, err, len(wantScheduled), len(wantDue), wantScheduled)
		}
	}
	// Before any deadline, two are scheduled (earliest first) and none is due; "back" is in
	// scope, "gone-no-deadline" has no deadline, "gone-live" is stale, not deactivated.
	check(t0.Add(59*time.Minute), nil, []string{"gone-due", "gone-later"})
	check(t0.Add(time.Hour), []string{"gone-due"}, []string{"gone-due", "gone-later"})
	check(t0.Add(150*time.Minute), []string{"gone-due", "gone-later"}, []string{"gone-due", "gone-later"})

	// Paged by id after a cursor.
	first, err := s.DueDeletionIDs(ctx, p.ID, "", 1)
	if err != nil || len(first) != 1 {
		t.Fatalf("first page: %v (%v)", first, err)
	}
	rest, err := s.DueDeletionIDs(ctx, p.ID, first[0], 10)
	if err != nil || len(rest) != 1 || rest[0] <= first[0] {
		t.Errorf("page after %s: %v (%v), want the other one", first[0], rest, err)
	}

	// Written again (reactivated, as a user back in scope is): the deadline is gone.
	remote := "r-gone-later"
	if err := s.SaveLink(ctx, store.Link{ProviderID: p.ID, Kind: object.User, ObjectID: users["gone-later"], RemoteID: &remote, PayloadHash: "h-on"}); err != nil {
		t.Fatal(err)
	}
	links, err = s.Links(ctx, p.ID, object.User, []string{users["gone-later"]})
	if l := links[users["gone-later"]]; err != nil || l.DeleteAfter != nil || l.DeprovisionedAt != nil {
		t.Errorf("reactivated link: delete after %v, deprovisioned %v (%v), want neither", l.DeleteAfter, l.DeprovisionedAt, err)
	}
	check(t0.Add(150*time.Minute), []string{"gone-due"}, []string{"gone-due"})

	// Another action: nothing is deleted after a grace period any more.
	p.DeprovisionAction, p.DeprovisionDeleteAfter = store.DeprovisionDeactivate, 0
	createProvider(t, s, p)
	check(t0.Add(150*time.Minute), nil, nil)

	// The database refuses a grace period without the action, and the action without one.
	var invalid *store.InvalidError
	for _, bad := range []struct {
		action string
		after  time.Duration
	}{{store.DeprovisionDeactivateThenDelete, 0}, {store.DeprovisionDelete, time.Hour}} {
		p.DeprovisionAction, p.DeprovisionDeleteAfter = bad.action, bad.after
		err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.UpsertProvider(ctx, p); return err })
		if !errors.As(err, &invalid) || invalid.Constraint != "providers_deprovision_delete_after_check" {
			t.Errorf("action %s with delete_after %s: %v, want InvalidError on providers_deprovision_delete_after_check", bad.action, bad.after, err)
		}
	}
}
