package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// scheduleEnv is one test's world: a fresh database of its own, the package's dev server
// and a task queue whose worker runs a stand-in FullSync that completes at once.
type scheduleEnv struct {
	t     *testing.T
	dsn   string
	store *store.Store
	inst  workflows.Installation // the database's installation
	c     client.Client
	queue string
	logs  *testenv.SyncBuffer
}

func newScheduleEnv(t *testing.T) *scheduleEnv {
	t.Helper()
	return newScheduleEnvOf(t, t)
}

// namedTB is tb under another name, so that one test can have two databases (they are
// named after the test).
type namedTB struct {
	testing.TB
	name string
}

func (n namedTB) Name() string { return n.name }

// newScheduleEnvOf is newScheduleEnv on a database named after db.Name().
func newScheduleEnvOf(t *testing.T, db testing.TB) *scheduleEnv {
	t.Helper()
	dsn := testenv.NewDatabase(db, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	inst := installationOf(t, s)
	c := testenv.TemporalClient(t)
	queue := fmt.Sprintf("schedules-%s-%d", t.Name(), time.Now().UnixNano())
	w := sdkworker.New(c, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(func(workflow.Context, workflows.FullSyncInput) error { return nil },
		workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	e := &scheduleEnv{t: t, dsn: dsn, store: s, inst: inst, c: c, queue: queue, logs: &testenv.SyncBuffer{}}
	// Leave no schedule behind.
	t.Cleanup(func() {
		ps, _ := s.Providers(context.Background())
		for _, p := range ps {
			c.ScheduleClient().GetHandle(context.Background(), workflows.FullSyncScheduleID(e.inst, p.Name)).Delete(context.Background())
		}
	})
	return e
}

func (e *scheduleEnv) opts() worker.ScheduleOptions {
	return worker.ScheduleOptions{
		TaskQueue:    e.queue,
		NoInitialRun: true,
		Logger:       slog.New(slog.NewTextHandler(e.logs, nil)),
	}
}

func (e *scheduleEnv) reconcile(opts worker.ScheduleOptions) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := worker.ReconcileSchedules(ctx, e.c, e.store, opts); err != nil {
		e.t.Fatalf("ReconcileSchedules: %v", err)
	}
}

func (e *scheduleEnv) upsert(name string, interval time.Duration, enabled bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.store.InTx(ctx, func(tx *store.Tx) error {
		p := store.ProviderDefaults()
		p.Name, p.BaseURL, p.FullSyncInterval, p.Enabled = name, "https://scim.example.test", interval, enabled
		_, err := tx.UpsertProvider(ctx, p)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *scheduleEnv) deleteProvider(name string) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.store.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteProvider(ctx, name) }); err != nil {
		e.t.Fatal(err)
	}
}

func (e *scheduleEnv) describe(name string) (*client.ScheduleDescription, error) {
	return e.c.ScheduleClient().GetHandle(context.Background(), workflows.FullSyncScheduleID(e.inst, name)).
		Describe(context.Background())
}

func (e *scheduleEnv) mustDescribe(name string) *client.ScheduleDescription {
	e.t.Helper()
	d, err := e.describe(name)
	if err != nil {
		e.t.Fatalf("describe schedule of %s: %v", name, err)
	}
	return d
}

func (e *scheduleEnv) assertNoSchedule(name string) {
	e.t.Helper()
	_, err := e.describe(name)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		e.t.Errorf("schedule of %s: describe = %v, want NotFound", name, err)
	}
}

