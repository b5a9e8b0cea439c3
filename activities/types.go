package activities

import "time"

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
}

// ListInput asks for a page of object ids after Cursor.
type ListInput struct {
	Provider string `json:"provider"`
	Kind     string `json:"kind"`
	After    string `json:"after,omitempty"`
	Limit    int    `json:"limit"`
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
}

// MappedObject is an object's validated SCIM payload and its hash.
type MappedObject struct {
	ID      string         `json:"id"`
	Payload map[string]any `json:"payload"`
	Hash    string         `json:"hash"`
	// New is set when the object had no live remote object as it was mapped (never
	// written, its create unconfirmed, or deactivated there): once written, it must be
	// added to its groups.
	New bool `json:"new,omitempty"`
}

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
}

// ObjectFailure is one object whose write failed with an error that concerns it alone.
type ObjectFailure struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// WriteResult tallies a write, membership or deprovisioning activity.
type WriteResult struct {
	Created       int             `json:"created"`
	Updated       int             `json:"updated"`
	Unchanged     int             `json:"unchanged"`
	Deprovisioned int             `json:"deprovisioned"`
	Failed        []ObjectFailure `json:"failed,omitempty"`
	// Linked lists objects that are live at the target after this call and may be missing
	// from their groups there: created, matched, reactivated, or written as New by an
	// earlier attempt of this call (or another writer) whose result was lost. Their groups
	// must sync their members.
	Linked []string `json:"linked,omitempty"`
	// DryRun lists the mutating requests a dry-run provider would have sent.
	DryRun []DryRunRequest `json:"dryRun,omitempty"`
}

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
)

// StaleCount counts linked objects that are deleted or out of scope.
type StaleCount struct {
	Users  int `json:"users"`
	Groups int `json:"groups"`
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
