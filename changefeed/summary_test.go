package changefeed_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// summaryOf reads the summary Temporal stores for the execution, from the raw describe
// answer (ExecutionConfig.UserMetadata), "" when it has none.
func (e *env) summaryOf(id string) string {
	e.t.Helper()
	desc, err := e.c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		e.t.Fatal(err)
	}
	var s string
	if p := desc.GetExecutionConfig().GetUserMetadata().GetSummary(); p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
			e.t.Fatal(err)
		}
	}
	return s
}

// TestRelayedObjectSyncsAreSummarisedByName: an ObjectSync the relay starts has the
// provider, kind and the object's name (read once per batch) as its summary; a signal to
// the running execution keeps the summary of its start; an object deleted before its change
// is relayed is summarised by its id. Neither name reaches the logs.
func TestRelayedObjectSyncsAreSummarisedByName(t *testing.T) {
	e := newEnv(t)
	e.provider("on", true, nil)
	e.provider("also", true, nil)
	r := e.relay(newRecorder(e.c))
	r.PollInterval = time.Hour
	stop := e.start(r)

	var user, gone store.User
	var group store.Group
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		if user, err = tx.CreateUser(ctx, store.User{Username: "ada.lovelace", Email: "ada@example.test", IsActive: true}); err != nil {
			return err
		}
		if group, err = tx.CreateGroup(ctx, store.Group{Name: "analysts"}); err != nil {
			return err
		}
		if gone, err = tx.CreateUser(ctx, store.User{Username: "short.lived", IsActive: true}); err != nil {
			return err
		}
		if err := tx.AddMember(ctx, group.ID, user.ID); err != nil {
			return err
		}
		return tx.DeleteUser(ctx, gone.ID)
	})
	e.waitOutboxEmpty()
	for _, c := range []struct{ provider, kind, id, want string }{
		{"on", object.User, user.ID, "on · user · ada.lovelace"},
		{"also", object.User, user.ID, "also · user · ada.lovelace"},
		{"on", object.Group, group.ID, "on · group · analysts"},
		{"also", object.Group, group.ID, "also · group · analysts"},
		{"on", object.User, gone.ID, "on · user · " + gone.ID},
	} {
		id := workflows.ObjectSyncID(e.inst, c.provider, c.kind, c.id)
		e.waitReasons(id, map[string]string{user.ID: "user insert, membership insert", group.ID: "group insert, membership insert",
			gone.ID: "user insert, user delete"}[c.id])
		if got := e.summaryOf(id); got != c.want {
			t.Errorf("%s: summary %q, want %q", id, got, c.want)
		}
	}

	// Renamed while its ObjectSync runs: the signal reaches it, the summary stays.
	e.tx(func(ctx context.Context, tx *store.Tx) error {
		group.Name = "engine-analysts"
		_, err := tx.UpdateGroup(ctx, group)
		return err
	})
	groupSync := workflows.ObjectSyncID(e.inst, "on", object.Group, group.ID)
	e.waitReasons(groupSync, "group insert, membership insert", "group update")
	if got := e.summaryOf(groupSync); got != "on · group · analysts" {
		t.Errorf("summary after the rename %q, want the one of its start", got)
	}
	stop()
	assertLogsFree(t, e.logs.String(), "ada.lovelace", "ada@example.test", "analysts", "short.lived")
}

// TestRelayWithIDsOnlySummarisesByID: with SummaryIDsOnly (SCIMSYNC_SUMMARY_NAMES=false)
// the summary names the object by its id.
func TestRelayWithIDsOnlySummarisesByID(t *testing.T) {
	e := newEnv(t)
	e.provider("on", true, nil)
	r := e.relay(e.c)
	r.PollInterval = time.Hour
	r.SummaryIDsOnly = true
	e.start(r)
	var user store.User
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		user, err = tx.CreateUser(ctx, store.User{Username: "ada.lovelace", IsActive: true})
		return err
	})
	id := workflows.ObjectSyncID(e.inst, "on", object.User, user.ID)
	e.waitReasons(id, "user insert")
	if got, want := e.summaryOf(id), "on · user · "+user.ID; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestMeasureRelayWithSummaryNames measures what reading the names costs the relay: it
// writes 2,000 user changes at once (20 batches of 100, each a SignalWithStart that starts
// an ObjectSync) into a directory of 10,000 users and drains them, with the names read
// (one query per batch) and without (SummaryIDsOnly), three rounds each, alternating, and
// logs changes per second and the time of the names query. Only with MEASURE_RELAY=1:
//
//	MEASURE_RELAY=1 CI=true go test -count=1 -v -run TestMeasureRelayWithSummaryNames ./changefeed/
func TestMeasureRelayWithSummaryNames(t *testing.T) {
	if os.Getenv("MEASURE_RELAY") != "1" {
		t.Skip("set MEASURE_RELAY=1 to measure")
	}
	e := newEnv(t)
	e.provider("on", true, nil)
	ctx := context.Background()
	if _, err := e.store.DB().ExecContext(ctx, `INSERT INTO users (username, email, is_active)
		SELECT 'filler' || i || '@example.test', 'filler' || i || '@example.test', true FROM generate_series(1, 10000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DB().ExecContext(ctx, `DELETE FROM sync_changes`); err != nil { // the filler is no change to relay
		t.Fatal(err)
	}
	const changes = 2000
	took := map[bool][]time.Duration{}
	for round := range 6 {
		idsOnly := round%2 == 1
		var ids []string
		if err := e.store.DB().SelectContext(ctx, &ids, `INSERT INTO users (username, is_active)
			SELECT 'm' || $1::int || '-' || i || '@example.test', true FROM generate_series(1, $2::int) i RETURNING id`,
			round, changes); err != nil {
			t.Fatal(err)
		}
		r := e.relay(e.c)
		r.SummaryIDsOnly = idsOnly
		start := time.Now()
		if err := r.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		took[idsOnly] = append(took[idsOnly], time.Since(start))
		if st := r.Stats(); st.ChangesRelayed != changes || st.SignalsSent != changes {
			t.Fatalf("round %d: %+v, want %d changes and signals", round, st, changes)
		}
		want := "on · user · " + ids[0]
		if !idsOnly {
			want = fmt.Sprintf("on · user · m%d-1@example.test", round)
		}
		if got := e.summaryOf(workflows.ObjectSyncID(e.inst, "on", object.User, ids[0])); got != want {
			t.Errorf("round %d: summary %q, want %q", round, got, want)
		}
	}
	// The names query alone, for a batch of 100 of these ids.
	var batch []string
	if err := e.store.DB().SelectContext(ctx, &batch, `SELECT id FROM users ORDER BY random() LIMIT 100`); err != nil {
		t.Fatal(err)
	}
	const queries = 200
	start := time.Now()
	for range queries {
		if _, err := e.store.NamesByID(ctx, batch, nil); err != nil {
			t.Fatal(err)
		}
	}
	perQuery := time.Since(start) / queries
	for _, idsOnly := range []bool{false, true} {
		slices.Sort(took[idsOnly])
		med := took[idsOnly][1]
		t.Logf("ids only %v: %d changes in %v (median of 3; all %v): %.0f changes/s", idsOnly, changes,
			med.Round(time.Millisecond), took[idsOnly], float64(changes)/med.Seconds())
	}
	t.Logf("NamesByID of 100 users among 12,000+: %v a query (%d queries)", perQuery.Round(time.Microsecond), queries)
}
