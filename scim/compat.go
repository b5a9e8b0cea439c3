package scim

import (
	"fmt"
	"slices"
	"strings"
)

// Mode names a compatibility mode: a small, named set of differences from
// standard SCIM 2.0 that a vendor needs (docs/architecture.md, "SCIM client
// and compatibility modes").
type Mode string

// The compatibility modes. The zero Mode is ModeDefault.
const (
	ModeDefault    Mode = "default"
	ModeAWS        Mode = "aws"
	ModeSlack      Mode = "slack"
	ModeSalesforce Mode = "salesforce"
	ModeWebex      Mode = "webex"
	ModeVCenter    Mode = "vcenter"
	ModeGitLab     Mode = "gitlab"
)

// Modes lists every known compatibility mode.
func Modes() []Mode {
	return []Mode{ModeDefault, ModeAWS, ModeSlack, ModeSalesforce, ModeWebex, ModeVCenter, ModeGitLab}
}

// Compat is the table row of one compatibility mode. Each field is one
// named difference; the zero value of a field means "standard SCIM".
type Compat struct {
	// Mode is the mode this row describes.
	Mode Mode
	// DiscoveryPath is where the ServiceProviderConfig is read; "" means
	// the standard "/ServiceProviderConfig".
	DiscoveryPath string
	// NoDiscovery: the ServiceProviderConfig is never requested; the target
	// is taken to have the Assumed configuration (vcenter, gitlab: their
	// discovery endpoints are missing or say other than what they do).
	NoDiscovery bool
	// Assumed is the configuration taken when NoDiscovery is set; unused
	// otherwise.
	Assumed ServiceProviderConfig
	// InlineMembers: groups are written whole, their members inside the
	// body of the group's POST and PUT, never by PATCH add/remove, even
	// where the target takes PATCH (vcenter).
	InlineMembers bool
	// NoPatchForUsers forces user attribute updates to PUT even when the
	// target advertises PATCH.
	NoPatchForUsers bool
	// GroupPatchPaths, when not nil, are the only group attributes that
	// are updated, always by PATCH replace (aws: displayName, externalId).
	GroupPatchPaths []string
	// MaxMembersPerRequest caps membership changes per PATCH; 0 means no
	// vendor cap (bulk.maxOperations or DefaultMaxMembersPerRequest apply).
	MaxMembersPerRequest int
	// ForceFilter treats filtering as supported whatever discovery says.
	ForceFilter bool
	// EqOnlyFilter: the target understands only "eq" joined by "and".
	EqOnlyFilter bool
	// NoBulk treats Bulk as unsupported whatever discovery says.
	NoBulk bool
	// MemberType, when set, is written as "type" in every member reference.
	MemberType string
	// RequestsPerMinute and Burst are the vendor's published rate limit, which paces the
	// provider when the operator configures none; 0 means none published.
	RequestsPerMinute float64
	Burst             int
	// CursorPaging lists resources by cursor (RFC 9865) rather than startIndex;
	// MaxPageSize caps the count asked per page (0: no vendor cap).
	CursorPaging bool
	MaxPageSize  int
	// GroupMembersHidden: the target answers groups without their members, so what
	// their members are at the target cannot be read back.
	GroupMembersHidden bool
}

// compatTable is the single place where vendor differences are declared.
var compatTable = map[Mode]Compat{
	ModeDefault: {Mode: ModeDefault},
	ModeAWS: {
		Mode:                 ModeAWS,
		NoPatchForUsers:      true,
		GroupPatchPaths:      []string{"displayName", "externalId"},
		MaxMembersPerRequest: 100,
		EqOnlyFilter:         true,
		NoBulk:               true,
		CursorPaging:         true,
		MaxPageSize:          100,
		GroupMembersHidden:   true,
	},
	// Slack: user writes 180 a minute with bursts of 20, shared by the organisation.
	ModeSlack:      {Mode: ModeSlack, ForceFilter: true, RequestsPerMinute: 180, Burst: 20},
	ModeSalesforce: {Mode: ModeSalesforce, DiscoveryPath: "/ServiceProviderConfigs"},
	ModeWebex:      {Mode: ModeWebex, MemberType: "user"},
	// vCenter: no discovery; users take PATCH and filters, groups are written with their
	// members inline.
	ModeVCenter: {Mode: ModeVCenter, NoDiscovery: true, Assumed: assumedPatchAndFilter, InlineMembers: true},
	// GitLab: no discovery; PATCH (GitLab has no PUT /Users/{id}) and filters, no Bulk.
	ModeGitLab: {Mode: ModeGitLab, NoDiscovery: true, Assumed: assumedPatchAndFilter},
}

