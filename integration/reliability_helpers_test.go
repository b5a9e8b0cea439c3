package integration

// Shared machinery of the reliability, crash, security and bad-input tests (issue 8):
// the worker as a separate process, a flaky target that does not enforce uniqueness (so a
// duplicate create can really be seen), large directories, and exact state checks that
// count duplicates and missing objects.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// fullSize reports whether the reliability tests run at the sizes of issue 8 (2,000 users,
// 100 groups; `make reliability`) rather than the reduced sizes of `make test`.
func fullSize() bool { return os.Getenv("SCIMSYNC_RELIABILITY_FULL") == "1" }

// sizes returns the number of users and groups of a reliability test.
func sizes() (users, groups int) {
	if fullSize() {
		return 2000, 100
	}
	return 300, 20
}

// figures logs a test's closing figures in one greppable line (see docs/reliability.md).
func figures(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURES %s: "+format, append([]any{t.Name()}, args...)...)
}

// ---------------------------------------------------------------------------------------
// The worker as a separate process.

// extend gives the env's context (5 minutes by default) a longer deadline, for the full
// sizes of the reliability tests.
func (e *env) extend(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	e.ctx = ctx
}

// buildWorker builds ./cmd/worker into the test's temporary directory.
func buildWorker(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "worker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/worker")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/worker: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// workerProc is cmd/worker running as a child process: it can be killed with SIGKILL and
// started again on the same configuration. Its stderr (the logs) goes to Log, appended
// across restarts.
type workerProc struct {
	t    *testing.T
	bin  string
	env  []string
	Addr string // its HTTP address (/healthz, /metrics, /codec)
	Log  string // path of its log file

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	Kills  int // SIGKILLs survived
	Starts int
}

// workerOptions configure a worker process; the zero value is usable.
type workerOptions struct {
	TemporalAddress string // default: the shared dev server
	Namespace       string // default: testenv.Namespace
	DatabaseURL     string // default: the env's database
	LogLevel        string // default: info
	RequestTimeout  time.Duration
	Env             []string // extra KEY=VALUE
	// DefaultTaskQueue leaves SCIMSYNC_TASK_QUEUE unset: the worker polls its
	// installation's default task queue, not the env's.
	DefaultTaskQueue bool
}

// newWorkerProc prepares (without starting) a worker process on the env's task queue.
func (e *env) newWorkerProc(bin string, o workerOptions) *workerProc {
	e.t.Helper()
	if o.TemporalAddress == "" {
		o.TemporalAddress = testenv.Temporal(e.t).FrontendHostPort()
	}
	if o.Namespace == "" {
		o.Namespace = testenv.Namespace
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = e.dsn
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 5 * time.Second
	}
	p := &workerProc{t: e.t, bin: bin, Addr: freeAddr(e.t)}
	p.Log = filepath.Join(e.t.TempDir(), fmt.Sprintf("worker-%s.log", strings.ReplaceAll(p.Addr, ":", "-")))
	p.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + o.DatabaseURL,
		"TEMPORAL_ADDRESS=" + o.TemporalAddress,
		"TEMPORAL_NAMESPACE=" + o.Namespace,
		"SCIMSYNC_INSTALLATION_SECRET=env:IT_INSTALLATION_SECRET",
		"IT_INSTALLATION_SECRET=" + installationSecret,
		"IT_TARGET_TOKEN=" + targetToken,
		"SCIMSYNC_HTTP_ADDR=" + p.Addr,
		"SCIMSYNC_LOG_LEVEL=" + o.LogLevel,
		"SCIMSYNC_REQUEST_TIMEOUT=" + o.RequestTimeout.String(),
		"SCIMSYNC_SCHEDULE_INTERVAL=2s",
		"SCIMSYNC_MAX_ACTIVITIES=20",
		"SCIMSYNC_WRITE_CONCURRENCY=8",
	}
	if !o.DefaultTaskQueue {
		p.env = append(p.env, "SCIMSYNC_TASK_QUEUE="+e.queue)
	}
	p.env = append(p.env, o.Env...)
	e.t.Cleanup(p.stop)
	return p
}

// Start starts the process and waits until its /healthz answers 200.
func (p *workerProc) Start() {
	p.t.Helper()
	p.launch()
	p.waitHealthy(60 * time.Second)
}

