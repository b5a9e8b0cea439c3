package changefeed_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/changefeed"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// The relay is woken by NOTIFY alone here (its poll is an hour), so every step also proves
// that a committed change reaches Temporal within seconds without polling.
func TestRelaysDirectoryChangesToObjectSyncWorkflows(t *testing.T) {
	e := newEnv(t)
	e.provider("on", true, nil)
	e.provider("off", false, nil)
	rec := newRecorder(e.c)
	r := e.relay(rec)
	r.PollInterval = time.Hour
	e.start(r)

	userID := func(u store.User) string { return workflows.ObjectSyncID(e.inst, "on", object.User, u.ID) }
	groupID := func(g store.Group) string { return workflows.ObjectSyncID(e.inst, "on", object.Group, g.ID) }

	var user store.User
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		user, err = tx.CreateUser(ctx, store.User{Username: "ada.lovelace", Email: "ada@example.test", IsActive: true})
		return err
	})
	got := e.waitReasons(userID(user), "user insert")
	if want := (workflows.ObjectSyncInput{Provider: "on", Kind: object.User, ObjectID: user.ID}); got.Input != want {
		t.Errorf("ObjectSync input = %+v, want %+v", got.Input, want)
	}
	desc, err := e.c.DescribeWorkflow(context.Background(), userID(user), "")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := desc.TypedSearchAttributes.GetKeyword(workflows.ProviderAttribute); p != "on" {
		t.Errorf("ScimProvider = %q, want on", p)
	}
	if k, _ := desc.TypedSearchAttributes.GetKeyword(workflows.ObjectKindAttribute); k != object.User {
		t.Errorf("ScimObjectKind = %q, want user", k)
	}
	if pol := rec.lastOptions(userID(user)).WorkflowIDConflictPolicy; pol != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
		t.Errorf("conflict policy = %s, want USE_EXISTING", pol)
	}
	if tq := desc.RawResponse.GetExecutionConfig().GetTaskQueue().GetName(); tq != e.queue {
		t.Errorf("task queue = %q, want %q", tq, e.queue)
	}

	e.tx(func(ctx context.Context, tx *store.Tx) error {
		user.Email = "ada.lovelace@example.test"
		_, err := tx.UpdateUser(ctx, user)
		return err
	})
	e.waitReasons(userID(user), "user insert", "user update")

	var group store.Group
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		group, err = tx.CreateGroup(ctx, store.Group{Name: "analysts"})
		return err
	})
	e.waitReasons(groupID(group), "group insert")
	e.tx(func(ctx context.Context, tx *store.Tx) error {
		group.Name = "engine-analysts"
		_, err := tx.UpdateGroup(ctx, group)
		return err
	})
	e.waitReasons(groupID(group), "group insert", "group update")

	// A membership syncs the group (its members) and the user (its groups, maybe its scope).
	e.tx(func(ctx context.Context, tx *store.Tx) error { return tx.AddMember(ctx, group.ID, user.ID) })
	e.waitReasons(groupID(group), "group insert", "group update", "membership insert")
	e.waitReasons(userID(user), "user insert", "user update", "membership insert")

	// Deleting a member also deletes its membership in the same transaction: one batch, one
	// coalesced signal for the user, one for the group.
	e.tx(func(ctx context.Context, tx *store.Tx) error { return tx.DeleteUser(ctx, user.ID) })
	e.waitOutboxEmpty()
	e.waitReasons(groupID(group), "group insert", "group update", "membership insert", "membership delete")
	got = e.waitReasons(userID(user), "user insert", "user update", "membership insert", "user delete, membership delete")

	calls := rec.snapshot()
	if len(calls) != 2 {
		t.Errorf("SignalWithStart calls = %v, want the user's and the group's", calls)
	}
	e.checkCalls(calls, userID(user), 4)
	e.checkCalls(calls, groupID(group), 4)
	runs := rec.runIDs(userID(user))
	for _, run := range runs {
		if run != runs[0] {
			t.Errorf("user signals reached runs %q, want one execution", runs)
			break
		}
	}
	e.assertNoWorkflow(workflows.ObjectSyncID(e.inst, "off", object.User, user.ID))
	e.assertNoWorkflow(workflows.ObjectSyncID(e.inst, "off", object.Group, group.ID))

	if st := r.Stats(); st.Errors == 0 && (st.ChangesRelayed != 7 || st.SignalsSent != 8) {
		t.Errorf("stats = %+v, want 7 changes relayed, 8 signals sent", st)
	}
	assertLogsFree(t, e.logs.String(), "ada.lovelace", "ada@example.test", "analysts")
}

