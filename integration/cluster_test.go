package integration

// Tests on the production-shaped Temporal cluster (issue 14): the real server on
// PostgreSQL with 4 history shards, started by scripts/temporal-cluster.sh with
// deploy/temporal/config. `make test` runs them, with a chosen part of the rest of the
// suite, under SCIMSYNC_TEMPORAL=cluster (CLUSTER_TESTS in the Makefile); without it they
// are skipped.

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// requireCluster skips the test unless the tests run on the cluster.
func requireCluster(t *testing.T) {
	t.Helper()
	if !testenv.ClusterMode() {
		t.Skip("runs on the Temporal cluster: SCIMSYNC_TEMPORAL=cluster (make test runs it)")
	}
}

// privateTemporal is a Temporal of one test's own, for tests whose worker processes
// reconcile (and so delete) every schedule they do not know: a dev server of its own, or,
// on the cluster, a namespace of its own.
type privateTemporal interface {
	Client() client.Client
	address() string
	namespace() string
}

func newPrivateTemporal(t *testing.T) privateTemporal {
	t.Helper()
	if !testenv.ClusterMode() {
		return newDevServer(t, false)
	}
	srv := testenv.Temporal(t)
	ns := "it-" + safeName(t.Name())
	return &clusterNamespace{addr: srv.FrontendHostPort(), ns: ns, c: testenv.NewNamespace(t, srv, ns)}
}

func (d *devServer) address() string   { return d.Addr }
func (d *devServer) namespace() string { return testenv.Namespace }

type clusterNamespace struct {
	addr, ns string
	c        client.Client
}

func (n *clusterNamespace) Client() client.Client { return n.c }
func (n *clusterNamespace) address() string       { return n.addr }
func (n *clusterNamespace) namespace() string     { return n.ns }

// processGone reports whether no process has the pid any more.
func processGone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }

// TestClusterTemporalKilledMidSync: the Temporal server process (all four services) is
// killed with SIGKILL in the middle of a full sync; while it is down, directory changes
// are written (they wait in the outbox); it starts again on the same databases. The same
// full sync finishes, every change is delivered: the exact state, no duplicate, nothing
// left in the outbox. The worker process is never restarted.
func TestClusterTemporalKilledMidSync(t *testing.T) {
	requireCluster(t)
	t.Parallel()
	nUsers, nGroups := sizes()
	cl := testenv.NewTestCluster(t, "killed")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e := newIsolatedEnv(t, cl, "")
	d, ft := e.flatWorld("srvkill", scimtest.Options{Config: scimtest.Config{NoBulk: true}}, 9, nUsers, nGroups, nil)
	ft.SetLatency(50 * time.Millisecond) // so that the kill comes in the middle of the writes

	w := e.newWorkerProc(buildWorker(t), workerOptions{TemporalAddress: cl.Addr, Env: []string{"SCIMSYNC_WRITE_CONCURRENCY=2"}})
	w.Start()
	id := e.scheduledFullSync(e.temporal, "srvkill", time.Minute)
	e.waitTargetUsers(ft, len(d.users)/4, 5*time.Minute)
	u0, _ := ft.Len()
	pid := cl.Pid()
	cl.Kill()
	if !processGone(pid) {
		t.Fatalf("the Temporal server (pid %d) still runs after SIGKILL", pid)
	}
	down := time.Now()
	e.waitFor(time.Minute, func() string {
		if code, body := httpGet(t, "http://"+w.Addr+"/healthz"); code != 503 || !strings.Contains(body, "temporal: unreachable") {
			return fmt.Sprintf("worker /healthz answers %d %q, want 503 temporal: unreachable", code, body)
		}
		return ""
	})
	// Changes made while Temporal is down: the relay cannot deliver them, they wait.
	cw := &changeWriter{e: e, d: d}
	for range 20 {
		if err := cw.step(); err != nil {
			t.Fatal(err)
		}
	}
	var waiting int
	if err := e.store.DB().GetContext(e.ctx, &waiting, `SELECT count(*) FROM sync_changes`); err != nil {
		t.Fatal(err)
	}
	if waiting == 0 {
		t.Fatal("no change waits in the outbox while Temporal is down")
	}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	downFor := time.Since(down)
	if cl.Pid() == pid {
		t.Fatal("the server was not started again")
	}

	progress, err := e.awaitWorkflow(e.temporal, id, 15*time.Minute)
	if err != nil {
		t.Fatalf("the full sync started before the kill: %v", err)
	}
	if progress.Phase != workflows.PhaseDone || progress.Users.Failed+progress.Groups.Failed != 0 {
		t.Errorf("progress = %+v, want done with no failure", progress)
	}
	r := e.waitState(ft.Server, d, ft.Creates, 5*time.Minute)
	e.waitOutboxEmpty(30 * time.Second)
	if u0 >= len(d.users)-cw.n {
		t.Errorf("Temporal was killed when the target had %d of %d users: not in the middle of the sync", u0, len(d.users)-cw.n)
	}
	figures(t, "%d users, %d groups; the Temporal server (PostgreSQL, 4 shards) killed with SIGKILL when the target had %d users, back after %s on the same databases; %d changes (%d outbox rows) written while it was down, all delivered; worker restarts 0; duplicates %d, missing %d",
		len(d.users), len(d.groups), u0, downFor.Round(100*time.Millisecond), cw.n, waiting, r.Duplicates, r.Missing)
}

