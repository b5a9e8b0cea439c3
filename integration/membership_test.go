package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// TestMemberWhoseWriteResultWasLostJoinsItsGroup: a new user's create reaches the target
// and is recorded, but the activity's result never reaches Temporal (its worker dies right
// after): the retried write finds nothing left to write. The user must still be added to
// its group, whose own sync ran before the user had a remote id. The same holds for a
// user who comes back into scope after being deactivated at the target.
func TestMemberWhoseWriteResultWasLostJoinsItsGroup(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	lose := &loseFirstResult{activity: "WriteObjects", kind: object.User}
	w := sdkworker.New(e.temporal, e.queue, sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{lose}})
	worker.Register(w, e.acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	var app store.Application
	var staff store.Group
	var ada, bob store.User
	bindings := map[string]store.Binding{}
	e.tx(func(tx *store.Tx) (err error) {
		if app, err = tx.CreateApplication(e.ctx, store.Application{Name: "chat"}); err != nil {
			return err
		}
		if staff, err = tx.CreateGroup(e.ctx, store.Group{Name: "staff"}); err != nil {
			return err
		}
		if ada, err = tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true}); err != nil {
			return err
		}
		if bindings["ada"], err = tx.CreateBinding(e.ctx, store.Binding{ApplicationID: app.ID, UserID: &ada.ID, Enabled: true}); err != nil {
			return err
		}
		return tx.AddMember(e.ctx, staff.ID, ada.ID)
	})
	const provider = "lost-result"
	e.provider(provider, func(p *store.Provider) {
		p.ApplicationID = &app.ID
		p.DeprovisionAction = store.DeprovisionDeactivate
	})
	if _, _, err := e.fullSync(provider, workflows.FullSyncInput{}); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	staffMembers := func(want ...string) func() string {
		return func() string {
			if m := remoteGroups(e.target)["staff"].Members; strings.Join(m, ",") != strings.Join(want, ",") {
				return fmt.Sprintf("staff members at the target = %v, want %v", m, want)
			}
			return ""
		}
	}
	e.waitFor(time.Second, staffMembers("ada"))

	// bob joins staff. The group's sync runs first and cannot add him: he has no remote id.
	e.tx(func(tx *store.Tx) (err error) {
		if bob, err = tx.CreateUser(e.ctx, store.User{Username: "bob", Name: "Bob Babbage", Email: "bob@example.test", IsActive: true}); err != nil {
			return err
		}
		if bindings["bob"], err = tx.CreateBinding(e.ctx, store.Binding{ApplicationID: app.ID, UserID: &bob.ID, Enabled: true}); err != nil {
			return err
		}
		return tx.AddMember(e.ctx, staff.ID, bob.ID)
	})
	e.syncAndWait(provider, object.Group, staff.ID)
	if err := staffMembers("ada")(); err != "" {
		t.Fatalf("before bob's sync: %s", err)
	}

	// bob's sync: the first write creates him and its result is lost; the retry finds him
	// written and must still make staff sync.
	posts := e.target.Count("POST /Users")
	lose.armed.Store(true)
	e.syncAndWait(provider, object.User, bob.ID)
	e.waitFor(15*time.Second, staffMembers("ada", "bob"))
	if n := lose.lost.Load(); n != 1 {
		t.Errorf("%d write results lost, want 1", n)
	}
	if n := e.target.Count("POST /Users") - posts; n != 1 {
		t.Errorf("%d POST /Users for bob, want 1", n)
	}
	// bob's workflow history: the write ran twice (attempt 2 after the lost result), then
	// the user's groups were signalled. (The reads are local activities: markers.)
	const want = "[WriteObjects:2 SignalGroupsOfUsers:1]"
	if got := fmt.Sprint(e.activityAttempts(workflows.ObjectSyncID(e.inst, provider, object.User, bob.ID))); got != want {
		t.Errorf("activities of bob's sync = %s, want %s", got, want)
	}

	// bob leaves the application: deactivated at the target, and out of staff there.
	bindings["bob"] = setBindingEnabled(e, bindings["bob"], false)
	e.syncAndWait(provider, object.User, bob.ID)
	e.waitFor(15*time.Second, staffMembers("ada"))
	if u := remoteUser(e.target, "bob"); u == nil || u["active"] != false {
		t.Fatalf("bob at the target after leaving = %v, want active false", u)
	}
	// bob comes back: active again, in place, and back in staff without a full sync.
	bindings["bob"] = setBindingEnabled(e, bindings["bob"], true)
	e.syncAndWait(provider, object.User, bob.ID)
	e.waitFor(15*time.Second, staffMembers("ada", "bob"))
	if u := remoteUser(e.target, "bob"); u == nil || u["active"] != true {
		t.Errorf("bob at the target after coming back = %v, want active true", u)
	}
	if n := e.target.Count("POST /Users") - posts; n != 1 {
		t.Errorf("%d POST /Users for bob in all, want 1 (no re-create)", n)
	}
	if n := len(e.target.Users()); n != 2 {
		t.Errorf("%d users at the target, want 2", n)
	}
}

// syncAndWait signals the object's ObjectSync and waits for that run to complete.
func (e *env) syncAndWait(provider, kind, id string) {
	e.t.Helper()
	e.signal(provider, kind, id)
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	if err := e.temporal.GetWorkflow(ctx, workflows.ObjectSyncID(e.inst, provider, kind, id), "").Get(ctx, nil); err != nil {
		e.t.Fatalf("%s sync of %s: %v", kind, id, err)
	}
}