func TestBurstOfUpdatesCoalescesIntoOneExecution(t *testing.T) {
	e := newEnv(t)
	e.provider("burst", true, nil)
	rec := newRecorder(e.c)

	var user store.User
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		user, err = tx.CreateUser(ctx, store.User{Username: "grace", IsActive: true})
		return err
	})
	id := workflows.ObjectSyncID(e.inst, "burst", object.User, user.ID)
	update := func(i int) {
		e.tx(func(ctx context.Context, tx *store.Tx) error {
			user.Name = fmt.Sprintf("Grace %d", i)
			_, err := tx.UpdateUser(ctx, user)
			return err
		})
	}

	// 50 committed updates waiting in the outbox: one batch, one signal.
	for i := range 50 {
		update(i)
	}
	r := e.relay(rec)
	if err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.waitReasons(id, "user insert, user update")
	e.checkCalls(rec.snapshot(), id, 1) // 51 changes in one batch

	// 50 updates while the relay runs and the stand-in keeps running: however the relay
	// batches them, every signal lands in the one execution (USE_EXISTING).
	e.start(r)
	for i := range 50 {
		update(50 + i)
	}
	e.waitOutboxEmpty()
	calls := rec.snapshot()[id]
	if calls < 2 || calls > 51 {
		t.Fatalf("SignalWithStart calls = %d, want between 2 and 51", calls)
	}
	want := []string{"user insert, user update"}
	for range calls - 1 {
		want = append(want, "user update")
	}
	e.waitReasons(id, want...)
	runs := rec.runIDs(id)
	for _, run := range runs {
		if run != runs[0] {
			t.Fatalf("signals reached runs %q, want one execution", runs)
		}
	}
	testenv.Eventually(t, 10*time.Second, 25*time.Millisecond, func() (bool, string) {
		resp, err := e.c.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", id)})
		return err == nil && resp.GetCount() == 1, fmt.Sprintf("executions of %s = %d (%v), want 1", id, resp.GetCount(), err)
	})
	t.Logf("50 live updates became %d signals into run %s", calls-1, runs[0])
}

