package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/scimsync/scimsync/store"
)

type changeRow struct {
	Kind      string  `db:"kind"`
	Op        string  `db:"op"`
	ObjectID  string  `db:"object_id"`
	RelatedID *string `db:"related_id"`
}

func (c changeRow) String() string {
	r := ""
	if c.RelatedID != nil {
		r = "/" + *c.RelatedID
	}
	return fmt.Sprintf("%s %s %s%s", c.Kind, c.Op, c.ObjectID, r)
}

// drainChanges returns and deletes every outbox row, oldest first.
func drainChanges(t *testing.T, s *store.Store) []string {
	t.Helper()
	var rows []changeRow
	if err := s.DB().SelectContext(ctxT(t), &rows, `DELETE FROM sync_changes RETURNING kind, op, object_id, related_id`); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.String()
	}
	return out
}

func TestEveryDirectoryWriteLeavesExactlyOneChange(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	var user store.User
	var group, child store.Group
	var app store.Application
	var binding store.Binding

	steps := []struct {
		name string
		do   func(tx *store.Tx) error
		want func() string
	}{
		{"insert user", func(tx *store.Tx) (err error) {
			user, err = tx.CreateUser(ctx, store.User{Username: "ada", IsActive: true})
			return err
		}, func() string { return "user insert " + user.ID }},
		{"update user", func(tx *store.Tx) error {
			user.Email = "ada@example.test"
			_, err := tx.UpdateUser(ctx, user)
			return err
		}, func() string { return "user update " + user.ID }},
		{"insert group", func(tx *store.Tx) (err error) {
			group, err = tx.CreateGroup(ctx, store.Group{Name: "staff"})
			return err
		}, func() string { return "group insert " + group.ID }},
		{"insert child group", func(tx *store.Tx) (err error) {
			child, err = tx.CreateGroup(ctx, store.Group{Name: "ops", ParentID: &group.ID})
			return err
		}, func() string { return "group insert " + child.ID }},
		{"rename group", func(tx *store.Tx) error {
			group.Name = "everyone"
			_, err := tx.UpdateGroup(ctx, group)
			return err
		}, func() string { return "group update " + group.ID }},
		{"add member", func(tx *store.Tx) error { return tx.AddMember(ctx, group.ID, user.ID) },
			func() string { return "membership insert " + group.ID + "/" + user.ID }},
		{"remove member", func(tx *store.Tx) error { return tx.RemoveMember(ctx, group.ID, user.ID) },
			func() string { return "membership delete " + group.ID + "/" + user.ID }},
		{"insert application", func(tx *store.Tx) (err error) {
			app, err = tx.CreateApplication(ctx, store.Application{Name: "wiki"})
			return err
		}, nil},
		{"insert binding", func(tx *store.Tx) (err error) {
			binding, err = tx.CreateBinding(ctx, store.Binding{ApplicationID: app.ID, GroupID: &group.ID, Enabled: true})
			return err
		}, func() string { return "binding insert " + app.ID }},
		{"update binding", func(tx *store.Tx) error {
			binding.Negate = true
			return tx.UpdateBinding(ctx, binding)
		}, func() string { return "binding update " + app.ID }},
		{"delete binding", func(tx *store.Tx) error { return tx.DeleteBinding(ctx, binding.ID) },
			func() string { return "binding delete " + app.ID }},
		{"delete child group", func(tx *store.Tx) error { return tx.DeleteGroup(ctx, child.ID) },
			func() string { return "group delete " + child.ID }},
		{"delete user", func(tx *store.Tx) error { return tx.DeleteUser(ctx, user.ID) },
			func() string { return "user delete " + user.ID }},
	}
	for _, step := range steps {
		mustTx(t, s, step.do)
		got := drainChanges(t, s)
		var want []string
		if step.want != nil {
			want = []string{step.want()}
		}
		if !equal(got, want) {
			t.Errorf("%s: outbox = %q, want %q", step.name, got, want)
		}
	}
}

func TestNoopWritesAndRollbacksLeaveNoChange(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	user := createUser(t, s, store.User{Username: "ada", Name: "Ada"})
	group := createGroup(t, s, "staff", nil)
	mustTx(t, s, func(tx *store.Tx) error { return tx.AddMember(ctx, group.ID, user.ID) })
	drainChanges(t, s)

	mustTx(t, s, func(tx *store.Tx) error {
		if _, err := tx.UpdateUser(ctx, user); err != nil { // same values
			return err
		}
		return tx.AddMember(ctx, group.ID, user.ID) // already a member
	})
	if got := drainChanges(t, s); len(got) != 0 {
		t.Fatalf("no-op writes left changes %q", got)
	}

	rollback := errors.New("rollback")
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.CreateUser(ctx, store.User{Username: "grace"}); err != nil {
			return err
		}
		user.Name = "Ada L."
		if _, err := tx.UpdateUser(ctx, user); err != nil {
			return err
		}
		if err := tx.RemoveMember(ctx, group.ID, user.ID); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("InTx returned %v, want the callback's error", err)
	}
	if got := drainChanges(t, s); len(got) != 0 {
		t.Fatalf("a rolled-back transaction left changes %q", got)
	}
}

func TestClaimChangesKeepsRowsWhenHandlerFails(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	user := createUser(t, s, store.User{Username: "ada"})
	boom := errors.New("temporal unavailable")
	_, err := s.ClaimChanges(ctx, 10, func(context.Context, []store.Change) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("ClaimChanges = %v, want handler error", err)
	}
	var got []store.Change
	n, err := s.ClaimChanges(ctx, 10, func(_ context.Context, cs []store.Change) error { got = cs; return nil })
	if err != nil || n != 1 || len(got) != 1 || got[0].Kind != "user" || got[0].Op != "insert" || got[0].ObjectID != user.ID {
		t.Fatalf("second claim: n=%d err=%v changes=%+v", n, err, got)
	}
	if count, _, _ := s.OutboxLag(ctx); count != 0 {
		t.Fatalf("outbox still holds %d rows after a successful claim", count)
	}
}

func TestConcurrentConsumersNeverShareARow(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	const users = 400
	mustTx(t, s, func(tx *store.Tx) error {
		for i := range users {
			if _, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("user%03d", i)}); err != nil {
				return err
			}
		}
		return nil
	})

	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := s.ClaimChanges(ctx, 7, func(_ context.Context, cs []store.Change) error {
					mu.Lock()
					for _, c := range cs {
						seen[c.ID]++
					}
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != users {
		t.Fatalf("consumers saw %d distinct rows, want %d", len(seen), users)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d was handled %d times", id, n)
		}
	}
}
