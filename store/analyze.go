package store

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// sync_links grows fastest in the very syncs that read it hardest: an initial full sync
// (or a new provider's first) writes a link per object while every batch looks links up
// by object id. PostgreSQL plans those lookups from the table's statistics; until they are
// gathered again (autovacuum analyzes after some minutes, or never when it is off) they
// describe the table as it was, and the planner, believing a provider and kind match a
// row or two, scans all of the provider's links for every lookup. Measured: 25–200 ms per
// lookup at 50,000 links, most of PostgreSQL's time in a full sync of 50,000 users.
//
// So the store analyzes sync_links itself as it grows: after its first analyzeFirst link
// writes and then each time the writes double, in the background. Each ANALYZE samples a
// bounded number of rows (~0.1 s here at 100,000 links), and an unchanged directory writes
// no links, so a quiet installation never analyzes. A role that may not analyze the table
// (not its owner) makes it stop trying.

// analyzeFirst is how many link writes the first ANALYZE waits for.
const analyzeFirst = 1000

// linkGrowth counts link writes and schedules the ANALYZEs.
type linkGrowth struct {
	writes    atomic.Int64
	next      atomic.Int64 // writes at which the next ANALYZE starts; 0: analyzeFirst
	analyzing atomic.Bool
	disabled  atomic.Bool
}

// linksWritten notes n more link writes and starts an ANALYZE of sync_links when due.
func (s *Store) linksWritten(n int) {
	g := &s.growth
	if n <= 0 || g.disabled.Load() {
		return
	}
	total := g.writes.Add(int64(n))
	next := g.next.Load()
	if next == 0 {
		next = analyzeFirst
	}
	if total < next || !g.analyzing.CompareAndSwap(false, true) {
		return
	}
	g.next.Store(2 * total)
	go func() {
		defer g.analyzing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := s.db.ExecContext(ctx, `ANALYZE sync_links`)
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code.Name() == "insufficient_privilege" {
			g.disabled.Store(true) // not the table's owner: statistics are autovacuum's business
		}
	}()
}
