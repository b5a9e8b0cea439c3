package integration

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// escrowWorker starts cmd/worker with the given escrow schedule, looking for due retries
// every 200 ms.
func (e *env) escrowWorker(delays string) *workerProc {
	e.t.Helper()
	w := e.newWorkerProc(buildWorker(e.t), workerOptions{Env: []string{
		"SCIMSYNC_ESCROW_DELAYS=" + delays, "SCIMSYNC_ESCROW_INTERVAL=200ms"}})
	w.Start()
	return w
}

// metric reads a counter or gauge without labels from the worker's /metrics.
func (w *workerProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, body := httpGet(t, "http://"+w.Addr+"/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not on /metrics", name)
	return 0
}

// waitEscrowPasses waits until the worker's escrow has finished n more passes than now:
// at least n-1 of them began after this call.
func (e *env) waitEscrowPasses(w *workerProc, n int) {
	e.t.Helper()
	start := w.metric(e.t, "scimsync_escrow_passes_total")
	e.waitFor(30*time.Second, func() string {
		if got := w.metric(e.t, "scimsync_escrow_passes_total"); got < start+float64(n) {
			return fmt.Sprintf("the escrow passed %v times since, want %d", got-start, n)
		}
		return ""
	})
}

// requestsTo returns the target's logged requests of one route ("POST /Users").
func requestsTo(s *scimtest.Server, route string) []scimtest.Request {
	var out []scimtest.Request
	for _, r := range s.Requests() {
		if r.Route == route {
			out = append(out, r)
		}
	}
	return out
}

// objectSyncSignals returns the reasons of the object-changed signals of every run of the
// object's ObjectSync, oldest run first.
func (e *env) objectSyncSignals(provider, kind, id string) []string {
	e.t.Helper()
	wid := workflows.ObjectSyncID(e.inst, provider, kind, id)
	var runs []string
	var token []byte
	for {
		// Visibility is eventually consistent: the caller waits for the runs it expects.
		resp, err := e.temporal.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", wid), NextPageToken: token})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ex := range resp.Executions {
			runs = append([]string{ex.Execution.RunId}, runs...) // newest first in the listing
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	var reasons []string
	for _, run := range runs {
		it := e.temporal.GetWorkflowHistory(e.ctx, wid, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				e.t.Fatal(err)
			}
			if ev.GetEventType() != enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
				continue
			}
			var sig workflows.ObjectChanged
			payloads := ev.GetWorkflowExecutionSignaledEventAttributes().GetInput()
			if err := converter.GetDefaultDataConverter().FromPayloads(payloads, &sig); err != nil {
				e.t.Fatal(err)
			}
			reasons = append(reasons, sig.Reason)
		}
	}
	return reasons
}

// linkState describes a link's escrow columns, and whether its next attempt is exactly the
// delay of its attempt count after its failure.
func linkState(l store.Link, delays []time.Duration) string {
	next := "none"
	if l.NextAttemptAt != nil {
		next = "at failure + " + l.NextAttemptAt.Sub(l.UpdatedAt).String()
	}
	want := "none"
	if l.Attempts >= 1 && l.Attempts <= len(delays) {
		want = "at failure + " + delays[l.Attempts-1].String()
	}
	if l.Attempts == 0 {
		want = "none"
	}
	state := fmt.Sprintf("attempts %d, next %s, error %q", l.Attempts, next, l.LastError)
	switch {
	case next == want:
	case l.Attempts >= 1 && l.Attempts < len(delays) && l.NextAttemptAt != nil &&
		l.NextAttemptAt.Sub(l.UpdatedAt) >= delays[l.Attempts-1]+delays[l.Attempts]:
		// Claimed by the escrow: moved on by the next delay, from the claim.
		state = fmt.Sprintf("attempts %d, claimed", l.Attempts)
	case l.Attempts == len(delays) && l.NextAttemptAt == nil:
		state = fmt.Sprintf("attempts %d, claimed", l.Attempts) // past the last delay: full syncs only
	default:
		state += " (next attempt wrong: want " + want + ")"
	}
	return state
}

