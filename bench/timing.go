package main

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

// runTiming is where one workflow run's time went, read from its history (event times are
// the server's clock).
type runTiming struct {
	start, end time.Time
	// dispatch is the time tasks waited to reach the worker: workflow and activity tasks,
	// scheduled → started, summed.
	dispatch time.Duration
	// tasks counts the workflow and activity tasks dispatched (started).
	tasks int
	// workflowTasks is the workflow tasks' processing, started → completed, summed.
	workflowTasks time.Duration
	// activities is the activities' execution by type, started → completed, summed.
	activities map[string]time.Duration
	children   []childRun
	next       string // the run continued as new, if any
}

type childRun struct{ id, runID string }

// timing reads the history of run runID of workflow id. Events after until (when not
// zero) are ignored.
func timing(ctx context.Context, c client.Client, id, runID string, until time.Time) (*runTiming, error) {
	t := &runTiming{activities: map[string]time.Duration{}}
	scheduled := map[int64]time.Time{}
	started := map[int64]time.Time{}
	types := map[int64]string{}
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		at := ev.GetEventTime().AsTime()
		if !until.IsZero() && at.After(until) {
			break
		}
		if t.start.IsZero() {
			t.start = at
		}
		t.end = at
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = at
			types[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			s := ev.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()
			t.dispatch += at.Sub(scheduled[s])
			t.tasks++
			started[s] = at
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			t.workflowTasks += at.Sub(started[ev.GetWorkflowTaskCompletedEventAttributes().GetScheduledEventId()])
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			s := ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()
			t.dispatch += at.Sub(scheduled[s])
			t.tasks++
			started[s] = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			s := ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			t.activities[types[s]] += at.Sub(started[s])
		case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
			a := ev.GetChildWorkflowExecutionStartedEventAttributes()
			t.children = append(t.children, childRun{a.GetWorkflowExecution().GetWorkflowId(), a.GetWorkflowExecution().GetRunId()})
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			t.next = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		}
	}
	return t, nil
}

// fullSyncBreakdown adds up, over every run of a FullSync and every SyncBatch child, where
// the time went, in seconds: "batches" (the children's wall time, summed: with N running
// at once it is about N × the sync's), "dispatch", "workflow tasks" (local activities, such
// as MapObjects, run inside them), and "activity <type>"; and the tasks dispatched.
func fullSyncBreakdown(ctx context.Context, c client.Client, id, runID string) (map[string]float64, int, error) {
	out := map[string]float64{}
	tasks := 0
	add := func(t *runTiming) {
		out["dispatch"] += t.dispatch.Seconds()
		tasks += t.tasks
		out["workflow tasks"] += t.workflowTasks.Seconds()
		for typ, d := range t.activities {
			out["activity "+typ] += d.Seconds()
		}
	}
	for runID != "" {
		t, err := timing(ctx, c, id, runID, time.Time{})
		if err != nil {
			return nil, 0, err
		}
		add(t)
		for _, ch := range t.children {
			ct, err := timing(ctx, c, ch.id, ch.runID, time.Time{})
			if err != nil {
				return nil, 0, err
			}
			add(ct)
			out["batches"] += ct.end.Sub(ct.start).Seconds()
		}
		runID = t.next
	}
	return out, tasks, nil
}

// latencyBreakdown splits each S4 change's latency, from its ObjectSync history up to the
// moment the target had the change, and returns the medians in milliseconds: "feed" (the
// UPDATE sent → the workflow started: trigger, NOTIFY, relay, SignalWithStart),
// "dispatch", "workflow tasks", "activity <type>", and "rest" (what none of those covers).
func (w *world) latencyBreakdown(ctx context.Context, changes []change) (map[string]float64, error) {
	parts := map[string][]float64{}
	for _, c := range changes {
		id := workflows.ObjectSyncID(w.inst, w.provider, object.User, c.userID)
		t, err := timing(ctx, w.h.temporal, id, "", c.sent.Add(c.latency))
		if err != nil {
			return nil, err
		}
		if t.start.IsZero() {
			continue
		}
		feed := t.start.Sub(c.sent)
		rest := c.latency - feed - t.dispatch - t.workflowTasks
		parts["feed"] = append(parts["feed"], ms(feed))
		parts["dispatch"] = append(parts["dispatch"], ms(t.dispatch))
		if t.tasks > 0 {
			parts["dispatch per task"] = append(parts["dispatch per task"], ms(t.dispatch)/float64(t.tasks))
		}
		parts["workflow tasks"] = append(parts["workflow tasks"], ms(t.workflowTasks))
		for typ, d := range t.activities {
			parts["activity "+typ] = append(parts["activity "+typ], ms(d))
			rest -= d
		}
		parts["rest"] = append(parts["rest"], ms(rest))
	}
	out := map[string]float64{}
	for k, vs := range parts {
		out[k] = spreadOf(vs).Median
	}
	return out, nil
}