// launch starts the process without waiting for it.
func (p *workerProc) launch() {
	p.t.Helper()
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("start worker: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.Starts++
	p.mu.Unlock()
}

// waitHealthy waits until the process's /healthz answers 200.
func (p *workerProc) waitHealthy(timeout time.Duration) {
	p.t.Helper()
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			p.t.Fatalf("worker exited at start:\n%s", p.tail(40))
		default:
		}
		if resp, err := http.Get("http://" + p.Addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("worker not healthy after %s:\n%s", timeout, p.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL: the process dies at once, in the middle of whatever it was doing.
func (p *workerProc) Kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill worker: %v", err)
	}
	<-exited
	p.mu.Lock()
	p.cmd = nil
	p.Kills++
	p.mu.Unlock()
}

// Stop stops the process gracefully (SIGTERM), killing it if it takes too long.
func (p *workerProc) Stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(40 * time.Second):
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

func (p *workerProc) stop() {
	p.Stop()
	if p.t.Failed() {
		p.t.Logf("worker log (%s), last lines:\n%s", p.Addr, p.tail(30))
	}
	if dir := os.Getenv("SCIMSYNC_IT_LOG_DIR"); dir != "" { // keep the logs for a post-mortem
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, safeName(p.t.Name())+"-"+filepath.Base(p.Log)), []byte(p.Logs()), 0o644)
	}
}

// Logs returns everything the process wrote so far.
func (p *workerProc) Logs() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

func (p *workerProc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------------------
// A flaky target without uniqueness.

// flakyTarget sits in front of a scimtest server and makes it behave like a real, unreliable
// application:
//
//   - it injects faults at fixed rates, drawn from a seeded generator: 500 Internal Server
//     Error, 429 Too Many Requests with Retry-After: 1, and answers slower than the client's
//     timeout. 500s and 429s are answered before the request is executed. A slow request
//     IS executed and its answer then held back past the timeout, so the client never
//     learns that its create went through: the hardest case for duplicates;
//   - it does not enforce uniqueness. scimtest refuses a second user with the same userName
//     (409), which would hide a product that posts an object twice and relies on the 409;
//     here a create whose userName (displayName for groups) is taken is stored under
//     "<name>~dup<n>" instead, as an application keyed on its own ids would store it. A
//     duplicate therefore shows up as a second object with the same externalId, and every
//     successful create is counted per externalId.
type flakyTarget struct {
	*scimtest.Server
	URL string // base URL of the flaky front

	srv *httptest.Server

	createMu sync.Mutex // serialises creates, so that concurrent duplicates are renamed too

	mu       sync.Mutex
	rng      *rand.Rand
	rate500  float64
	rate429  float64
	rateSlow float64
	slowFor  time.Duration
	latency  time.Duration  // added to every request
	fired    map[string]int // fault kind → requests
	requests int
	creates  map[string]int // "Users/<externalId>" → successful creates
	renamed  int
	closed   chan struct{}

	// Workers that present a token of their own (workerToken) are told apart: creates are
	// held until every one of them has sent a request (HoldCreatesForWorkers).
	workersSeen map[string]bool
	holdFor     int
	released    chan struct{}

	// After gateAfter creates have passed, the others wait until gate is closed
	// (HoldCreatesAfter, OpenGate).
	gateAfter, gatePassed int
	gate                  chan struct{}
}

// workerToken is the bearer token worker i of a test presents (IT_TARGET_TOKEN of its
// process): the flaky front tells the workers apart by it and passes the target's own on.
func workerToken(i int) string { return fmt.Sprintf("%s-worker%d", targetToken, i) }

// HoldCreatesForWorkers holds every create (single or Bulk) until requests from n workers
// presenting workerToken(1..n) have arrived, or a minute has passed. A worker holding a
// create in its only activity slot cannot take another batch: with several batches at once
// the next goes to another worker, so that every worker writes, whatever the scheduler.
func (ft *flakyTarget) HoldCreatesForWorkers(n int) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.holdFor, ft.released = n, make(chan struct{})
}

// seeWorker records which worker sent r and rewrites its token to the target's.
func (ft *flakyTarget) seeWorker(r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "+targetToken+"-worker")
	if !ok {
		return
	}
	r.Header.Set("Authorization", "Bearer "+targetToken)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.workersSeen == nil {
		ft.workersSeen = map[string]bool{}
	}
	ft.workersSeen[tok] = true
	if ft.released != nil && ft.holdFor > 0 && len(ft.workersSeen) >= ft.holdFor {
		close(ft.released)
		ft.holdFor = 0
	}
}

