package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

// DefaultEscrowInterval is how often the escrow looks for due retries.
const DefaultEscrowInterval = 15 * time.Second

// escrowBatch is how many due retries one claim takes; a pass claims until none is due.
const escrowBatch = 100

// EscrowReason is the reason of the signals the escrow sends, as ObjectSync histories show.
const EscrowReason = "retry"

// Escrow retries objects whose write failed, on its own and with a growing delay
// (store/escrow.go): every Interval it claims the links whose next attempt is due and
// signals their ObjectSync with reason "retry". Every worker runs one; a claim is taken
// under FOR UPDATE SKIP LOCKED and moves the link's next attempt on in the same
// statement, so two workers never retry one object at once, and a worker that dies
// between a claim and its signal leaves the link to be claimed again at its next delay.
// Links of disabled or quarantined providers are not claimed: a quarantined provider's
// objects wait for its full syncs.
type Escrow struct {
	Store    *store.Store // required
	Signaler Signaler     // required: its Installation names whose ObjectSyncs are signalled
	Interval time.Duration
	Logger   *slog.Logger

	passes, retries, failures atomic.Int64
}

func (e *Escrow) interval() time.Duration {
	if e.Interval > 0 {
		return e.Interval
	}
	return DefaultEscrowInterval
}

func (e *Escrow) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// Run runs a pass every Interval until ctx is done.
func (e *Escrow) Run(ctx context.Context) error {
	if e.Store == nil || e.Signaler.Client == nil {
		return errors.New("worker: the escrow needs a Store and a Signaler")
	}
	tick := time.NewTicker(e.interval())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := e.Pass(ctx); err != nil && ctx.Err() == nil {
			e.logger().Warn("escrow: pass failed; retrying", "error", err, "retry_in", e.interval())
		}
	}
}

// Pass signals every retry due now and returns how the claims went. A retry that cannot
// be signalled is released, due again at the next pass.
func (e *Escrow) Pass(ctx context.Context) error {
	defer e.passes.Add(1)
	for {
		due, err := e.Store.ClaimDueRetries(ctx, escrowBatch)
		if err != nil {
			return err
		}
		names := e.names(ctx, due)
		var failed error
		for _, r := range due {
			err := e.Signaler.SignalObjectSync(ctx, r.Provider, r.Kind, r.ObjectID, names.Of(r.Kind, r.ObjectID), EscrowReason)
			if err == nil {
				e.retries.Add(1)
				e.logger().Debug("escrow: retry signalled", "provider", r.Provider, "kind", r.Kind, "id", r.ObjectID, "attempts", r.Attempts)
				continue
			}
			e.failures.Add(1)
			failed = err
			if rerr := e.Store.ReleaseRetry(context.WithoutCancel(ctx), r); rerr != nil {
				e.logger().Warn("escrow: a retry not signalled was not released; it comes at its next delay",
					"provider", r.Provider, "kind", r.Kind, "id", r.ObjectID, "error", rerr)
			}
		}
		if failed != nil {
			return failed // Temporal does not take signals now: the next pass tries again
		}
		if len(due) < escrowBatch {
			return nil
		}
	}
}

// Collectors are the escrow's metrics: passes, retries signalled, signals that failed.
func (e *Escrow) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("scimsync_escrow_passes_total", "Passes of this worker's escrow over the due retries.", &e.passes),
		counter("scimsync_escrow_retries_total", "Objects in error whose ObjectSync this worker's escrow signalled (reason retry).", &e.retries),
		counter("scimsync_escrow_signal_failures_total", "Escrow retries Temporal did not take; released for the next pass.", &e.failures),
	}
}

// names reads the names of the due objects for their workflows' summaries, in one query; a
// failure only leaves the summaries with ids.
func (e *Escrow) names(ctx context.Context, due []store.DueRetry) store.ObjectNames {
	var users, groups []string
	for _, r := range due {
		if r.Kind == object.Group {
			groups = append(groups, r.ObjectID)
		} else {
			users = append(users, r.ObjectID)
		}
	}
	names, err := e.Store.NamesByID(ctx, users, groups)
	if err != nil {
		e.logger().Warn("escrow: names for the summaries cannot be read; the syncs are summarised by id", "error", err)
	}
	return names
}
