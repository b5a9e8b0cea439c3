package activities

import (
	"time"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/store"
)

// Inputs and results of the activities. They carry ids, names and payloads, never
// credentials: a provider's secrets are resolved inside the activity that uses them.

// ProviderInput names the provider an activity works for.
type ProviderInput struct {
	Provider string `json:"provider"`
}

// ProviderInfo is what workflows need to know of a provider's configuration.
type ProviderInfo struct {
	Name                 string `json:"name"`
	Enabled              bool   `json:"enabled"`
	PageSize             int    `json:"pageSize"`
	DryRun               bool   `json:"dryRun"`
	DeprovisionAction    string `json:"deprovisionAction"`
	DeprovisionThreshold int    `json:"deprovisionThreshold"`
	// ReadBackDue is set when the provider's last read-back of its target is older than
	// its reconcile_interval (or there was none, and the interval is not 0).
	ReadBackDue bool `json:"readBackDue,omitempty"`
	// Orphans is the provider's orphan policy: report, adopt or delete.
	Orphans string `json:"orphans,omitempty"`
}

// DeletesOrphans reports whether the provider's read-backs deprovision orphans: orphans
// delete, with a deprovision action that does something.
func (p ProviderInfo) DeletesOrphans() bool {
	return p.Orphans == store.OrphansDelete && p.DeprovisionAction != store.DeprovisionNone
}

// DeletesAfterGrace reports whether the provider deletes deactivated users once their
// grace period has passed (deprovision action deactivate_then_delete).
func (p ProviderInfo) DeletesAfterGrace() bool {
	return p.DeprovisionAction == store.DeprovisionDeactivateThenDelete
}

// DiscoverResult is the effective capabilities of the target, after the compatibility mode.
type DiscoverResult struct {
	Patch         bool `json:"patch"`
	Bulk          bool `json:"bulk"`
	Filter        bool `json:"filter"`
	MaxOperations int  `json:"maxOperations"`
	// Cached is true when the configuration came from the cache, not the target.
	Cached bool `json:"cached"`
	// Fallback is true when discovery failed and the conservative fallback is in use.
	Fallback bool `json:"fallback"`
	// Assumed is true when nothing was discovered: discovery is off, or the compatibility
	// mode assumes the target's configuration (vcenter, gitlab).
	Assumed bool `json:"assumed,omitempty"`
}

// ListInput asks for a page of object ids after Cursor.
type ListInput struct {
	Provider string `json:"provider"`
	Kind     string `json:"kind"`
	After    string `json:"after,omitempty"`
	Limit    int    `json:"limit"`
	// ReadBack, when set, names the read-back of the target to compare with: objects the
	// target holds otherwise than written are listed too.
	ReadBack string `json:"readBack,omitempty"`
	// EmptyPages tells ListInScope that its caller goes on after an empty page that has a
	// Next, so a listing may stop after scanning a bounded number of unchanged objects.
	// Without it (workflows recorded before version list-empty-pages, which end a phase at
	// the first empty page) it scans until it finds an object to sync or the scope ends.
	EmptyPages bool `json:"emptyPages,omitempty"`
}

// IDList is a page of object ids in id order.
type IDList struct {
	IDs []string `json:"ids"`
	// Next, set by ListInScope, is the id the listing stopped at: the cursor of the next
	// call. It is empty when no id is returned and the scope is done (and always from
	// ListStale, and from workers older than it: then the last id is the cursor).
	Next string `json:"next,omitempty"`
	// Unchanged and Skipped count the objects ListInScope looked at and left out: nothing
	// to write for them, or skipped by a mapping.
	Unchanged int `json:"unchanged,omitempty"`
	Skipped   int `json:"skipped,omitempty"`
}

