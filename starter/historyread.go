package starter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/workflows"
)

// Reading an object's syncs back from Temporal: its ObjectSync runs (every run of its
// workflow ID, continue-as-new included) and the SyncBatch children of full syncs whose
// id range holds it (search attributes ScimBatchFirstId/ScimBatchLastId), each history
// read event by event. Queries name the provider, the kind and the object's uuid, never
// its name.

// Triggers of a sync (historyEntry.Trigger).
const (
	triggeredByDirectory = "directory-change" // the change feed relayed a change of the directory
	triggeredByFullSync  = "full-sync"        // a batch of a full sync
	triggeredByOperator  = "operator"         // starter sync --via-temporal
	triggeredByMember    = "member-sync"      // a member's sync (linked or deactivated) signalled its group
	triggeredByContinue  = "continued"        // a round of a run continued as new, with no new signal
)

// Results of a sync (historyEntry.Result).
const (
	resultOK         = "ok"
	resultFailed     = "failed"
	resultRunning    = "running"
	resultIncomplete = "incomplete" // the run was cancelled, terminated or timed out mid-sync
)

// actionGone: the object was deleted or left scope, and nothing of it was at the target.
const actionGone = "gone"

// actionWritten: written by a worker that recorded no per-object outcome (before history).
const actionWritten = "written"

// actionPending: the sync runs, and has not written the object yet.
const actionPending = "pending"

// historyEntry is one past sync of the object.
type historyEntry struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"`
	// Reasons are the signals' reasons, e.g. "user update", "membership insert".
	Reasons  []string                 `json:"reasons,omitempty"`
	Action   string                   `json:"action"`
	Requests []activities.SentRequest `json:"requests"`
	Result   string                   `json:"result"`
	Error    string                   `json:"error,omitempty"`
	// WorkflowID and RunID are the execution that did it: an ObjectSync, or a SyncBatch
	// whose full sync FullSync names.
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	FullSync   string `json:"fullSync,omitempty"`
}

// execution is one workflow run that may have synced the object.
type execution struct {
	id, runID string
	batch     bool
	parent    string
	start     time.Time
	close     time.Time // zero while it runs
	running   bool
}

// latest is when the run's last entry can be at the latest: its close, or now.
func (e execution) latest() time.Time {
	if e.running {
		return time.Now()
	}
	return e.close
}

// historyReader reads executions of one object.
type historyReader struct {
	tc       client.Client
	dc       converter.DataConverter
	fc       converter.FailureConverter
	objectID string
}

// quote is a visibility query string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// executions lists the object's ObjectSync runs and the batches that may hold it.
func (r *historyReader) executions(ctx context.Context, inst workflows.Installation, provider, kind string) ([]execution, error) {
	own := "WorkflowId = " + quote(workflows.ObjectSyncID(inst, provider, kind, r.objectID))
	runs, err := r.list(ctx, own, false)
	if err != nil {
		return nil, err
	}
	batches := strings.Join([]string{
		"WorkflowType = " + quote(workflows.SyncBatchWorkflow),
		"WorkflowId STARTS_WITH " + quote(workflows.FullSyncWorkflowID(inst, provider)),
		workflows.ProviderAttribute.GetName() + " = " + quote(provider),
		workflows.ObjectKindAttribute.GetName() + " = " + quote(kind),
		workflows.BatchFirstIDAttribute.GetName() + " <= " + quote(r.objectID),
		workflows.BatchLastIDAttribute.GetName() + " >= " + quote(r.objectID),
	}, " AND ")
	more, err := r.list(ctx, batches, true)
	if err != nil {
		return nil, err
	}
	return append(runs, more...), nil
}

