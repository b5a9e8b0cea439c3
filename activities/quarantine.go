package activities

import (
	"context"
	"time"

	"github.com/scimsync/scimsync/store"
)

// quarantineWriteTimeout bounds recording a write call's outcomes: it happens once per
// WriteObjects, after its writes.
const quarantineWriteTimeout = 5 * time.Second

// recordOutcomes records the outcomes of a write call for the provider's quarantine
// (store/quarantine.go): the objects written and the errors of those that failed. It is
// the quarantine's bookkeeping, not the write's: a failure to record is logged and the
// write's result stands (the next call records again).
func (w *writer) recordOutcomes(ctx context.Context) {
	if w.dry {
		return
	}
	w.mu.Lock()
	succeeded := w.res.Created + w.res.Updated + w.res.Repaired
	failures := make([]string, len(w.res.Failed))
	for i, f := range w.res.Failed {
		failures[i] = f.Error
	}
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quarantineWriteTimeout)
	defer cancel()
	q, err := w.a.Store.RecordWriteOutcomes(ctx, w.t.provider.ID, succeeded, failures)
	log := logger(ctx)
	switch {
	case err != nil:
		log.Warn("write outcomes not recorded for the quarantine", "provider", w.t.provider.Name, "error", err)
	case q.Change == store.QuarantineEntered:
		log.Warn("provider quarantined: most of its writes fail; escrow retries and changes wait for its full syncs",
			"provider", w.t.provider.Name, "error", q.Error)
	case q.Change == store.QuarantineLeft:
		log.Info("provider out of quarantine: a write call succeeded", "provider", w.t.provider.Name)
	}
}
