package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// Sizes of --small, the size CI runs.
const (
	SmallUsers  = 1_000
	SmallGroups = 100
)

// AllScenarios lists the scenarios in the order they run. S7 and its variants are the
// pacing scenarios (see pacing.go): "S7" on the command line selects S7 and S7w2, "S7b"
// S7b and S7bw2.
var AllScenarios = []string{"S1", "S2", "S3", "S4", "S5", "S6", "S7", "S7w2", "S7b", "S7bw2", "S7L", "S8"}

// Config says what to run. DefaultConfig returns the sizes.
type Config struct {
	Users, Groups      int // directory of S1-S5
	MembershipsPerUser int
	S6Users, S6Groups  int // directory of S6; S6Groups 0 means S6Users/10
	S7Users, S7Groups  int // directory of the pacing scenarios
	// S7Rate and S7Burst are the rate limit of the pacing scenarios' target (requests a
	// second, bucket size), which their provider is configured with (S7L: not configured).
	S7Rate  float64
	S7Burst int
	Changes int // single-user changes in S4
	// ChangeGap is the pause between a change arriving and the next one being written.
	ChangeGap         time.Duration
	Latency           time.Duration // target latency per request in S5
	BulkMaxOperations int           // the target's bulk.maxOperations in S2
	WriteConcurrency  int           // SCIMSYNC_WRITE_CONCURRENCY
	MaxActivities     int           // SCIMSYNC_MAX_ACTIVITIES
	// Parallelism is FullSyncInput.Parallelism; 0 means the workflow's default.
	Parallelism int
	Repeat      int
	Scenarios   []string

	DatabaseURL string // server on which the bench creates (and drops) its databases
	TemporalCLI string // "" means testenv.TemporalCLI()
	// Temporal is the server the bench starts: "dev" (temporal server start-dev) or
	// "cluster" (the production-shaped cluster of scripts/temporal-cluster.sh, on databases
	// of its own on the server of DatabaseURL). TemporalAddress, when set, is a running
	// server used instead (namespace default).
	Temporal        string
	TemporalAddress string
	WorkerBinary    string // "" means build ./cmd/worker
	PprofDir        string // "" means no profiles
	// WorkerDSNParams are extra query parameters for the worker's DATABASE_URL, e.g.
	// "log_min_duration_statement=0" to have PostgreSQL log every statement with its time.
	WorkerDSNParams string
	// TemporalConfig holds dynamic config KEY=VALUE pairs for the dev server.
	TemporalConfig []string
	KeepLogs       bool
	KeepDatabases  bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// ParseScenarios parses "S1,S3" (case-insensitive) into the known scenario names, in run
// order.
func ParseScenarios(s string) ([]string, error) {
	want := map[string]bool{}
	aliases := map[string][]string{"S7": {"S7", "S7w2"}, "S7B": {"S7b", "S7bw2"}}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if names, ok := aliases[strings.ToUpper(f)]; ok {
			for _, n := range names {
				want[n] = true
			}
			continue
		}
		i := slices.IndexFunc(AllScenarios, func(s string) bool { return strings.EqualFold(s, f) })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (use %s)", f, strings.Join(AllScenarios, ","))
		}
		want[AllScenarios[i]] = true
	}
	var out []string
	for _, s := range AllScenarios {
		if want[s] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario selected")
	}
	return out, nil
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Users < 1 || c.Groups < 1 || c.MembershipsPerUser < 0:
		return errors.New("--users and --groups must be at least 1")
	case c.Changes < 1 && c.has("S4"):
		return errors.New("--changes must be at least 1")
	case c.Changes > c.Users && c.has("S4"):
		return errors.New("--changes cannot exceed --users")
	case c.WriteConcurrency < 1 || c.MaxActivities < 1:
		return errors.New("--write-concurrency and --max-activities must be at least 1")
	case c.Repeat < 1:
		return errors.New("--repeat must be at least 1")
	case c.Temporal != "dev" && c.Temporal != "cluster" && c.Temporal != "":
		return fmt.Errorf("--temporal %q: use dev or cluster", c.Temporal)
	case len(c.TemporalConfig) > 0 && (c.Temporal == "cluster" || c.TemporalAddress != ""):
		return errors.New("--temporal-config sets the dev server's dynamic config; the cluster's is deploy/temporal/dynamicconfig/scimsync.yaml")
	case c.S6Users < 1 && c.has("S6"):
		return errors.New("--s6-users must be at least 1")
	case c.has("S8") && (c.Users < s8MinUsers || c.Groups < s8MinGroups || c.MembershipsPerUser < 1):
		return fmt.Errorf("S8 changes %d users and %d groups at the target: it needs --users ≥ %d, --groups ≥ %d and --memberships-per-user ≥ 1",
			s8MinUsers, s8MinGroups, s8MinUsers, s8MinGroups)
	}
	return nil
}

