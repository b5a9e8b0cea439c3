package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/changefeed"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/pacing"
	"github.com/scimsync/scimsync/secretref"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// NewLogger returns the slog logger the configuration asks for, writing to w.
func NewLogger(cfg Config, w *os.File) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run runs a worker until ctx ends, then stops it gracefully: running activities finish
// (or are handed back to Temporal), the relay and the schedule keeper stop, connections
// close. It migrates the database first and registers the search attributes when missing.
// Everything that can fail is checked before the worker polls its task queue (the
// database, the installation id, Temporal and the namespace, the codec keys, the HTTP
// address, bound then, and no other installation's workers on the task queue), so that a
// worker that cannot run never takes a task. Ready, when not nil, is called once
// everything has started.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, ready func()) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.Default()
	}
	warnIfPlaintextOffHost(cfg, logger)
	secret, err := secretref.Resolve(cfg.InstallationSecret)
	if err != nil {
		return fmt.Errorf("installation secret: %w", err)
	}

	s, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer s.Close()
	s.RetryDelays = cfg.EscrowDelays // the escrow's schedule, for every failed write of this worker
	applied, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		logger.Info("database migrated", "versions", applied)
	}
	inst, err := InstallationOf(ctx, s)
	if err != nil {
		return err
	}
	taskQueue := cfg.TaskQueue
	if taskQueue == "" {
		taskQueue = workflows.DefaultTaskQueue(inst)
	}

	metrics, err := NewMetrics()
	if err != nil {
		return err
	}
	c, err := dialWaiting(ctx, cfg, logger, metrics.SDK)
	if err != nil {
		if ctx.Err() != nil { // stopped while waiting for Temporal
			logger.Info("worker stopping")
			return nil
		}
		return err
	}
	defer c.Close()
	if err := ensureSearchAttributesWaiting(ctx, c, cfg, logger, namespaceWait); err != nil {
		if ctx.Err() != nil {
			logger.Info("worker stopping")
			return nil
		}
		return err
	}
	var (
		ln           net.Listener
		codecHandler http.Handler
	)
	if cfg.HTTPAddr != "" {
		if codecHandler, err = codecServer(cfg); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen on %s (SCIMSYNC_HTTP_ADDR): %w; give this worker a free address (is another worker running here?); "+
				"the worker stopped before polling its task queue", cfg.HTTPAddr, err)
		}
		defer func() {
			if ln != nil { // not served: Run failed before
				ln.Close()
			}
		}()
	}
	if err := checkTaskQueue(ctx, c, taskQueue, inst, logger); err != nil {
		return err
	}

	// One pacing registry for the process: every activity's requests to a provider share
	// its limiter, and LISTEN brings other workers' pauses here at once.
	pacers := pacing.NewRegistry(s, logger.With("component", "pacing"))
	defer pacers.Close()
	acts := &activities.Activities{
		Store:            s,
		Mapper:           &mapping.Engine{Secret: secret},
		Signaler:         Signaler{Client: c, Installation: inst, TaskQueue: taskQueue, SummaryIDsOnly: !cfg.SummaryNames},
		WriteConcurrency: cfg.WriteConcurrency,
		RequestTimeout:   cfg.RequestTimeout,
		OnRequest:        metrics.ObserveRequest,
		OnObjects:        metrics.ObserveObjects,
		Pacing:           pacers,
	}
	metrics.WatchOutbox(s.OutboxLag)
	metrics.WatchParked(s.ParkedLag)
	metrics.WatchPacing(pacers)
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		WorkerStopTimeout:                  30 * time.Second,
		Identity:                           workerIdentity(inst),
		// Every activity first checks that its workflow is of this installation.
		Interceptors: []interceptor.WorkerInterceptor{InstallationGuard(inst)},
	})
	Register(w, acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	wg.Add(1)
	go func() { defer wg.Done(); pacers.Listen(runCtx, cfg.DatabaseURL) }()
	if !cfg.NoChangeFeed {
		relay := &changefeed.Relay{Store: s, Temporal: c, DatabaseURL: cfg.DatabaseURL, Installation: inst, TaskQueue: taskQueue,
			SummaryIDsOnly: !cfg.SummaryNames, Logger: logger.With("component", "changefeed")}
		wg.Add(1)
		go func() { defer wg.Done(); relay.Run(runCtx) }()
	}
	escrow := &Escrow{Store: s, Signaler: Signaler{Client: c, Installation: inst, TaskQueue: taskQueue},
		Interval: cfg.EscrowInterval, Logger: logger.With("component", "escrow")}
	metrics.Registry.MustRegister(escrow.Collectors()...)
	wg.Add(1)
	go func() { defer wg.Done(); escrow.Run(runCtx) }()
	keeper := &ScheduleKeeper{Client: c, Store: s, Interval: cfg.ScheduleInterval,
		Options: ScheduleOptions{Installation: inst, TaskQueue: taskQueue, Logger: logger.With("component", "schedules"),
			DataConverter: scheduleDataConverter(cfg)}}
	// One pass before the worker reports itself started (log line, ready, /healthz), so
	// that a full sync triggered right after finds every enabled provider's schedule.
	keeper.Reconcile(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		select { // the pass above counts as the first
		case <-runCtx.Done():
			return
		case <-time.After(keeper.interval()):
		}
		keeper.Run(runCtx)
	}()

	if ln != nil {
		srv := serveHTTP(ln, s, c, metrics, codecHandler, logger)
		ln = nil // the server closes it
		defer func() {
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(shutdown)
		}()
	}
	logger.Info("worker started", "installation", inst, "task_queue", taskQueue, "namespace", cfg.TemporalNamespace,
		"temporal", cfg.TemporalAddress, "http", cfg.HTTPAddr)
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	logger.Info("worker stopping")
	return nil
}