// ObjectsInput names objects of one kind at one provider.
type ObjectsInput struct {
	Provider string   `json:"provider"`
	Kind     string   `json:"kind"`
	IDs      []string `json:"ids"`
	// ReadBack, when set, names the read-back of the target to compare and repair with.
	ReadBack string `json:"readBack,omitempty"`
	// ThresholdChecked tells Deprovision that its caller (a full sync's cleanup) has held
	// these deprovisions against the provider's threshold already. Without it they are
	// direct deprovisions, counted in the provider's window (store.DirectDeprovisionWindow).
	ThresholdChecked bool `json:"thresholdChecked,omitempty"`
}

// MappedObject is an object's validated SCIM payload and its hash.
type MappedObject struct {
	ID string `json:"id"`
	// Payload is what every write of the object sends (mapping.Payloads.Always): what an
	// update compares and the link records as written.
	Payload map[string]any `json:"payload"`
	// OnCreate holds the attributes of the provider's apply: on_create mappings, added to
	// Payload in a create only (mapping.Payloads.OnCreate); they count in neither Hash nor
	// a read-back's comparison.
	OnCreate map[string]any `json:"onCreate,omitempty"`
	// Hash is mapping.Hash of Payload.
	Hash string `json:"hash"`
	// New is set when the object had no live remote object as it was mapped (never
	// written, its create unconfirmed, or deactivated there): once written, it must be
	// added to its groups.
	New bool `json:"new,omitempty"`
	// Repair says why an object the directory did not change is written: the read-back
	// found it otherwise at the target (RepairAttributes, RepairGone, RepairRelinked,
	// RepairAdopted). "" for an ordinary write.
	Repair string `json:"repair,omitempty"`
	// Remote is the remote id the read-back found the object under, when its link does
	// not hold it (relinked, adopted).
	Remote string `json:"remote,omitempty"`
	// Gone is set when the read-back found no remote copy of a linked object: it is
	// created again, without a lookup.
	Gone bool `json:"gone,omitempty"`
}

// CreatePayload is the payload of o's create: Payload with the on_create attributes.
func (o MappedObject) CreatePayload() map[string]any {
	return mapping.Payloads{Always: o.Payload, OnCreate: o.OnCreate}.Create()
}

// Repairs: why a read-back makes an unchanged object be written.
const (
	RepairAttributes = "attributes" // its attributes were changed at the target
	RepairGone       = "gone"       // it was deleted at the target
	RepairRelinked   = "relinked"   // it is at the target under another id than its link's
	RepairAdopted    = "adopted"    // an account the target had, matched by name (orphans: adopt)
	RepairMembers    = "members"    // a group's members were added or removed at the target
)

// MapResult sorts the objects of a MapObjects call by what must happen to them.
type MapResult struct {
	// Changed objects must be written: their payload differs from the one last written.
	Changed []MappedObject `json:"changed,omitempty"`
	// Unchanged objects were written with this very payload before.
	Unchanged []string `json:"unchanged,omitempty"`
	// Skipped objects raised skip_object() in a mapping.
	Skipped []string `json:"skipped,omitempty"`
	// Gone objects are deleted or out of scope; those linked must be deprovisioned.
	Gone []string `json:"gone,omitempty"`
}

// WriteInput carries the mapped objects to write.
type WriteInput struct {
	Provider string         `json:"provider"`
	Kind     string         `json:"kind"`
	Objects  []MappedObject `json:"objects"`
	// ReadBack, when set, names the read-back whose view of the target the changes are
	// computed from (rather than from what was last written).
	ReadBack string `json:"readBack,omitempty"`
}

