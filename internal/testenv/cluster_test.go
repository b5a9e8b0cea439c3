package testenv_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/workflows"
)

// TestClusterIsProductionShaped: the cluster that scripts/temporal-cluster.sh starts with
// deploy/temporal/config (CI's, compose's) is the real server on PostgreSQL persistence and
// SQL visibility with 4 history shards, and its register step gives the namespace every
// search attribute the worker needs (the script's list matches workflows.SearchAttributes).
// Its steps are idempotent: schema and register run again on the running cluster.
func TestClusterIsProductionShaped(t *testing.T) {
	srv := testenv.SharedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := srv.Client()
	info, err := c.WorkflowService().GetClusterInfo(ctx, &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetHistoryShardCount() != 4 || info.GetPersistenceStore() != "postgres12" || info.GetVisibilityStore() != "postgres12" || info.GetServerVersion() != "1.29.1" {
		t.Errorf("cluster info: %d shards, persistence %q, visibility %q, server %s; want 4, postgres12, postgres12, 1.29.1",
			info.GetHistoryShardCount(), info.GetPersistenceStore(), info.GetVisibilityStore(), info.GetServerVersion())
	}
	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: testenv.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range workflows.SearchAttributes {
		if got, ok := sas.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s: %v (registered: %v), want %v", name, got, ok, typ)
		}
	}
	if len(sas.GetCustomAttributes()) != len(workflows.SearchAttributes) {
		t.Errorf("custom search attributes %v, want exactly %v", sas.GetCustomAttributes(), workflows.SearchAttributes)
	}
	for _, step := range []string{"schema", "register"} {
		if out, err := srv.Script(ctx, step); err != nil {
			t.Errorf("temporal-cluster.sh %s again: %v\n%s", step, err, out)
		}
	}
	root, _ := testenv.RepoRoot()
	if out, err := exec.Command("bash", "-n", filepath.Join(root, "scripts", "temporal-cluster.sh")).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v %s", err, out)
	}
}
