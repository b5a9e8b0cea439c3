// Command bench is scimsync's end-to-end benchmark. It starts a Temporal dev server, creates
// a fresh PostgreSQL database per scenario, seeds a synthetic directory with set-based SQL,
// serves an in-memory SCIM target (scimtest), runs the scimsync worker as a separate process
// (cmd/worker, so that its peak RSS and its metrics are its own), runs the scenarios, and
// prints a table and writes the figures as JSON:
//
//	S1  initial full sync (default 10,000 users, 1,000 groups, 5 memberships per user), target without Bulk
//	S2  the same, target with Bulk (maxOperations 100)
//	S3  a second full sync with nothing changed
//	S4  100 single-user changes written one by one: change-to-remote latency
//	S5  S1 with 20 ms of target latency per request
//	S6  100,000 users and 10,000 groups (only when asked): bounded history, worker memory
//	S7  pacing against a rate-limited target (only when asked; see pacing.go)
//	S8  drift made at the target after S1, repaired by one full sync reading it back
//
// Next to S1, S2 and S5 it measures the limit: the same HTTP requests, replayed by a plain
// net/http client at the pipeline's concurrency to a fresh target with the same options,
// without Temporal or a database.
//
//	go run ./bench                       # S1-S5 and S8 at the sizes
//	go run ./bench --scenarios S6        # 100,000 users
//	go run ./bench --small               # the CI size: 1,000 users, 100 groups
//	go run ./bench --repeat 3 --json bench-results/bench.json
//	go run ./bench --small --temporal cluster  # on the real server (PostgreSQL, 4 shards)
//	go run ./bench --temporal-address host:7233 # on a running Temporal
//
// The bench never touches existing databases: it creates scimsync_bench_* databases on the
// server of DATABASE_URL (default the local PostgreSQL) and drops them when done.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
)