// ObjectFailure is one object whose write failed with an error that concerns it alone.
type ObjectFailure struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// WriteResult tallies a write, membership or deprovisioning activity.
type WriteResult struct {
	Created       int `json:"created"`
	Updated       int `json:"updated"`
	Unchanged     int `json:"unchanged"`
	Deprovisioned int `json:"deprovisioned"`
	// Repaired counts the objects written because the target held them otherwise than
	// written (attributes, deleted, another id, members), apart from Created and Updated.
	Repaired int `json:"repaired,omitempty"`
	// Held counts the direct deprovisions held back past the provider's threshold: those
	// objects stay at the target until a full sync deprovisions them.
	Held   int             `json:"held,omitempty"`
	Failed []ObjectFailure `json:"failed,omitempty"`
	// Linked lists objects that are live at the target after this call and may be missing
	// from their groups there: created, matched, reactivated, or written as New by an
	// earlier attempt of this call (or another writer) whose result was lost. Their groups
	// must sync their members.
	Linked []string `json:"linked,omitempty"`
	// DryRun lists the mutating requests a dry-run provider would have sent.
	DryRun []DryRunRequest `json:"dryRun,omitempty"`
	// Planned lists, in dry run, each write held back with what it would change.
	Planned []PlannedChange `json:"planned,omitempty"`
	// Objects records, by object id, what the call did to each object it acted on and the
	// SCIM requests it sent for it: what `starter history` reads back from the workflow
	// histories. Results of workers before it have none.
	Objects map[string]ObjectRecord `json:"objects,omitempty"`
}

// ObjectRecord is what one write, membership or deprovisioning call did to one object.
type ObjectRecord struct {
	// Action is one of the Action constants.
	Action string `json:"action"`
	// Requests are the SCIM requests sent for the object, in the order they were answered
	// (those of the call's last attempt: a retried attempt's requests end with it).
	Requests []SentRequest `json:"requests,omitempty"`
}

// SentRequest is one SCIM request as a history shows it: method, path relative to the
// base URL with the remote id (no query string: filters carry names), status (0: no
// answer). Never headers or bodies.
type SentRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	// Bulk marks an operation of a POST /Bulk request: Method, Path and Status are the
	// operation's, the request carried other objects' operations too.
	Bulk bool `json:"bulk,omitempty"`
	// DryRun marks a request a dry-run provider recorded instead of sending.
	DryRun bool `json:"dryRun,omitempty"`
}

// What a call did to an object (ObjectRecord.Action).
const (
	ActionCreated     = "created"     // posted, or linked to the match of a 409 or look-up
	ActionUpdated     = "updated"     // written to its remote object (or found up to date there)
	ActionRepaired    = "repaired"    // written because a read-back found it otherwise at the target
	ActionUnchanged   = "unchanged"   // written with this payload already (by an earlier attempt or writer)
	ActionSkipped     = "skipped"     // left out: out of scope or deleted since it was mapped
	ActionMembers     = "members"     // a group's members brought up to date
	ActionDeactivated = "deactivated" // deprovisioned by active=false
	ActionDeleted     = "deleted"     // deprovisioned by DELETE (or found gone already)
	ActionUnlinked    = "unlinked"    // its link forgotten: deprovision action none, or never at the target
	ActionHeld        = "held"        // a direct deprovision held back past the threshold
	ActionFailed      = "failed"      // an object error; WriteResult.Failed has it
)

// PlannedChange is one write a dry run held back, as starter plan shows it. In dry run
// only: it holds names and attribute values.
type PlannedChange struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Name is the userName or displayName.
	Name string `json:"name,omitempty"`
	// Action is create, update, deprovision or members.
	Action string `json:"action"`
	// Repair says why an object the directory did not change would be written.
	Repair  string            `json:"repair,omitempty"`
	Changes []AttributeChange `json:"changes,omitempty"`
	// Remote is the remote id an object would be relinked or adopted to.
	Remote string `json:"remote,omitempty"`
	// Add and Remove are the remote ids of the members a group would gain and lose.
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// AttributeChange is one attribute a write would change: its value before (nil: none) and
// after (nil: removed).
type AttributeChange struct {
	Attribute string `json:"attribute"`
	Before    any    `json:"before,omitempty"`
	After     any    `json:"after,omitempty"`
}