// waitForWorkers holds a create while HoldCreatesForWorkers says so.
func (ft *flakyTarget) waitForWorkers(r *http.Request) {
	ft.mu.Lock()
	released, holding := ft.released, ft.holdFor > 0
	ft.mu.Unlock()
	if !holding {
		return
	}
	select {
	case <-released:
	case <-time.After(time.Minute):
	case <-r.Context().Done():
	case <-ft.closed:
	}
}

// HoldCreatesAfter lets n creates through and holds every later one until OpenGate: a
// sync is then certainly still writing, whatever the machine's speed.
func (ft *flakyTarget) HoldCreatesAfter(n int) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.gateAfter, ft.gatePassed, ft.gate = n, 0, make(chan struct{})
}

// OpenGate releases the creates HoldCreatesAfter holds, and lets every later one through.
func (ft *flakyTarget) OpenGate() {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.gate != nil {
		close(ft.gate)
		ft.gate = nil
	}
}

// waitAtGate holds a create past the first gateAfter while the gate is shut.
func (ft *flakyTarget) waitAtGate(r *http.Request) {
	ft.mu.Lock()
	gate := ft.gate
	if gate != nil && ft.gatePassed < ft.gateAfter {
		ft.gatePassed++
		gate = nil
	}
	ft.mu.Unlock()
	if gate == nil {
		return
	}
	select {
	case <-gate:
	case <-r.Context().Done():
	case <-ft.closed:
	}
}

// WorkersSeen returns how many workers presenting workerToken sent requests.
func (ft *flakyTarget) WorkersSeen() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.workersSeen)
}

// newFlakyTarget starts a scimtest server with opts and a flaky front without faults (see
// SetFaults).
func newFlakyTarget(t *testing.T, opts scimtest.Options, seed uint64) *flakyTarget {
	t.Helper()
	if opts.Token == "" && opts.OAuth == nil {
		opts.Token = targetToken
	}
	if opts.MaxLogEntries == 0 {
		opts.MaxLogEntries = -1 // counters only, unless the test reads the log
	}
	ft := &flakyTarget{
		Server:  scimtest.NewServer(opts),
		rng:     rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		fired:   map[string]int{},
		creates: map[string]int{},
		closed:  make(chan struct{}),
	}
	ft.srv = httptest.NewServer(ft)
	base := strings.TrimPrefix(ft.Server.URL, ft.Server.RootURL())
	ft.URL = ft.srv.URL + base
	t.Cleanup(func() {
		close(ft.closed)
		ft.srv.CloseClientConnections()
		ft.srv.Close()
		ft.Server.Close()
	})
	return ft
}

// SetFaults sets the fault rates (fractions of all requests) and how long slow answers are
// held back.
func (ft *flakyTarget) SetFaults(rate500, rate429, rateSlow float64, slowFor time.Duration) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.rate500, ft.rate429, ft.rateSlow, ft.slowFor = rate500, rate429, rateSlow, slowFor
}

// SetLatency delays every request by d, so that a sync lasts long enough to be interrupted.
func (ft *flakyTarget) SetLatency(d time.Duration) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.latency = d
}

// Faults returns the number of requests that fired each kind of fault, and the total.
func (ft *flakyTarget) Faults() (byKind map[string]int, total int) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	byKind = map[string]int{}
	for k, v := range ft.fired {
		byKind[k] = v
		total += v
	}
	return byKind, total
}

// Requests returns the number of requests received.
func (ft *flakyTarget) Requests() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.requests
}

func (ft *flakyTarget) draw() string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.requests++
	x := ft.rng.Float64()
	switch {
	case x < ft.rate500:
		ft.fired["500"]++
		return "500"
	case x < ft.rate500+ft.rate429:
		ft.fired["429"]++
		return "429"
	case x < ft.rate500+ft.rate429+ft.rateSlow:
		ft.fired["slow"]++
		return "slow"
	}
	return ""
}

