package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// outboxEnv is a store of the test's own with parked changes, and a starter on it. Its
// Temporal client is never dialled: without providers, status asks Temporal nothing.
type outboxEnv struct {
	t     *testing.T
	ctx   context.Context
	store *store.Store
	deps  *Deps
}

func newOutboxEnv(t *testing.T) *outboxEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	s, err := store.Open(ctx, testenv.NewDatabase(t, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &outboxEnv{t: t, ctx: ctx, store: s, deps: &Deps{Getenv: func(string) string { return "" }, Store: s, Temporal: c}}
}

func (e *outboxEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code = Main(e.ctx, e.deps, args, &out, &errOut)
	e.t.Logf("starter %s → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// park writes a group and n users with a membership of the first, and relays them
// refusing the users at even positions and the membership for provider okta, the others
// accepted. It returns the parked changes: the membership first, then the users by id.
func (e *outboxEnv) park(n int) []store.ParkedChange {
	e.t.Helper()
	err := e.store.InTx(e.ctx, func(tx *store.Tx) error {
		g, err := tx.CreateGroup(e.ctx, store.Group{Name: "outbox-staff"})
		if err != nil {
			return err
		}
		for i := range n {
			u, err := tx.CreateUser(e.ctx, store.User{Username: fmt.Sprintf("outbox.user%d", i), Email: fmt.Sprintf("outbox%d@example.test", i)})
			if err != nil {
				return err
			}
			if i == 0 {
				if err := tx.AddMember(e.ctx, g.ID, u.ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	_, _, err = e.store.RelayChanges(e.ctx, 100, func(_ context.Context, cs []store.Change) ([]store.Refusal, error) {
		var rs []store.Refusal
		users := 0
		for _, c := range cs {
			refuse := c.Kind == store.ChangeMembership
			if c.Kind == store.ChangeUser {
				refuse = users%2 == 0
				users++
			}
			if refuse {
				rs = append(rs, store.Refusal{ChangeID: c.ID, Provider: "okta",
					Error: "signal scim/okta/user/" + c.ObjectID + ": Blob data size exceeds limit. (InvalidArgument)"})
			}
		}
		return rs, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ps, err := e.store.ParkedChanges(e.ctx, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	slices.SortFunc(ps, func(a, b store.ParkedChange) int {
		am, bm := a.Kind == store.ChangeMembership, b.Kind == store.ChangeMembership
		if am != bm {
			if am {
				return -1
			}
			return 1
		}
		return int(a.ID - b.ID)
	})
	if len(ps) == 0 || ps[0].Kind != store.ChangeMembership {
		e.t.Fatalf("parked %+v, want the membership among them", ps)
	}
	return ps
}

func (e *outboxEnv) parkedIDs() []int64 {
	e.t.Helper()
	var ids []int64
	if err := e.store.DB().SelectContext(e.ctx, &ids, `SELECT id FROM sync_changes_parked ORDER BY id`); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func (e *outboxEnv) outboxIDs() []int64 {
	e.t.Helper()
	var ids []int64
	if err := e.store.DB().SelectContext(e.ctx, &ids, `SELECT id FROM sync_changes ORDER BY id`); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func TestStatusShowsParkedChangesWithoutPersonalData(t *testing.T) {
	e := newOutboxEnv(t)
	code, out, _ := e.run("status")
	if code != ExitOK || !strings.Contains(out, "outbox: 0 changes waiting for the relay\nparked: none\n") {
		t.Fatalf("status without parked changes: exit %d\n%s", code, out)
	}

	ps := e.park(5) // users 0, 2, 4 and the membership of user 0
	if len(ps) != 4 {
		t.Fatalf("parked %d changes, want 4", len(ps))
	}
	// The longest parked first: the membership, then user 4, user 2, user 0.
	order := []store.ParkedChange{ps[0], ps[3], ps[2], ps[1]}
	for i, p := range order {
		if _, err := e.store.DB().ExecContext(e.ctx, `UPDATE sync_changes_parked SET parked_at = now() - $2::interval WHERE id = $1`,
			p.ID, fmt.Sprintf("%d hours", 10-i)); err != nil {
			t.Fatal(err)
		}
	}
	var parkedAt []time.Time // as the database has them now
	if err := e.store.DB().SelectContext(e.ctx, &parkedAt, `SELECT parked_at FROM sync_changes_parked WHERE id = ANY($1) ORDER BY array_position($1, id)`,
		pq.Array([]int64{order[0].ID, order[1].ID, order[2].ID, order[3].ID})); err != nil || len(parkedAt) != 4 {
		t.Fatalf("parked_at: %v, %v", parkedAt, err)
	}
	for i := range order {
		order[i].ParkedAt = parkedAt[i]
	}
	code, out, _ = e.run("status", "--parked", "3")
	if code != ExitOK {
		t.Fatalf("status: exit %d", code)
	}
	if !strings.Contains(out, "parked: 4 changes Temporal refused, the longest parked 10h0m0s ago (starter outbox retry|drop ID|--all)\n") {
		t.Errorf("status lacks the parked count and the longest parked:\n%s", out)
	}
	for _, p := range order[:3] {
		obj := p.ObjectID
		if p.RelatedID != nil {
			obj += "/" + *p.RelatedID
		}
		line := fmt.Sprintf("  change %d: %s insert %s, provider okta, 1 attempt, parked %s (", p.ID, p.Kind, obj, p.ParkedAt.UTC().Format(time.RFC3339))
		if !strings.Contains(out, line) || !strings.Contains(out, p.Error+"\n") {
			t.Errorf("status lacks %q with its error:\n%s", line, out)
		}
	}
	if strings.Contains(out, fmt.Sprintf("change %d:", order[3].ID)) || !strings.Contains(out, "  … and 1 more (starter outbox list)\n") {
		t.Errorf("status shows more than --parked 3:\n%s", out)
	}
	for _, personal := range []string{"outbox.user", "@example.test", "outbox-staff"} {
		if strings.Contains(out, personal) {
			t.Errorf("status shows personal data %q:\n%s", personal, out)
		}
	}

	code, out, _ = e.run("status", "--json")
	var res statusResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != ExitOK {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	var got []int64
	for _, v := range res.Parked {
		got = append(got, v.ID)
	}
	if res.ParkedCount != 4 || res.ParkedOldest != "10h0m0s" ||
		!slices.Equal(got, []int64{order[0].ID, order[1].ID, order[2].ID, order[3].ID}) {
		t.Errorf("status --json: parked %d, oldest %s, ids %v", res.ParkedCount, res.ParkedOldest, got)
	}
	if m := res.Parked[0]; m.Kind != "membership" || m.RelatedID != *order[0].RelatedID || m.Provider != "okta" || m.Attempts != 1 {
		t.Errorf("status --json: first parked = %+v", m)
	}
}

func TestOutboxRetryAndDropMoveExactlyTheNamedChanges(t *testing.T) {
	e := newOutboxEnv(t)
	ps := e.park(5)
	ids := []int64{ps[0].ID, ps[1].ID, ps[2].ID, ps[3].ID}
	slices.Sort(ids)
	if !slices.Equal(e.parkedIDs(), ids) || len(e.outboxIDs()) != 0 {
		t.Fatalf("parked %v, outbox %v; want %v parked, an empty outbox", e.parkedIDs(), e.outboxIDs(), ids)
	}

	code, out, _ := e.run("outbox", "list")
	if code != ExitOK || !strings.Contains(out, "4 changes parked: Temporal refused them (starter outbox retry|drop)\n") ||
		!strings.Contains(out, fmt.Sprintf("%d   membership insert  %s/%s  okta      1         ", ps[0].ID, ps[0].ObjectID, *ps[0].RelatedID)) {
		t.Errorf("outbox list: exit %d\n%s", code, out)
	}

	// Usage errors change nothing.
	for _, args := range [][]string{{"outbox"}, {"outbox", "drop"}, {"outbox", "drop", "7", "--all"}, {"outbox", "retry", "x"},
		{"outbox", "retry", "1", "--all"}, {"outbox", "list", "1"}, {"outbox", "purge"}} {
		if code, _, _ := e.run(args...); code != ExitUsage {
			t.Errorf("starter %s: exit %d, want %d", strings.Join(args, " "), code, ExitUsage)
		}
	}
	if !slices.Equal(e.parkedIDs(), ids) || len(e.outboxIDs()) != 0 {
		t.Fatalf("after usage errors: parked %v, outbox %v", e.parkedIDs(), e.outboxIDs())
	}

	// retry ID: that change only, back in the outbox; an id not parked is reported.
	code, out, errOut := e.run("outbox", "retry", fmt.Sprint(ids[1]), "999999")
	if code != ExitFailure || !strings.Contains(out, fmt.Sprintf("put 1 change (%d) back in the outbox", ids[1])) ||
		!strings.Contains(errOut, "not parked (see starter outbox list): 999999") {
		t.Errorf("outbox retry ID: exit %d\n%s%s", code, out, errOut)
	}
	if !slices.Equal(e.parkedIDs(), []int64{ids[0], ids[2], ids[3]}) || !slices.Equal(e.outboxIDs(), []int64{ids[1]}) {
		t.Fatalf("after retry %d: parked %v, outbox %v", ids[1], e.parkedIDs(), e.outboxIDs())
	}

	// drop ID: gone from both tables.
	if code, out, _ := e.run("outbox", "drop", fmt.Sprint(ids[2])); code != ExitOK || !strings.Contains(out, fmt.Sprintf("dropped 1 change (%d)", ids[2])) {
		t.Errorf("outbox drop ID: exit %d\n%s", code, out)
	}
	if !slices.Equal(e.parkedIDs(), []int64{ids[0], ids[3]}) || !slices.Equal(e.outboxIDs(), []int64{ids[1]}) {
		t.Fatalf("after drop %d: parked %v, outbox %v", ids[2], e.parkedIDs(), e.outboxIDs())
	}

	// retry (no ids: all), then drop --all with nothing left.
	code, out, _ = e.run("outbox", "retry", "--json")
	var res struct{ Retried, NotParked []int64 }
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != ExitOK || !slices.Equal(res.Retried, []int64{ids[0], ids[3]}) || len(res.NotParked) != 0 {
		t.Errorf("outbox retry --json: exit %d, %v, %+v", code, err, res)
	}
	if len(e.parkedIDs()) != 0 || !slices.Equal(e.outboxIDs(), []int64{ids[0], ids[1], ids[3]}) {
		t.Fatalf("after retry all: parked %v, outbox %v", e.parkedIDs(), e.outboxIDs())
	}
	if code, out, _ := e.run("outbox", "drop", "--all"); code != ExitOK || !strings.Contains(out, "outbox drop: no change is parked\n") {
		t.Errorf("outbox drop --all with nothing parked: exit %d\n%s", code, out)
	}
	if !slices.Equal(e.outboxIDs(), []int64{ids[0], ids[1], ids[3]}) {
		t.Fatalf("drop --all touched the outbox: %v", e.outboxIDs())
	}

	// drop --all drops every parked change and nothing else.
	if _, _, err := e.store.RelayChanges(e.ctx, 100, func(_ context.Context, cs []store.Change) ([]store.Refusal, error) {
		return []store.Refusal{{ChangeID: cs[0].ID, Provider: "okta", Error: "refused"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.parkedIDs(), []int64{ids[0]}) || len(e.outboxIDs()) != 0 {
		t.Fatalf("parked again: parked %v, outbox %v", e.parkedIDs(), e.outboxIDs())
	}
	if code, out, _ := e.run("outbox", "drop", "--all"); code != ExitOK || !strings.Contains(out, fmt.Sprintf("dropped 1 change (%d)", ids[0])) {
		t.Errorf("outbox drop --all: exit %d\n%s", code, out)
	}
	if len(e.parkedIDs()) != 0 || len(e.outboxIDs()) != 0 {
		t.Fatalf("after drop --all: parked %v, outbox %v", e.parkedIDs(), e.outboxIDs())
	}
	if code, out, _ := e.run("outbox", "list"); code != ExitOK || out != "no change is parked\n" {
		t.Errorf("outbox list with nothing parked: exit %d\n%s", code, out)
	}
}
