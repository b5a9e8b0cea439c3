package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

const fullSyncHelp = `
Starts a full sync of a provider now by triggering its schedule
(scim-full-sync-INSTALLATION/PROVIDER, which the workers keep for every enabled provider).
The schedule never runs two full syncs of one provider at once: when one is already
running, nothing new starts (with --wait, that one is waited for).

--allow-deletions approves deprovisioning more objects than the provider's deprovision
threshold: the full sync (the one started, or the one running, which may be waiting for
that approval) is sent the approve-deletions signal with the number of objects approved.
It is the number the full sync waits to deprovision when it waits already (starter status
shows it), else the number of linked objects deleted or out of scope now, or the one
given with --deletions N. A full sync that finds more to deprovision than it was approved
for does not deprovision them: it waits for another approval, and starter status shows
both numbers. An approval sent before the full sync reaches its cleanup is kept until then.

--read-target makes the full sync read the target back and repair what differs from what
scimsync wrote, whatever the provider's reconcile_interval says (the next full sync does,
when one is running already).

--wait waits for the full sync to finish, printing its progress (the workflow's progress
query) and the final counts; the exit code is then 1 when it failed or objects failed.
`

// fullSyncFlags are the flags of starter full-sync.
type fullSyncFlags struct {
	provider                                 string
	wait, allowDeletions, asJSON, readTarget bool
	deletions                                int
	timeout                                  time.Duration
}

// fullSyncCommand declares `starter full-sync`.
func fullSyncCommand(cl *cmdLine) runFunc {
	cl.describe("full-sync [--provider P] [--read-target] [--wait] [--allow-deletions [--deletions N]] [--timeout D] [--json]", fullSyncHelp, 0, 0)
	var f fullSyncFlags
	cl.flags.IntVar(&f.deletions, "deletions", 0, "with --allow-deletions, approve deprovisioning at most this many objects (default: what the full sync waits for, else the objects stale now)")
	cl.flags.BoolVar(&f.readTarget, "read-target", false, "read the target back and repair what differs, whatever reconcile_interval says")
	cl.providerFlag(&f.provider, "the provider")
	cl.flags.BoolVar(&f.wait, "wait", false, "wait for the full sync to finish, printing its progress")
	cl.flags.BoolVar(&f.allowDeletions, "allow-deletions", false, "approve deprovisioning beyond the provider's deprovision threshold")
	cl.flags.DurationVar(&f.timeout, "timeout", 0, "with --wait, stop waiting after this long (0: no limit)")
	cl.flags.BoolVar(&f.asJSON, "json", false, "print the outcome as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return FullSync(ctx, d, cl, f, stdout, stderr)
	}
}

