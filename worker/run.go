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
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/changefeed"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/pacing"
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
// Ready, when not nil, is called once everything has started.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, ready func()) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.Default()
	}
	secret, err := activities.ResolveSecret(cfg.InstallationSecret)
	if err != nil {
		return fmt.Errorf("installation secret: %w", err)
	}

	s, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer s.Close()
	applied, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		logger.Info("database migrated", "versions", applied)
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
	if err := EnsureSearchAttributes(ctx, c, cfg.TemporalNamespace); err != nil {
		return err
	}

	// One pacing registry for the process: every activity's requests to a provider share
	// its limiter, and LISTEN brings other workers' pauses here at once.
	pacers := pacing.NewRegistry(s, logger.With("component", "pacing"))
	defer pacers.Close()
	acts := &activities.Activities{
		Store:            s,
		Mapper:           &mapping.Engine{Secret: secret},
		Signaler:         Signaler{Client: c, TaskQueue: cfg.TaskQueue},
		WriteConcurrency: cfg.WriteConcurrency,
		RequestTimeout:   cfg.RequestTimeout,
		OnRequest:        metrics.ObserveRequest,
		OnObjects:        metrics.ObserveObjects,
		Pacing:           pacers,
	}
	metrics.WatchOutbox(s.OutboxLag)
	metrics.WatchParked(s.ParkedLag)
	metrics.WatchPacing(pacers)
	w := sdkworker.New(c, cfg.TaskQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		WorkerStopTimeout:                  30 * time.Second,
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
		relay := &changefeed.Relay{Store: s, Temporal: c, DatabaseURL: cfg.DatabaseURL, TaskQueue: cfg.TaskQueue,
			Logger: logger.With("component", "changefeed")}
		wg.Add(1)
		go func() { defer wg.Done(); relay.Run(runCtx) }()
	}
	keeper := &ScheduleKeeper{Client: c, Store: s, Interval: cfg.ScheduleInterval,
		Options: ScheduleOptions{TaskQueue: cfg.TaskQueue, Logger: logger.With("component", "schedules"),
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

	if cfg.HTTPAddr != "" {
		codecHandler, err := codecServer(cfg)
		if err != nil {
			return err
		}
		srv, err := serveHTTP(cfg.HTTPAddr, s, c, metrics, codecHandler, logger)
		if err != nil {
			return err
		}
		defer func() {
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(shutdown)
		}()
	}
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "namespace", cfg.TemporalNamespace,
		"temporal", cfg.TemporalAddress, "http", cfg.HTTPAddr)
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	logger.Info("worker stopping")
	return nil
}

// dialWaiting is dial for a worker that may start before Temporal answers (a cluster
// starting beside it, a restart): while the server is unreachable it says so and tries
// again, every second at first and then every 5 seconds, until ctx ends. Configuration
// errors and refusals (a bad API key) end it at once.
func dialWaiting(ctx context.Context, cfg Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	wait := time.Second
	for {
		c, err := dial(ctx, cfg, logger, metrics)
		if err == nil {
			return c, nil
		}
		var unavailable *serviceerror.Unavailable
		var deadline *serviceerror.DeadlineExceeded
		if !errors.As(err, &unavailable) && !errors.As(err, &deadline) {
			return nil, err
		}
		logger.Warn("waiting for Temporal", "address", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace,
			"error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, ctx.Err())
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
		key, err := activities.ResolveSecret(cfg.TemporalAPIKey)
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
		return fmt.Errorf("register search attributes (Temporal Cloud: add ScimProvider and ScimObjectKind as Keyword in the namespace settings): %w", err)
	}
	return nil
}

// serveHTTP serves /metrics, /healthz (200 when PostgreSQL and Temporal answer) and, when
// codecHandler is not nil, the codec server under /codec/.
func serveHTTP(addr string, s *store.Store, c client.Client, metrics *Metrics, codecHandler http.Handler, logger *slog.Logger) (*http.Server, error) {
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "error", err)
		}
	}()
	return srv, nil
}
