package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/store"
)

// outboxRow is a row of sync_changes with its attempts, as the tests compare it.
type outboxRow struct {
	ID       int64     `db:"id"`
	Kind     string    `db:"kind"`
	Op       string    `db:"op"`
	ObjectID string    `db:"object_id"`
	Created  time.Time `db:"created_at"`
	Attempts int       `db:"attempts"`
}

func outboxRows(t *testing.T, s *store.Store) []outboxRow {
	t.Helper()
	rows := []outboxRow{}
	if err := s.DB().SelectContext(ctxT(t), &rows,
		`SELECT id, kind, op, object_id, created_at, attempts FROM sync_changes ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	return rows
}

func parkedString(p store.ParkedChange) string {
	return fmt.Sprintf("%d %s %s %s provider=%s attempts=%d error=%q", p.ID, p.Kind, p.Op, p.ObjectID, p.Provider, p.Attempts, p.Error)
}

func parkedStrings(t *testing.T, s *store.Store) []string {
	t.Helper()
	ps, err := s.ParkedChanges(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, p := range ps {
		out = append(out, parkedString(p))
	}
	slices.Sort(out)
	return out
}

// threeChanges writes three users and returns their outbox rows, by id.
func threeChanges(t *testing.T, s *store.Store) []outboxRow {
	t.Helper()
	for i := range 3 {
		createUser(t, s, store.User{Username: fmt.Sprintf("parked%d", i)})
	}
	rows := outboxRows(t, s)
	if len(rows) != 3 {
		t.Fatalf("outbox holds %d rows, want 3", len(rows))
	}
	return rows
}

func TestRelayChangesParksTheRefusedAndDeletesTheRestInOneTransaction(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	rows := threeChanges(t, s)
	refusal := store.Refusal{ChangeID: rows[1].ID, Provider: "okta", Error: "signal scim/okta/user/x: Blob data size exceeds limit. (InvalidArgument)"}

	// A failing handler parks nothing, whatever it refused.
	boom := errors.New("temporal unavailable")
	if _, _, err := s.RelayChanges(ctx, 10, func(context.Context, []store.Change) ([]store.Refusal, error) {
		return []store.Refusal{refusal}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("RelayChanges = %v, want the handler's error", err)
	}
	// A refusal of a change outside the batch rolls the batch back.
	if _, _, err := s.RelayChanges(ctx, 1, func(context.Context, []store.Change) ([]store.Refusal, error) {
		return []store.Refusal{refusal}, nil
	}); err == nil || !strings.Contains(err.Error(), "not in the batch") {
		t.Fatalf("RelayChanges with a refusal outside its batch = %v, want an error", err)
	}
	if got := outboxRows(t, s); !slices.Equal(got, rows) {
		t.Fatalf("outbox after failed relays = %+v, want %+v", got, rows)
	}
	if got := parkedStrings(t, s); len(got) != 0 {
		t.Fatalf("parked after failed relays: %q", got)
	}

	// A park that fails (here: a dead letter already under that id) rolls back the whole
	// batch, the deletion of the relayed changes too: nothing is lost.
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO sync_changes_parked (id, kind, op, object_id, created_at, provider, error, attempts)
		VALUES ($1, 'user', 'insert', $2, now(), 'x', 'x', 1)`, rows[1].ID, rows[1].ObjectID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RelayChanges(ctx, 10, func(context.Context, []store.Change) ([]store.Refusal, error) {
		return []store.Refusal{refusal}, nil
	}); err == nil {
		t.Fatal("RelayChanges parking over an existing dead letter = nil, want an error")
	}
	if got := outboxRows(t, s); !slices.Equal(got, rows) {
		t.Fatalf("outbox after a failed park = %+v, want %+v", got, rows)
	}
	if _, err := s.DB().ExecContext(ctx, `DELETE FROM sync_changes_parked`); err != nil {
		t.Fatal(err)
	}

	relayed, parked, err := s.RelayChanges(ctx, 10, func(_ context.Context, cs []store.Change) ([]store.Refusal, error) {
		if len(cs) != 3 {
			return nil, fmt.Errorf("batch of %d, want 3", len(cs))
		}
		second := refusal
		second.Error = "a later refusal of the same change"
		return []store.Refusal{refusal, second}, nil
	})
	if err != nil || relayed != 2 || parked != 1 {
		t.Fatalf("RelayChanges = %d relayed, %d parked, %v; want 2, 1, nil", relayed, parked, err)
	}
	if got := outboxRows(t, s); len(got) != 0 {
		t.Fatalf("outbox after the relay = %+v, want empty", got)
	}
	ps, err := s.ParkedChanges(ctx, 0)
	if err != nil || len(ps) != 1 {
		t.Fatalf("ParkedChanges = %+v, %v; want one", ps, err)
	}
	p := ps[0]
	want := fmt.Sprintf("%d user insert %s provider=okta attempts=1 error=%q", rows[1].ID, rows[1].ObjectID, refusal.Error)
	if got := parkedString(p); got != want {
		t.Fatalf("parked change = %s, want %s", got, want)
	}
	if !p.CreatedAt.Equal(rows[1].Created) || p.ParkedAt.Before(p.CreatedAt) {
		t.Errorf("parked change created %s, parked %s; want created %s, parked after", p.CreatedAt, p.ParkedAt, rows[1].Created)
	}
	if n, oldest, err := s.ParkedLag(ctx); err != nil || n != 1 || oldest < 0 {
		t.Errorf("ParkedLag = %d, %s, %v; want 1", n, oldest, err)
	}
	// ClaimChanges sees nothing of it.
	if n, err := s.ClaimChanges(ctx, 10, func(context.Context, []store.Change) error { return nil }); err != nil || n != 0 {
		t.Errorf("ClaimChanges after the park = %d, %v; want 0", n, err)
	}
}

func TestRetryParkedPutsChangesBackUnderTheirIdsAndWakesTheRelays(t *testing.T) {
	dsn := testenv.NewDatabase(t, true)
	s, err := store.Open(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := ctxT(t)
	rows := threeChanges(t, s)
	park := func(ids ...int64) {
		t.Helper()
		_, parked, err := s.RelayChanges(ctx, 10, func(context.Context, []store.Change) ([]store.Refusal, error) {
			var rs []store.Refusal
			for _, id := range ids {
				rs = append(rs, store.Refusal{ChangeID: id, Provider: "okta", Error: "refused"})
			}
			return rs, nil
		})
		if err != nil || parked != len(ids) {
			t.Fatalf("park %v: parked %d, %v", ids, parked, err)
		}
	}
	park(rows[0].ID, rows[2].ID)

	l := pq.NewListener(dsn, 10*time.Millisecond, time.Second, nil)
	defer l.Close()
	if err := l.Listen(store.ChangesChannel); err != nil {
		t.Fatal(err)
	}

	// An id that is not parked is left out; the change goes back as it was.
	back, err := s.RetryParked(ctx, []int64{rows[2].ID, rows[1].ID, 999999})
	if err != nil || !slices.Equal(back, []int64{rows[2].ID}) {
		t.Fatalf("RetryParked = %v, %v; want [%d]", back, err, rows[2].ID)
	}
	select {
	case <-l.Notify:
	case <-time.After(10 * time.Second):
		t.Fatal("RetryParked raised no notification on " + store.ChangesChannel)
	}
	want := rows[2]
	want.Attempts = 1
	if got := outboxRows(t, s); len(got) != 1 || got[0].ID != want.ID || got[0].Kind != want.Kind || got[0].Op != want.Op ||
		got[0].ObjectID != want.ObjectID || !got[0].Created.Equal(want.Created) || got[0].Attempts != 1 {
		t.Fatalf("outbox after the retry = %+v, want %+v", got, want)
	}
	if got := parkedStrings(t, s); len(got) != 1 || !strings.HasPrefix(got[0], fmt.Sprint(rows[0].ID)+" ") {
		t.Fatalf("parked after the retry: %q, want change %d only", got, rows[0].ID)
	}

	// Refused again: parked again, its attempts counted.
	park(rows[2].ID)
	if got := parkedStrings(t, s); len(got) != 2 || !strings.Contains(got[1], "attempts=2") {
		t.Fatalf("parked after a second refusal: %q, want change %d with attempts=2", got, rows[2].ID)
	}

	// Everything back: the outbox holds both, nothing is parked, and a relay handles them.
	back, err = s.RetryAllParked(ctx)
	if err != nil || !slices.Equal(back, []int64{rows[0].ID, rows[2].ID}) {
		t.Fatalf("RetryAllParked = %v, %v", back, err)
	}
	if got := parkedStrings(t, s); len(got) != 0 {
		t.Fatalf("parked after RetryAllParked: %q", got)
	}
	var claimed []int64
	if n, err := s.ClaimChanges(ctx, 10, func(_ context.Context, cs []store.Change) error {
		for _, c := range cs {
			claimed = append(claimed, c.ID)
		}
		return nil
	}); err != nil || n != 2 || !slices.Equal(claimed, []int64{rows[0].ID, rows[2].ID}) {
		t.Fatalf("ClaimChanges after RetryAllParked = %d %v, %v", n, claimed, err)
	}
	if back, err := s.RetryAllParked(ctx); err != nil || len(back) != 0 {
		t.Fatalf("RetryAllParked with nothing parked = %v, %v", back, err)
	}
}

func TestDropParkedDeletesOnlyWhatItNames(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	rows := threeChanges(t, s)
	if _, _, err := s.RelayChanges(ctx, 2, func(_ context.Context, cs []store.Change) ([]store.Refusal, error) {
		return []store.Refusal{{ChangeID: cs[0].ID, Provider: "a", Error: "refused"}, {ChangeID: cs[1].ID, Provider: "b", Error: "refused"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	dropped, err := s.DropParked(ctx, []int64{rows[1].ID, rows[2].ID})
	if err != nil || !slices.Equal(dropped, []int64{rows[1].ID}) {
		t.Fatalf("DropParked = %v, %v; want [%d] (change %d is in the outbox, not parked)", dropped, err, rows[1].ID, rows[2].ID)
	}
	if got := outboxRows(t, s); len(got) != 1 || got[0].ID != rows[2].ID {
		t.Fatalf("outbox after DropParked = %+v, want change %d untouched", got, rows[2].ID)
	}
	want := []string{fmt.Sprintf("%d user insert %s provider=a attempts=1 error=\"refused\"", rows[0].ID, rows[0].ObjectID)}
	if got := parkedStrings(t, s); !slices.Equal(got, want) {
		t.Fatalf("parked after DropParked = %q, want %q", got, want)
	}
	if dropped, err := s.DropAllParked(ctx); err != nil || !slices.Equal(dropped, []int64{rows[0].ID}) {
		t.Fatalf("DropAllParked = %v, %v", dropped, err)
	}
	if n, _, err := s.ParkedLag(ctx); err != nil || n != 0 {
		t.Fatalf("ParkedLag after DropAllParked = %d, %v", n, err)
	}
	if got := outboxRows(t, s); len(got) != 1 || got[0].ID != rows[2].ID {
		t.Fatalf("outbox after DropAllParked = %+v, want change %d untouched", got, rows[2].ID)
	}
}

func TestParkedChangesListsTheLongestParkedFirst(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	rows := threeChanges(t, s)
	if _, parked, err := s.RelayChanges(ctx, 3, func(_ context.Context, cs []store.Change) ([]store.Refusal, error) {
		var rs []store.Refusal
		for _, c := range cs {
			rs = append(rs, store.Refusal{ChangeID: c.ID, Provider: "p", Error: "refused"})
		}
		return rs, nil
	}); err != nil || parked != 3 {
		t.Fatalf("parked %d, %v; want 3", parked, err)
	}
	// Parked an hour, a day and a minute ago.
	for id, ago := range map[int64]string{rows[0].ID: "1 hour", rows[1].ID: "1 minute", rows[2].ID: "1 day"} {
		if _, err := s.DB().ExecContext(ctx, `UPDATE sync_changes_parked SET parked_at = now() - $2::interval WHERE id = $1`, id, ago); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := s.ParkedChanges(ctx, 2)
	if err != nil || len(ps) != 2 || ps[0].ID != rows[2].ID || ps[1].ID != rows[0].ID {
		t.Fatalf("ParkedChanges(2) = %+v, %v; want changes %d then %d", ps, err, rows[2].ID, rows[0].ID)
	}
	if all, err := s.ParkedChanges(ctx, 0); err != nil || len(all) != 3 || all[2].ID != rows[1].ID {
		t.Fatalf("ParkedChanges(0) = %+v, %v; want all 3, change %d last", all, err, rows[1].ID)
	}
	if n, oldest, err := s.ParkedLag(ctx); err != nil || n != 3 || oldest < 23*time.Hour {
		t.Fatalf("ParkedLag = %d, %s, %v; want 3, a day", n, oldest, err)
	}
}