// Planned actions.
const (
	PlanCreate      = "create"
	PlanUpdate      = "update"
	PlanDeprovision = "deprovision"
	PlanMembers     = "members"
	// PlanDelete is the deletion of a deactivated user whose grace period has passed
	// (deprovision action deactivate_then_delete).
	PlanDelete = "delete"
)

// DryRunRequest is a request recorded instead of sent in dry run.
type DryRunRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   string `json:"body,omitempty"`
}

// SignalInput asks for the per-object syncs of some objects to be signalled.
type SignalInput struct {
	Provider string   `json:"provider"`
	Kind     string   `json:"kind"`
	IDs      []string `json:"ids"`
	Reason   string   `json:"reason"`
}

// Error types of the non-retryable application errors activities return; workflows and
// operators match on them.
const (
	ErrTypeProvider      = "ProviderError"      // 401/403/TLS/bad URL: the provider is misconfigured
	ErrTypeMapping       = "MappingError"       // a property mapping failed
	ErrTypeSchema        = "SchemaError"        // a payload is not valid SCIM
	ErrTypeConfig        = "ConfigError"        // provider missing, no mappings, bad secret reference
	ErrTypeTargetInvalid = "TargetInvalidError" // the target answered something unusable
	// ErrTypeWrongInstallation: the workflow an activity serves is not of the worker's
	// installation (worker.InstallationGuard); the activity did nothing.
	ErrTypeWrongInstallation = "WrongInstallation"
)

// StaleCount counts linked objects that are deleted or out of scope.
type StaleCount struct {
	Users  int `json:"users"`
	Groups int `json:"groups"`
	// Due counts the deactivated users whose deletion is due (deactivate_then_delete):
	// deprovisions too, beside Users and Groups.
	Due int `json:"due,omitempty"`
}

// PacingInfo is a provider's pacing, shared by every worker, as a full sync reports it in
// its progress. Rates are per minute, as operators configure them.
type PacingInfo struct {
	// LimitPerMinute is the configured limit (or the compatibility mode's published one);
	// 0: none. LimitSource says which.
	LimitPerMinute float64 `json:"limitPerMinute,omitempty"`
	LimitSource    string  `json:"limitSource,omitempty"`
	// AllowedPerMinute is the rate requests are paced at now; 0: no limit. Learned is set
	// when it was learned from the target's throttles.
	AllowedPerMinute float64 `json:"allowedPerMinute,omitempty"`
	Learned          bool    `json:"learned,omitempty"`
	// SentPerMinute and AcceptedPerMinute are what every worker together sent and the
	// target accepted over the last few seconds: the rate the sync runs at.
	SentPerMinute     float64 `json:"sentPerMinute"`
	AcceptedPerMinute float64 `json:"acceptedPerMinute"`
	// Throttles counts the target's 429s (and 503s with Retry-After).
	Throttles int64 `json:"throttles"`
	// PausedUntil is set while the provider is paused by the target, with the cause.
	PausedUntil *time.Time `json:"pausedUntil,omitempty"`
	PauseCause  string     `json:"pauseCause,omitempty"`
	// At is when this was read.
	At time.Time `json:"at"`
}

// PageToken is where a read-back of the target goes on: a startIndex, or a cursor where
// the target pages by cursor. First is the id the page before began with, to stop on a
// target that ignores startIndex.
type PageToken struct {
	StartIndex int    `json:"startIndex,omitempty"`
	Cursor     string `json:"cursor,omitempty"`
	First      string `json:"first,omitempty"`
}

// ReadPageInput asks for one page of the target's users or groups to be read back.
type ReadPageInput struct {
	Provider string    `json:"provider"`
	Kind     string    `json:"kind"`
	ReadBack string    `json:"readBack"`
	Page     PageToken `json:"page"`
}

