package starter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/secretref"
	"github.com/scimsync/scimsync/store"
)

const planHelp = `
Shows what the next full sync of a provider would do, sending the target nothing but GETs:
the users and groups it would create, every attribute it would change on each (before →
after), what it would deprovision, the members it would add to and remove from each group
and, with --read-target (or when the provider's read-back is due), what it would repair of
what was changed at the target itself and the orphans it found there, with what the
provider's orphan policy would do with them.

It runs the full sync's own listing, mapping, scope and comparison code, in this process,
with every write held back and recorded instead (dry run); what it reads of the target is
kept in the database only while it runs. Users are mapped with the installation secret
(SCIMSYNC_INSTALLATION_SECRET), which must be the workers' one.

Exit code 0 when nothing would change, 3 when something would (for a cron job that alerts
on drift, as terraform plan -detailed-exitcode does), 1 when the plan could not be made,
2 for a usage error.
`

// ExitChanges is plan's exit code when the next full sync would change something.
const ExitChanges = 3

// planResult is what plan prints.
type planResult struct {
	Provider   string                     `json:"provider"`
	ReadTarget bool                       `json:"readTarget"`
	Changes    []activities.PlannedChange `json:"changes"`
	// Counts of the changes, by kind and action ("user create": 3).
	Counts   map[string]int                     `json:"counts"`
	ReadBack *activities.ReadBackFigures        `json:"readBack,omitempty"`
	Orphans  map[string]activities.OrphanCounts `json:"orphans,omitempty"`
	// Requests counts the GETs the plan sent to the target.
	Requests int `json:"requests"`
}

func (r planResult) changed() bool {
	if len(r.Changes) > 0 {
		return true
	}
	for _, c := range r.Orphans {
		if c.Deleted > 0 {
			return true
		}
	}
	return false
}

// planFlags are the flags of starter plan.
type planFlags struct {
	provider           string
	readTarget, asJSON bool
}

// planCommand declares `starter plan`.
func planCommand(cl *cmdLine) runFunc {
	cl.describe("plan [--provider P] [--read-target] [--json]", planHelp, 0, 0)
	var f planFlags
	cl.providerFlag(&f.provider, "the provider")
	cl.flags.BoolVar(&f.readTarget, "read-target", false, "read the target back and show what would be repaired and the orphans")
	cl.flags.BoolVar(&f.asJSON, "json", false, "print the plan as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return Plan(ctx, d, cl, f, stdout, stderr)
	}
}

// Plan is `starter plan`.
func Plan(ctx context.Context, d *Deps, cl *cmdLine, f planFlags, stdout, stderr io.Writer) int {
	provider, readTarget, asJSON := f.provider, f.readTarget, f.asJSON
	if cl.cfg.InstallationSecret == "" {
		return exitCode(stderr, "plan", usageErrorf("SCIMSYNC_INSTALLATION_SECRET (or --installation-secret) is required to map users: the workers' installation secret, which derives every user's externalId"))
	}
	secret, err := secretref.Resolve(cl.cfg.InstallationSecret)
	if err != nil {
		return exitCode(stderr, "plan", usageErrorf("installation secret: %v", err))
	}
	sess := newSession(d, cl.cfg, stderr)
	defer sess.close()
	st, p, err := sess.provider(ctx, provider)
	if err != nil {
		return exitCode(stderr, "plan", err)
	}
	requests := 0
	acts := &activities.Activities{Store: st, Mapper: &mapping.Engine{Secret: secret}, HTTPClient: d.HTTPClient,
		RequestTimeout: 30 * time.Second, DryRun: true}
	res, err := makePlan(ctx, acts, st, p, readTarget, &requests)
	res.Requests = requests
	if err != nil {
		return exitCode(stderr, "plan", fmt.Errorf("%s", activityMessage(err)))
	}
	if asJSON {
		writeJSON(stdout, res)
	} else {
		printPlan(ctx, stdout, st, p, res)
	}
	if res.changed() {
		return ExitChanges
	}
	return ExitOK
}

