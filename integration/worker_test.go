package integration

import (
	"context"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// runWorker runs worker.Run, as cmd/worker does, until the test ends.
func (e *env) runWorker() {
	e.t.Helper()
	cfg := worker.Config{
		DatabaseURL: e.dsn, TemporalAddress: testenv.Temporal(e.t).FrontendHostPort(), TemporalNamespace: testenv.Namespace,
		TaskQueue: e.queue, InstallationSecret: installationSecret, LogFormat: "text", LogLevel: "warn",
		MaxConcurrentActivities: 10, WriteConcurrency: 4, RequestTimeout: 5 * time.Second, ScheduleInterval: time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, nil, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		e.t.Fatalf("worker.Run: %v", err)
	case <-time.After(30 * time.Second):
		e.t.Fatal("worker did not start")
	}
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("worker.Run returned %v", err)
		}
	})
}

func TestWorkerSchedulesFullSyncAndABindingChangeDeprovisions(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	var ada, bob store.User
	var bobBinding store.Binding
	var app store.Application
	e.tx(func(tx *store.Tx) (err error) {
		if ada, err = tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test", IsActive: true}); err != nil {
			return err
		}
		if bob, err = tx.CreateUser(e.ctx, store.User{Username: "bob", Name: "Bob Builder", Email: "bob@example.test", IsActive: true}); err != nil {
			return err
		}
		if app, err = tx.CreateApplication(e.ctx, store.Application{Name: "wiki"}); err != nil {
			return err
		}
		if _, err = tx.CreateBinding(e.ctx, store.Binding{ApplicationID: app.ID, UserID: &ada.ID, Enabled: true}); err != nil {
			return err
		}
		bobBinding, err = tx.CreateBinding(e.ctx, store.Binding{ApplicationID: app.ID, UserID: &bob.ID, Enabled: true})
		return err
	})
	name := "wiki"
	e.provider(name, func(p *store.Provider) { p.ApplicationID = &app.ID })
	t.Cleanup(func() {
		h := e.temporal.ScheduleClient().GetHandle(context.Background(), workflows.FullSyncScheduleID(name))
		h.Delete(context.Background())
	})
	e.runWorker()

	// The worker creates the provider's schedule, which starts a first full sync at once.
	e.waitFor(30*time.Second, func() string {
		got := remoteUsers(e.target)
		if diffJSON(got["ada"], expectedUser(ada)) != "" || diffJSON(got["bob"], expectedUser(bob)) != "" {
			return "ada and bob not provisioned by the scheduled full sync"
		}
		return ""
	})
	desc, err := e.temporal.ScheduleClient().GetHandle(e.ctx, workflows.FullSyncScheduleID(name)).Describe(e.ctx)
	if err != nil {
		t.Fatalf("describe schedule: %v", err)
	}
	if iv := desc.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != time.Hour {
		t.Errorf("schedule intervals = %+v, want every hour", iv)
	}

	// Removing bob's binding takes him out of scope: the change feed triggers a full sync,
	// whose cleanup deletes him at the target.
	e.tx(func(tx *store.Tx) error { return tx.DeleteBinding(e.ctx, bobBinding.ID) })
	e.waitFor(30*time.Second, func() string {
		if remoteUser(e.target, "bob") != nil {
			return "bob is still provisioned after leaving the application's scope"
		}
		return ""
	})
	if diffJSON(remoteUser(e.target, "ada"), expectedUser(ada)) != "" {
		t.Errorf("ada changed: %v", remoteUser(e.target, "ada"))
	}
}
