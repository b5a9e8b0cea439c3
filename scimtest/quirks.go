package scimtest

import (
	"fmt"
	"strings"
)

// Quirks are vendor behaviours the server can imitate. The zero value is
// a standard SCIM 2.0 server. Profile returns the named vendor profiles.
type Quirks struct {
	// Name of the profile, informative only.
	Name string
	// GroupGetOmitsMembers: group bodies are answered without "members"
	// (aws: GET /Groups/{id} returns no members).
	GroupGetOmitsMembers bool
	// MaxMembershipChanges: a PATCH of a group with more member additions
	// and removals is refused with 400 (aws: 100). 0: no limit.
	MaxMembershipChanges int
	// EqOnlyFilter: filters other than "eq" joined by "and" are refused
	// with 400 invalidFilter (aws).
	EqOnlyFilter bool
	// NoBulk: /Bulk answers 501 and discovery says unsupported (aws).
	NoBulk bool
	// HideFilterSupport: discovery says filter unsupported although
	// filtering works (slack).
	HideFilterSupport bool
	// DeleteUserDeactivates: DELETE /Users/{id} sets active false and
	// keeps the user (slack).
	DeleteUserDeactivates bool
	// DiscoveryPluralOnly: discovery is at /ServiceProviderConfigs only;
	// the singular path answers 404 (salesforce).
	DiscoveryPluralOnly bool
	// RequireMemberTypeUser: member references without "type": "user"
	// are refused with 400 (webex).
	RequireMemberTypeUser bool
	// CursorPaging: lists page by cursor (RFC 9865: cursor and nextCursor) whether
	// or not the request asks for it (aws); MaxPageSize caps a page (aws: 100).
	CursorPaging bool
	MaxPageSize  int
	// DiscoveryStatus, when set, is the status both discovery endpoints
	// answer with an error body (vcenter: 500, gitlab: 404), so a client
	// that asks finds nothing it can use.
	DiscoveryStatus int
	// MembersInlineOnly: a PATCH of a group that changes its members is
	// refused with 400; members are written in the group's POST or PUT
	// (vcenter).
	MembersInlineOnly bool
	// NoUserPut: PUT /Users/{id} answers 405; users are changed by PATCH
	// (gitlab).
	NoUserPut bool
}

var profiles = map[string]Quirks{
	"default": {Name: "default"},
	"aws": {
		Name:                 "aws",
		GroupGetOmitsMembers: true,
		MaxMembershipChanges: 100,
		EqOnlyFilter:         true,
		NoBulk:               true,
		CursorPaging:         true,
		MaxPageSize:          100,
	},
	"slack":      {Name: "slack", HideFilterSupport: true, DeleteUserDeactivates: true},
	"salesforce": {Name: "salesforce", DiscoveryPluralOnly: true},
	"webex":      {Name: "webex", RequireMemberTypeUser: true},
	"vcenter":    {Name: "vcenter", DiscoveryStatus: 500, MembersInlineOnly: true, NoBulk: true},
	"gitlab":     {Name: "gitlab", DiscoveryStatus: 404, NoUserPut: true, NoBulk: true},
}

// Profile returns the quirks of a vendor profile: "default" (or ""),
// "aws", "slack", "salesforce", "webex", "vcenter" or "gitlab". It panics on an unknown name,
// like the setup failures of httptest.
func Profile(name string) Quirks {
	if name == "" {
		name = "default"
	}
	q, ok := profiles[strings.ToLower(name)]
	if !ok {
		panic(fmt.Sprintf("scimtest: unknown quirk profile %q", name))
	}
	return q
}

// ProfileNames lists the profiles Profile knows.
func ProfileNames() []string {
	return []string{"default", "aws", "slack", "salesforce", "webex", "vcenter", "gitlab"}
}