// TestEscrowRetriesARefusedCreateOnItsOwn: a target refuses a new user's create twice
// (400), then takes it. With no directory change and no full sync after the first, the
// escrow of the worker retries it 3 s after the first failure and 6 s after the second
// (never sooner), with exact link rows at each step, and the user reaches the target
// exactly once; its ObjectSync was signalled once by the change, then twice with reason
// "retry".
func TestEscrowRetriesARefusedCreateOnItsOwn(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	p := e.provider("escrow", nil)
	delays := []time.Duration{3 * time.Second, 6 * time.Second}
	e.escrowWorker("3s,6s")
	first := e.scheduledFullSync(e.temporal, "escrow", time.Minute)
	if _, err := e.awaitWorkflow(e.temporal, first, time.Minute); err != nil {
		t.Fatalf("the schedule's first full sync: %v", err)
	}

	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 400, ScimType: "invalidValue",
		Detail: "the license pool is full", Times: 2})
	var u store.User
	e.tx(func(tx *store.Tx) (err error) {
		u, err = tx.CreateUser(e.ctx, store.User{Username: "escrowed", Name: "Es Crowed", Email: "escrowed@example.test", IsActive: true})
		return err
	})

	// Every state the link goes through, as long as each lasts (3 s, 6 s).
	var seen []string
	var errText string
	e.waitFor(time.Minute, func() string {
		links, err := e.store.Links(e.ctx, p.ID, object.User, []string{u.ID})
		if err != nil {
			return err.Error()
		}
		l, ok := links[u.ID]
		if !ok {
			return "no link yet"
		}
		state := linkState(l, delays)
		if l.LastError != "" && errText == "" {
			errText = l.LastError
		}
		if len(seen) == 0 || seen[len(seen)-1] != state {
			seen = append(seen, state)
		}
		if l.Remote() == "" || l.LastError != "" {
			return fmt.Sprintf("the link went through %q", seen)
		}
		return ""
	})
	if !strings.Contains(errText, "400") || !strings.Contains(errText, "invalidValue") {
		t.Fatalf("the link's error %q does not name the 400 invalidValue", errText)
	}
	want := []string{
		fmt.Sprintf("attempts 1, next at failure + 3s, error %q", errText),
		fmt.Sprintf("attempts 2, next at failure + 6s, error %q", errText),
		`attempts 0, next none, error ""`,
	}
	// A link may be seen between the create's record (MarkCreating) and its failure, and
	// between a claim and the retry's outcome: states that last a moment, if at all.
	var states []string
	for i, s := range seen {
		if strings.HasSuffix(s, ", claimed") || (s == `attempts 0, next none, error ""` && i != len(seen)-1) {
			continue
		}
		states = append(states, s)
	}
	if strings.Join(states, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the link went through\n%s\nwant\n%s", strings.Join(states, "\n"), strings.Join(want, "\n"))
	}

	posts := requestsTo(e.target, "POST /Users")
	var statuses []int
	for _, r := range posts {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[400 400 201]" {
		t.Fatalf("POST /Users answered %v, want [400 400 201]", statuses)
	}
	for i, d := range delays {
		if gap := posts[i+1].Time.Sub(posts[i].Time); gap < d {
			t.Errorf("retry %d came %s after the failure, sooner than its delay %s", i+1, gap, d)
		}
	}
	if got := remoteUsers(e.target); len(got) != 1 || diffJSON(got["escrowed"], expectedUser(u)) != "" {
		t.Fatalf("the target holds %d users, want the one user: %s", len(got), diffJSON(got["escrowed"], expectedUser(u)))
	}
	e.waitFor(30*time.Second, func() string {
		if got := e.objectSyncSignals("escrow", object.User, u.ID); fmt.Sprint(got) != "[user insert retry retry]" {
			return fmt.Sprintf("the ObjectSync was signalled %q, want [user insert retry retry]", got)
		}
		return ""
	})
	desc, err := e.temporal.ScheduleClient().GetHandle(e.ctx, workflows.FullSyncScheduleID(e.inst, "escrow")).Describe(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(desc.Info.RecentActions); n != 1 {
		t.Fatalf("the schedule started %d full syncs, want only its first", n)
	}
	if out := e.starter("status", "--provider", "escrow").stdout; !strings.Contains(out, "  errors     none\n") {
		t.Fatalf("status after the retry:\n%s", out)
	}
}

