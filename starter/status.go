package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

const statusHelp = `
Shows the installation: its id, which scopes its workflow IDs, schedule IDs and default task
queue in the Temporal namespace (other installations may share it), and the task queue.
Then, per provider: whether it is enabled, its target (and whether it fails every request
now, since when), its full-sync schedule (interval,
last run with its result, next run), the full syncs running now with their progress, its
pacing (the configured or learned rate every worker shares, the rate it is written at, and
a pause the target asked for, until when), how many users and groups are linked, the
direct deprovisions held past the deprovision threshold (they wait for a full sync and its
approval), with deprovision action deactivate_then_delete the deactivated users waiting
for their deletion (how many, how many are due, the next ones with their dates), and the
objects whose last sync failed with the reason.
Then the change outbox: how many directory changes wait for the relay, and the oldest's age;
and the parked changes, which Temporal refused permanently: how many, how long the longest
parked has been, and the longest parked ones (id, what changed, the provider whose call was
refused, attempts, the refusal), to put back or drop with starter outbox retry|drop.

The database parts are shown even when Temporal cannot be reached (exit code 1 then).
`

type providerStatus struct {
	Name          string          `json:"name"`
	Enabled       bool            `json:"enabled"`
	BaseURL       string          `json:"baseUrl"`
	Mode          string          `json:"compatibilityMode"`
	DryRun        bool            `json:"dryRun"`
	Schedule      *scheduleStatus `json:"schedule,omitempty"`
	ScheduleError string          `json:"scheduleError,omitempty"`
	Running       []runStatus     `json:"running"`
	LinkedUsers   int             `json:"linkedUsers"`
	LinkedGroups  int             `json:"linkedGroups"`
	ErrorCount    int             `json:"errorCount"`
	Errors        []objectError   `json:"errors"`
	Pacing        pacingStatus    `json:"pacing"`
	ReadBack      readBackStatus  `json:"readBack"`
	// HeldDeprovisions counts direct deprovisions held past the threshold, waiting for a
	// full sync (and its approval) since HeldSince.
	// TargetFailing is set while the target fails every request (no answer, 408, 5xx):
	// syncs retry until it answers.
	TargetFailing *targetFailing `json:"targetFailing,omitempty"`
	// Quarantine is set while most of the provider's writes fail (store/quarantine.go).
	Quarantine       *quarantineStatus `json:"quarantine,omitempty"`
	HeldDeprovisions int               `json:"heldDeprovisions"`
	HeldSince        *time.Time        `json:"heldSince,omitempty"`
	Threshold        int               `json:"deprovisionThreshold"`
	// PendingDeletions, with deprovision action deactivate_then_delete: the deactivated
	// users waiting for their deletion.
	PendingDeletions *pendingDeletions `json:"pendingDeletions,omitempty"`
}

// readBackStatus is the provider's reading back of its target: the last one, and when the
// next is due.
type readBackStatus struct {
	Interval  string                      `json:"interval"` // reconcile_interval; "0s": only when asked
	Last      *activities.ReadBackFigures `json:"last,omitempty"`
	Requested bool                        `json:"requested,omitempty"`
	NextDue   *time.Time                  `json:"nextDue,omitempty"`
}

type quarantineStatus struct {
	Since time.Time `json:"since"`
	Error string    `json:"error"` // the most frequent error of its recent writes
}

type targetFailing struct {
	Since       time.Time `json:"since"`
	LastFailure time.Time `json:"lastFailure"`
	LastError   string    `json:"lastError"`
	Failures    int64     `json:"failures"`
}

type scheduleStatus struct {
	ID       string     `json:"id"`
	Interval string     `json:"interval"`
	Paused   bool       `json:"paused"`
	Note     string     `json:"note,omitempty"`
	LastRun  *runStatus `json:"lastRun,omitempty"`
	NextRun  *time.Time `json:"nextRun,omitempty"`
}

type runStatus struct {
	WorkflowID string                      `json:"workflowId"`
	Status     string                      `json:"status"`
	StartedAt  time.Time                   `json:"startedAt"`
	ClosedAt   *time.Time                  `json:"closedAt,omitempty"`
	Error      string                      `json:"error,omitempty"`
	Progress   *workflows.FullSyncProgress `json:"progress,omitempty"`
}

