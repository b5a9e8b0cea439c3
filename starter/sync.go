package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/secretref"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

const syncHelp = `
Syncs one user or group to one provider now and prints what happens, like a
provision-on-demand log: the provider, the target's capabilities, the scope decision, the
mapped payload (or why there is none), the action taken, the group's members, and every
HTTP request to the target (method, path, status, duration; never headers, bodies or
tokens).

By default the sync runs in this process, through the same activities the workers run:
LoadProvider, Discover, MapObjects, then WriteObjects or Deprovision, then SyncMembers for
a group, and for a user SyncMembers of its groups (those in scope that are at the target
already: the workers' sync of a new user has those groups synced). They take the objects'
locks, so a worker syncing the same object at the same time waits (or is waited for) and
no duplicate can be created. Users are mapped with the
installation secret (SCIMSYNC_INSTALLATION_SECRET), which must be the workers' one.

With --via-temporal the object's ObjectSync workflow is signalled (started when none runs)
and waited for; the outcome is then read from the object's link.

NAME is a username or a group name. An id works too, also for an object deleted from the
directory whose remote copy is still linked: it is deprovisioned.

Exit code 1 when the object could not be synced (a mapping, schema or target error).
`

// syncFlags are the flags of starter sync.
type syncFlags struct {
	provider    string
	viaTemporal bool
	timeout     time.Duration
}

// syncCommand declares `starter sync`.
func syncCommand(cl *cmdLine) runFunc {
	cl.describe("sync user|group NAME [--provider P] [--via-temporal] [--timeout D]", syncHelp, 2, 2)
	cl.completeArgs(kindNames)
	var f syncFlags
	cl.providerFlag(&f.provider, "the provider to sync to")
	cl.flags.BoolVar(&f.viaTemporal, "via-temporal", false, "signal the object's ObjectSync workflow and wait for it, instead of syncing in this process")
	cl.flags.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the sync")
	return func(ctx context.Context, d *Deps, pos []string, stdout, stderr io.Writer) int {
		return Sync(ctx, d, cl, f, pos, stdout, stderr)
	}
}

