package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
)

const historyHelp = `
Shows one user's or group's past syncs at a provider, newest first, as Temporal recorded
them: its own syncs (ObjectSync, every run of its workflow ID) and the full syncs' batches
that held it (SyncBatch, found by the range of object ids they carry). For each sync:

  TIME      when it began
  TRIGGER   directory-change (the change feed relayed a change; REASONS says which),
            full-sync (a batch of the full sync named in --json), operator (starter sync
            --via-temporal), member-sync (a member's sync made its group sync), continued
            (the first round of a run that continued as new)
  ACTION    created, updated, repaired, members (a group's members brought up to date),
            unchanged, skipped, deactivated, deleted, unlinked (its link forgotten: nothing
            at the target to deprovision), held (a deprovision held past the threshold),
            gone (deleted or out of scope, never at the target), failed, pending (running);
            written: by a worker that recorded no per-object outcome
  REQUESTS  the SCIM requests sent for the object: method, path with the remote id, status
            (bulk: an operation of a POST /Bulk); never bodies. Those of the attempt that
            answered: an attempt that failed and was retried took its requests with it
  RESULT    ok, failed, running, incomplete (the run was cancelled, terminated or timed out)
  ERROR     the object's error at the target, or what failed the sync

NAME is a userName or a group's displayName, looked up in the directory; an object id
works too, for an object deleted since. Temporal is asked by the object's id, never its
name. When the workers encrypt payloads (SCIMSYNC_CODEC_KEYS), the starter needs their
keys to read the histories. Histories are kept for the namespace's retention period.
Exit codes: 0 (also with no sync found), 1 Temporal could not be read, 2 bad usage (an
unknown name, --provider needed, no codec keys).
`

// historyLimit is how many syncs history shows without --limit.
const historyLimit = 20

// historyCommand declares `starter history`: an object's past syncs from the workflow
// histories.
func historyCommand(cl *cmdLine) runFunc {
	cl.describe("history user|group NAME [--provider P] [--json] [--limit N]", historyHelp, 2, 2)
	cl.completeArgs(kindNames)
	var f historyFlags
	cl.providerFlag(&f.provider, "the provider whose syncs to show")
	cl.flags.BoolVar(&f.asJSON, "json", false, "print the syncs as a JSON array, newest first")
	cl.flags.IntVar(&f.limit, "limit", historyLimit, "show at most this many syncs, the newest")
	return func(ctx context.Context, d *Deps, pos []string, stdout, stderr io.Writer) int {
		return History(ctx, d, cl, f, pos, stdout, stderr)
	}
}

// historyFlags are the flags of `starter history`.
type historyFlags struct {
	provider string
	asJSON   bool
	limit    int
}

// History is `starter history`.
func History(ctx context.Context, d *Deps, cl *cmdLine, f historyFlags, pos []string, stdout, stderr io.Writer) int {
	provider, asJSON, limit := f.provider, f.asJSON, f.limit
	kind, name := pos[0], pos[1]
	if kind != object.User && kind != object.Group {
		return cl.usageError(stderr, fmt.Sprintf("%q is not an object kind: use history user NAME or history group NAME", kind))
	}
	if limit < 1 {
		return cl.usageError(stderr, fmt.Sprintf("--limit must be at least 1, got %d", limit))
	}
	sess := newSession(d, cl.cfg, stderr)
	defer sess.close()
	p, id, entries, err := objectHistory(ctx, sess, kind, name, provider, limit)
	if err != nil {
		return exitCode(stderr, "history", err)
	}
	if asJSON {
		writeJSON(stdout, entries)
		return ExitOK
	}
	printHistory(stdout, kind, name, id, p.Name, entries, time.Now())
	return ExitOK
}