func main() {
	cfg, jsonPath, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Log = os.Stderr
	rep, err := Run(ctx, cfg)
	if rep != nil {
		rep.WriteTable(os.Stdout)
		if jsonPath != "" {
			if werr := rep.WriteJSON(jsonPath); werr != nil {
				fmt.Fprintln(os.Stderr, "bench:", werr)
				os.Exit(1)
			}
			fmt.Printf("\nfigures written to %s\n", jsonPath)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseFlags reads the configuration from the command line.
func parseFlags(args []string, out io.Writer) (Config, string, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	scenarios := fs.String("scenarios", "S1,S2,S3,S4,S5,S8", "scenarios to run, comma-separated (S1..S6, S8; S7 = S7,S7w2; S7b = S7b,S7bw2; S7L)")
	small := fs.Bool("small", false, "the CI size: 1,000 users, 100 groups, S1-S4 and S8 unless --scenarios says otherwise")
	jsonPath := fs.String("json", "", "write the figures as JSON to this file")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "users in the directory of S1-S5")
	fs.IntVar(&cfg.Groups, "groups", cfg.Groups, "groups in the directory of S1-S5")
	fs.IntVar(&cfg.MembershipsPerUser, "memberships-per-user", cfg.MembershipsPerUser, "groups each user is a member of")
	fs.IntVar(&cfg.S6Users, "s6-users", cfg.S6Users, "users of S6")
	fs.IntVar(&cfg.S6Groups, "s6-groups", cfg.S6Groups, "groups of S6 (0: a tenth of --s6-users)")
	fs.IntVar(&cfg.S7Users, "s7-users", cfg.S7Users, "users of the pacing scenarios (S7...)")
	fs.IntVar(&cfg.S7Groups, "s7-groups", cfg.S7Groups, "groups of the pacing scenarios")
	fs.Float64Var(&cfg.S7Rate, "s7-rate", cfg.S7Rate, "the pacing scenarios' target limit, requests a second")
	fs.IntVar(&cfg.S7Burst, "s7-burst", cfg.S7Burst, "the pacing scenarios' target burst")
	fs.IntVar(&cfg.Changes, "changes", cfg.Changes, "single-user changes written in S4")
	fs.DurationVar(&cfg.ChangeGap, "change-gap", cfg.ChangeGap, "pause between one change arriving and the next being written (S4)")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "target latency per request in S5")
	fs.IntVar(&cfg.BulkMaxOperations, "bulk-max-operations", cfg.BulkMaxOperations, "the target's bulk.maxOperations in S2")
	fs.IntVar(&cfg.WriteConcurrency, "write-concurrency", cfg.WriteConcurrency, "SCIMSYNC_WRITE_CONCURRENCY of the worker")
	fs.IntVar(&cfg.MaxActivities, "max-activities", cfg.MaxActivities, "SCIMSYNC_MAX_ACTIVITIES of the worker")
	fs.IntVar(&cfg.Parallelism, "parallelism", cfg.Parallelism, "SyncBatch children a FullSync runs at once (0: the workflow's default)")
	fs.IntVar(&cfg.Repeat, "repeat", cfg.Repeat, "run every scenario this many times (fresh database and target each time) and report the spread")
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "PostgreSQL server where the bench creates its databases (DATABASE_URL)")
	fs.StringVar(&cfg.TemporalCLI, "temporal-cli", cfg.TemporalCLI, "temporal CLI used for the dev server (default: .bin/temporal, see `make tools`)")
	fs.StringVar(&cfg.Temporal, "temporal", cfg.Temporal, "the Temporal server the bench starts: dev (temporal server start-dev) or cluster (the real server on PostgreSQL with 4 history shards, scripts/temporal-cluster.sh)")
	fs.StringVar(&cfg.TemporalAddress, "temporal-address", cfg.TemporalAddress, "use the running Temporal server at host:port (namespace default) instead of starting one")
	fs.StringVar(&cfg.WorkerBinary, "worker-binary", cfg.WorkerBinary, "a prebuilt cmd/worker binary (default: built into a temporary directory)")
	fs.StringVar(&cfg.PprofDir, "pprof", cfg.PprofDir, "profile the worker: write a CPU profile per scenario and a heap profile into this directory")
	fs.Func("temporal-config", "dynamic config KEY=VALUE for the dev server (repeatable), e.g. history.transferProcessorMaxPollRPS=1000",
		func(v string) error {
			if !strings.Contains(v, "=") {
				return fmt.Errorf("want KEY=VALUE, got %q", v)
			}
			cfg.TemporalConfig = append(cfg.TemporalConfig, v)
			return nil
		})
	fs.StringVar(&cfg.WorkerDSNParams, "worker-dsn-params", cfg.WorkerDSNParams,
		"query parameters appended to the worker's DATABASE_URL, e.g. log_min_duration_statement=0 to log every statement's time")
	fs.BoolVar(&cfg.KeepDatabases, "keep-databases", cfg.KeepDatabases, "keep the scimsync_bench_* databases (their names are printed), to inspect them")
	fs.BoolVar(&cfg.KeepLogs, "keep-logs", cfg.KeepLogs, "keep the worker and dev server logs (their directory is printed)")
	if err := fs.Parse(args); err != nil {
		return Config{}, "", err
	}
	if fs.NArg() > 0 {
		return Config{}, "", fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *small {
		cfg.Users, cfg.Groups = SmallUsers, SmallGroups
		if !set["scenarios"] {
			*scenarios = "S1,S2,S3,S4,S8"
		}
	}
	if set["users"] && cfg.Users >= 100_000 && !set["scenarios"] {
		// At this size S1-S5 are S6 already; run only the scale scenario.
		cfg.S6Users, cfg.S6Groups = cfg.Users, cfg.Groups
		*scenarios = "S6"
	}
	var err error
	if cfg.Scenarios, err = ParseScenarios(*scenarios); err != nil {
		return Config{}, "", err
	}
	return cfg, *jsonPath, cfg.Validate()
}

// DefaultConfig returns the sizes and the worker's default settings.
func DefaultConfig() Config {
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		dsn = testenv.DefaultDatabaseURL
	}
	return Config{
		Users:              10_000,
		Groups:             1_000,
		MembershipsPerUser: 5,
		S6Users:            100_000,
		S7Users:            2_000,
		S7Groups:           200,
		S7Rate:             20,
		S7Burst:            40,
		Changes:            100,
		ChangeGap:          100 * time.Millisecond,
		Latency:            20 * time.Millisecond,
		BulkMaxOperations:  100,
		WriteConcurrency:   8,
		MaxActivities:      20,
		Repeat:             1,
		DatabaseURL:        dsn,
		Temporal:           "dev",
		Scenarios:          []string{"S1", "S2", "S3", "S4", "S5", "S8"},
	}
}