func (ft *flakyTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ft.seeWorker(r)
	if createKind(r) != "" {
		ft.waitForWorkers(r)
		ft.waitAtGate(r)
	}
	ft.mu.Lock()
	latency := ft.latency
	ft.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	fault := ""
	if !strings.HasSuffix(r.URL.Path, "/oauth/token") {
		fault = ft.draw()
	}
	switch fault {
	case "500":
		writeSCIMError(w, http.StatusInternalServerError, "injected fault")
		return
	case "429":
		w.Header().Set("Retry-After", "1")
		writeSCIMError(w, http.StatusTooManyRequests, "slow down")
		return
	}
	kind := createKind(r)
	if kind != "" {
		ft.createMu.Lock()
		body = ft.uniquify(kind, body)
	}
	inner := r.Clone(context.WithoutCancel(r.Context()))
	inner.Body = io.NopCloser(bytes.NewReader(body))
	inner.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	ft.Server.ServeHTTP(rec, inner)
	if kind != "" {
		ft.countCreates(kind, body, rec)
		ft.createMu.Unlock()
	}
	if fault == "slow" {
		ft.mu.Lock()
		hold := ft.slowFor
		ft.mu.Unlock()
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
			return // the client gave up: its answer is lost
		case <-ft.closed:
			return
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func writeSCIMError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  strconv.Itoa(status), "detail": detail,
	})
}

// createKind returns "Users" or "Groups" for a create, "Bulk" for a bulk request, "" else.
func createKind(r *http.Request) string {
	if r.Method != http.MethodPost {
		return ""
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/Users"):
		return "Users"
	case strings.HasSuffix(r.URL.Path, "/Groups"):
		return "Groups"
	case strings.HasSuffix(r.URL.Path, "/Bulk"):
		return "Bulk"
	}
	return ""
}

func uniqueKey(kind string) string {
	if kind == "Users" {
		return "userName"
	}
	return "displayName"
}

// taken reports whether a resource of kind already has that userName / displayName.
func (ft *flakyTarget) taken(kind, name string) bool {
	if kind == "Users" {
		_, ok := ft.Server.UserByName(name)
		return ok
	}
	for _, g := range ft.Server.Groups() {
		if strings.EqualFold(fmt.Sprint(g["displayName"]), name) {
			return true
		}
	}
	return false
}

// renameIfTaken gives a create body whose unique name is taken a fresh name.
func (ft *flakyTarget) renameIfTaken(kind string, data map[string]any) bool {
	key := uniqueKey(kind)
	name, _ := data[key].(string)
	if name == "" || !ft.taken(kind, name) {
		return false
	}
	ft.mu.Lock()
	ft.renamed++
	n := ft.renamed
	ft.mu.Unlock()
	data[key] = fmt.Sprintf("%s~dup%d", name, n)
	return true
}

// uniquify rewrites the creates of body (a single create or a bulk request) whose unique
// name is taken. Creates are serialised (createMu), so concurrent duplicates are renamed
// too and never meet scimtest's 409.
func (ft *flakyTarget) uniquify(kind string, body []byte) []byte {
	switch kind {
	case "Users", "Groups":
		var data map[string]any
		if json.Unmarshal(body, &data) != nil || !ft.renameIfTaken(kind, data) {
			return body
		}
		out, _ := json.Marshal(data)
		return out
	case "Bulk":
		var req map[string]any
		if json.Unmarshal(body, &req) != nil {
			return body
		}
		ops, _ := req["Operations"].([]any)
		changed := false
		for _, o := range ops {
			op, _ := o.(map[string]any)
			if op == nil || !strings.EqualFold(fmt.Sprint(op["method"]), "POST") {
				continue
			}
			k := strings.Trim(fmt.Sprint(op["path"]), "/")
			if data, ok := op["data"].(map[string]any); ok && (k == "Users" || k == "Groups") && ft.renameIfTaken(k, data) {
				changed = true
			}
		}
		if !changed {
			return body
		}
		out, _ := json.Marshal(req)
		return out
	}
	return body
}

// countCreates counts the creates of body that the server answered with success.
func (ft *flakyTarget) countCreates(kind string, body []byte, rec *httptest.ResponseRecorder) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	switch kind {
	case "Users", "Groups":
		if rec.Code != http.StatusCreated {
			return
		}
		var data map[string]any
		json.Unmarshal(body, &data)
		ft.creates[kind+"/"+fmt.Sprint(data["externalId"])]++
	case "Bulk":
		var req struct {
			Operations []struct {
				Method, Path, BulkID string
				Data                 map[string]any
			}
		}
		var resp struct {
			Operations []struct {
				BulkID string
				Status string
			}
		}
		if json.Unmarshal(body, &req) != nil || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
			return
		}
		created := map[string]bool{}
		for _, r := range resp.Operations {
			if r.Status == "201" {
				created[r.BulkID] = true
			}
		}
		for _, op := range req.Operations {
			k := strings.Trim(op.Path, "/")
			if strings.EqualFold(op.Method, "POST") && created[op.BulkID] && (k == "Users" || k == "Groups") {
				ft.creates[k+"/"+fmt.Sprint(op.Data["externalId"])]++
			}
		}
	}
}

