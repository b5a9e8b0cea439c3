package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

// TestMain stops the dev server that TestRecordHistories starts.
func TestMain(m *testing.M) { testenv.Main(m) }

// Histories recorded by TestRecordHistories from real runs on a dev server, with what the
// workflow did in each: the commands it gave (activities by type, children, timers,
// completion) and the signals it got, in history order.
var histories = []struct {
	file  string
	story []string
}{{
	// A user changes while its first round runs: exactly one more round follows. The first
	// round links the user, so its groups are signalled; the second finds it unchanged.
	file: "objectsync-two-rounds.json",
	story: []string{
		"signal object-changed",
		"activity LoadProvider", "activity MapObjects", "signal object-changed",
		"activity WriteObjects", "activity SignalGroupsOfUsers",
		"activity LoadProvider", "activity MapObjects",
		"complete",
	},
}, {
	// Three users in two batches at once, one group batch, then 7 stale objects above the
	// threshold of 5: the sync waits for the approval signal, then deprovisions in pages of 2.
	file: "fullsync-batches-cleanup.json",
	story: []string{
		"activity LoadProvider", "activity Discover",
		"activity ListInScope", "child SyncBatch", "child SyncBatch", "activity ListInScope",
		"activity ListInScope", "child SyncBatch", "activity ListInScope",
		"activity CountStale", "timer", "signal approve-deletions",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"complete",
	},
}, {
	// The first users batch of that full sync: linked users signal nobody.
	file:  "syncbatch-users.json",
	story: []string{"activity MapObjects", "activity WriteObjects", "complete"},
}, {
	// Its groups batch: written, then members synced.
	file:  "syncbatch-groups.json",
	story: []string{"activity MapObjects", "activity WriteObjects", "activity SyncMembers", "complete"},
}, {
	// The same four, recorded by the code of December 2026: LoadProvider and MapObjects as
	// local activities (version local-reads), and the full sync watching its provider's
	// pacing while batches run (version pacing-progress: a timer per page of batches,
	// cancelled when the page is done; these pages end before it fires).
	file: "objectsync-two-rounds.2026-12.json",
	story: []string{
		"signal object-changed",
		"marker Version", "marker LocalActivity", "marker LocalActivity", "activity WriteObjects",
		"signal object-changed", "activity SignalGroupsOfUsers",
		"marker LocalActivity", "marker LocalActivity",
		"complete",
	},
}, {
	file: "fullsync-batches-cleanup.2026-12.json",
	story: []string{
		"activity LoadProvider", "activity Discover",
		"activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer",
		"activity ListInScope",
		"activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope",
		"activity CountStale", "timer", "signal approve-deletions",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"complete",
	},
}, {
	file:  "syncbatch-users.2026-12.json",
	story: []string{"marker Version", "marker LocalActivity", "activity WriteObjects", "complete"},
}, {
	file:  "syncbatch-groups.2026-12.json",
	story: []string{"marker Version", "marker LocalActivity", "activity WriteObjects", "activity SyncMembers", "complete"},
}, {
	// A full sync that reads the target back (version read-back): users in two pages,
	// groups in one, the batches comparing with it, then the orphans and the figures.
	file: "fullsync-read-back.2026-12.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version",
		"activity StartReadBack", "activity ReadTargetPage", "activity ReadTargetPage", "activity ReadTargetPage",
		"activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer",
		"activity ListInScope",
		"activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"activity HandleOrphans", "activity HandleOrphans", "activity FinishReadBack",
		"complete",
	},
}, {
	// The full sync of fullsync-batches-cleanup, holding approvals to their counts (version
	// approval-count, asked once the 7 to deprovision exceed the threshold): an approval for
	// 6 leaves it waiting, one for 7 lets it deprovision.
	file: "fullsync-approval-count.2026-12.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version",
		"activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer",
		"activity ListInScope",
		"activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope",
		"activity CountStale", "marker Version", "timer", "signal approve-deletions", "signal approve-deletions",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"complete",
	},
}, {
	// A full sync approved for 7 as it starts (signal with start) continues as new after
	// its page of users (suggested by the server), keeping the approval (version
	// approval-count, asked before continuing as new) in the input of the next run...
	file: "fullsync-early-approval-1.2026-12.json",
	story: []string{
		"signal approve-deletions",
		"activity LoadProvider", "activity Discover", "marker Version",
		"activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer",
		"marker Version", "continue as new",
	},
}, {
	// ... which lists nothing more and deprovisions the 7 with no wait for approval.
	file: "fullsync-early-approval-2.2026-12.json",
	story: []string{
		"activity LoadProvider", "activity ListInScope", "activity ListInScope",
		"activity CountStale", "marker Version",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"complete",
	},
}, {
	// Recorded by the code of 2 December 2026: the full sync lists with empty pages
	// (version list-empty-pages, a marker before the first ListInScope of a run), and its
	// cleanup tells Deprovision that it checked the threshold (cleanup-threshold-checked,
	// the marker before the first ListStale).
	file: "fullsync-approval-count.2026-12-02.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version", "marker Version", "activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer", "activity ListInScope", "activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope", "activity CountStale", "marker Version", "timer", "signal approve-deletions", "signal approve-deletions", "marker Version", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "complete",
	},
}, {
	file: "fullsync-batches-cleanup.2026-12-02.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version", "marker Version", "activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer", "activity ListInScope", "activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope", "activity CountStale", "marker Version", "timer", "signal approve-deletions", "marker Version", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "complete",
	},
}, {
	file: "fullsync-early-approval-1.2026-12-02.json",
	story: []string{
		"signal approve-deletions", "activity LoadProvider", "activity Discover", "marker Version", "marker Version", "activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer", "marker Version", "continue as new",
	},
}, {
	file: "fullsync-early-approval-2.2026-12-02.json",
	story: []string{
		"activity LoadProvider", "marker Version", "activity ListInScope", "activity ListInScope", "activity CountStale", "marker Version", "marker Version", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "complete",
	},
}, {
	// Version batch-summary (the third marker): every SyncBatch child has a summary in its
	// StartChildWorkflowExecution command (TestRecordedBatchSummaries reads them).
	file: "fullsync-batch-summaries.2026-12-02.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version", "marker Version", "marker Version", "activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer", "activity ListInScope", "activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope", "activity CountStale", "marker Version", "timer", "signal approve-deletions", "marker Version", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "complete",
	},
}, {
	file: "fullsync-read-back.2026-12-02.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version", "activity StartReadBack", "activity ReadTargetPage", "activity ReadTargetPage", "activity ReadTargetPage", "marker Version", "activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer", "activity ListInScope", "activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope", "marker Version", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity HandleOrphans", "activity HandleOrphans", "activity FinishReadBack", "complete",
	},
}, {
	// The full sync of fullsync-batches-cleanup whose SyncBatch children carry the range of
	// their object ids as search attributes (version batch-id-range, the third marker after
	// Discover), approved for the 7 once it waits.
	file: "fullsync-batch-id-range.2026-12-02.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version", "marker Version", "marker Version",
		"activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer",
		"activity ListInScope",
		"activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope",
		"activity CountStale", "marker Version", "timer", "signal approve-deletions", "marker Version",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale",
		"complete",
	},
}, {
	// A full sync of a provider that deletes deactivated users after a grace period
	// (version grace-deletions, the marker before CountStale): 4 users and 3 groups stale
	// and 3 users due exceed the threshold of 5; approved for the 10, it deprovisions the
	// stale ones, then deletes the due ones in pages of 2.
	file: "fullsync-grace-deletions.2026-12-02.json",
	story: []string{
		"activity LoadProvider", "activity Discover", "marker Version", "marker Version", "activity ListInScope", "marker Version", "timer", "child SyncBatch", "child SyncBatch", "cancel timer", "activity ListInScope", "activity ListInScope", "timer", "child SyncBatch", "cancel timer", "activity ListInScope", "marker Version", "activity CountStale", "marker Version", "timer", "signal approve-deletions", "marker Version", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity ListStale", "activity Deprovision", "activity ListStale", "activity Deprovision", "activity ListStale", "activity ListDueDeletions", "activity DeleteDue", "activity ListDueDeletions", "activity DeleteDue", "activity ListDueDeletions", "complete",
	},
}}

