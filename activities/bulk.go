package activities

import (
	"context"
	"errors"
	"sync"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// writeBulk writes objects through POST /Bulk, in chunks within the target's limits. Look-
// ups of objects whose create may have gone through run first, one by one (or in one
// listing, where the target cannot filter), and an object whose look-up fails is not
// written; every operation that fails in a way single requests can repair (409 on create,
// 404 on update) is retried through writeOne's paths.
func (w *writer) writeBulk(ctx context.Context, objs []MappedObject) error {
	remotes := make(map[string]string, len(objs))
	olds := make(map[string]map[string]any, len(objs))
	var resolve []MappedObject
	for _, o := range objs {
		link, linked := w.links[o.ID]
		if r := w.remoteOf(o); r != "" {
			remotes[o.ID] = r
			olds[o.ID] = w.oldPayload(o, r)
		} else if !o.Gone && (w.t.provider.LinkExisting || (linked && link.CreateUncertain)) {
			resolve = append(resolve, o)
		}
	}
	var mu sync.Mutex
	failed := map[string]bool{} // look-ups that failed the object: recorded, and not written
	if err := w.each(ctx, resolve, func(ctx context.Context, o MappedObject) error {
		found, err := w.findBeforeCreate(ctx, o)
		if err != nil {
			if err := w.fail(ctx, o, err); err != nil {
				return err
			}
			mu.Lock()
			failed[o.ID] = true
			mu.Unlock()
			return nil
		}
		if found != nil {
			w.seedMembers(ctx, o.ID, found)
			mu.Lock()
			remotes[o.ID] = found.ID
			mu.Unlock()
		}
		return nil
	}); err != nil {
		return err
	}

	type planned struct {
		obj     MappedObject
		remote  string
		method  string
		matched bool // remote id found by look-up, not known from the link
	}
	var ops []scim.BulkOperation
	var plans []planned
	var done []savedObject
	creating := map[string][]byte{}
	for _, o := range objs {
		if failed[o.ID] {
			continue
		}
		remote, known := remotes[o.ID]
		matched := known && w.links[o.ID].Remote() != remote
		if !known {
			w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanCreate, Repair: o.Repair,
				Changes: attributeChanges(nil, o.CreatePayload())})
			creating[o.ID] = encodePayload(o.Payload)
			ops = append(ops, scim.BulkOperation{Method: "POST", Kind: w.skind, BulkID: o.ID, Data: w.body(o, true)})
			plans = append(plans, planned{obj: o, method: "POST"})
			continue
		}
		method, body := w.updateRequest(o, olds[o.ID])
		if method != "" || o.Repair != "" {
			w.plan(PlannedChange{ID: o.ID, Name: payloadName(w.kind, o.Payload), Action: PlanUpdate, Repair: o.Repair,
				Remote: o.Remote, Changes: attributeChanges(olds[o.ID], o.Payload)})
		}
		if method == "" {
			done = append(done, savedObject{obj: o, remote: remote, linked: matched})
			continue
		}
		ops = append(ops, scim.BulkOperation{Method: method, Kind: w.skind, ID: remote, BulkID: o.ID, Data: body})
		plans = append(plans, planned{obj: o, remote: remote, method: method, matched: matched})
	}
	// Every create is recorded before the request that carries it, all in one statement.
	if !w.dry {
		if err := w.a.Store.MarkCreatingMany(ctx, w.t.provider.ID, w.kind, creating); err != nil {
			return err
		}
	}
	if len(ops) == 0 {
		return w.savedMany(ctx, done)
	}

	results, bulkErr := w.t.client.Bulk(ctx, ops, 0)
	opIDs := make([]string, len(plans))
	for i, p := range plans {
		opIDs[i] = p.obj.ID
	}
	w.sentBulk(opIDs, ops, results)
	// The conflicts' look-ups must see what the request made.
	w.resetListing()
	var refused []string // creates the target certainly did not execute
	for i, r := range results {
		if plans[i].method != "POST" || r.Err == nil {
			continue
		}
		if cause := r.Err; scim.IsRefused(cause) || (isNotAttempted(cause) && scim.IsRefused(bulkErr)) {
			refused = append(refused, plans[i].obj.ID)
		}
	}
	if err := w.markRefused(ctx, refused...); err != nil {
		return err
	}
	var firstErr error
	for i, r := range results {
		p := plans[i]
		octx := w.objectCtx(ctx, p.obj.ID)
		var err error
		switch {
		case r.Err == nil && p.method == "POST":
			done = append(done, savedObject{obj: p.obj, remote: r.ID,
				members: w.membersWritten(p.obj.ID, !w.caps.MemberPatch), created: true, linked: true})
		case r.Err == nil:
			done = append(done, savedObject{obj: p.obj, remote: p.remote,
				members: w.membersWritten(p.obj.ID, p.method == "PUT"), linked: p.matched})
		case bulkErr != nil && isNotAttempted(r.Err):
			continue // the whole request failed: bulkErr decides
		case p.method == "POST" && scim.IsConflict(r.Err):
			err = w.createConflict(octx, p.obj, r.Err)
		case p.method != "POST" && scim.IsNotFound(r.Err):
			err = w.recreate(octx, p.obj)
		default:
			err = w.fail(octx, p.obj, r.Err)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	// The operations that went through are recorded together, in one statement.
	if err := w.savedMany(ctx, done); err != nil {
		return err
	}
	if bulkErr != nil {
		return classify(w.t.provider.Name, bulkErr)
	}
	return firstErr
}

// savedObject is one successful write waiting to be recorded by savedMany.
type savedObject struct {
	obj     MappedObject
	remote  string
	members []string
	created bool
	linked  bool
}

// savedMany is saved for several objects: it records their links in one statement, then
// counts them.
func (w *writer) savedMany(ctx context.Context, objs []savedObject) error {
	if len(objs) == 0 {
		return nil
	}
	if !w.dry {
		links := make([]store.Link, len(objs))
		w.mu.Lock()
		for i, s := range objs {
			members := s.members
			if seeded, ok := w.seeded[s.obj.ID]; ok && members == nil {
				members = seeded
			}
			if members == nil && s.created {
				members = []string{}
			}
			remote := s.remote
			links[i] = store.Link{ProviderID: w.t.provider.ID, Kind: w.kind, ObjectID: s.obj.ID, RemoteID: &remote,
				PayloadHash: s.obj.Hash, Payload: encodePayload(s.obj.Payload), Members: members}
		}
		w.mu.Unlock()
		err := w.a.Store.SaveLinks(ctx, links)
		if isRemoteIDTaken(err) {
			// The target answered one id for two objects: store the links one by one, and
			// fail the objects whose id another holds.
			kept := objs[:0:0]
			for i, s := range objs {
				err := w.a.Store.SaveLink(ctx, links[i])
				if isRemoteIDTaken(err) {
					if err := w.failObject(ctx, s.obj, remoteIDTaken(s.remote, w.kind)); err != nil {
						return err
					}
					continue
				}
				if err != nil {
					return err
				}
				kept = append(kept, s)
			}
			objs, err = kept, nil
		}
		if err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range objs {
		w.acted(s.obj.ID, w.res.count(s.obj, s.created))
		if s.created || s.linked || s.obj.New {
			w.res.Linked = append(w.res.Linked, s.obj.ID)
		}
		w.done++
	}
	return nil
}

func isNotAttempted(err error) bool {
	return err != nil && errors.Is(err, scim.ErrNotAttempted)
}
