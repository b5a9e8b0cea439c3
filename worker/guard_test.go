package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// installationOf reads the database's installation, in the short form of IDs.
func installationOf(t *testing.T, s *store.Store) workflows.Installation {
	t.Helper()
	inst, err := worker.InstallationOf(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// wrongInstallation returns the WrongInstallation error in err, nil when there is none.
func wrongInstallation(err error) *temporal.ApplicationError {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == activities.ErrTypeWrongInstallation {
		return ae
	}
	return nil
}

func TestCheckInstallationAcceptsOnlyTheWorkflowsOfItsInstallation(t *testing.T) {
	const own, other workflows.Installation = "0123456789ab", "ba9876543210"
	full := workflows.FullSyncWorkflowID(own, "acme") + "-2026-01-02T03:00:00Z"
	otherFull := workflows.FullSyncWorkflowID(other, "acme") + "-2026-01-02T03:00:00Z"
	for _, tc := range []struct {
		id    string
		owner string // "" when the ID names no installation
	}{
		{workflows.ObjectSyncID(own, "acme", object.User, "u1"), string(own)},
		{full, string(own)},
		{full + "/user-batch-1", string(own)}, // a SyncBatch child: the parent's
		{workflows.ObjectSyncID(other, "acme", object.Group, "g1"), string(other)},
		{otherFull, string(other)},
		{otherFull + "/group-batch-7", string(other)},
		// Before installation ids, and IDs of no scimsync form.
		{"scim/acme/user/u1", ""},
		{"scim-full-sync/acme-2026-01-02T03:00:00Z", ""},
		{"scim-full-sync/acme-2026-01-02T03:00:00Z/user-batch-1", ""},
		{"scim/0123456789AB/acme/user/u1", ""},
		{"scim/0123456789ab", ""},
		{"sync-acme-now", ""},
	} {
		err := worker.CheckInstallation(own, tc.id, "some-queue")
		if tc.owner == string(own) {
			if err != nil {
				t.Errorf("%s: %v, want nil", tc.id, err)
			}
			continue
		}
		ae := wrongInstallation(err)
		if ae == nil || !ae.NonRetryable() {
			t.Errorf("%s: error %v, want a non-retryable %s", tc.id, err, activities.ErrTypeWrongInstallation)
			continue
		}
		msg := ae.Error()
		for _, want := range []string{tc.id, string(own), "nothing was read or written"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q lacks %q", tc.id, msg, want)
			}
		}
		if tc.owner != "" && !strings.Contains(msg, "belongs to installation "+tc.owner) {
			t.Errorf("%s: message %q does not name the owner %s", tc.id, msg, tc.owner)
		}
	}
}

// guardEnv is a real worker of one installation (its database, the real workflows and
// activities, the installation guard) and a scimtest target its provider points at.
type guardEnv struct {
	t        *testing.T
	ctx      context.Context
	dsn      string
	store    *store.Store
	inst     workflows.Installation
	c        client.Client
	queue    string
	target   *scimtest.Server
	provider store.Provider
	user     store.User
}

func newGuardEnv(t *testing.T) *guardEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dsn := testenv.NewDatabase(t, true)
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Setenv("GUARD_TEST_TOKEN", "guard-token")
	target := scimtest.NewServer(scimtest.Options{Token: "guard-token"})
	t.Cleanup(target.Close)
	e := &guardEnv{t: t, ctx: ctx, dsn: dsn, store: s, inst: installationOf(t, s), c: testenv.TemporalClient(t), target: target,
		queue: fmt.Sprintf("guard-%s-%d", t.Name(), time.Now().UnixNano())}
	if err := s.InTx(ctx, func(tx *store.Tx) (err error) {
		p := store.ProviderDefaults()
		p.Name, p.BaseURL, p.Token = "acme", target.URL, "env:GUARD_TEST_TOKEN"
		if e.provider, err = tx.UpsertProvider(ctx, p); err != nil {
			return err
		}
		e.user, err = tx.CreateUser(ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{
		Store:          s,
		Mapper:         &mapping.Engine{Secret: "guard-test-secret"},
		Signaler:       worker.Signaler{Client: e.c, Installation: e.inst, TaskQueue: e.queue},
		RequestTimeout: 5 * time.Second,
	}
	w := sdkworker.New(e.c, e.queue, sdkworker.Options{
		Interceptors: []interceptor.WorkerInterceptor{worker.InstallationGuard(e.inst)},
	})
	worker.Register(w, acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return e
}

// run starts the workflow wf with the ID id on the env's queue and returns its error.
func (e *guardEnv) run(id, wf string, in any) error {
	e.t.Helper()
	run, err := e.c.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{ID: id, TaskQueue: e.queue}, wf, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return run.Get(e.ctx, nil)
}

// TestInstallationGuardRefusesOtherWorkflowsBeforeAnyWrite: a worker with the guard runs
// a workflow of another installation, or one from before installation ids, that reached
// its task queue: every one fails at its first activity (a local one for the ObjectSync)
// with a non-retryable WrongInstallation error (so it is not retried), and the target got no
// request and the database no link. The same ObjectSync under its own installation's ID
// provisions the user.
func TestInstallationGuardRefusesOtherWorkflowsBeforeAnyWrite(t *testing.T) {
	e := newGuardEnv(t)
	const other workflows.Installation = "ffffffffffff"
	objectSync := workflows.ObjectSyncInput{Provider: e.provider.Name, Kind: object.User, ObjectID: e.user.ID}
	for _, tc := range []struct{ id, wf string }{
		{workflows.ObjectSyncID(other, e.provider.Name, object.User, e.user.ID), workflows.ObjectSyncWorkflow},
		{"scim/" + e.provider.Name + "/user/" + e.user.ID, workflows.ObjectSyncWorkflow}, // before installation ids
		{workflows.FullSyncWorkflowID(other, e.provider.Name) + "-2026-01-02T03:00:00Z", workflows.FullSyncWorkflow},
		{"scim-full-sync/" + e.provider.Name + "-2026-01-02T03:00:00Z", workflows.FullSyncWorkflow},
	} {
		var in any = objectSync
		if tc.wf == workflows.FullSyncWorkflow {
			in = workflows.FullSyncInput{Provider: e.provider.Name}
		}
		err := e.run(tc.id, tc.wf, in)
		ae := wrongInstallation(err)
		if ae == nil || !ae.NonRetryable() {
			t.Errorf("%s %s: %v, want a non-retryable %s error", tc.wf, tc.id, err, activities.ErrTypeWrongInstallation)
			continue
		}
	}
	if n := len(e.target.Requests()); n != 0 {
		t.Errorf("the target got %d requests from workflows of no installation of the worker's, want none: %v", n, e.target.Requests())
	}
	links, err := e.store.Links(e.ctx, e.provider.ID, object.User, []string{e.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 0 {
		t.Errorf("links written for refused workflows: %+v", links)
	}

	// Its own installation's ObjectSync goes through.
	if err := workflows.SignalObjectSync(e.ctx, e.c, e.queue, e.inst, e.provider.Name, object.User, e.user.ID, "test"); err != nil {
		t.Fatal(err)
	}
	own := workflows.ObjectSyncID(e.inst, e.provider.Name, object.User, e.user.ID)
	if err := e.c.GetWorkflow(e.ctx, own, "").Get(e.ctx, nil); err != nil {
		t.Fatalf("ObjectSync %s: %v", own, err)
	}
	users := e.target.Users()
	if len(users) != 1 || users[0]["userName"] != "ada" {
		t.Errorf("target users = %v, want ada alone", users)
	}
}
