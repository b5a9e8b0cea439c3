package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/schemas"
	"github.com/scimsync/scimsync/store"
)

// MapObjects loads the objects, evaluates the provider's property mappings and validates
// the payloads against the SCIM schemas, then sorts the objects: changed (to write),
// unchanged (the same payload was written before, so an hourly full sync of a quiet
// directory writes nothing), skipped (skip_object()), and gone (deleted or out of scope
// while linked: to deprovision).
//
// A mapping error or an invalid payload stops the sync with a non-retryable MappingError
// or SchemaError naming the object, the mapping and the field: it is a configuration error
// that retrying cannot fix.
func (a *Activities) MapObjects(ctx context.Context, in ObjectsInput) (MapResult, error) {
	var res MapResult
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return res, err
	}
	programs, err := a.compiledMappings(ctx, p.ID, in.Kind)
	if err != nil {
		return res, err
	}
	links, err := a.Store.Links(ctx, p.ID, in.Kind, in.IDs)
	if err != nil {
		return res, err
	}
	mp := mapping.Provider{Name: p.Name, CompatibilityMode: p.CompatibilityMode}

	var mapped map[string]mapping.Payloads
	switch in.Kind {
	case object.User:
		mapped, res.Skipped, err = a.mapUsers(ctx, p, programs, mp, in.IDs, true)
	case object.Group:
		mapped, res.Skipped, err = a.mapGroups(ctx, p, programs, mp, in.IDs, true)
	default:
		return res, nonRetryable(ErrTypeConfig, fmt.Errorf("unknown object kind %q", in.Kind))
	}
	if err != nil {
		return res, err
	}
	// What is compared, with the target or with what was written, is what every write
	// sends: never the on_create attributes.
	payloads := alwaysPayloads(mapped)

	skipped := make(map[string]bool, len(res.Skipped))
	for _, id := range res.Skipped {
		skipped[id] = true
	}
	var view *readBackView
	if in.ReadBack != "" {
		adopt := p.Orphans == store.OrphansAdopt || p.LinkExisting
		if view, err = a.viewReadBack(ctx, p, in.Kind, in.ReadBack, links, payloads, adopt); err != nil {
			return res, err
		}
	}
	for _, id := range in.IDs {
		payload, present := payloads[id]
		link, linked := links[id]
		switch {
		case skipped[id]:
		case !present:
			if linked && link.DeprovisionedAt == nil {
				res.Gone = append(res.Gone, id)
			}
		default:
			hash, err := mapping.Hash(payload)
			if err != nil {
				return res, nonRetryable(ErrTypeMapping, fmt.Errorf("%s %s: payload cannot be encoded: %w", in.Kind, id, err))
			}
			live := linked && link.Live()
			unchanged := live && link.PayloadHash == hash
			o := MappedObject{ID: id, Payload: payload, OnCreate: mapped[id].OnCreate, Hash: hash, New: !live}
			if view != nil {
				o.Repair, o.Remote, o.Gone = view.drift(in.Kind, link, linked, payload)
				if o.Repair == RepairAttributes && !unchanged {
					o.Repair = "" // an ordinary update, computed from what the target holds
				}
				o.New = o.New || o.Gone || o.Remote != ""
			}
			if unchanged && o.Repair == "" {
				res.Unchanged = append(res.Unchanged, id)
				continue
			}
			res.Changed = append(res.Changed, o)
		}
	}
	a.observe(p.Name, in.Kind, map[string]int{"unchanged": len(res.Unchanged), "skipped": len(res.Skipped)})
	return res, nil
}

// alwaysPayloads returns the payload of every write of each object.
func alwaysPayloads(mapped map[string]mapping.Payloads) map[string]map[string]any {
	out := make(map[string]map[string]any, len(mapped))
	for id, m := range mapped {
		out[id] = m.Always
	}
	return out
}

// mapUsers maps the users among ids that exist and are in scope, and validates the
// payloads when validate is set (a payload compared with the one last written needs no
// validation: if equal, it was valid when written; if not, it is validated before a write).
// Both the payload of every write and, with on_create mappings, that of a create are
// validated: an update sends the one, a create the other.
func (a *Activities) mapUsers(ctx context.Context, p store.Provider, programs []*mapping.Program, mp mapping.Provider, ids []string, validate bool) (map[string]mapping.Payloads, []string, error) {
	inScope, err := a.Store.UsersInScope(ctx, p.ID, ids)
	if err != nil {
		return nil, nil, err
	}
	users, err := a.Store.UsersByIDs(ctx, inScope)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]mapping.Payloads, len(users))
	var skipped []string
	for _, u := range users {
		payload, err := a.Mapper.MapUserPayloads(ctx, programs, mapping.User{
			ID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email, IsActive: u.IsActive, Type: u.Type,
			Locale: u.Locale, Avatar: u.Avatar, Attributes: u.Attributes, Groups: u.Groups,
		}, mp)
		if errors.Is(err, mapping.ErrSkipObject) {
			skipped = append(skipped, u.ID)
			continue
		}
		if err != nil {
			return nil, nil, mappingError(ctx, object.User, u.ID, err)
		}
		if validate {
			if err := validatePayloads(schemas.ValidateUser, payload); err != nil {
				return nil, nil, schemaError(object.User, u.ID, programs, err)
			}
		}
		out[u.ID] = payload
	}
	return out, skipped, nil
}

