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

// clock is a settable Store.Now, in whole microseconds as PostgreSQL keeps time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func linkOf(t *testing.T, s *store.Store, providerID, kind, id string) store.Link {
	t.Helper()
	links, err := s.Links(ctxT(t), providerID, kind, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := links[id]
	if !ok {
		t.Fatalf("no link of %s %s", kind, id)
	}
	return l
}

func escrowOf(l store.Link) string {
	next := "none"
	if l.NextAttemptAt != nil {
		next = l.NextAttemptAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("attempts %d, next %s, error %q", l.Attempts, next, l.LastError)
}

// TestEscrowBackoffSchedule: the n-th failed write in a row of an object is retried
// RetryDelays[n-1] after it failed, past the last delay only by full syncs (no next
// attempt), and a successful write clears the count and the next attempt.
func TestEscrowBackoffSchedule(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	c := newClock()
	s.Now = c.Now
	s.RetryDelays = []time.Duration{time.Minute, 10 * time.Minute, time.Hour}
	p := createProvider(t, s, provider("backoff"))
	u := createUser(t, s, store.User{Username: "ada"})

	start := c.Now()
	want := []struct {
		after time.Duration // since start, when attempt n fails
		next  string
	}{
		{0, start.Add(time.Minute).Format(time.RFC3339)},
		{90 * time.Second, start.Add(90*time.Second + 10*time.Minute).Format(time.RFC3339)},
		{15 * time.Minute, start.Add(15*time.Minute + time.Hour).Format(time.RFC3339)},
		{2 * time.Hour, "none"},
		{3 * time.Hour, "none"},
	}
	for i, w := range want {
		c.now = start.Add(w.after)
		if err := s.SetLinkError(ctx, p.ID, object.User, u.ID, "POST /Users answered 400 (invalidValue)"); err != nil {
			t.Fatal(err)
		}
		n := i + 1
		got := escrowOf(linkOf(t, s, p.ID, object.User, u.ID))
		wantText := fmt.Sprintf("attempts %d, next %s, error %q", n, w.next, "POST /Users answered 400 (invalidValue)")
		if got != wantText {
			t.Errorf("after attempt %d: %s\nwant %s", n, got, wantText)
		}
		next, ok := s.NextAttempt(n, c.Now())
		if gotNext := map[bool]string{true: next.UTC().Format(time.RFC3339), false: "none"}[ok]; gotNext != w.next {
			t.Errorf("NextAttempt(%d) = %s, want %s", n, gotNext, w.next)
		}
	}

	remote := "r-1"
	if err := s.SaveLink(ctx, store.Link{ProviderID: p.ID, Kind: object.User, ObjectID: u.ID, RemoteID: &remote, PayloadHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if got := escrowOf(linkOf(t, s, p.ID, object.User, u.ID)); got != `attempts 0, next none, error ""` {
		t.Errorf("after a successful write: %s", got)
	}
	// Counting starts again at the first delay.
	if err := s.SetLinkError(ctx, p.ID, object.User, u.ID, "PATCH /Users/{id} answered 400 (mutability)"); err != nil {
		t.Fatal(err)
	}
	if got, want := escrowOf(linkOf(t, s, p.ID, object.User, u.ID)),
		fmt.Sprintf("attempts 1, next %s, error %q", c.Now().Add(time.Minute).Format(time.RFC3339), "PATCH /Users/{id} answered 400 (mutability)"); got != want {
		t.Errorf("failing again after a success: %s\nwant %s", got, want)
	}
	// A deprovisioning clears it too.
	if err := s.MarkDeprovisioned(ctx, p.ID, object.User, u.ID, "h2", nil, 0); err != nil {
		t.Fatal(err)
	}
	if got := escrowOf(linkOf(t, s, p.ID, object.User, u.ID)); got != `attempts 0, next none, error ""` {
		t.Errorf("after a deprovisioning: %s", got)
	}

	// The default schedule, and none at all.
	s.RetryDelays = nil
	if next, ok := s.NextAttempt(3, start); !ok || !next.Equal(start.Add(time.Hour)) {
		t.Errorf("default NextAttempt(3) = %v, %v", next, ok)
	}
	if _, ok := s.NextAttempt(4, start); ok {
		t.Errorf("default schedule retries a 4th attempt")
	}
	s.RetryDelays = []time.Duration{}
	g := createGroup(t, s, "staff", nil)
	if err := s.SetLinkError(ctx, p.ID, object.Group, g.ID, "POST /Groups answered 400"); err != nil {
		t.Fatal(err)
	}
	if got := escrowOf(linkOf(t, s, p.ID, object.Group, g.ID)); got != `attempts 1, next none, error "POST /Groups answered 400"` {
		t.Errorf("without escrow delays: %s", got)
	}
}

// TestClaimDueRetries: a claim returns the due links of enabled, unquarantined providers,
// earliest first, at most the limit, and moves each one's next attempt on by its next
// delay; a release makes a claimed link due again unless it was written since.
func TestClaimDueRetries(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	c := newClock()
	s.Now = c.Now
	s.RetryDelays = []time.Duration{time.Minute, 10 * time.Minute}
	p := createProvider(t, s, provider("claims"))
	off := provider("claims-off")
	off.Enabled = false
	disabled := createProvider(t, s, off)
	sick := createProvider(t, s, provider("claims-sick"))
	users := make([]store.User, 4)
	for i := range users {
		users[i] = createUser(t, s, store.User{Username: fmt.Sprintf("claim-%d", i)})
	}
	fail := func(providerID, id string) {
		t.Helper()
		if err := s.SetLinkError(ctx, providerID, object.User, id, "POST /Users answered 400"); err != nil {
			t.Fatal(err)
		}
	}
	fail(p.ID, users[1].ID) // due first
	c.Advance(time.Second)
	fail(p.ID, users[0].ID)
	fail(p.ID, users[2].ID)
	fail(p.ID, users[2].ID) // its second attempt: due 10 minutes later
	fail(disabled.ID, users[0].ID)
	fail(sick.ID, users[0].ID)
	failures := make([]string, store.QuarantineMinOutcomes)
	for i := range failures {
		failures[i] = "POST /Users answered 400"
	}
	if q, err := s.RecordWriteOutcomes(ctx, sick.ID, 0, failures); err != nil || q.Change != store.QuarantineEntered {
		t.Fatalf("quarantining %s: %+v, %v", sick.Name, q, err)
	}

	claim := func(limit int) []string {
		t.Helper()
		got, err := s.ClaimDueRetries(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range got {
			out = append(out, fmt.Sprintf("%s %s %s attempts %d", r.Provider, r.Kind, r.ObjectID, r.Attempts))
		}
		return out
	}
	if got := claim(10); len(got) != 0 {
		t.Fatalf("claimed before anything is due: %v", got)
	}
	c.Advance(time.Minute)
	if got, want := claim(1), []string{"claims user " + users[1].ID + " attempts 1"}; !slices.Equal(got, want) {
		t.Fatalf("first claim = %v, want %v", got, want)
	}
	if got, want := claim(10), []string{"claims user " + users[0].ID + " attempts 1"}; !slices.Equal(got, want) {
		t.Fatalf("second claim = %v, want %v (not the disabled, quarantined or not yet due)", got, want)
	}
	if got := claim(10); len(got) != 0 {
		t.Fatalf("claimed twice: %v", got)
	}
	// A claim moves the next attempt on by the next delay: ten minutes after the claim.
	if got, want := escrowOf(linkOf(t, s, p.ID, object.User, users[0].ID)),
		fmt.Sprintf("attempts 1, next %s, error %q", c.Now().Add(10*time.Minute).Format(time.RFC3339), "POST /Users answered 400"); got != want {
		t.Fatalf("claimed link: %s\nwant %s", got, want)
	}
	// Released, it is due again; written since, it is left as written.
	if err := s.ReleaseRetry(ctx, store.DueRetry{Provider: "claims", Kind: object.User, ObjectID: users[0].ID, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	fail(p.ID, users[1].ID)
	if err := s.ReleaseRetry(ctx, store.DueRetry{Provider: "claims", Kind: object.User, ObjectID: users[1].ID, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if got, want := claim(10), []string{"claims user " + users[0].ID + " attempts 1"}; !slices.Equal(got, want) {
		t.Fatalf("claim after release = %v, want %v", got, want)
	}
	// Past the last delay, a claim leaves the link to full syncs.
	c.Advance(10 * time.Minute)
	got := claim(10)
	if len(got) == 3 {
		slices.Sort(got[1:]) // due at the same instant
	}
	if want := []string{
		"claims user " + users[2].ID + " attempts 2",
		min("claims user "+users[0].ID+" attempts 1", "claims user "+users[1].ID+" attempts 2"),
		max("claims user "+users[0].ID+" attempts 1", "claims user "+users[1].ID+" attempts 2"),
	}; !slices.Equal(got, want) {
		t.Fatalf("claim after ten minutes = %v, want %v", got, want)
	}
	if got, want := escrowOf(linkOf(t, s, p.ID, object.User, users[2].ID)), `attempts 2, next none, error "POST /Users answered 400"`; got != want {
		t.Fatalf("claimed past the schedule: %s, want %s", got, want)
	}
}

// TestTwoClaimersNeverGetTheSameLink: two claimers (each statement on a connection of its own), claiming
// small batches at once until nothing is due, get every due link exactly once together.
func TestTwoClaimersNeverGetTheSameLink(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("race"))
	const n = 300
	ids := make([]string, n)
	for i := range ids {
		ids[i] = createUser(t, s, store.User{Username: fmt.Sprintf("race-%03d", i)}).ID
	}
	for _, id := range ids {
		if err := s.SetLinkError(ctx, p.ID, object.User, id, "POST /Users answered 400"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE sync_links SET next_attempt_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	other := store.New(s.DB()) // the same database through another Store
	claimers := []*store.Store{s, other}
	got := make([][]string, len(claimers))
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(claimers))
	for i, cl := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				due, err := cl.ClaimDueRetries(ctx, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(due) == 0 {
					return
				}
				for _, r := range due {
					got[i] = append(got[i], r.ObjectID)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := append(slices.Clone(got[0]), got[1]...)
	slices.Sort(all)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("the claimers got %d and %d links, %d together with duplicates or gaps; want each of %d once",
			len(got[0]), len(got[1]), len(slices.Compact(all)), n)
	}
	if len(got[0]) == 0 || len(got[1]) == 0 {
		t.Logf("one claimer got every link (%d, %d): no overlap was possible this run", len(got[0]), len(got[1]))
	}
}
