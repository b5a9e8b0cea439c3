package starter

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimsync/scimsync/store"
)

const outboxHelp = `
Deals with the changes the relay parked: directory changes that Temporal refused
permanently (an invalid argument, such as a payload over the namespace's size limit; a
namespace that does not exist or is being deleted). The relay moves such a change out of
the outbox into a dead-letter table, in the transaction that relays the rest of its batch,
so that it blocks nothing and is not lost; starter status counts them.

  outbox list             the parked changes, the longest parked first: id, what changed,
                          the provider whose call Temporal refused, the attempts Temporal
                          refused, when it was parked, and the refusal
  outbox retry [ID...]    puts the parked changes back in the outbox under their ids (every
                          one without IDs, or with --all); running workers relay them at
                          once. Do it once the cause is fixed: a change refused again is
                          parked again, its attempts counted.
  outbox drop ID...|--all deletes parked changes: they are never relayed. The provider's
                          next full sync still brings their objects up to date.

IDs are the ids outbox list and status show. Exit code 1 when an ID is not parked (the
others are still handled).
`

// parkedView is a parked change as listed: ids only, never personal data.
type parkedView struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Op        string    `json:"op"`
	ObjectID  string    `json:"objectId"`
	RelatedID string    `json:"relatedId,omitempty"`
	Provider  string    `json:"provider"`
	Attempts  int       `json:"attempts"`
	ParkedAt  time.Time `json:"parkedAt"`
	ChangedAt time.Time `json:"changedAt"`
	Error     string    `json:"error"`
}

func viewParked(ps []store.ParkedChange) []parkedView {
	out := make([]parkedView, 0, len(ps))
	for _, p := range ps {
		v := parkedView{ID: p.ID, Kind: p.Kind, Op: p.Op, ObjectID: p.ObjectID, Provider: p.Provider,
			Attempts: p.Attempts, ParkedAt: p.ParkedAt, ChangedAt: p.CreatedAt, Error: p.Error}
		if p.RelatedID != nil {
			v.RelatedID = *p.RelatedID
		}
		out = append(out, v)
	}
	return out
}

// object names what changed: the namedObject, and for a membership the group and the user.
func (v parkedView) object() string {
	if v.RelatedID != "" {
		return v.ObjectID + "/" + v.RelatedID
	}
	return v.ObjectID
}

// outboxCommand declares `starter outbox`.
func outboxCommand(cl *cmdLine) runFunc {
	cl.describe("outbox list [--json] | retry [ID...|--all] | drop ID...|--all", outboxHelp, 1, -1)
	cl.completeArgs([]string{"list", "retry", "drop"})
	var all, asJSON bool
	cl.flags.BoolVar(&all, "all", false, "retry or drop every parked change")
	cl.flags.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return func(ctx context.Context, d *Deps, pos []string, stdout, stderr io.Writer) int {
		return Outbox(ctx, d, cl, all, asJSON, pos, stdout, stderr)
	}
}

// Outbox is `starter outbox`: list, retry and drop parked changes.
func Outbox(ctx context.Context, d *Deps, cl *cmdLine, all, asJSON bool, pos []string, stdout, stderr io.Writer) int {
	sub, rest := pos[0], pos[1:]
	var ids []int64
	for _, a := range rest {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return cl.usageError(stderr, fmt.Sprintf("%q is not a change id (see starter outbox list)", a))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch sub {
	case "list":
		if len(ids) > 0 || all {
			return cl.usageError(stderr, "outbox list takes no ids nor --all")
		}
	case "retry":
		if len(ids) > 0 && all {
			return cl.usageError(stderr, "outbox retry takes ids or --all, not both")
		}
		all = all || len(ids) == 0
	case "drop":
		if (len(ids) > 0) == all {
			return cl.usageError(stderr, "outbox drop needs ids or --all (and not both)")
		}
	default:
		return cl.usageError(stderr, fmt.Sprintf("unknown subcommand %q: use outbox list, retry or drop", sub))
	}
	name := "outbox " + sub
	sess := newSession(d, cl.cfg, stderr)
	defer sess.close()
	st, err := sess.store(ctx)
	if err != nil {
		return exitCode(stderr, name, err)
	}

	if sub == "list" {
		ps, err := st.ParkedChanges(ctx, 0)
		if err != nil {
			return exitCode(stderr, name, err)
		}
		views := viewParked(ps)
		if asJSON {
			writeJSON(stdout, map[string]any{"parked": views})
			return ExitOK
		}
		printParkedTable(stdout, views, time.Now())
		return ExitOK
	}

	var done []int64
	switch {
	case sub == "retry" && all:
		done, err = st.RetryAllParked(ctx)
	case sub == "retry":
		done, err = st.RetryParked(ctx, ids)
	case all:
		done, err = st.DropAllParked(ctx)
	default:
		done, err = st.DropParked(ctx, ids)
	}
	if err != nil {
		return exitCode(stderr, name, err)
	}
	var missing []int64
	for _, id := range ids {
		if !slices.Contains(done, id) {
			missing = append(missing, id)
		}
	}
	if asJSON {
		key := map[string]string{"retry": "retried", "drop": "dropped"}[sub]
		writeJSON(stdout, map[string]any{key: append([]int64{}, done...), "notParked": append([]int64{}, missing...)})
	} else {
		what := fmt.Sprintf("%d %s", len(done), plural(len(done), "change", "changes"))
		if len(done) > 0 {
			what += " (" + joinIDs(done) + ")"
		}
		switch {
		case sub == "retry" && len(done) == 0 && len(ids) == 0:
			fmt.Fprintf(stdout, "%s: no change is parked\n", name)
		case sub == "retry":
			fmt.Fprintf(stdout, "%s: put %s back in the outbox; running workers relay them now\n", name, what)
		case len(done) == 0 && len(ids) == 0:
			fmt.Fprintf(stdout, "%s: no change is parked\n", name)
		default:
			fmt.Fprintf(stdout, "%s: dropped %s; they will not be relayed (the providers' next full syncs bring their objects up to date)\n", name, what)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "starter %s: not parked (see starter outbox list): %s\n", name, joinIDs(missing))
		return ExitFailure
	}
	return ExitOK
}

func printParkedTable(w io.Writer, views []parkedView, now time.Time) {
	if len(views) == 0 {
		fmt.Fprintln(w, "no change is parked")
		return
	}
	fmt.Fprintf(w, "%d %s parked: Temporal refused %s (starter outbox retry|drop)\n", len(views),
		plural(len(views), "change", "changes"), plural(len(views), "it", "them"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCHANGE\tOBJECT\tPROVIDER\tATTEMPTS\tPARKED\tERROR")
	for _, v := range views {
		fmt.Fprintf(tw, "%d\t%s %s\t%s\t%s\t%d\t%s\t%s\n", v.ID, v.Kind, v.Op, v.object(), v.Provider, v.Attempts,
			when(v.ParkedAt, now), v.Error)
	}
	tw.Flush()
}

// parkedLine is one parked change in status.
func parkedLine(v parkedView, now time.Time) string {
	return fmt.Sprintf("change %d: %s %s %s, provider %s, %d %s, parked %s: %s", v.ID, v.Kind, v.Op, v.object(),
		v.Provider, v.Attempts, plural(v.Attempts, "attempt", "attempts"), when(v.ParkedAt, now), v.Error)
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
