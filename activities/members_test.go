package activities_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// directoryUsers creates users (by username) in the directory, in no group, and returns
// their ids in order.
func (w *world) directoryUsers(usernames ...string) []string {
	w.t.Helper()
	var ids []string
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) error {
		for _, name := range usernames {
			u, err := tx.CreateUser(w.ctx, store.User{Username: name, Name: name, IsActive: true})
			if err != nil {
				return err
			}
			ids = append(ids, u.ID)
		}
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return ids
}

func (w *world) syncMembers(ids ...string) (activities.WriteResult, error) {
	w.t.Helper()
	return w.acts.SyncMembers(w.ctx, activities.ObjectsInput{Provider: w.provider.Name, Kind: object.Group, IDs: ids})
}

// names returns n usernames with prefix, zero-padded so that their order is their index.
func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// groupWithMembers is the directory group eng of the users named members, linked at the
// target with written as its members last written (remote ids; those at the target are
// its members there).
func (w *world) groupWithMembers(members []string, written []string) (activities.MappedObject, string, []string) {
	w.t.Helper()
	gid, uids := w.directory("eng", members...)
	desired := w.linkUsers(uids...)
	eng := group(gid, "eng", "ext-eng")
	refs := []any{}
	for _, r := range written {
		if _, ok := w.target.User(r); ok { // a member whose user was deleted is gone from the group
			refs = append(refs, map[string]any{"value": r})
		}
	}
	remote := w.target.AddGroup(map[string]any{"displayName": "eng", "externalId": "ext-eng", "members": refs})
	w.saveLink(object.Group, eng, remote, written)
	return eng, remote, desired
}

// addOp and removeOps are the PATCH operations adding ids and removing ids.
func addOp(ids ...string) string {
	return `{"op":"add","path":"members","value":` + memberRefs(ids...) + `}`
}

func removeOps(ids ...string) string {
	ops := make([]string, len(ids))
	for i, id := range ids {
		ops[i] = `{"op":"remove","path":"members[value eq \"` + id + `\"]"}`
	}
	return strings.Join(ops, ",")
}

func patchOps(ops ...string) string {
	return `{"schemas":["` + patchSchema + `"],"Operations":[` + strings.Join(ops, ",") + `]}`
}

// TestMembersPatchAddAndRemove: a group's membership is brought up to date from the
// members last written: one PATCH adds the linked members the directory group has and
// removes those it no longer has; a member last written whose user link is gone (deleted
// at the target, which removed it from its groups) is not removed again but dropped from
// the record. The Members column then holds the members the group has, sorted.
func TestMembersPatchAddAndRemove(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, nil)
	cy := w.linkUsers(w.directoryUsers("cy")...)[0]
	deleted := newID() // a member last written whose user is gone
	eng, remote, desired := w.groupWithMembers([]string{"ada", "bob"}, []string{cy, deleted})
	res, err := w.syncMembers(eng.ID)
	if err != nil {
		t.Fatalf("SyncMembers: %v", err)
	}
	if want := (activities.WriteResult{Updated: 1}); !reflect.DeepEqual(outcome(res), want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	want := slices.Sorted(slices.Values(desired))
	w.checkSent(`PATCH /Groups/` + remote + ` ` + patchOps(addOp(want...), removeOps(cy)))
	if got := w.target.GroupMembers(remote); !slices.Equal(got, want) {
		t.Errorf("members at the target %v, want %v", got, want)
	}
	w.checkRow(object.Group, eng, linkRow{Remote: remote, Hash: eng.Hash, Payload: payloadJSON(t, eng),
		Members: jsonList(desired...), CreateUncertain: true})

	// Once up to date, nothing is sent.
	w.target.ResetLog()
	if res, err := w.syncMembers(eng.ID); err != nil || !reflect.DeepEqual(outcome(res), activities.WriteResult{}) {
		t.Errorf("second SyncMembers: %+v, %v; want nothing done", res, err)
	}
	w.checkSent()
}

// TestMembersPutWithoutPatch: where membership cannot be patched, the group is PUT with the
// payload last written and its whole member list, and the link records that list.
func TestMembersPutWithoutPatch(t *testing.T) {
	w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoPatch: true}}, nil)
	cy := w.linkUsers(w.directoryUsers("cy")...)[0]
	eng, remote, desired := w.groupWithMembers([]string{"ada", "bob"}, []string{cy})
	res, err := w.syncMembers(eng.ID)
	if err != nil {
		t.Fatalf("SyncMembers: %v", err)
	}
	if want := (activities.WriteResult{Updated: 1}); !reflect.DeepEqual(outcome(res), want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	want := slices.Sorted(slices.Values(desired))
	w.checkSent(`PUT /Groups/` + remote + ` {"id":"` + remote + `","schemas":["` + groupSchema + `"],"displayName":"eng","externalId":"ext-eng","members":` + memberRefs(want...) + `}`)
	if got := w.target.GroupMembers(remote); !slices.Equal(got, want) {
		t.Errorf("members at the target %v, want %v", got, want)
	}
	w.checkRow(object.Group, eng, linkRow{Remote: remote, Hash: eng.Hash, Payload: payloadJSON(t, eng),
		Members: jsonList(desired...), CreateUncertain: true})
}