// newReplayer returns a replayer with the workflows registered under their names, as the
// worker registers them. A FullSync that continues as new leaves its error in *continued
// (the replayer keeps results only of completed runs).
func newReplayer(continued **workflow.ContinueAsNewError) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(workflows.ObjectSync, workflow.RegisterOptions{Name: workflows.ObjectSyncWorkflow})
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.FullSyncInput) (workflows.FullSyncProgress, error) {
		p, err := workflows.FullSync(ctx, in)
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			*continued = can
		}
		return p, err
	}, workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	r.RegisterWorkflowWithOptions(workflows.SyncBatch, workflow.RegisterOptions{Name: workflows.SyncBatchWorkflow})
	return r
}

func testLogger(t *testing.T) log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// TestReplayHistories replays the recorded histories with the current workflow code. It
// fails when the code would give other commands than those recorded (a non-determinism
// error) or reach another result, or for a run that continued as new, another input for
// the next run: such a change needs workflow.GetVersion, or it breaks workflows running
// when it is deployed.
func TestReplayHistories(t *testing.T) {
	for _, h := range histories {
		t.Run(h.file, func(t *testing.T) {
			hist := readHistory(t, filepath.Join("testdata", h.file))
			equal(t, "recorded story", story(hist), h.story)

			var continued *workflow.ContinueAsNewError
			r := newReplayer(&continued)
			// The replayer needs the run's workflow ID: the FullSync's children's IDs derive from it.
			id := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowId()
			if id == "" {
				t.Fatalf("%s: the started event has no workflow ID", h.file)
			}
			opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}}
			if err := r.ReplayWorkflowHistoryWithOptions(testLogger(t), hist, opts); err != nil {
				t.Fatalf("replay %s: %v", h.file, err)
			}
			if can := hist.Events[len(hist.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes(); can != nil {
				if continued == nil {
					t.Fatal("the replayed run did not continue as new")
				}
				var got, want workflows.FullSyncInput
				if err := converter.GetDefaultDataConverter().FromPayloads(continued.Input, &got); err != nil {
					t.Fatal(err)
				}
				if err := converter.GetDefaultDataConverter().FromPayloads(can.GetInput(), &want); err != nil {
					t.Fatal(err)
				}
				equal(t, "replayed input of the next run", got, want)
				return
			}
			// The replayer keeps the result it reached; its interface does not show it.
			results, ok := r.(interface {
				GetWorkflowResult(workflowID string, valuePtr any) error
			})
			if !ok {
				t.Fatalf("%T has no GetWorkflowResult", r)
			}
			// Compared as the workflow's result type, which reads what earlier code wrote
			// (FullSyncProgress reads its batch count under its earlier name too).
			got, want := resultOf(h.file), resultOf(h.file)
			if err := results.GetWorkflowResult(id, got); err != nil {
				t.Fatalf("replayed result: %v", err)
			}
			last := hist.Events[len(hist.Events)-1].GetWorkflowExecutionCompletedEventAttributes()
			if err := converter.GetDefaultDataConverter().FromPayloads(last.GetResult(), want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("replayed result differs from the recorded one:\n got %s\nwant %s", asJSON(got), asJSON(want))
			}
		})
	}
}

