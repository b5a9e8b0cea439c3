package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// The crash tests run in parallel with each other (after the package's other tests): each
// has its own Temporal dev server, database, target and worker processes, so that one's
// worker never reconciles (deletes) another's schedules, and the minutes they spend waiting
// for the heartbeat timeout of activities whose worker was killed overlap.

// ---------------------------------------------------------------------------------------
// A Temporal dev server of one test, which can be stopped and started again.

type devServer struct {
	t      *testing.T
	cli    string
	Addr   string
	dbFile string // "" keeps everything in memory
	log    string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	client client.Client
}

// newDevServer starts a dev server for the test on a free port; persistent keeps its state
// in a SQLite file, so that it survives a restart.
func newDevServer(t *testing.T, persistent bool) *devServer {
	t.Helper()
	cli, err := testenv.TemporalCLI()
	if err != nil {
		testenv.Unavailable(t, "Temporal dev server: %v", err)
	}
	dir := t.TempDir()
	d := &devServer{t: t, cli: cli, Addr: freeAddr(t), log: filepath.Join(dir, "devserver.log")}
	if persistent {
		d.dbFile = filepath.Join(dir, "temporal.db")
	}
	t.Cleanup(func() {
		d.mu.Lock()
		c := d.client
		d.mu.Unlock()
		if c != nil {
			c.Close()
		}
		d.Stop(syscall.SIGTERM)
	})
	d.Start()
	return d
}

// Start starts the server and waits until it answers.
func (d *devServer) Start() {
	d.t.Helper()
	host, port, _ := strings.Cut(d.Addr, ":")
	args := []string{"server", "start-dev", "--ip", host, "--port", port, "--headless", "--log-level", "error",
		"--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=true"}
	for name, typ := range workflows.SearchAttributes {
		args = append(args, "--search-attribute", name+"="+typ.String())
	}
	if d.dbFile != "" {
		args = append(args, "--db-filename", d.dbFile)
	}
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.Command(d.cli, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start dev server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := client.DialContext(ctx, client.Options{HostPort: d.Addr, Namespace: testenv.Namespace})
		cancel()
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(d.log)
			d.t.Fatalf("dev server exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("dev server not ready after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server with sig (SIGTERM: a clean shutdown; SIGKILL: a crash).
func (d *devServer) Stop(sig syscall.Signal) {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	testenv.StopProcess(cmd.Process.Pid, exited, sig)
}

// Client returns a client of the server; it reconnects by itself across restarts.
func (d *devServer) Client() client.Client {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client == nil {
		c, err := client.Dial(client.Options{HostPort: d.Addr, Namespace: testenv.Namespace})
		if err != nil {
			d.t.Fatal(err)
		}
		d.client = c
	}
	return d.client
}

// ---------------------------------------------------------------------------------------
// A PostgreSQL cluster of one test, which can be restarted without disturbing the
// machine's shared cluster.

type pgCluster struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	DSN  string
}

func pgRun(args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	return exec.Command(args[0], args[1:]...)
}

// newPGCluster initialises and starts a private cluster on a free port.
func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bin := os.Getenv("SCIMSYNC_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		testenv.Unavailable(t, "PostgreSQL server binaries (initdb, pg_ctl) not in %s (set SCIMSYNC_PG_BIN)", bin)
	}
	dir, err := os.MkdirTemp("", "scimsync-pg-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v %s", dir, err, out)
		}
	}
	_, portStr, _ := strings.Cut(freeAddr(t), ":")
	port, _ := strconv.Atoi(portStr)
	pg := &pgCluster{t: t, bin: bin, dir: dir, port: port,
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	if out, err := pgRun(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-N").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.ctl("start")
	t.Cleanup(func() { pg.ctl("stop") })
	return pg
}

// ctl runs pg_ctl start, stop or restart (fast mode: sessions are cut) and waits.
func (pg *pgCluster) ctl(action string) {
	pg.t.Helper()
	args := []string{filepath.Join(pg.bin, "pg_ctl"), "-D", filepath.Join(pg.dir, "data"), "-m", "fast", "-w",
		"-l", filepath.Join(pg.dir, "postgres.log")}
	if action != "stop" {
		args = append(args, "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", pg.port, pg.dir))
	}
	if out, err := pgRun(append(args, action)...).CombinedOutput(); err != nil && action != "stop" {
		b, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
		pg.t.Fatalf("pg_ctl %s: %v\n%s\n%s", action, err, out, b)
	}
}