type objectError struct {
	Kind  string    `json:"kind"`
	ID    string    `json:"id"`
	Name  string    `json:"name"` // username or group name; "" when deleted
	Error string    `json:"error"`
	Since time.Time `json:"since"`
	// Attempts counts the failed writes in a row; NextAttempt is when the escrow retries
	// the object (nil: with the next full sync).
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"nextAttempt,omitempty"`
}

// installationStatus is the installation the database belongs to.
type installationStatus struct {
	// ID is the short form in every workflow ID, schedule ID and the default task queue.
	ID        string    `json:"id"`
	UUID      string    `json:"uuid"`
	CreatedAt time.Time `json:"createdAt"`
	// TaskQueue is the workers' task queue as the starter is configured: SCIMSYNC_TASK_QUEUE,
	// else the installation's default.
	TaskQueue string `json:"taskQueue"`
}

type statusResult struct {
	Installation  installationStatus `json:"installation"`
	Providers     []providerStatus   `json:"providers"`
	OutboxWaiting int                `json:"outboxWaiting"`
	OutboxOldest  string             `json:"outboxOldest"`
	ParkedCount   int                `json:"parkedCount"`
	ParkedOldest  string             `json:"parkedOldest"` // how long the longest parked change has been parked
	Parked        []parkedView       `json:"parked"`       // the longest parked first, at most --parked
	TemporalError string             `json:"temporalError,omitempty"`
}

// statusFlags are the flags of starter status.
type statusFlags struct {
	provider             string
	maxErrors, maxParked int
	asJSON               bool
}

// statusCommand declares `starter status`.
func statusCommand(cl *cmdLine) runFunc {
	cl.describe("status [--provider P] [--errors N] [--parked N] [--json]", statusHelp, 0, 0)
	var f statusFlags
	cl.flags.StringVar(&f.provider, "provider", "", "show only this provider")
	cl.flags.IntVar(&f.maxErrors, "errors", 10, "show at most this many objects in error per provider")
	cl.flags.IntVar(&f.maxParked, "parked", 10, "show at most this many parked changes (all: starter outbox list)")
	cl.flags.BoolVar(&f.asJSON, "json", false, "print the status as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return Status(ctx, d, cl, f, stdout, stderr)
	}
}

// Status is `starter status`.
func Status(ctx context.Context, d *Deps, cl *cmdLine, f statusFlags, stdout, stderr io.Writer) int {
	provider, maxErrors, maxParked, asJSON := f.provider, f.maxErrors, f.maxParked, f.asJSON
	sess, st, code := cl.openStore(ctx, d, stderr)
	if code >= 0 {
		return code
	}
	defer sess.close()
	var ps []store.Provider
	var err error
	if provider != "" {
		_, p, err := sess.provider(ctx, provider)
		if err != nil {
			return exitCode(stderr, "status", err)
		}
		ps = []store.Provider{p}
	} else if ps, err = st.Providers(ctx); err != nil {
		return exitCode(stderr, "status", err)
	}

	installation, err := st.Installation(ctx)
	if err != nil {
		return exitCode(stderr, "status", err)
	}
	inst, err := workflows.NewInstallation(installation.ID)
	if err != nil {
		return exitCode(stderr, "status", err)
	}
	res := statusResult{Providers: []providerStatus{}, Installation: installationStatus{ID: string(inst),
		UUID: installation.ID, CreatedAt: installation.CreatedAt, TaskQueue: sess.taskQueue(inst)}}
	c, terr := sess.temporal(ctx)
	if terr != nil {
		res.TemporalError = terr.Error()
	}
	for _, p := range ps {
		ps, err := providerState(ctx, st, p, maxErrors)
		if err != nil {
			return exitCode(stderr, "status", err)
		}
		if c != nil {
			temporalState(ctx, c, cl.cfg.TemporalNamespace, inst, p, &ps)
		} else {
			ps.ScheduleError = "Temporal unreachable"
		}
		res.Providers = append(res.Providers, ps)
	}
	n, oldest, err := st.OutboxLag(ctx)
	if err != nil {
		return exitCode(stderr, "status", err)
	}
	res.OutboxWaiting, res.OutboxOldest = n, oldest.Round(time.Millisecond).String()
	n, oldest, err = st.ParkedLag(ctx)
	if err != nil {
		return exitCode(stderr, "status", err)
	}
	res.ParkedCount, res.ParkedOldest, res.Parked = n, oldest.Round(time.Second).String(), []parkedView{}
	if n > 0 && maxParked > 0 {
		ps, err := st.ParkedChanges(ctx, maxParked)
		if err != nil {
			return exitCode(stderr, "status", err)
		}
		res.Parked = viewParked(ps)
	}

	if asJSON {
		writeJSON(stdout, res)
	} else {
		printStatus(stdout, res, time.Now())
	}
	if terr != nil {
		fmt.Fprintf(stderr, "starter status: schedules and running syncs are unknown: %v\n", terr)
		return ExitFailure
	}
	return ExitOK
}

// providerState fills what the database knows of a provider.
func providerState(ctx context.Context, st *store.Store, p store.Provider, maxErrors int) (providerStatus, error) {
	ps := providerStatus{Name: p.Name, Enabled: p.Enabled, BaseURL: p.BaseURL, Mode: p.CompatibilityMode, DryRun: p.DryRun,
		Running: []runStatus{}, Errors: []objectError{}}
	counts, err := st.CountLinks(ctx, p.ID)
	if err != nil {
		return ps, err
	}
	ps.LinkedUsers, ps.LinkedGroups, ps.ErrorCount = counts.Users, counts.Groups, counts.UserErrors+counts.GroupErrors
	if ps.Pacing, err = providerPacing(ctx, st, p); err != nil {
		return ps, err
	}
	if ps.ReadBack, err = providerReadBack(ctx, st, p); err != nil {
		return ps, err
	}
	health, dbNow, err := st.TargetHealthOf(ctx, p.ID)
	if err != nil {
		return ps, err
	}
	if health.Failing(dbNow) {
		// Shown on the caller's clock, like every other time of status.
		skew := time.Since(dbNow)
		ps.TargetFailing = &targetFailing{Since: health.FailingSince.Add(skew), LastFailure: health.LastFailureAt.Add(skew),
			LastError: health.LastError, Failures: health.Failures}
	}
	if health.QuarantinedSince != nil {
		ps.Quarantine = &quarantineStatus{Since: *health.QuarantinedSince, Error: health.QuarantineError}
	}
	ps.Threshold = p.DeprovisionThreshold
	if ps.HeldDeprovisions, ps.HeldSince, err = st.HeldDeprovisions(ctx, p.ID); err != nil {
		return ps, err
	}
	if ps.PendingDeletions, err = providerPendingDeletions(ctx, st, p); err != nil {
		return ps, err
	}
	links, err := st.LinkErrors(ctx, p.ID, maxErrors)
	if err != nil {
		return ps, err
	}
	var userIDs, groupIDs []string
	for _, l := range links {
		if l.Kind == object.User {
			userIDs = append(userIDs, l.ObjectID)
		} else {
			groupIDs = append(groupIDs, l.ObjectID)
		}
	}
	names := map[string]string{}
	users, err := st.UsersByIDs(ctx, userIDs)
	if err != nil {
		return ps, err
	}
	for _, u := range users {
		names[u.ID] = u.Username
	}
	groups, err := st.GroupsByIDs(ctx, groupIDs)
	if err != nil {
		return ps, err
	}
	for _, g := range groups {
		names[g.ID] = g.Name
	}
	for _, l := range links {
		ps.Errors = append(ps.Errors, objectError{Kind: l.Kind, ID: l.ObjectID, Name: names[l.ObjectID], Error: l.LastError, Since: l.UpdatedAt,
			Attempts: l.Attempts, NextAttempt: l.NextAttemptAt})
	}
	return ps, nil
}

// temporalState fills the provider's schedule and running full syncs, those of the
// installation inst: another installation of the namespace may have a provider of that name.
func temporalState(ctx context.Context, c client.Client, namespace string, inst workflows.Installation, p store.Provider, ps *providerStatus) {
	id := workflows.FullSyncScheduleID(inst, p.Name)
	desc, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		if p.Enabled {
			ps.ScheduleError = "none yet: a running worker creates it within its schedule interval"
		} else {
			ps.ScheduleError = "none (the provider is disabled)"
		}
	case err != nil:
		ps.ScheduleError = err.Error()
	default:
		s := &scheduleStatus{ID: id}
		if spec := desc.Schedule.Spec; spec != nil && len(spec.Intervals) > 0 {
			s.Interval = spec.Intervals[0].Every.String()
		}
		if state := desc.Schedule.State; state != nil {
			s.Paused, s.Note = state.Paused, state.Note
		}
		if len(desc.Info.NextActionTimes) > 0 && !s.Paused {
			next := desc.Info.NextActionTimes[0]
			s.NextRun = &next
		}
		for i := len(desc.Info.RecentActions) - 1; i >= 0; i-- {
			if r := desc.Info.RecentActions[i].StartWorkflowResult; r != nil {
				s.LastRun = describeRun(ctx, c, r.WorkflowID)
				break
			}
		}
		ps.Schedule = s
	}

	running := map[string]bool{}
	if desc != nil {
		for _, r := range desc.Info.RunningWorkflows {
			running[r.WorkflowID] = true
		}
	}
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'",
		workflows.FullSyncWorkflow, workflows.ProviderAttribute.GetName(), p.Name)
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: query})
	if err == nil {
		for _, e := range resp.GetExecutions() {
			if wid := e.GetExecution().GetWorkflowId(); strings.HasPrefix(wid, workflows.FullSyncSchedulePrefix(inst)) {
				running[wid] = true
			}
		}
	}
	for wid := range running {
		if r := describeRun(ctx, c, wid); r != nil && r.Status == "running" {
			ps.Running = append(ps.Running, *r)
		}
	}
}

// describeRun describes the latest run of the full sync wid: its status, and its counts
// (from the result when it completed, from the progress query while it runs).
func describeRun(ctx context.Context, c client.Client, wid string) *runStatus {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
	if err != nil {
		return &runStatus{WorkflowID: wid, Status: "unknown", Error: err.Error()}
	}
	info := desc.GetWorkflowExecutionInfo()
	r := &runStatus{WorkflowID: wid, Status: statusName(info.GetStatus())}
	if t := info.GetStartTime(); t != nil {
		r.StartedAt = t.AsTime()
	}
	if t := info.GetCloseTime(); t != nil && info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		closed := t.AsTime()
		r.ClosedAt = &closed
	}
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		if p, ok := queryProgress(ctx, c, wid); ok {
			r.Progress = &p
		}
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var p workflows.FullSyncProgress
		if err := c.GetWorkflow(ctx, wid, "").Get(ctx, &p); err == nil {
			r.Progress = &p
		}
	default:
		if err := c.GetWorkflow(ctx, wid, "").Get(ctx, nil); err != nil {
			r.Error = workflowMessage(err)
		}
	}
	return r
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	name := strings.TrimPrefix(s.String(), "WorkflowExecutionStatus")
	name = strings.TrimPrefix(name, "WORKFLOW_EXECUTION_STATUS_")
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

func printStatus(w io.Writer, res statusResult, now time.Time) {
	fmt.Fprintf(w, "installation %s (task queue %s; created %s)\n", res.Installation.ID, res.Installation.TaskQueue,
		res.Installation.CreatedAt.UTC().Format(time.RFC3339))
	if len(res.Providers) == 0 {
		fmt.Fprintln(w, "no providers; add them with starter apply -f FILE")
	}
	for _, p := range res.Providers {
		state := "enabled"
		if !p.Enabled {
			state = "disabled"
		}
		fmt.Fprintf(w, "provider %s: %s\n", p.Name, state)
		fmt.Fprintf(w, "  %-10s %s (mode %s, dry run %s)\n", "target", p.BaseURL, p.Mode, map[bool]string{true: "on", false: "off"}[p.DryRun])
		if f := p.TargetFailing; f != nil {
			requests := "requests"
			if f.Failures == 1 {
				requests = "request"
			}
			fmt.Fprintf(w, "  %-10s FAILING since %s: %d %s failed, the last %s (%s); syncs wait for the target and retry\n",
				"", when(f.Since, now), f.Failures, requests, when(f.LastFailure, now), f.LastError)
		}
		if q := p.Quarantine; q != nil {
			fmt.Fprintf(w, "  %-10s QUARANTINED since %s: most writes fail (%s); retries and changes wait for full syncs, the first write that succeeds ends it\n",
				"", when(q.Since, now), q.Error)
		}
		if s := p.Schedule; s != nil {
			line := fmt.Sprintf("%s every %s", s.ID, s.Interval)
			if s.Paused {
				line += ", paused"
				if s.Note != "" {
					line += " (" + s.Note + ")"
				}
			}
			if s.NextRun != nil {
				line += "; next run " + when(*s.NextRun, now)
			}
			fmt.Fprintf(w, "  %-10s %s\n", "schedule", line)
			if r := s.LastRun; r != nil {
				fmt.Fprintf(w, "  %-10s %s\n", "last run", runLine(*r, now))
			} else {
				fmt.Fprintf(w, "  %-10s %s\n", "last run", "none yet")
			}
		} else {
			fmt.Fprintf(w, "  %-10s %s\n", "schedule", p.ScheduleError)
		}
		if len(p.Running) == 0 {
			fmt.Fprintf(w, "  %-10s %s\n", "running", "no full sync")
		}
		for _, r := range p.Running {
			line := fmt.Sprintf("%s since %s", r.WorkflowID, when(r.StartedAt, now))
			if r.Progress != nil {
				line += ": " + progressLine(*r.Progress)
			}
			if f := p.TargetFailing; f != nil {
				line += "; waiting for the target since " + when(f.Since, now)
			}
			fmt.Fprintf(w, "  %-10s %s\n", "running", line)
		}
		fmt.Fprintf(w, "  %-10s %s\n", "pacing", pacingLine(p.Pacing, now))
		fmt.Fprintf(w, "  %-10s %s\n", "read-back", readBackLine(p.ReadBack, now))
		fmt.Fprintf(w, "  %-10s %d users, %d groups\n", "linked", p.LinkedUsers, p.LinkedGroups)
		if p.HeldDeprovisions > 0 {
			since := ""
			if p.HeldSince != nil {
				since = " since " + when(*p.HeldSince, now)
			}
			fmt.Fprintf(w, "  %-10s %d direct deprovisions past the threshold of %d an hour%s; they wait for a full sync: "+
				"starter full-sync --provider %s --allow-deletions\n", "held", p.HeldDeprovisions, p.Threshold, since, p.Name)
		}
		if p.PendingDeletions != nil {
			fmt.Fprintf(w, "  %-10s %s\n", "deletions", pendingDeletionsLine(*p.PendingDeletions, now))
		}
		switch p.ErrorCount {
		case 0:
			fmt.Fprintf(w, "  %-10s none\n", "errors")
		case 1:
			fmt.Fprintf(w, "  %-10s 1 object in error:\n", "errors")
		default:
			fmt.Fprintf(w, "  %-10s %d objects in error (latest first):\n", "errors", p.ErrorCount)
		}
		for _, e := range p.Errors {
			name := e.Name
			if name == "" {
				name = e.ID + " (deleted)"
			}
			next := "next retry with the next full sync"
			if e.NextAttempt != nil && p.Quarantine == nil {
				next = "next retry " + when(*e.NextAttempt, now)
			}
			fmt.Fprintf(w, "  %-10s   %s %s: %s; since %s; %d failed %s, %s\n", "", e.Kind, name, e.Error, when(e.Since, now),
				e.Attempts, plural(e.Attempts, "attempt", "attempts"), next)
		}
		if p.ErrorCount > len(p.Errors) {
			fmt.Fprintf(w, "  %-10s   … and %d more (--errors N)\n", "", p.ErrorCount-len(p.Errors))
		}
	}
	oldest := ""
	if res.OutboxWaiting > 0 {
		oldest = ", oldest " + res.OutboxOldest + " old"
	}
	fmt.Fprintf(w, "outbox: %d changes waiting for the relay%s\n", res.OutboxWaiting, oldest)
	if res.ParkedCount == 0 {
		fmt.Fprintln(w, "parked: none")
		return
	}
	fmt.Fprintf(w, "parked: %d %s Temporal refused, the longest parked %s ago (starter outbox retry|drop ID|--all)\n",
		res.ParkedCount, plural(res.ParkedCount, "change", "changes"), res.ParkedOldest)
	for _, v := range res.Parked {
		fmt.Fprintf(w, "  %s\n", parkedLine(v, now))
	}
	if res.ParkedCount > len(res.Parked) {
		fmt.Fprintf(w, "  … and %d more (starter outbox list)\n", res.ParkedCount-len(res.Parked))
	}
}

func runLine(r runStatus, now time.Time) string {
	line := fmt.Sprintf("%s %s", r.WorkflowID, r.Status)
	switch {
	case r.ClosedAt != nil:
		line += " " + when(*r.ClosedAt, now)
	case !r.StartedAt.IsZero():
		line += " since " + when(r.StartedAt, now)
	}
	if r.Error != "" {
		line += ": " + r.Error
	}
	if r.Progress != nil && r.Status == "completed" {
		line += fmt.Sprintf("; users %s; groups %s", countsLine(r.Progress.Users), countsLine(r.Progress.Groups))
	}
	return line
}

// when formats a time with its distance from now.
func when(t, now time.Time) string {
	d := now.Sub(t)
	rel := ""
	switch {
	case d >= 0:
		rel = d.Round(time.Second).String() + " ago"
	default:
		rel = "in " + (-d).Round(time.Second).String()
	}
	return t.UTC().Format(time.RFC3339) + " (" + rel + ")"
}

// providerReadBack reads the provider's last read-back and when the next is due.
func providerReadBack(ctx context.Context, st *store.Store, p store.Provider) (readBackStatus, error) {
	rs := readBackStatus{Interval: p.ReconcileInterval.String()}
	var err error
	if rs.Requested, err = st.ReadBackRequested(ctx, p.ID); err != nil {
		return rs, err
	}
	last, ok, err := st.LastReadBack(ctx, p.ID)
	if err != nil || !ok {
		return rs, err
	}
	var f activities.ReadBackFigures
	if err := json.Unmarshal(last.Figures, &f); err != nil {
		return rs, fmt.Errorf("read-back %s: figures: %w", last.ID, err)
	}
	f.FinishedAt = *last.FinishedAt
	rs.Last = &f
	if p.ReconcileInterval > 0 {
		due := last.FinishedAt.Add(p.ReconcileInterval)
		rs.NextDue = &due
	}
	return rs, nil
}

// readBackLine says in one line what the last read-back found and when the next is.
func readBackLine(rs readBackStatus, now time.Time) string {
	next := ""
	switch {
	case rs.Requested:
		next = "asked for: the next full sync reads the target back"
	case rs.Interval == "0s":
		next = "only when asked (reconcile_interval 0: starter full-sync --read-target)"
	case rs.NextDue != nil:
		next = "next with the first full sync after " + when(*rs.NextDue, now)
	default:
		next = "none yet: the next full sync reads the target back"
	}
	f := rs.Last
	if f == nil {
		return next
	}
	line := fmt.Sprintf("last %s: %d users and %d groups read, %d users and %d groups repaired",
		when(f.FinishedAt, now), f.UsersRead, f.GroupsRead, f.RepairedUsers, f.RepairedGroups)
	for _, o := range []struct {
		kind string
		c    activities.OrphanCounts
	}{{"users", f.UserOrphans}, {"groups", f.GroupOrphans}} {
		if o.c.Total() > 0 {
			line += fmt.Sprintf("; orphan %s %d (%d ours, %d known, %d strangers; %d deprovisioned)",
				o.kind, o.c.Total(), o.c.Ours, o.c.Known, o.c.Strangers, o.c.Deleted)
		}
	}
	if f.MembersNotObservable {
		line += "; group members not observable"
	}
	if len(f.NotListable) > 0 {
		line += "; not listable: " + strings.Join(f.NotListable, ", ") + " (read one by one, orphans unseen)"
	}
	return line + "; " + next
}