// FullSync is `starter full-sync`.
func FullSync(ctx context.Context, d *Deps, cl *cmdLine, f fullSyncFlags, stdout, stderr io.Writer) int {
	wait, allowDeletions, asJSON, readTarget := f.wait, f.allowDeletions, f.asJSON, f.readTarget
	deletions, timeout, providerName := f.deletions, f.timeout, f.provider
	if deletions < 0 || (deletions > 0 && !allowDeletions) {
		return cl.usageError(stderr, "--deletions N takes a positive N, with --allow-deletions")
	}
	sess := newSession(d, cl.cfg, stderr)
	defer sess.close()
	st, p, err := sess.provider(ctx, providerName)
	if err != nil {
		return exitCode(stderr, "full-sync", err)
	}
	provider := p.Name
	if !p.Enabled {
		return exitCode(stderr, "full-sync", fmt.Errorf("provider %s is disabled: it has no full-sync schedule; enable it first", provider))
	}
	c, err := sess.temporal(ctx)
	if err != nil {
		return exitCode(stderr, "full-sync", err)
	}
	out := stdout
	if asJSON {
		out = io.Discard
	}
	if readTarget {
		if err := st.RequestReadBack(ctx, p.ID); err != nil {
			return exitCode(stderr, "full-sync", err)
		}
	}
	inst, err := sess.installation(ctx)
	if err != nil {
		return exitCode(stderr, "full-sync", err)
	}
	wid, started, err := triggerFullSync(ctx, c, inst, provider)
	if err != nil {
		return exitCode(stderr, "full-sync", err)
	}
	if started {
		fmt.Fprintf(out, "full sync of %s started: workflow %s\n", provider, wid)
	} else {
		fmt.Fprintf(out, "a full sync of %s is already running: workflow %s; not starting another\n", provider, wid)
		if readTarget {
			fmt.Fprintf(out, "the read-back asked for happens at the next full sync of %s\n", provider)
		}
	}
	approved := 0
	if allowDeletions {
		n, why, err := deletionsToApprove(ctx, c, st, p, wid, deletions)
		if err != nil {
			return exitCode(stderr, "full-sync", err)
		}
		if n == 0 {
			fmt.Fprintf(out, "nothing to approve: no linked object is deleted or out of scope now; should the full sync find "+
				"more to deprovision than the threshold, it waits for approval (starter status shows how many)\n")
		} else {
			if err := c.SignalWorkflow(ctx, wid, "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: n}); err != nil {
				return exitCode(stderr, "full-sync", fmt.Errorf("approve deletions of %s: %w", wid, err))
			}
			approved = n
			fmt.Fprintf(out, "deprovisioning of up to %d objects approved (signal %s): %s\n", n, workflows.SignalApproveDeletions, why)
		}
	}
	if !wait {
		if asJSON {
			res := map[string]any{"workflowId": wid, "started": started}
			if allowDeletions {
				res["approvedDeletions"] = approved
			}
			writeJSON(stdout, res)
		}
		return ExitOK
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res := waitFullSync(ctx, c, wid, d.pollInterval(), out)
	res.Started, res.ApprovedDeletions = started, approved
	if asJSON {
		writeJSON(stdout, res)
	}
	switch {
	case res.Status != "completed":
		return ExitFailure
	case res.Progress.Users.Failed+res.Progress.Groups.Failed > 0:
		fmt.Fprintf(out, "%d objects failed; starter status --provider %s shows why\n",
			res.Progress.Users.Failed+res.Progress.Groups.Failed, provider)
		return ExitFailure
	}
	return ExitOK
}

// deletionsToApprove says how many deprovisionings --allow-deletions approves, and why:
// the count given (--deletions), else the count the full sync wid waits for when it
// waits, else the linked objects that are deleted or out of scope now. The full sync
// deprovisions no more than that: should it find more, it waits for another approval.
func deletionsToApprove(ctx context.Context, c client.Client, st *store.Store, p store.Provider, wid string, given int) (int, string, error) {
	if given > 0 {
		return given, "as given (--deletions)", nil
	}
	if prog, ok := queryProgress(ctx, c, wid); ok && prog.Phase == workflows.PhaseAwaitApproval && prog.PendingDeletions > 0 {
		return prog.PendingDeletions, fmt.Sprintf("the %d the full sync waits to deprovision", prog.PendingDeletions), nil
	}
	users, groups, err := st.CountStaleLinks(ctx, p.ID)
	if err != nil {
		return 0, "", fmt.Errorf("count the objects to deprovision: %w", err)
	}
	due := 0
	if p.DeprovisionAction == store.DeprovisionDeactivateThenDelete {
		if due, err = st.CountDueDeletions(ctx, p.ID); err != nil {
			return 0, "", fmt.Errorf("count the deletions due: %w", err)
		}
	}
	dueNote := ""
	if due > 0 {
		dueNote = fmt.Sprintf(", and the %d deactivated users whose grace period has passed", due)
	}
	return users + groups + due, fmt.Sprintf("the %d users and %d groups deleted or out of scope now%s; should the full sync find "+
		"more to deprovision, it waits for approval (starter status shows how many)", users, groups, dueNote), nil
}

// triggerSkipGrace is how long a triggered schedule may take to start its full sync before
// the trigger is taken for skipped.
const triggerSkipGrace = 5 * time.Second

// triggerFullSync triggers the provider's schedule unless a full sync is running, and
// returns the workflow ID of the full sync that runs (or ran) as a result.
func triggerFullSync(ctx context.Context, c client.Client, inst workflows.Installation, provider string) (wid string, started bool, err error) {
	id := workflows.FullSyncScheduleID(inst, provider)
	h := c.ScheduleClient().GetHandle(ctx, id)
	desc, err := h.Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return "", false, fmt.Errorf("provider %s has no full-sync schedule (%s) yet: a worker creates one for every enabled provider within its schedule interval; is a worker running?", provider, id)
	}
	if err != nil {
		return "", false, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	if n := len(desc.Info.RunningWorkflows); n > 0 {
		return desc.Info.RunningWorkflows[n-1].WorkflowID, false, nil
	}
	seen := map[string]bool{}
	for _, a := range desc.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			seen[a.StartWorkflowResult.WorkflowID] = true
		}
	}
	trigger := func(overlap enumspb.ScheduleOverlapPolicy) error {
		if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: overlap}); err != nil {
			return fmt.Errorf("trigger schedule %s: %w", id, err)
		}
		return nil
	}
	if err := trigger(enumspb.SCHEDULE_OVERLAP_POLICY_SKIP); err != nil {
		return "", false, err
	}
	start := time.Now()
	deadline, retried := start.Add(30*time.Second), false
	for {
		desc, err := h.Describe(ctx)
		if err != nil {
			return "", false, fmt.Errorf("describe schedule %s: %w", id, err)
		}
		for _, r := range desc.Info.RunningWorkflows {
			if !seen[r.WorkflowID] {
				return r.WorkflowID, true, nil
			}
		}
		for i := len(desc.Info.RecentActions) - 1; i >= 0; i-- {
			if r := desc.Info.RecentActions[i].StartWorkflowResult; r != nil && !seen[r.WorkflowID] {
				return r.WorkflowID, true, nil
			}
		}
		if !retried && len(desc.Info.RunningWorkflows) == 0 && time.Since(start) > triggerSkipGrace {
			// The schedule skipped the trigger: it still counted a full sync that had just
			// ended as running (Describe already leaves closed runs out). Nothing runs, so
			// trigger again without the overlap check.
			retried = true
			if err := trigger(enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL); err != nil {
				return "", false, err
			}
		}
		if time.Now().After(deadline) {
			var running []string
			for _, r := range desc.Info.RunningWorkflows {
				running = append(running, r.WorkflowID)
			}
			return "", false, fmt.Errorf("schedule %s was triggered but started no full sync within 30s (running: %v, recent actions: %d, triggered again: %v)",
				id, running, len(desc.Info.RecentActions), retried)
		}
		select {
		case <-ctx.Done():
			return "", false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fullSyncResult is the outcome of a waited-for full sync, also its --json output.
type fullSyncResult struct {
	WorkflowID string `json:"workflowId"`
	Started    bool   `json:"started"`
	// ApprovedDeletions is the count --allow-deletions approved.
	ApprovedDeletions int                        `json:"approvedDeletions,omitempty"`
	Status            string                     `json:"status"` // completed, failed, or waiting (stopped waiting)
	Error             string                     `json:"error,omitempty"`
	Duration          string                     `json:"duration"`
	Progress          workflows.FullSyncProgress `json:"progress"`
}

// waitFullSync waits for the full sync wid, printing its progress whenever it changes.
func waitFullSync(ctx context.Context, c client.Client, wid string, poll time.Duration, out io.Writer) fullSyncResult {
	res := fullSyncResult{WorkflowID: wid}
	start := time.Now()
	run := c.GetWorkflow(ctx, wid, "")
	done := make(chan error, 1)
	var final workflows.FullSyncProgress
	go func() { done <- run.Get(ctx, &final) }()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last := ""
	for {
		select {
		case err := <-done:
			res.Duration = time.Since(start).Round(time.Millisecond).String()
			if err != nil {
				if stoppedWaiting(ctx, err) {
					res.Status = "waiting"
					fmt.Fprintf(out, "stopped waiting after %s; the full sync goes on: %s\n", res.Duration, wid)
					return res
				}
				res.Status, res.Error = "failed", workflowMessage(err)
				if p, ok := queryProgress(context.WithoutCancel(ctx), c, wid); ok {
					res.Progress = p
				}
				fmt.Fprintf(out, "full sync %s failed after %s: %s\n", wid, res.Duration, res.Error)
				printCounts(out, res.Progress)
				return res
			}
			res.Status, res.Progress = "completed", final
			fmt.Fprintf(out, "full sync %s completed in %s\n", wid, res.Duration)
			printCounts(out, final)
			return res
		case <-tick.C:
			if p, ok := queryProgress(ctx, c, wid); ok {
				if line := progressLine(p); line != last {
					fmt.Fprintf(out, "progress: %s\n", line)
					last = line
				}
			}
		}
	}
}

func queryProgress(ctx context.Context, c client.Client, wid string) (workflows.FullSyncProgress, bool) {
	var p workflows.FullSyncProgress
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, wid, "", workflows.QueryProgress)
	if err != nil || v.Get(&p) != nil {
		return p, false
	}
	return p, true
}

func progressLine(p workflows.FullSyncProgress) string {
	s := fmt.Sprintf("phase %s, batches %d of %d done; users %s; groups %s", p.Phase, p.BatchesDone, p.BatchesTotal,
		countsLine(p.Users), countsLine(p.Groups))
	switch {
	case p.PendingDeletions > 0 && p.ApprovedDeletions > 0:
		s += fmt.Sprintf("; waiting for approval to deprovision %d objects (starter full-sync --allow-deletions); approved for %d only",
			p.PendingDeletions, p.ApprovedDeletions)
	case p.PendingDeletions > 0:
		s += fmt.Sprintf("; waiting for approval to deprovision %d objects (starter full-sync --allow-deletions)", p.PendingDeletions)
	case p.ApprovedDeletions > 0:
		s += fmt.Sprintf("; deprovisioning of up to %d objects approved", p.ApprovedDeletions)
	}
	if rb := p.ReadBack; rb != nil {
		s += fmt.Sprintf("; read-back: %d users and %d groups read", rb.UsersRead, rb.GroupsRead)
		if rb.Reading != "" {
			s += fmt.Sprintf(", reading %ss", rb.Reading)
		}
		s += fmt.Sprintf(", %d users and %d groups repaired", p.Users.Repaired, p.Groups.Repaired)
	}
	if pc := p.Pacing; pc != nil {
		s += fmt.Sprintf("; target written at %s", perMinute(pc.SentPerMinute))
		if pc.AllowedPerMinute > 0 {
			s += " (paced at " + perMinute(pc.AllowedPerMinute) + ")"
		}
		if pc.PausedUntil != nil && pc.PausedUntil.After(pc.At) {
			s += fmt.Sprintf("; PAUSED by the target until %s (%s)", pc.PausedUntil.UTC().Format(time.RFC3339), pc.PauseCause)
		}
	}
	return s
}

func countsLine(c workflows.Counts) string {
	s := fmt.Sprintf("%d created, %d updated, %d unchanged, %d skipped, %d failed, %d deprovisioned",
		c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed, c.Deprovisioned)
	if c.Repaired > 0 {
		s += fmt.Sprintf(", %d repaired", c.Repaired)
	}
	return s
}

func printCounts(out io.Writer, p workflows.FullSyncProgress) {
	fmt.Fprintf(out, "  users:  %s\n", countsLine(p.Users))
	fmt.Fprintf(out, "  groups: %s\n", countsLine(p.Groups))
}

// stoppedWaiting reports whether err ended the wait rather than the full sync: the caller's
// context ended, or the server gave up on the propagated deadline a moment before it did.
func stoppedWaiting(ctx context.Context, err error) bool {
	var deadline *serviceerror.DeadlineExceeded
	var canceled *serviceerror.Canceled
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &deadline) || errors.As(err, &canceled)
}
