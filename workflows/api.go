package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
)

// The Temporal surface of scimsync, in this one file: installation, task queue, workflow
// and schedule IDs, workflow type names, activity names, signal and query names, search
// attributes, the inputs and results of every workflow, and how an ObjectSync is started
// or signalled. The worker, the starter, the change feed, tests and other services import
// these; no name is written twice. (Summaries, the one line the Web UI shows of each
// execution, are built in summary.go.)

// Installation is the short form of an installation id, in every workflow ID, schedule ID
// and default task queue of the installation: the first 12 hex digits of the id its
// database generated once (store.Installation; `starter status` shows it). Installations
// sharing a Temporal namespace (staging and production, two tenants) therefore never run,
// replace or delete each other's workflows and schedules (docs/reliability.md, "Several
// installations in one namespace").
type Installation string

// installationLen is the number of hex digits of an Installation.
const installationLen = 12

// NewInstallation returns the short form of the installation id id (a uuid, with or
// without dashes).
func NewInstallation(id string) (Installation, error) {
	hex := strings.ToLower(strings.ReplaceAll(id, "-", ""))
	if len(hex) < installationLen || !isHex(hex) {
		return "", fmt.Errorf("installation id %q is not a uuid", id)
	}
	return Installation(hex[:installationLen]), nil
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// LegacyTaskQueue is the task queue every installation used before installation ids, and
// the prefix of DefaultTaskQueue.
const LegacyTaskQueue = "scimsync"

// DefaultTaskQueue is the task queue of the installation's workflows and activities when
// none is configured (SCIMSYNC_TASK_QUEUE): scimsync-<installation>. A configured task
// queue is used as configured; two installations must never share one.
func DefaultTaskQueue(inst Installation) string { return LegacyTaskQueue + "-" + string(inst) }

// Workflow type names, registered explicitly so that callers outside this package (the
// change feed, the starter, other services) can start them by name.
const (
	ObjectSyncWorkflow = "ObjectSync"
	FullSyncWorkflow   = "FullSync"
	SyncBatchWorkflow  = "SyncBatch"
)

// Activity names: the activity types in every history, registered explicitly (see
// ActivityMethods) so that an activity's name is this contract's and not whatever its
// method is called. Workflows call the methods (a.WriteObjects); the SDK schedules each
// under the name its method was registered with.
const (
	ActivityLoadProvider        = "LoadProvider"
	ActivityDiscover            = "Discover"
	ActivityListInScope         = "ListInScope"
	ActivityMapObjects          = "MapObjects"
	ActivityWriteObjects        = "WriteObjects"
	ActivitySyncMembers         = "SyncMembers"
	ActivityDeprovision         = "Deprovision"
	ActivitySignalGroupsOfUsers = "SignalGroupsOfUsers"
	ActivityCountStale          = "CountStale"
	ActivityListStale           = "ListStale"
	ActivityPacingState         = "PacingState"
	ActivityStartReadBack       = "StartReadBack"
	ActivityReadTargetPage      = "ReadTargetPage"
	ActivityReadLinked          = "ReadLinked"
	ActivityFinishReadBack      = "FinishReadBack"
	ActivityHandleOrphans       = "HandleOrphans"
	ActivityListDueDeletions    = "ListDueDeletions"
	ActivityDeleteDue           = "DeleteDue"
)

// ActivityMethods maps every activity name to the method of acts that runs it: what the
// worker registers (worker.Register). Every exported method of activities.Activities is
// an activity and is listed here (worker's TestRegisterRegistersEveryActivityByName).
func ActivityMethods(acts *activities.Activities) map[string]any {
	return map[string]any{
		ActivityLoadProvider:        acts.LoadProvider,
		ActivityDiscover:            acts.Discover,
		ActivityListInScope:         acts.ListInScope,
		ActivityMapObjects:          acts.MapObjects,
		ActivityWriteObjects:        acts.WriteObjects,
		ActivitySyncMembers:         acts.SyncMembers,
		ActivityDeprovision:         acts.Deprovision,
		ActivitySignalGroupsOfUsers: acts.SignalGroupsOfUsers,
		ActivityCountStale:          acts.CountStale,
		ActivityListStale:           acts.ListStale,
		ActivityPacingState:         acts.PacingState,
		ActivityStartReadBack:       acts.StartReadBack,
		ActivityReadTargetPage:      acts.ReadTargetPage,
		ActivityReadLinked:          acts.ReadLinked,
		ActivityFinishReadBack:      acts.FinishReadBack,
		ActivityHandleOrphans:       acts.HandleOrphans,
		ActivityListDueDeletions:    acts.ListDueDeletions,
		ActivityDeleteDue:           acts.DeleteDue,
	}
}

// SignalObjectChanged tells an ObjectSync workflow that its object changed; it is sent with
// SignalWithStart so the workflow starts when none runs. Its payload is an ObjectChanged.
const SignalObjectChanged = "object-changed"

// SignalApproveDeletions lets a FullSync that stopped at the deprovisioning threshold go on
// and deprovision. Its payload is a DeletionApproval (starters before it sent none).
const SignalApproveDeletions = "approve-deletions"

// DeletionApproval is the payload of SignalApproveDeletions: it approves deprovisioning at
// most Count objects, the pending count the operator saw (starter status, the progress
// query). A full sync with more pending than the largest count it was approved goes on
// waiting, and shows both. An approval may come early, before the sync counts what it
// would deprovision: it is kept, across continue-as-new too, until the cleanup.
//
// Count 0 (a signal with no payload, as sent by starters and by hand before counts) approves
// only a sync that is waiting for approval already, whose pending count starter status
// shows: it then approves that count. Received before the sync waits, it approves nothing
// (its count was seen nowhere) and is dropped with a warning in the worker's log.
type DeletionApproval struct {
	Count int `json:"count,omitempty"`
}

// QueryProgress answers a FullSync's FullSyncProgress.
const QueryProgress = "progress"

// ObjectSyncID is the workflow ID of the per-object sync of one user or group at one
// provider: scim/<installation>/<provider>/<kind>/<id>. It carries internal ids only, never
// names or emails, because workflow IDs are not encrypted.
func ObjectSyncID(inst Installation, provider, kind, objectID string) string {
	return fmt.Sprintf("%s%s/%s/%s", objectSyncPrefix(inst), provider, kind, objectID)
}

// FullSyncScheduleID is the ID of the provider's full-sync schedule:
// scim-full-sync-<installation>/<provider>. (Not scim-full-sync/<installation>/...:
// keepers before installation ids delete every schedule under scim-full-sync/ whose
// provider they lack, so an installation not yet upgraded would delete these.)
func FullSyncScheduleID(inst Installation, provider string) string {
	return FullSyncSchedulePrefix(inst) + provider
}

// FullSyncSchedulePrefix is the ID prefix of every full-sync schedule of the installation:
// the schedule keeper creates, updates and deletes those and no other.
func FullSyncSchedulePrefix(inst Installation) string { return fullSyncPrefix + string(inst) + "/" }

// FullSyncWorkflowID is the workflow ID the schedule gives the full syncs it starts (the
// server appends the scheduled time); their SyncBatch children's IDs extend it.
func FullSyncWorkflowID(inst Installation, provider string) string {
	return FullSyncSchedulePrefix(inst) + provider
}

// LegacyFullSyncScheduleID is the ID of the provider's schedule before installation ids,
// scim-full-sync/<provider>, which the schedule keeper replaces (see worker.ReconcileSchedules).
func LegacyFullSyncScheduleID(provider string) string { return legacyFullSyncPrefix + provider }

const (
	objectSyncIDPrefix   = "scim/"
	fullSyncPrefix       = "scim-full-sync-"
	legacyFullSyncPrefix = "scim-full-sync/"
)

func objectSyncPrefix(inst Installation) string { return objectSyncIDPrefix + string(inst) + "/" }

// WorkflowInstallation returns the installation whose workflow the ID names: that of an
// ObjectSync, a FullSync, or a SyncBatch child of one (whose ID extends its parent's).
// ok is false for any other ID, in particular those of workflows started before
// installation ids (scim/<provider>/..., scim-full-sync/<provider>-<time>).
func WorkflowInstallation(workflowID string) (inst Installation, ok bool) {
	for _, prefix := range []string{objectSyncIDPrefix, fullSyncPrefix} {
		rest, found := strings.CutPrefix(workflowID, prefix)
		if !found {
			continue
		}
		head, _, more := strings.Cut(rest, "/")
		if more && len(head) == installationLen && isHex(head) {
			return Installation(head), true
		}
	}
	return "", false
}

// ObjectSyncInput starts an ObjectSync workflow: the object it keeps in sync.
type ObjectSyncInput = object.Ref

// ObjectChanged is the payload of SignalObjectChanged.
type ObjectChanged struct {
	// Reason says what changed, for the history: "user update", "membership insert", ...
	Reason string `json:"reason,omitempty"`
}

// FullSyncInput starts a FullSync workflow; State is set only by continue-as-new.
type FullSyncInput struct {
	Provider string `json:"provider"`
	// AllowDeletions lets the cleanup deprovision more objects than the provider's threshold.
	AllowDeletions bool `json:"allowDeletions,omitempty"`
	// Parallelism bounds the SyncBatch children running at once; 0 means DefaultParallelism.
	Parallelism int `json:"parallelism,omitempty"`
	// ReadTarget reads the target back (and repairs what differs) whether or not the
	// provider's reconcile_interval says it is due.
	ReadTarget bool `json:"readTarget,omitempty"`
	// State carries progress across continue-as-new.
	State *FullSyncProgress `json:"state,omitempty"`
}

// DefaultParallelism is the number of SyncBatch children a FullSync runs at once.
const DefaultParallelism = 4

// Full sync phases, in order.
const (
	PhaseDiscover       = "discover"
	PhaseReadTarget     = "read-target"
	PhaseUsers          = "users"
	PhaseGroups         = "groups"
	PhaseCleanup        = "cleanup"
	PhaseAwaitApproval  = "awaiting-deletion-approval"
	PhaseDone           = "done"
	approvalWaitTimeout = 24 * time.Hour
)

// Counts tallies what happened to objects.
type Counts struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	// Repaired counts the objects written because a read-back found them otherwise at the
	// target than written; apart from Created and Updated.
	Repaired      int `json:"repaired,omitempty"`
	Unchanged     int `json:"unchanged"`
	Skipped       int `json:"skipped"`
	Failed        int `json:"failed"`
	Deprovisioned int `json:"deprovisioned"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Created += o.Created
	c.Updated += o.Updated
	c.Repaired += o.Repaired
	c.Unchanged += o.Unchanged
	c.Skipped += o.Skipped
	c.Failed += o.Failed
	c.Deprovisioned += o.Deprovisioned
}

// FullSyncProgress is what the progress query answers, and what continue-as-new carries.
type FullSyncProgress struct {
	Phase string `json:"phase"`
	// Cursor is the last object id whose batch finished in the current phase.
	Cursor      string `json:"cursor,omitempty"`
	BatchesDone int    `json:"batchesDone"`
	// BatchesTotal is how many batches the sync has started so far.
	BatchesTotal int    `json:"batchesTotal"`
	Users        Counts `json:"users"`
	Groups       Counts `json:"groups"`
	// PendingDeletions is set while the sync waits for approval to deprovision.
	PendingDeletions int `json:"pendingDeletions,omitempty"`
	// ApprovedDeletions is the largest count a DeletionApproval approved so far (received
	// early or while waiting; kept across continue-as-new): the cleanup goes on without
	// waiting when it would deprovision at most that many.
	ApprovedDeletions int `json:"approvedDeletions,omitempty"`
	// Pacing is the provider's pacing as last read while batches ran (every 30 s): the
	// rate the target is written at by every worker together, and any pause it asked for.
	Pacing *activities.PacingInfo `json:"pacing,omitempty"`
	// ReadBack is set when the sync reads the target back: what it read, repaired and
	// found orphaned, and where the reading goes on.
	ReadBack *ReadBackProgress `json:"readBack,omitempty"`
	// Runs counts the continue-as-new generations of this full sync.
	Runs int `json:"runs"`
}

// UnmarshalJSON reads BatchesTotal also under "batchesStarted", the name it had before:
// continue-as-new inputs, results and query answers written by earlier workers still
// carry it (see docs/reliability.md, Upgrades).
func (p *FullSyncProgress) UnmarshalJSON(b []byte) error {
	type plain FullSyncProgress
	var v struct {
		plain
		Legacy *int `json:"batchesStarted"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = FullSyncProgress(v.plain)
	if v.Legacy != nil && p.BatchesTotal == 0 {
		p.BatchesTotal = *v.Legacy
	}
	return nil
}