func TestChangesWaitInTheOutboxWhileTemporalIsUnreachable(t *testing.T) {
	e := newEnv(t)
	e.provider("outage", true, nil)
	rec := newRecorder(unreachableClient(t))
	rec.unreachable = rec.backend.Load() // its failed calls reached nothing
	r := e.relay(rec)
	r.CallTimeout = 300 * time.Millisecond
	r.MaxBackoff = 200 * time.Millisecond
	r.PollInterval = 50 * time.Millisecond
	e.start(r)

	var users []store.User
	e.tx(func(ctx context.Context, tx *store.Tx) error {
		for i := range 5 {
			u, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("outage%d", i)})
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, 25*time.Millisecond, func() (bool, string) {
		st := r.Stats()
		return st.Errors >= 3, fmt.Sprintf("relay failed %d times, want 3 failed attempts", st.Errors)
	})
	if n := e.outboxCount(); n != 5 {
		t.Fatalf("outbox holds %d changes while Temporal is down, want all 5", n)
	}
	if rec.failures() == 0 {
		t.Fatalf("no SignalWithStart call failed, yet the relay counted %d errors", r.Stats().Errors)
	}
	if calls := rec.snapshot(); len(calls) != 0 || r.Stats().ChangesRelayed != 0 {
		t.Fatalf("while Temporal is down: accepted calls %v, relayed %d; want none", calls, r.Stats().ChangesRelayed)
	}

	rec.use(e.c) // Temporal is back
	e.waitOutboxEmpty()
	calls := rec.snapshot()
	if len(calls) != 5 {
		t.Errorf("accepted calls %v, want one per user", calls)
	}
	for _, u := range users {
		id := workflows.ObjectSyncID(e.inst, "outage", object.User, u.ID)
		e.checkCalls(calls, id, 1)
		e.waitReasons(id, "user insert")
	}
	if st := r.Stats(); !e.retried() && (st.ChangesRelayed != 5 || st.SignalsSent != 5) {
		t.Errorf("stats = %+v, want 5 changes relayed and 5 signals sent", st)
	}
	if !strings.Contains(e.logs.String(), "relay recovered") {
		t.Errorf("no recovery logged; logs:\n%s", e.logs.String())
	}
}