func (r *historyReader) list(ctx context.Context, query string, batch bool) ([]execution, error) {
	var out []execution
	var token []byte
	for {
		resp, err := r.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list workflows: %w", err)
		}
		for _, info := range resp.GetExecutions() {
			e := execution{id: info.GetExecution().GetWorkflowId(), runID: info.GetExecution().GetRunId(), batch: batch,
				start: info.GetStartTime().AsTime(), running: info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
				parent: info.GetParentExecution().GetWorkflowId()}
			if info.GetCloseTime() != nil {
				e.close = info.GetCloseTime().AsTime()
			}
			out = append(out, e)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// entries returns the syncs of the object one execution made, oldest first.
func (r *historyReader) entries(ctx context.Context, e execution) ([]historyEntry, error) {
	p, err := r.parse(ctx, e)
	if err != nil {
		return nil, err
	}
	p.finish()
	return p.out, nil
}

// parse reads one execution's history.
func (r *historyReader) parse(ctx context.Context, e execution) (*historyParser, error) {
	it := r.tc.GetWorkflowHistory(ctx, e.id, e.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	p := &historyParser{ctx: ctx, r: r, exec: e, scheduled: map[int64]string{}}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("read history of %s: %w", e.id, err)
		}
		if err := p.event(ev); err != nil {
			return nil, fmt.Errorf("history of %s (run %s), event %d: %w", e.id, e.runID, ev.GetEventId(), err)
		}
	}
	return p, nil
}

// leftover returns the reasons of the signals an ObjectSync run received after its last
// round began: the run continued as new with them, and the next run's first round serves
// them.
func (r *historyReader) leftover(ctx context.Context, workflowID, runID string) ([]string, error) {
	p, err := r.parse(ctx, execution{id: workflowID, runID: runID})
	if err != nil {
		return nil, err
	}
	return p.reasons, nil
}

// historyParser follows one history. A sync is a round of ObjectSync (LoadProvider, then
// MapObjects and the writes) or a whole SyncBatch (MapObjects and the writes).
type historyParser struct {
	ctx       context.Context
	r         *historyReader
	exec      execution
	scheduled map[int64]string // activity type by its scheduled event id
	reasons   []string         // signals not served by a round yet
	round     *round
	out       []historyEntry
	// continuedFrom is the run this one continued as new from.
	continuedFrom string
}

// round is the sync under way.
type round struct {
	entry      historyEntry
	action     string // from MapObjects, then the write calls
	failed     bool   // an activity or the run failed
	incomplete bool   // the run ended otherwise before the round did
}

func (p *historyParser) event(ev *historypb.HistoryEvent) error {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
		p.continuedFrom = ev.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if p.exec.batch {
			var in workflows.SyncBatchInput
			if err := p.decode(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
				return err
			}
			if slices.Contains(in.IDs, p.r.objectID) {
				p.begin(ev.GetEventTime().AsTime(), triggeredByFullSync, nil)
			}
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
		a := ev.GetWorkflowExecutionSignaledEventAttributes()
		if a.GetSignalName() != workflows.SignalObjectChanged {
			return nil
		}
		var sig workflows.ObjectChanged
		if err := p.decode(a.GetInput(), &sig); err != nil {
			return err
		}
		p.reasons = append(p.reasons, sig.Reason)
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
		a := ev.GetActivityTaskScheduledEventAttributes()
		name := a.GetActivityType().GetName()
		p.scheduled[ev.GetEventId()] = name
		if name == workflows.ActivityLoadProvider && !p.exec.batch {
			return p.beginRound(ev.GetEventTime().AsTime())
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		a := ev.GetActivityTaskCompletedEventAttributes()
		return p.answered(p.scheduled[a.GetScheduledEventId()], a.GetResult(), nil)
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		a := ev.GetActivityTaskFailedEventAttributes()
		return p.answered(p.scheduled[a.GetScheduledEventId()], nil, a.GetFailure())
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
		a := ev.GetActivityTaskTimedOutEventAttributes()
		return p.answered(p.scheduled[a.GetScheduledEventId()], nil, a.GetFailure())
	case enumspb.EVENT_TYPE_MARKER_RECORDED:
		return p.marker(ev)
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		p.end()
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		p.closed(resultFailed, ev.GetWorkflowExecutionFailedEventAttributes().GetFailure())
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
		p.closed(resultIncomplete, nil)
	}
	return nil
}

// marker handles a local activity's marker: LoadProvider and MapObjects run so (version
// local-reads). The marker is written when the activity has answered, so it begins and
// answers at once.
func (p *historyParser) marker(ev *historypb.HistoryEvent) error {
	a := ev.GetMarkerRecordedEventAttributes()
	if a.GetMarkerName() != "LocalActivity" {
		return nil
	}
	var data struct{ ActivityType string }
	if err := p.decode(a.GetDetails()["data"], &data); err != nil {
		return err
	}
	if data.ActivityType == workflows.ActivityLoadProvider && !p.exec.batch {
		if err := p.beginRound(ev.GetEventTime().AsTime()); err != nil {
			return err
		}
	}
	return p.answered(data.ActivityType, a.GetDetails()["result"], a.GetFailure())
}

// beginRound begins an ObjectSync round, serving the signals received so far; the first
// round of a run that continued as new serves those the run before kept.
func (p *historyParser) beginRound(at time.Time) error {
	first := p.round == nil && len(p.out) == 0
	p.end()
	reasons := p.reasons
	p.reasons = nil
	if first && len(reasons) == 0 && p.continuedFrom != "" {
		var err error
		if reasons, err = p.r.leftover(p.ctx, p.exec.id, p.continuedFrom); err != nil {
			return err
		}
	}
	p.begin(at, triggerOf(reasons), reasons)
	return nil
}

func (p *historyParser) begin(at time.Time, trigger string, reasons []string) {
	p.round = &round{entry: historyEntry{Time: at, Trigger: trigger, Reasons: reasons, Requests: []activities.SentRequest{},
		WorkflowID: p.exec.id, RunID: p.exec.runID, FullSync: p.exec.parent}}
}

// triggerOf tells what made a round from its signals' reasons: the operator's starter sync,
// a member's sync (activities signal "member linked", "member deactivated"), else a change
// the change feed relayed ("user update", "membership insert", ...). No signal: a round of
// a run that continued as new.
func triggerOf(reasons []string) string {
	if len(reasons) == 0 {
		return triggeredByContinue
	}
	operator, member := false, false
	for _, r := range reasons {
		switch {
		case r == "starter sync":
			operator = true
		case strings.HasPrefix(r, "member "):
			member = true
		default:
			return triggeredByDirectory
		}
	}
	if operator {
		return triggeredByOperator
	}
	if member {
		return triggeredByMember
	}
	return triggeredByDirectory
}

// answered takes in the result (or failure) of an activity of the round.
func (p *historyParser) answered(name string, result *commonpb.Payloads, failure *failurepb.Failure) error {
	rd := p.round
	if rd == nil {
		return nil
	}
	if failure != nil {
		rd.failed = true
		rd.entry.Error = p.failureText(failure)
		if rd.action == "" || rd.action == actionGone {
			rd.action = activities.ActionFailed
		}
		return nil
	}
	id := p.r.objectID
	switch name {
	case workflows.ActivityLoadProvider:
		var info activities.ProviderInfo
		if err := p.decode(result, &info); err != nil {
			return err
		}
		if !info.Enabled {
			rd.action = activities.ActionSkipped
			rd.entry.Error = "the provider is disabled"
		}
	case workflows.ActivityMapObjects:
		var m activities.MapResult
		if err := p.decode(result, &m); err != nil {
			return err
		}
		switch {
		case slices.Contains(m.Unchanged, id):
			rd.action = activities.ActionUnchanged
		case slices.Contains(m.Skipped, id):
			rd.action = activities.ActionSkipped
		case slices.Contains(m.Gone, id):
			rd.action = actionGone
		case slices.ContainsFunc(m.Changed, func(o activities.MappedObject) bool { return o.ID == id }):
			rd.action = actionWritten
		}
	case workflows.ActivityWriteObjects, workflows.ActivityDeprovision, workflows.ActivitySyncMembers:
		var w activities.WriteResult
		if err := p.decode(result, &w); err != nil {
			return err
		}
		for _, f := range w.Failed {
			if f.ID == id {
				rd.entry.Error = f.Error
			}
		}
		if rec, ok := w.Objects[id]; ok {
			rd.entry.Requests = append(rd.entry.Requests, rec.Requests...)
			rd.action = combine(rd.action, rec.Action)
		}
	}
	return nil
}

// combine is the action a sync shows for the object when one call did prev and the next
// act: a group's create or update stays that when its members follow; a write that found
// nothing to do leaves the members'; a failure wins.
func combine(prev, act string) string {
	switch {
	case prev == activities.ActionFailed || act == activities.ActionFailed:
		return activities.ActionFailed
	case act == activities.ActionMembers && prev != "" && prev != actionWritten && prev != activities.ActionUnchanged:
		return prev
	}
	return act
}

// end closes the round under way: a later round begins, or the run ended. A round of a
// run that ended before it finished (failed, cancelled, terminated, timed out) did not do
// what its mapping said: it shows failed, or incomplete.
func (p *historyParser) end() {
	rd := p.round
	if rd == nil {
		return
	}
	p.round = nil
	e := rd.entry
	e.Action, e.Result = rd.action, resultOK
	switch {
	case rd.failed || e.Action == activities.ActionFailed:
		e.Result = resultFailed
	case rd.incomplete:
		e.Result = resultIncomplete
	}
	if e.Result != resultOK && (e.Action == "" || e.Action == actionWritten || e.Action == actionGone) {
		e.Action = activities.ActionFailed
	}
	if e.Action == "" { // nothing mapped: the provider was disabled, or a batch without it
		e.Action = activities.ActionSkipped
	}
	p.out = append(p.out, e)
}

// closed ends the round under way with the run's end: result failed or incomplete.
func (p *historyParser) closed(result string, failure *failurepb.Failure) {
	rd := p.round
	if rd == nil {
		return
	}
	if failure != nil && rd.entry.Error == "" {
		rd.entry.Error = p.failureText(failure)
	}
	if result == resultFailed {
		rd.failed = true
	} else {
		rd.incomplete = true
	}
	p.end()
}

// finish ends the history: a round still open belongs to a running run. Its action is
// pending until a write call has answered for the object.
func (p *historyParser) finish() {
	rd := p.round
	if rd == nil {
		return
	}
	p.round = nil
	e := rd.entry
	e.Action, e.Result = rd.action, resultRunning
	if e.Action == "" || e.Action == actionWritten || e.Action == actionGone {
		e.Action = actionPending
	}
	p.out = append(p.out, e)
}

// sealedError is a payload sealed by the codec that the starter cannot open: it has no
// keys, or not the one it was sealed with. Its text says which.
type sealedError struct{ msg string }

func (e *sealedError) Error() string { return e.msg }

// noKeys is the sealedError of a starter without codec keys.
var noKeys = &sealedError{"the workers encrypt payloads (SCIMSYNC_CODEC_KEYS) and this starter has not got their keys: " +
	"set SCIMSYNC_CODEC_KEYS (or --codec-keys) as the workers have it"}

func (p *historyParser) decode(payloads *commonpb.Payloads, v any) error {
	if payloads == nil || len(payloads.GetPayloads()) == 0 {
		return nil
	}
	err := p.r.dc.FromPayloads(payloads, v)
	if err == nil {
		return nil
	}
	for _, pl := range payloads.GetPayloads() {
		if string(pl.GetMetadata()[converter.MetadataEncoding]) != codec.MetadataEncoding {
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "codec:") {
			return &sealedError{msg[strings.Index(msg, "codec:"):]}
		}
		return noKeys
	}
	return err
}

// failureText is a failure's message, opened with the codec's keys when it is sealed.
func (p *historyParser) failureText(f *failurepb.Failure) string {
	err := p.r.fc.FailureToError(f)
	msg := err.Error()
	if f.GetEncodedAttributes() != nil && msg == "Encoded failure" {
		return "(encrypted: set SCIMSYNC_CODEC_KEYS to read it)"
	}
	return msg
}
