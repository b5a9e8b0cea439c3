package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// WriteObjects creates or updates the mapped objects at the target, under the objects'
// locks so that a per-object sync and a full-sync batch never both create one object.
//
// It uses Bulk when the target supports it, else up to WriteConcurrency requests at once.
// Each object's outcome is recorded as soon as it is known, so a retried call skips what
// was written. Before a create, the payload is recorded on a link without remote id; a
// retry that finds such a link looks the object up at the target before posting again (by
// filter, else in a listing of the target), so a crash between a POST and its link never
// makes a duplicate; where the target can neither filter nor list, it is not posted again
// but fails, for the operator to decide. A 409 on create links the single existing match;
// a 404 on update looks the object up again or creates it.
//
// Errors that concern one object are recorded on its link and returned in Failed; the
// others continue. Errors that concern the target stop the call: provider errors
// (401/403/TLS) are not retried; outages and 429s are, after Retry-After.
func (a *Activities) WriteObjects(ctx context.Context, in WriteInput) (WriteResult, error) {
	var res WriteResult
	if len(in.Objects) == 0 {
		return res, nil
	}
	w, err := a.newWriter(ctx, in.Provider, in.Kind, objectIDs(in.Objects))
	if err != nil {
		return res, err
	}
	defer w.close()

	var todo []MappedObject
	for _, o := range in.Objects {
		l, ok := w.links[o.ID]
		if ok && l.Live() && l.PayloadHash == o.Hash && o.Repair == "" {
			// Written by an earlier attempt of this call, or by another writer since it was
			// mapped. Either may have linked it without anyone syncing its groups: a
			// worker killed before the attempt reported back, or a full-sync batch (whose
			// groups phase may be over). So a New object counts as linked here too.
			res.Unchanged++
			w.actedLocked(o.ID, ActionUnchanged)
			if o.New {
				res.Linked = append(res.Linked, o.ID)
			}
			continue
		}
		todo = append(todo, o)
	}
	var stale int
	if todo, stale, err = a.remapStale(ctx, w, todo); err != nil {
		return res, err
	}
	res.Unchanged += stale
	if w.kind == object.Group && len(todo) > 0 {
		if w.members, err = a.desiredMembers(ctx, w.t.provider, objectIDs(todo)); err != nil {
			return res, err
		}
	}
	if err := w.observe(ctx, in.ReadBack, todo); err != nil {
		return res, err
	}
	if w.caps.Bulk && len(todo) > 1 {
		err = w.writeBulk(ctx, todo)
	} else {
		if err := w.markCreating(ctx, todo); err != nil {
			return res, err
		}
		err = w.each(ctx, todo, w.writeOne)
	}
	w.recordOutcomes(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	res.Created += w.res.Created
	res.Updated += w.res.Updated
	res.Repaired += w.res.Repaired
	res.Unchanged += w.res.Unchanged
	res.Failed = w.res.Failed
	res.Linked = append(res.Linked, w.res.Linked...)
	res.DryRun, res.Planned, res.Objects = w.dryRunLog(), w.res.Planned, w.objectRecords()
	if !w.dry {
		a.observe(w.t.provider.Name, w.kind, map[string]int{"created": res.Created, "updated": res.Updated,
			"repaired": res.Repaired, "failed": len(res.Failed)})
	}
	return res, err
}

// writer carries one write activity's state.
type writer struct {
	a     *Activities
	t     *target
	caps  scim.Capabilities
	kind  string
	skind scim.Kind
	dry   bool

	unlock  func()
	links   map[string]store.Link
	members map[string][]string // group id → remote ids of the members it should have
	seeded  map[string][]string // group id → members found on a matched remote group
	// deactivated lists the users a Deprovision call deactivated.
	deactivated []string
	// marked holds the objects markCreating recorded as being created; set before the
	// writes start, read-only afterwards.
	marked map[string]bool
	// saver records the links of successful writes, several per statement.
	saver *store.LinkSaver
	// observed holds, by remote id, what a read-back found at the target of the objects
	// written: the old side of their changes.
	observed map[string]store.TargetObject
	// listed is the target's listing, for look-ups where it cannot filter (see listing).
	listMu sync.Mutex
	listed *remoteIndex

	mu   sync.Mutex
	res  WriteResult
	done int // objects finished, which the heartbeat reports
	// records holds, by object id, what was done and sent for each object (records.go).
	records map[string]*ObjectRecord
}

func (a *Activities) newWriter(ctx context.Context, provider, kind string, ids []string) (_ *writer, err error) {
	w := &writer{a: a, kind: kind, skind: scimKind(kind), saver: a.Store.NewLinkSaver()}
	// Alive from the start: waiting for another writer's locks, or for a slow target,
	// counts as work.
	stopBeat := w.heartbeat(ctx)
	defer func() {
		if err != nil {
			stopBeat()
		}
	}()
	if w.t, err = a.target(ctx, provider); err != nil {
		return nil, err
	}
	if w.caps, err = w.t.client.Capabilities(ctx); err != nil {
		return nil, classify(provider, err)
	}
	w.dry = w.t.provider.DryRun
	unlock, err := a.Store.LockObjects(ctx, w.t.provider.ID, kind, ids)
	if err != nil {
		return nil, err
	}
	w.unlock = func() { stopBeat(); unlock() }
	// Read the links under the locks: another writer may have just linked these objects.
	if w.links, err = a.Store.Links(ctx, w.t.provider.ID, kind, ids); err != nil {
		unlock()
		return nil, err
	}
	return w, nil
}

func (w *writer) close() { w.unlock() }

// HeartbeatInterval is how often a write activity tells Temporal that it is alive, whatever
// it waits for (locks, a slow target, a Retry-After): the workflows' heartbeat timeout is a
// few of these, so the writes of a worker that died are retried elsewhere soon after.
const HeartbeatInterval = 5 * time.Second

// heartbeat records a heartbeat with the objects finished so far every HeartbeatInterval,
// until the returned stop is called; outside an activity it does nothing.
func (w *writer) heartbeat(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				w.mu.Lock()
				n := w.done
				w.mu.Unlock()
				activity.RecordHeartbeat(ctx, n)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-exited }) }
}