func (c Config) has(s string) bool { return slices.Contains(c.Scenarios, s) }

func (c Config) s6Groups() int {
	if c.S6Groups > 0 {
		return c.S6Groups
	}
	return max(c.S6Users/10, 1)
}

// parallelism is the number of SyncBatch children a FullSync runs at once.
func (c Config) parallelism() int {
	if c.Parallelism > 0 {
		return c.Parallelism
	}
	return 4 // workflows.DefaultParallelism
}

// limitConcurrency is the most SCIM requests the pipeline has in flight in a full sync:
// one worker × the SyncBatch children running at once (bounded by the activity slots too)
// × the requests each write activity has in flight.
func (c Config) limitConcurrency() int {
	return 1 * min(c.parallelism(), c.MaxActivities) * c.WriteConcurrency
}

func (c Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
	}
}

// harness holds what every scenario shares: a dev server, the worker binary, a directory
// for logs and profiles.
type harness struct {
	cfg      Config
	dir      string
	root     string
	bin      string
	dev      *process
	cluster  *testenv.Cluster
	temporal client.Client
	addr     string
	seq      int
}

const (
	benchSecret      = "bench-installation-secret"
	targetToken      = "bench-target-token"
	targetTokenEnv   = "SCIMSYNC_BENCH_TARGET_TOKEN"
	pprofAddrEnv     = "SCIMSYNC_BENCH_PPROF_ADDR"
	workerStopGrace  = 40 * time.Second
	devServerStopMax = 10 * time.Second
)

func newHarness(ctx context.Context, cfg Config) (*harness, error) {
	h := &harness{cfg: cfg}
	var err error
	if h.root, err = testenv.RepoRoot(); err != nil {
		return nil, err
	}
	if h.dir, err = os.MkdirTemp("", "scimsync-bench-*"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			h.Close()
		}
	}()
	h.bin = cfg.WorkerBinary
	if h.bin == "" || cfg.PprofDir != "" {
		pkg := "./cmd/worker"
		if cfg.PprofDir != "" {
			pkg = "./bench/pprofworker"
			if err := os.MkdirAll(cfg.PprofDir, 0o755); err != nil {
				return nil, err
			}
		}
		cfg.logf("building %s", pkg)
		if h.bin, err = buildWorker(ctx, h.root, h.dir, pkg); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.TemporalAddress != "":
		cfg.logf("using the Temporal server at %s", cfg.TemporalAddress)
		h.addr = cfg.TemporalAddress
		if h.temporal, err = client.DialContext(ctx, client.Options{HostPort: h.addr, Namespace: testenv.Namespace,
			Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(logWriter(cfg.Log), &slog.HandlerOptions{Level: slog.LevelWarn})))}); err != nil {
			return nil, fmt.Errorf("temporal at %s: %w", h.addr, err)
		}
		if err := testenv.EnsureNamespace(ctx, h.temporal, testenv.Namespace); err != nil {
			return nil, err
		}
	case cfg.Temporal == "cluster":
		cfg.logf("starting the Temporal cluster (scripts/temporal-cluster.sh: PostgreSQL, 4 history shards)")
		if h.cluster, err = testenv.NewCluster(ctx, testenv.ClusterOptions{Label: "bench", AdminURL: cfg.DatabaseURL, MaxConns: 20}); err != nil {
			return nil, err
		}
		if err := h.cluster.Start(ctx); err != nil {
			return nil, err
		}
		h.temporal, h.addr = h.cluster.Client(), h.cluster.Addr
	default:
		cfg.logf("starting the Temporal dev server (%s)", cfg.TemporalCLI)
		if h.dev, h.temporal, h.addr, err = startDevServer(ctx, cfg.TemporalCLI, h.dir, cfg.TemporalConfig, logWriter(cfg.Log)); err != nil {
			return nil, err
		}
	}
	ok = true
	return h, nil
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// temporalPid is the Temporal server's process (0 when the bench did not start it).
func (h *harness) temporalPid() int {
	switch {
	case h.dev != nil:
		return h.dev.Pid()
	case h.cluster != nil:
		return h.cluster.Pid()
	}
	return 0
}

