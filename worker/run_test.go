package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// runConfig is a worker configuration on the database dsn and the package's dev server.
func runConfig(t *testing.T, dsn, queue string) worker.Config {
	return worker.Config{
		DatabaseURL: dsn, TemporalAddress: testenv.Temporal(t).FrontendHostPort(), TemporalNamespace: testenv.Namespace,
		TaskQueue: queue, InstallationSecret: "run-test-secret", LogFormat: "text", LogLevel: "error",
		MaxConcurrentActivities: 4, WriteConcurrency: 2, RequestTimeout: 5 * time.Second, ScheduleInterval: time.Hour,
	}
}

// pollers returns the identities Temporal lists as polling queue.
func pollers(t *testing.T, e *guardEnv, queue string) []string {
	t.Helper()
	var out []string
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := e.c.DescribeTaskQueue(e.ctx, queue, typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.GetPollers() {
			out = append(out, p.GetIdentity())
		}
	}
	return out
}

// TestWorkerWithABusyHTTPAddressStopsBeforePolling: a worker whose HTTP address is taken
// (another worker on the machine) stops with an error that names the address, before it
// polled its task queue: a sync waiting there was not taken, the target got no request,
// and no schedule was created.
func TestWorkerWithABusyHTTPAddressStopsBeforePolling(t *testing.T) {
	e := newGuardEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	queue := e.queue + "-busy"
	if err := workflows.SignalObjectSync(e.ctx, e.c, queue, e.inst, e.provider.Name, object.User, e.user.ID, "test"); err != nil {
		t.Fatal(err)
	}

	cfg := runConfig(t, e.dsn, queue)
	cfg.HTTPAddr = ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = worker.Run(ctx, cfg, nil, func() { t.Error("the worker reported itself started") })
	if err == nil || !strings.Contains(err.Error(), cfg.HTTPAddr) || !strings.Contains(err.Error(), "before polling") {
		t.Fatalf("Run = %v, want an error naming %s, before polling", err, cfg.HTTPAddr)
	}

	if p := pollers(t, e, queue); len(p) != 0 {
		t.Errorf("task queue %s was polled by %q", queue, p)
	}
	id := workflows.ObjectSyncID(e.inst, e.provider.Name, object.User, e.user.ID)
	desc, err := e.c.DescribeWorkflowExecution(e.ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if pending := desc.GetPendingWorkflowTask(); pending == nil || pending.GetState() != enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED {
		t.Errorf("the waiting sync's workflow task = %v, want scheduled and never started", pending)
	}
	if n := len(e.target.Requests()); n != 0 {
		t.Errorf("the target got %d requests", n)
	}
	_, err = e.c.ScheduleClient().GetHandle(e.ctx, workflows.FullSyncScheduleID(e.inst, e.provider.Name)).Describe(e.ctx)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("schedule of %s: describe = %v, want NotFound (the keeper must not have run)", e.provider.Name, err)
	}
}

// TestWorkerRefusesATaskQueueOfAnotherInstallation: a worker configured with the task
// queue that a worker of another installation polls stops before polling, naming both
// installations and the setting to change.
func TestWorkerRefusesATaskQueueOfAnotherInstallation(t *testing.T) {
	a := newGuardEnv(t)
	b := newScheduleEnvOf(t, namedTB{t, t.Name() + "_b"})
	queue := fmt.Sprintf("shared-%d", time.Now().UnixNano())

	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- worker.Run(ctx, runConfig(t, a.dsn, queue), nil, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker of installation %s: %v", a.inst, err)
	case <-time.After(time.Minute):
		t.Fatal("the first worker did not start")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker of installation %s: %v", a.inst, err)
		}
	}()
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		p := pollers(t, a, queue)
		return len(p) > 0, "Temporal lists no poller of the first worker yet"
	})

	runCtx, runCancel := context.WithTimeout(context.Background(), time.Minute)
	defer runCancel()
	err := worker.Run(runCtx, runConfig(t, b.dsn, queue), nil, func() { t.Error("the second worker started") })
	if err == nil {
		t.Fatal("a worker of another installation started on the task queue")
	}
	for _, want := range []string{queue, string(a.inst), string(b.inst), "SCIMSYNC_TASK_QUEUE", "before polling"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, p := range pollers(t, a, queue) {
		if inst, ok := worker.WorkerInstallation(p); !ok || inst != a.inst {
			t.Errorf("task queue %s polled by %q, want only installation %s", queue, p, a.inst)
		}
	}
}
