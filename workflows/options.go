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

// withLocalRead is for the quick reads at the start of every object sync and batch
// (LoadProvider, MapObjects): they run as local activities, inside the workflow task of the
// worker that runs the workflow, so each costs no round trip through the server (an
// activity task and the workflow task after it). They write nothing and send nothing, so
// running them again after a crash is harmless.
func withLocalRead(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         retryForever,
	})
}

// localReadsVersion marks executions that run LoadProvider and MapObjects as local
// activities; executions recorded before it ran them as activities, and replay them so.
const localReadsVersion = "local-reads"

// useLocalReads records (or, on replay, reads back) whether this execution runs its quick
// reads as local activities.
func useLocalReads(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, localReadsVersion, workflow.DefaultVersion, 1) >= 1
}

// read runs one of the quick reads: as a local activity when local, else as an activity.
func read(ctx workflow.Context, local bool, activity, in any) workflow.Future {
	if local {
		return workflow.ExecuteLocalActivity(withLocalRead(ctx), activity, in)
	}
	return workflow.ExecuteActivity(withQuickActivity(ctx), activity, in)
}

// writeHeartbeatTimeout is how long a write activity may go without a heartbeat before it
// is retried, on another worker if its own died. The activities heartbeat every
// activities.HeartbeatInterval whatever they wait for, and the SDK sends at most one
// heartbeat per 0.8 × this timeout.
const writeHeartbeatTimeout = 6 * activities.HeartbeatInterval

// withWriteActivity is for activities that talk to the target about a whole batch.
func withWriteActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    writeHeartbeatTimeout,
		RetryPolicy:         retryForever,
	})
}