// ReadBackProgress is a read-back in a full sync's progress: its figures, and while the
// target is read, where the reading goes on.
type ReadBackProgress struct {
	activities.ReadBackFigures
	// Reading is the kind being read ("" once both are), Page the next page of it, and
	// Linked, for a target that cannot list, the last object read one by one.
	Reading string               `json:"reading,omitempty"`
	Page    activities.PageToken `json:"page"`
	Linked  string               `json:"linked,omitempty"`
	// Started is set once the read-back is recorded.
	Started bool `json:"started,omitempty"`
}

// SyncBatchInput starts a SyncBatch child: map, validate and write one batch of objects.
type SyncBatchInput struct {
	Provider string   `json:"provider"`
	Kind     string   `json:"kind"`
	IDs      []string `json:"ids"`
	// ReadBack names the full sync's read-back of the target to compare and repair with.
	ReadBack string `json:"readBack,omitempty"`
}

// SyncBatchResult tallies a batch.
type SyncBatchResult struct {
	Counts Counts `json:"counts"`
}

// ---- Search attributes ----

// Search attributes that make syncs findable, e.g.
// `temporal workflow list --query "ScimProvider = 'slack'"`. Their values are provider
// names, object kinds and object uuids, never personal data: search attributes are not
// encrypted.
var (
	ProviderAttribute   = temporal.NewSearchAttributeKeyKeyword("ScimProvider")
	ObjectKindAttribute = temporal.NewSearchAttributeKeyKeyword("ScimObjectKind")
	// BatchFirstIDAttribute and BatchLastIDAttribute are the smallest and the largest
	// object id of a SyncBatch (version batch-id-range), so that the batches that may hold
	// an object are found without reading every history:
	// `ScimBatchFirstId <= 'ID' AND ScimBatchLastId >= 'ID'`. A range, not the list of
	// ids: Temporal bounds each search attribute value to 2 KiB by default, 50 ids, and a
	// batch holds up to 1000. Batches are cut from a listing in id order, so the ranges of
	// one full sync's batches do not overlap; a range also spans the ids the listing left
	// out, so the batch's input says whether it holds the object.
	BatchFirstIDAttribute = temporal.NewSearchAttributeKeyKeyword("ScimBatchFirstId")
	BatchLastIDAttribute  = temporal.NewSearchAttributeKeyKeyword("ScimBatchLastId")
)

// SearchAttributes lists the custom search attributes the worker registers when missing.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	ProviderAttribute.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	ObjectKindAttribute.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	BatchFirstIDAttribute.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	BatchLastIDAttribute.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// ---- Starting and signalling an ObjectSync ----

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
