package worker

import (
	"context"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/workflows"
)

// Register registers scimsync's workflows, under their documented type names, and the
// activities of acts with a Temporal worker.
func Register(w worker.Registry, acts *activities.Activities) {
	w.RegisterWorkflowWithOptions(workflows.ObjectSync, workflow.RegisterOptions{Name: workflows.ObjectSyncWorkflow})
	w.RegisterWorkflowWithOptions(workflows.FullSync, workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	w.RegisterWorkflowWithOptions(workflows.SyncBatch, workflow.RegisterOptions{Name: workflows.SyncBatchWorkflow})
	w.RegisterActivity(acts)
}

// Signaler starts or signals per-object syncs through a Temporal client; it is the
// activities' ObjectSigner.
type Signaler struct {
	Client    workflows.SignalWithStarter
	TaskQueue string // "" means workflows.TaskQueue
}

// SignalObjectSync implements activities.ObjectSignaler.
func (s Signaler) SignalObjectSync(ctx context.Context, provider, kind, objectID, reason string) error {
	return workflows.SignalObjectSync(ctx, s.Client, s.TaskQueue, provider, kind, objectID, reason)
}
