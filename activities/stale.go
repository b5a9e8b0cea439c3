package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
)

// staleMargin widens "written since this write was scheduled" by the clock difference
// there may be between the Temporal server (which times the schedule) and the workers
// (which time the links).
const staleMargin = 2 * time.Minute

// remapStale maps again, from the directory as it is now, the objects of todo whose link
// another writer changed since this write was scheduled (so after the objects were
// mapped): what that writer wrote may be newer than these payloads. Without it, a batch
// whose write is retried after a Temporal outage (its first attempt's result lost) would
// put back the values it mapped before the outage, over the changes the per-object syncs
// wrote since. It runs under the objects' locks, so it reads what the next writer would.
// An object that is no longer in scope (or no longer exists) is not written: the syncs
// that remove it do that. It returns the objects to write and how many it dropped as
// written already or left out. Outside an activity (tests) it changes nothing.
func (a *Activities) remapStale(ctx context.Context, w *writer, todo []MappedObject) ([]MappedObject, int, error) {
	if !activity.IsActivity(ctx) || len(todo) == 0 {
		return todo, 0, nil
	}
	since := activity.GetInfo(ctx).ScheduledTime.Add(-staleMargin)
	var ids []string
	for _, o := range todo {
		if l, ok := w.links[o.ID]; ok && o.Repair == "" && l.PayloadHash != o.Hash && l.UpdatedAt.After(since) {
			ids = append(ids, o.ID)
		}
	}
	if len(ids) == 0 {
		return todo, 0, nil
	}
	p := w.t.provider
	programs, err := a.compiledMappings(ctx, p.ID, w.kind)
	if err != nil {
		return nil, 0, err
	}
	mp := mapping.Provider{Name: p.Name, CompatibilityMode: p.CompatibilityMode}
	var payloads map[string]mapping.Payloads
	if w.kind == object.Group {
		payloads, _, err = a.mapGroups(ctx, p, programs, mp, ids, true)
	} else {
		payloads, _, err = a.mapUsers(ctx, p, programs, mp, ids, true)
	}
	if err != nil {
		return nil, 0, err
	}
	again := make(map[string]bool, len(ids))
	for _, id := range ids {
		again[id] = true
	}
	out := todo[:0:0]
	dropped := 0
	for _, o := range todo {
		if !again[o.ID] {
			out = append(out, o)
			continue
		}
		mapped, ok := payloads[o.ID]
		if !ok { // out of scope, skipped or deleted since: not this write's to make
			dropped++
			w.actedLocked(o.ID, ActionSkipped)
			continue
		}
		payload := mapped.Always
		hash, err := mapping.Hash(payload)
		if err != nil {
			return nil, 0, nonRetryable(ErrTypeMapping, fmt.Errorf("%s %s: payload cannot be encoded: %w", w.kind, o.ID, err))
		}
		l := w.links[o.ID]
		live := l.Live()
		if live && l.PayloadHash == hash { // the other writer wrote what the directory holds
			dropped++
			w.actedLocked(o.ID, ActionUnchanged)
			if o.New {
				w.res.Linked = append(w.res.Linked, o.ID)
			}
			continue
		}
		o.Payload, o.OnCreate, o.Hash, o.New = payload, mapped.OnCreate, hash, o.New || !live
		out = append(out, o)
	}
	return out, dropped, nil
}