// startTime is pg_postmaster_start_time() of the cluster, asked on a new connection.
func (pg *pgCluster) startTime(t *testing.T) time.Time {
	t.Helper()
	db, err := sql.Open("postgres", pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var at time.Time
	if err := db.QueryRow(`SELECT pg_postmaster_start_time()`).Scan(&at); err != nil {
		t.Fatalf("PostgreSQL start time: %v", err)
	}
	return at
}

// ---------------------------------------------------------------------------------------

// newIsolatedEnv is newEnvWithoutWorker for the parallel tests: its own Temporal server and
// (when dsn is "") a fresh database on the shared PostgreSQL; no target (tests set one).
func newIsolatedEnv(t *testing.T, dev interface{ Client() client.Client }, dsn string) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	t.Cleanup(cancel)
	if dsn == "" {
		dsn = testenv.NewDatabase(t, true)
	}
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, store: s, dsn: dsn, inst: installationOf(t, s), temporal: dev.Client(),
		queue: fmt.Sprintf("it-%s-%d", safeName(t.Name()), queueSeq.Add(1))}
}

// startKillableSync sets up a crash test: its own Temporal (newPrivateTemporal) and
// database, a flat directory of nUsers and nGroups, a flaky target without Bulk (every
// object its own request) seeded with seed, the provider, and a worker process, started;
// it returns the ID of the full sync the provider's schedule started.
func startKillableSync(t *testing.T, provider string, seed uint64, nUsers, nGroups int) (*env, *directory, *flakyTarget, *workerProc, string) {
	t.Helper()
	srv := newPrivateTemporal(t) // a dev server, or a namespace of its own on the cluster
	e := newIsolatedEnv(t, srv, "")
	d, ft := e.flatWorld(provider, scimtest.Options{Config: scimtest.Config{NoBulk: true}}, seed, nUsers, nGroups, nil)
	w := e.newWorkerProc(buildWorker(t), workerOptions{TemporalAddress: srv.address(), Namespace: srv.namespace()})
	w.Start()
	return e, d, ft, w, e.scheduledFullSync(e.temporal, provider, time.Minute)
}

// TestWorkerKilledThreeTimesDuringFullSync: the worker process is killed with SIGKILL three
// times during a full sync, in the middle of writing users and, at full size, of writing
// groups and their members, and started again each time. The full sync finishes with the
// exact remote state: no duplicate (the creates whose answer the kill lost are looked up
// before they are posted again), nothing missing.
//
// The activities a killed worker was running are retried once their heartbeat timeout
// (30 seconds) expires. At CI size the second and third kills come as soon as the
// restarted worker has sent a request, so these waits overlap; at full size every kill
// waits for the sync to be writing again.
func TestWorkerKilledThreeTimesDuringFullSync(t *testing.T) {
	t.Parallel()
	nUsers, nGroups := sizes()
	e, d, ft, w, id := startKillableSync(t, "crash", 3, nUsers, nGroups)

	var killedAt []string
	sent := 0 // requests the target had received when the last worker was killed
	kill := func(what string) {
		u, g := ft.Len()
		w.Kill()
		sent = ft.Requests()
		killedAt = append(killedAt, fmt.Sprintf("%s (target had %d users, %d groups)", what, u, g))
		w.Start()
	}
	e.waitTargetUsers(ft, len(d.users)/4, 10*time.Minute)
	kill("writing users")
	if fullSize() {
		e.waitTargetUsers(ft, len(d.users)*6/10, 10*time.Minute)
		kill("writing users again")
		e.waitFor(15*time.Minute, func() string {
			if _, g := ft.Len(); g < len(d.groups)/10 {
				return fmt.Sprintf("target has %d groups", g)
			}
			return ""
		})
		kill("writing groups")
	} else {
		// Each restarted worker is killed as soon as it has sent the target a request:
		// in the middle of its recovery, whatever the machine's speed.
		e.waitRequestsAfter(ft, &sent, 5*time.Minute)
		kill("recovering")
		e.waitRequestsAfter(ft, &sent, 5*time.Minute)
		kill("recovering again")
	}

	progress, r := e.awaitExactSync(id, ft, d, 25*time.Minute)
	if progress.Users.Failed+progress.Groups.Failed != 0 {
		t.Errorf("progress = %+v, want no failure", progress)
	}
	figures(t, "%d users, %d groups; kills survived %d: %s; duplicates %d, missing %d",
		len(d.users), len(d.groups), w.Kills, strings.Join(killedAt, ", "), r.Duplicates, r.Missing)
}

