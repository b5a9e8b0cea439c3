package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TemporalServer is what tests need of a Temporal server: a client of the Namespace and
// the frontend's address. The dev server (testsuite.DevServer) and Cluster are ones.
type TemporalServer interface {
	Client() client.Client
	FrontendHostPort() string
}

// ClusterMode reports whether the tests run on the production-shaped Temporal cluster
// (SCIMSYNC_TEMPORAL=cluster) rather than on dev servers.
func ClusterMode() bool { return os.Getenv("SCIMSYNC_TEMPORAL") == "cluster" }

// Cluster is a production-shaped Temporal server: the real server (1.29.1) with PostgreSQL
// persistence and SQL visibility, 4 history shards and the frontend, history, matching and
// worker services in one process, configured by deploy/temporal/config/scimsync.yaml and
// run through scripts/temporal-cluster.sh, like CI's and compose's. Its two databases are
// its own (created by NewCluster, dropped by Close), so it can be killed and started again
// on the same state.
type Cluster struct {
	Addr         string // the frontend, host:port
	DB           string // persistence database
	VisibilityDB string
	Log          string // the server's log, appended across starts

	adminURL string
	script   string
	ports    []int
	env      []string
	client   client.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// ClusterOptions configure NewCluster; the zero value is usable.
type ClusterOptions struct {
	// Label names the databases: temporal_<label>_<pid> and temporal_<label>_<pid>_vis.
	Label string
	// AdminURL is the PostgreSQL server that holds them (default DATABASE_URL, else
	// DefaultDatabaseURL); its user must be allowed to create databases.
	AdminURL string
	// MaxConns bounds each service's connections per database (default 4, with 2 for
	// visibility), so that several clusters fit in PostgreSQL's 100 connections.
	MaxConns int
	LogLevel string // default warn
}

// NewCluster creates the cluster's databases and schemas on free ports, without starting
// it (Start does). Close stops it and drops the databases.
func NewCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	tools, err := clusterTools(root)
	if err != nil {
		return nil, err
	}
	if opts.AdminURL == "" {
		opts.AdminURL = baseURL()
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 3
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	label := unsafeName.ReplaceAllString(strings.ToLower(opts.Label), "_")
	if len(label) > 24 {
		label = label[len(label)-24:]
	}
	c := &Cluster{
		DB:       fmt.Sprintf("temporal_%s_%d", strings.Trim(label, "_"), os.Getpid()),
		adminURL: opts.AdminURL,
		script:   filepath.Join(root, "scripts", "temporal-cluster.sh"),
	}
	c.VisibilityDB = c.DB + "_vis"
	u, err := url.Parse(opts.AdminURL)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL (got %q)", opts.AdminURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	pw, _ := u.User.Password()
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	c.ports = ports
	ok := false
	defer func() {
		if !ok {
			releasePorts(ports)
		}
	}()
	c.Addr = "127.0.0.1:" + strconv.Itoa(ports[0])
	logf, err := os.CreateTemp("", "scimsync-temporal-cluster-*.log")
	if err != nil {
		return nil, err
	}
	c.Log = logf.Name()
	logf.Close()
	c.env = append(os.Environ(),
		"TEMPORAL_DB_HOST="+host, "TEMPORAL_DB_PORT="+port, "TEMPORAL_DB_USER="+u.User.Username(),
		"TEMPORAL_DB_PASSWORD="+pw, "TEMPORAL_DB="+c.DB, "TEMPORAL_VISIBILITY_DB="+c.VisibilityDB,
		"TEMPORAL_DB_MAX_CONNS="+strconv.Itoa(opts.MaxConns),
		"TEMPORAL_VISIBILITY_DB_MAX_CONNS="+strconv.Itoa(max(opts.MaxConns/2, 1)),
		"TEMPORAL_LOG_LEVEL="+opts.LogLevel,
		"TEMPORAL_NAMESPACE="+Namespace,
		"TEMPORAL_FRONTEND_PORT="+strconv.Itoa(ports[0]),
		"TEMPORAL_HISTORY_PORT="+strconv.Itoa(ports[1]),
		"TEMPORAL_MATCHING_PORT="+strconv.Itoa(ports[2]),
		"TEMPORAL_WORKER_PORT="+strconv.Itoa(ports[3]),
		"TEMPORAL_FRONTEND_HTTP_PORT="+strconv.Itoa(ports[4]),
		"TEMPORAL_FRONTEND_MEMBERSHIP_PORT="+strconv.Itoa(ports[5]),
		"TEMPORAL_HISTORY_MEMBERSHIP_PORT="+strconv.Itoa(ports[6]),
		"TEMPORAL_MATCHING_MEMBERSHIP_PORT="+strconv.Itoa(ports[7]),
		"TEMPORAL_WORKER_MEMBERSHIP_PORT="+strconv.Itoa(ports[8]),
		"TEMPORAL_SERVER="+tools.server, "TEMPORAL_SQL_TOOL="+tools.sql, "TEMPORAL_CLI="+tools.cli,
	)
	// Stale databases of an earlier process with the same pid go first: a fresh cluster.
	for _, db := range []string{c.DB, c.VisibilityDB} {
		if err := execAdmin(ctx, opts.AdminURL, `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`); err != nil {
			return nil, fmt.Errorf("drop stale database %s: %w", db, err)
		}
	}
	if out, err := c.run(ctx, "schema"); err != nil {
		c.dropDatabases()
		return nil, fmt.Errorf("%s schema: %v\n%s", c.script, err, out)
	}
	c.client, err = client.NewLazyClient(client.Options{HostPort: c.Addr, Namespace: Namespace, Logger: quietSDKLogger{},
		DataConverter: codec.KeylessDataConverter()})
	if err != nil {
		c.dropDatabases()
		return nil, err
	}
	ok = true
	return c, nil
}

// Start starts the server process (scripts/temporal-cluster.sh serve: the process is the
// server's) and waits until it answers with the namespace and search attributes
// registered.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.cmd != nil {
		c.mu.Unlock()
		return errors.New("temporal cluster already running")
	}
	logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "=== start %d at %s\n", c.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("bash", c.script, "serve")
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the tests
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		logf.Close()
		return fmt.Errorf("start the Temporal server: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	c.cmd, c.exited = cmd, exited
	c.starts++
	c.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		out, err := c.run(rctx, "register")
		if err != nil {
			err = fmt.Errorf("%v\n%s", err, out)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("the Temporal server at %s did not become ready: %w\nserver log %s:\n%s", c.Addr, err, c.Log, c.LogTail(30))
		}
		return nil
	case <-exited:
		cancel()
		<-done
		c.mu.Lock()
		c.cmd = nil
		c.mu.Unlock()
		return fmt.Errorf("the Temporal server exited at start; log %s:\n%s", c.Log, c.LogTail(30))
	}
}

