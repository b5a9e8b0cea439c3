package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
)

// a is the nil receiver through which workflows name activities.
var a *activities.Activities

// Transient failures (outages, 5xx, 429) are retried without limit: an outage of the target
// delays a sync, it never drops it. Errors that retrying cannot fix are non-retryable
// application errors, decided by the activities.
var retryForever = &temporal.RetryPolicy{
	InitialInterval:    time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    2 * time.Minute,
}

// withQuickActivity is for database reads and discovery.
func withQuickActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         retryForever,
	})
}

// withWriteActivity is for activities that talk to the target about a whole batch; they
// heartbeat after every object.
func withWriteActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         retryForever,
	})
}