// TestReplayDetectsChangedCommands makes sure the replay test can fail: an ObjectSync
// that gives one more command (a timer) than the recorded one does not replay.
func TestReplayDetectsChangedCommands(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.ObjectSyncInput) error {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return err
		}
		return workflows.ObjectSync(ctx, in)
	}, workflow.RegisterOptions{Name: workflows.ObjectSyncWorkflow})
	hist := readHistory(t, filepath.Join("testdata", "objectsync-two-rounds.json"))
	id := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowId()
	opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}}
	quiet := log.NewStructuredLogger(slog.New(slog.DiscardHandler)) // the expected panic's stack is long
	err := r.ReplayWorkflowHistoryWithOptions(quiet, hist, opts)
	// TMPRL1100 is the SDK's code for non-determinism.
	if err == nil || !strings.Contains(err.Error(), "TMPRL1100") {
		t.Fatalf("replay of a changed ObjectSync: error = %v, want a non-determinism error", err)
	}
}

func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (record with RECORD_HISTORIES=1 go test -run TestRecordHistories ./workflows/)", err)
	}
	defer f.Close()
	hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hist
}

// story lists what a history says the workflow did: the events its commands caused and
// the signals it received.
func story(h *historypb.History) []string {
	var out []string
	for _, e := range h.Events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			out = append(out, "activity "+e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			out = append(out, "child "+e.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowType().GetName())
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			out = append(out, "timer")
		case enumspb.EVENT_TYPE_TIMER_CANCELED:
			out = append(out, "cancel timer")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			out = append(out, "signal "+e.GetWorkflowExecutionSignaledEventAttributes().GetSignalName())
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			out = append(out, "marker "+e.GetMarkerRecordedEventAttributes().GetMarkerName())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			out = append(out, "complete")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			out = append(out, "fail")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			out = append(out, "continue as new")
		}
	}
	return out
}