// InstallationOf returns the database's installation, in the short form of IDs.
func InstallationOf(ctx context.Context, s *store.Store) (workflows.Installation, error) {
	inst, err := s.Installation(ctx)
	if err != nil {
		return "", err
	}
	return workflows.NewInstallation(inst.ID)
}

// identityMarker precedes the installation in the identity a worker polls with.
const identityMarker = "scimsync-installation:"

// workerIdentity is the identity the worker polls with: the SDK's default (pid@host) and
// its installation, by which checkTaskQueue recognises other installations' workers.
func workerIdentity(inst workflows.Installation) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s@%s%s", os.Getpid(), host, identityMarker, inst)
}

// WorkerInstallation returns the installation of the worker that polls (or ran an
// activity, as the history says) with the identity identity; ok is false for workers
// before installation ids and other programs.
func WorkerInstallation(identity string) (inst workflows.Installation, ok bool) {
	_, after, ok := strings.Cut(identity, identityMarker)
	return workflows.Installation(after), ok && after != ""
}

// checkTaskQueue refuses a task queue that workers of another installation poll (as
// Temporal lists them: those seen in the last few minutes, of this version or later):
// both would take each other's tasks, which the installation guard refuses, failing
// syncs. Workers before installation ids are not recognised. A namespace that does not
// let the worker describe task queues is not checked, with a warning: the guard still
// refuses every foreign task.
func checkTaskQueue(ctx context.Context, c client.Client, queue string, inst workflows.Installation, logger *slog.Logger) error {
	identities, err := pollerIdentities(ctx, c, queue)
	if err != nil {
		logger.Warn("could not check that no other installation polls the task queue", "task_queue", queue, "error", err)
		return nil
	}
	for _, identity := range identities {
		if other, ok := WorkerInstallation(identity); ok && other != inst {
			return fmt.Errorf("task queue %q is polled by a worker of installation %s (%s), and this worker serves "+
				"installation %s: two installations on one task queue would run each other's workflows; give each its own "+
				"SCIMSYNC_TASK_QUEUE, or leave it unset (the default, %s, is the installation's own); Temporal lists a "+
				"stopped worker for a few minutes; the worker stopped before polling",
				queue, other, identity, inst, workflows.DefaultTaskQueue(inst))
		}
	}
	return nil
}

// pollerIdentities returns the identities of the workers Temporal lists as polling queue
// for workflow or activity tasks (those seen in the last few minutes).
func pollerIdentities(ctx context.Context, c client.Client, queue string) ([]string, error) {
	var out []string
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := c.DescribeTaskQueue(ctx, queue, typ)
		if err != nil {
			return nil, fmt.Errorf("describe task queue %s: %w", queue, err)
		}
		for _, p := range resp.GetPollers() {
			out = append(out, p.GetIdentity())
		}
	}
	return out, nil
}

// dialWaiting is dial for a worker that may start before Temporal answers (a cluster
// starting beside it, a restart): while the server is unreachable it says so and tries
// again (see waitingForTemporal), until ctx ends. Configuration errors and refusals (a bad
// API key) end it at once.
func dialWaiting(ctx context.Context, cfg Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	var c client.Client
	err := waitingForTemporal(ctx, cfg, logger, func() (err error) {
		c, err = dial(ctx, cfg, logger, metrics)
		return err
	}, unreachable)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, ctx.Err())
	}
	return c, err
}

