package integration

// Pacing (issue 12) on real processes: workers built from ./cmd/worker, a Temporal dev
// server, PostgreSQL, and scimtest targets that throttle like SaaS applications.

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// twoWorkers starts two worker processes with one activity slot each. With ft, each
// presents a token of its own (workerToken), by which the flaky front tells them apart:
// with ft.HoldCreatesForWorkers(2) both are then sure to write.
func (e *env) twoWorkers(ft *flakyTarget) (*workerProc, *workerProc) {
	e.t.Helper()
	bin := buildWorker(e.t)
	var ws [2]*workerProc
	for i := range ws {
		env := []string{"SCIMSYNC_MAX_ACTIVITIES=1"}
		if ft != nil {
			env = append(env, "IT_TARGET_TOKEN="+workerToken(i+1))
		}
		ws[i] = e.newWorkerProc(bin, workerOptions{Env: env})
		ws[i].Start()
	}
	return ws[0], ws[1]
}

func throttledAndTotal(reqs []scimtest.Request) (throttled, total int) {
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			throttled++
		}
	}
	return throttled, len(reqs)
}

// TestTwoWorkersStayUnderOneTargetsLimit: a target that takes 20 requests a second (burst
// 20, 429 with Retry-After 1 beyond), no Bulk, and a provider configured with that limit.
// Two workers writing at once stay under it together: at most 2% of the requests the
// target counts are answered 429, and the state is exact.
func TestTwoWorkersStayUnderOneTargetsLimit(t *testing.T) {
	nUsers, nGroups := sizes()
	e := newEnvWithoutWorker(t, scimtest.Options{})
	e.extend(20 * time.Minute)
	limit := &scimtest.RateLimit{PerSecond: 20, Burst: 20, RetryAfter: "1"}
	d, ft := e.flatWorld("limited", scimtest.Options{Config: scimtest.Config{NoBulk: true}, RateLimit: limit,
		MaxLogEntries: 4 * (nUsers + nGroups)}, 12, nUsers, nGroups, func(p *store.Provider) {
		p.RateLimitPerMinute, p.RateLimitBurst, p.PageSize = 1200, 20, 50
	})
	ft.HoldCreatesForWorkers(2)
	e.twoWorkers(ft)
	start := time.Now()
	id := e.scheduledFullSync(e.temporal, "limited", time.Minute)
	_, r := e.awaitExactSync(id, ft, d, 15*time.Minute)
	wall := time.Since(start)

	reqs := ft.Server.Requests()
	throttled, total := throttledAndTotal(reqs)
	if total == 0 || float64(throttled) > 0.02*float64(total) {
		t.Errorf("%d of %d requests answered 429, want at most 2%%", throttled, total)
	}
	if n := ft.WorkersSeen(); n != 2 {
		t.Errorf("%d worker(s) wrote to the target, want both", n)
	}
	span := reqs[len(reqs)-1].Time.Sub(reqs[0].Time).Seconds()
	figures(t, "%d users, %d groups, 2 workers, target 20/s burst 20: %d requests, %d answered 429 (%.2f%%), %.1f requests/s at the target, wall %s; duplicates %d, missing %d",
		nUsers, nGroups, total, throttled, 100*float64(throttled)/float64(total), float64(total)/span, wall.Round(time.Second), r.Duplicates, r.Missing)
}