// mapGroups maps the groups among ids that exist and are in scope, like mapUsers.
func (a *Activities) mapGroups(ctx context.Context, p store.Provider, programs []*mapping.Program, mp mapping.Provider, ids []string, validate bool) (map[string]mapping.Payloads, []string, error) {
	inScope, err := a.Store.GroupsInScope(ctx, p.ID, ids)
	if err != nil {
		return nil, nil, err
	}
	groups, err := a.Store.GroupsByIDs(ctx, inScope)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]mapping.Payloads, len(groups))
	var skipped []string
	for _, g := range groups {
		payload, err := a.Mapper.MapGroupPayloads(ctx, programs, mapping.Group{
			ID: g.ID, Name: g.Name, ParentName: g.ParentName, Attributes: g.Attributes,
		}, mp)
		if errors.Is(err, mapping.ErrSkipObject) {
			skipped = append(skipped, g.ID)
			continue
		}
		if err != nil {
			return nil, nil, mappingError(ctx, object.Group, g.ID, err)
		}
		// Membership is written separately (SyncMembers), from the store, never from a mapping.
		delete(payload.Always, "members")
		delete(payload.OnCreate, "members")
		if len(payload.OnCreate) == 0 {
			payload.OnCreate = nil
		}
		if validate {
			if err := validatePayloads(schemas.ValidateGroup, payload); err != nil {
				return nil, nil, schemaError(object.Group, g.ID, programs, err)
			}
		}
		out[g.ID] = payload
	}
	return out, skipped, nil
}

// validatePayloads validates the payload of every write and, when on_create attributes add
// to it, the payload of a create.
func validatePayloads(validate func(map[string]any) error, p mapping.Payloads) error {
	if err := validate(p.Always); err != nil {
		if p.OnCreate != nil {
			return fmt.Errorf("without the on_create attributes (what an update sends): %w", err)
		}
		return err
	}
	if p.OnCreate == nil {
		return nil
	}
	if err := validate(p.Create()); err != nil {
		return fmt.Errorf("with the on_create attributes (what a create sends): %w", err)
	}
	return nil
}

// compiledMappings returns the provider's mappings of kind, compiled once per version, each
// applied as its row says (always or on_create).
func (a *Activities) compiledMappings(ctx context.Context, providerID, kind string) ([]*mapping.Program, error) {
	ms, err := a.Store.ProviderMappings(ctx, providerID, kind)
	if err != nil {
		return nil, err
	}
	programs := make([]*mapping.Program, 0, len(ms))
	for _, m := range ms {
		key := m.ID + "@" + m.UpdatedAt.String() + "@" + m.Apply
		if v, ok := a.programs.Load(key); ok {
			programs = append(programs, v.(*mapping.Program))
			continue
		}
		apply, err := mapping.ParseApply(m.Apply)
		if err != nil {
			return nil, nonRetryable(ErrTypeMapping, fmt.Errorf("mapping %q: %w", m.Name, err))
		}
		prog, err := mapping.Compile(m.Name, object.Kind(m.Kind), m.Expression)
		if err != nil {
			return nil, nonRetryable(ErrTypeMapping, err)
		}
		prog = prog.WithApply(apply)
		a.programs.Store(key, prog)
		programs = append(programs, prog)
	}
	return programs, nil
}

func mappingError(ctx context.Context, kind, id string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the activity is being cancelled or timed out: not a mapping error
	}
	var ee *mapping.EvalError
	if errors.As(err, &ee) && ee.Err != nil && errors.Is(ee.Err, ctx.Err()) {
		return err
	}
	return nonRetryable(ErrTypeMapping, fmt.Errorf("%s %s: %w", kind, id, err))
}

func schemaError(kind, id string, programs []*mapping.Program, err error) error {
	names := make([]string, len(programs))
	for i, p := range programs {
		names[i] = p.Name()
	}
	return nonRetryable(ErrTypeSchema, fmt.Errorf("%s %s: the payload of mappings %s is not valid SCIM: %w",
		kind, id, strings.Join(names, ", "), err))
}