// TestClusterFullSyncSpreadsOverShards: the cluster has 4 history shards, and a full sync's
// workflows (the FullSync and its SyncBatch children) land on several of them: the
// server's own executions table says which shard holds each. The sync ends in the exact
// remote state.
func TestClusterFullSyncSpreadsOverShards(t *testing.T) {
	cl := testenv.SharedCluster(t)
	e := newEnv(t, scimtest.Options{})
	info, err := e.temporal.WorkflowService().GetClusterInfo(e.ctx, &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetHistoryShardCount() != 4 {
		t.Fatalf("the cluster has %d history shards, want 4", info.GetHistoryShardCount())
	}
	d := buildDirectory(e, 340) // 300 in scope
	app, err := e.store.ApplicationByName(e.ctx, d.application)
	if err != nil {
		t.Fatal(err)
	}
	e.provider("sharded", func(p *store.Provider) { p.ApplicationID = &app.ID; p.PageSize = 25 })
	progress, run, err := e.fullSync("sharded", workflows.FullSyncInput{})
	if err != nil {
		t.Fatalf("full sync: %v", err)
	}
	checkRemoteState(t, e.target, d, false)
	if progress.Phase != workflows.PhaseDone || progress.Users.Created != 300 || progress.Groups.Created != 20 {
		t.Errorf("progress = %+v", progress)
	}

	ids := []string{run.GetID()}
	iter := e.temporal.GetWorkflowHistory(e.ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
			ids = append(ids, a.GetWorkflowExecution().GetWorkflowId())
		}
	}
	if len(ids) < 9 {
		t.Fatalf("the full sync ran %d workflows, want at least 9 (a FullSync and its batches of 25)", len(ids))
	}
	db, err := sql.Open("postgres", cl.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var shards int
	if err := db.QueryRowContext(e.ctx, `SELECT count(*) FROM shards`).Scan(&shards); err != nil {
		t.Fatal(err)
	}
	if shards != 4 {
		t.Errorf("the persistence database has %d shards, want 4", shards)
	}
	rows, err := db.QueryContext(e.ctx, `SELECT shard_id, count(*) FROM current_executions WHERE workflow_id = ANY($1) GROUP BY shard_id`, pq.Array(ids))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	perShard := map[int]int{}
	found := 0
	for rows.Next() {
		var shard, n int
		if err := rows.Scan(&shard, &n); err != nil {
			t.Fatal(err)
		}
		perShard[shard] = n
		found += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if found != len(ids) {
		t.Errorf("the executions table holds %d of the %d workflows", found, len(ids))
	}
	if len(perShard) < 2 {
		t.Errorf("the %d workflows are on shards %v, want several", len(ids), perShard)
	}
	var spread []string
	for s, n := range perShard {
		spread = append(spread, fmt.Sprintf("shard %d: %d", s, n))
	}
	sort.Strings(spread)
	figures(t, "4 history shards; a full sync of 300 users and 20 groups ran %d workflows, on %d shards (%s); exact state",
		len(ids), len(perShard), strings.Join(spread, ", "))
}

// TestClusterWorkerStartedBeforeTemporal: a worker process started while the Temporal
// server is not running yet does not exit: it says it is waiting for Temporal, and once
// the server is up it connects by itself, registers its search attributes and schedules,
// and the full sync its schedule starts produces the exact remote state.
func TestClusterWorkerStartedBeforeTemporal(t *testing.T) {
	requireCluster(t)
	t.Parallel()
	nUsers, nGroups := sizes()
	cl := testenv.NewTestCluster(t, "late") // its schema ready, the server not started
	e := newIsolatedEnv(t, cl, "")
	d, ft := e.flatWorld("late", scimtest.Options{}, 10, nUsers/3, nGroups/2, nil)

	w := e.newWorkerProc(buildWorker(t), workerOptions{TemporalAddress: cl.Addr})
	w.launch()
	e.waitFor(time.Minute, func() string {
		if n := strings.Count(w.Logs(), "waiting for Temporal"); n < 2 {
			return fmt.Sprintf("the worker logged 'waiting for Temporal' %d times, want 2:\n%s", n, w.tail(10))
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up := time.Now()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.waitHealthy(time.Minute)
	connected := time.Since(up)
	id := e.scheduledFullSync(e.temporal, "late", time.Minute)
	_, r := e.awaitExactSync(id, ft, d, 10*time.Minute)
	figures(t, "worker started before the Temporal server, waited (%d 'waiting for Temporal' lines) and was healthy %s after the server was started; %d users, %d groups; duplicates %d, missing %d",
		strings.Count(w.Logs(), "waiting for Temporal"), connected.Round(100*time.Millisecond), len(d.users), len(d.groups), r.Duplicates, r.Missing)
}