// TestRecordHistories records the histories that TestReplayHistories replays, by running
// the workflows on a dev server (internal/testenv) with stub activities. Run it after a
// deliberate, versioned change of the workflows' commands, and review the new files:
//
//	RECORD_HISTORIES=1 go test -run TestRecordHistories ./workflows/
func TestRecordHistories(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "1" {
		t.Skip("set RECORD_HISTORIES=1 to record workflows/testdata/*.json on a dev server")
	}
	srv := testenv.Temporal(t)
	// A client and worker of their own, so that the recorded identities name no machine.
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: testenv.Namespace,
		Identity: "record-histories", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	queue := "record-histories"
	stub := &stubActivities{firstMapStarted: make(chan struct{}), releaseFirstMap: make(chan struct{})}
	w := worker.New(c, queue, worker.Options{Identity: "record-histories"})
	w.RegisterWorkflowWithOptions(workflows.ObjectSync, workflow.RegisterOptions{Name: workflows.ObjectSyncWorkflow})
	w.RegisterWorkflowWithOptions(workflows.FullSync, workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	w.RegisterWorkflowWithOptions(workflows.SyncBatch, workflow.RegisterOptions{Name: workflows.SyncBatchWorkflow})
	w.RegisterActivity(stub)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// ObjectSync: a second change while the first round maps the user.
	if err := workflows.SignalObjectSync(ctx, c, queue, stubInstallation, stubObjectProvider, object.User, recordedObjectID, "user insert"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stub.firstMapStarted:
	case <-ctx.Done():
		t.Fatal("the first round did not start")
	}
	syncID := recordedObjectSyncID
	if err := c.SignalWorkflow(ctx, syncID, "", workflows.SignalObjectChanged, workflows.ObjectChanged{Reason: "user update"}); err != nil {
		t.Fatal(err)
	}
	close(stub.releaseFirstMap)
	if err := c.GetWorkflow(ctx, syncID, "").Get(ctx, nil); err != nil {
		t.Fatalf("ObjectSync: %v", err)
	}
	writeHistory(ctx, t, c, syncID, "", "objectsync-two-rounds.json")

	// FullSync: approve the deletions once it waits for approval.
	fullID := recordedFullSyncID
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fullID, TaskQueue: queue},
		workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: stubFullProvider, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, c, fullID, func(p workflows.FullSyncProgress) bool { return p.Phase == workflows.PhaseAwaitApproval })
	if err := c.SignalWorkflow(ctx, fullID, "", workflows.SignalApproveDeletions, nil); err != nil {
		t.Fatal(err)
	}
	var progress workflows.FullSyncProgress
	if err := run.Get(ctx, &progress); err != nil {
		t.Fatalf("FullSync: %v", err)
	}
	// The approval without a count came while the sync waited: it approved the 7 pending
	// (version approval-count; before it, the result had no approved count).
	want := workflows.FullSyncProgress{Phase: workflows.PhaseDone, BatchesDone: 3, BatchesTotal: 3,
		Users:             workflows.Counts{Created: 3, Deprovisioned: 4},
		Groups:            workflows.Counts{Created: 1, Deprovisioned: 3},
		ApprovedDeletions: 7}
	equal(t, "FullSync result", progress, want)
	writeHistory(ctx, t, c, fullID, "", "fullsync-batches-cleanup.json")
	writeHistory(ctx, t, c, fullID+"/user-batch-1", "", "syncbatch-users.json")
	writeHistory(ctx, t, c, fullID+"/group-batch-3", "", "syncbatch-groups.json")

	// FullSync approved for fewer than it waits for (6 of 7): it goes on waiting, until an
	// approval for the 7.
	countID := recordedApprovalCountID
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: countID, TaskQueue: queue},
		workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: stubFullProvider, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, c, countID, func(p workflows.FullSyncProgress) bool { return p.Phase == workflows.PhaseAwaitApproval })
	if err := c.SignalWorkflow(ctx, countID, "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 6}); err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, c, countID, func(p workflows.FullSyncProgress) bool {
		return p.Phase == workflows.PhaseAwaitApproval && p.ApprovedDeletions == 6
	})
	if err := c.SignalWorkflow(ctx, countID, "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 7}); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &progress); err != nil {
		t.Fatalf("FullSync approved by count: %v", err)
	}
	equal(t, "FullSync approved by count", progress, want)
	writeHistory(ctx, t, c, countID, "", "fullsync-approval-count.json")

	// FullSync reading the target back: users in two pages, groups in one, then orphans.
	readID := recordedReadBackID
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: readID, TaskQueue: queue},
		workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: stubReadProvider, Parallelism: 2, ReadTarget: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &progress); err != nil {
		t.Fatalf("FullSync reading back: %v", err)
	}
	writeHistory(ctx, t, c, readID, "", "fullsync-read-back.json")

	// FullSync whose batches carry the range of their ids as search attributes (version
	// batch-id-range): as the first, approved once it waits.
	rangeID := recordedBatchIDRangeID
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: rangeID, TaskQueue: queue},
		workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: stubFullProvider, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, c, rangeID, func(p workflows.FullSyncProgress) bool { return p.Phase == workflows.PhaseAwaitApproval })
	if err := c.SignalWorkflow(ctx, rangeID, "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 7}); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &progress); err != nil {
		t.Fatalf("FullSync with batch id ranges: %v", err)
	}
	equal(t, "FullSync with batch id ranges", progress, want)
	writeHistory(ctx, t, c, rangeID, "", "fullsync-batch-id-range.json")

	recordGraceDeletions(ctx, t, c, queue)
	recordEarlyApproval(ctx, t, queue, stub)
	recordBatchSummaries(ctx, t, c, queue)
}