// Creates returns the successful creates per "Users/<externalId>" and "Groups/<externalId>".
func (ft *flakyTarget) Creates() map[string]int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return maps.Clone(ft.creates)
}

// flatWorld writes a flat directory of nUsers and nGroups (see buildFlatDirectory), empties
// the outbox, and saves the provider pointed at a flaky target in front of a scimtest
// server with opts, its faults drawn from seed; edit, when not nil, changes the provider
// further. The target becomes the env's.
func (e *env) flatWorld(provider string, opts scimtest.Options, seed uint64, nUsers, nGroups int, edit func(*store.Provider)) (*directory, *flakyTarget) {
	e.t.Helper()
	d := buildFlatDirectory(e, nUsers, nGroups)
	e.clearOutbox()
	ft := newFlakyTarget(e.t, opts, seed)
	e.target = ft.Server
	e.provider(provider, func(p *store.Provider) {
		p.BaseURL = ft.URL
		if edit != nil {
			edit(p)
		}
	})
	return d, ft
}

// waitRequestsAfter waits until the target has received more requests than *seen, and
// then sets *seen to the new count.
func (e *env) waitRequestsAfter(ft *flakyTarget, seen *int, timeout time.Duration) {
	e.t.Helper()
	e.waitFor(timeout, func() string {
		if n := ft.Requests(); n <= *seen {
			return fmt.Sprintf("the target has received no request since it had %d", *seen)
		}
		return ""
	})
	*seen = ft.Requests()
}

// waitTargetUsers waits until the target holds at least n users: a sync is writing users.
func (e *env) waitTargetUsers(ft *flakyTarget, n int, timeout time.Duration) {
	e.t.Helper()
	e.waitFor(timeout, func() string {
		if u, _ := ft.Len(); u < n {
			return fmt.Sprintf("target has %d users, waiting for %d", u, n)
		}
		return ""
	})
}

// awaitExactSync waits for the full sync id and checks that it is done and that the
// target holds exactly the directory, counting each create the front saw.
func (e *env) awaitExactSync(id string, ft *flakyTarget, d *directory, timeout time.Duration) (workflows.FullSyncProgress, stateReport) {
	e.t.Helper()
	progress, err := e.awaitWorkflow(e.temporal, id, timeout)
	if err != nil {
		e.t.Fatalf("full sync: %v", err)
	}
	r := compareState(ft.Server, d, ft.Creates())
	if !r.ok() {
		e.t.Errorf("remote state after the full sync: %s", r)
	}
	if progress.Phase != workflows.PhaseDone {
		e.t.Errorf("progress = %+v, want done", progress)
	}
	return progress, r
}

// ---------------------------------------------------------------------------------------
// Directories and state checks.

// buildFlatDirectory writes nUsers users and nGroups groups, every user in scope (no
// application, no service account): user i is a member of group i%nGroups, and every third
// user also of group (i/3)%nGroups. Groups g000..g009 have g010.. as children (for nothing
// but realism: the provider does not flatten).
func buildFlatDirectory(e *env, nUsers, nGroups int) *directory {
	d := &directory{members: map[string][]string{}, parent: map[string]string{}, inScope: map[string]bool{}}
	e.tx(func(tx *store.Tx) error {
		var ids []string
		for i := range nGroups {
			g := store.Group{Name: fmt.Sprintf("g%03d", i)}
			if i >= 10 && i < 20 {
				p := ids[i-10]
				g.ParentID = &p
				d.parent[g.Name] = fmt.Sprintf("g%03d", i-10)
			}
			saved, err := tx.CreateGroup(e.ctx, g)
			if err != nil {
				return err
			}
			ids = append(ids, saved.ID)
			d.groups = append(d.groups, saved)
		}
		for i := range nUsers {
			u := store.User{
				Username: fmt.Sprintf("user%05d", i),
				Name:     fmt.Sprintf("Given%d Family%d", i, i),
				Email:    fmt.Sprintf("user%05d@example.test", i),
				IsActive: i%11 != 0,
			}
			saved, err := tx.CreateUser(e.ctx, u)
			if err != nil {
				return err
			}
			d.users = append(d.users, saved)
			d.inScope[saved.Username] = true
			groups := []int{i % nGroups}
			if i%3 == 0 && (i/3)%nGroups != i%nGroups {
				groups = append(groups, (i/3)%nGroups)
			}
			for _, g := range groups {
				if err := tx.AddMember(e.ctx, ids[g], saved.ID); err != nil {
					return err
				}
				d.members[d.groups[g].Name] = append(d.members[d.groups[g].Name], saved.Username)
			}
		}
		return nil
	})
	return d
}

