package changefeed_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/changefeed"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// received is what the stand-in ObjectSync workflow answers to the "received" query.
type received struct {
	Input   workflows.ObjectSyncInput
	Reasons []string
}

// standInObjectSync is registered as workflows.ObjectSyncWorkflow on the test's task queue.
// It records its input and every object-changed signal, and never completes, so every
// signal sent to its workflow ID lands in this one execution unless USE_EXISTING is lost.
func standInObjectSync(ctx workflow.Context, in workflows.ObjectSyncInput) error {
	st := received{Input: in, Reasons: []string{}}
	if err := workflow.SetQueryHandler(ctx, "received", func() (received, error) { return st, nil }); err != nil {
		return err
	}
	ch := workflow.GetSignalChannel(ctx, workflows.SignalObjectChanged)
	for {
		var sig workflows.ObjectChanged
		ch.Receive(ctx, &sig)
		st.Reasons = append(st.Reasons, sig.Reason)
	}
}

// env is one test's world: its own fresh database, the package's dev server, a task queue
// of its own with a worker running the stand-in, and a log buffer.
type env struct {
	t     *testing.T
	dsn   string
	store *store.Store
	c     client.Client
	queue string
	inst  workflows.Installation // the database's installation
	logs  *testenv.SyncBuffer

	mu     sync.Mutex
	relays []*changefeed.Relay
}

func newEnv(t *testing.T) *env {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	dsn := testenv.NewDatabase(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	installation, err := s.Installation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := workflows.NewInstallation(installation.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.TemporalClient(t)
	queue := fmt.Sprintf("changefeed-%s-%d", t.Name(), time.Now().UnixNano())
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(standInObjectSync, workflow.RegisterOptions{Name: workflows.ObjectSyncWorkflow})
	w.RegisterWorkflowWithOptions(func(workflow.Context, workflows.FullSyncInput) error { return nil },
		workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &env{t: t, dsn: dsn, store: s, c: c, queue: queue, inst: inst, logs: logs}
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// relay returns a relay on the test's store and task queue; tweak it before start.
func (e *env) relay(t Temporal) *changefeed.Relay {
	r := &changefeed.Relay{
		Store:       e.store,
		Temporal:    t,
		DatabaseURL: e.dsn,
		Logger:      e.logger(),
		TaskQueue:   e.queue,
	}
	e.mu.Lock()
	e.relays = append(e.relays, r)
	e.mu.Unlock()
	return r
}

// retried reports whether a relay of the test failed a call that may have reached
// Temporal. The relay delivers at least once: a failed attempt leaves its whole batch in
// the outbox, to be signalled again, so a change may then arrive twice. Exactly once is
// asserted only when no such call failed; otherwise at least once.
func (e *env) retried() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.relays {
		if rec, ok := r.Temporal.(*recorder); ok {
			if rec.reachableFailures() > 0 {
				return true
			}
		} else if r.Stats().Errors > 0 {
			return true
		}
	}
	return false
}

// checkCalls checks that id got n accepted SignalWithStart calls: exactly, or at least n
// when a relay attempt failed (see retried).
func (e *env) checkCalls(calls map[string]int, id string, n int) {
	e.t.Helper()
	if got := calls[id]; got != n && (got < n || !e.retried()) {
		e.t.Errorf("%s: %d SignalWithStart calls, want %d (relay errors: %v)", id, got, n, e.retried())
	}
}

// Temporal is changefeed.Temporal, named here for brevity.
type Temporal = changefeed.Temporal

// start runs r until the test ends; the test's cleanup waits for Run to return.
func (e *env) start(r *changefeed.Relay) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Relay.Run returned %v after cancel, want nil", err)
				}
			case <-time.After(15 * time.Second):
				e.t.Errorf("Relay.Run did not return within 15s of cancel")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) tx(fn func(ctx context.Context, tx *store.Tx) error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.InTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) }); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) provider(name string, enabled bool, app *string) store.Provider {
	e.t.Helper()
	var p store.Provider
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		in := store.ProviderDefaults()
		in.Name, in.BaseURL, in.Enabled, in.ApplicationID = name, "https://scim.example.test/"+name, enabled, app
		p, err = tx.UpsertProvider(ctx, in)
		return err
	})
	return p
}

