package workflows

import (
	"context"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// ObjectSyncStartOptions are the options every SignalWithStart of an ObjectSync of the
// installation uses: its ID, the task queue ("" means DefaultTaskQueue(inst)), USE_EXISTING
// (so changes coalesce into the running workflow), the search attributes and the summary,
// which shows the object id; a caller that knows the object's name sets StaticSummary to
// ObjectSyncSummary with it.
func ObjectSyncStartOptions(taskQueue string, inst Installation, provider, kind, objectID string) client.StartWorkflowOptions {
	if taskQueue == "" {
		taskQueue = DefaultTaskQueue(inst)
	}
	return client.StartWorkflowOptions{
		ID:                       ObjectSyncID(inst, provider, kind, objectID),
		TaskQueue:                taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			ProviderAttribute.ValueSet(provider), ObjectKindAttribute.ValueSet(kind)),
		StaticSummary: ObjectSyncSummary(provider, kind, objectID),
	}
}

// SignalWithStarter is the part of a Temporal client that starts or signals workflows.
type SignalWithStarter interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID string, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

// SignalObjectSync starts the object's ObjectSync, or signals the running one, that the
// object changed. This is how other services trigger a sync directly; inst is the
// installation's id as `starter status` shows it, taskQueue "" its default task queue.
func SignalObjectSync(ctx context.Context, c SignalWithStarter, taskQueue string, inst Installation, provider, kind, objectID, reason string) error {
	return SignalObjectSyncNamed(ctx, c, taskQueue, inst, provider, kind, objectID, "", reason)
}

// SignalObjectSyncNamed is SignalObjectSync for a caller that knows the object's name (a
// user's username, a group's name): an ObjectSync it starts has the name in its summary
// (ObjectSyncSummary); "" means the object id. A running ObjectSync keeps its summary.
func SignalObjectSyncNamed(ctx context.Context, c SignalWithStarter, taskQueue string, inst Installation, provider, kind, objectID, name, reason string) error {
	opts := ObjectSyncStartOptions(taskQueue, inst, provider, kind, objectID)
	if name != "" {
		opts.StaticSummary = ObjectSyncSummary(provider, kind, name)
	}
	_, err := c.SignalWithStartWorkflow(ctx, opts.ID, SignalObjectChanged, ObjectChanged{Reason: reason}, opts,
		ObjectSyncWorkflow, ObjectSyncInput{Provider: provider, Kind: kind, ObjectID: objectID})
	return err
}
