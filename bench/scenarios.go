package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// Run runs the configured scenarios Repeat times and returns the report. On error the
// report holds what finished before it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TemporalCLI == "" {
		cli, err := testenv.TemporalCLI()
		if err != nil {
			return nil, err
		}
		cfg.TemporalCLI = cli
	}
	rep := newReport(cfg)
	if v, err := postgresVersion(ctx, cfg.DatabaseURL); err != nil {
		return rep, fmt.Errorf("PostgreSQL at DATABASE_URL: %w", err)
	} else {
		rep.Machine.PostgreSQL = v
	}
	h, err := newHarness(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer h.Close()
	for round := 1; round <= cfg.Repeat; round++ {
		if err := h.runRound(ctx, rep, round); err != nil {
			rep.finish()
			return rep, err
		}
	}
	rep.finish()
	return rep, nil
}

func postgresVersion(ctx context.Context, dsn string) (string, error) {
	s, err := store.Open(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer s.Close()
	var v string
	err = s.DB().GetContext(ctx, &v, `SHOW server_version`)
	return "PostgreSQL " + v, err
}

// logSize is a request log that holds every request of a full sync of the directory, so
// that the limit can replay them.
func logSize(users, groups int) int { return 2*(users+groups) + 1000 }

// runRound runs every selected scenario once, each world (database, target, worker) fresh.
func (h *harness) runRound(ctx context.Context, rep *Report, round int) error {
	cfg := h.cfg
	if cfg.has("S1") || cfg.has("S3") || cfg.has("S4") || cfg.has("S8") {
		err := h.inWorld(ctx, fmt.Sprintf("s1-r%d", round), worldOptions{users: cfg.Users, groups: cfg.Groups,
			target: scimtest.Options{Config: scimtest.Config{NoBulk: true}, MaxLogEntries: logSize(cfg.Users, cfg.Groups), MaxLogBody: logBodyLimit}},
			func(w *world) error {
				s1, err := w.fullSyncScenario(ctx, "S1", round, true)
				if err != nil {
					return err
				}
				if cfg.has("S1") {
					if err := w.limit(ctx, s1); err != nil {
						return err
					}
					rep.add(s1)
				}
				var s3 *Result
				if cfg.has("S3") {
					if s3, err = w.fullSyncScenario(ctx, "S3", round, false); err != nil {
						return err
					}
					rep.add(s3)
				}
				if cfg.has("S4") {
					s4, err := w.changeScenario(ctx, round)
					if err != nil {
						return err
					}
					rep.add(s4)
				}
				if cfg.has("S8") {
					s8, err := w.reconcileScenario(ctx, round, s1, s3)
					if err != nil {
						return err
					}
					rep.add(s8)
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
	for _, sc := range []struct {
		name string
		opts worldOptions
	}{
		{"S2", worldOptions{users: cfg.Users, groups: cfg.Groups, target: scimtest.Options{
			Config: scimtest.Config{BulkMaxOperations: cfg.BulkMaxOperations}, MaxLogEntries: logSize(cfg.Users, cfg.Groups), MaxLogBody: logBodyLimit}}},
		{"S5", worldOptions{users: cfg.Users, groups: cfg.Groups, latency: cfg.Latency, target: scimtest.Options{
			Config: scimtest.Config{NoBulk: true}, MaxLogEntries: logSize(cfg.Users, cfg.Groups), MaxLogBody: logBodyLimit}}},
		{"S6", worldOptions{users: cfg.S6Users, groups: cfg.s6Groups(), target: scimtest.Options{
			Config: scimtest.Config{NoBulk: true}, MaxLogEntries: -1}}},
	} {
		if !cfg.has(sc.name) {
			continue
		}
		err := h.inWorld(ctx, fmt.Sprintf("%s-r%d", strings.ToLower(sc.name), round), sc.opts, func(w *world) error {
			res, err := w.fullSyncScenario(ctx, sc.name, round, true)
			if err != nil {
				return err
			}
			if sc.name != "S6" {
				if err := w.limit(ctx, res); err != nil {
					return err
				}
			}
			rep.add(res)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return h.runPacing(ctx, rep, round)
}

func (h *harness) inWorld(ctx context.Context, name string, opts worldOptions, fn func(w *world) error) error {
	w, err := h.newWorld(ctx, name, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer w.close()
	if err := fn(w); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// sample is the state of the world when a scenario began.
type sample struct {
	label     string
	metrics   metricSet
	workerCPU time.Duration
	devCPU    time.Duration
	benchCPU  time.Duration
	pg        *backendSampler
	// temporalPG samples the backends of the cluster's databases (none for a dev server).
	temporalPG []*backendSampler
	busy       int64
	total      int64
	hwmReset   bool
	rss        *rssSampler
}

func (w *world) begin(ctx context.Context, label string) (*sample, error) {
	w.target.ResetLog()
	m, err := scrapeMetrics(ctx, w.workerURL+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	pid := w.worker.Pid()
	s := &sample{label: label, metrics: m, workerCPU: procCPU(pid), devCPU: procCPU(w.h.temporalPid()),
		benchCPU: procCPU(os.Getpid()), hwmReset: resetPeakRSS(pid), rss: sampleRSS(pid, 50*time.Millisecond)}
	s.pg = sampleBackends(w.dbName)
	for _, db := range w.h.temporalDatabases() {
		s.temporalPG = append(s.temporalPG, sampleBackends(db))
	}
	s.busy, s.total = machineCPU()
	w.pprof(ctx, "cpu/start", label+".cpu.pprof")
	return s, nil
}

// abort stops the samplers of a scenario that failed.
func (s *sample) abort() {
	s.rss.Stop()
	s.pg.Stop()
	for _, t := range s.temporalPG {
		t.Stop()
	}
}

// end fills res with what the scenario cost since begin.
func (w *world) end(ctx context.Context, s *sample, res *Result) error {
	w.pprof(ctx, "cpu/stop", "")
	w.pprof(ctx, "heap", s.label+".heap.pprof")
	pid := w.worker.Pid()
	peak := s.rss.Stop()
	if s.hwmReset {
		if hwm, err := procStatus(pid, "VmHWM"); err == nil {
			peak = max(peak, hwm)
		}
	}
	res.WorkerPeakRSSMB = float64(peak) / (1 << 20)
	res.WorkerCPUSeconds = (procCPU(pid) - s.workerCPU).Seconds()
	res.TemporalCPUSeconds = (procCPU(w.h.temporalPid()) - s.devCPU).Seconds()
	for _, t := range s.temporalPG {
		res.TemporalPostgresCPUSeconds += t.Stop().Seconds()
	}
	res.BenchCPUSeconds = (procCPU(os.Getpid()) - s.benchCPU).Seconds()
	res.PostgresCPUSeconds = s.pg.Stop().Seconds()
	busy, total := machineCPU()
	if total > s.total {
		res.MachineCPUBusy = 100 * float64(busy-s.busy) / float64(total-s.total)
	}

	m, err := scrapeMetrics(ctx, w.workerURL+"/metrics")
	if err != nil {
		return fmt.Errorf("worker metrics: %w", err)
	}
	d := m.sub(s.metrics)
	res.WorkflowsByType = map[string]int{}
	for _, name := range []string{"temporal_workflow_completed", "temporal_workflow_failed",
		"temporal_workflow_canceled", "temporal_workflow_continue_as_new"} {
		for _, suffix := range []string{"_total", ""} {
			for t, n := range d.byLabel(name+suffix, "workflow_type") {
				res.WorkflowsByType[t] += n
			}
		}
	}
	res.ActivitiesByType = d.byLabel("temporal_activity_execution_latency_seconds_count", "activity_type")
	if len(res.ActivitiesByType) == 0 {
		res.ActivitiesByType = d.byLabel("temporal_activity_execution_latency_count", "activity_type")
	}
	res.LocalActivitiesByType = d.byLabel("temporal_local_activity_total_total", "activity_type")
	if len(res.LocalActivitiesByType) == 0 {
		res.LocalActivitiesByType = d.byLabel("temporal_local_activity_total", "activity_type")
	}
	for _, n := range res.LocalActivitiesByType {
		res.LocalActivities += n
	}
	for _, n := range res.WorkflowsByType {
		res.Workflows += n
	}
	for _, n := range res.ActivitiesByType {
		res.Activities += n
	}
	if v, err := d.first("temporal_request_total", "temporal_request"); err == nil {
		res.TemporalRequests = int(v + 0.5)
	}

	res.Requests = map[string]int{}
	res.Routes = w.target.Counts()
	for route, n := range res.Routes {
		method, _, _ := strings.Cut(route, " ")
		res.Requests[method] += n
		res.RequestsTotal += n
	}
	res.Mutations = w.target.Mutations()
	if res.WallSeconds > 0 {
		res.ObjectsPerSecond = float64(res.Objects) / res.WallSeconds
	}
	return nil
}

// fullSyncScenario runs a FullSync of the world's provider and checks the target's state
// afterwards. first says whether it is the first sync (everything created) or a repeat of
// one with nothing changed (nothing written).
func (w *world) fullSyncScenario(ctx context.Context, id string, round int, first bool) (*Result, error) {
	cfg := w.h.cfg
	res := &Result{Scenario: id, Round: round, Description: describe(id, cfg), Users: w.opts.users,
		Groups: w.opts.groups, Memberships: w.memberships, Objects: w.opts.users + w.opts.groups}
	label := fmt.Sprintf("%s-r%d", id, round)
	cfg.logf("%s: full sync of %d users and %d groups", label, w.opts.users, w.opts.groups)
	progress, err := w.timedFullSync(ctx, res, label, workflows.FullSyncInput{})
	if err != nil {
		return nil, err
	}

	// Structural checks: the exact remote state, and what the sync says it did.
	want := RemoteState{Users: w.opts.users, Groups: w.opts.groups, Members: w.memberships}
	if res.Remote != want {
		res.fail("remote state %+v, want %+v", res.Remote, want)
	}
	u, g := progress.Users, progress.Groups
	if u.Failed+g.Failed > 0 {
		res.fail("%d users and %d groups failed", u.Failed, g.Failed)
	}
	if first && (u.Created != w.opts.users || g.Created != w.opts.groups) {
		res.fail("created %d users and %d groups, want %d and %d", u.Created, g.Created, w.opts.users, w.opts.groups)
	}
	if !first {
		if u.Unchanged != w.opts.users || g.Unchanged != w.opts.groups {
			res.fail("unchanged %d users and %d groups, want %d and %d", u.Unchanged, g.Unchanged, w.opts.users, w.opts.groups)
		}
		if res.Mutations != 0 {
			res.fail("%d mutating requests, want 0", res.Mutations)
		}
		// The read-back of the first sync is not due again for reconcile_interval.
		if res.RequestsTotal != 0 || progress.ReadBack != nil {
			res.fail("%d requests (read-back %v), want none: nothing changed and no read-back is due", res.RequestsTotal, progress.ReadBack != nil)
		}
	}
	cfg.logf("%s: %.2fs, %.0f objects/s, %d requests, %d workflows, %d activities, worker peak RSS %.0f MB",
		label, res.WallSeconds, res.ObjectsPerSecond, res.RequestsTotal, res.Workflows, res.Activities, res.WorkerPeakRSSMB)
	return res, nil
}

// timedFullSync runs one FullSync of the world's provider with in, and fills res with what
// it cost, its history and the remote state.
func (w *world) timedFullSync(ctx context.Context, res *Result, label string, in workflows.FullSyncInput) (*workflows.FullSyncProgress, error) {
	s, err := w.begin(ctx, label)
	if err != nil {
		return nil, err
	}
	in.Provider, in.Parallelism = w.provider, w.h.cfg.Parallelism
	start := time.Now()
	run, err := w.h.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        workflows.FullSyncWorkflowID(w.inst, w.provider) + "/bench-" + label,
		TaskQueue: w.queue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProviderAttribute.ValueSet(w.provider)),
	}, workflows.FullSyncWorkflow, in)
	if err != nil {
		s.abort()
		return nil, err
	}
	// The first run's id: Get follows continue-as-new, and the run then reports the last.
	firstRun := run.GetRunID()
	var progress workflows.FullSyncProgress
	err = run.Get(ctx, &progress)
	res.WallSeconds = time.Since(start).Seconds()
	if err != nil {
		s.abort()
		return nil, fmt.Errorf("full sync: %w", err)
	}
	// The worker counts a workflow just after it completes it: wait for the count.
	w.settle(ctx, s.metrics, workflows.FullSyncWorkflow, 1)
	if err := w.end(ctx, s, res); err != nil {
		return nil, err
	}
	res.Progress = &progress
	if res.History, err = historyStats(ctx, w.h.temporal, run.GetID(), firstRun); err != nil {
		return nil, err
	}
	var tasks int
	if res.BreakdownSeconds, tasks, err = fullSyncBreakdown(ctx, w.h.temporal, run.GetID(), firstRun); err == nil && tasks > 0 {
		res.DispatchedTasks = tasks
		res.DispatchPerTaskMs = 1000 * res.BreakdownSeconds["dispatch"] / float64(tasks)
	}
	if err != nil {
		return nil, err
	}
	res.Remote = remoteState(w.target)
	return &progress, nil
}

// historyStats follows a workflow's continue-as-new chain and counts each run's events.
func historyStats(ctx context.Context, c client.Client, id, runID string) (*HistoryStats, error) {
	h := &HistoryStats{}
	for runID != "" {
		it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		n, next := 0, ""
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return nil, fmt.Errorf("history of %s: %w", id, err)
			}
			n++
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		h.Runs++
		h.MaxEvents = max(h.MaxEvents, n)
		h.TotalEvents += n
		runID = next
	}
	return h, nil
}

// remoteState counts what the target holds.
func remoteState(t *scimtest.Server) RemoteState {
	users, groups := t.Len()
	members := 0
	for _, g := range t.Groups() {
		if ms, ok := g["members"].([]any); ok {
			members += len(ms)
		}
	}
	return RemoteState{Users: users, Groups: groups, Members: members}
}

// changeScenario writes Changes single-user changes to the directory, one by one, each
// after the previous one arrived at the target, and measures change-to-remote latency:
// from just before the UPDATE is sent to the moment the target holds the new value
// (polled every millisecond). The change feed carries them: outbox trigger, NOTIFY, relay,
// SignalWithStart of the user's ObjectSync, its activities, one PATCH.
func (w *world) changeScenario(ctx context.Context, round int) (*Result, error) {
	cfg := w.h.cfg
	n := cfg.Changes
	res := &Result{Scenario: "S4", Round: round, Description: describe("S4", cfg), Users: w.opts.users,
		Groups: w.opts.groups, Memberships: w.memberships, Objects: n}
	label := fmt.Sprintf("S4-r%d", round)
	cfg.logf("%s: %d single-user changes", label, n)
	s, err := w.begin(ctx, label)
	if err != nil {
		return nil, err
	}
	step := max(w.opts.users/n, 1)
	var lat []time.Duration
	var arrived []change
	start := time.Now()
	for i := range n {
		idx := 1 + i*step
		name := fmt.Sprintf("Changed%d Round%d User%d", i, round, idx)
		t0 := time.Now()
		if _, err := w.store.DB().ExecContext(ctx,
			`UPDATE users SET name = $1, updated_at = now() WHERE id = md5('bench-user-' || $2::int)::uuid`, name, idx); err != nil {
			s.abort()
			return nil, err
		}
		if d, ok := w.waitRemote(ctx, userName(idx), name, t0); ok {
			lat = append(lat, d)
			arrived = append(arrived, change{userID: benchUserID(idx), sent: t0, latency: d})
		}
		if i < n-1 {
			time.Sleep(cfg.ChangeGap)
		}
	}
	res.WallSeconds = time.Since(start).Seconds()
	// The ObjectSync workflows complete just after their PATCH; count them in.
	w.settle(ctx, s.metrics, workflows.ObjectSyncWorkflow, n)
	if err := w.end(ctx, s, res); err != nil {
		return nil, err
	}
	res.Latency = latencyStats(lat)
	res.Latency.Arrived = len(lat)
	if res.Latency.BreakdownMs, err = w.latencyBreakdown(ctx, arrived); err != nil {
		return nil, err
	}
	if len(lat) != n {
		res.fail("%d of %d changes arrived within %s", len(lat), n, changeTimeout)
	}
	res.Remote = remoteState(w.target)
	cfg.logf("%s: latency p50 %.0f ms, p95 %.0f ms, max %.0f ms; %d of %d arrived", label,
		res.Latency.P50Ms, res.Latency.P95Ms, res.Latency.MaxMs, len(lat), n)
	return res, nil
}

const changeTimeout = 30 * time.Second

// waitRemote polls the target until user userName has displayName name.
func (w *world) waitRemote(ctx context.Context, userName, name string, t0 time.Time) (time.Duration, bool) {
	for {
		if u, ok := w.target.UserByName(userName); ok && u["displayName"] == name {
			return time.Since(t0), true
		}
		if time.Since(t0) > changeTimeout || ctx.Err() != nil {
			return 0, false
		}
		time.Sleep(time.Millisecond)
	}
}

// settle waits (up to 15 s) until the worker has completed n more workflows of type wf.
func (w *world) settle(ctx context.Context, before metricSet, wf string, n int) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m, err := scrapeMetrics(ctx, w.workerURL+"/metrics")
		if err != nil {
			return
		}
		d := m.sub(before)
		done := d.byLabel("temporal_workflow_completed_total", "workflow_type")[wf] +
			d.byLabel("temporal_workflow_completed", "workflow_type")[wf]
		if done >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func latencyStats(lat []time.Duration) *LatencyStats {
	if len(lat) == 0 {
		return &LatencyStats{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	pct := func(p float64) float64 {
		// nearest rank
		i := int(p*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	return &LatencyStats{P50Ms: pct(0.50), P95Ms: pct(0.95), MaxMs: ms(s[len(s)-1]), MinMs: ms(s[0])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func describe(id string, cfg Config) string {
	switch id {
	case "S1":
		return "initial full sync, target without Bulk"
	case "S2":
		return fmt.Sprintf("initial full sync, target with Bulk (maxOperations %d)", cfg.BulkMaxOperations)
	case "S3":
		return "second full sync, nothing changed"
	case "S4":
		return fmt.Sprintf("%d single-user changes, one by one: change-to-remote latency", cfg.Changes)
	case "S5":
		return fmt.Sprintf("S1 with %s of target latency per request", cfg.Latency)
	case "S6":
		return "initial full sync at scale, target without Bulk"
	case "S8":
		return fmt.Sprintf("after S1: %d users edited, %d deleted, %d memberships removed, %d strangers added to groups, %d orphan users at the target; one full sync reading it back",
			s8Edited, s8Deleted, s8MembersRemoved, s8Strangers, s8Orphans)
	}
	for _, sc := range pacingScenarios {
		if sc.name != id {
			continue
		}
		bulk, limit := "without Bulk", fmt.Sprintf("the provider configured with it (%.0f/min, burst %d)", cfg.S7Rate*60, cfg.S7Burst)
		if sc.bulk {
			bulk = fmt.Sprintf("with Bulk (maxOperations %d)", cfg.BulkMaxOperations)
		}
		if sc.learn {
			limit = "nothing configured: learned from the 429s"
		}
		return fmt.Sprintf("initial full sync, %d worker(s), target %s limited to %.0f requests/s (burst %d, 429 with Retry-After 1), %s",
			sc.workers, bulk, cfg.S7Rate, cfg.S7Burst, limit)
	}
	return ""
}

// benchUserID is the id seedDirectory gives user i: md5('bench-user-i') as a uuid.
func benchUserID(i int) string {
	h := hex.EncodeToString(func() []byte { s := md5.Sum([]byte(fmt.Sprintf("bench-user-%d", i))); return s[:] }())
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// change is one S4 change.
type change struct {
	userID  string
	sent    time.Time
	latency time.Duration
}
