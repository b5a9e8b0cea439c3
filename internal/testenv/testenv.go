// Package testenv gives integration tests real services: a fresh, migrated PostgreSQL
// database per test binary (one per package) and a Temporal dev server started from the
// temporal CLI with scimsync's search attributes registered.
//
// Where a service cannot be had, tests are skipped, except under CI=true, where a missing
// service fails the run. Call Main from TestMain so the database is dropped and the server
// stopped when the package's tests end.
//
// Eventually and SyncBuffer serve the tests of those services, which change state and log
// from goroutines of their own.
package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// DefaultDatabaseURL is used when DATABASE_URL is unset: the machine's local PostgreSQL.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// Main runs the package's tests and then drops the database and stops the dev server that
// the tests started. Use it as: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	cleanupMu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanupMu.Unlock()
	os.Exit(code)
}

func atExit(f func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, f)
	cleanupMu.Unlock()
}

// InCI reports whether missing services must fail rather than skip tests.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable fails the test under CI=true and skips it otherwise, saying what is missing
// and how to provide it.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatalf("required service unavailable (CI=true): %s", msg)
	}
	tb.Skipf("skipped, service unavailable: %s", msg)
}

var db struct {
	once sync.Once
	dsn  string
	err  error
}

// DatabaseURL returns the URL of a fresh, migrated database for this test binary, created
// on first use on the server at DATABASE_URL (or DefaultDatabaseURL) and dropped by Main.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	db.once.Do(func() { db.dsn, db.err = createDatabase() })
	if db.err != nil {
		Unavailable(tb, "PostgreSQL: %v (set DATABASE_URL, or start it: pg_ctlcluster --skip-systemctl-redirect 15 main start)", db.err)
	}
	return db.dsn
}

// Store opens a store on the test database; it is closed when the test ends.
func Store(tb testing.TB) *store.Store {
	tb.Helper()
	dsn := DatabaseURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		tb.Fatalf("open test store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// NewDatabase creates another fresh, migrated database named after the test, for tests that
// need an empty schema of their own; it is dropped when the test ends.
func NewDatabase(tb testing.TB, migrate bool) string {
	tb.Helper()
	DatabaseURL(tb) // fail or skip early when PostgreSQL is missing
	name := dbName(tb.Name())
	dsn, err := createNamedDatabase(name, migrate)
	if err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() { dropDatabase(name) })
	return dsn
}

func baseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

func dbName(label string) string {
	label = unsafeName.ReplaceAllString(strings.ToLower(label), "_")
	if len(label) > 30 {
		label = label[len(label)-30:]
	}
	return fmt.Sprintf("scimsync_test_%s_%d", strings.Trim(label, "_"), os.Getpid())
}

func createDatabase() (string, error) {
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	name := dbName(pkg)
	dsn, err := createNamedDatabase(name, true)
	if err != nil {
		return "", err
	}
	atExit(func() { dropDatabase(name) })
	return dsn, nil
}

func createNamedDatabase(name string, migrate bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := store.Open(ctx, baseURL())
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.DB().ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop stale database %s: %w", name, err)
	}
	if _, err := admin.DB().ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(baseURL())
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL must be a postgres:// URL: %w", err)
	}
	u.Path = "/" + name
	dsn := u.String()
	if migrate {
		s, err := store.Open(ctx, dsn)
		if err != nil {
			return "", err
		}
		defer s.Close()
		if _, err := s.Migrate(ctx); err != nil {
			return "", err
		}
	}
	return dsn, nil
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := store.Open(ctx, baseURL())
	if err != nil {
		return
	}
	defer admin.Close()
	admin.DB().ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
}

// Namespace is the Temporal namespace tests use.
const Namespace = "default"

var dev struct {
	once   sync.Once
	server *testsuite.DevServer
	err    error
}

// TemporalCLI returns the path of the temporal CLI (v1.5.1): $TEMPORAL_CLI, else .bin/temporal
// at the repository root, else $GOPATH/bin/temporal, else temporal on PATH.
func TemporalCLI() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("TEMPORAL_CLI=%s: %w", p, err)
		}
		return p, nil
	}
	var candidates []string
	if root, err := RepoRoot(); err == nil {
		candidates = append(candidates, filepath.Join(root, ".bin", "temporal"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(p, "bin", "temporal"))
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("temporal CLI not found: run `make tools` (go install github.com/temporalio/cli/cmd/temporal@v1.5.1) or set TEMPORAL_CLI")
}

// RepoRoot returns the directory holding go.mod, searching up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Temporal returns a dev server shared by this test binary, started on first use with
// scimsync's search attributes registered, and stopped by Main. With
// SCIMSYNC_TEMPORAL=cluster it is a production-shaped cluster instead (see Cluster), or the
// server at TEMPORAL_ADDRESS when that is set.
func Temporal(tb testing.TB) TemporalServer {
	tb.Helper()
	if ClusterMode() {
		shared.once.Do(func() { shared.server, shared.cluster, shared.err = startShared() })
		if shared.err != nil {
			Unavailable(tb, "Temporal cluster (SCIMSYNC_TEMPORAL=cluster): %v", shared.err)
		}
		return shared.server
	}
	dev.once.Do(func() { dev.server, dev.err = startDevServer(nil) })
	if dev.err != nil {
		Unavailable(tb, "Temporal dev server: %v", dev.err)
	}
	return dev.server
}

// TemporalClient returns a client of the shared server (see Temporal).
func TemporalClient(tb testing.TB) client.Client {
	tb.Helper()
	return Temporal(tb).Client()
}

// TemporalWith starts a dev server of the test's own, like Temporal's but with the dynamic
// config values given (KEY=VALUE, as `temporal server start-dev --dynamic-config-value`
// takes them), and stops it when the test ends.
func TemporalWith(tb testing.TB, dynamic ...string) *testsuite.DevServer {
	tb.Helper()
	srv, err := startDevServer(dynamic)
	if err != nil {
		Unavailable(tb, "Temporal dev server: %v", err)
	}
	tb.Cleanup(func() { srv.Stop() })
	return srv
}

func startDevServer(dynamic []string) (*testsuite.DevServer, error) {
	cli, err := TemporalCLI()
	if err != nil {
		return nil, err
	}
	args := []string{
		// Visibility queries right after a start must see the custom attributes.
		"--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=true",
	}
	for _, kv := range dynamic {
		args = append(args, "--dynamic-config-value", kv)
	}
	for name, typ := range workflows.SearchAttributes {
		args = append(args, "--search-attribute", name+"="+typ.String())
	}
	logFile, err := os.CreateTemp("", "scimsync-devserver-*.log")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: cli,
		// Keyless, as a starter without SCIMSYNC_CODEC_KEYS is: it describes the schedules
		// of workers that seal payloads (their summaries read as codec.SealedText).
		ClientOptions: &client.Options{Namespace: Namespace, DataConverter: codec.KeylessDataConverter()},
		LogLevel:      "error",
		ExtraArgs:     args,
		Stdout:        logFile,
		Stderr:        logFile,
	})
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (log %s): %w", cli, logFile.Name(), err)
	}
	atExit(func() {
		srv.Stop()
		logFile.Close()
		os.Remove(logFile.Name())
	})
	return srv, nil
}
