package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/scimsync/scimsync/scim"
)

// Target health: whether a provider's target fails every request now (no answer, 408,
// 5xx). Syncs ride such an outage out by retrying without limit; what the operator needs
// is to see it, in starter status, as "waiting for the target since ...". The first failure
// a process sees is recorded at once, later ones at most every healthFlushEvery, and the
// first answer after them clears the record.

// healthFlushEvery bounds how often one process records the failures of one target.
const healthFlushEvery = 5 * time.Second

// healthWriteTimeout bounds a record's write: it happens in the request path.
const healthWriteTimeout = 2 * time.Second

type targetHealth struct {
	mu sync.Mutex
	m  map[string]*providerHealth // provider id →
}

type providerHealth struct {
	recorded  bool // this process recorded the target failing and has not cleared it
	pending   int  // failures seen and not recorded yet
	lastError string
	flushedAt time.Time
}

// observeHealth follows one finished request to the provider's target.
func (a *Activities) observeHealth(providerID string, info scim.RequestInfo) {
	failed, answered := requestFailed(info)
	if !failed && !answered {
		return
	}
	h := &a.health
	h.mu.Lock()
	if h.m == nil {
		h.m = map[string]*providerHealth{}
	}
	ph := h.m[providerID]
	if ph == nil {
		ph = &providerHealth{}
		h.m[providerID] = ph
	}
	now := time.Now()
	var write func(context.Context) error
	switch {
	case failed:
		ph.pending++
		ph.lastError = failureText(info)
		if ph.recorded && now.Sub(ph.flushedAt) < healthFlushEvery {
			break
		}
		n, msg := ph.pending, ph.lastError
		ph.pending, ph.recorded, ph.flushedAt = 0, true, now
		write = func(ctx context.Context) error { return a.Store.RecordTargetFailures(ctx, providerID, n, msg) }
	case ph.recorded:
		ph.recorded, ph.pending = false, 0
		write = func(ctx context.Context) error { return a.Store.ClearTargetFailing(ctx, providerID) }
	}
	h.mu.Unlock()
	if write == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthWriteTimeout)
	defer cancel()
	if err := write(ctx); err != nil {
		// Status only: the sync itself goes on, and the next failure or answer writes again.
		slog.Debug("target health not recorded", "error", err)
		h.mu.Lock()
		ph.recorded = !failed
		h.mu.Unlock()
	}
}

// requestFailed sorts a request: failed (no answer, 408, or a 5xx other than 501 and 505,
// which a target answers on purpose), answered (any other status but 429, which is the
// pacer's), or neither (canceled by us, dry run, throttled).
func requestFailed(info scim.RequestInfo) (failed, answered bool) {
	switch {
	case info.DryRun, info.Status == 429:
		return false, false
	case info.Status == 0:
		if info.Err == nil || errors.Is(info.Err, context.Canceled) || errors.Is(info.Err, scim.ErrCanceled) {
			return false, false
		}
		return true, false
	case info.Status == 408, info.Status >= 500 && info.Status != 501 && info.Status != 505:
		return true, false
	}
	return false, true
}

// failureText describes a failure without the request's URL, whose query may hold a
// filter on a userName.
func failureText(info scim.RequestInfo) string {
	if info.Status != 0 {
		return fmt.Sprintf("%s %s answered %d", info.Method, info.Path, info.Status)
	}
	cause := "no answer"
	var ue *url.Error
	if errors.As(info.Err, &ue) && ue.Err != nil {
		cause = "no answer: " + ue.Err.Error()
	} else if errors.Is(info.Err, context.DeadlineExceeded) {
		cause = "no answer within the request timeout"
	}
	if len(cause) > 200 {
		cause = cause[:200]
	}
	return fmt.Sprintf("%s %s: %s", info.Method, info.Path, cause)
}