// Sync is `starter sync`.
func Sync(ctx context.Context, d *Deps, cl *cmdLine, f syncFlags, pos []string, stdout, stderr io.Writer) int {
	provider, viaTemporal, timeout := f.provider, f.viaTemporal, f.timeout
	kind, name := pos[0], pos[1]
	if _, err := object.ParseKind(kind); err != nil {
		return cl.usageError(stderr, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sess := newSession(d, cl.cfg, stderr)
	defer sess.close()
	st, p, err := sess.provider(ctx, provider)
	if err != nil {
		return exitCode(stderr, "sync", err)
	}
	obj, err := findObject(ctx, st, kind, name)
	if err != nil {
		return exitCode(stderr, "sync", err)
	}
	if viaTemporal {
		return syncViaTemporal(ctx, sess, st, p, obj, stdout, stderr)
	}
	secret := ""
	if cl.cfg.InstallationSecret != "" {
		if secret, err = secretref.Resolve(cl.cfg.InstallationSecret); err != nil {
			return exitCode(stderr, "sync", usageErrorf("installation secret: %v", err))
		}
	} else if kind == object.User {
		return exitCode(stderr, "sync", usageErrorf("SCIMSYNC_INSTALLATION_SECRET (or --installation-secret) is required to map users: the workers' installation secret, which derives every user's externalId"))
	}
	return syncInProcess(ctx, d, st, secret, p, obj, stdout)
}

// object is the user or group a command works on.
type namedObject struct {
	kind   string
	id     string
	label  string // username or group name; the id when deleted
	exists bool   // false: deleted from the directory (known by id only)
	user   store.User
	group  store.Group
}

// name is the object's name in the directory: the user's username, the group's name; ""
// for an object that no longer exists.
func (o namedObject) name() string {
	switch {
	case !o.exists:
		return ""
	case o.kind == object.User:
		return o.user.Username
	default:
		return o.group.Name
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// findObject finds a user by username or a group by name; an id is accepted too, and may
// name an object that no longer exists.
func findObject(ctx context.Context, st *store.Store, kind, name string) (namedObject, error) {
	o := namedObject{kind: kind, label: name}
	var err error
	if kind == object.User {
		o.user, err = st.UserByUsername(ctx, name)
		o.id = o.user.ID
	} else {
		o.group, err = st.GroupByName(ctx, name)
		o.id = o.group.ID
	}
	if err == nil {
		o.exists = true
		return o, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return o, err
	}
	if !uuidPattern.MatchString(name) {
		return o, fmt.Errorf("no %s named %q in the directory", kind, name)
	}
	o.id = strings.ToLower(name)
	if kind == object.User {
		users, err := st.UsersByIDs(ctx, []string{o.id})
		if err != nil {
			return o, err
		}
		if len(users) == 1 {
			o.user, o.label, o.exists = users[0], users[0].Username, true
		}
	} else {
		groups, err := st.GroupsByIDs(ctx, []string{o.id})
		if err != nil {
			return o, err
		}
		if len(groups) == 1 {
			o.group, o.label, o.exists = groups[0], groups[0].Name, true
		}
	}
	return o, nil
}

// syncLog prints the steps of an in-process sync and the requests they make.
type syncLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *syncLog) step(name, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%-10s %s\n", name, fmt.Sprintf(format, args...))
}

// block prints an indented multi-line block under the current step.
func (l *syncLog) block(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(l.w, "%10s %s\n", "", line)
	}
}

func (l *syncLog) request(info scim.RequestInfo) {
	status := fmt.Sprint(info.Status)
	switch {
	case info.DryRun:
		status = "not sent (dry run)"
	case info.Status == 0:
		status = "no response"
		var se *scim.Error
		if errors.As(info.Err, &se) && se.Err != nil {
			status += ": " + strings.TrimPrefix(se.Err.Error(), "scim: ")
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%10s → %s %s %s (%s)\n", "", info.Method, info.Path, status, millis(info.Duration))
}

// millis formats a request's duration in milliseconds, to a tenth.
func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// syncInProcess runs the ObjectSync steps for one object through the activities, printing
// each, and returns the exit code.
func syncInProcess(ctx context.Context, d *Deps, st *store.Store, secret string, p store.Provider, obj namedObject, stdout io.Writer) int {
	log := &syncLog{w: stdout}
	acts := &activities.Activities{
		Store:          st,
		Mapper:         &mapping.Engine{Secret: secret},
		HTTPClient:     d.HTTPClient,
		RequestTimeout: 30 * time.Second,
		OnRequest:      func(_ string, info scim.RequestInfo) { log.request(info) },
	}
	fmt.Fprintf(stdout, "sync %s %s to provider %s (in process)\n", obj.kind, obj.label, p.Name)
	failed := func(step string, err error) int {
		log.step(step, "failed: %s", activityMessage(err))
		fmt.Fprintf(stdout, "result     failed\n")
		return ExitFailure
	}

	info, err := acts.LoadProvider(ctx, activities.ProviderInput{Provider: p.Name})
	if err != nil {
		return failed("provider", err)
	}
	dry := "off"
	if info.DryRun {
		dry = "on: requests that change the target are logged, not sent"
	}
	log.step("provider", "%s at %s: mode %s, dry run %s, deprovision %s", p.Name, p.BaseURL, p.CompatibilityMode, dry, p.DeprovisionAction)
	if !info.Enabled {
		log.step("", "the provider is disabled: the workers do not sync it, and neither does starter sync")
		fmt.Fprintf(stdout, "result     not synced\n")
		return ExitFailure
	}

	caps, err := acts.Discover(ctx, activities.ProviderInput{Provider: p.Name})
	if err != nil {
		return failed("discover", err)
	}
	log.step("discover", "%s", describeCaps(caps))

	inScope, why, err := scopeDecision(ctx, st, p, obj)
	if err != nil {
		return failed("scope", err)
	}
	if inScope {
		log.step("scope", "in scope: %s", why)
	} else {
		log.step("scope", "out of scope: %s", why)
	}

	in := activities.ObjectsInput{Provider: p.Name, Kind: obj.kind, IDs: []string{obj.id}}
	before, err := st.Links(ctx, p.ID, obj.kind, in.IDs)
	if err != nil {
		return failed("map", err)
	}
	mapped, err := acts.MapObjects(ctx, in)
	if err != nil {
		return failed("map", err)
	}
	mappings, err := st.ProviderMappings(ctx, p.ID, obj.kind)
	if err != nil {
		return failed("map", err)
	}
	var names []string
	for _, m := range mappings {
		names = append(names, m.Name)
	}

	code := ExitOK
	present := false
	switch {
	case len(mapped.Skipped) > 0:
		log.step("map", "skipped: a mapping (%s) called skip_object(); nothing is written", strings.Join(names, ", "))
	case len(mapped.Unchanged) > 0:
		l := before[obj.id]
		log.step("map", "unchanged: the target got this very payload before (remote id %s%s); nothing to write", l.Remote(), syncedAt(l))
		present = true
	case len(mapped.Changed) > 0:
		o := mapped.Changed[0]
		log.step("map", "mappings %s → payload (valid SCIM %s):", strings.Join(names, ", "), strings.ToUpper(obj.kind[:1])+obj.kind[1:])
		body, _ := json.MarshalIndent(o.Payload, "", "  ")
		log.block(string(body))
		if len(o.OnCreate) > 0 {
			log.step("map", "and in a create only (apply: on_create): %s", strings.Join(onCreateAttributes(o.OnCreate), ", "))
		}
		present = true
		action := "create"
		if l, ok := before[obj.id]; ok && l.Remote() != "" {
			action = "update remote id " + l.Remote()
		} else if p.LinkExisting || ok {
			action = "look up, then create or link"
		}
		log.step("write", "%s", action)
		res, err := acts.WriteObjects(ctx, activities.WriteInput{Provider: p.Name, Kind: obj.kind, Objects: mapped.Changed})
		if err != nil {
			return failed("write", err)
		}
		code = max(code, reportWrite(ctx, log, st, p, obj, res))
	case len(mapped.Gone) > 0:
		l := before[obj.id]
		log.step("map", "no payload: the object is %s, and linked (remote id %s)", goneReason(obj), orDash(l.Remote()))
		log.step("deprovision", "action %s", p.DeprovisionAction)
		res, err := acts.Deprovision(ctx, in)
		if err != nil {
			return failed("deprovision", err)
		}
		switch {
		case len(res.Failed) > 0:
			log.step("", "failed: %s", res.Failed[0].Error)
			code = ExitFailure
		case res.Deprovisioned > 0 && p.DeprovisionAction == store.DeprovisionDeactivateThenDelete && obj.kind == object.User:
			log.step("", "deactivated at the target (active: false); the link is kept, and a full sync deletes it "+
				"after %s unless it comes back in scope before", p.DeprovisionDeleteAfter)
		case res.Deprovisioned > 0 && p.DeactivatesUsers() && obj.kind == object.User:
			log.step("", "deactivated at the target (active: false); the link is kept")
		case res.Deprovisioned > 0:
			log.step("", "deleted at the target; the link is forgotten")
		default:
			log.step("", "the link is forgotten; nothing was sent to the target")
		}
	default:
		log.step("map", "nothing to do: the object is %s, and not linked", goneReason(obj))
	}

	if obj.kind == object.User && present && code == ExitOK && !p.DryRun {
		code = max(code, syncGroupsOfUser(ctx, log, acts, st, p, obj))
	}
	if obj.kind == object.Group && present && code == ExitOK {
		res, err := acts.SyncMembers(ctx, in)
		if err != nil {
			return failed("members", err)
		}
		after, err := st.Links(ctx, p.ID, object.Group, in.IDs)
		if err != nil {
			return failed("members", err)
		}
		old, cur := before[obj.id].Members, after[obj.id].Members
		added, removed := scim.DiffMembers(old, cur)
		switch {
		case len(res.Failed) > 0:
			log.step("members", "failed: %s", res.Failed[0].Error)
			code = ExitFailure
		case p.DryRun:
			log.step("members", "dry run: membership changes were logged, not sent")
		case res.Updated > 0:
			log.step("members", "%d members at the target (%d added, %d removed)", len(cur), len(added), len(removed))
		default:
			log.step("members", "%d members at the target, up to date", len(cur))
		}
	}
	if code == ExitOK {
		fmt.Fprintf(stdout, "result     ok\n")
	} else {
		fmt.Fprintf(stdout, "result     failed\n")
	}
	return code
}

// reportWrite prints the outcome of WriteObjects for one object.
func reportWrite(ctx context.Context, log *syncLog, st *store.Store, p store.Provider, obj namedObject, res activities.WriteResult) int {
	if len(res.Failed) > 0 {
		log.step("", "failed: %s (recorded on the object's link; starter status shows it)", res.Failed[0].Error)
		return ExitFailure
	}
	links, err := st.Links(ctx, p.ID, obj.kind, []string{obj.id})
	if err != nil {
		log.step("", "failed: %v", err)
		return ExitFailure
	}
	remote := links[obj.id].Remote()
	switch {
	case p.DryRun:
		log.step("", "dry run: nothing was sent, nothing recorded")
	case res.Created > 0:
		log.step("", "created: remote id %s", remote)
	case res.Updated > 0 && slices.Contains(res.Linked, obj.id):
		log.step("", "linked to the existing remote object %s and updated", remote)
	case res.Updated > 0:
		log.step("", "updated: remote id %s", remote)
	default:
		log.step("", "unchanged: remote id %s", remote)
	}
	return ExitOK
}

// syncGroupsOfUser brings up to date, at the target, the members of the provider's
// in-scope groups the user is a direct member of and that are at the target already, as
// the workers do when a user gets linked (there, the user's sync signals the groups'
// syncs; here nobody would). Groups not at the target yet get the member at their first
// sync. It prints each group's outcome and returns the exit code.
func syncGroupsOfUser(ctx context.Context, log *syncLog, acts *activities.Activities, st *store.Store, p store.Provider, obj namedObject) int {
	failed := func(err error) int {
		log.step("groups", "failed: %s", activityMessage(err))
		return ExitFailure
	}
	ids, err := st.GroupIDsOfUser(ctx, obj.id)
	if err != nil {
		return failed(err)
	}
	if ids, err = st.GroupsInScope(ctx, p.ID, ids); err != nil || len(ids) == 0 {
		if err != nil {
			return failed(err)
		}
		return ExitOK
	}
	groups, err := st.GroupsByIDs(ctx, ids)
	if err != nil {
		return failed(err)
	}
	slices.SortFunc(groups, func(a, b store.Group) int { return strings.Compare(a.Name, b.Name) })
	before, err := st.Links(ctx, p.ID, object.Group, ids)
	if err != nil {
		return failed(err)
	}
	var synced []store.Group
	var absent []string
	for _, g := range groups {
		if l, ok := before[g.ID]; ok && l.Live() {
			synced = append(synced, g)
		} else {
			absent = append(absent, g.Name)
		}
	}
	if len(absent) > 0 {
		log.step("groups", "not at the target yet: %s; the first sync of each adds the member (now: starter sync group NAME --provider %s)",
			strings.Join(absent, ", "), p.Name)
	}
	if len(synced) == 0 {
		return ExitOK
	}
	in := activities.ObjectsInput{Provider: p.Name, Kind: object.Group}
	for _, g := range synced {
		in.IDs = append(in.IDs, g.ID)
	}
	res, err := acts.SyncMembers(ctx, in)
	if err != nil {
		return failed(err)
	}
	after, err := st.Links(ctx, p.ID, object.Group, in.IDs)
	if err != nil {
		return failed(err)
	}
	reasons := map[string]string{}
	for _, f := range res.Failed {
		reasons[f.ID] = f.Error
	}
	code := ExitOK
	for _, g := range synced {
		cur := after[g.ID].Members
		added, removed := scim.DiffMembers(before[g.ID].Members, cur)
		switch why, bad := reasons[g.ID]; {
		case bad:
			log.step("groups", "%s: members failed: %s", g.Name, why)
			code = ExitFailure
		case len(added)+len(removed) > 0:
			log.step("groups", "%s: %d members at the target (%d added, %d removed)", g.Name, len(cur), len(added), len(removed))
		default:
			log.step("groups", "%s: %d members at the target, up to date", g.Name, len(cur))
		}
	}
	return code
}

func syncedAt(l store.Link) string {
	if l.SyncedAt == nil {
		return ""
	}
	return ", written " + l.SyncedAt.UTC().Format(time.RFC3339)
}

func goneReason(obj namedObject) string {
	if !obj.exists {
		return "deleted from the directory"
	}
	return "out of scope"
}

func describeCaps(c activities.DiscoverResult) string {
	bulk := yesNo(c.Bulk)
	if c.Bulk && c.MaxOperations > 0 {
		bulk = fmt.Sprintf("yes (at most %d operations)", c.MaxOperations)
	}
	s := fmt.Sprintf("PATCH %s, Bulk %s, filter %s", yesNo(c.Patch), bulk, yesNo(c.Filter))
	switch {
	case c.Assumed:
		s += " (not discovered: discovery is off or the compatibility mode assumes them)"
	case c.Fallback:
		s += " (discovery failed: conservative fallback)"
	case c.Cached:
		s += " (cached ServiceProviderConfig)"
	}
	return s
}

// scopeDecision says whether the object is in the provider's scope, and why.
func scopeDecision(ctx context.Context, st *store.Store, p store.Provider, obj namedObject) (bool, string, error) {
	if !obj.exists {
		return false, "deleted from the directory", nil
	}
	if obj.kind == object.Group {
		filters, err := st.GroupFilters(ctx, p.ID)
		if err != nil {
			return false, "", err
		}
		switch {
		case len(filters) == 0:
			return true, "the provider has no group filters, so every group is", nil
		case slices.Contains(filters, obj.id):
			return true, "selected by the provider's group filters", nil
		}
		return false, "not selected by the provider's group filters", nil
	}
	in, err := st.UsersInScope(ctx, p.ID, []string{obj.id})
	if err != nil {
		return false, "", err
	}
	app := ""
	if p.ApplicationID != nil {
		apps, err := st.Applications(ctx)
		if err != nil {
			return false, "", err
		}
		for _, a := range apps {
			if a.ID == *p.ApplicationID {
				app = a.Name
			}
		}
	}
	if len(in) == 1 {
		if app != "" {
			return true, fmt.Sprintf("application %s admits the user", app), nil
		}
		return true, "the provider has no application, so every user is", nil
	}
	if p.ExcludeServiceAccounts && obj.user.Type == store.UserServiceAccount {
		return false, "service accounts are excluded (exclude_service_accounts)", nil
	}
	return false, fmt.Sprintf("application %s does not admit the user (its bindings)", app), nil
}

// summaryNames reads SCIMSYNC_SUMMARY_NAMES as the workers do: "" means true.
func summaryNames(v string) (bool, error) {
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usageErrorf("SCIMSYNC_SUMMARY_NAMES %q: use true or false", v)
	}
	return b, nil
}

// activityMessage is the message of an activity error without Temporal's wrapping.
func activityMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}

// syncViaTemporal signals the object's ObjectSync (starting it when none runs), waits for
// it, and reports the object's link.
func syncViaTemporal(ctx context.Context, sess *session, st *store.Store, p store.Provider, obj namedObject, stdout, stderr io.Writer) int {
	c, err := sess.temporal(ctx)
	if err != nil {
		return exitCode(stderr, "sync", err)
	}
	inst, err := sess.installation(ctx)
	if err != nil {
		return exitCode(stderr, "sync", err)
	}
	names, err := summaryNames(sess.cfg.SummaryNames)
	if err != nil {
		return exitCode(stderr, "sync", err)
	}
	fmt.Fprintf(stdout, "sync %s %s to provider %s (via Temporal, task queue %s)\n", obj.kind, obj.label, p.Name, sess.taskQueue(inst))
	opts := workflows.ObjectSyncStartOptions(sess.taskQueue(inst), inst, p.Name, obj.kind, obj.id)
	if names && obj.exists {
		opts.StaticSummary = workflows.ObjectSyncSummary(p.Name, obj.kind, obj.name())
	}
	start := time.Now()
	run, err := c.SignalWithStartWorkflow(ctx, opts.ID, workflows.SignalObjectChanged,
		workflows.ObjectChanged{Reason: "starter sync"}, opts, workflows.ObjectSyncWorkflow,
		workflows.ObjectSyncInput{Provider: p.Name, Kind: obj.kind, ObjectID: obj.id})
	if err != nil {
		return exitCode(stderr, "sync", fmt.Errorf("signal workflow %s: %w", opts.ID, err))
	}
	fmt.Fprintf(stdout, "%-10s %s (run %s): signalled, waiting for it to finish\n", "workflow", opts.ID, run.GetRunID())
	if err := run.Get(ctx, nil); err != nil {
		fmt.Fprintf(stdout, "%-10s failed after %s: %s\n", "", time.Since(start).Round(time.Millisecond), workflowMessage(err))
		fmt.Fprintf(stdout, "result     failed\n")
		return ExitFailure
	}
	fmt.Fprintf(stdout, "%-10s completed after %s\n", "", time.Since(start).Round(time.Millisecond))
	links, err := st.Links(ctx, p.ID, obj.kind, []string{obj.id})
	if err != nil {
		return exitCode(stderr, "sync", err)
	}
	l, ok := links[obj.id]
	switch {
	case !ok:
		fmt.Fprintf(stdout, "%-10s not linked: the object is out of scope, skipped by a mapping, or deprovisioned\n", "link")
	case l.LastError != "":
		fmt.Fprintf(stdout, "%-10s error: %s\n", "link", l.LastError)
		fmt.Fprintf(stdout, "result     failed\n")
		return ExitFailure
	case l.DeprovisionedAt != nil:
		fmt.Fprintf(stdout, "%-10s deactivated at the target (remote id %s)\n", "link", l.Remote())
	default:
		fmt.Fprintf(stdout, "%-10s remote id %s%s\n", "link", orDash(l.Remote()), syncedAt(l))
	}
	fmt.Fprintf(stdout, "result     ok\n")
	return ExitOK
}

// workflowMessage is the innermost message of a workflow failure: what the activity or
// workflow said, without the layers of wrapping.
func workflowMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return te.Error()
	}
	var ce *temporal.CanceledError
	if errors.As(err, &ce) {
		return "canceled"
	}
	var term *temporal.TerminatedError
	if errors.As(err, &term) {
		return "terminated"
	}
	return err.Error()
}