// assumedPatchAndFilter is the fixed capability set of the modes without discovery: PATCH
// and filtering, no Bulk, sort, ETag or password change.
var assumedPatchAndFilter = ServiceProviderConfig{Patch: Supported{true}, Filter: FilterConfig{Supported: true}}

// CompatFor returns the row of mode m. The empty mode is ModeDefault;
// names are case-insensitive; an unknown name is an error.
func CompatFor(m Mode) (Compat, error) {
	if m == "" {
		m = ModeDefault
	}
	c, ok := compatTable[Mode(strings.ToLower(string(m)))]
	if !ok {
		return Compat{}, fmt.Errorf("scim: unknown compatibility mode %q", string(m))
	}
	c.GroupPatchPaths = slices.Clone(c.GroupPatchPaths)
	return c, nil
}

func (c Compat) discoveryPath() string {
	if c.DiscoveryPath != "" {
		return c.DiscoveryPath
	}
	return "/ServiceProviderConfig"
}

// DefaultMaxMembersPerRequest caps membership changes per PATCH when
// neither the mode nor bulk.maxOperations gives a limit.
const DefaultMaxMembersPerRequest = 1000

// UpdateMethod says how changed attributes of an existing object are written.
type UpdateMethod string

// Update methods.
const (
	UpdatePatch UpdateMethod = "PATCH"
	UpdatePut   UpdateMethod = "PUT"
)

// Capabilities are the effective capabilities of a target: what its
// ServiceProviderConfig advertises after the compatibility mode is
// applied. Callers decide their request shapes from these alone.
type Capabilities struct {
	// Mode that produced these capabilities.
	Mode Mode
	// UserUpdate: PATCH with changed attributes, or PUT of the whole user.
	UserUpdate UpdateMethod
	// GroupUpdate: PATCH with changed attributes, or PUT of the whole group
	// (members included).
	GroupUpdate UpdateMethod
	// GroupPatchPaths, when not nil, are the only group attributes that
	// may be changed (by PATCH replace); others are left as created.
	GroupPatchPaths []string
	// MemberPatch: membership is changed by PATCH add/remove; otherwise
	// by PUT of the group with its whole member list (an empty one too).
	MemberPatch bool
	// MaxMembersPerRequest caps membership changes in one PATCH; never 0.
	MaxMembersPerRequest int
	// MemberType, when set, is written as "type" in member references.
	MemberType string
	// Filter: GET ?filter= may be used (409 look-ups, re-linking).
	Filter bool
	// FilterEqOnly: only "eq" joined by "and" may be used.
	FilterEqOnly bool
	// FilterMaxResults is the target's maxResults, 0 if unknown.
	FilterMaxResults int
	// Bulk: POST /Bulk may be used, within the two limits below.
	Bulk               bool
	BulkMaxOperations  int
	BulkMaxPayloadSize int
}

// Apply computes the effective capabilities of a target whose discovered
// (or fallback) configuration is spc.
func (c Compat) Apply(spc ServiceProviderConfig) Capabilities {
	caps := Capabilities{
		Mode:               c.Mode,
		UserUpdate:         UpdatePut,
		GroupUpdate:        UpdatePut,
		MemberPatch:        spc.Patch.Supported,
		MemberType:         c.MemberType,
		Filter:             spc.Filter.Supported || c.ForceFilter,
		FilterEqOnly:       c.EqOnlyFilter,
		FilterMaxResults:   spc.Filter.MaxResults,
		Bulk:               spc.Bulk.Supported && !c.NoBulk,
		BulkMaxOperations:  spc.Bulk.MaxOperations,
		BulkMaxPayloadSize: spc.Bulk.MaxPayloadSize,
	}
	if caps.Mode == "" {
		caps.Mode = ModeDefault
	}
	if spc.Patch.Supported {
		caps.GroupUpdate = UpdatePatch
		if !c.NoPatchForUsers {
			caps.UserUpdate = UpdatePatch
		}
	}
	if c.InlineMembers {
		caps.GroupUpdate = UpdatePut
		caps.MemberPatch = false
	}
	if c.GroupPatchPaths != nil {
		caps.GroupPatchPaths = slices.Clone(c.GroupPatchPaths)
		caps.GroupUpdate = UpdatePatch
		caps.MemberPatch = true
	}
	switch {
	case c.MaxMembersPerRequest > 0:
		caps.MaxMembersPerRequest = c.MaxMembersPerRequest
		caps.MemberPatch = true
	case spc.Bulk.MaxOperations > 0:
		caps.MaxMembersPerRequest = spc.Bulk.MaxOperations
	default:
		caps.MaxMembersPerRequest = DefaultMaxMembersPerRequest
	}
	if !caps.Bulk {
		caps.BulkMaxOperations, caps.BulkMaxPayloadSize = 0, 0
	}
	return caps
}
