package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/mapping"
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

// oldPayload is the old side of o's change at remote: what a read-back found there, else
// the payload last written (when remote is the link's), else nothing (a PUT of it whole).
// It leaves out o's on_create attributes, which no update touches: even when the payload
// last written had them (their mapping was applied always then), they are not removed.
func (w *writer) oldPayload(o MappedObject, remote string) map[string]any {
	link := w.links[o.ID]
	written := withoutOnCreate(decodePayload(link.Payload), o.OnCreate)
	if t, ok := w.observed[remote]; ok && remote != "" && (remote != link.Remote() || t.Fresh(link)) {
		return observedView(decodePayload(t.Body), o.Payload, written)
	}
	if remote != "" && remote == link.Remote() {
		return written
	}
	return nil
}

// withoutOnCreate returns old without the attributes onCreate sets: its top-level ones, and
// those of its extension objects within old's (names compared case-insensitively). It is
// old itself when onCreate is empty.
func withoutOnCreate(old, onCreate map[string]any) map[string]any {
	if len(old) == 0 || len(onCreate) == 0 {
		return old
	}
	out := make(map[string]any, len(old))
	for k, v := range old {
		cv := scim.Attr(onCreate, k)
		switch {
		case cv == nil || strings.EqualFold(k, "schemas"):
			out[k] = v
		case isExtension(k, v) && isExtension(k, cv):
			ext := map[string]any{}
			for sk, sv := range v.(map[string]any) {
				if scim.Attr(cv.(map[string]any), sk) == nil {
					ext[sk] = sv
				}
			}
			out[k] = ext
		}
	}
	return out
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

// findBeforeCreate looks an object without remote id up at the target when it may be there
// already: with link_existing, by every key (it may predate scimsync); when an earlier
// create's outcome is unknown (sent, never answered for sure), by the externalId that
// create carried. A create the target refused (a 4xx, a 429, a request that never left) is
// not looked for: it is simply sent again.
//
// Where the target can neither filter nor list, nothing can be looked up: an object whose
// create is uncertain is then an *uncertainCreateError, never posted again, since a second
// POST could make a duplicate; with link_existing alone the object is created (an account
// that predates scimsync makes that create fail with 409).
func (w *writer) findBeforeCreate(ctx context.Context, o MappedObject) (*scim.Resource, error) {
	link, linked := w.links[o.ID]
	uncertain := linked && link.CreateUncertain
	var found *scim.Resource
	var err error
	switch {
	case w.t.provider.LinkExisting:
		found, err = w.lookup(ctx, o)
	case uncertain:
		found, err = w.lookupCreated(ctx, o)
	default:
		return nil, nil
	}
	if errors.Is(err, errCannotLookUp) {
		if uncertain {
			return nil, &uncertainCreateError{kind: w.kind, err: err}
		}
		return nil, nil
	}
	return found, err
}

// markCreating records, in one statement, that the objects without a remote id may be
// created by this call, before any request is sent: what MarkCreating does for one object
// right before its POST, for all of them at once, so a batch of creates costs one
// statement instead of one per object. A link without remote id makes a later attempt look
// the object up before posting, which is right whether or not this call got to post it.
func (w *writer) markCreating(ctx context.Context, objs []MappedObject) error {
	if w.dry {
		return nil
	}
	payloads := map[string][]byte{}
	for _, o := range objs {
		if w.links[o.ID].Remote() == "" {
			payloads[o.ID] = encodePayload(o.Payload)
		}
	}
	if err := w.a.Store.MarkCreatingMany(ctx, w.t.provider.ID, w.kind, payloads); err != nil {
		return err
	}
	w.marked = make(map[string]bool, len(payloads))
	for id := range payloads {
		w.marked[id] = true
	}
	return nil
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

// create POSTs the object; a 409 links the single existing match instead.
func (w *writer) create(ctx context.Context, o MappedObject) error {
	body := w.body(o, true)
	w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanCreate, Repair: o.Repair,
		Changes: attributeChanges(nil, o.CreatePayload())})
	if !w.dry && !w.marked[o.ID] {
		if _, err := w.a.Store.MarkCreating(ctx, w.t.provider.ID, w.kind, o.ID, encodePayload(o.Payload)); err != nil {
			return err
		}
	}
	created, err := w.t.client.Create(ctx, w.skind, body)
	if scim.IsConflict(err) {
		return w.createConflict(ctx, o, err)
	}
	if err != nil {
		if scim.IsRefused(err) {
			if merr := w.markRefused(ctx, o.ID); merr != nil {
				return merr
			}
		}
		return w.fail(ctx, o, err)
	}
	return w.saved(ctx, o, created.ID, w.membersWritten(o.ID, !w.caps.MemberPatch), true, true)
}