// makePlan runs the full sync's steps in dry run and gathers what they would write.
func makePlan(ctx context.Context, acts *activities.Activities, st *store.Store, p store.Provider, readTarget bool, requests *int) (planResult, error) {
	res := planResult{Provider: p.Name, Changes: []activities.PlannedChange{}, Counts: map[string]int{}}
	acts.OnRequest = func(_ string, info scim.RequestInfo) {
		if !info.DryRun {
			*requests++
		}
	}
	in := activities.ProviderInput{Provider: p.Name}
	info, err := acts.LoadProvider(ctx, in)
	if err != nil {
		return res, err
	}
	if !info.Enabled {
		return res, fmt.Errorf("provider %s is disabled: no full sync runs for it", p.Name)
	}
	if _, err := acts.Discover(ctx, in); err != nil {
		return res, err
	}
	readBack := ""
	if readTarget || info.ReadBackDue {
		res.ReadTarget = true
		var suffix [6]byte
		_, _ = rand.Read(suffix[:])
		readBack = "plan/" + hex.EncodeToString(suffix[:])
		defer st.DropReadBack(context.WithoutCancel(ctx), p.ID, readBack)
		figures, err := readTargetBack(ctx, acts, p.Name, readBack)
		if err != nil {
			return res, err
		}
		res.ReadBack = &figures
	}
	var claimed []string // remote ids relinked or adopted, which the dry run does not record
	add := func(r activities.WriteResult) {
		res.Changes = append(res.Changes, r.Planned...)
		for _, c := range r.Planned {
			if c.Remote != "" {
				claimed = append(claimed, c.Remote)
			}
		}
	}
	for _, kind := range []string{object.User, object.Group} {
		after := ""
		for {
			page, err := acts.ListInScope(ctx, activities.ListInput{Provider: p.Name, Kind: kind, After: after,
				Limit: max(info.PageSize, 1) * 4, ReadBack: readBack})
			if err != nil {
				return res, err
			}
			for start := 0; start < len(page.IDs); start += max(info.PageSize, 1) {
				batch := activities.ObjectsInput{Provider: p.Name, Kind: kind, ReadBack: readBack,
					IDs: page.IDs[start:min(start+max(info.PageSize, 1), len(page.IDs))]}
				if err := planBatch(ctx, acts, batch, add); err != nil {
					return res, err
				}
			}
			if page.Next == "" {
				break
			}
			after = page.Next
		}
	}
	for _, kind := range []string{object.User, object.Group} {
		after := ""
		for {
			page, err := acts.ListStale(ctx, activities.ListInput{Provider: p.Name, Kind: kind, After: after, Limit: 100})
			if err != nil {
				return res, err
			}
			if len(page.IDs) == 0 {
				break
			}
			r, err := acts.Deprovision(ctx, activities.ObjectsInput{Provider: p.Name, Kind: kind, IDs: page.IDs})
			if err != nil {
				return res, err
			}
			add(r)
			after = page.IDs[len(page.IDs)-1]
		}
	}
	// Deactivated users whose grace period has passed: the cleanup deletes them next.
	for after := ""; info.DeletesAfterGrace(); {
		page, err := acts.ListDueDeletions(ctx, activities.ListInput{Provider: p.Name, Kind: object.User, After: after, Limit: 100})
		if err != nil {
			return res, err
		}
		if len(page.IDs) == 0 {
			break
		}
		r, err := acts.DeleteDue(ctx, activities.ObjectsInput{Provider: p.Name, Kind: object.User, IDs: page.IDs})
		if err != nil {
			return res, err
		}
		add(r)
		after = page.IDs[len(page.IDs)-1]
	}
	if readBack != "" {
		res.Orphans = map[string]activities.OrphanCounts{}
		for _, kind := range []string{object.User, object.Group} {
			after := ""
			for {
				r, err := acts.HandleOrphans(ctx, activities.OrphansInput{Provider: p.Name, Kind: kind, ReadBack: readBack,
					After: after, Limit: 100, Delete: info.DeletesOrphans(), Claimed: claimed})
				if err != nil {
					return res, err
				}
				c := res.Orphans[kind]
				c.Add(r.Counts)
				res.Orphans[kind] = c
				if r.Next == "" {
					break
				}
				after = r.Next
			}
		}
	}
	for _, c := range res.Changes {
		res.Counts[c.Kind+" "+c.Action]++
		if c.Repair != "" {
			res.Counts[c.Kind+" repair"]++
		}
	}
	return res, nil
}

// planBatch runs one SyncBatch's steps in dry run.
func planBatch(ctx context.Context, acts *activities.Activities, batch activities.ObjectsInput, add func(activities.WriteResult)) error {
	mapped, err := acts.MapObjects(ctx, batch)
	if err != nil {
		return err
	}
	if len(mapped.Gone) > 0 {
		r, err := acts.Deprovision(ctx, activities.ObjectsInput{Provider: batch.Provider, Kind: batch.Kind, IDs: mapped.Gone})
		if err != nil {
			return err
		}
		add(r)
	}
	if len(mapped.Changed) > 0 {
		r, err := acts.WriteObjects(ctx, activities.WriteInput{Provider: batch.Provider, Kind: batch.Kind,
			Objects: mapped.Changed, ReadBack: batch.ReadBack})
		if err != nil {
			return err
		}
		add(r)
	}
	if batch.Kind == object.Group {
		gone := map[string]bool{}
		for _, id := range append(mapped.Skipped, mapped.Gone...) {
			gone[id] = true
		}
		var present []string
		for _, id := range batch.IDs {
			if !gone[id] {
				present = append(present, id)
			}
		}
		r, err := acts.SyncMembers(ctx, activities.ObjectsInput{Provider: batch.Provider, Kind: batch.Kind, IDs: present,
			ReadBack: batch.ReadBack})
		if err != nil {
			return err
		}
		add(r)
	}
	return nil
}