func TestTwoRelaysDeliverEachChangeOncePerProvider(t *testing.T) {
	e := newEnv(t)
	e.provider("twin-a", true, nil)
	e.provider("twin-b", true, nil)
	e.provider("twin-off", false, nil)
	rec := newRecorder(e.c)
	r1, r2 := e.relay(rec), e.relay(rec)
	r1.BatchSize, r2.BatchSize = 5, 5
	e.start(r1)
	e.start(r2)

	var users []store.User
	// 60 users committed at once, then 20 one by one: both relays race for them.
	e.tx(func(ctx context.Context, tx *store.Tx) error {
		for i := range 60 {
			u, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("twin%03d", i)})
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		return nil
	})
	for i := range 20 {
		e.tx(func(ctx context.Context, tx *store.Tx) error {
			u, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("twin%03d", 60+i)})
			users = append(users, u)
			return err
		})
	}
	e.waitOutboxEmpty()

	calls := rec.snapshot()
	if len(calls) != 160 {
		t.Errorf("%d workflow IDs signalled, want 160 (80 users x 2 enabled providers)", len(calls))
	}
	for _, u := range users {
		for _, p := range []string{"twin-a", "twin-b"} {
			e.checkCalls(calls, workflows.ObjectSyncID(e.inst, p, object.User, u.ID), 1)
		}
	}
	// Every stand-in received exactly one signal (at least one, should an attempt have
	// failed; queried 8 at a time, retried until a deadline: a query waits for the
	// workflow's first task).
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	sem := make(chan struct{}, 8)
	for _, u := range users {
		for _, p := range []string{"twin-a", "twin-b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				id := workflows.ObjectSyncID(e.inst, p, object.User, u.ID)
				deadline := time.Now().Add(20 * time.Second)
				for {
					got, err := e.query(id)
					if err == nil && (equalStrings(got.Reasons, []string{"user insert"}) ||
						(e.retried() && len(got.Reasons) > 0 && equalStrings(slices.Compact(got.Reasons), []string{"user insert"}))) {
						return
					}
					if time.Now().After(deadline) {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%s: %q %v", id, got.Reasons, err))
						mu.Unlock()
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("stand-ins that did not receive exactly one signal:\n%s", strings.Join(bad, "\n"))
	}
	s1, s2 := r1.Stats(), r2.Stats()
	if !e.retried() && (s1.ChangesRelayed+s2.ChangesRelayed != 80 || s1.SignalsSent+s2.SignalsSent != 160) {
		t.Errorf("relay stats %+v and %+v: want 80 changes and 160 signals in total", s1, s2)
	}
	t.Logf("relay 1 relayed %d changes, relay 2 relayed %d", s1.ChangesRelayed, s2.ChangesRelayed)
}

func TestBindingChangeTriggersTheAttachedProvidersFullSync(t *testing.T) {
	e := newEnv(t)
	var app, other store.Application
	var group store.Group
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		if app, err = tx.CreateApplication(ctx, store.Application{Name: "wiki"}); err != nil {
			return err
		}
		if group, err = tx.CreateGroup(ctx, store.Group{Name: "editors"}); err != nil {
			return err
		}
		other, err = tx.CreateApplication(ctx, store.Application{Name: "chat"})
		return err
	})
	// Relay the group's creation while no provider exists: it is consumed, and signals nothing.
	if err := e.relay(e.c).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	attached := "bind-on-" + suffix
	e.provider(attached, true, &app.ID)
	disabled := e.provider("bind-off-"+suffix, false, &app.ID).Name
	elsewhere := e.provider("bind-other-"+suffix, true, &other.ID).Name
	unattached := e.provider("bind-none-"+suffix, true, nil).Name
	noSchedule := e.provider("bind-nosched-"+suffix, true, &app.ID).Name

	handles := map[string]client.ScheduleHandle{}
	for _, p := range []string{attached, disabled, elsewhere, unattached} {
		h, err := e.c.ScheduleClient().Create(context.Background(), client.ScheduleOptions{
			ID:      workflows.FullSyncScheduleID(e.inst, p),
			Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour}}},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Action: &client.ScheduleWorkflowAction{
				ID: workflows.FullSyncWorkflowID(e.inst, p), Workflow: workflows.FullSyncWorkflow,
				Args: []any{workflows.FullSyncInput{Provider: p}}, TaskQueue: e.queue,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		handles[p] = h
		t.Cleanup(func() { h.Delete(context.Background()) })
	}
	if n := e.outboxCount(); n != 0 {
		t.Fatalf("outbox holds %d changes before the binding, want 0", n)
	}
	rec := newRecorder(e.c)
	r := e.relay(rec)
	e.start(r)

	e.tx(func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.CreateBinding(ctx, store.Binding{ApplicationID: app.ID, GroupID: &group.ID, Enabled: true})
		return err
	})
	e.waitOutboxEmpty()
	actions := func(p string) []client.ScheduleActionResult {
		d, err := handles[p].Describe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return d.Info.RecentActions
	}
	testenv.Eventually(t, 20*time.Second, 25*time.Millisecond, func() (bool, string) {
		a := actions(attached)
		return len(a) == 1, fmt.Sprintf("%s schedule took %d actions, want 1", attached, len(a))
	})
	if wid := actions(attached)[0].StartWorkflowResult.WorkflowID; !strings.HasPrefix(wid, workflows.FullSyncWorkflowID(e.inst, attached)+"-") {
		t.Errorf("triggered full sync has workflow ID %q, want %s-<time>", wid, workflows.FullSyncWorkflowID(e.inst, attached))
	}
	for _, p := range []string{disabled, elsewhere, unattached} {
		if a := actions(p); len(a) != 0 {
			t.Errorf("%s schedule took %d actions, want none", p, len(a))
		}
	}
	if st := r.Stats(); st.SchedulesTriggered != 1 || st.SignalsSent != 0 || st.ChangesRelayed != 1 || st.Errors != 0 {
		t.Errorf("stats = %+v, want 1 trigger, 0 signals, 1 change relayed, 0 errors", st)
	}
	if calls := rec.snapshot(); len(calls) != 0 {
		t.Errorf("a binding change signalled %v, want no object signals", calls)
	}
	if !strings.Contains(e.logs.String(), "provider="+noSchedule) {
		t.Errorf("the missing schedule of %s was not logged; logs:\n%s", noSchedule, e.logs.String())
	}
}

func TestRunNeedsStoreAndTemporal(t *testing.T) {
	if err := (&changefeed.Relay{}).Run(context.Background()); err == nil {
		t.Fatal("Run without Store and Temporal returned nil, want an error")
	}
}