// activityAttempts lists the activities the workflow's latest run completed, in order, as
// "Type:attempt" (local activities are not in it: they leave markers).
func (e *env) activityAttempts(workflowID string) []string {
	e.t.Helper()
	types := map[int64]string{}
	var out []string
	it := e.temporal.GetWorkflowHistory(e.ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	attempts := map[int64]int32{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		switch {
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			types[ev.EventId] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			a := ev.GetActivityTaskStartedEventAttributes()
			attempts[a.GetScheduledEventId()] = a.GetAttempt()
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			id := ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			out = append(out, fmt.Sprintf("%s:%d", types[id], attempts[id]))
		}
	}
	return out
}

// loseFirstResult is a worker interceptor that, once armed, lets one call of an activity
// of the given object kind do its work and then reports a retryable failure instead of its
// result: what Temporal sees when the worker dies between the write and its report.
type loseFirstResult struct {
	interceptor.WorkerInterceptorBase
	activity, kind string
	armed          atomic.Bool
	lost           atomic.Int32
}

func (l *loseFirstResult) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &loseResultInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, l: l}
}

type loseResultInbound struct {
	interceptor.ActivityInboundInterceptorBase
	l *loseFirstResult
}

func (i *loseResultInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := i.Next.ExecuteActivity(ctx, in)
	if err != nil || activity.GetInfo(ctx).ActivityType.Name != i.l.activity || len(in.Args) != 1 {
		return res, err
	}
	if wi, ok := in.Args[0].(activities.WriteInput); !ok || wi.Kind != i.l.kind {
		return res, err
	}
	if i.l.armed.CompareAndSwap(true, false) {
		i.l.lost.Add(1)
		return nil, errors.New("result lost: the worker stopped before reporting it")
	}
	return res, err
}

// TestMembershipChangesShareBulkRequests: on a target with Bulk, the membership changes of
// many groups go in Bulk requests (one PATCH operation per group, chunked by the target's
// maxOperations); a group whose change needs several PATCHes gets them as single requests,
// removals first. The end state is exact, and a further full sync sends nothing.
func TestMembershipChangesShareBulkRequests(t *testing.T) {
	t.Run("bulk", func(t *testing.T) { testMembershipBulk(t, false) })
	// A target whose Bulk refuses PATCH operations: each refused group gets its change as
	// single requests, and the end state is the same.
	t.Run("bulk-without-patch", func(t *testing.T) { testMembershipBulk(t, true) })
}

func testMembershipBulk(t *testing.T, bulkNoPatch bool) {
	e := newEnv(t, scimtest.Options{Config: scimtest.Config{BulkMaxOperations: 5, BulkNoPatch: bulkNoPatch}})
	var users []store.User
	var groups []store.Group
	e.tx(func(tx *store.Tx) error {
		for i := range 40 {
			u, err := tx.CreateUser(e.ctx, store.User{Username: fmt.Sprintf("bm%02d", i), Name: fmt.Sprintf("Bulk%d Member%d", i, i),
				Email: fmt.Sprintf("bm%02d@example.test", i), IsActive: true})
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		for i := range 12 {
			g, err := tx.CreateGroup(e.ctx, store.Group{Name: fmt.Sprintf("bg%02d", i)})
			if err != nil {
				return err
			}
			groups = append(groups, g)
		}
		return nil
	})
	e.provider("bulk-members", nil)
	if _, _, err := e.fullSync("bulk-members", workflows.FullSyncInput{}); err != nil {
		t.Fatalf("first full sync: %v", err)
	}

	// bg00..bg09 get two members each, bg10 twelve (more than one PATCH of 5 holds), bg11
	// none.
	want := map[string][]string{}
	e.tx(func(tx *store.Tx) error {
		add := func(g int, us ...int) error {
			for _, u := range us {
				if err := tx.AddMember(e.ctx, groups[g].ID, users[u].ID); err != nil {
					return err
				}
				want[groups[g].Name] = append(want[groups[g].Name], users[u].Username)
			}
			return nil
		}
		for g := range 10 {
			if err := add(g, 2*g, 2*g+1); err != nil {
				return err
			}
		}
		return add(10, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31)
	})
	e.target.ResetLog()
	progress, _, err := e.fullSync("bulk-members", workflows.FullSyncInput{})
	if err != nil {
		t.Fatalf("second full sync: %v", err)
	}
	for _, g := range groups {
		got := remoteGroups(e.target)[g.Name].Members
		if strings.Join(got, ",") != strings.Join(want[g.Name], ",") {
			t.Errorf("%s members at the target = %v, want %v", g.Name, got, want[g.Name])
		}
	}
	counts := e.target.Counts()
	wantPatches := 3 // bg10's 12 members in PATCHes of 5
	if bulkNoPatch {
		wantPatches += 10 // the refused operations, again as single requests
	}
	if counts["POST /Bulk"] != 2 || counts["PATCH /Groups/{id}"] != wantPatches || e.target.Mutations() != 2+wantPatches {
		t.Errorf("requests = %v; want 2 Bulk requests (10 groups, 5 operations each) and %d PATCHes", counts, wantPatches)
	}
	if progress.Groups.Failed != 0 {
		t.Errorf("progress = %+v", progress.Groups)
	}

	e.target.ResetLog()
	if _, _, err := e.fullSync("bulk-members", workflows.FullSyncInput{}); err != nil {
		t.Fatalf("third full sync: %v", err)
	}
	if m := e.target.Mutations(); m != 0 {
		t.Errorf("third full sync sent %d mutations, want none: %v", m, e.target.Counts())
	}
}