// update writes the object's changes to its remote resource. linkedNow is true when the
// remote id was just found (not known from a link), which counts as linking.
func (w *writer) update(ctx context.Context, o MappedObject, remote string, old map[string]any, linkedNow bool) error {
	method, body := w.updateRequest(o, old)
	if method != "" || o.Repair != "" {
		w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanUpdate, Repair: o.Repair,
			Remote: o.Remote, Changes: attributeChanges(old, o.Payload)})
	}
	var err error
	switch method {
	case "":
	case "PATCH":
		_, err = w.t.client.Patch(ctx, w.skind, remote, body.([]scim.PatchOp))
	case "PUT":
		_, err = w.t.client.Replace(ctx, w.skind, remote, body.(map[string]any))
	}
	if scim.IsNotFound(err) {
		return w.recreate(ctx, o)
	}
	if err != nil {
		return w.fail(ctx, o, err)
	}
	return w.saved(ctx, o, remote, w.membersWritten(o.ID, method == "PUT"), false, linkedNow)
}

// recreateGone creates again an object the read-back found gone from the target: no
// lookup (the read-back looked), its link forgotten first; the create is recorded before
// its POST like every other, so a lost answer is looked up next time.
func (w *writer) recreateGone(ctx context.Context, o MappedObject) error {
	if !w.dry {
		if err := w.a.Store.DeleteLink(ctx, w.t.provider.ID, w.kind, o.ID); err != nil {
			return err
		}
	}
	return w.create(ctx, o)
}

// recreate handles an update answered 404: the remote object is gone, or its id changed.
// It looks the object up (it may exist under another id) and creates it when not found, or
// when the target can neither filter nor list (the 404 says it is not where it was).
func (w *writer) recreate(ctx context.Context, o MappedObject) error {
	found, err := w.lookup(ctx, o)
	if errors.Is(err, errCannotLookUp) {
		found, err = nil, nil
	}
	if err != nil {
		return w.fail(ctx, o, err)
	}
	if found != nil {
		w.seedMembers(ctx, o.ID, found)
		method, body := w.updateRequest(o, nil)
		switch method {
		case "PATCH":
			_, err = w.t.client.Patch(ctx, w.skind, found.ID, body.([]scim.PatchOp))
		case "PUT":
			_, err = w.t.client.Replace(ctx, w.skind, found.ID, body.(map[string]any))
		}
		if err != nil {
			return w.fail(ctx, o, err)
		}
		return w.saved(ctx, o, found.ID, w.membersWritten(o.ID, method == "PUT"), false, true)
	}
	if !w.dry {
		if err := w.a.Store.DeleteLink(ctx, w.t.provider.ID, w.kind, o.ID); err != nil {
			return err
		}
	}
	return w.create(ctx, o)
}

// updateRequest decides how to write o's changes: PATCH with the changed attributes when
// the target takes it and the payload last written is known, else PUT of the whole object
// (groups with their whole member list, so a PUT never drops members).
func (w *writer) updateRequest(o MappedObject, old map[string]any) (method string, body any) {
	patch := w.caps.UserUpdate == scim.UpdatePatch
	if w.kind == object.Group {
		patch = w.caps.GroupUpdate == scim.UpdatePatch
		if w.caps.GroupPatchPaths != nil {
			ops := scim.RestrictPaths(scim.DiffPatch(old, o.Payload), w.caps.GroupPatchPaths)
			if len(ops) == 0 {
				return "", nil
			}
			return "PATCH", ops
		}
	}
	if patch && old != nil {
		ops := scim.DiffPatch(old, o.Payload)
		if len(ops) == 0 {
			return "", nil
		}
		return "PATCH", ops
	}
	return "PUT", w.body(o, false)
}