func (e *env) outboxCount() int {
	e.t.Helper()
	n, _, err := e.store.OutboxLag(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitOutboxEmpty waits until every change has been relayed (a row leaves the outbox only
// when the transaction whose handler signalled it commits).
func (e *env) waitOutboxEmpty() {
	e.t.Helper()
	testenv.Eventually(e.t, 20*time.Second, 25*time.Millisecond, func() (bool, string) {
		n := e.outboxCount()
		return n == 0, fmt.Sprintf("outbox holds %d changes", n)
	})
}

// query returns what the stand-in at workflow ID id received.
func (e *env) query(id string) (received, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := e.c.QueryWorkflow(ctx, id, "", "received")
	if err != nil {
		return received{}, err
	}
	var r received
	err = v.Get(&r)
	return r, err
}

// waitReasons waits until the stand-in at id has received exactly want, in order; when a
// relay attempt failed (see retried), a reason may come twice in a row.
func (e *env) waitReasons(id string, want ...string) received {
	e.t.Helper()
	var got received
	testenv.Eventually(e.t, 20*time.Second, 25*time.Millisecond, func() (bool, string) {
		var err error
		got, err = e.query(id)
		if err != nil {
			return false, fmt.Sprintf("query %s: %v", id, err)
		}
		ok := equalStrings(got.Reasons, want) ||
			(e.retried() && equalStrings(slices.Compact(slices.Clone(got.Reasons)), slices.Compact(slices.Clone(want))))
		return ok, fmt.Sprintf("%s received %q, want %q", id, got.Reasons, want)
	})
	return got
}

// assertNoWorkflow checks that no workflow ever ran under id.
func (e *env) assertNoWorkflow(id string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.c.DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		e.t.Errorf("workflow %s: describe = %v, want NotFound", id, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// recorder wraps a Temporal client: it counts accepted SignalWithStart calls per workflow
// ID with the run IDs they reached, and its backend can be swapped (to simulate an outage).
type recorder struct {
	backend atomic.Pointer[client.Client]
	mu      sync.Mutex
	calls   map[string]int      // workflow ID → accepted calls
	runs    map[string][]string // workflow ID → run ID of each accepted call
	options map[string]client.StartWorkflowOptions
	failed  int
	// unreachable is a backend no call reaches (a closed port); reachableFailed counts the
	// failed calls to the others, which may have signalled before they failed.
	unreachable     *client.Client
	reachableFailed int
}

func newRecorder(c client.Client) *recorder {
	r := &recorder{calls: map[string]int{}, runs: map[string][]string{}, options: map[string]client.StartWorkflowOptions{}}
	r.backend.Store(&c)
	return r
}

func (r *recorder) use(c client.Client) { r.backend.Store(&c) }

func (r *recorder) SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
	options client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	backend := r.backend.Load()
	run, err := (*backend).SignalWithStartWorkflow(ctx, workflowID, signalName, signalArg, options, wf, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed++
		if backend != r.unreachable {
			r.reachableFailed++
		}
		return nil, err
	}
	r.calls[workflowID]++
	r.options[workflowID] = options
	r.runs[workflowID] = append(r.runs[workflowID], run.GetRunID())
	return run, nil
}

func (r *recorder) ScheduleClient() client.ScheduleClient {
	return (*r.backend.Load()).ScheduleClient()
}

// snapshot returns a copy of the accepted calls per workflow ID.
func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		out[k] = v
	}
	return out
}

func (r *recorder) runIDs(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.runs[id]...)
}

func (r *recorder) lastOptions(id string) client.StartWorkflowOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.options[id]
}

