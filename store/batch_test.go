package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

func TestRemoteIDsAndLinkedRemoteIDs(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("remote-ids"))
	var ids []string
	for i := range 4 {
		ids = append(ids, createUser(t, s, store.User{Username: fmt.Sprintf("u%d", i)}).ID)
	}
	// u0 linked, u1 creating (no remote id yet), u2 linked then deactivated, u3 not linked.
	r0, r2 := "r0", "r2"
	for _, l := range []store.Link{
		{ProviderID: p.ID, Kind: object.User, ObjectID: ids[0], RemoteID: &r0, PayloadHash: "h"},
		{ProviderID: p.ID, Kind: object.User, ObjectID: ids[2], RemoteID: &r2, PayloadHash: "h"},
	} {
		if err := s.SaveLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.MarkCreating(ctx, p.ID, object.User, ids[1], []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDeprovisioned(ctx, p.ID, object.User, ids[2], "h2", nil, 0); err != nil {
		t.Fatal(err)
	}

	got, err := s.RemoteIDs(ctx, p.ID, object.User, ids)
	if err != nil || len(got) != 1 || got[ids[0]] != "r0" {
		t.Fatalf("RemoteIDs = %v, %v; want only u0 → r0", got, err)
	}
	if got, err := s.RemoteIDs(ctx, p.ID, object.Group, ids); err != nil || len(got) != 0 {
		t.Fatalf("RemoteIDs of groups = %v, %v; want none", got, err)
	}
	linked, err := s.LinkedRemoteIDs(ctx, p.ID, object.User, []string{"r0", "r2", "gone"})
	if err != nil || len(linked) != 2 || !linked["r0"] || !linked["r2"] {
		t.Fatalf("LinkedRemoteIDs = %v, %v; want r0 and r2 (a deactivated link still holds its id)", linked, err)
	}
	if got, err := s.LinkedRemoteIDs(ctx, p.ID, object.User, nil); err != nil || len(got) != 0 {
		t.Fatalf("LinkedRemoteIDs(nil) = %v, %v", got, err)
	}
}

func TestLockObjectsTakesEveryLockAndReleasesThem(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	ids := []string{"u3", "u1", "u2", "u1"}
	unlock, err := s.LockObjects(ctx, "p", object.User, ids)
	if err != nil {
		t.Fatal(err)
	}
	// Each of them is held: a single lock on any waits.
	for _, id := range []string{"u1", "u2", "u3"} {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		if _, err := s.LockObject(short, "p", object.User, id); err == nil {
			t.Errorf("LockObject(%s) succeeded while LockObjects holds it", id)
		}
		cancel()
	}
	// Others are free.
	other, err := s.LockObject(ctx, "p", object.User, "u4")
	if err != nil {
		t.Fatal(err)
	}
	other()

	// A batch that overlaps waits, and a cancelled wait gives back what it had taken: u0
	// (before u1 in order) must be free afterwards.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if _, err := s.LockObjects(short, "p", object.User, []string{"u0", "u1"}); err == nil {
		t.Fatal("LockObjects on held locks returned without waiting")
	}
	cancel()
	u0, err := s.LockObject(ctx, "p", object.User, "u0")
	if err != nil {
		t.Fatal(err)
	}
	u0()

	unlock()
	for _, id := range []string{"u1", "u2", "u3"} {
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		u, err := s.LockObject(short, "p", object.User, id)
		cancel()
		if err != nil {
			t.Fatalf("LockObject(%s) after unlock: %v", id, err)
		}
		u()
	}

	// No ids: nothing to lock, and unlock works.
	none, err := s.LockObjects(ctx, "p", object.User, nil)
	if err != nil {
		t.Fatal(err)
	}
	none()
}

