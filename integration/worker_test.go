package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// runWorker runs worker.Run, as cmd/worker does, until the test ends, and returns the
// address of its HTTP endpoints.
func (e *env) runWorker() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := worker.Config{HTTPAddr: addr,
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
	return addr
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWorkerSchedulesFullSyncAndABindingChangeDeprovisions(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
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
		h := e.temporal.ScheduleClient().GetHandle(context.Background(), workflows.FullSyncScheduleID(e.inst, name))
		h.Delete(context.Background())
	})
	addr := e.runWorker()
	// The schedule exists as soon as the worker says it started: a full sync triggered
	// right away (as the demo does) finds it.
	if _, err := e.temporal.ScheduleClient().GetHandle(e.ctx, workflows.FullSyncScheduleID(e.inst, name)).Describe(e.ctx); err != nil {
		t.Fatalf("no schedule once the worker started: %v", err)
	}

	// The worker creates the provider's schedule, which starts a first full sync at once.
	e.waitFor(30*time.Second, func() string {
		got := remoteUsers(e.target)
		if diffJSON(got["ada"], expectedUser(ada)) != "" || diffJSON(got["bob"], expectedUser(bob)) != "" {
			return "ada and bob not provisioned by the scheduled full sync"
		}
		return ""
	})
	desc, err := e.temporal.ScheduleClient().GetHandle(e.ctx, workflows.FullSyncScheduleID(e.inst, name)).Describe(e.ctx)
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

	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	// The activity counts its objects after the request that the test saw arrive: wait for
	// the figures rather than read them once.
	wants := []string{
		`scimsync_scim_requests_total{method="POST",provider="wiki",status="201"} 2`,
		`scimsync_scim_requests_total{method="DELETE",provider="wiki",status="204"} 1`,
		`scimsync_objects_total{action="created",kind="user",provider="wiki"} 2`,
		`scimsync_objects_total{action="deprovisioned",kind="user",provider="wiki"} 1`,
		`scimsync_outbox_changes 0`,
		`scimsync_outbox_parked_changes 0`,
		`scimsync_scim_request_seconds_bucket{method="DELETE",provider="wiki",le="+Inf"} 1`,
		`temporal_workflow_completed`,
	}
	var metrics string
	e.waitFor(10*time.Second, func() string {
		var code int
		code, metrics = httpGet(t, "http://"+addr+"/metrics")
		for _, want := range wants {
			if code != 200 || !strings.Contains(metrics, want) {
				return fmt.Sprintf("/metrics lacks %s in:\n%s", want, grepLines(metrics, "scimsync_"))
			}
		}
		return ""
	})
	if strings.Contains(metrics, targetToken) || strings.Contains(metrics, `"ada"`) || strings.Contains(metrics, "@example.test") {
		t.Errorf("/metrics leaks a token or a username")
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
