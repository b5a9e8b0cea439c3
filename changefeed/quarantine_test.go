package changefeed_test

import (
	"context"
	"testing"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestQuarantinedProviderGetsNoSignals: while a provider is quarantined the relay sends
// its changes to no workflow (its full syncs write them) and deletes the rows once the
// other provider's signals are accepted; once the quarantine ends its changes flow again.
func TestQuarantinedProviderGetsNoSignals(t *testing.T) {
	e := newEnv(t)
	e.provider("healthy", true, nil)
	sick := e.provider("sick", true, nil)
	failures := make([]string, store.QuarantineMinOutcomes)
	for i := range failures {
		failures[i] = "POST /Users answered 400"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if q, err := e.store.RecordWriteOutcomes(ctx, sick.ID, 0, failures); err != nil || q.Change != store.QuarantineEntered {
		t.Fatalf("quarantining: %+v, %v", q, err)
	}
	rec := newRecorder(e.c)
	r := e.relay(rec)
	r.PollInterval = 100 * time.Millisecond
	e.start(r)

	var user store.User
	e.tx(func(ctx context.Context, tx *store.Tx) (err error) {
		user, err = tx.CreateUser(ctx, store.User{Username: "quarantine.test", IsActive: true})
		return err
	})
	e.waitReasons(workflows.ObjectSyncID(e.inst, "healthy", object.User, user.ID), "user insert")
	e.waitOutboxEmpty()
	e.assertNoWorkflow(workflows.ObjectSyncID(e.inst, "sick", object.User, user.ID))

	if q, err := e.store.RecordWriteOutcomes(ctx, sick.ID, 1, nil); err != nil || q.Change != store.QuarantineLeft {
		t.Fatalf("ending the quarantine: %+v, %v", q, err)
	}
	e.tx(func(ctx context.Context, tx *store.Tx) error {
		user.Name = "Changed"
		_, err := tx.UpdateUser(ctx, user)
		return err
	})
	e.waitReasons(workflows.ObjectSyncID(e.inst, "sick", object.User, user.ID), "user update")
	e.waitReasons(workflows.ObjectSyncID(e.inst, "healthy", object.User, user.ID), "user insert", "user update")
	calls := rec.snapshot()
	e.checkCalls(calls, workflows.ObjectSyncID(e.inst, "sick", object.User, user.ID), 1)
	e.checkCalls(calls, workflows.ObjectSyncID(e.inst, "healthy", object.User, user.ID), 2)
}