// temporalDatabases are the cluster's databases, whose backends' CPU is the server's too.
func (h *harness) temporalDatabases() []string {
	if h.cluster == nil {
		return nil
	}
	return []string{h.cluster.DB, h.cluster.VisibilityDB}
}

func logWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Close stops the dev server and removes the temporary directory (unless KeepLogs).
func (h *harness) Close() {
	if h.temporal != nil && h.cluster == nil {
		h.temporal.Close()
	}
	if h.dev != nil {
		h.dev.stop(devServerStopMax)
	}
	if h.cluster != nil {
		if h.cfg.KeepLogs {
			if b, err := os.ReadFile(h.cluster.Log); err == nil {
				os.WriteFile(filepath.Join(h.dir, "temporal-cluster.log"), b, 0o644)
			}
		}
		h.cluster.Close()
	}
	if h.cfg.KeepLogs {
		h.cfg.logf("logs kept in %s", h.dir)
		return
	}
	os.RemoveAll(h.dir)
}

// worldOptions shape one world: the directory's size and the target's behaviour.
type worldOptions struct {
	users, groups int
	target        scimtest.Options
	latency       time.Duration
	// workers is the number of worker processes (0 means 1); the figures of workers and
	// activities are the first one's.
	workers int
	// provider, when set, edits the provider before it is saved.
	provider func(*store.Provider)
}

// world is one directory database, one SCIM target, one provider and one worker process
// on a task queue of its own.
type world struct {
	h           *harness
	name        string
	provider    string
	queue       string
	inst        workflows.Installation // the database's installation
	dbName      string
	dsn         string
	store       *store.Store
	target      *scimtest.Server
	opts        worldOptions
	memberships int
	worker      *process
	workerURL   string
	pprofURL    string
	// others are the worker processes besides the first.
	others []*process
}

func (h *harness) newWorld(ctx context.Context, name string, opts worldOptions) (*world, error) {
	h.seq++
	w := &world{h: h, name: name, opts: opts,
		provider: "bench-" + name,
		queue:    fmt.Sprintf("bench-%s-%d-%d", name, os.Getpid(), h.seq),
		dbName:   fmt.Sprintf("scimsync_bench_%d_%d", os.Getpid(), h.seq),
	}
	ok := false
	defer func() {
		if !ok {
			w.close()
		}
	}()
	var err error
	if w.dsn, err = createDatabase(ctx, h.cfg.DatabaseURL, w.dbName); err != nil {
		return nil, err
	}
	if w.store, err = store.Open(ctx, w.dsn); err != nil {
		return nil, err
	}
	if _, err := w.store.Migrate(ctx); err != nil {
		return nil, err
	}
	installation, err := w.store.Installation(ctx)
	if err != nil {
		return nil, err
	}
	if w.inst, err = workflows.NewInstallation(installation.ID); err != nil {
		return nil, err
	}
	start := time.Now()
	if w.memberships, err = seedDirectory(ctx, w.store.DB(), opts.users, opts.groups, h.cfg.MembershipsPerUser); err != nil {
		return nil, err
	}
	h.cfg.logf("%s: seeded %d users, %d groups, %d memberships in %s", name, opts.users, opts.groups,
		w.memberships, time.Since(start).Round(time.Millisecond))

	opts.target.Token = targetToken
	w.target = scimtest.NewUnstartedServer(opts.target)
	if opts.latency > 0 {
		w.target.AddFault(scimtest.Fault{Latency: opts.latency})
	}
	w.target.Start()

	if err := w.store.InTx(ctx, func(tx *store.Tx) error {
		p := store.ProviderDefaults()
		p.Name = w.provider
		p.BaseURL = w.target.URL
		p.Token = "env:" + targetTokenEnv
		p.PageSize = 100
		p.LinkExisting = false
		if opts.provider != nil {
			opts.provider(&p)
		}
		_, err := tx.UpsertProvider(ctx, p)
		return err
	}); err != nil {
		return nil, err
	}
	// The worker keeps a schedule per provider, and a new schedule starts a full sync at
	// once. Create it first, without that run, and pause it: every full sync of the bench
	// is started by the bench, and none can start at an hour's turn in the middle of one.
	if err := worker.ReconcileSchedules(ctx, h.temporal, w.store,
		worker.ScheduleOptions{TaskQueue: w.queue, NoInitialRun: true, Logger: quietLogger}); err != nil {
		return nil, err
	}
	if err := h.temporal.ScheduleClient().GetHandle(ctx, workflows.FullSyncScheduleID(w.inst, w.provider)).
		Pause(ctx, client.SchedulePauseOptions{Note: "paused by the benchmark"}); err != nil {
		return nil, fmt.Errorf("pause schedule: %w", err)
	}
	if err := w.startWorker(ctx); err != nil {
		return nil, err
	}
	for i := 1; i < opts.workers; i++ {
		p, _, err := w.launchWorker(ctx, fmt.Sprintf("%s-%d", name, i+1), false)
		if err != nil {
			return nil, err
		}
		w.others = append(w.others, p)
	}
	ok = true
	return w, nil
}

