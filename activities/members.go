package activities

import (
	"context"
	"slices"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// desiredMembers returns, for each group, the sorted remote ids of the members it should
// have at the target: its linked members (with those of its descendants when the provider
// flattens nested groups). Members not linked yet, or deactivated there, are left out.
func (a *Activities) desiredMembers(ctx context.Context, p store.Provider, groupIDs []string) (map[string][]string, error) {
	members, err := a.Store.GroupMembers(ctx, groupIDs, p.FlattenGroups)
	if err != nil {
		return nil, err
	}
	var userIDs []string
	for _, ids := range members {
		userIDs = append(userIDs, ids...)
	}
	slices.Sort(userIDs)
	userIDs = slices.Compact(userIDs)
	// Only the remote ids: a batch of groups has thousands of members, whose payloads are
	// not needed here.
	remoteIDs, err := a.Store.RemoteIDs(ctx, p.ID, object.User, userIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(groupIDs))
	for _, g := range groupIDs {
		remote := []string{}
		for _, u := range members[g] {
			if r, ok := remoteIDs[u]; ok {
				remote = append(remote, r)
			}
		}
		slices.Sort(remote)
		out[g] = remote
	}
	return out, nil
}

// SyncMembers brings the members of linked groups at the target up to date. The change is
// computed from the members last written (never read back from the target, which some
// answer without members), then sent as PATCH add/remove in chunks within the target's
// limit, recording the member list after every chunk so a retry resumes where it stopped.
// Targets without PATCH get a PUT of the group with its whole member list, an empty one too.
func (a *Activities) SyncMembers(ctx context.Context, in ObjectsInput) (WriteResult, error) {
	var res WriteResult
	if len(in.IDs) == 0 {
		return res, nil
	}
	w, err := a.newWriter(ctx, in.Provider, object.Group, in.IDs)
	if err != nil {
		return res, err
	}
	defer w.close()
	if w.members, err = a.desiredMembers(ctx, w.t.provider, in.IDs); err != nil {
		return res, err
	}
	var groups []MappedObject
	var written []string
	for _, id := range in.IDs {
		if l := w.links[id]; l.Live() {
			groups = append(groups, MappedObject{ID: id})
			written = append(written, l.Members...)
		}
	}
	present, err := w.a.presentMembers(ctx, w.t.provider, written, w.members)
	if err != nil {
		return res, err
	}
	if err := w.observe(ctx, in.ReadBack, groups); err != nil {
		return res, err
	}
	if w.caps.Bulk && w.caps.MemberPatch {
		groups, err = w.syncMembersBulk(ctx, groups, present)
	}
	if err == nil {
		err = w.each(ctx, groups, func(ctx context.Context, g MappedObject) error {
			return w.syncGroupMembers(ctx, g, present)
		})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	res.Updated, res.Repaired, res.Failed, res.DryRun, res.Planned = w.res.Updated, w.res.Repaired, w.res.Failed, w.dryRunLog(), w.res.Planned
	res.Objects = w.objectRecords()
	return res, err
}

// memberChange is what SyncMembers must do for one group: its members at the target now
// (those a read-back found there, else those last written that are still linked), and
// the ids to add and to remove.
func (w *writer) memberChange(id string, present map[string]bool) (current, add, remove []string) {
	current = stillPresent(w.links[id].Members, present)
	if t, ok := w.observedMembers(id); ok {
		current = slices.Clone([]string(t.Members))
	}
	add, remove = scim.DiffMembers(current, w.members[id])
	return current, add, remove
}

// membersDrifted reports whether a read-back found the group's members otherwise than
// last written: then bringing them up to date is a repair.
func (w *writer) membersDrifted(id string, present map[string]bool) bool {
	t, ok := w.observedMembers(id)
	if !ok {
		return false
	}
	written := slices.Clone(stillPresent(w.links[id].Members, present))
	slices.Sort(written)
	return !slices.Equal(written, []string(t.Members))
}

func (w *writer) syncGroupMembers(ctx context.Context, g MappedObject, present map[string]bool) error {
	link := w.links[g.ID]
	remote, desired := link.Remote(), w.members[g.ID]
	current, add, remove := w.memberChange(g.ID, present)
	w.planMembers(g.ID, present)
	if len(add) == 0 && len(remove) == 0 {
		if !slices.Equal(current, link.Members) && !w.dry {
			return w.a.Store.SaveMembers(ctx, w.t.provider.ID, g.ID, current)
		}
		return nil
	}

	if !w.caps.MemberPatch {
		body := decodePayload(link.Payload)
		if body == nil {
			body = map[string]any{}
		}
		body["members"] = scim.MemberRefs(desired, w.caps)
		if _, err := w.t.client.Replace(ctx, scim.Groups, remote, body); err != nil {
			return w.memberFailure(ctx, g, err)
		}
		return w.membersSaved(ctx, g.ID, desired, w.membersDrifted(g.ID, present))
	}

	limit := max(w.caps.MaxMembersPerRequest, 1)
	if len(add)+len(remove) <= limit {
		// One request: the target applies it whole, and a paced target is asked once.
		if err := w.t.client.UpdateMembers(ctx, remote, add, remove); err != nil {
			return w.memberFailure(ctx, g, err)
		}
		current = append(without(current, remove), add...)
		slices.Sort(current)
		if err := w.membersProgress(ctx, g.ID, current); err != nil {
			return err
		}
		w.membersCounted(g.ID, w.membersDrifted(g.ID, present))
		return nil
	}
	// Larger changes in chunks, removals first: a target with a member cap then never
	// holds more than it should, and every chunk is recorded so that a retry resumes.
	for start := 0; start < len(remove); start += limit {
		chunk := remove[start:min(start+limit, len(remove))]
		if err := w.t.client.UpdateMembers(ctx, remote, nil, chunk); err != nil {
			return w.memberFailure(ctx, g, err)
		}
		current = without(current, chunk)
		if err := w.membersProgress(ctx, g.ID, current); err != nil {
			return err
		}
	}
	for start := 0; start < len(add); start += limit {
		chunk := add[start:min(start+limit, len(add))]
		if err := w.t.client.UpdateMembers(ctx, remote, chunk, nil); err != nil {
			return w.memberFailure(ctx, g, err)
		}
		current = append(current, chunk...)
		slices.Sort(current)
		if err := w.membersProgress(ctx, g.ID, current); err != nil {
			return err
		}
	}
	// Every chunk recorded the members it left (there was at least one): only count it.
	w.membersCounted(g.ID, w.membersDrifted(g.ID, present))
	return nil
}

// syncMembersBulk sends, through POST /Bulk (in chunks within the target's limits), the
// membership change of every group whose change fits in one PATCH, and records each group
// that went through. It returns the groups left to syncGroupMembers: those with no change
// (it tidies their record), larger changes (sent in chunks, removals first), operations
// the target did not carry out (but for a group it no longer has), and all of them when
// fewer than two would share the request.
func (w *writer) syncMembersBulk(ctx context.Context, groups []MappedObject, present map[string]bool) ([]MappedObject, error) {
	var ops []scim.BulkOperation
	var planned, rest []MappedObject
	for _, g := range groups {
		_, add, remove := w.memberChange(g.ID, present)
		var reqs [][]scim.PatchOp
		if len(add)+len(remove) > 0 {
			reqs = scim.MemberPatches(add, remove, w.caps)
		}
		if len(reqs) != 1 {
			rest = append(rest, g)
			continue
		}
		ops = append(ops, scim.BulkOperation{Method: "PATCH", Kind: scim.Groups, ID: w.links[g.ID].Remote(), BulkID: g.ID, Data: reqs[0]})
		planned = append(planned, g)
	}
	if len(ops) < 2 {
		return groups, nil
	}
	for _, g := range planned {
		w.planMembers(g.ID, present)
	}
	results, bulkErr := w.t.client.Bulk(ctx, ops, 0)
	w.sentBulk(objectIDs(planned), ops, results)
	for i, r := range results {
		g := planned[i]
		var err error
		switch {
		case r.Err == nil:
			err = w.membersSaved(ctx, g.ID, w.members[g.ID], w.membersDrifted(g.ID, present))
		case bulkErr != nil && isNotAttempted(r.Err):
			continue // the request failed as a whole: bulkErr decides
		case scim.IsNotFound(r.Err):
			err = w.memberFailure(w.objectCtx(ctx, g.ID), g, r.Err) // the group is gone: its next sync creates it
		default:
			// A transient failure, or a target that takes PATCH alone but not inside Bulk:
			// the single requests ride it out or give the answer that counts.
			rest = append(rest, g)
		}
		if err != nil {
			return nil, err
		}
	}
	if bulkErr != nil {
		return nil, classify(w.t.provider.Name, bulkErr)
	}
	return rest, nil
}

// presentMembers tells which of the remote ids last written as members of some groups
// still have a user link, for all those groups at once. The members the groups should have
// now (desired, from desiredMembers) have one by definition; only the others (members
// since removed, or whose user is gone) are looked up, usually none.
func (a *Activities) presentMembers(ctx context.Context, p store.Provider, written []string, desired map[string][]string) (map[string]bool, error) {
	present := map[string]bool{}
	for _, ids := range desired {
		for _, id := range ids {
			present[id] = true
		}
	}
	var others []string
	for _, id := range written {
		if !present[id] {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	found, err := a.Store.LinkedRemoteIDs(ctx, p.ID, object.User, slices.Compact(others))
	if err != nil {
		return nil, err
	}
	for id := range found {
		present[id] = true
	}
	return present, nil
}

// stillPresent drops from the members last written those whose user link is gone (not in
// present): they were deleted at the target, which removed them from its groups too.
func stillPresent(members []string, present map[string]bool) []string {
	out := make([]string, 0, len(members))
	for _, m := range members {
		if present[m] {
			out = append(out, m)
		}
	}
	return out
}

func (w *writer) membersProgress(ctx context.Context, groupID string, current []string) error {
	if w.dry {
		return nil
	}
	return w.a.Store.SaveMembers(ctx, w.t.provider.ID, groupID, current)
}

func (w *writer) membersSaved(ctx context.Context, groupID string, members []string, repaired bool) error {
	if err := w.membersProgress(ctx, groupID, members); err != nil {
		return err
	}
	w.membersCounted(groupID, repaired)
	return nil
}

// membersCounted counts group id, whose membership was brought up to date: repaired when
// a read-back found it changed at the target.
func (w *writer) membersCounted(id string, repaired bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if repaired {
		w.res.Repaired++
		w.acted(id, ActionRepaired)
	} else {
		w.res.Updated++
		w.acted(id, ActionMembers)
	}
	w.done++
}

// memberFailure handles a failed membership request. A group gone from the target loses
// its link, so that the next sync creates it again.
func (w *writer) memberFailure(ctx context.Context, g MappedObject, err error) error {
	if scim.IsNotFound(err) && !w.dry {
		if derr := w.a.Store.DeleteLink(ctx, w.t.provider.ID, object.Group, g.ID); derr != nil {
			return derr
		}
	}
	return w.fail(ctx, g, err)
}

func without(ids, drop []string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

// observedMembers returns what the read-back found of the group, when it shows members and
// nothing wrote the group since it was read.
func (w *writer) observedMembers(id string) (store.TargetObject, bool) {
	l := w.links[id]
	t, ok := w.observed[l.Remote()]
	if !ok || t.Members == nil || !t.Fresh(l) {
		return store.TargetObject{}, false
	}
	return t, true
}

// planMembers records, in dry run, the membership change of a group held back.
func (w *writer) planMembers(id string, present map[string]bool) {
	_, add, remove := w.memberChange(id, present)
	if !w.dry || len(add)+len(remove) == 0 {
		return
	}
	repair := ""
	if w.membersDrifted(id, present) {
		repair = RepairMembers
	}
	w.plan(PlannedChange{ID: id, Name: payloadName(w.kind, decodePayload(w.links[id].Payload)), Action: PlanMembers,
		Repair: repair, Add: add, Remove: remove})
}