// recordGraceDeletions records a FullSync of a provider that deletes deactivated users
// after a grace period (version grace-deletions): the 4 users and 3 groups stale and the 3
// users due exceed the threshold of 5; approved for the 10, it deprovisions the stale ones
// and then deletes the due ones, in pages of 2.
func recordGraceDeletions(ctx context.Context, t *testing.T, c client.Client, queue string) {
	id := recordedGraceID
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue},
		workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: stubGraceProvider, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, c, id, func(p workflows.FullSyncProgress) bool {
		return p.Phase == workflows.PhaseAwaitApproval && p.PendingDeletions == 10
	})
	if err := c.SignalWorkflow(ctx, id, "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 10}); err != nil {
		t.Fatal(err)
	}
	var progress workflows.FullSyncProgress
	if err := run.Get(ctx, &progress); err != nil {
		t.Fatalf("FullSync deleting after the grace period: %v", err)
	}
	want := workflows.FullSyncProgress{Phase: workflows.PhaseDone, BatchesDone: 3, BatchesTotal: 3,
		Users:             workflows.Counts{Created: 3, Deprovisioned: 4 + 3},
		Groups:            workflows.Counts{Created: 1, Deprovisioned: 3},
		ApprovedDeletions: 10}
	equal(t, "FullSync deleting after the grace period", progress, want)
	writeHistory(ctx, t, c, id, "", "fullsync-grace-deletions.json")
}

