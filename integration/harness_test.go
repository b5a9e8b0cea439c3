package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// installationSecret is the test installation's secret for hashed user ids.
const installationSecret = "it-installation-secret"

// targetToken is the bearer token the scimtest targets accept; providers reference it.
const targetToken = "it-target-token-5f1c"

// env is one test's world: its own database, a worker on its own task queue of the shared
// dev server, and a scimtest target.
type env struct {
	t        *testing.T
	ctx      context.Context
	store    *store.Store
	dsn      string
	inst     workflows.Installation // the database's installation
	temporal client.Client
	queue    string
	acts     *activities.Activities
	target   *scimtest.Server
}

var queueSeq atomic.Int64

func newEnv(t *testing.T, opts scimtest.Options) *env {
	t.Helper()
	e := newEnvWithoutWorker(t, opts)
	e.startWorker()
	return e
}

// newSequentialEnv is newEnv with a worker whose activities send one request at a time,
// for tests that read the order of requests: none is in flight when another is answered.
func newSequentialEnv(t *testing.T, opts scimtest.Options) *env {
	t.Helper()
	e := newEnvWithoutWorker(t, opts)
	e.acts.WriteConcurrency = 1
	e.startWorker()
	return e
}

// newEnvWithoutWorker is newEnv for tests that run their own workers.
func newEnvWithoutWorker(t *testing.T, opts scimtest.Options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	t.Setenv("IT_TARGET_TOKEN", targetToken)
	dsn := testenv.NewDatabase(t, true)
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := testenv.TemporalClient(t)
	if opts.Token == "" && opts.OAuth == nil {
		opts.Token = targetToken
	}
	target := scimtest.NewServer(opts)
	t.Cleanup(target.Close)

	e := &env{t: t, ctx: ctx, store: s, dsn: dsn, inst: installationOf(t, s), temporal: c, target: target,
		queue: fmt.Sprintf("it-%s-%d", safeName(t.Name()), queueSeq.Add(1))}
	e.acts = &activities.Activities{
		Store:          s,
		Mapper:         &mapping.Engine{Secret: installationSecret},
		Signaler:       worker.Signaler{Client: c, Installation: e.inst, TaskQueue: e.queue},
		RequestTimeout: 5 * time.Second,
	}
	return e
}

// installationOf reads the database's installation, in the short form of IDs.
func installationOf(t *testing.T, s *store.Store) workflows.Installation {
	t.Helper()
	inst, err := worker.InstallationOf(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// startWorker starts an in-process worker of the env's installation on its queue, with the
// installation guard as cmd/worker has it.
func (e *env) startWorker() sdkworker.Worker {
	w := sdkworker.New(e.temporal, e.queue, sdkworker.Options{
		Interceptors: []interceptor.WorkerInterceptor{worker.InstallationGuard(e.inst)},
	})
	worker.Register(w, e.acts)
	if err := w.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Stop)
	return w
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func safeName(s string) string { return strings.ToLower(unsafe.ReplaceAllString(s, "-")) }

// provider saves a provider pointing at the env's target.
func (e *env) provider(name string, edit func(p *store.Provider)) store.Provider {
	e.t.Helper()
	p := store.ProviderDefaults()
	p.Name = name
	p.BaseURL = e.target.URL
	p.Token = "env:IT_TARGET_TOKEN"
	if edit != nil {
		edit(&p)
	}
	var out store.Provider
	if err := e.store.InTx(e.ctx, func(tx *store.Tx) (err error) {
		out, err = tx.UpsertProvider(e.ctx, p)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// tx runs fn in a committed transaction.
func (e *env) tx(fn func(tx *store.Tx) error) {
	e.t.Helper()
	if err := e.store.InTx(e.ctx, fn); err != nil {
		e.t.Fatal(err)
	}
}

// fullSync runs a FullSync of the provider on the env's queue and waits for its result.
func (e *env) fullSync(provider string, in workflows.FullSyncInput) (workflows.FullSyncProgress, client.WorkflowRun, error) {
	e.t.Helper()
	run := e.startFullSync(provider, in)
	var progress workflows.FullSyncProgress
	err := run.Get(e.ctx, &progress)
	return progress, run, err
}

// startFullSync starts a FullSync of the provider on the env's queue.
func (e *env) startFullSync(provider string, in workflows.FullSyncInput) client.WorkflowRun {
	e.t.Helper()
	in.Provider = provider
	run, err := e.temporal.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID:        fmt.Sprintf("%s/%s/%d", workflows.FullSyncWorkflowID(e.inst, provider), e.queue, time.Now().UnixNano()),
		TaskQueue: e.queue,
	}, workflows.FullSyncWorkflow, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

// signal starts or signals the object's ObjectSync, as the change feed does.
func (e *env) signal(provider, kind, id string) {
	e.t.Helper()
	if err := workflows.SignalObjectSync(e.ctx, e.temporal, e.queue, e.inst, provider, kind, id, "test"); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond until it returns "" (satisfied) or the deadline passes, and then fails
// with the last description of what is missing.
func (e *env) waitFor(timeout time.Duration, cond func() string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLink polls the object's link until check accepts it (returns ""): a link is written
// right after the request the target saw, so a test that has seen the request waits for it.
func (e *env) waitLink(providerID, kind, id string, check func(l store.Link, ok bool) string) {
	e.t.Helper()
	e.waitFor(10*time.Second, func() string {
		links, err := e.store.Links(e.ctx, providerID, kind, []string{id})
		if err != nil {
			return err.Error()
		}
		l, ok := links[id]
		return check(l, ok)
	})
}

// remoteUsers returns the target's users keyed by userName, without server-set attributes.
func remoteUsers(s *scimtest.Server) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, u := range s.Users() {
		out[u["userName"].(string)] = stripServerFields(u)
	}
	return out
}

// remoteGroups returns the target's groups keyed by displayName, members as sorted userNames.
func remoteGroups(s *scimtest.Server) map[string]remoteGroup {
	names := map[string]string{}
	for _, u := range s.Users() {
		names[u["id"].(string)] = u["userName"].(string)
	}
	out := map[string]remoteGroup{}
	for _, g := range s.Groups() {
		var members []string
		for _, id := range s.GroupMembers(g["id"].(string)) {
			members = append(members, names[id])
		}
		sort.Strings(members)
		out[g["displayName"].(string)] = remoteGroup{Body: stripServerFields(g), Members: members}
	}
	return out
}

type remoteGroup struct {
	Body    map[string]any
	Members []string
}

func stripServerFields(r map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range r {
		switch k {
		case "id", "meta", "members":
			continue
		}
		out[k] = v
	}
	return normalize(out)
}

// normalize round-trips v through JSON so comparisons ignore Go types.
func normalize(v map[string]any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

func diffJSON(got, want any) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	return fmt.Sprintf("got  %s\nwant %s", g, w)
}
