package worker

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/workflows"
)

// InstallationGuard is the worker interceptor that makes every activity, local ones
// included, check first that the workflow it serves belongs to the installation inst: its
// workflow ID carries inst (workflows.WorkflowInstallation; a SyncBatch child's ID extends
// its parent's, so it carries the parent's). Any other workflow gets a non-retryable
// ApplicationError of type activities.ErrTypeWrongInstallation before the activity touches
// the database or a target: another installation's workflow on a task queue this worker
// shares with it (it would run against this worker's database), or one started before
// installation ids, whose installation nobody can tell (see docs/reliability.md, "Several
// installations in one namespace").
func InstallationGuard(inst workflows.Installation) interceptor.WorkerInterceptor {
	return &installationGuard{inst: inst}
}

type installationGuard struct {
	interceptor.WorkerInterceptorBase
	inst workflows.Installation
}

func (g *installationGuard) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &guardedActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, inst: g.inst}
}

type guardedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	inst workflows.Installation
}

func (a *guardedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	if err := CheckInstallation(a.inst, info.WorkflowExecution.ID, info.TaskQueue); err != nil {
		return nil, err
	}
	return a.Next.ExecuteActivity(ctx, in)
}

// CheckInstallation returns nil when the workflow workflowID belongs to the installation
// inst, else the non-retryable WrongInstallation error that says what to fix. taskQueue,
// the queue the work came from, is named in it.
func CheckInstallation(inst workflows.Installation, workflowID, taskQueue string) error {
	owner, ok := workflows.WorkflowInstallation(workflowID)
	switch {
	case ok && owner == inst:
		return nil
	case ok:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"workflow %s belongs to installation %s, but this worker serves installation %s (its database): "+
				"nothing was read or written; two installations poll task queue %q: give each its own "+
				"SCIMSYNC_TASK_QUEUE, or leave it unset (the default task queue is the installation's own)",
			workflowID, owner, inst, taskQueue), activities.ErrTypeWrongInstallation, nil)
	default:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"workflow %s carries no installation id: it was started before installation ids, or by hand, "+
				"and may belong to any installation of the namespace, so this worker of installation %s runs "+
				"none of its activities: nothing was read or written; terminate it (the installation's next "+
				"full sync does its work) and start syncs with the IDs of package workflows (%s, %s...)",
			workflowID, inst, workflows.ObjectSyncID(inst, "<provider>", "<kind>", "<id>"),
			workflows.FullSyncWorkflowID(inst, "<provider>")), activities.ErrTypeWrongInstallation, nil)
	}
}
