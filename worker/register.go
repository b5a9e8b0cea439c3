package worker

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/workflows"
)

// Register registers scimsync's workflows and the activities of acts with a Temporal
// worker, each under its name in the contract (workflows/api.go).
func Register(w worker.Registry, acts *activities.Activities) {
	w.RegisterWorkflowWithOptions(workflows.ObjectSync, workflow.RegisterOptions{Name: workflows.ObjectSyncWorkflow})
	w.RegisterWorkflowWithOptions(workflows.FullSync, workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	w.RegisterWorkflowWithOptions(workflows.SyncBatch, workflow.RegisterOptions{Name: workflows.SyncBatchWorkflow})
	for name, fn := range workflows.ActivityMethods(acts) {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// Signaler starts or signals the per-object syncs of one installation through a Temporal
// client; it is the activities' ObjectSigner.
type Signaler struct {
	Client workflows.SignalWithStarter
	// Installation is the installation whose ObjectSyncs are signalled. Required.
	Installation workflows.Installation
	TaskQueue    string // "" means workflows.DefaultTaskQueue(Installation)
	// SummaryIDsOnly leaves names out of the summaries of the ObjectSyncs it starts
	// (SCIMSYNC_SUMMARY_NAMES=false): they show the object id.
	SummaryIDsOnly bool
}

// SignalObjectSync implements activities.ObjectSignaler.
func (s Signaler) SignalObjectSync(ctx context.Context, provider, kind, objectID, name, reason string) error {
	if s.Installation == "" {
		return errors.New("worker: the Signaler has no Installation: set it to the installation whose syncs it signals")
	}
	if s.SummaryIDsOnly {
		name = ""
	}
	return workflows.SignalObjectSyncNamed(ctx, s.Client, s.TaskQueue, s.Installation, provider, kind, objectID, name, reason)
}