// waitScheduleList waits until the full-sync schedules listed by Temporal (an eventually
// consistent view) are exactly those of the named providers.
func (e *scheduleEnv) waitScheduleList(names ...string) {
	e.t.Helper()
	var want []string
	for _, n := range names {
		want = append(want, workflows.FullSyncScheduleID(e.inst, n))
	}
	slices.Sort(want)
	var got []string
	testenv.Eventually(e.t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		got = nil
		iter, err := e.c.ScheduleClient().List(context.Background(), client.ScheduleListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for iter.HasNext() {
			s, err := iter.Next()
			if err != nil {
				return false, err.Error()
			}
			if strings.HasPrefix(s.ID, workflows.FullSyncScheduleID(e.inst, "")) {
				got = append(got, s.ID)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("full-sync schedules = %q, want %q", got, want)
	})
}

// assertSchedule checks every field ReconcileSchedules owns.
func (e *scheduleEnv) assertSchedule(name string, interval, jitter time.Duration, paused bool) {
	e.t.Helper()
	d := e.mustDescribe(name)
	s := d.Schedule
	wantSpec := client.ScheduleSpec{
		Intervals: []client.ScheduleIntervalSpec{{Every: interval}},
		Jitter:    jitter,
	}
	if fmt.Sprintf("%+v", *s.Spec) != fmt.Sprintf("%+v", wantSpec) {
		e.t.Errorf("%s spec = %+v, want %+v", name, *s.Spec, wantSpec)
	}
	if s.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || s.Policy.CatchupWindow != interval {
		e.t.Errorf("%s policy = %+v, want overlap SKIP and catch-up window %s", name, *s.Policy, interval)
	}
	if s.State.Paused != paused {
		e.t.Errorf("%s paused = %v, want %v", name, s.State.Paused, paused)
	}
	a, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		e.t.Fatalf("%s action = %T, want a workflow action", name, s.Action)
	}
	if a.ID != workflows.FullSyncWorkflowID(e.inst, name) || a.Workflow != workflows.FullSyncWorkflow || a.TaskQueue != e.queue {
		e.t.Errorf("%s action starts %v %q on %q, want %s %q on %q", name, a.Workflow, a.ID, a.TaskQueue,
			workflows.FullSyncWorkflow, workflows.FullSyncWorkflowID(e.inst, name), e.queue)
	}
	var in workflows.FullSyncInput
	if len(a.Args) != 1 {
		e.t.Fatalf("%s action has %d args, want 1", name, len(a.Args))
	}
	if err := converter.GetDefaultDataConverter().FromPayload(a.Args[0].(*commonpb.Payload), &in); err != nil {
		e.t.Fatal(err)
	}
	if want := (workflows.FullSyncInput{Provider: name}); fmt.Sprint(in) != fmt.Sprint(want) {
		e.t.Errorf("%s action input = %+v, want %+v", name, in, want)
	}
	if p, _ := a.TypedSearchAttributes.GetKeyword(workflows.ProviderAttribute); p != name {
		e.t.Errorf("%s action ScimProvider = %q, want %q", name, p, name)
	}
	if want := workflows.FullSyncSummary(name); a.StaticSummary != want {
		e.t.Errorf("%s action summary = %q, want %q", name, a.StaticSummary, want)
	}
	if p, _ := d.TypedSearchAttributes.GetKeyword(workflows.ProviderAttribute); p != name {
		e.t.Errorf("%s schedule ScimProvider = %q, want %q", name, p, name)
	}
}

func TestReconcileSchedulesFollowsProviders(t *testing.T) {
	e := newScheduleEnv(t)
	opts := e.opts()
	sfx := fmt.Sprint(time.Now().UnixNano())
	a, b, off := "life-a-"+sfx, "life-b-"+sfx, "life-off-"+sfx

	// Schedules this installation does not own stay; an orphan with its prefix goes.
	ghost := "ghost-" + sfx
	foreign := "not-scimsync-" + sfx
	for _, id := range []string{workflows.FullSyncScheduleID(e.inst, ghost), foreign} {
		h, err := e.c.ScheduleClient().Create(context.Background(), client.ScheduleOptions{
			ID:     id,
			Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
			Action: &client.ScheduleWorkflowAction{Workflow: workflows.FullSyncWorkflow, TaskQueue: e.queue},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Delete(context.Background()) })
	}
	e.waitScheduleList(ghost)

	// Create.
	e.upsert(a, time.Hour, true)
	e.upsert(b, 2*time.Hour, true)
	e.upsert(off, time.Hour, false)
	e.reconcile(opts)
	e.waitScheduleList(a, b)
	e.assertSchedule(a, time.Hour, 5*time.Minute, false)
	e.assertSchedule(b, 2*time.Hour, 5*time.Minute, false)
	e.assertNoSchedule(off)
	e.assertNoSchedule(ghost)
	if _, err := e.c.ScheduleClient().GetHandle(context.Background(), foreign).Describe(context.Background()); err != nil {
		t.Errorf("a schedule without the scimsync prefix was touched: %v", err)
	}
	if d := e.mustDescribe(a); d.Info.NumActions != 0 || len(d.Info.RecentActions) != 0 {
		t.Errorf("NoInitialRun schedule took %d actions, want 0", d.Info.NumActions)
	}

	// Reconciling again changes nothing.
	before := map[string]time.Time{a: e.mustDescribe(a).Info.LastUpdateAt, b: e.mustDescribe(b).Info.LastUpdateAt}
	e.reconcile(opts)
	for name, at := range before {
		if got := e.mustDescribe(name).Info.LastUpdateAt; !got.Equal(at) {
			t.Errorf("second reconcile updated the unchanged schedule of %s (last update %s, was %s)", name, got, at)
		}
	}

	// Change an interval: that schedule alone is updated.
	e.upsert(a, 10*time.Minute, true)
	e.reconcile(opts)
	e.assertSchedule(a, 10*time.Minute, time.Minute, false)
	e.assertSchedule(b, 2*time.Hour, 5*time.Minute, false)
	if got := e.mustDescribe(b).Info.LastUpdateAt; !got.Equal(before[b]) {
		t.Errorf("changing %s updated %s too", a, b)
	}
	if got := e.mustDescribe(a).Info.LastUpdateAt; !got.After(before[a]) {
		t.Errorf("schedule of %s: last update %s, want after %s", a, got, before[a])
	}

	// An operator paused a; an interval change keeps it paused.
	if err := e.c.ScheduleClient().GetHandle(context.Background(), workflows.FullSyncScheduleID(e.inst, a)).
		Pause(context.Background(), client.SchedulePauseOptions{Note: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	e.upsert(a, 3*time.Hour, true)
	e.reconcile(opts)
	e.assertSchedule(a, 3*time.Hour, 5*time.Minute, true)

	// Disable b: its schedule goes.
	e.upsert(b, 2*time.Hour, false)
	e.reconcile(opts)
	e.assertNoSchedule(b)
	e.waitScheduleList(a)

	// Re-enable b: its schedule comes back.
	e.upsert(b, 2*time.Hour, true)
	e.reconcile(opts)
	e.assertSchedule(b, 2*time.Hour, 5*time.Minute, false)
	e.waitScheduleList(a, b)

	// Delete a and b: no schedule is left.
	e.deleteProvider(a)
	e.deleteProvider(b)
	e.reconcile(opts)
	e.assertNoSchedule(a)
	e.assertNoSchedule(b)
	e.waitScheduleList()
	e.reconcile(opts) // deleting what is already gone is fine

	logs := e.logs.String()
	for _, want := range []string{
		"full-sync schedule created", "full-sync schedule updated",
		"reason=\"provider disabled\"", "reason=\"provider removed\"",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestReconcileGivesASchedulesFullSyncItsSummary: a schedule as workers before summaries
// created it (its action without one) is updated once to carry the full sync's summary.
func TestReconcileGivesASchedulesFullSyncItsSummary(t *testing.T) {
	e := newScheduleEnv(t)
	opts := e.opts()
	name := fmt.Sprint("summary-", time.Now().UnixNano())
	e.upsert(name, time.Hour, true)
	h, err := e.c.ScheduleClient().Create(context.Background(), client.ScheduleOptions{
		ID:   workflows.FullSyncScheduleID(e.inst, name),
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}, Jitter: 5 * time.Minute},
		Action: &client.ScheduleWorkflowAction{ID: workflows.FullSyncWorkflowID(e.inst, name), Workflow: workflows.FullSyncWorkflow,
			Args: []any{workflows.FullSyncInput{Provider: name}}, TaskQueue: e.queue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.ProviderAttribute.ValueSet(name))},
		Overlap:               enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow:         time.Hour,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.ProviderAttribute.ValueSet(name)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Delete(context.Background()) })
	before := e.mustDescribe(name).Info.LastUpdateAt
	e.reconcile(opts)
	e.assertSchedule(name, time.Hour, 5*time.Minute, false)
	updated := e.mustDescribe(name).Info.LastUpdateAt
	if !updated.After(before) {
		t.Errorf("the schedule without a summary was not updated (last update %s)", updated)
	}
	e.reconcile(opts)
	if got := e.mustDescribe(name).Info.LastUpdateAt; !got.Equal(updated) {
		t.Errorf("a second reconcile updated the schedule again (%s, was %s)", got, updated)
	}
}

// TestReconcileSchedulesKeepsToItsInstallation: two installations (two databases) in one
// namespace, each with a provider of the same name, reconcile at once, again and again:
// each keeps its own schedule of that provider, with its own interval and task queue, and
// neither deletes the other's schedules, those of its other providers included. Schedules
// of before installation ids are replaced when their provider is the installation's own
// (enabled or not), kept while workers before installation ids poll their task queue (a
// rolling upgrade: those would create them again), and left alone when neither
// installation has their provider.
func TestReconcileSchedulesKeepsToItsInstallation(t *testing.T) {
	a := newScheduleEnv(t)
	b := newScheduleEnvOf(t, namedTB{t, t.Name() + "_b"})
	if a.inst == b.inst {
		t.Fatalf("two databases have the same installation %s", a.inst)
	}
	sfx := fmt.Sprint(time.Now().UnixNano())
	shared, onlyA, onlyB, offA, stranger := "shared-"+sfx, "only-a-"+sfx, "only-b-"+sfx, "off-a-"+sfx, "stranger-"+sfx
	rolling := "rolling-" + sfx // its legacy schedule's task queue is polled by a worker before installation ids
	a.upsert(shared, time.Hour, true)
	a.upsert(onlyA, time.Hour, true)
	a.upsert(rolling, time.Hour, true)
	a.upsert(offA, time.Hour, false)
	b.upsert(shared, 2*time.Hour, true)
	b.upsert(onlyB, 3*time.Hour, true)
	legacy := map[string]client.ScheduleHandle{}
	for _, name := range []string{onlyA, offA, stranger, rolling} {
		queue := workflows.LegacyTaskQueue
		if name == rolling {
			queue = a.queue // polled by the env's stand-in worker, whose identity names no installation
		}
		h, err := a.c.ScheduleClient().Create(context.Background(), client.ScheduleOptions{
			ID:     workflows.LegacyFullSyncScheduleID(name),
			Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
			Action: &client.ScheduleWorkflowAction{ID: workflows.LegacyFullSyncScheduleID(name), Workflow: workflows.FullSyncWorkflow, TaskQueue: queue},
		})
		if err != nil {
			t.Fatal(err)
		}
		legacy[name] = h
		t.Cleanup(func() { h.Delete(context.Background()) })
	}

	for range 3 {
		var wg sync.WaitGroup
		for _, e := range []*scheduleEnv{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := worker.ReconcileSchedules(ctx, e.c, e.store, e.opts()); err != nil {
					t.Errorf("ReconcileSchedules of installation %s: %v", e.inst, err)
				}
			}()
		}
		wg.Wait()
	}
	a.waitScheduleList(onlyA, rolling, shared)
	b.waitScheduleList(onlyB, shared)
	a.assertSchedule(shared, time.Hour, 5*time.Minute, false)
	a.assertSchedule(onlyA, time.Hour, 5*time.Minute, false)
	b.assertSchedule(shared, 2*time.Hour, 5*time.Minute, false)
	b.assertSchedule(onlyB, 3*time.Hour, 5*time.Minute, false)

	for name, wantGone := range map[string]bool{onlyA: true, offA: true, stranger: false, rolling: false} {
		_, err := legacy[name].Describe(context.Background())
		var nf *serviceerror.NotFound
		if gone := errors.As(err, &nf); gone != wantGone {
			t.Errorf("legacy schedule %s: describe = %v, want gone %v", legacy[name].GetID(), err, wantGone)
		}
	}
	if logs := a.logs.String(); !strings.Contains(logs, "legacy full-sync schedule (before installation ids) deleted") ||
		!strings.Contains(logs, "replaced by "+workflows.FullSyncScheduleID(a.inst, onlyA)) {
		t.Errorf("installation a's logs lack the legacy schedules it replaced:\n%s", logs)
	}
	if logs := a.logs.String(); !strings.Contains(logs, "kept while workers before installation ids poll its task queue") ||
		!strings.Contains(logs, workflows.LegacyFullSyncScheduleID(rolling)) {
		t.Errorf("installation a's logs do not say why it kept %s:\n%s", workflows.LegacyFullSyncScheduleID(rolling), logs)
	}
	if logs := b.logs.String(); strings.Contains(logs, "deleted") {
		t.Errorf("installation b deleted schedules:\n%s", logs)
	}

	// a's provider shared goes: a deletes its schedule, b keeps its own.
	a.deleteProvider(shared)
	a.reconcile(a.opts())
	b.reconcile(b.opts())
	a.assertNoSchedule(shared)
	a.waitScheduleList(onlyA, rolling)
	b.assertSchedule(shared, 2*time.Hour, 5*time.Minute, false)
	b.waitScheduleList(onlyB, shared)
}

func TestNewScheduleStartsAFullSyncAtOnce(t *testing.T) {
	e := newScheduleEnv(t)
	opts := e.opts()
	opts.NoInitialRun = false
	name := "initial-" + fmt.Sprint(time.Now().UnixNano())
	e.upsert(name, time.Hour, true)
	e.reconcile(opts)
	var d *client.ScheduleDescription
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		d = e.mustDescribe(name)
		return len(d.Info.RecentActions) == 1, fmt.Sprintf("schedule took %d actions, want 1", len(d.Info.RecentActions))
	})
	if wid := d.Info.RecentActions[0].StartWorkflowResult.WorkflowID; !strings.HasPrefix(wid, workflows.FullSyncWorkflowID(e.inst, name)+"-") {
		t.Errorf("initial full sync has workflow ID %q, want %s-<time>", wid, workflows.FullSyncWorkflowID(e.inst, name))
	}
	// An update does not start another one.
	e.upsert(name, 2*time.Hour, true)
	e.reconcile(opts)
	e.assertSchedule(name, 2*time.Hour, 5*time.Minute, false)
	if n := e.mustDescribe(name).Info.NumActions; n != 1 {
		t.Errorf("schedule took %d actions after an update, want 1", n)
	}
}