// Pid is the server process's id, 0 when it is not running.
func (c *Cluster) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Kill kills the server with SIGKILL (a crash: nothing is flushed or handed over) and
// waits for it to be gone.
func (c *Cluster) Kill() { c.stop(syscall.SIGKILL) }

// Stop stops the server gracefully (SIGTERM), killing it after 30 seconds.
func (c *Cluster) Stop() { c.stop(syscall.SIGTERM) }

func (c *Cluster) stop(sig syscall.Signal) {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	StopProcess(cmd.Process.Pid, exited, sig)
}

// StopProcess sends sig to the process pid and waits until exited is closed, killing it
// if it is still there after 30 seconds.
func StopProcess(pid int, exited <-chan struct{}, sig syscall.Signal) {
	syscall.Kill(pid, sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
}

// Close stops the server and drops its databases.
func (c *Cluster) Close() {
	c.client.Close()
	c.Stop()
	c.dropDatabases()
	releasePorts(c.ports)
	os.Remove(c.Log)
}

// Client returns a client of the Namespace; it connects on first use and reconnects by
// itself across restarts.
func (c *Cluster) Client() client.Client { return c.client }

// FrontendHostPort returns the frontend's address.
func (c *Cluster) FrontendHostPort() string { return c.Addr }

// DatabaseURL returns the URL of the cluster's persistence database (shards, executions),
// for tests that check where the server put things.
func (c *Cluster) DatabaseURL() string {
	u, _ := url.Parse(c.adminURL)
	u.Path = "/" + c.DB
	return u.String()
}

// LogTail returns the last n lines of the server's log.
func (c *Cluster) LogTail(n int) string {
	f, err := os.Open(c.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 400 { // the server's stack traces
			line = line[:400] + "…"
		}
		lines = append(lines, line)
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// Script runs a step of scripts/temporal-cluster.sh (schema, register, env) on the
// cluster's settings and returns its output.
func (c *Cluster) Script(ctx context.Context, step string) ([]byte, error) { return c.run(ctx, step) }

func (c *Cluster) run(ctx context.Context, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "bash", c.script, command)
	cmd.Env = c.env
	return cmd.CombinedOutput()
}

func (c *Cluster) dropDatabases() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, db := range []string{c.DB, c.VisibilityDB} {
		execAdmin(ctx, c.adminURL, `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
	}
}

// NewTestCluster is NewCluster for one test: it is not started, and it is closed (stopped,
// its databases dropped) when the test ends. Without the server binaries, or PostgreSQL,
// the test is skipped (failed under CI=true).
func NewTestCluster(tb testing.TB, label string) *Cluster {
	tb.Helper()
	DatabaseURL(tb) // PostgreSQL first: skip or fail early
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := NewCluster(ctx, ClusterOptions{Label: label})
	if err != nil {
		Unavailable(tb, "Temporal cluster: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("Temporal server log (%s), last lines:\n%s", c.Log, c.LogTail(40))
		}
		c.Close()
	})
	return c
}

var shared struct {
	once    sync.Once
	cluster *Cluster
	server  TemporalServer
	err     error
}

// startShared is Temporal's server in cluster mode: the Temporal server at TEMPORAL_ADDRESS
// when set (its namespace default gets the search attributes when missing), else a cluster
// of this test binary's own, started on first use and closed by Main.
func startShared() (TemporalServer, *Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if addr := os.Getenv("TEMPORAL_ADDRESS"); addr != "" {
		c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: Namespace})
		if err != nil {
			return nil, nil, fmt.Errorf("TEMPORAL_ADDRESS=%s: %w", addr, err)
		}
		atExit(c.Close)
		if err := EnsureNamespace(ctx, c, Namespace); err != nil {
			return nil, nil, err
		}
		return external{addr: addr, c: c}, nil, nil
	}
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	c, err := NewCluster(ctx, ClusterOptions{Label: pkg, MaxConns: 4})
	if err != nil {
		return nil, nil, err
	}
	atExit(c.Close)
	if err := c.Start(ctx); err != nil {
		return nil, nil, err
	}
	return c, c, nil
}

// SharedCluster returns the cluster that Temporal returns in cluster mode when this test
// binary started it (not when TEMPORAL_ADDRESS names one): tests that read its databases
// need it. Otherwise the test is skipped.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if !ClusterMode() {
		tb.Skip("runs on the Temporal cluster: SCIMSYNC_TEMPORAL=cluster (make test runs it)")
	}
	Temporal(tb)
	if shared.cluster == nil {
		tb.Skip("the Temporal server at TEMPORAL_ADDRESS is not one these tests started: its databases are not known")
	}
	return shared.cluster
}

type external struct {
	addr string
	c    client.Client
}

func (e external) Client() client.Client    { return e.c }
func (e external) FrontendHostPort() string { return e.addr }

// EnsureNamespace registers the namespace when it is missing, adds scimsync's search
// attributes to it when missing, and waits until a visibility query on them is accepted:
// until then a new namespace is unknown to some of the server's services.
func EnsureNamespace(ctx context.Context, c client.Client, namespace string) error {
	_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: namespace, WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register namespace %s: %w", namespace, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err = namespaceReady(ctx, c, namespace)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("namespace %s not usable after a minute: %w", namespace, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func namespaceReady(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return err
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes {
		if _, ok := resp.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) > 0 {
		if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: namespace, SearchAttributes: missing}); err != nil {
			return err
		}
	}
	var q []string
	for name := range workflows.SearchAttributes {
		q = append(q, name+" = 'x'")
	}
	_, err = c.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: namespace, Query: strings.Join(q, " AND ")})
	return err
}

// NewNamespace registers a namespace of the test's own on srv, with scimsync's search
// attributes, and returns a client of it, closed when the test ends. Tests whose worker
// processes reconcile (and delete) every schedule they do not know share a server this way
// without touching each other's.
func NewNamespace(tb testing.TB, srv TemporalServer, name string) client.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := EnsureNamespace(ctx, srv.Client(), name); err != nil {
		tb.Fatal(err)
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendHostPort(), Namespace: name})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

type clusterToolPaths struct{ server, sql, cli string }

// clusterTools finds the Temporal server, its SQL tool and the CLI: $TEMPORAL_SERVER,
// $TEMPORAL_SQL_TOOL, else .bin/temporal-server and .bin/temporal-sql-tool (make tools),
// else server and sql in $GOPATH/bin.
func clusterTools(root string) (clusterToolPaths, error) {
	var p clusterToolPaths
	var err error
	if p.cli, err = TemporalCLI(); err != nil {
		return p, err
	}
	gopath := ""
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopath = filepath.SplitList(strings.TrimSpace(string(out)))[0]
	}
	find := func(envVar, local, installed string) (string, error) {
		if v := os.Getenv(envVar); v != "" {
			if _, err := os.Stat(v); err != nil {
				return "", fmt.Errorf("%s=%s: %w", envVar, v, err)
			}
			return v, nil
		}
		for _, c := range []string{filepath.Join(root, ".bin", local), filepath.Join(gopath, "bin", installed)} {
			if st, err := os.Stat(c); err == nil && !st.IsDir() {
				return c, nil
			}
		}
		return "", fmt.Errorf("%s not found: run `make tools` (it builds the Temporal server 1.29.1 and its SQL tool) or set %s", local, envVar)
	}
	if p.server, err = find("TEMPORAL_SERVER", "temporal-server", "server"); err != nil {
		return p, err
	}
	if p.sql, err = find("TEMPORAL_SQL_TOOL", "temporal-sql-tool", "sql"); err != nil {
		return p, err
	}
	return p, nil
}

// freePorts returns n loopback ports that were free a moment ago, all held at once so that
// they differ. They are below 32768, outside the kernel's ephemeral range (so no dev server
// or client connection takes them meanwhile) and within the smallint the server's
// cluster_membership table keeps them in. Each is reserved for this process by a file in
// $TMPDIR/scimsync-temporal-ports (removed by release, or taken over once its process is
// gone), so that clusters started at once by other test binaries never pick the same.
func freePorts(n int) ([]int, error) {
	dir := filepath.Join(os.TempDir(), "scimsync-temporal-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			releasePorts(ports)
			return nil, errors.New("no free loopback ports between 10000 and 32767")
		}
		port := 10000 + rand.IntN(32767-10000)
		if !reservePort(dir, port) {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			releasePorts([]int{port})
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, port)
	}
	return ports, nil
}

func reservePort(dir string, port int) bool {
	path := filepath.Join(dir, strconv.Itoa(port))
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprint(f, os.Getpid())
			f.Close()
			return true
		}
		b, rerr := os.ReadFile(path)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if rerr != nil || perr != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			return false // reserved by a live process (or being written)
		}
		os.Remove(path) // its process is gone
	}
	return false
}

func releasePorts(ports []int) {
	dir := filepath.Join(os.TempDir(), "scimsync-temporal-ports")
	for _, p := range ports {
		path := filepath.Join(dir, strconv.Itoa(p))
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
			os.Remove(path)
		}
	}
}

func execAdmin(ctx context.Context, adminURL, stmt string) error {
	db, err := openAdmin(ctx, adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.DB().ExecContext(ctx, stmt)
	return err
}

func openAdmin(ctx context.Context, adminURL string) (*store.Store, error) {
	return store.Open(ctx, adminURL)
}

// quietSDKLogger drops the SDK client's log lines (reconnect warnings while a cluster
// restarts); failures reach the tests as errors.
type quietSDKLogger struct{}

func (quietSDKLogger) Debug(string, ...interface{}) {}
func (quietSDKLogger) Info(string, ...interface{})  {}
func (quietSDKLogger) Warn(string, ...interface{})  {}
func (quietSDKLogger) Error(string, ...interface{}) {}