// recordEarlyApproval records a FullSync approved as it starts (as `starter full-sync
// --allow-deletions` approves the sync it starts) that continues as new before its cleanup:
// on a dev server of its own that suggests continue-as-new from the 10th event on, the
// first run ends after its page of users, keeping the approval in the state it passes on,
// and the second deprovisions the 7 without waiting (it lists nothing more, so nothing
// makes it continue as new again).
func recordEarlyApproval(ctx context.Context, t *testing.T, queue string, stub *stubActivities) {
	srv := testenv.TemporalWith(t, "limit.historyCount.suggestContinueAsNew=10")
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: testenv.Namespace,
		Identity: "record-histories", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, queue, worker.Options{Identity: "record-histories"})
	w.RegisterWorkflowWithOptions(workflows.FullSync, workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	w.RegisterWorkflowWithOptions(workflows.SyncBatch, workflow.RegisterOptions{Name: workflows.SyncBatchWorkflow})
	w.RegisterActivity(stub)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	id := recordedEarlyApprovalID
	run, err := c.SignalWithStartWorkflow(ctx, id, workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 7},
		client.StartWorkflowOptions{ID: id, TaskQueue: queue},
		workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: stubApproveProvider, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	first := run.GetRunID() // Get follows the continue-as-new, and the run ID with it
	var progress workflows.FullSyncProgress
	if err := run.Get(ctx, &progress); err != nil {
		t.Fatalf("FullSync approved early: %v", err)
	}
	want := workflows.FullSyncProgress{Phase: workflows.PhaseDone, BatchesDone: 2, BatchesTotal: 2,
		Users:  workflows.Counts{Created: 3, Deprovisioned: 4},
		Groups: workflows.Counts{Deprovisioned: 3}, Runs: 1, ApprovedDeletions: 7}
	equal(t, "FullSync approved early", progress, want)
	writeHistory(ctx, t, c, id, first, "fullsync-early-approval-1.json")
	writeHistory(ctx, t, c, id, "", "fullsync-early-approval-2.json")
}