// changeWriter writes directory changes in the background, as other services do: new
// users (added to groups), renamed users, new groups, membership changes. It keeps d up to
// date with what it wrote.
type changeWriter struct {
	e    *env
	d    *directory
	mu   sync.Mutex
	n    int // changes written
	next int
}

func (cw *changeWriter) step() error {
	e, d := cw.e, cw.d
	cw.mu.Lock()
	defer cw.mu.Unlock()
	i := cw.next
	cw.next++
	err := e.store.InTx(e.ctx, func(tx *store.Tx) error {
		switch i % 4 {
		case 0, 1: // a new user in a group
			u, err := tx.CreateUser(e.ctx, store.User{Username: fmt.Sprintf("new%05d", i), Name: fmt.Sprintf("New%d Person%d", i, i),
				Email: fmt.Sprintf("new%05d@example.test", i), IsActive: true})
			if err != nil {
				return err
			}
			g := d.groups[i%len(d.groups)]
			if err := tx.AddMember(e.ctx, g.ID, u.ID); err != nil {
				return err
			}
			d.users = append(d.users, u)
			d.inScope[u.Username] = true
			d.members[g.Name] = append(d.members[g.Name], u.Username)
		case 2: // an existing user renamed
			k := (i * 7) % len(d.users)
			u := d.users[k]
			u.Name = fmt.Sprintf("Renamed%d Again%d", i, k)
			saved, err := tx.UpdateUser(e.ctx, u)
			if err != nil {
				return err
			}
			d.users[k] = saved
		case 3: // a membership added, every fourth time in a new group
			if i%16 == 3 {
				g, err := tx.CreateGroup(e.ctx, store.Group{Name: fmt.Sprintf("ng%05d", i)})
				if err != nil {
					return err
				}
				d.groups = append(d.groups, g)
			}
			g := d.groups[(i*3)%len(d.groups)]
			u := d.users[(i*5)%len(d.users)]
			for _, m := range d.members[g.Name] {
				if m == u.Username {
					return nil
				}
			}
			if err := tx.AddMember(e.ctx, g.ID, u.ID); err != nil {
				return err
			}
			d.members[g.Name] = append(d.members[g.Name], u.Username)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("change %d: %w", i, err)
	}
	cw.n++
	return nil
}

// grownBy returns a condition for e.waitFor: that n more changes have been written than
// when it was called.
func (cw *changeWriter) grownBy(n int) func() string {
	cw.mu.Lock()
	want := cw.n + n
	cw.mu.Unlock()
	return func() string {
		cw.mu.Lock()
		defer cw.mu.Unlock()
		if cw.n < want {
			return fmt.Sprintf("%d changes written, want %d", cw.n, want)
		}
		return ""
	}
}

// run writes a change every interval until stop is closed.
func (cw *changeWriter) run(interval time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := cw.step(); err != nil {
					cw.e.t.Errorf("write a change: %v", err)
					return
				}
			}
		}
	}()
	return done
}