// objectHistory finds the object and the provider, and reads the object's newest limit
// syncs at the provider.
func objectHistory(ctx context.Context, sess *session, kind, name, provider string, limit int) (store.Provider, string, []historyEntry, error) {
	st, p, err := sess.provider(ctx, provider)
	if err != nil {
		return p, "", nil, err
	}
	id, err := objectIDByName(ctx, st, kind, name)
	if err != nil {
		return p, "", nil, err
	}
	dc, fc, err := worker.Converters(sess.cfg.worker())
	if err != nil {
		return p, id, nil, usageErrorf("%v", err)
	}
	inst, err := sess.installation(ctx)
	if err != nil {
		return p, id, nil, err
	}
	tc, err := sess.temporal(ctx)
	if err != nil {
		return p, id, nil, err
	}
	r := &historyReader{tc: tc, dc: dc, fc: fc, objectID: id}
	execs, err := r.executions(ctx, inst, p.Name, kind)
	if err != nil {
		return p, id, nil, err
	}
	entries, err := r.newest(ctx, execs, limit)
	if se := (*sealedError)(nil); errors.As(err, &se) {
		return p, id, nil, usageErrorf("%v", se)
	}
	return p, id, entries, err
}

// objectIDByName returns the id of the user with userName name, or of the group with
// displayName name; name may be an object id (of an object deleted since, too).
func objectIDByName(ctx context.Context, st *store.Store, kind, name string) (string, error) {
	var id string
	var err error
	if kind == object.User {
		var u store.User
		u, err = st.UserByUsername(ctx, name)
		id = u.ID
	} else {
		var g store.Group
		g, err = st.GroupByName(ctx, name)
		id = g.ID
	}
	switch {
	case err == nil:
		return id, nil
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	case uuidPattern.MatchString(name):
		return strings.ToLower(name), nil
	}
	attr := "userName"
	if kind == object.Group {
		attr = "displayName"
	}
	return "", usageErrorf("no %s with %s %q in the directory: give the %s exactly as the directory has it, or the %s's id", kind, attr, name, attr, kind)
}

// newest reads the executions, the one that may hold the newest syncs first, until the
// limit newest syncs are known: an execution's syncs began before it closed.
func (r *historyReader) newest(ctx context.Context, execs []execution, limit int) ([]historyEntry, error) {
	slices.SortStableFunc(execs, func(a, b execution) int { return b.latest().Compare(a.latest()) })
	out := []historyEntry{}
	for _, e := range execs {
		if len(out) >= limit {
			sortEntries(out)
			if !out[limit-1].Time.Before(e.latest()) {
				break
			}
		}
		es, err := r.entries(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	sortEntries(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// sortEntries orders syncs newest first (ties by workflow ID, for a stable output).
func sortEntries(es []historyEntry) {
	slices.SortStableFunc(es, func(a, b historyEntry) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(a.WorkflowID, b.WorkflowID)
	})
}

func printHistory(w io.Writer, kind, name, id, provider string, entries []historyEntry, now time.Time) {
	if len(entries) == 0 {
		fmt.Fprintf(w, "no sync of %s %s (%s) at provider %s in Temporal's history\n", kind, name, id, provider)
		return
	}
	fmt.Fprintf(w, "%d %s of %s %s (%s) at provider %s, newest first\n", len(entries),
		plural(len(entries), "sync", "syncs"), kind, name, id, provider)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTRIGGER\tACTION\tREQUESTS\tRESULT\tERROR")
	for _, e := range entries {
		trigger := e.Trigger
		if len(e.Reasons) > 0 {
			trigger += " (" + strings.Join(e.Reasons, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", when(e.Time, now), trigger, e.Action, requestsText(e),
			e.Result, orDash(e.Error))
	}
	tw.Flush()
}

// requestsText is a sync's requests on one line: "POST /Users 201, PATCH /Users/7 200".
func requestsText(e historyEntry) string {
	if len(e.Requests) == 0 {
		return "-"
	}
	parts := make([]string, len(e.Requests))
	for i, r := range e.Requests {
		status := fmt.Sprint(r.Status)
		if r.Status == 0 {
			status = "no answer"
		}
		parts[i] = r.Method + " " + r.Path + " " + status
		switch {
		case r.Bulk:
			parts[i] += " (bulk)"
		case r.DryRun:
			parts[i] = r.Method + " " + r.Path + " (dry run)"
		}
	}
	return strings.Join(parts, ", ")
}
