package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestFullSyncWaitsForATargetThatIsDown: a full sync whose target answers every request
// with 503 keeps running (it never gives up, and the schedule starts no other meanwhile);
// starter status says since when it waits for the target; changes keep reaching another
// provider's target. Once the target answers, the same run ends in the exact state, the
// change included, and status no longer reports the target failing.
func TestFullSyncWaitsForATargetThatIsDown(t *testing.T) {
	e := newEnv(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	up := scimtest.NewServer(scimtest.Options{Token: targetToken, Config: scimtest.Config{NoBulk: true}})
	t.Cleanup(up.Close)
	e.provider("outage", nil)
	e.provider("outage-up", func(p *store.Provider) { p.BaseURL = up.URL })
	users := smallDirectory(e, 5)
	e.clearOutbox()
	e.target.AddFault(scimtest.Fault{Status: 503})

	// Started as the schedule starts it, findable by its provider.
	run, err := e.temporal.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID: fmt.Sprintf("%s/%s", workflows.FullSyncWorkflowID(e.inst, "outage"), e.queue), TaskQueue: e.queue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.ProviderAttribute.ValueSet("outage")),
	}, workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	status := func() string { return e.starter("status", "--provider", "outage").stdout }
	e.waitFor(time.Minute, func() string {
		out := status()
		if !strings.Contains(out, "waiting for the target since") || !strings.Contains(out, "FAILING since") ||
			!strings.Contains(out, "answered 503") {
			return "status does not say the sync waits for the target:\n" + out
		}
		return ""
	})

	// Changes flow to the other provider meanwhile.
	e.startRelay()
	u := users[0]
	u.Name = "Changed While Down"
	e.tx(func(tx *store.Tx) (err error) { users[0], err = tx.UpdateUser(e.ctx, u); return err })
	e.waitFor(time.Minute, func() string { return diffJSON(remoteUser(up, u.Username), expectedUser(users[0])) })
	desc, err := e.temporal.DescribeWorkflowExecution(e.ctx, run.GetID(), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the full sync of the failing target is %v (%v), want still running", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	if n := len(remoteUsers(e.target)); n != 0 {
		t.Fatalf("the failing target holds %d users", n)
	}

	e.target.ClearFaults()
	var progress workflows.FullSyncProgress
	if err := run.Get(e.ctx, &progress); err != nil {
		t.Fatalf("full sync after the target came back: %v", err)
	}
	e.waitFor(time.Minute, func() string {
		if len(remoteUsers(e.target)) != len(users) || diffJSON(remoteUser(e.target, u.Username), expectedUser(users[0])) != "" {
			return fmt.Sprintf("the target holds %d users, want %d with the change", len(remoteUsers(e.target)), len(users))
		}
		return ""
	})
	checkUsers(t, e.target, users)
	if out := status(); strings.Contains(out, "FAILING") || strings.Contains(out, "waiting for the target") {
		t.Errorf("status still reports the target failing after it answered:\n%s", out)
	}
}
