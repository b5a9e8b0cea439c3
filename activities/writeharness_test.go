package activities_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

// The helpers of the write decision tests: the exact requests a target received, and the
// exact sync_links row an object has after a write.

const (
	userSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	bulkSchema  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
)

// sent returns the requests the target received since its log was reset, one line each:
// method, path relative to the SCIM base URL, for searches the filter (decoded), and the
// body in canonical JSON. Discovery is left out: it is not a write decision.
func (w *world) sent() []string {
	w.t.Helper()
	base := basePath(w.target)
	var out []string
	for _, r := range w.target.Requests() {
		if strings.HasSuffix(r.Route, "/ServiceProviderConfig") {
			continue
		}
		line := r.Method + " " + strings.TrimPrefix(r.Path, base)
		if f := r.Query.Get("filter"); f != "" {
			line += "?filter=" + f
		}
		if len(r.Body) > 0 {
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				w.t.Fatalf("%s body %q: %v", r.Route, r.Body, err)
			}
			b, _ := json.Marshal(v)
			line += " " + string(b)
		}
		out = append(out, line)
	}
	return out
}

// checkSent fails unless the target received exactly want (see sent), in order; each want
// line's body is canonicalised first.
func (w *world) checkSent(want ...string) {
	w.t.Helper()
	for i, line := range want {
		if j := strings.Index(line, " {"); j >= 0 {
			want[i] = line[:j+1] + canonicalJSON(w.t, line[j+1:])
		}
	}
	if got := w.sent(); !slices.Equal(got, want) {
		w.t.Errorf("requests:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// linkRow is what a write decides of an object's sync_links row, in a form compared whole:
// Remote "-" for no remote id, Payload canonical JSON ("" for none), Members the JSON of
// the list ("null" for never written).
type linkRow struct {
	Remote          string
	Hash            string
	Payload         string
	Members         string
	LastError       string
	Deprovisioned   bool
	CreateUncertain bool
}

func (w *world) row(kind, id string) (linkRow, bool) {
	w.t.Helper()
	l, ok := w.link(kind, id)
	if !ok {
		return linkRow{}, false
	}
	r := linkRow{Remote: "-", Hash: l.PayloadHash, LastError: l.LastError, Deprovisioned: l.DeprovisionedAt != nil,
		CreateUncertain: l.CreateUncertain}
	if l.RemoteID != nil {
		r.Remote = *l.RemoteID
	}
	if len(l.Payload) > 0 {
		r.Payload = canonicalJSON(w.t, string(l.Payload))
	}
	m, _ := json.Marshal([]string(l.Members))
	if l.Members == nil {
		m = []byte("null")
	}
	r.Members = string(m)
	return r, true
}

// checkRow fails unless the object's link is exactly want.
func (w *world) checkRow(kind string, o activities.MappedObject, want linkRow) {
	w.t.Helper()
	got, ok := w.row(kind, o.ID)
	if !ok {
		w.t.Errorf("%s %s has no link, want %+v", kind, o.ID, want)
		return
	}
	if want.Payload != "" {
		want.Payload = canonicalJSON(w.t, want.Payload)
	}
	if got != want {
		w.t.Errorf("link of %s %s:\n  %+v\nwant:\n  %+v", kind, o.ID, got, want)
	}
}

// payloadJSON is o's payload as its link records it.
func payloadJSON(t *testing.T, o activities.MappedObject) string {
	t.Helper()
	b, err := json.Marshal(o.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return canonicalJSON(t, string(b))
}

// changed returns o with one attribute set (a mapping that now gives another value), a
// new hash, and New false: what MapObjects hands over for an object linked before.
func changed(o activities.MappedObject, attr string, value any) activities.MappedObject {
	p := make(map[string]any, len(o.Payload)+1)
	for k, v := range o.Payload {
		p[k] = v
	}
	p[attr] = value
	o.Payload, o.New, o.Hash = p, false, fmt.Sprintf("%s+%s=%v", o.Hash, attr, value)
	return o
}

// group is a mapped group as MapObjects hands it to WriteObjects, never written before;
// id is its directory id (its members are read from the directory).
func group(id, displayName, externalID string) activities.MappedObject {
	return activities.MappedObject{ID: id, Hash: "h-" + displayName, New: true, Payload: map[string]any{
		"schemas": []any{groupSchema}, "displayName": displayName, "externalId": externalID,
	}}
}

// directory creates users (by username) and one group holding them all in the directory,
// and returns the group's id and the users' ids, in order.
func (w *world) directory(groupName string, usernames ...string) (string, []string) {
	w.t.Helper()
	var gid string
	var uids []string
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) error {
		g, err := tx.CreateGroup(w.ctx, store.Group{Name: groupName})
		if err != nil {
			return err
		}
		gid = g.ID
		for _, name := range usernames {
			u, err := tx.CreateUser(w.ctx, store.User{Username: name, Name: name, IsActive: true})
			if err != nil {
				return err
			}
			if err := tx.AddMember(w.ctx, g.ID, u.ID); err != nil {
				return err
			}
			uids = append(uids, u.ID)
		}
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return gid, uids
}

// linkUsers makes users (directory ids) exist at the target and links them, as their
// earlier syncs did, without a request: the user is added to the target, its link saved.
// It returns their remote ids, in order.
func (w *world) linkUsers(ids ...string) []string {
	w.t.Helper()
	remotes := make([]string, len(ids))
	links := make([]store.Link, len(ids))
	for i, id := range ids {
		u := user("member-"+id, "ext-"+id)
		remotes[i] = w.target.AddUser(u.Payload)
		links[i] = store.Link{ProviderID: w.provider.ID, Kind: object.User, ObjectID: id, RemoteID: &remotes[i],
			PayloadHash: u.Hash, Payload: mustJSON(w.t, u.Payload)}
	}
	if err := w.store.SaveLinks(w.ctx, links); err != nil {
		w.t.Fatal(err)
	}
	return remotes
}

// saveLink records o as linked to remote (written by an earlier sync), with members for
// groups (nil: never written).
func (w *world) saveLink(kind string, o activities.MappedObject, remote string, members []string) {
	w.t.Helper()
	if err := w.store.SaveLink(w.ctx, store.Link{ProviderID: w.provider.ID, Kind: kind, ObjectID: o.ID, RemoteID: &remote,
		PayloadHash: o.Hash, Payload: mustJSON(w.t, o.Payload), Members: members}); err != nil {
		w.t.Fatal(err)
	}
}

// newID is a made-up remote id: one the target never had.
func newID() string { return uuid.NewString() }

// jsonList is ids as a JSON array, sorted, for a linkRow's Members.
func jsonList(ids ...string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// memberRefs is the JSON of SCIM member references to ids, in order.
func memberRefs(ids ...string) string {
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = `{"value":"` + id + `"}`
	}
	return "[" + strings.Join(refs, ",") + "]"
}

// outcome is a write's result without its per-object records (WriteResult.Objects): the
// tests here assert the requests on the target's own log, and the records are what
// `starter history` shows, asserted by its tests.
func outcome(r activities.WriteResult) activities.WriteResult {
	r.Objects = nil
	return r
}

// writeExpect writes objs of kind and fails the test unless the write succeeds with the
// outcome want (records aside, see outcome).
func (w *world) writeExpect(want activities.WriteResult, kind string, objs ...activities.MappedObject) {
	w.t.Helper()
	res, err := w.write(kind, objs...)
	if err != nil {
		w.t.Fatalf("WriteObjects: %v", err)
	}
	if !reflect.DeepEqual(outcome(res), want) {
		w.t.Errorf("result %+v, want %+v", res, want)
	}
}
