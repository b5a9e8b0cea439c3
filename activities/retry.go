package activities

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"
)

// each runs fn for every object, at most WriteConcurrency at once, in passes. fn records
// object errors itself and returns nil for them.
//
// A transient failure of the target (scim.IsRetryable: a timeout, a network error, 408,
// 429, a 5xx but 501 and 505) fails only its object for the pass; the others go on. A 429,
// or maxUnavailableInARow transient failures in a row (the target may be down), stop the
// pass from starting more requests; those in flight finish. The objects that failed
// transiently are tried again in another pass, after Retry-After or a delay that doubles
// with every pass that finished nothing, and with their links read again (a create that
// timed out may have gone through: its retry looks it up first). When maxIdlePasses passes in a row finish nothing, or the target asks
// to wait longer than maxPassDelay, the last transient error is returned and Temporal
// retries the activity with its backoff. So a flaky target costs a batch seconds, not an
// activity attempt per fault, whose backoff grows with every attempt and would soon stall
// the batch for minutes. Any other error (a provider error such as 401, a database error)
// cancels the pass and is returned at once.
func (w *writer) each(ctx context.Context, objs []MappedObject, fn func(context.Context, MappedObject) error) error {
	idle := 0
	for {
		retry, untried, finished, transient, err := w.pass(ctx, objs, fn)
		if err != nil || len(retry)+len(untried) == 0 {
			return err
		}
		if finished == 0 {
			idle++
		} else {
			idle = 0
		}
		delay := time.Second << idle
		var ae *temporal.ApplicationError
		if errors.As(transient, &ae) && ae.NextRetryDelay() > 0 {
			delay = ae.NextRetryDelay()
		}
		if idle >= maxIdlePasses || delay > maxPassDelay {
			return transient
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		// Only the objects whose requests went out may have changed at the target.
		if err := w.reloadLinks(ctx, retry); err != nil {
			return err
		}
		objs = append(retry, untried...)
	}
}

// pass is one pass of each: it returns the objects to try again (those it tried, and those
// it stopped before trying), how many objects it finished and the last transient error, or
// the error that stopped the pass.
func (w *writer) pass(ctx context.Context, objs []MappedObject, fn func(context.Context, MappedObject) error) (retry, untried []MappedObject, finished int, transient error, err error) {
	w.resetListing()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, w.a.concurrency())
	var wg sync.WaitGroup
	var mu sync.Mutex
	inARow, stopped := 0, false
	for i, o := range objs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		mu.Lock()
		halt := stopped || ctx.Err() != nil
		if halt {
			untried = append(untried, objs[i:]...)
		}
		mu.Unlock()
		if halt {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ferr := fn(w.objectCtx(ctx, o.ID), o)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ferr == nil:
				finished++
				inARow = 0
			case ctx.Err() != nil:
				retry = append(retry, o) // canceled: the error that stopped the pass decides
			case isTransient(ferr):
				retry = append(retry, o)
				transient = ferr
				if inARow++; inARow >= maxUnavailableInARow || isRateLimited(ferr) {
					stopped = true
				}
			case err == nil:
				err = ferr
				cancel()
			}
		}()
	}
	wg.Wait()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return retry, untried, finished, transient, err
}

// reloadLinks reads the links of objs again, before a pass retries them.
func (w *writer) reloadLinks(ctx context.Context, objs []MappedObject) error {
	links, err := w.a.Store.Links(ctx, w.t.provider.ID, w.kind, objectIDs(objs))
	if err != nil {
		return err
	}
	for _, o := range objs {
		if l, ok := links[o.ID]; ok {
			w.links[o.ID] = l
		} else {
			delete(w.links, o.ID)
		}
	}
	return nil
}