func (r *recorder) reachableFailures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reachableFailed
}

func (r *recorder) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// unreachableClient returns a client of a closed port: every call fails once its context
// ends, the way it does while the Temporal frontend is down.
func unreachableClient(t *testing.T) client.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.NewLazyClient(client.Options{
		HostPort:  addr,
		Namespace: testenv.Namespace,
		Logger:    tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// assertLogsFree fails when the logs contain any of the given personal values.
func assertLogsFree(t *testing.T, logs string, values ...string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(logs, v) {
			t.Errorf("relay logs contain personal data %q", v)
		}
	}
}

// refuser wraps a Temporal: the SignalWithStart calls to the workflow IDs it has answers
// for get the next answer (an error, as Temporal would refuse them) without reaching
// Temporal; the last answer repeats. Every other call goes on to next.
type refuser struct {
	next    Temporal
	mu      sync.Mutex
	answers map[string][]error
	refused map[string]int // workflow ID → calls answered with an error
}

func newRefuser(next Temporal) *refuser {
	return &refuser{next: next, answers: map[string][]error{}, refused: map[string]int{}}
}

// answer makes the calls to workflow ID id fail with errs in turn, then with the last
// one; a nil error passes the call on.
func (f *refuser) answer(id string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[id] = errs
}

func (f *refuser) SignalWithStartWorkflow(ctx context.Context, workflowID, signalName string, signalArg any,
	options client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	var err error
	if errs := f.answers[workflowID]; len(errs) > 0 {
		err = errs[0]
		if len(errs) > 1 {
			f.answers[workflowID] = errs[1:]
		}
	}
	if err != nil {
		f.refused[workflowID]++
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.next.SignalWithStartWorkflow(ctx, workflowID, signalName, signalArg, options, wf, args...)
}

func (f *refuser) ScheduleClient() client.ScheduleClient { return f.next.ScheduleClient() }

func (f *refuser) refusedCalls(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused[id]
}

// parkedRow is a row of the dead-letter table as the tests compare it.
type parkedRow struct {
	ID        int64   `db:"id"`
	Kind      string  `db:"kind"`
	Op        string  `db:"op"`
	ObjectID  string  `db:"object_id"`
	RelatedID *string `db:"related_id"`
	Provider  string  `db:"provider"`
	Error     string  `db:"error"`
	Attempts  int     `db:"attempts"`
	Parked    bool    `db:"parked"` // parked_at is set, and not before the change
}

func (p parkedRow) String() string {
	rel := ""
	if p.RelatedID != nil {
		rel = "/" + *p.RelatedID
	}
	return fmt.Sprintf("%d %s %s %s%s provider=%s attempts=%d parked=%v error=%q",
		p.ID, p.Kind, p.Op, p.ObjectID, rel, p.Provider, p.Attempts, p.Parked, p.Error)
}

// parkedRows reads the dead-letter table, by id.
func (e *env) parkedRows() []string {
	e.t.Helper()
	var rows []parkedRow
	if err := e.store.DB().SelectContext(context.Background(), &rows, `
		SELECT id, kind, op, object_id, related_id, provider, error, attempts, parked_at >= created_at AS parked
		FROM sync_changes_parked ORDER BY id`); err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.String()
	}
	return out
}

// outboxIDs returns the ids of the changes in the outbox, keyed by "kind op object[/related]".
func (e *env) outboxIDs() map[string]int64 {
	e.t.Helper()
	var rows []parkedRow
	if err := e.store.DB().SelectContext(context.Background(), &rows,
		`SELECT id, kind, op, object_id, related_id FROM sync_changes`); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		key := r.Kind + " " + r.Op + " " + r.ObjectID
		if r.RelatedID != nil {
			key += "/" + *r.RelatedID
		}
		out[key] = r.ID
	}
	return out
}