// TestOneRetryAfterPausesBothWorkers: a target with no limit of its own answers one create
// in the middle of a full sync with 429 and Retry-After: 5. The whole provider waits: no
// request reaches the target from a second after that answer (the requests already on
// their way, and the few tokens already handed out, arrive within it) until the five
// seconds are over, whichever of the two workers was sending; then the sync ends exactly.
func TestOneRetryAfterPausesBothWorkers(t *testing.T) {
	nUsers, nGroups := sizes()
	e := newEnvWithoutWorker(t, scimtest.Options{})
	e.extend(20 * time.Minute)
	d, ft := e.flatWorld("pause", scimtest.Options{Config: scimtest.Config{NoBulk: true},
		MaxLogEntries: 4 * (nUsers + nGroups)}, 13, nUsers, nGroups, func(p *store.Provider) {
		p.RateLimitPerMinute, p.RateLimitBurst, p.PageSize = 1200, 20, 50
	})
	ft.Server.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 429, RetryAfter: "5", After: nUsers / 3, Times: 1})
	ft.HoldCreatesForWorkers(2)
	e.twoWorkers(ft)
	id := e.scheduledFullSync(e.temporal, "pause", time.Minute)
	e.awaitExactSync(id, ft, d, 15*time.Minute)

	reqs := ft.Server.Requests()
	var at time.Time
	for _, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			at = r.Time
		}
	}
	if at.IsZero() {
		t.Fatal("the target answered no 429")
	}
	var early, during []string
	for _, r := range reqs {
		switch after := r.Time.Sub(at); {
		case after > 0 && after <= time.Second:
			early = append(early, fmt.Sprintf("%s %s +%s", r.Method, r.Route, after.Round(time.Millisecond)))
		case after > time.Second && after < 5*time.Second:
			during = append(during, fmt.Sprintf("%s %s +%s", r.Method, r.Route, after.Round(time.Millisecond)))
		}
	}
	if len(during) > 0 {
		t.Errorf("%d requests reached the target during the 5s pause: %s", len(during), strings.Join(during, ", "))
	}
	// In flight at most: two workers × one activity × 8 requests; tokens handed out: a
	// quarter of a second's worth (5) to each.
	if len(early) > 2*8+2*5 {
		t.Errorf("%d requests in the second after the 429, more than were in flight or leased: %s", len(early), strings.Join(early, ", "))
	}
	if n := ft.WorkersSeen(); n != 2 {
		t.Errorf("%d worker(s) wrote to the target, want both", n)
	}
	var resumed time.Duration
	for _, r := range reqs {
		if r.Time.After(at.Add(time.Second)) {
			resumed = r.Time.Sub(at)
			break
		}
	}
	figures(t, "429 with Retry-After 5 after %d creates: %d requests within 1s of it (in flight), none for the next 4s, the first after %s; 2 workers",
		nUsers/3, len(early), resumed.Round(time.Millisecond))
}

// TestTargetThatThrottlesForeverIsAskedOncePerRetryAfter: every answer is 429 with
// Retry-After: 2. The target gets one request per 2 seconds (the probe after each pause),
// and starter status says that the provider is paused, by what, and until when.
func TestTargetThatThrottlesForeverIsAskedOncePerRetryAfter(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	smallDirectory(e, 20)
	e.clearOutbox() // the full sync alone writes
	e.target.AddFault(scimtest.Fault{Status: 429, RetryAfter: "2"})
	e.provider("forever", func(p *store.Provider) { p.RateLimitPerMinute = 6000 })
	w1, w2 := e.twoWorkers(nil)
	id := e.scheduledFullSync(e.temporal, "forever", time.Minute)
	// A worker stopping gracefully waits for its activities, here waiting for the target:
	// these are killed.
	defer func() { w1.Kill(); w2.Kill(); e.temporal.TerminateWorkflow(e.ctx, id, "", "test over") }()

	e.waitFor(time.Minute, func() string {
		if n := len(e.target.Requests()); n < 5 {
			return fmt.Sprintf("%d requests so far, waiting for 5", n)
		}
		return ""
	})
	reqs := e.target.Requests()
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		times[i] = r.Time
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 2*time.Second {
			t.Errorf("requests %d and %d are %s apart, want at least the Retry-After of 2s", i, i+1, gap)
		}
	}
	// The provider is paused but for the moment of each probe: ask until status says so.
	line := ""
	e.waitFor(30*time.Second, func() string {
		out := e.starter("status", "--provider", "forever")
		for _, l := range strings.Split(out.stdout, "\n") {
			if strings.Contains(l, "pacing") {
				line = l
			}
		}
		if !strings.Contains(line, "PAUSED until") {
			return fmt.Sprintf("status (exit %d) says %q", out.code, line)
		}
		return ""
	})
	for _, want := range []string{"429 with Retry-After 2s", "limit 6000/min (config)", "throttled (429) so far"} {
		if !strings.Contains(line, want) {
			t.Errorf("status pacing line %q lacks %q", line, want)
		}
	}
	figures(t, "a target answering 429 with Retry-After 2 to everything got %d requests in %s", len(times), times[len(times)-1].Sub(times[0]).Round(time.Millisecond))
}

