package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

func TestUpdatePacingIsOneRowUnderALock(t *testing.T) {
	dsn := testenv.NewDatabase(t, true)
	s, err := store.Open(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := ctxT(t)
	p := createProvider(t, s, provider("paced"))

	if _, _, ok, err := s.PacingState(ctx, p.ID); ok || err != nil {
		t.Fatalf("PacingState before any pacing: ok %v, %v", ok, err)
	}
	// Twenty writers at once, each adding one: the row lock makes them take turns.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.UpdatePacing(ctx, p.ID, false, func(now time.Time, row *store.Pacing, _ []store.PacingSlot) (store.PacingUpdate, error) {
				row.SentTotal++
				return store.PacingUpdate{}, nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	l := pq.NewListener(dsn, time.Second, time.Second, nil)
	defer l.Close()
	if err := l.Listen(store.PacingChannel); err != nil {
		t.Fatal(err)
	}
	var dbNow time.Time
	err = s.UpdatePacing(ctx, p.ID, true, func(now time.Time, row *store.Pacing, slots []store.PacingSlot) (store.PacingUpdate, error) {
		dbNow = now
		until, rate := now.Add(5*time.Second), 2.5
		row.PausedUntil, row.PauseCause, row.LearnedRate = &until, "429 with Retry-After 5s", &rate
		if len(slots) != 0 {
			t.Errorf("slots before any claim: %+v", slots)
		}
		return store.PacingUpdate{Notify: true, Slot: &store.PacingSlot{Holder: "w1", Slots: 3, Wanted: 4, ExpiresAt: now.Add(time.Minute)}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-l.Notify:
		if n == nil || n.Extra != p.ID {
			t.Fatalf("notification %+v, want the provider id", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification on " + store.PacingChannel)
	}
	row, now, ok, err := s.PacingState(ctx, p.ID)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if row.SentTotal != 20 || row.PausedUntil == nil || !row.PausedUntil.Equal(dbNow.Add(5*time.Second)) ||
		*row.LearnedRate != 2.5 || row.PauseCause != "429 with Retry-After 5s" || now.Before(dbNow) {
		t.Fatalf("row %+v at %s", row, now)
	}
	// The claim is there for the next exchange; an expired one is dropped.
	err = s.UpdatePacing(ctx, p.ID, true, func(now time.Time, _ *store.Pacing, slots []store.PacingSlot) (store.PacingUpdate, error) {
		if len(slots) != 1 || slots[0].Holder != "w1" || slots[0].Slots != 3 || slots[0].Wanted != 4 {
			t.Errorf("slots %+v, want w1's claim", slots)
		}
		return store.PacingUpdate{Slot: &store.PacingSlot{Holder: "w2", Slots: 1, Wanted: 1, ExpiresAt: now.Add(-time.Second)}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.UpdatePacing(ctx, p.ID, true, func(now time.Time, _ *store.Pacing, slots []store.PacingSlot) (store.PacingUpdate, error) {
		if len(slots) != 1 || slots[0].Holder != "w1" {
			t.Errorf("slots %+v, want w1's alone (w2's expired)", slots)
		}
		return store.PacingUpdate{Slot: &store.PacingSlot{Holder: "w1"}}, nil // released
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB().GetContext(ctx, &n, `SELECT count(*) FROM provider_pacing_slots`); err != nil || n != 0 {
		t.Fatalf("%d slot rows left (%v), want 0", n, err)
	}

	// A change of the provider's limits forgets what was learned; other changes do not.
	p.PageSize = 50
	createProvider(t, s, p)
	if row, _, _, _ = s.PacingState(ctx, p.ID); row.LearnedRate == nil {
		t.Fatal("a page size change forgot the learned rate")
	}
	p.RateLimitPerMinute, p.RateLimitBurst = 120, 10
	got := createProvider(t, s, p)
	if got.RateLimitPerMinute != 120 || got.RateLimitBurst != 10 || got.MaxInFlight != 0 {
		t.Fatalf("stored limits %v/%d/%d", got.RateLimitPerMinute, got.RateLimitBurst, got.MaxInFlight)
	}
	if row, _, _, _ = s.PacingState(ctx, p.ID); row.LearnedRate != nil || row.Tokens != nil {
		t.Fatalf("after a rate_limit change: learned %v tokens %v, want both reset", row.LearnedRate, row.Tokens)
	}
}

func TestRefusedCreatesNeedNoLookup(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("refusals"))
	g := createGroup(t, s, "staff", nil)

	l, err := s.MarkCreating(ctx, p.ID, object.Group, g.ID, []byte(`{"displayName":"staff"}`))
	if err != nil || !l.CreateUncertain {
		t.Fatalf("MarkCreating: %+v %v, want an uncertain create", l, err)
	}
	if err := s.MarkCreatesRefused(ctx, p.ID, object.Group, []string{g.ID}); err != nil {
		t.Fatal(err)
	}
	links, _ := s.Links(ctx, p.ID, object.Group, []string{g.ID})
	if links[g.ID].CreateUncertain {
		t.Fatal("after MarkCreatesRefused the create is still uncertain")
	}
	// Posting again makes it uncertain again, until its answer is known.
	if err := s.MarkCreatingMany(ctx, p.ID, object.Group, map[string][]byte{g.ID: []byte(`{"displayName":"staff"}`)}); err != nil {
		t.Fatal(err)
	}
	links, _ = s.Links(ctx, p.ID, object.Group, []string{g.ID})
	if !links[g.ID].CreateUncertain {
		t.Fatal("MarkCreatingMany left the create certain")
	}
	// A link made only to carry an error was never posted.
	u := createUser(t, s, store.User{Username: "ann"})
	if err := s.SetLinkError(ctx, p.ID, object.User, u.ID, "400 Bad Request"); err != nil {
		t.Fatal(err)
	}
	links, _ = s.Links(ctx, p.ID, object.User, []string{u.ID})
	if links[u.ID].CreateUncertain {
		t.Fatal("SetLinkError made an uncertain create")
	}
}
