package activities

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// Orphans are the remote objects a read-back found that no link of the provider holds,
// once the sync has relinked what it could (an object found under its externalId) and,
// with orphans: adopt, adopted what matches a directory object in scope by name. They are
// sorted into three:
//
//   - ours: an externalId this installation gives (a user's hashed id, a group's id) of an
//     object that is deleted, out of scope, or already linked to another remote copy: left
//     behind by scimsync;
//   - known: the userName or displayName of a directory object, without our externalId: an
//     account of that person or group that scimsync does not manage (adopt links it);
//   - strangers: nothing in the directory.
//
// With orphans: delete, ours and strangers are deprovisioned by the provider's deprovision
// action (delete, or deactivate for users; none keeps them), within its threshold; known
// ones never are: they are somebody's.

var hashedUserID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// HandleOrphans sorts a page of the read-back's orphans and, with in.Delete, deprovisions
// those the policy lets go.
func (a *Activities) HandleOrphans(ctx context.Context, in OrphansInput) (OrphansResult, error) {
	var res OrphansResult
	t, err := a.target(ctx, in.Provider)
	if err != nil {
		return res, err
	}
	p := t.provider
	limit := max(in.Limit, 1)
	orphans, err := a.Store.UnlinkedTargetObjects(ctx, in.ReadBack, p.ID, in.Kind, in.After, limit)
	if err != nil {
		return res, err
	}
	if len(orphans) == limit {
		res.Next = orphans[len(orphans)-1].RemoteID
	}
	orphans = slices.DeleteFunc(orphans, func(o store.TargetObject) bool { return slices.Contains(in.Claimed, o.RemoteID) })
	classes, err := a.classifyOrphans(ctx, p, in.Kind, orphans)
	if err != nil {
		return res, err
	}
	var deletable []store.TargetObject
	for i, o := range orphans {
		switch classes[i] {
		case orphanOurs:
			res.Counts.Ours++
		case orphanKnown:
			res.Counts.Known++
			continue
		default:
			res.Counts.Strangers++
		}
		deletable = append(deletable, o)
	}
	if !in.Delete || p.Orphans != store.OrphansDelete || p.DeprovisionAction == store.DeprovisionNone {
		return res, nil
	}
	caps, err := t.client.Capabilities(ctx)
	if err != nil {
		return res, classify(p.Name, err)
	}
	// Under deactivate_then_delete too, orphans are only deactivated: they have no link to
	// keep a deadline on, and deleting them at once would leave no grace.
	deactivate := in.Kind == object.User && p.DeactivatesUsers()
	for _, o := range deletable {
		if active, ok := scim.Attr(decodePayload(o.Body), "active").(bool); deactivate && ok && !active {
			continue // deactivated before: nothing to do
		}
		err := a.deprovisionOrphan(ctx, t, caps, in.Kind, o)
		switch {
		case err == nil || scim.IsNotFound(err):
			res.Counts.Deleted++
		case scim.IsObjectError(err):
			res.Failed = append(res.Failed, ObjectFailure{ID: o.RemoteID, Error: objectMessage(err)})
		default:
			return res, classify(p.Name, err)
		}
	}
	if t.provider.DryRun {
		for _, r := range t.client.DryRunLog() {
			res.DryRun = append(res.DryRun, DryRunRequest{Method: r.Method, Path: r.Path, Body: string(r.Body)})
		}
	}
	a.observe(p.Name, in.Kind, map[string]int{"deprovisioned": res.Counts.Deleted, "failed": len(res.Failed)})
	return res, nil
}

type orphanClass int

const (
	orphanStranger orphanClass = iota
	orphanOurs
	orphanKnown
)

// classifyOrphans sorts orphans (see HandleOrphans), in their order.
func (a *Activities) classifyOrphans(ctx context.Context, p store.Provider, kind string, orphans []store.TargetObject) ([]orphanClass, error) {
	out := make([]orphanClass, len(orphans))
	ours := map[string]bool{} // externalIds this installation gives to existing objects
	switch kind {
	case object.User:
		hashed := false
		for _, o := range orphans {
			hashed = hashed || hashedUserID.MatchString(o.ExternalID)
		}
		if hashed && a.Mapper != nil {
			ids, err := a.Store.UserIDs(ctx)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				ours[mapping.HashedUserID(id, a.Mapper.Secret)] = true
			}
		}
	case object.Group:
		var exts []string
		for _, o := range orphans {
			if o.ExternalID != "" {
				exts = append(exts, o.ExternalID)
			}
		}
		groups, err := a.Store.GroupsByIDs(ctx, validUUIDs(exts))
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			ours[g.ID] = true
		}
	}
	var names []string
	for _, o := range orphans {
		if o.Name != "" {
			names = append(names, o.Name)
		}
	}
	byName, err := a.Store.IDsByName(ctx, kind, names)
	if err != nil {
		return nil, err
	}
	var named []string
	for _, id := range byName {
		named = append(named, id)
	}
	var inScope []string
	if kind == object.User {
		inScope, err = a.Store.UsersInScope(ctx, p.ID, named)
	} else {
		inScope, err = a.Store.GroupsInScope(ctx, p.ID, named)
	}
	if err != nil {
		return nil, err
	}
	scoped := map[string]bool{}
	for _, id := range inScope {
		scoped[id] = true
	}
	for i, o := range orphans {
		switch {
		case o.ExternalID != "" && ours[o.ExternalID]:
			out[i] = orphanOurs
		case scoped[byName[strings.ToLower(o.Name)]]:
			out[i] = orphanKnown
		default:
			out[i] = orphanStranger
		}
	}
	return out, nil
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func validUUIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if uuidPattern.MatchString(id) {
			out = append(out, id)
		}
	}
	return out
}

// deprovisionOrphan applies the provider's deprovision action to one orphan: delete, or
// for users deactivate (active: false).
func (a *Activities) deprovisionOrphan(ctx context.Context, t *target, caps scim.Capabilities, kind string, o store.TargetObject) error {
	skind := scimKind(kind)
	if kind != object.User || !t.provider.DeactivatesUsers() {
		return t.client.Delete(ctx, skind, o.RemoteID)
	}
	if caps.UserUpdate == scim.UpdatePatch {
		_, err := t.client.Patch(ctx, skind, o.RemoteID, []scim.PatchOp{{Op: scim.OpReplace, Path: "active", Value: false}})
		return err
	}
	body := decodePayload(o.Body)
	if body == nil {
		body = map[string]any{}
	}
	body["active"] = false
	_, err := t.client.Replace(ctx, skind, o.RemoteID, body)
	return err
}
