package changefeed_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// One change of a batch that Temporal refuses permanently is parked with its refusal, in
// the transaction that relays the rest of its batch; the relay goes on with later batches,
// and an operator's retry relays the parked change once Temporal accepts it.
func TestAChangeTemporalRefusesIsParkedAndTheRestOfItsBatchRelayed(t *testing.T) {
	e := newEnv(t)
	e.provider("poison", true, nil)
	e.provider("poison-off", false, nil)
	rec := newRecorder(e.c)
	ref := newRefuser(rec)
	r := e.relay(ref)
	id := func(kind, objectID string) string { return workflows.ObjectSyncID(e.inst, "poison", kind, objectID) }

	// One transaction, one batch: four users, a group, and a membership of the third user.
	var users []store.User
	var group store.Group
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		for i := range 4 {
			u, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("poison.user%d", i),
				Email: fmt.Sprintf("poison%d@example.test", i), IsActive: true})
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		if group, err = tx.CreateGroup(ctx, store.Group{Name: "poison-analysts"}); err != nil {
			return err
		}
		return tx.AddMember(ctx, group.ID, users[2].ID)
	})
	bad := users[2]
	ids := e.outboxIDs()
	if len(ids) != 6 {
		t.Fatalf("outbox holds %v, want 6 changes", ids)
	}
	refusal := serviceerror.NewInvalidArgument("Blob data size exceeds limit.")
	ref.answer(id(object.User, bad.ID), refusal)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain = %v, want nil: a refused change must not fail its batch", err)
	}
	if n := e.outboxCount(); n != 0 {
		t.Fatalf("outbox holds %d changes after the batch, want 0", n)
	}
	// Both changes the refused signal relays are parked, with the refusal; nothing else.
	wantErr := "signal " + id(object.User, bad.ID) + ": Blob data size exceeds limit. (InvalidArgument)"
	related := bad.ID
	want := []string{
		parkedRow{ID: ids["user insert "+bad.ID], Kind: "user", Op: "insert", ObjectID: bad.ID,
			Provider: "poison", Error: wantErr, Attempts: 1, Parked: true}.String(),
		parkedRow{ID: ids["membership insert "+group.ID+"/"+bad.ID], Kind: "membership", Op: "insert", ObjectID: group.ID,
			RelatedID: &related, Provider: "poison", Error: wantErr, Attempts: 1, Parked: true}.String(),
	}
	if got := e.parkedRows(); !slices.Equal(got, want) {
		t.Fatalf("parked changes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	// The others are delivered, once each: the group's signal too, though it relays the
	// parked membership (a change goes back whole when retried).
	for _, u := range []store.User{users[0], users[1], users[3]} {
		e.waitReasons(id(object.User, u.ID), "user insert")
	}
	e.waitReasons(id(object.Group, group.ID), "group insert, membership insert")
	calls := rec.snapshot()
	if len(calls) != 4 {
		t.Errorf("accepted calls %v, want the 3 other users' and the group's", calls)
	}
	e.assertNoWorkflow(id(object.User, bad.ID))
	if n := ref.refusedCalls(id(object.User, bad.ID)); n != 1 {
		t.Errorf("the refused signal was sent %d times, want once", n)
	}
	if st := r.Stats(); st.ChangesRelayed != 4 || st.ChangesParked != 2 || st.Errors != 0 || st.SignalsSent != 4 {
		t.Errorf("stats = %+v, want 4 changes relayed, 2 parked, 4 signals sent, 0 errors", st)
	}
	if n, _, err := e.store.ParkedLag(ctx); err != nil || n != 2 {
		t.Errorf("ParkedLag = %d, %v; want 2", n, err)
	}

	// Later batches are relayed while the change stays parked.
	e.start(r)
	var late store.User
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		late, err = tx.CreateUser(ctx, store.User{Username: "poison.late", IsActive: true})
		return err
	})
	e.waitReasons(id(object.User, late.ID), "user insert")
	e.waitOutboxEmpty()
	if got := e.parkedRows(); !slices.Equal(got, want) {
		t.Fatalf("parked changes after a later batch:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}

	// Temporal accepts it now; the operator puts both back: relayed once, parked no more.
	ref.answer(id(object.User, bad.ID))
	back, err := e.store.RetryAllParked(ctx)
	if err != nil || !slices.Equal(back, []int64{ids["user insert "+bad.ID], ids["membership insert "+group.ID+"/"+bad.ID]}) {
		t.Fatalf("RetryAllParked = %v, %v; want both parked ids", back, err)
	}
	e.waitOutboxEmpty()
	e.waitReasons(id(object.User, bad.ID), "user insert, membership insert")
	e.waitReasons(id(object.Group, group.ID), "group insert, membership insert", "membership insert")
	if got := e.parkedRows(); len(got) != 0 {
		t.Errorf("parked changes after the retry: %q, want none", got)
	}
	e.assertNoWorkflow(workflows.ObjectSyncID(e.inst, "poison-off", object.User, bad.ID))

	logs := e.logs.String()
	if !strings.Contains(logs, "refused a change permanently") || !strings.Contains(logs, fmt.Sprintf("change=%d", ids["user insert "+bad.ID])) {
		t.Errorf("the parked change was not logged; logs:\n%s", logs)
	}
	assertLogsFree(t, logs, "poison.user", "@example.test", "poison-analysts", "poison.late")
}

// A transient failure fails the whole batch and parks nothing, however permanently another
// call of the batch is refused; once it clears, only the refused change is parked.
func TestTransientFailuresParkNothing(t *testing.T) {
	e := newEnv(t)
	e.provider("transient", true, nil)
	rec := newRecorder(e.c)
	ref := newRefuser(rec)
	r := e.relay(ref)
	id := func(u store.User) string {
		return workflows.ObjectSyncID(e.inst, "transient", object.User, u.ID)
	}

	var users []store.User
	e.tx(func(ctx context.Context, tx *store.Tx) error {
		for i := range 3 {
			u, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("transient%d", i)})
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		return nil
	})
	ids := e.outboxIDs()
	transient := []error{
		serviceerror.NewUnavailable("frontend restarting"),
		serviceerror.NewDeadlineExceeded("context deadline exceeded"),
		serviceerror.NewResourceExhausted(0, "namespace rps limit"),
		serviceerror.NewNamespaceNotActive("default", "standby", "active"),
		serviceerror.NewNamespaceUnavailable("default"),
		serviceerror.NewPermissionDenied("api key expired", ""),
		context.DeadlineExceeded,
	}
	ref.answer(id(users[0]), append(slices.Clone(transient), nil)...)
	ref.answer(id(users[1]), serviceerror.NewNamespaceNotFound("scimsync-gone"))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, answer := range transient {
		if err := r.Drain(ctx); err == nil {
			t.Fatalf("Drain = nil while the signal of %s fails with %v, want the batch's error", users[0].ID, answer)
		}
		if n := e.outboxCount(); n != 3 {
			t.Fatalf("after %T: outbox holds %d changes, want all 3", answer, n)
		}
		if got := e.parkedRows(); len(got) != 0 {
			t.Fatalf("after %T: parked %q, want nothing", answer, got)
		}
	}
	if n := ref.refusedCalls(id(users[0])); n != len(transient) {
		t.Fatalf("the transient failure was answered %d times, want %d", n, len(transient))
	}
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain = %v once the transient failure cleared, want nil", err)
	}
	want := []string{parkedRow{ID: ids["user insert "+users[1].ID], Kind: "user", Op: "insert", ObjectID: users[1].ID,
		Provider: "transient", Error: "signal " + id(users[1]) + ": Namespace scimsync-gone is not found. (NamespaceNotFound)", Attempts: 1, Parked: true}.String()}
	if got := e.parkedRows(); !slices.Equal(got, want) {
		t.Fatalf("parked changes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if n := e.outboxCount(); n != 0 {
		t.Fatalf("outbox holds %d changes, want 0", n)
	}
	e.waitReasons(id(users[0]), "user insert")
	e.waitReasons(id(users[2]), "user insert")
	e.assertNoWorkflow(id(users[1]))

	// Put back and refused again: parked again under its id, its attempts counted.
	if back, err := e.store.RetryParked(ctx, []int64{ids["user insert "+users[1].ID]}); err != nil || len(back) != 1 {
		t.Fatalf("RetryParked = %v, %v", back, err)
	}
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	want[0] = strings.Replace(want[0], "attempts=1", "attempts=2", 1)
	if got := e.parkedRows(); !slices.Equal(got, want) {
		t.Fatalf("parked changes after a retry refused again:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}
