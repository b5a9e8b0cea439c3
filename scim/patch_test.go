package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

func TestDiffPatch(t *testing.T) {
	const ent = scim.SchemaEnterpriseUser
	tests := []struct {
		name     string
		old, new map[string]any
		want     string
	}{
		{"equal", map[string]any{"userName": "a", "active": true}, map[string]any{"userName": "a", "active": true}, `null`},
		{"numbers compare by value", map[string]any{"n": 1}, map[string]any{"n": 1.0}, `null`},
		{"ignored keys", map[string]any{"id": "1", "meta": 1, "schemas": []any{"x"}, "members": []any{1}},
			map[string]any{"id": "2", "schemas": []any{"y"}}, `null`},
		{"replace scalar", map[string]any{"displayName": "A"}, map[string]any{"displayName": "B"},
			`[{"op":"replace","path":"displayName","value":"B"}]`},
		{"add and remove", map[string]any{"title": "t"}, map[string]any{"nickName": "n"},
			`[{"op":"add","path":"nickName","value":"n"},{"op":"remove","path":"title"}]`},
		{"false is a value", map[string]any{"active": true}, map[string]any{"active": false},
			`[{"op":"replace","path":"active","value":false}]`},
		{"empty list removes", map[string]any{"emails": []any{map[string]any{"value": "a"}}}, map[string]any{"emails": []any{}},
			`[{"op":"remove","path":"emails"}]`},
		{"complex attribute by sub-attribute",
			map[string]any{"name": map[string]any{"givenName": "A", "familyName": "F", "middleName": "M"}},
			map[string]any{"name": map[string]any{"givenName": "B", "familyName": "F", "honorificPrefix": "Dr"}},
			`[{"op":"replace","path":"name.givenName","value":"B"},{"op":"add","path":"name.honorificPrefix","value":"Dr"},{"op":"remove","path":"name.middleName"}]`},
		{"multi-valued replaced whole",
			map[string]any{"emails": []any{map[string]any{"value": "a@x", "primary": true}}},
			map[string]any{"emails": []any{map[string]any{"value": "b@x", "primary": true}}},
			`[{"op":"replace","path":"emails","value":[{"primary":true,"value":"b@x"}]}]`},
		{"extension attributes",
			map[string]any{ent: map[string]any{"department": "R&D", "manager": map[string]any{"value": "m1"}}},
			map[string]any{ent: map[string]any{"department": "Ops", "manager": map[string]any{"value": "m2"}, "costCenter": "7"}},
			`[{"op":"add","path":"` + ent + `:costCenter","value":"7"},{"op":"replace","path":"` + ent + `:department","value":"Ops"},{"op":"replace","path":"` + ent + `:manager.value","value":"m2"}]`},
		{"extension appears", map[string]any{}, map[string]any{ent: map[string]any{"department": "Ops"}},
			`[{"op":"add","path":"` + ent + `","value":{"department":"Ops"}}]`},
		// What a target answered, spelled its way, is the old side of a read-back's diff.
		{"names compare case-insensitively",
			map[string]any{"DisplayName": "A", "Name": map[string]any{"GivenName": "G"}, "ID": "1", "Schemas": []any{"x"},
				"Emails":             []any{map[string]any{"Value": "a@x", "Primary": true}},
				strings.ToLower(ent): map[string]any{"Department": "Ops"}},
			map[string]any{"displayName": "A", "name": map[string]any{"givenName": "G"},
				"emails": []any{map[string]any{"value": "a@x", "primary": true}}, ent: map[string]any{"department": "Ops"}},
			`null`},
		{"a changed value under another spelling: one replace, as new spells it",
			map[string]any{"DisplayName": "A", "name": map[string]any{"GivenName": "G", "FamilyName": "F"}},
			map[string]any{"displayName": "B", "name": map[string]any{"givenName": "H", "familyName": "F"}},
			`[{"op":"replace","path":"displayName","value":"B"},{"op":"replace","path":"name.givenName","value":"H"}]`},
		{"values stay case-exact", map[string]any{"DisplayName": "ada"}, map[string]any{"displayName": "Ada"},
			`[{"op":"replace","path":"displayName","value":"Ada"}]`},
		{"removed under another spelling", map[string]any{"Title": "t", "userName": "a"}, map[string]any{"USERNAME": "a"},
			`[{"op":"remove","path":"Title"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(scim.DiffPatch(tt.old, tt.new))
			if string(b) != tt.want {
				t.Errorf("DiffPatch =\n %s\nwant\n %s", b, tt.want)
			}
		})
	}
}

// TestDiffPatchApplies: the ops DiffPatch computes turn the old payload
// into the new one on a real server.
func TestDiffPatchApplies(t *testing.T) {
	const ent = scim.SchemaEnterpriseUser
	srv, c := newPair(t, scimtest.Options{}, scim.Options{})
	old := map[string]any{
		"schemas":  []any{scim.SchemaUser, ent},
		"userName": "a", "title": "t", "active": true,
		"name":   map[string]any{"givenName": "A", "familyName": "F", "middleName": "M"},
		"emails": []any{map[string]any{"value": "a@x", "primary": true}},
		ent:      map[string]any{"department": "R&D", "manager": map[string]any{"value": "m1"}},
	}
	next := map[string]any{
		"schemas":  []any{scim.SchemaUser, ent},
		"userName": "a", "nickName": "n", "active": false,
		"name":   map[string]any{"givenName": "B", "familyName": "F"},
		"emails": []any{map[string]any{"value": "b@x", "primary": true}, map[string]any{"value": "c@x"}},
		ent:      map[string]any{"department": "Ops", "manager": map[string]any{"value": "m2"}},
	}
	id := srv.AddUser(old)
	if _, err := c.Patch(context.Background(), scim.Users, id, scim.DiffPatch(old, next)); err != nil {
		t.Fatal(err)
	}
	got, _ := srv.User(id)
	if rest := scim.DiffPatch(got, next); rest != nil {
		t.Errorf("remote differs after PATCH: %+v", rest)
	}
}

func TestMemberPatches(t *testing.T) {
	ids := func(n int, prefix string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprint(prefix, i))
		}
		return out
	}
	tests := []struct {
		name        string
		add, remove []string
		caps        scim.Capabilities
		want        []int // changes per request
	}{
		{"nothing", nil, nil, scim.Capabilities{MaxMembersPerRequest: 10}, nil},
		{"adds within limit", ids(10, "a"), nil, scim.Capabilities{MaxMembersPerRequest: 10}, []int{10}},
		{"adds chunked", ids(25, "a"), nil, scim.Capabilities{MaxMembersPerRequest: 10}, []int{10, 10, 5}},
		{"removes chunked", nil, ids(12, "r"), scim.Capabilities{MaxMembersPerRequest: 5}, []int{5, 5, 2}},
		{"mixed packs requests", ids(7, "a"), ids(7, "r"), scim.Capabilities{MaxMembersPerRequest: 5}, []int{5, 5, 4}},
		{"zero limit uses the default", ids(3, "a"), nil, scim.Capabilities{}, []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := scim.MemberPatches(tt.add, tt.remove, tt.caps)
			var got []int
			var added, removed []string
			for _, ops := range reqs {
				n := 0
				for _, op := range ops {
					switch op.Op {
					case "add":
						for _, ref := range op.Value.([]any) {
							added = append(added, ref.(map[string]any)["value"].(string))
							n++
						}
					case "remove":
						var id string
						if _, err := fmt.Sscanf(op.Path, "members[value eq %q]", &id); err != nil {
							t.Fatalf("remove path %q: %v", op.Path, err)
						}
						removed = append(removed, id)
						n++
					}
				}
				got = append(got, n)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changes per request = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(added, tt.add) || !reflect.DeepEqual(removed, tt.remove) {
				t.Errorf("added %v removed %v, want %v %v", added, removed, tt.add, tt.remove)
			}
		})
	}
	if ref := scim.MemberRef("u1", "user"); !reflect.DeepEqual(ref, map[string]any{"value": "u1", "type": "user"}) {
		t.Errorf("MemberRef = %v", ref)
	}
	if refs := scim.MemberRefs(nil, scim.Capabilities{}); refs == nil || len(refs) != 0 {
		t.Errorf("MemberRefs(nil) = %#v, want an empty, non-nil list", refs)
	}
}

func TestDiffMembers(t *testing.T) {
	add, remove := scim.DiffMembers([]string{"a", "b", "c"}, []string{"c", "d", "d", "a"})
	if !reflect.DeepEqual(add, []string{"d"}) || !reflect.DeepEqual(remove, []string{"b"}) {
		t.Errorf("DiffMembers = %v, %v", add, remove)
	}
}

func TestRestrictPaths(t *testing.T) {
	ops := []scim.PatchOp{{Op: "replace", Path: "displayName"}, {Op: "replace", Path: "externalId"},
		{Op: "add", Path: "name.givenName"}, {Op: "remove", Path: "DISPLAYNAME"}}
	got := scim.RestrictPaths(ops, []string{"displayName", "externalId"})
	if len(got) != 3 || got[2].Path != "DISPLAYNAME" {
		t.Errorf("RestrictPaths = %+v", got)
	}
	if got := scim.RestrictPaths(ops, nil); len(got) != 4 {
		t.Errorf("RestrictPaths(nil) = %+v", got)
	}
}

func TestCompatTable(t *testing.T) {
	full := scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true},
		Bulk:   scim.BulkConfig{Supported: true, MaxOperations: 50, MaxPayloadSize: 1000},
		Filter: scim.FilterConfig{Supported: false, MaxResults: 10}}
	tests := []struct {
		mode scim.Mode
		spc  scim.ServiceProviderConfig
		want scim.Capabilities
	}{
		{scim.ModeDefault, full, scim.Capabilities{Mode: scim.ModeDefault, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePatch, MemberPatch: true,
			MaxMembersPerRequest: 50, FilterMaxResults: 10, Bulk: true, BulkMaxOperations: 50, BulkMaxPayloadSize: 1000}},
		{scim.ModeDefault, scim.FallbackConfig(), scim.Capabilities{Mode: scim.ModeDefault, UserUpdate: scim.UpdatePut, GroupUpdate: scim.UpdatePut,
			MaxMembersPerRequest: scim.DefaultMaxMembersPerRequest}},
		{scim.ModeAWS, full, scim.Capabilities{Mode: scim.ModeAWS, UserUpdate: scim.UpdatePut, GroupUpdate: scim.UpdatePatch,
			GroupPatchPaths: []string{"displayName", "externalId"}, MemberPatch: true, MaxMembersPerRequest: 100,
			FilterEqOnly: true, FilterMaxResults: 10}},
		{scim.ModeSlack, full, scim.Capabilities{Mode: scim.ModeSlack, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePatch, MemberPatch: true,
			MaxMembersPerRequest: 50, Filter: true, FilterMaxResults: 10, Bulk: true, BulkMaxOperations: 50, BulkMaxPayloadSize: 1000}},
		{scim.ModeWebex, full, scim.Capabilities{Mode: scim.ModeWebex, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePatch, MemberPatch: true,
			MaxMembersPerRequest: 50, MemberType: "user", FilterMaxResults: 10, Bulk: true, BulkMaxOperations: 50, BulkMaxPayloadSize: 1000}},
		// vcenter and gitlab never discover (TestModesWithoutDiscovery); a document given
		// anyway (an override's) is applied like any other: vcenter writes members inline.
		{scim.ModeVCenter, full, scim.Capabilities{Mode: scim.ModeVCenter, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePut,
			MaxMembersPerRequest: 50, FilterMaxResults: 10, Bulk: true, BulkMaxOperations: 50, BulkMaxPayloadSize: 1000}},
		{scim.ModeGitLab, full, scim.Capabilities{Mode: scim.ModeGitLab, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePatch, MemberPatch: true,
			MaxMembersPerRequest: 50, FilterMaxResults: 10, Bulk: true, BulkMaxOperations: 50, BulkMaxPayloadSize: 1000}},
	}
	for _, tt := range tests {
		c, err := scim.CompatFor(tt.mode)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Apply(tt.spc); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s.Apply(%+v) =\n %+v\nwant\n %+v", tt.mode, tt.spc, got, tt.want)
		}
	}
	for _, m := range scim.Modes() {
		if _, err := scim.CompatFor(m); err != nil {
			t.Errorf("CompatFor(%s): %v", m, err)
		}
	}
	if c, _ := scim.CompatFor("SalesForce"); c.DiscoveryPath != "/ServiceProviderConfigs" {
		t.Errorf("salesforce discovery path = %q", c.DiscoveryPath)
	}
	for _, m := range scim.Modes() {
		c, _ := scim.CompatFor(m)
		if want := m == scim.ModeVCenter || m == scim.ModeGitLab; c.NoDiscovery != want {
			t.Errorf("%s: NoDiscovery = %v, want %v", m, c.NoDiscovery, want)
		}
		if want := m == scim.ModeVCenter; c.InlineMembers != want {
			t.Errorf("%s: InlineMembers = %v, want %v", m, c.InlineMembers, want)
		}
	}
}
