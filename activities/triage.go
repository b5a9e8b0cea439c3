package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

// scanFactor bounds how many in-scope objects one ListInScope call looks at: scanFactor
// times the ids it may return. An hourly full sync of a quiet directory thus pages through
// it in few calls, each bounded in time.
const scanFactor = 10

// ListInScope pages through the objects in the provider's scope, in id order after
// in.After, and returns the ids of those a SyncBatch has work for: up to in.Limit of them,
// looking at no more than scanFactor × in.Limit objects. The others are counted and left
// out: objects whose payload, mapped now, is the one last written to their live remote
// object (and, for groups, whose members are those last written), and objects a mapping
// skips. So a full sync of an unchanged directory starts no SyncBatch at all.
//
// Next is the id the listing stopped at, from which the next call goes on; it is empty
// only when no id is returned and the scope is done. Objects never written, being created,
// deactivated, or whose mapping fails are returned, so that their SyncBatch deals with them
// as it always has.
func (a *Activities) ListInScope(ctx context.Context, in ListInput) (IDList, error) {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return IDList{}, err
	}
	var list func(ctx context.Context, providerID, after string, limit int) ([]string, error)
	switch in.Kind {
	case object.User:
		list = a.Store.ScopedUserIDs
	case object.Group:
		list = a.Store.ScopedGroupIDs
	default:
		return IDList{}, nonRetryable(ErrTypeConfig, fmt.Errorf("unknown object kind %q", in.Kind))
	}
	limit := max(in.Limit, 1)
	out := IDList{IDs: []string{}}
	after, last, end := in.After, "", false
	defer func() {
		a.observe(p.Name, in.Kind, map[string]int{"unchanged": out.Unchanged, "skipped": out.Skipped})
	}()
scan:
	for scanned := 0; scanned < scanFactor*limit || (!in.EmptyPages && len(out.IDs) == 0); {
		ids, err := list(ctx, p.ID, after, limit)
		if err != nil {
			return IDList{}, err
		}
		need, skipped, err := a.triage(ctx, p, in.Kind, ids, in.ReadBack)
		if err != nil {
			return IDList{}, err
		}
		for _, id := range ids {
			switch {
			case need[id] && len(out.IDs) == limit:
				break scan // full; this one comes first next time
			case need[id]:
				out.IDs = append(out.IDs, id)
			case skipped[id]:
				out.Skipped++
			default:
				out.Unchanged++
			}
			last = id
		}
		scanned += len(ids)
		if len(ids) < limit {
			end = true
			break
		}
		after = ids[len(ids)-1]
	}
	if !end || len(out.IDs) > 0 {
		// Go on from here; with ids returned, the next call finds where the scope ends.
		out.Next = last
	}
	return out, nil
}