// readTargetBack reads the provider's target back into the read-back readBack, as a full
// sync's read-back phase does.
func readTargetBack(ctx context.Context, acts *activities.Activities, provider, readBack string) (activities.ReadBackFigures, error) {
	figures := activities.ReadBackFigures{ID: readBack, StartedAt: time.Now().UTC()}
	if err := acts.StartReadBack(ctx, activities.ReadPageInput{Provider: provider, ReadBack: readBack}); err != nil {
		return figures, err
	}
	for _, kind := range []string{object.User, object.Group} {
		read := 0
		page := activities.PageToken{}
		for {
			r, err := acts.ReadTargetPage(ctx, activities.ReadPageInput{Provider: provider, Kind: kind, ReadBack: readBack, Page: page})
			if err != nil {
				return figures, err
			}
			figures.MembersNotObservable = figures.MembersNotObservable || r.MembersHidden
			if r.NotListable {
				figures.NotListable = append(figures.NotListable, kind)
				n, err := readLinkedBack(ctx, acts, provider, kind, readBack)
				if err != nil {
					return figures, err
				}
				read += n
				break
			}
			read += r.Read
			if r.Next == nil {
				break
			}
			page = *r.Next
		}
		if kind == object.User {
			figures.UsersRead = read
		} else {
			figures.GroupsRead = read
		}
	}
	return figures, nil
}

func readLinkedBack(ctx context.Context, acts *activities.Activities, provider, kind, readBack string) (int, error) {
	read, after := 0, ""
	for {
		r, err := acts.ReadLinked(ctx, activities.ReadLinkedInput{Provider: provider, Kind: kind, ReadBack: readBack,
			After: after, Limit: 100})
		if err != nil {
			return read, err
		}
		read += r.Read
		if r.Next == "" {
			return read, nil
		}
		after = r.Next
	}
}

// printPlan prints the plan for people: each change, then the counts.
func printPlan(ctx context.Context, w io.Writer, st *store.Store, p store.Provider, res planResult) {
	names := memberNames(ctx, st, p, res.Changes)
	fmt.Fprintf(w, "plan for provider %s", p.Name)
	if res.ReadTarget {
		fmt.Fprintf(w, " (target read back: %d users, %d groups)", res.ReadBack.UsersRead, res.ReadBack.GroupsRead)
	}
	fmt.Fprintln(w)
	sort.SliceStable(res.Changes, func(i, j int) bool {
		a, b := res.Changes[i], res.Changes[j]
		if a.Kind != b.Kind {
			return a.Kind > b.Kind // users first
		}
		return a.Name < b.Name
	})
	for _, c := range res.Changes {
		label := c.Action
		if c.Repair != "" {
			label += " (repair: " + c.Repair + ")"
		}
		fmt.Fprintf(w, "  %s %s %s\n", label, c.Kind, orDash(c.Name))
		for _, ch := range c.Changes {
			if c.Action == activities.PlanCreate {
				fmt.Fprintf(w, "      %s = %s\n", ch.Attribute, compactJSON(ch.After))
				continue
			}
			fmt.Fprintf(w, "      %s: %s → %s\n", ch.Attribute, compactJSON(ch.Before), compactJSON(ch.After))
		}
		for _, id := range c.Add {
			fmt.Fprintf(w, "      + member %s\n", names(id))
		}
		for _, id := range c.Remove {
			fmt.Fprintf(w, "      - member %s\n", names(id))
		}
	}
	if res.ReadTarget {
		for _, kind := range []string{object.User, object.Group} {
			o := res.Orphans[kind]
			if o.Total() == 0 {
				continue
			}
			what := "reported"
			if o.Deleted > 0 {
				what = fmt.Sprintf("%d would be deprovisioned (orphans: delete)", o.Deleted)
			}
			fmt.Fprintf(w, "  orphan %ss at the target: %d of ours (left behind), %d known to the directory, %d strangers; %s\n",
				kind, o.Ours, o.Known, o.Strangers, what)
		}
		if res.ReadBack.MembersNotObservable {
			fmt.Fprintln(w, "  group members: not observable (the target shows none): membership drift cannot be seen")
		}
	}
	if len(res.Changes) == 0 {
		fmt.Fprintln(w, "no changes: the target holds what the directory says")
	} else {
		keys := make([]string, 0, len(res.Counts))
		for k := range res.Counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%d %s", res.Counts[k], k)
		}
		fmt.Fprintf(w, "%d changes: %s\n", len(res.Changes), strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "(%d requests sent to the target, all GETs)\n", res.Requests)
}

// memberNames returns a function naming a member by its remote id: the username of the
// user linked to it, else the remote id.
func memberNames(ctx context.Context, st *store.Store, p store.Provider, changes []activities.PlannedChange) func(string) string {
	var ids []string
	for _, c := range changes {
		ids = append(ids, c.Add...)
		ids = append(ids, c.Remove...)
	}
	byRemote, err := st.UsernamesByRemoteID(ctx, p.ID, ids)
	if err != nil {
		byRemote = map[string]string{}
	}
	return func(id string) string {
		if n, ok := byRemote[id]; ok {
			return n
		}
		return "remote id " + id + " (no user of the directory)"
	}
}

func compactJSON(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
