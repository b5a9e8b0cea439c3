package testenv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func echo(ctx workflow.Context, s string) (string, error) { return "echo " + s, nil }

func TestDevServerRunsWorkflowFindableBySearchAttribute(t *testing.T) {
	c := testenv.TemporalClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	queue := "smoke-" + t.Name()
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(echo)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	provider := fmt.Sprintf("smoke-%d", time.Now().UnixNano())
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "smoke/" + provider,
		TaskQueue: queue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProviderAttribute.ValueSet(provider),
			workflows.ObjectKindAttribute.ValueSet("user"),
		),
	}, echo, "hello")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "echo hello" {
		t.Fatalf("workflow result = %q, %v", got, err)
	}

	query := fmt.Sprintf("ScimProvider = '%s' AND ScimObjectKind = 'user'", provider)
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("list %q: %v", query, err)
		}
		if len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == "smoke/"+provider {
			return
		}
		if len(resp.Executions) > 1 {
			t.Fatalf("query %q found %d executions, want 1", query, len(resp.Executions))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workflow not found with %q", query)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestDatabaseIsMigrated(t *testing.T) {
	s := testenv.Store(t)
	var n int
	if err := s.DB().Get(&n, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("test database has no applied migrations")
	}
}