// TestWorkerKilledThreeTimesWhileChangesAreWritten: after an initial full sync, changes are
// written to the directory continuously; the worker (which relays them through the change
// feed and syncs each object) is killed with SIGKILL three times and started again. Every
// change reaches the target: exact state, no duplicate, nothing missing.
func TestWorkerKilledThreeTimesWhileChangesAreWritten(t *testing.T) {
	t.Parallel()
	nUsers, nGroups := sizes()
	e, d, ft, w, id := startKillableSync(t, "changes", 4, nUsers/3, nGroups/2)
	if _, err := e.awaitWorkflow(e.temporal, id, 10*time.Minute); err != nil {
		t.Fatalf("initial full sync: %v", err)
	}

	cw := &changeWriter{e: e, d: d}
	stop := make(chan struct{})
	interval := 50 * time.Millisecond
	if fullSize() {
		interval = 10 * time.Millisecond
	}
	writing := cw.run(interval, stop)
	// Each kill comes once the worker has synced changes written since it started, and the
	// next start once more changes have piled up with no worker running: conditions, not
	// durations, so every round covers the same ground on a slow machine as on a fast one.
	round := 10 // changes written in each round
	if fullSize() {
		round = 250
	}
	sent := ft.Requests()
	for i := range 3 {
		e.waitFor(5*time.Minute, cw.grownBy(round))
		e.waitRequestsAfter(ft, &sent, 5*time.Minute)
		w.Kill()
		sent = ft.Requests()
		e.waitFor(5*time.Minute, cw.grownBy(round*(i+1)/2))
		w.Start()
	}
	e.waitFor(5*time.Minute, cw.grownBy(round))
	e.waitRequestsAfter(ft, &sent, 5*time.Minute)
	close(stop)
	<-writing

	r := e.waitState(ft.Server, d, ft.Creates, 8*time.Minute)
	e.waitOutboxEmpty(10 * time.Second)
	figures(t, "%d changes written while the worker was killed %d times; target %d users, %d groups; duplicates %d, missing %d",
		cw.n, w.Kills, r.Users, r.Groups, r.Duplicates, r.Missing)
}

// TestTemporalRestartedMidSync: the Temporal server (a dev server on a SQLite file) stops
// in the middle of a full sync and starts again on the same file; the worker reconnects and
// the same full sync finishes with the exact remote state.
func TestTemporalRestartedMidSync(t *testing.T) {
	t.Parallel()
	nUsers, nGroups := sizes()
	dev := newDevServer(t, true)
	e := newIsolatedEnv(t, dev, "")
	// Bulk on: this test also covers the Bulk path.
	d, ft := e.flatWorld("restart", scimtest.Options{}, 5, nUsers, nGroups, func(p *store.Provider) { p.PageSize = 25 })

	w := e.newWorkerProc(buildWorker(t), workerOptions{TemporalAddress: dev.Addr})
	w.Start()
	id := e.scheduledFullSync(e.temporal, "restart", time.Minute)
	e.waitTargetUsers(ft, len(d.users)/4, 5*time.Minute)
	u0, _ := ft.Len()
	dev.Stop(syscall.SIGKILL)
	down := time.Now()
	// The server comes back only once the worker has seen it gone: its health check says so.
	e.waitFor(time.Minute, func() string {
		if code, body := httpGet(t, "http://"+w.Addr+"/healthz"); code != 503 || !strings.Contains(body, "temporal: unreachable") {
			return fmt.Sprintf("worker /healthz answers %d %q, want 503 temporal: unreachable", code, body)
		}
		return ""
	})
	dev.Start()
	downFor := time.Since(down)

	_, r := e.awaitExactSync(id, ft, d, 15*time.Minute)
	if u0 >= len(d.users) {
		t.Errorf("Temporal was killed when the target had %d of %d users: not in the middle of the sync", u0, len(d.users))
	}
	figures(t, "%d users, %d groups; Temporal killed with SIGKILL when the target had %d users, back after %s on the same file (the worker reported it unreachable); worker restarts 0; duplicates %d, missing %d",
		len(d.users), len(d.groups), u0, downFor.Round(100*time.Millisecond), r.Duplicates, r.Missing)
}