// ReadPageResult is what one page of a read-back found.
type ReadPageResult struct {
	Read int `json:"read"`
	// Next is the next page; nil when the kind is read whole.
	Next *PageToken `json:"next,omitempty"`
	// NotListable is set when the target cannot list this kind: the read-back then reads
	// the linked objects one by one (ReadLinked), and cannot see orphans.
	NotListable bool `json:"notListable,omitempty"`
	// MembersHidden is set when the target shows no group members (aws): membership drift
	// is not observable.
	MembersHidden bool `json:"membersHidden,omitempty"`
}

// ReadLinkedInput asks for the linked objects after After to be read back one by one.
type ReadLinkedInput struct {
	Provider string `json:"provider"`
	Kind     string `json:"kind"`
	ReadBack string `json:"readBack"`
	After    string `json:"after,omitempty"`
	Limit    int    `json:"limit"`
}

// ReadLinkedResult is what ReadLinked found; Next is "" when every link was read.
type ReadLinkedResult struct {
	Read    int    `json:"read"`
	Missing int    `json:"missing"`
	Next    string `json:"next,omitempty"`
}

// OrphansInput asks for a page of a read-back's orphans (remote objects no link holds),
// after the remote id After, to be counted, or with Delete deprovisioned where the policy
// allows.
type OrphansInput struct {
	Provider string `json:"provider"`
	Kind     string `json:"kind"`
	ReadBack string `json:"readBack"`
	After    string `json:"after,omitempty"`
	Limit    int    `json:"limit"`
	Delete   bool   `json:"delete,omitempty"`
	// Claimed are remote ids that count as linked although no link holds them: a dry run's
	// relinks and adoptions, which it did not record.
	Claimed []string `json:"claimed,omitempty"`
}

// OrphanCounts sorts a read-back's orphans.
type OrphanCounts struct {
	// Ours carry an externalId this installation gives (a user's hashed id, a group's id)
	// of an object that is deleted or out of scope: left behind.
	Ours int `json:"ours"`
	// Known match a directory object in scope by userName or displayName but are not
	// linked to it (link_existing or orphans: adopt would link them).
	Known int `json:"known"`
	// Strangers match nothing in the directory.
	Strangers int `json:"strangers"`
	// Deleted were deprovisioned (orphans: delete); the others are reported.
	Deleted int `json:"deleted"`
}

// Add adds o to c.
func (c *OrphanCounts) Add(o OrphanCounts) {
	c.Ours += o.Ours
	c.Known += o.Known
	c.Strangers += o.Strangers
	c.Deleted += o.Deleted
}

// Total is the number of orphans.
func (c OrphanCounts) Total() int { return c.Ours + c.Known + c.Strangers }

// OrphansResult is one page of orphans; Next is "" after the last.
type OrphansResult struct {
	Counts OrphanCounts    `json:"counts"`
	Failed []ObjectFailure `json:"failed,omitempty"`
	Next   string          `json:"next,omitempty"`
	DryRun []DryRunRequest `json:"dryRun,omitempty"`
}

// ReadBackFigures is what a read-back of a provider found and did, as its full sync
// reports it and status shows it. Counts only: no names, no ids.
type ReadBackFigures struct {
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`
	UsersRead  int       `json:"usersRead"`
	GroupsRead int       `json:"groupsRead"`
	// RepairedUsers and RepairedGroups were written again because the target held them
	// otherwise (attributes, deleted, another id; groups: members too).
	RepairedUsers  int `json:"repairedUsers"`
	RepairedGroups int `json:"repairedGroups"`
	// MembersNotObservable is set when the target shows no group members: membership
	// drift could not be seen.
	MembersNotObservable bool `json:"membersNotObservable,omitempty"`
	// NotListable lists the kinds the target could not list: read one by one, their
	// orphans unseen.
	NotListable  []string     `json:"notListable,omitempty"`
	UserOrphans  OrphanCounts `json:"userOrphans"`
	GroupOrphans OrphanCounts `json:"groupOrphans"`
}
