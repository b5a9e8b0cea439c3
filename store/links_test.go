package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

func TestLinkLifecycle(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("links"))
	g := createGroup(t, s, "staff", nil)

	pending, err := s.MarkCreating(ctx, p.ID, object.Group, g.ID, []byte(`{"displayName":"staff"}`))
	if err != nil || pending.RemoteID != nil || string(pending.Payload) != `{"displayName": "staff"}` {
		t.Fatalf("MarkCreating = %+v, %v; want a link without remote id", pending, err)
	}
	remote := "remote-1"
	if err := s.SaveLink(ctx, store.Link{ProviderID: p.ID, Kind: object.Group, ObjectID: g.ID,
		RemoteID: &remote, PayloadHash: "abc", Payload: []byte(`{"displayName":"staff"}`)}); err != nil {
		t.Fatal(err)
	}
	// A second MarkCreating must not forget the remote id.
	again, err := s.MarkCreating(ctx, p.ID, object.Group, g.ID, []byte(`{"displayName":"staff"}`))
	if err != nil || again.Remote() != "remote-1" {
		t.Fatalf("MarkCreating on a linked object = %+v, %v", again, err)
	}
	if err := s.SaveMembers(ctx, p.ID, g.ID, []string{"u1", "u2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLinkError(ctx, p.ID, object.Group, g.ID, "400 invalidValue on displayName"); err != nil {
		t.Fatal(err)
	}
	links, err := s.Links(ctx, p.ID, object.Group, []string{g.ID})
	if err != nil {
		t.Fatal(err)
	}
	l := links[g.ID]
	if l.Remote() != "remote-1" || l.PayloadHash != "abc" || string(l.Payload) != `{"displayName": "staff"}` ||
		!equal(l.Members, []string{"u1", "u2"}) || l.LastError != "400 invalidValue on displayName" || l.SyncedAt == nil {
		t.Fatalf("link = %+v", l)
	}
	byRemote, err := s.LinkedRemoteIDs(ctx, p.ID, object.Group, []string{"remote-1", "nope"})
	if err != nil || len(byRemote) != 1 || !byRemote["remote-1"] {
		t.Fatalf("LinkedRemoteIDs = %+v, %v", byRemote, err)
	}
	// A later successful write keeps the members when none are given and clears the error.
	if err := s.SaveLink(ctx, store.Link{ProviderID: p.ID, Kind: object.Group, ObjectID: g.ID,
		RemoteID: &remote, PayloadHash: "def"}); err != nil {
		t.Fatal(err)
	}
	links, _ = s.Links(ctx, p.ID, object.Group, []string{g.ID})
	if l := links[g.ID]; l.LastError != "" || !equal(l.Members, []string{"u1", "u2"}) || l.PayloadHash != "def" {
		t.Fatalf("after save: %+v", l)
	}
	counts, err := s.CountLinks(ctx, p.ID)
	if err != nil || counts != (store.LinkCounts{Groups: 1}) {
		t.Fatalf("CountLinks = %+v, %v", counts, err)
	}
	if err := s.DeleteLink(ctx, p.ID, object.Group, g.ID); err != nil {
		t.Fatal(err)
	}
	if links, _ := s.Links(ctx, p.ID, object.Group, []string{g.ID}); len(links) != 0 {
		t.Fatalf("link survived DeleteLink: %+v", links)
	}
}

func TestLockObjectIsExclusiveAcrossConnections(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := s.LockObject(ctx, "p", object.User, "u1")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Fatalf("%d holders at once, want 1", maxInside.Load())
	}

	// Another object's lock is independent; a cancelled wait returns an error.
	unlock, err := s.LockObject(ctx, "p", object.User, "u1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	other, err := s.LockObject(ctx, "p", object.User, "u2")
	if err != nil {
		t.Fatal(err)
	}
	other()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.LockObject(short, "p", object.User, "u1"); err == nil {
		t.Fatal("LockObject on a held lock returned without waiting for it")
	}
}
