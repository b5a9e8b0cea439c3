package activities

import (
	"context"

	"github.com/scimsync/scimsync/scim"
)

// A write call's record of each object (WriteResult.Objects): what it did and the SCIM
// requests it sent for it. Requests are attributed through the context each object's work
// runs under (scim.WithRequestObserver); operations of a Bulk request are recorded from
// its results, one per object.

// objectCtx returns ctx with the requests sent under it recorded for object id.
func (w *writer) objectCtx(ctx context.Context, id string) context.Context {
	return scim.WithRequestObserver(ctx, func(info scim.RequestInfo) {
		w.sent(id, SentRequest{Method: info.Method, Path: info.Path, Status: info.Status, DryRun: info.DryRun})
	})
}

// sent records a request sent for object id.
func (w *writer) sent(id string, r SentRequest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := w.recordOf(id)
	rec.Requests = append(rec.Requests, r)
}

// sentBulk records, for each object of a Bulk call, its operation and the status it got.
func (w *writer) sentBulk(ids []string, ops []scim.BulkOperation, results []scim.BulkResult) {
	for i, r := range results {
		if r.Status == 0 && r.Err != nil {
			continue // not attempted: nothing reached the target for it
		}
		path := "/" + string(ops[i].Kind)
		if ops[i].ID != "" {
			path += "/" + ops[i].ID
		}
		w.sent(ids[i], SentRequest{Method: ops[i].Method, Path: path, Status: r.Status, Bulk: true, DryRun: w.dry})
	}
}

// acted records what was done to object id; the caller holds w.mu.
func (w *writer) acted(id, action string) { w.recordOf(id).Action = action }

// actedLocked is acted for callers that do not hold w.mu.
func (w *writer) actedLocked(id, action string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acted(id, action)
}

// recordOf returns the record of object id, made when missing; the caller holds w.mu.
func (w *writer) recordOf(id string) *ObjectRecord {
	if w.records == nil {
		w.records = map[string]*ObjectRecord{}
	}
	rec, ok := w.records[id]
	if !ok {
		rec = &ObjectRecord{}
		w.records[id] = rec
	}
	return rec
}

// objectRecords returns the records for the result: those of objects acted on. An object
// whose requests were sent but whose outcome the call does not know (a transient failure
// that ended the call) is left out, as the call's result is then lost anyway. The caller
// holds w.mu.
func (w *writer) objectRecords() map[string]ObjectRecord {
	out := make(map[string]ObjectRecord, len(w.records))
	for id, rec := range w.records {
		if rec.Action != "" {
			out[id] = *rec
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