// body is the payload to POST or PUT: a create's carries the on_create attributes, a PUT's
// never does. Groups carry their members when written whole: on every PUT, and on create
// when membership cannot be patched later.
func (w *writer) body(o MappedObject, create bool) map[string]any {
	payload := o.Payload
	if create {
		payload = o.CreatePayload()
	}
	if w.kind != object.Group || (create && w.caps.MemberPatch) {
		return payload
	}
	body := make(map[string]any, len(payload)+1)
	for k, v := range payload {
		body[k] = v
	}
	body["members"] = scim.MemberRefs(w.members[o.ID], w.caps)
	return body
}

// membersWritten is the member list a write left at the target: the whole desired list when
// the body carried it, an empty list after a create without members, nil (unchanged)
// otherwise.
func (w *writer) membersWritten(id string, whole bool) []string {
	if w.kind != object.Group {
		return nil
	}
	if whole {
		if m := w.members[id]; m != nil {
			return m
		}
		return []string{}
	}
	return nil
}

// seedMembers records the members a matched remote group already has, so the next
// membership sync adds and removes from what is really there. Targets that return no
// members (aws) leave the list empty.
func (w *writer) seedMembers(ctx context.Context, id string, found *scim.Resource) {
	if w.kind != object.Group || w.dry {
		return
	}
	ids := memberValues(scim.Attr(found.Attributes, "members"))
	w.mu.Lock()
	if w.seeded == nil {
		w.seeded = map[string][]string{}
	}
	w.seeded[id] = ids
	w.mu.Unlock()
}