func TestMarkCreatingManyAndSaveLinks(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("batch-links"))
	var ids []string
	for i := range 3 {
		ids = append(ids, createGroup(t, s, fmt.Sprintf("g%d", i), nil).ID)
	}
	// g0 is linked already: marking it creating must not forget its remote id or payload.
	r0 := "r0"
	if err := s.SaveLink(ctx, store.Link{ProviderID: p.ID, Kind: object.Group, ObjectID: ids[0], RemoteID: &r0,
		PayloadHash: "h0", Payload: []byte(`{"displayName":"g0"}`), Members: []string{"m1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkCreatingMany(ctx, p.ID, object.Group, map[string][]byte{
		ids[0]: []byte(`{"displayName":"new"}`), ids[1]: []byte(`{"displayName":"g1"}`), ids[2]: nil,
	}); err != nil {
		t.Fatal(err)
	}
	links, err := s.Links(ctx, p.ID, object.Group, ids)
	if err != nil {
		t.Fatal(err)
	}
	if l := links[ids[0]]; l.Remote() != "r0" || string(l.Payload) != `{"displayName": "g0"}` {
		t.Errorf("linked g0 after MarkCreatingMany = %+v", l)
	}
	if l := links[ids[1]]; l.Remote() != "" || string(l.Payload) != `{"displayName": "g1"}` {
		t.Errorf("g1 after MarkCreatingMany = %+v", l)
	}
	if l, ok := links[ids[2]]; !ok || l.Remote() != "" || l.Payload != nil {
		t.Errorf("g2 after MarkCreatingMany = %+v (present %v)", l, ok)
	}
	if err := s.SetLinkError(ctx, p.ID, object.Group, ids[1], "500"); err != nil {
		t.Fatal(err)
	}

	// SaveLinks: g0 without members keeps its members; g1 gets some; g2 an empty list.
	r1, r2 := "r1", "r2"
	if err := s.SaveLinks(ctx, []store.Link{
		{ProviderID: p.ID, Kind: object.Group, ObjectID: ids[0], RemoteID: &r0, PayloadHash: "h0b", Payload: []byte(`{"displayName":"g0b"}`)},
		{ProviderID: p.ID, Kind: object.Group, ObjectID: ids[1], RemoteID: &r1, PayloadHash: "h1", Payload: []byte(`{"displayName":"g1"}`), Members: []string{"a", "b"}},
		{ProviderID: p.ID, Kind: object.Group, ObjectID: ids[2], RemoteID: &r2, PayloadHash: "h2", Members: []string{}},
	}); err != nil {
		t.Fatal(err)
	}
	links, err = s.Links(ctx, p.ID, object.Group, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		remote, hash, payload string
		members               []string
	}{
		{"r0", "h0b", `{"displayName": "g0b"}`, []string{"m1"}},
		{"r1", "h1", `{"displayName": "g1"}`, []string{"a", "b"}},
		{"r2", "h2", "", []string{}},
	} {
		l := links[ids[i]]
		if l.Remote() != want.remote || l.PayloadHash != want.hash || string(l.Payload) != want.payload ||
			!equal(l.Members, want.members) || l.Members == nil || l.LastError != "" || l.SyncedAt == nil {
			t.Errorf("g%d after SaveLinks = %+v", i, l)
		}
	}
	if err := s.SaveLinks(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveLinks(ctx, []store.Link{{ProviderID: p.ID, Kind: object.Group, ObjectID: ids[0]},
		{ProviderID: p.ID, Kind: object.User, ObjectID: ids[1]}}); err == nil {
		t.Error("SaveLinks of two kinds succeeded")
	}
}

func TestLinkWritesKeepSyncLinksStatisticsFresh(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("analyze"))
	analyzed := func() (n int, err error) {
		err = s.DB().GetContext(ctx, &n, `SELECT analyze_count::int FROM pg_stat_user_tables WHERE relname = 'sync_links'`)
		return n, err
	}
	before, err := analyzed()
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[string][]byte)
	for i := range 1200 {
		ids[fmt.Sprintf("00000000-0000-4000-8000-%012d", i)] = nil
	}
	if err := s.MarkCreatingMany(ctx, p.ID, object.User, ids); err != nil {
		t.Fatal(err)
	}
	// The ANALYZE runs in the background.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := analyzed()
		if err != nil {
			t.Fatal(err)
		}
		if n > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync_links not analyzed after 1,200 link writes (analyze_count %d)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var rows float64
	if err := s.DB().GetContext(ctx, &rows, `SELECT reltuples FROM pg_class WHERE relname = 'sync_links'`); err != nil || rows < 1000 {
		t.Errorf("planner statistics: %v rows (%v), want about 1,200", rows, err)
	}
}