// TestQuarantinedProviderIsNotStormed: a target refuses every create. The schedule's first
// full sync fails all 25 users, which quarantines the provider: status says since when and
// with which error, the escrow retries none of them though all are due, and a directory
// change sends nothing (the relay leaves it to the full sync). Once the target takes
// creates again, a full sync writes every user exactly once, the changed one as changed,
// and the provider leaves the quarantine.
func TestQuarantinedProviderIsNotStormed(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	p := e.provider("sick", nil)
	users := smallDirectory(e, 25)
	e.clearOutbox()
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 400, ScimType: "invalidSyntax", Detail: "schema changed"})
	w := e.escrowWorker("1s,1s,1s")
	first := e.scheduledFullSync(e.temporal, "sick", time.Minute)
	progress, err := e.awaitWorkflow(e.temporal, first, time.Minute)
	if err != nil {
		t.Fatalf("the schedule's first full sync: %v", err)
	}
	if progress.Users.Failed != 25 {
		t.Fatalf("the first full sync failed %d users, want 25: %+v", progress.Users.Failed, progress.Users)
	}
	errs, err := e.store.LinkErrors(e.ctx, p.ID, 100)
	if err != nil || len(errs) != 25 {
		t.Fatalf("%d links in error (%v), want 25", len(errs), err)
	}
	status := e.starter("status", "--provider", "sick").stdout
	if !strings.Contains(status, "QUARANTINED since "+time.Now().UTC().Format("2006-01-02")) ||
		!strings.Contains(status, "most writes fail ("+errs[0].LastError+")") ||
		!strings.Contains(status, "1 failed attempt, next retry with the next full sync") {
		t.Fatalf("status does not show the quarantine with %q:\n%s", errs[0].LastError, status)
	}

	// Every link is due for the escrow; the escrow passes over them and signals none.
	e.waitFor(30*time.Second, func() string {
		var due int
		if err := e.store.DB().GetContext(e.ctx, &due, `SELECT count(*) FROM sync_links WHERE next_attempt_at <= now()`); err != nil {
			return err.Error()
		}
		if due != 25 {
			return fmt.Sprintf("%d links due, want 25", due)
		}
		return ""
	})
	before := len(e.target.Requests())
	e.waitEscrowPasses(w, 3)
	// A change while quarantined: relayed (the outbox empties), sent nowhere.
	changed := users[3]
	changed.Name = "Changed Whilequarantined"
	e.tx(func(tx *store.Tx) (err error) { users[3], err = tx.UpdateUser(e.ctx, changed); return err })
	e.waitOutboxEmpty(30 * time.Second)
	e.waitEscrowPasses(w, 3)
	if got := w.metric(t, "scimsync_escrow_retries_total"); got != 0 {
		t.Fatalf("the escrow retried %v objects of the quarantined provider", got)
	}
	if after := len(e.target.Requests()); after != before {
		t.Fatalf("the quarantined target received %d requests while due retries and a change waited", after-before)
	}
	_, err = e.temporal.DescribeWorkflowExecution(e.ctx, workflows.ObjectSyncID(e.inst, "sick", object.User, changed.ID), "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("the changed user's ObjectSync was started while quarantined: %v", err)
	}
	if n := len(requestsTo(e.target, "POST /Users")); n != 25 {
		t.Fatalf("the target received %d creates, want the first full sync's 25", n)
	}

	// The target recovers; a full sync ends the quarantine and writes everything once.
	e.target.ClearFaults()
	e.starter("full-sync", "--provider", "sick", "--wait").expect(t, 0)
	checkUsers(t, e.target, users)
	creates := map[string]int{}
	for _, r := range requestsTo(e.target, "POST /Users") {
		if r.Status == 201 {
			creates[string(r.Body)]++
		}
	}
	if n := len(requestsTo(e.target, "POST /Users")); n != 50 || len(creates) != 25 {
		t.Fatalf("the target received %d creates (%d distinct succeeded), want 25 refused and 25 made once", n, len(creates))
	}
	status = e.starter("status", "--provider", "sick").stdout
	if strings.Contains(status, "QUARANTINED") || !strings.Contains(status, "  errors     none\n") ||
		!strings.Contains(status, "  linked     25 users, 0 groups\n") {
		t.Fatalf("status after the recovery:\n%s", status)
	}
	var left int
	if err := e.store.DB().GetContext(e.ctx, &left, `SELECT count(*) FROM sync_links
		WHERE provider_id = $1 AND (error_attempts <> 0 OR next_attempt_at IS NOT NULL OR last_error <> '')`, p.ID); err != nil || left != 0 {
		t.Fatalf("%d links keep escrow state after the recovery (%v)", left, err)
	}
}