// saved records a successful write on the object's link.
func (w *writer) saved(ctx context.Context, o MappedObject, remote string, members []string, created, linked bool) error {
	if !w.dry {
		w.mu.Lock()
		if seeded, ok := w.seeded[o.ID]; ok && members == nil {
			members = seeded
		}
		w.mu.Unlock()
		if members == nil && created {
			members = []string{}
		}
		link := store.Link{
			ProviderID: w.t.provider.ID, Kind: w.kind, ObjectID: o.ID, RemoteID: &remote,
			PayloadHash: o.Hash, Payload: encodePayload(o.Payload), Members: members,
		}
		err := w.saver.Save(ctx, link)
		if isRemoteIDTaken(err) {
			// This link or another of the group commit: store it alone to tell.
			err = w.a.Store.SaveLink(ctx, link)
		}
		if isRemoteIDTaken(err) {
			return w.failObject(ctx, o, remoteIDTaken(remote, w.kind))
		}
		if err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acted(o.ID, w.res.count(o, created))
	if created || linked || o.New {
		w.res.Linked = append(w.res.Linked, o.ID)
	}
	w.done++
	return nil
}

// count counts one object written: repaired when a read-back asked for it, else created
// or updated. It returns that action.
func (r *WriteResult) count(o MappedObject, created bool) string {
	switch {
	case o.Repair != "":
		r.Repaired++
		return ActionRepaired
	case created:
		r.Created++
		return ActionCreated
	default:
		r.Updated++
		return ActionUpdated
	}
}

// fail records an object error on the object's link and goes on; any other error is
// returned, classified, and stops the activity.
func (w *writer) fail(ctx context.Context, o MappedObject, err error) error {
	if ue := (*uncertainCreateError)(nil); errors.As(err, &ue) {
		return w.failObject(ctx, o, ue.Error())
	}
	if !scim.IsObjectError(err) {
		return classify(w.t.provider.Name, err)
	}
	return w.failObject(ctx, o, objectMessage(err))
}

// failObject records the object error msg on the object's link and in the result.
func (w *writer) failObject(ctx context.Context, o MappedObject, msg string) error {
	if !w.dry {
		if serr := w.a.Store.SetLinkError(ctx, w.t.provider.ID, w.kind, o.ID, msg); serr != nil {
			return serr
		}
	}
	logger(ctx).Warn("object not written", "provider", w.t.provider.Name, "kind", w.kind, "id", o.ID, "error", msg)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.res.Failed = append(w.res.Failed, ObjectFailure{ID: o.ID, Error: msg})
	w.acted(o.ID, ActionFailed)
	w.done++
	return nil
}

// markRefused records that the target certainly did not act on the creates of ids, so
// that their next attempt posts again without looking them up.
func (w *writer) markRefused(ctx context.Context, ids ...string) error {
	if w.dry || len(ids) == 0 {
		return nil
	}
	return w.a.Store.MarkCreatesRefused(ctx, w.t.provider.ID, w.kind, ids)
}

// lookupCreated finds an object whose create may have reached the target: by the
// externalId every create carries, in one request; by userName (displayName for groups)
// when the payload has no externalId or the target refuses to filter on it.
func (w *writer) lookupCreated(ctx context.Context, o MappedObject) (*scim.Resource, error) {
	return w.find(ctx, w.lookupKeys(o, false), true)
}

// lookup finds the object at the target by externalId, then by userName (users) or
// displayName (groups), then by primary email. Exactly one match is returned; none gives
// nil; several are an object error, since linking either could be wrong.
func (w *writer) lookup(ctx context.Context, o MappedObject) (*scim.Resource, error) {
	return w.find(ctx, w.lookupKeys(o, true), false)
}

// lookupKey is one attribute value a look-up compares: "externalId", "userName" or
// "displayName", or "emails.value".
type lookupKey struct{ attr, value string }

// lookupKeys returns the keys that find o, in order: externalId, userName (or
// displayName), and with email the primary email.
func (w *writer) lookupKeys(o MappedObject, email bool) []lookupKey {
	var keys []lookupKey
	if ext, ok := o.Payload["externalId"].(string); ok && ext != "" {
		keys = append(keys, lookupKey{"externalId", ext})
	}
	key := "userName"
	if w.kind == object.Group {
		key = "displayName"
	}
	if v, ok := o.Payload[key].(string); ok && v != "" {
		keys = append(keys, lookupKey{key, v})
	}
	if e := primaryEmail(o.Payload); email && e != "" && w.kind == object.User {
		keys = append(keys, lookupKey{"emails.value", e})
	}
	return keys
}

// find looks keys up: by filter where the target filters, else in a listing of the target
// (see listing). An errCannotLookUp says that the target can do neither.
func (w *writer) find(ctx context.Context, keys []lookupKey, firstAnswer bool) (*scim.Resource, error) {
	if !w.caps.Filter {
		return w.findListed(ctx, keys, firstAnswer)
	}
	var filters []scim.Filter
	for _, k := range keys {
		if k.attr == "emails.value" && w.caps.FilterEqOnly {
			continue // targets with eq-only filters (aws) cannot filter on emails
		}
		filters = append(filters, scim.Eq(k.attr, k.value))
	}
	return w.findBy(ctx, filters, firstAnswer)
}

// findBy searches with each filter in turn, skipping those the target refuses. With
// firstAnswer the first filter the target answers decides (no match: nil); else one without
// match passes on to the next.
func (w *writer) findBy(ctx context.Context, filters []scim.Filter, firstAnswer bool) (*scim.Resource, error) {
	for _, f := range filters {
		found, err := w.t.client.Search(ctx, w.skind, f)
		if err != nil {
			if scim.IsObjectError(err) && !scim.IsNotFound(err) {
				continue // the target refuses this filter; try the next
			}
			return nil, err
		}
		switch len(found) {
		case 0:
			if firstAnswer {
				return nil, nil
			}
		case 1:
			return &found[0], nil
		default:
			return nil, w.ambiguous(len(found))
		}
	}
	return nil, nil
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

func encodePayload(p map[string]any) []byte {
	if p == nil {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	return b
}

func decodePayload(b []byte) map[string]any {
	if len(b) == 0 {
		return nil
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		return nil
	}
	return p
}

// primaryEmail returns the primary (else the first) email of a user payload.
func primaryEmail(p map[string]any) string {
	emails, _ := p["emails"].([]any)
	first := ""
	for _, e := range emails {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if first == "" {
			first = v
		}
		if primary, _ := m["primary"].(bool); primary && v != "" {
			return v
		}
	}
	return first
}

// isRemoteIDTaken reports whether err is the store refusing a link whose remote id another
// object of the provider is linked to: the target answered one id for two objects.
func isRemoteIDTaken(err error) bool {
	var ce *store.ConflictError
	return errors.As(err, &ce) && strings.Contains(ce.Constraint, "remote_id")
}

// remoteIDTaken is the object error of an object whose write the target answered with an
// id that another object holds. Retrying would only post the object again.
func remoteIDTaken(remote, kind string) string {
	return fmt.Sprintf("the target answered id %q, which another %s is linked to; not linked", remote, kind)
}