// TestPostgresRestartedMidSync: the PostgreSQL server restarts (cutting every session) in
// the middle of a full sync; the worker's activities and change feed reconnect, and the
// full sync finishes with the exact remote state.
func TestPostgresRestartedMidSync(t *testing.T) {
	t.Parallel()
	nUsers, nGroups := sizes()
	pg := newPGCluster(t)
	dev := newDevServer(t, false)
	e := newIsolatedEnv(t, dev, pg.DSN)
	d, ft := e.flatWorld("pgrestart", scimtest.Options{Config: scimtest.Config{NoBulk: true}}, 6, nUsers, nGroups, nil)
	ft.SetLatency(50 * time.Millisecond) // so that the restart comes in the middle of the writes

	w := e.newWorkerProc(buildWorker(t), workerOptions{TemporalAddress: dev.Addr, Env: []string{"SCIMSYNC_WRITE_CONCURRENCY=2"}})
	w.Start()
	id := e.scheduledFullSync(e.temporal, "pgrestart", time.Minute)
	e.waitTargetUsers(ft, len(d.users)/3, 5*time.Minute)
	u0, _ := ft.Len()
	started := pg.startTime(t)
	pg.ctl("restart")
	if again := pg.startTime(t); !again.After(started) {
		t.Fatalf("PostgreSQL start time %s after the restart, was %s: it did not restart", again, started)
	}

	e.awaitExactSync(id, ft, d, 15*time.Minute)
	// The change feed is connected again: a change made now arrives.
	var ada store.User
	e.tx(func(tx *store.Tx) (err error) {
		ada, err = tx.CreateUser(e.ctx, store.User{Username: "after-restart", Name: "After Restart", Email: "after@example.test", IsActive: true})
		return err
	})
	d.users = append(d.users, ada)
	d.inScope[ada.Username] = true
	r := e.waitState(ft.Server, d, ft.Creates, 2*time.Minute)
	if u0 >= len(d.users)-1 {
		t.Errorf("PostgreSQL restarted when the target had %d of %d users: not in the middle of the sync", u0, len(d.users)-1)
	}
	figures(t, "%d users, %d groups; PostgreSQL restarted when the target had %d users; duplicates %d, missing %d",
		len(d.users), len(d.groups), u0, r.Duplicates, r.Missing)
}

// TestChangesWrittenWithoutWorkerAreDelivered: changes made while no worker runs (new,
// renamed, deleted and deactivated users, new groups, memberships) wait in the outbox and
// all reach the target once a worker starts, through the change feed alone (no new full
// sync runs).
func TestChangesWrittenWithoutWorkerAreDelivered(t *testing.T) {
	t.Parallel()
	nUsers, nGroups := sizes()
	nUsers, nGroups = nUsers/3, nGroups/2
	dev := newDevServer(t, false)
	e := newIsolatedEnv(t, dev, "")
	d, ft := e.flatWorld("offline", scimtest.Options{}, 7, nUsers, nGroups, nil)

	w := e.newWorkerProc(buildWorker(t), workerOptions{TemporalAddress: dev.Addr})
	w.Start()
	id := e.scheduledFullSync(e.temporal, "offline", time.Minute)
	if _, err := e.awaitWorkflow(e.temporal, id, 10*time.Minute); err != nil {
		t.Fatalf("initial full sync: %v", err)
	}
	if r := compareState(ft.Server, d, nil); !r.ok() {
		t.Fatalf("after the initial full sync: %s", r)
	}
	w.Stop()

	// No worker runs: write changes.
	cw := &changeWriter{e: e, d: d}
	changes := 40
	if fullSize() {
		changes = 400
	}
	for range changes {
		if err := cw.step(); err != nil {
			t.Fatal(err)
		}
	}
	deleted, deactivated := d.users[1], d.users[2]
	e.tx(func(tx *store.Tx) error {
		if err := tx.DeleteUser(e.ctx, deleted.ID); err != nil {
			return err
		}
		deactivated.IsActive = false
		saved, err := tx.UpdateUser(e.ctx, deactivated)
		d.users[2] = saved
		return err
	})
	d.users = append(d.users[:1:1], d.users[2:]...)
	for g, ms := range d.members {
		d.members[g] = removeString(ms, deleted.Username)
	}
	delete(d.inScope, deleted.Username)
	var waiting int
	e.store.DB().GetContext(e.ctx, &waiting, `SELECT count(*) FROM sync_changes`)
	if r := compareState(ft.Server, d, nil); r.ok() {
		t.Fatal("the target changed while no worker ran")
	}

	w.Start()
	r := e.waitState(ft.Server, d, nil, 5*time.Minute)
	desc, err := e.temporal.ScheduleClient().GetHandle(e.ctx, workflows.FullSyncScheduleID(e.inst, "offline")).Describe(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(desc.Info.RecentActions); n != 1 {
		t.Errorf("the schedule started %d full syncs, want only the initial one (the change feed delivers)", n)
	}
	figures(t, "%d changes (%d outbox rows) written while no worker ran, all delivered; duplicates %d, missing %d",
		cw.n+2, waiting, r.Duplicates, r.Missing)
}

func removeString(xs []string, x string) []string {
	out := xs[:0:0]
	for _, s := range xs {
		if s != x {
			out = append(out, s)
		}
	}
	return out
}