// TestALongPauseShowsInProgressAndMetrics: a 429 with Retry-After of 90 seconds in the
// middle of a full sync shows in the sync's progress (read every 30 s while batches run)
// and in the workers' scimsync_pacing_paused_seconds.
func TestALongPauseShowsInProgressAndMetrics(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	smallDirectory(e, 30)
	e.clearOutbox() // the full sync alone writes
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 429, RetryAfter: "90", After: 5, Times: 1})
	e.provider("long", nil)
	w1, w2 := e.twoWorkers(nil)
	id := e.scheduledFullSync(e.temporal, "long", time.Minute)
	defer func() { w1.Kill(); w2.Kill(); e.temporal.TerminateWorkflow(e.ctx, id, "", "test over") }()

	var p workflows.FullSyncProgress
	e.waitFor(2*time.Minute, func() string {
		var ok bool
		if p, ok = queryProgress(e.ctx, e.temporal, id); !ok || p.Pacing == nil || p.Pacing.PausedUntil == nil {
			return fmt.Sprintf("progress %+v shows no pause yet", p)
		}
		return ""
	})
	// The reading comes 30s after the batches started, a little after the 429.
	if left := p.Pacing.PausedUntil.Sub(p.Pacing.At); left < 30*time.Second || left > 90*time.Second {
		t.Errorf("progress: paused for %s more, want between 30s and 90s", left)
	}
	if p.Pacing.PauseCause != "429 with Retry-After 1m30s" || p.Pacing.Throttles != 1 {
		t.Errorf("progress pacing %+v", *p.Pacing)
	}
	// The workers that write to the provider say so in their metrics.
	e.waitFor(30*time.Second, func() string {
		var seen []string
		for _, w := range []*workerProc{w1, w2} {
			_, body := httpGet(t, "http://"+w.Addr+"/metrics")
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, `scimsync_pacing_paused_seconds{provider="long"}`) {
					var v float64
					fmt.Sscanf(strings.Fields(l)[1], "%g", &v)
					if v > 30 {
						return ""
					}
					seen = append(seen, l)
				}
			}
		}
		return fmt.Sprintf("no worker reports the pause: %q", seen)
	})
	figures(t, "a 90s Retry-After showed in the progress (%s) and on the workers' /metrics", p.Pacing.PauseCause)
}

// TestARefusedCreateIsPostedAgainWithoutALookup: creates answered 429 are posted again,
// with no GET before them; a create answered 500 (it may have gone through) is looked up
// with one request, by externalId, before it is posted again.
func TestARefusedCreateIsPostedAgainWithoutALookup(t *testing.T) {
	e := newSequentialEnv(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	users := smallDirectory(e, 6)
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 429, RetryAfter: "1", Times: 3})
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 500, After: 3, Times: 1})
	e.provider("refused", func(p *store.Provider) { p.PageSize = 10 })
	if _, _, err := e.fullSync("refused", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, users)
	var posts, searches int
	var lastThrottle time.Time
	for _, r := range e.target.Requests() {
		switch r.Route {
		case "POST /Users":
			posts++
			if r.Status == http.StatusTooManyRequests {
				lastThrottle = r.Time
			} else if !lastThrottle.IsZero() && r.Time.Sub(lastThrottle) < time.Second {
				t.Errorf("a create %s after a 429 with Retry-After 1", r.Time.Sub(lastThrottle))
			}
		case "GET /Users":
			if !r.Query.Has("filter") {
				continue // the read-back's listing, not a lookup
			}
			searches++
			if f := r.Query.Get("filter"); !strings.HasPrefix(f, "externalId eq ") {
				t.Errorf("lookup filter %q, want one by externalId", f)
			}
		}
	}
	// 6 creates, 3 refused (429) and sent again, 1 answered 500 and sent again after one
	// lookup that found nothing.
	if posts != 6+3+1 || searches != 1 {
		t.Errorf("%d POSTs and %d searches, want 10 and 1", posts, searches)
	}
}
