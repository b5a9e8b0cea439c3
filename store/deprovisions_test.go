package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

func TestDirectDeprovisionsAreCountedInTheWindow(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("guarded"))
	var ids []string
	for i := range 6 {
		u := createUser(t, s, store.User{Username: fmt.Sprintf("u%d", i), IsActive: true})
		remote := fmt.Sprintf("r%d", i)
		if err := s.SaveLink(ctx, store.Link{ProviderID: p.ID, Kind: object.User, ObjectID: u.ID, RemoteID: &remote}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	allowed, held, err := s.ReserveDirectDeprovisions(ctx, p.ID, object.User, ids[:4], 3, time.Hour)
	if err != nil || !slices.Equal(allowed, ids[:3]) || !slices.Equal(held, ids[3:4]) {
		t.Fatalf("first reservation: allowed %v held %v (%v), want the first 3 allowed", allowed, held, err)
	}
	// A retried call is allowed what it was allowed before, without counting it twice.
	allowed, held, err = s.ReserveDirectDeprovisions(ctx, p.ID, object.User, ids[:2], 3, time.Hour)
	if err != nil || !slices.Equal(allowed, ids[:2]) || len(held) != 0 {
		t.Fatalf("retried reservation: allowed %v held %v (%v)", allowed, held, err)
	}
	allowed, held, err = s.ReserveDirectDeprovisions(ctx, p.ID, object.User, ids[4:], 3, time.Hour)
	if err != nil || len(allowed) != 0 || !slices.Equal(held, ids[4:]) {
		t.Fatalf("past the threshold: allowed %v held %v (%v), want all held", allowed, held, err)
	}
	// The users are deleted from the directory: the held ones wait, shown with their age.
	for _, id := range ids {
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteUser(ctx, id) }); err != nil {
			t.Fatal(err)
		}
	}
	n, since, err := s.HeldDeprovisions(ctx, p.ID)
	if err != nil || n != 3 || since == nil {
		t.Fatalf("HeldDeprovisions = %d since %v (%v), want 3", n, since, err)
	}
	// A window that has passed frees the threshold again, and a held object allowed now
	// is no longer held.
	allowed, _, err = s.ReserveDirectDeprovisions(ctx, p.ID, object.User, ids[3:4], 3, 0)
	if err != nil || !slices.Equal(allowed, ids[3:4]) {
		t.Fatalf("after the window: allowed %v (%v)", allowed, err)
	}
	if n, _, _ := s.HeldDeprovisions(ctx, p.ID); n != 2 {
		t.Fatalf("held after one was allowed: %d, want 2", n)
	}
	// No threshold: everything is allowed and nothing recorded.
	allowed, held, err = s.ReserveDirectDeprovisions(ctx, p.ID, object.User, ids, 0, time.Hour)
	if err != nil || !slices.Equal(allowed, ids) || len(held) != 0 {
		t.Fatalf("without threshold: allowed %v held %v (%v)", allowed, held, err)
	}
}

// Concurrent syncs of one provider never pass the threshold together.
func TestDirectDeprovisionReservationsAreSerialised(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("race"))
	var ids []string
	for i := range 40 {
		u := createUser(t, s, store.User{Username: fmt.Sprintf("u%d", i), IsActive: true})
		ids = append(ids, u.ID)
	}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			allowed, _, err := s.ReserveDirectDeprovisions(ctx, p.ID, object.User, []string{id}, 7, time.Hour)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += len(allowed)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 7 {
		t.Fatalf("%d deprovisions allowed across 40 concurrent reservations, want the threshold's 7", total)
	}
}