// clearOutbox drops the changes a fixture wrote, so a test's first worker does not relay
// thousands of per-object syncs that the test does not want.
func (e *env) clearOutbox() {
	e.t.Helper()
	if _, err := e.store.DB().ExecContext(e.ctx, `DELETE FROM sync_changes`); err != nil {
		e.t.Fatal(err)
	}
}

// waitOutboxEmpty waits until the outbox holds no change: the relay deletes what it
// relayed as it commits, which may come after the syncs it started.
func (e *env) waitOutboxEmpty(timeout time.Duration) {
	e.t.Helper()
	e.waitFor(timeout, func() string {
		var left int
		if err := e.store.DB().GetContext(e.ctx, &left, `SELECT count(*) FROM sync_changes`); err != nil {
			return err.Error()
		}
		if left != 0 {
			return fmt.Sprintf("%d changes left in the outbox", left)
		}
		return ""
	})
}

// stateReport compares a target with a directory and counts what is wrong.
type stateReport struct {
	Users, Groups int // objects at the target
	Missing       int // expected objects not at the target
	Wrong         int // objects whose attributes or members differ
	Unexpected    int // objects at the target that should not be there (duplicates included)
	Duplicates    int // extra objects sharing an externalId, plus creates that succeeded twice
	Details       []string
}

func (r stateReport) ok() bool {
	return r.Missing == 0 && r.Wrong == 0 && r.Unexpected == 0 && r.Duplicates == 0
}

func (r stateReport) String() string {
	s := fmt.Sprintf("users %d, groups %d: missing %d, wrong %d, unexpected %d, duplicates %d",
		r.Users, r.Groups, r.Missing, r.Wrong, r.Unexpected, r.Duplicates)
	if len(r.Details) > 0 {
		n := min(len(r.Details), 10)
		s += "\n  " + strings.Join(r.Details[:n], "\n  ")
		if len(r.Details) > n {
			s += fmt.Sprintf("\n  ... and %d more", len(r.Details)-n)
		}
	}
	return s
}

// compareState checks the target against d exactly (the users of d.expectedUsers with the
// default mapping, every group with its direct in-scope members) and looks for duplicates:
// two objects with one externalId, and, when creates is not nil, an externalId created
// successfully more than once.
func compareState(target *scimtest.Server, d *directory, creates map[string]int) stateReport {
	var r stateReport
	users, groups := target.Users(), target.Groups()
	r.Users, r.Groups = len(users), len(groups)
	byExt := map[string]int{}
	for _, u := range users {
		byExt["Users/"+fmt.Sprint(u["externalId"])]++
	}
	for _, g := range groups {
		byExt["Groups/"+fmt.Sprint(g["externalId"])]++
	}
	for k, n := range byExt {
		if n > 1 {
			r.Duplicates += n - 1
			r.Details = append(r.Details, fmt.Sprintf("duplicate: %d objects with externalId %s", n, k))
		}
	}
	for k, n := range creates {
		if n > 1 && byExt[k] <= 1 {
			r.Duplicates += n - 1
			r.Details = append(r.Details, fmt.Sprintf("duplicate: %s created %d times (the extra copy was removed since)", k, n))
		}
	}

	gotUsers := remoteUsers(target)
	want := d.expectedUsers()
	for name, w := range want {
		got, ok := gotUsers[name]
		switch {
		case !ok:
			r.Missing++
			r.Details = append(r.Details, "missing user "+name)
		case diffJSON(got, w) != "":
			r.Wrong++
			r.Details = append(r.Details, "wrong user "+name+": "+diffJSON(got, w))
		}
	}
	for name := range gotUsers {
		if want[name] == nil {
			r.Unexpected++
			r.Details = append(r.Details, "unexpected user "+name)
		}
	}
	gotGroups := remoteGroups(target)
	members := d.expectedMembers(false)
	wantGroups := map[string]bool{}
	for _, g := range d.groups {
		wantGroups[g.Name] = true
		got, ok := gotGroups[g.Name]
		switch {
		case !ok:
			r.Missing++
			r.Details = append(r.Details, "missing group "+g.Name)
		case diffJSON(got.Body, expectedGroup(g)) != "":
			r.Wrong++
			r.Details = append(r.Details, "wrong group "+g.Name+": "+diffJSON(got.Body, expectedGroup(g)))
		case strings.Join(got.Members, ",") != strings.Join(members[g.Name], ","):
			r.Wrong++
			r.Details = append(r.Details, fmt.Sprintf("group %s has %d members, want %d", g.Name, len(got.Members), len(members[g.Name])))
		}
	}
	for name := range gotGroups {
		if !wantGroups[name] {
			r.Unexpected++
			r.Details = append(r.Details, "unexpected group "+name)
		}
	}
	sort.Strings(r.Details)
	return r
}