// awaitProgress polls the progress of the full sync id until done says it is there.
func awaitProgress(ctx context.Context, t *testing.T, c client.Client, id string, done func(workflows.FullSyncProgress) bool) {
	t.Helper()
	for {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
		if err != nil {
			t.Fatal(err)
		}
		var p workflows.FullSyncProgress
		if err := v.Get(&p); err != nil {
			t.Fatal(err)
		}
		if done(p) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("full sync %s: progress %+v", id, p)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// resultOf returns a pointer to a zero result of the workflow a history file records, by
// the file's name.
func resultOf(file string) any {
	switch {
	case strings.HasPrefix(file, "fullsync-"):
		return new(workflows.FullSyncProgress)
	case strings.HasPrefix(file, "syncbatch-"):
		return new(workflows.SyncBatchResult)
	}
	return new(any)
}

// corpusTag names the histories TestRecordHistories records now: they are written as
// <name>.<corpusTag>.json beside those of earlier versions, which are never overwritten, so
// that the replay test keeps proving that executions of every version still replay. After
// a deliberate, versioned change of the workflows' commands, set a new tag, record, add
// the new files to histories with their stories, and review them.
const corpusTag = "2026-12-02"

// writeHistory exports a closed workflow's history (of the run runID; "" for the latest)
// as the JSON that `temporal workflow show --output json` writes and the replayer reads, as
// <name>.<corpusTag>.json.
func writeHistory(ctx context.Context, t *testing.T, c client.Client, workflowID, runID, file string) {
	t.Helper()
	file = strings.TrimSuffix(file, ".json") + "." + corpusTag + ".json"
	if _, err := os.Stat(filepath.Join("testdata", file)); err == nil {
		t.Logf("testdata/%s exists: kept as recorded (histories of every version are; set a new corpusTag to record all again)", file)
		return
	}
	var h historypb.History
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", file)
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d events): %q", path, len(h.Events), story(&h))
}

// Providers of the stub activities: one for the ObjectSync recording, one for the FullSync.
// The recorded workflow IDs are fixed (the dev server of a test binary is fresh), so that
// recording again changes little; they carry the installation id stubInstallation, as
// every ID does since installation ids (the files recorded before, up to corpusTag
// 2026-12-02, have the unscoped IDs of then: scim/<provider>/..., scim-full-sync/<provider>-...).
const (
	stubInstallation        workflows.Installation = "0123456789ab"
	stubObjectProvider                             = "acme-object"
	stubFullProvider                               = "acme-full"
	stubReadProvider                               = "acme-read"
	stubApproveProvider                            = "acme-approve" // as acme-full, with no group in scope
	stubGraceProvider                              = "acme-grace"   // as acme-full, deleting deactivated users after a grace period
	recordedGraceID                                = recordedFullSyncPrefix + stubGraceProvider + "-2026-12-02T02:00:00Z"
	recordedFullSyncPrefix                         = "scim-full-sync-" + string(stubInstallation) + "/"
	recordedApprovalCountID                        = recordedFullSyncPrefix + stubFullProvider + "-2026-12-02T01:00:00Z"
	recordedEarlyApprovalID                        = recordedFullSyncPrefix + stubApproveProvider + "-2026-12-02T00:00:00Z"
	recordedReadBackID                             = recordedFullSyncPrefix + stubReadProvider + "-2026-12-01T00:00:00Z"
	recordedBatchIDRangeID                         = recordedFullSyncPrefix + stubFullProvider + "-2026-12-02T02:00:00Z"
	recordedObjectID                               = "u1"
	recordedObjectSyncID                           = "scim/" + string(stubInstallation) + "/" + stubObjectProvider + "/" + object.User + "/" + recordedObjectID
	recordedFullSyncID                             = recordedFullSyncPrefix + stubFullProvider + "-2025-01-02T03:00:00Z"
)

// stubActivities stands in for activities.Activities on the dev server: same activity
// names, inputs and results, answered from fixed data. The first MapObjects of the
// ObjectSync provider waits for releaseFirstMap, so that a signal lands mid-round.
type stubActivities struct {
	firstMapStarted chan struct{}
	releaseFirstMap chan struct{}

	mu         sync.Mutex
	objectMaps int
}

func (s *stubActivities) LoadProvider(_ context.Context, in activities.ProviderInput) (activities.ProviderInfo, error) {
	if in.Provider == stubReadProvider {
		return activities.ProviderInfo{Name: in.Provider, Enabled: true, PageSize: 2, DeprovisionAction: "delete",
			Orphans: "report"}, nil
	}
	action := "delete"
	if in.Provider == stubGraceProvider {
		action = "deactivate_then_delete"
	}
	return activities.ProviderInfo{Name: in.Provider, Enabled: true, PageSize: 2, DeprovisionAction: action,
		DeprovisionThreshold: 5}, nil
}

func (s *stubActivities) Discover(context.Context, activities.ProviderInput) (activities.DiscoverResult, error) {
	return activities.DiscoverResult{Patch: true, Filter: true}, nil
}

func (s *stubActivities) ListInScope(_ context.Context, in activities.ListInput) (activities.IDList, error) {
	scope := map[string][]string{object.User: ids("u", 3), object.Group: ids("g", 1)}
	if in.Provider == stubApproveProvider {
		scope[object.Group] = nil
	}
	return page(scope[in.Kind], in.After, in.Limit), nil
}

func (s *stubActivities) ListStale(_ context.Context, in activities.ListInput) (activities.IDList, error) {
	stale := map[string][]string{object.User: ids("u-x", 4), object.Group: ids("g-x", 3)}
	return page(stale[in.Kind], in.After, in.Limit), nil
}

func (s *stubActivities) CountStale(_ context.Context, in activities.ProviderInput) (activities.StaleCount, error) {
	if in.Provider == stubGraceProvider {
		return activities.StaleCount{Users: 4, Groups: 3, Due: 3}, nil
	}
	return activities.StaleCount{Users: 4, Groups: 3}, nil
}

func (s *stubActivities) ListDueDeletions(_ context.Context, in activities.ListInput) (activities.IDList, error) {
	return page(ids("u-d", 3), in.After, in.Limit), nil
}

func (s *stubActivities) DeleteDue(_ context.Context, in activities.ObjectsInput) (activities.WriteResult, error) {
	return activities.WriteResult{Deprovisioned: len(in.IDs)}, nil
}

func (s *stubActivities) MapObjects(ctx context.Context, in activities.ObjectsInput) (activities.MapResult, error) {
	if in.Provider != stubObjectProvider {
		return activities.MapResult{Changed: changed(in.IDs...)}, nil
	}
	s.mu.Lock()
	s.objectMaps++
	n := s.objectMaps
	s.mu.Unlock()
	if n > 1 {
		return activities.MapResult{Unchanged: in.IDs}, nil
	}
	close(s.firstMapStarted)
	select {
	case <-s.releaseFirstMap:
	case <-ctx.Done():
		return activities.MapResult{}, ctx.Err()
	}
	return activities.MapResult{Changed: changed(in.IDs...)}, nil
}

func (s *stubActivities) WriteObjects(_ context.Context, in activities.WriteInput) (activities.WriteResult, error) {
	res := activities.WriteResult{Created: len(in.Objects)}
	for _, o := range in.Objects {
		res.Linked = append(res.Linked, o.ID)
	}
	return res, nil
}

func (s *stubActivities) Deprovision(_ context.Context, in activities.ObjectsInput) (activities.WriteResult, error) {
	return activities.WriteResult{Deprovisioned: len(in.IDs)}, nil
}

func (s *stubActivities) SyncMembers(context.Context, activities.ObjectsInput) (activities.WriteResult, error) {
	return activities.WriteResult{}, nil
}

func (s *stubActivities) SignalGroupsOfUsers(context.Context, activities.SignalInput) error {
	return nil
}

func (s *stubActivities) StartReadBack(context.Context, activities.ReadPageInput) error { return nil }

func (s *stubActivities) ReadTargetPage(_ context.Context, in activities.ReadPageInput) (activities.ReadPageResult, error) {
	if in.Kind == object.User && in.Page.StartIndex == 0 {
		return activities.ReadPageResult{Read: 2, Next: &activities.PageToken{StartIndex: 3, First: "r1"}}, nil
	}
	return activities.ReadPageResult{Read: 1}, nil
}

func (s *stubActivities) ReadLinked(context.Context, activities.ReadLinkedInput) (activities.ReadLinkedResult, error) {
	return activities.ReadLinkedResult{}, nil
}

func (s *stubActivities) HandleOrphans(_ context.Context, in activities.OrphansInput) (activities.OrphansResult, error) {
	if in.Kind == object.User {
		return activities.OrphansResult{Counts: activities.OrphanCounts{Strangers: 1}}, nil
	}
	return activities.OrphansResult{}, nil
}

func (s *stubActivities) FinishReadBack(context.Context, activities.FinishReadBackInput) error {
	return nil
}

func (s *stubActivities) PacingState(context.Context, activities.ProviderInput) (activities.PacingInfo, error) {
	return activities.PacingInfo{AllowedPerMinute: 1140, SentPerMinute: 1100, AcceptedPerMinute: 1100}, nil
}