// TestMembersChunkedWithinTheTargetsLimit: at aws, which refuses a PATCH of more than 100
// member changes, a change of 150 (30 removed, 120 added) is sent in chunks of at most 100,
// removals first (so that the group never holds more than it should), and every chunk is
// recorded in the Members column as it goes through: a chunk that fails transiently is
// sent again in the next pass, from what the record says, and the chunks before it are
// not sent again.
func TestMembersChunkedWithinTheTargetsLimit(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault *scimtest.Fault
	}{
		{"in one pass", nil},
		{"a chunk failed", &scimtest.Fault{Method: "PATCH", Route: "/Groups/{id}", Status: 500, RetryAfter: "1", After: 1, Times: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, scimtest.Options{Quirks: scimtest.Profile("aws")},
				func(_ *scimtest.Server, p *store.Provider) { p.CompatibilityMode = "aws" })
			former := w.linkUsers(w.directoryUsers(names("former", 30)...)...)
			eng, remote, desired := w.groupWithMembers(names("member", 120), former)
			if tt.fault != nil {
				w.target.AddFault(*tt.fault)
			}
			res, err := w.syncMembers(eng.ID)
			if err != nil {
				t.Fatalf("SyncMembers: %v", err)
			}
			if want := (activities.WriteResult{Updated: 1}); !reflect.DeepEqual(outcome(res), want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
			remove := slices.Sorted(slices.Values(former))
			add := slices.Sorted(slices.Values(desired))
			patch := `PATCH /Groups/` + remote + ` `
			want := []string{patch + patchOps(removeOps(remove...)), patch + patchOps(addOp(add[:100]...))}
			if tt.fault != nil {
				want = append(want, want[1]) // answered 500, sent again in the next pass
			}
			want = append(want, patch+patchOps(addOp(add[100:]...)))
			w.checkSent(want...)
			if got := w.target.GroupMembers(remote); !slices.Equal(got, add) {
				t.Errorf("the target has %d members, want the 120 of the directory", len(got))
			}
			w.checkRow(object.Group, eng, linkRow{Remote: remote, Hash: eng.Hash, Payload: payloadJSON(t, eng),
				Members: jsonList(desired...), CreateUncertain: true})
		})
	}
}

// TestMembersThroughBulk: where the target has Bulk, the membership changes of several
// groups that each fit one PATCH go in one Bulk request; each group that went through
// records its members, and a group the target no longer has (404) loses its link's remote
// id, its error recorded, so that its next sync creates it.
func TestMembersThroughBulk(t *testing.T) {
	w := newWorld(t, scimtest.Options{}, nil)
	var groups []activities.MappedObject
	var remotes, members []string
	for i, name := range []string{"g1", "g2", "g3"} {
		gid, uids := w.directory(name, "ada-"+name)
		members = append(members, w.linkUsers(uids...)[0])
		g := group(gid, name, "ext-"+name)
		remote := newID() // g3: gone from the target
		if i < 2 {
			remote = w.target.AddGroup(map[string]any{"displayName": name})
		}
		w.saveLink(object.Group, g, remote, []string{})
		groups, remotes = append(groups, g), append(remotes, remote)
	}
	res, err := w.syncMembers(groups[0].ID, groups[1].ID, groups[2].ID)
	if err != nil {
		t.Fatalf("SyncMembers: %v", err)
	}
	gone := "scim: bulk PATCH /Groups/" + remotes[2] + ": 404 Not Found"
	if want := (activities.WriteResult{Updated: 2, Failed: []activities.ObjectFailure{{ID: groups[2].ID, Error: gone}}}); !reflect.DeepEqual(outcome(res), want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	var ops []string
	for i, g := range groups {
		ops = append(ops, `{"method":"PATCH","path":"/Groups/`+remotes[i]+`","bulkId":"`+g.ID+`","data":`+patchOps(addOp(members[i]))+`}`)
	}
	w.checkSent(`POST /Bulk {"schemas":["` + bulkSchema + `"],"Operations":[` + strings.Join(ops, ",") + `]}`)
	for i, g := range groups[:2] {
		if got := w.target.GroupMembers(remotes[i]); !slices.Equal(got, members[i:i+1]) {
			t.Errorf("members of %s at the target %v, want %v", g.Payload["displayName"], got, members[i:i+1])
		}
		w.checkRow(object.Group, g, linkRow{Remote: remotes[i], Hash: g.Hash, Payload: payloadJSON(t, g),
			Members: jsonList(members[i]), CreateUncertain: true})
	}
	w.checkRow(object.Group, groups[2], linkRow{Remote: "-", Members: "null", LastError: gone})
}