// unreachable reports whether err says the Temporal server does not answer (yet).
func unreachable(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	return errors.As(err, &unavailable) || errors.As(err, &deadline)
}

// waitingForTemporal runs try until it succeeds or fails otherwise than waiting says is
// worth waiting for; between tries it logs "waiting for Temporal" and waits, a second at
// first and then up to 5 seconds. It returns ctx's error when ctx ends first.
func waitingForTemporal(ctx context.Context, cfg Config, logger *slog.Logger, try func() error, waiting func(error) bool) error {
	wait := time.Second
	for {
		err := try()
		if err == nil || !waiting(err) {
			return err
		}
		logger.Warn("waiting for Temporal", "address", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace,
			"error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Dial connects to Temporal as the configuration says (plain, TLS, mTLS or API key).
func Dial(ctx context.Context, cfg Config, logger *slog.Logger) (client.Client, error) {
	return dial(ctx, cfg, logger, nil)
}

func dial(ctx context.Context, cfg Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts := client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(logger.With("component", "temporal")),
		MetricsHandler: metrics,
	}
	if cfg.TemporalTLS || cfg.TemporalTLSCert != "" || cfg.TemporalAPIKey != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TemporalTLSCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TemporalTLSCert, cfg.TemporalTLSKey)
			if err != nil {
				return nil, fmt.Errorf("temporal client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts.ConnectionOptions.TLS = tc
	}
	if err := useCodec(cfg, &opts); err != nil {
		return nil, err
	}
	if cfg.TemporalAPIKey != "" {
		key, err := secretref.Resolve(cfg.TemporalAPIKey)
		if err != nil {
			return nil, fmt.Errorf("temporal api key: %w", err)
		}
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return c, nil
}

// namespaceWait is how long a starting worker waits for its namespace to exist: a cluster
// starting beside it answers before its namespace is registered. Past it, the namespace
// is taken to be misconfigured, and the worker stops saying so.
const namespaceWait = 2 * time.Minute

// ensureSearchAttributesWaiting is EnsureSearchAttributes for a worker that may start
// beside a cluster: while the namespace does not exist yet (for up to nsWait) or the
// server stops answering, it says so and tries again, as dialWaiting does.
func ensureSearchAttributesWaiting(ctx context.Context, c client.Client, cfg Config, logger *slog.Logger, nsWait time.Duration) error {
	giveUp := time.Now().Add(nsWait)
	err := waitingForTemporal(ctx, cfg, logger, func() error {
		return EnsureSearchAttributes(ctx, c, cfg.TemporalNamespace)
	}, func(err error) bool {
		var notFound *serviceerror.NamespaceNotFound
		return unreachable(err) || errors.As(err, &notFound) && time.Now().Before(giveUp)
	})
	var notFound *serviceerror.NamespaceNotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("namespace %s does not exist at Temporal %s (waited %s): create it (temporal operator namespace create %s) or set TEMPORAL_NAMESPACE: %w",
			cfg.TemporalNamespace, cfg.TemporalAddress, nsWait, cfg.TemporalNamespace, err)
	}
	return err
}

// EnsureSearchAttributes registers scimsync's custom search attributes in the namespace
// when they are missing.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes {
		if _, ok := resp.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	if err != nil && !strings.Contains(err.Error(), "already") {
		return fmt.Errorf("register search attributes (Temporal Cloud: add ScimProvider, ScimObjectKind, ScimBatchFirstId and ScimBatchLastId as Keyword in the namespace settings): %w", err)
	}
	return nil
}

// serveHTTP serves on ln /metrics, /healthz (200 when PostgreSQL and Temporal answer) and,
// when codecHandler is not nil, the codec server under /codec/.
func serveHTTP(ln net.Listener, s *store.Store, c client.Client, metrics *Metrics, codecHandler http.Handler, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	if codecHandler != nil {
		mux.Handle("/codec/", codecHandler)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		var problems []string
		if err := s.DB().PingContext(ctx); err != nil {
			problems = append(problems, "postgresql: unreachable")
		}
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			problems = append(problems, "temporal: unreachable")
		}
		if len(problems) > 0 {
			http.Error(w, strings.Join(problems, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "error", err)
		}
	}()
	return srv
}