// observe loads what the read-back found of objs at the target (nothing without one).
func (w *writer) observe(ctx context.Context, readBack string, objs []MappedObject) error {
	if readBack == "" || len(objs) == 0 {
		return nil
	}
	var remotes []string
	for _, o := range objs {
		remotes = append(remotes, w.remoteOf(o))
	}
	var err error
	w.observed, err = w.a.Store.TargetObjects(ctx, readBack, w.t.provider.ID, w.kind, remotes)
	return err
}

// remoteOf is the remote id o is written to: the one a read-back found it under, else its
// link's; "" for a create.
func (w *writer) remoteOf(o MappedObject) string {
	switch {
	case o.Gone:
		return ""
	case o.Remote != "":
		return o.Remote
	}
	return w.links[o.ID].Remote()
}

// writeOne creates or updates one object with single requests.
func (w *writer) writeOne(ctx context.Context, o MappedObject) error {
	if o.Gone {
		return w.recreateGone(ctx, o)
	}
	link := w.links[o.ID]
	remote := w.remoteOf(o)
	old := w.oldPayload(o, remote)
	if remote == "" {
		found, err := w.findBeforeCreate(ctx, o)
		if err != nil {
			return w.fail(ctx, o, err)
		}
		if found != nil {
			remote = found.ID
			w.seedMembers(ctx, o.ID, found)
		}
	}
	if remote == "" {
		return w.create(ctx, o)
	}
	return w.update(ctx, o, remote, old, remote != link.Remote())
}

// plan records, in dry run, a write held back.
func (w *writer) plan(c PlannedChange) {
	if !w.dry {
		return
	}
	c.Kind = w.kind
	w.mu.Lock()
	w.res.Planned = append(w.res.Planned, c)
	w.mu.Unlock()
}

// dryRunLog returns the requests recorded in dry run.
func (w *writer) dryRunLog() []DryRunRequest {
	if !w.dry {
		return nil
	}
	var out []DryRunRequest
	for _, r := range w.t.client.DryRunLog() {
		out = append(out, DryRunRequest{Method: r.Method, Path: r.Path, Body: string(r.Body)})
	}
	return out
}

func scimKind(kind string) scim.Kind {
	if kind == object.Group {
		return scim.Groups
	}
	return scim.Users
}

func objectIDs(objs []MappedObject) []string {
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i] = o.ID
	}
	return ids
}