func TestConcurrentReconcilesCreateEachScheduleOnce(t *testing.T) {
	e := newScheduleEnv(t)
	opts := e.opts()
	opts.NoInitialRun = false // each successful Create starts exactly one full sync
	sfx := fmt.Sprint(time.Now().UnixNano())
	var names []string
	for i := range 5 {
		names = append(names, fmt.Sprintf("race-%d-%s", i, sfx))
		e.upsert(names[i], time.Hour, true)
	}
	e.upsert("race-off-"+sfx, time.Hour, false)

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = worker.ReconcileSchedules(ctx, e.c, e.store, opts)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("reconcile %d: %v", i, err)
		}
	}
	e.waitScheduleList(names...)
	for _, name := range names {
		e.assertSchedule(name, time.Hour, 5*time.Minute, false)
		testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
			n := len(e.mustDescribe(name).Info.RecentActions)
			return n == 1, fmt.Sprintf("%s took %d actions, want exactly 1 (one creation)", name, n)
		})
	}
	if got := strings.Count(e.logs.String(), "full-sync schedule created"); got != len(names) {
		t.Errorf("%d schedules created, want %d", got, len(names))
	}
}

func TestScheduleKeeperReconcilesAtStartAndThenPeriodically(t *testing.T) {
	e := newScheduleEnv(t)
	name := "keeper-" + fmt.Sprint(time.Now().UnixNano())
	e.upsert(name, time.Hour, true)
	k := &worker.ScheduleKeeper{Client: e.c, Store: e.store, Options: e.opts(), Interval: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	}()

	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		_, err := e.describe(name)
		return err == nil, fmt.Sprintf("schedule of %s: %v", name, err)
	})
	e.upsert(name, 2*time.Hour, true)
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		d, err := e.describe(name)
		return err == nil && d.Schedule.Spec.Intervals[0].Every == 2*time.Hour, fmt.Sprintf("schedule of %s not updated to 2h: %v", name, err)
	})
	e.upsert(name, 2*time.Hour, false)
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		_, err := e.describe(name)
		var nf *serviceerror.NotFound
		return errors.As(err, &nf), fmt.Sprintf("schedule of disabled %s still there: %v", name, err)
	})
}

func TestScheduleKeeperNeedsClientAndStore(t *testing.T) {
	if err := (&worker.ScheduleKeeper{}).Run(context.Background()); err == nil {
		t.Fatal("Run without Client and Store returned nil, want an error")
	}
}

func TestDefaultJitter(t *testing.T) {
	for _, tc := range []struct{ interval, want time.Duration }{
		{time.Minute, 6 * time.Second}, {10 * time.Minute, time.Minute},
		{time.Hour, 5 * time.Minute}, {24 * time.Hour, 5 * time.Minute},
	} {
		if got := worker.DefaultJitter(tc.interval); got != tc.want {
			t.Errorf("DefaultJitter(%s) = %s, want %s", tc.interval, got, tc.want)
		}
	}
}