// waitState waits until the target matches d exactly, or fails with the report.
func (e *env) waitState(target *scimtest.Server, d *directory, creates func() map[string]int, timeout time.Duration) stateReport {
	e.t.Helper()
	var r stateReport
	deadline := time.Now().Add(timeout)
	for {
		var c map[string]int
		if creates != nil {
			c = creates()
		}
		r = compareState(target, d, c)
		if r.ok() || r.Duplicates > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !r.ok() {
		e.t.Errorf("remote state after %s: %s", timeout, r)
	}
	return r
}

// ---------------------------------------------------------------------------------------
// Full syncs started by the worker's schedule.

// scheduledFullSync waits for the full sync that the worker's schedule of provider starts
// (a new schedule runs one at once) and returns its workflow ID. The schedule is deleted
// when the test ends.
func (e *env) scheduledFullSync(c client.Client, provider string, timeout time.Duration) string {
	e.t.Helper()
	h := c.ScheduleClient().GetHandle(e.ctx, workflows.FullSyncScheduleID(e.inst, provider))
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Delete(ctx)
	})
	deadline := time.Now().Add(timeout)
	for {
		desc, err := h.Describe(e.ctx)
		if err == nil && len(desc.Info.RecentActions) > 0 {
			return desc.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no full sync started by schedule %s within %s (last error %v)", h.GetID(), timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// awaitWorkflow waits for the workflow (following continue-as-new) to complete, riding
// out a Temporal server that is briefly unreachable, and returns its result.
func (e *env) awaitWorkflow(c client.Client, id string, timeout time.Duration) (workflows.FullSyncProgress, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var progress workflows.FullSyncProgress
	for {
		err := c.GetWorkflow(ctx, id, "").Get(ctx, &progress)
		var failed *temporal.WorkflowExecutionError
		if err == nil || ctx.Err() != nil || errors.As(err, &failed) {
			return progress, err
		}
		time.Sleep(500 * time.Millisecond) // unreachable server: ask again
	}
}

// waitClosed waits until every workflow in ids exists and is closed (completed, failed or
// otherwise ended): a workflow not started yet is waited for, not taken as done.
func (e *env) waitClosed(c client.Client, timeout time.Duration, ids ...string) {
	e.t.Helper()
	e.waitFor(timeout, func() string {
		for _, id := range ids {
			desc, err := c.DescribeWorkflowExecution(e.ctx, id, "")
			if err != nil {
				return fmt.Sprintf("workflow %s: %v", id, err)
			}
			if st := desc.GetWorkflowExecutionInfo().GetStatus(); st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				return fmt.Sprintf("workflow %s still running", id)
			}
		}
		return ""
	})
}

// queryProgress asks a running full sync for its progress; ok is false when it cannot.
func queryProgress(ctx context.Context, c client.Client, id string) (workflows.FullSyncProgress, bool) {
	var p workflows.FullSyncProgress
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	if err != nil || v.Get(&p) != nil {
		return p, false
	}
	return p, true
}

// grepFile returns the lines of path containing any of needles.
func grepFile(path string, needles ...string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		for _, n := range needles {
			if strings.Contains(sc.Text(), n) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out
}