// triage tells which of ids (in the provider's scope) need a SyncBatch and which a mapping
// skips; the others are unchanged. With readBack, an object the read-back found otherwise
// than it would be written (attributes, gone, another id, members) needs one too. It
// writes nothing and sends nothing.
func (a *Activities) triage(ctx context.Context, p store.Provider, kind string, ids []string, readBack string) (need, skipped map[string]bool, err error) {
	need, skipped = map[string]bool{}, map[string]bool{}
	if len(ids) == 0 {
		return need, skipped, nil
	}
	links, err := a.Store.Links(ctx, p.ID, kind, ids)
	if err != nil {
		return nil, nil, err
	}
	// Only objects with a live link can be unchanged; the others need a write anyway.
	var linked []string
	for _, id := range ids {
		if l, ok := links[id]; ok && l.Live() {
			linked = append(linked, id)
		} else {
			need[id] = true
		}
	}
	if len(linked) == 0 {
		return need, skipped, nil
	}
	programs, err := a.compiledMappings(ctx, p.ID, kind)
	if err != nil {
		return nil, nil, err
	}
	mapped, skips, err := a.mapInParallel(ctx, p, kind, programs, linked)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		// A mapping or the schema refuses one of these objects: their SyncBatch reports it,
		// naming the object, as it always has.
		for _, id := range linked {
			need[id] = true
		}
		return need, skipped, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, id := range skips {
		skipped[id] = true
	}
	// Unchanged is decided on the payload of every write, never on on_create attributes.
	payloads := alwaysPayloads(mapped)
	var view *readBackView
	if readBack != "" {
		if view, err = a.viewReadBack(ctx, p, kind, readBack, links, payloads, false); err != nil {
			return nil, nil, err
		}
	}

	var desired map[string][]string
	var present map[string]bool
	if kind == object.Group {
		if desired, err = a.desiredMembers(ctx, p, linked); err != nil {
			return nil, nil, err
		}
		var written []string
		for _, id := range linked {
			written = append(written, links[id].Members...)
		}
		if present, err = a.presentMembers(ctx, p, written, desired); err != nil {
			return nil, nil, err
		}
	}
	for _, id := range linked {
		if skipped[id] {
			continue
		}
		payload, ok := payloads[id]
		if !ok {
			need[id] = true // left scope meanwhile: its SyncBatch deprovisions it
			continue
		}
		hash, err := mapping.Hash(payload)
		if err != nil || hash != links[id].PayloadHash {
			need[id] = true
			continue
		}
		if kind == object.Group && !membersInSync(links[id].Members, desired[id], present) {
			need[id] = true
		}
		if view == nil {
			continue
		}
		if repair, _, _ := view.drift(kind, links[id], true, payload); repair != "" {
			need[id] = true
		}
		if t, ok := view.byRemote[links[id].Remote()]; ok && kind == object.Group && t.Members != nil &&
			t.Fresh(links[id]) && !slices.Equal([]string(t.Members), desired[id]) {
			need[id] = true // members added or removed at the target
		}
	}
	return need, skipped, nil
}

// mapInParallel maps the objects (without validating them: see mapUsers) in up to
// GOMAXPROCS parts at once; mapping is what a listing of an unchanged directory spends its
// time on.
func (a *Activities) mapInParallel(ctx context.Context, p store.Provider, kind string, programs []*mapping.Program, ids []string) (map[string]mapping.Payloads, []string, error) {
	mp := mapping.Provider{Name: p.Name, CompatibilityMode: p.CompatibilityMode}
	mapPart := func(ids []string) (map[string]mapping.Payloads, []string, error) {
		if kind == object.Group {
			return a.mapGroups(ctx, p, programs, mp, ids, false)
		}
		return a.mapUsers(ctx, p, programs, mp, ids, false)
	}
	parts := min(runtime.GOMAXPROCS(0), 4, max(len(ids)/minPart, 1))
	if parts == 1 {
		return mapPart(ids)
	}
	type result struct {
		payloads map[string]mapping.Payloads
		skips    []string
		err      error
	}
	results := make([]result, parts)
	var wg sync.WaitGroup
	size := (len(ids) + parts - 1) / parts
	for i := range parts {
		part := ids[min(i*size, len(ids)):min((i+1)*size, len(ids))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.payloads, r.skips, r.err = mapPart(part)
		}()
	}
	wg.Wait()
	payloads := map[string]mapping.Payloads{}
	var skips []string
	for _, r := range results {
		if r.err != nil {
			return nil, nil, r.err
		}
		maps.Copy(payloads, r.payloads)
		skips = append(skips, r.skips...)
	}
	return payloads, skips, nil
}

// minPart is the fewest objects worth a goroutine of their own in mapInParallel.
const minPart = 100

// membersInSync reports whether a group's members last written are exactly the desired
// ones (sorted remote ids), all still linked: then SyncMembers has nothing to do for it.
func membersInSync(written, desired []string, present map[string]bool) bool {
	current := stillPresent(written, present)
	if len(current) != len(written) {
		return false // some members' links are gone: the group's link needs tidying
	}
	current = slices.Clone(current)
	slices.Sort(current)
	return slices.Equal(current, desired)
}