func (w *world) startWorker(ctx context.Context) error {
	p, url, err := w.launchWorker(ctx, w.name, true)
	if err != nil {
		return err
	}
	w.worker, w.workerURL = p, url
	return nil
}

// launchWorker starts a worker process of the world; the first one (profiled when the
// bench profiles) is the one the figures are taken from.
func (w *world) launchWorker(ctx context.Context, logName string, first bool) (*process, string, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	settings := map[string]string{
		"DATABASE_URL":                 withParams(w.dsn, w.h.cfg.WorkerDSNParams),
		"TEMPORAL_ADDRESS":             w.h.addr,
		"SCIMSYNC_TASK_QUEUE":          w.queue,
		"SCIMSYNC_INSTALLATION_SECRET": benchSecret,
		"SCIMSYNC_HTTP_ADDR":           httpAddr,
		"SCIMSYNC_WRITE_CONCURRENCY":   strconv.Itoa(w.h.cfg.WriteConcurrency),
		"SCIMSYNC_MAX_ACTIVITIES":      strconv.Itoa(w.h.cfg.MaxActivities),
		targetTokenEnv:                 targetToken,
	}
	if w.h.cfg.PprofDir != "" && first {
		pprofAddr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		settings[pprofAddrEnv] = pprofAddr
		w.pprofURL = "http://" + pprofAddr
	}
	logPath := filepath.Join(w.h.dir, "worker-"+logName+".log")
	p, err := startProcess("worker", logPath, workerEnv(settings), w.h.bin)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + httpAddr
	return p, url, waitHealthy(ctx, p, url)
}

// withParams appends query parameters to a postgres:// URL.
func withParams(dsn, params string) string {
	if params == "" {
		return dsn
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

func (w *world) close() {
	if w.worker != nil {
		w.worker.stop(workerStopGrace)
	}
	for _, p := range w.others {
		p.stop(workerStopGrace)
	}
	if w.target != nil {
		w.target.Close()
	}
	if w.store != nil {
		w.store.Close()
	}
	if w.dsn != "" && w.h.cfg.KeepDatabases {
		w.h.cfg.logf("%s: database %s kept", w.name, w.dbName)
	} else if w.dsn != "" {
		dropDatabase(w.h.cfg.DatabaseURL, w.dbName)
	}
}

// pprof asks the profiling worker to start or stop a CPU profile, or saves its heap
// profile; without --pprof it does nothing.
func (w *world) pprof(ctx context.Context, action, file string) {
	if w.pprofURL == "" {
		return
	}
	path := filepath.Join(w.h.cfg.PprofDir, file)
	u := w.pprofURL + "/bench/" + action + "?file=" + path
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.h.cfg.logf("pprof %s: %v", action, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.h.cfg.logf("pprof %s: %s", action, resp.Status)
	}
}
