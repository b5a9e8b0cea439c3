package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestFullSyncConvergesThroughFaults: a full sync against a target that answers 10% of the
// requests with 500, 5% with 429 (Retry-After: 1) and 5% slower than the client's timeout
// (after executing them) ends in exactly the expected remote state, with no duplicate and
// nothing missing. Bulk is off so that every object is its own request (and can fault).
func TestFullSyncConvergesThroughFaults(t *testing.T) {
	nUsers, nGroups := sizes()
	e := newEnvWithoutWorker(t, scimtest.Options{})
	e.extend(30 * time.Minute)
	d, ft := e.flatWorld("faults", scimtest.Options{Config: scimtest.Config{NoBulk: true}}, 8, nUsers, nGroups, nil)
	const timeout = 2 * time.Second
	ft.SetFaults(0.10, 0.05, 0.05, timeout+time.Second)

	w := e.newWorkerProc(buildWorker(t), workerOptions{RequestTimeout: timeout})
	w.Start()
	start := time.Now()
	id := e.scheduledFullSync(e.temporal, "faults", time.Minute)
	progress, err := e.awaitWorkflow(e.temporal, id, 20*time.Minute)
	if err != nil {
		t.Fatalf("full sync: %v", err)
	}
	took := time.Since(start)
	byKind, faults := ft.Faults()
	ft.SetFaults(0, 0, 0, 0)

	r := compareState(ft.Server, d, ft.Creates())
	if !r.ok() {
		t.Errorf("remote state after the full sync: %s", r)
	}
	if progress.Phase != workflows.PhaseDone || progress.Users.Failed+progress.Groups.Failed != 0 {
		t.Errorf("progress = %+v, want done with no failure", progress)
	}
	if min(byKind["500"], byKind["429"], byKind["slow"]) == 0 {
		t.Errorf("faults injected: %v, want every kind", byKind)
	}
	figures(t, "%d users, %d groups; %d requests, %d faults injected (500: %d, 429: %d, slower than the timeout: %d); duplicates %d, missing %d; %s",
		len(d.users), len(d.groups), ft.Requests(), faults, byKind["500"], byKind["429"], byKind["slow"], r.Duplicates, r.Missing, took.Round(time.Second))
}

// TestTwoWorkersFullSyncAndBurstOfChanges: two worker processes share the task queue; while
// a full sync runs, the same objects change in the directory (relayed by the change feed
// of both workers) and are also signalled directly, as other services may. Per-object syncs
// and full-sync batches then write the same objects at the same time: nothing is created
// twice, the end state is exact, and the batches ran on both workers.
func TestTwoWorkersFullSyncAndBurstOfChanges(t *testing.T) {
	nUsers, nGroups := sizes()
	e := newEnvWithoutWorker(t, scimtest.Options{})
	e.extend(30 * time.Minute)
	d, ft := e.flatWorld("pair", scimtest.Options{Config: scimtest.Config{NoBulk: true}}, 1, nUsers, nGroups, nil)

	// One activity slot each, and creates held until both have sent one: both write,
	// however the server hands out the batches.
	ft.HoldCreatesForWorkers(2)
	// A tenth of the users get through, the other creates wait until the burst is made:
	// the full sync is certainly writing users when it comes.
	ft.HoldCreatesAfter(len(d.users) / 10)
	e.twoWorkers(ft)
	id := e.scheduledFullSync(e.temporal, "pair", time.Minute)

	// The burst: every fifth user and every group changes (and is signalled directly)
	// once the first objects reach the target.
	e.waitTargetUsers(ft, len(d.users)/10, 2*time.Minute)
	during, _ := queryProgress(e.ctx, e.temporal, id)
	if during.Phase != workflows.PhaseUsers {
		t.Errorf("the full sync is in phase %q while its creates are held, want %q", during.Phase, workflows.PhaseUsers)
	}
	changed := 0
	e.tx(func(tx *store.Tx) error {
		for i := range d.users {
			if i%5 != 0 {
				continue
			}
			u := d.users[i]
			u.Name = fmt.Sprintf("Changed%d Burst%d", i, i)
			saved, err := tx.UpdateUser(e.ctx, u)
			if err != nil {
				return err
			}
			d.users[i] = saved
			changed++
		}
		return nil
	})
	for i := range d.users {
		if i%5 == 0 {
			e.signal("pair", object.User, d.users[i].ID)
		}
	}
	for _, g := range d.groups {
		e.signal("pair", object.Group, g.ID)
	}
	ft.OpenGate()
	if _, err := e.awaitWorkflow(e.temporal, id, 15*time.Minute); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	r := e.waitState(ft.Server, d, ft.Creates, 3*time.Minute)

	// Which worker ran each batch's write?
	perWorker := map[string]int{}
	for _, child := range childWorkflows(t, e, id, "") {
		for _, who := range activityWorkers(t, e, id+"/"+child, "WriteObjects") {
			perWorker[who]++
		}
	}
	if n := ft.WorkersSeen(); n != 2 {
		t.Errorf("%d worker(s) wrote to the target, want both", n)
	}
	var spread []string
	for who, n := range perWorker {
		spread = append(spread, fmt.Sprintf("%s: %d", who, n))
	}
	sort.Strings(spread)
	figures(t, "%d users, %d groups, %d users changed and signalled and %d groups signalled from phase %q of the full sync; batches per worker %s; duplicates %d, missing %d",
		len(d.users), len(d.groups), changed, len(d.groups), during.Phase, strings.Join(spread, ", "), r.Duplicates, r.Missing)
}

// activityWorkers returns the identity of the worker that started each activity of type
// activityType in the workflow's history (every attempt of it).
func activityWorkers(t *testing.T, e *env, id, activityType string) []string {
	t.Helper()
	iter := e.temporal.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	var out []string
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == activityType {
			out = append(out, a.GetIdentity())
		}
	}
	return out
}
