package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// Reading the target back (docs/reconciliation.md): a full sync that reads back first
// pages through the target's users and groups into the store (ReadTargetPage, or
// ReadLinked where the target cannot list), then compares each batch with what it read
// (MapObjects, ListInScope) and repairs through the ordinary writes, and at its end deals
// with the orphans (HandleOrphans) and records what it found (FinishReadBack).

// readPageSize is the count a read-back asks per page (the target may cap it lower).
const readPageSize = 100

// readBackDue reports whether the provider's next full sync reads the target back: an
// operator asked for it, or the last read-back is older than reconcile_interval.
func (a *Activities) readBackDue(ctx context.Context, p store.Provider) (bool, error) {
	if requested, err := a.Store.ReadBackRequested(ctx, p.ID); err != nil || requested {
		return requested, err
	}
	if p.ReconcileInterval <= 0 {
		return false, nil
	}
	last, ok, err := a.Store.LastReadBack(ctx, p.ID)
	switch {
	case err != nil:
		return false, err
	case !ok:
		return true, nil // never read back
	}
	return time.Since(*last.FinishedAt) >= p.ReconcileInterval, nil
}

// StartReadBack records that a read-back of the provider's target begins.
func (a *Activities) StartReadBack(ctx context.Context, in ReadPageInput) error {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return err
	}
	return a.Store.StartReadBack(ctx, p.ID, in.ReadBack)
}

// ReadTargetPage reads one page of the target's users or groups into the store. A target
// that cannot list answers the first page with NotListable, and a target that shows no
// group members with MembersHidden.
func (a *Activities) ReadTargetPage(ctx context.Context, in ReadPageInput) (ReadPageResult, error) {
	var res ReadPageResult
	t, err := a.target(ctx, in.Provider)
	if err != nil {
		return res, err
	}
	hidden := in.Kind == object.Group && t.client.Compat().GroupMembersHidden
	res.MembersHidden = hidden
	q := scim.Query{Count: readPageSize, StartIndex: in.Page.StartIndex, UseCursor: t.client.Compat().CursorPaging,
		Cursor: in.Page.Cursor}
	if in.Kind == object.User {
		q.ExcludedAttributes = []string{"groups"} // what the target derives, never compared
	}
	readAt := a.Store.Clock()
	page, err := t.client.SearchPage(ctx, scimKind(in.Kind), q)
	if err != nil {
		if in.Page == (PageToken{}) && notListable(err) {
			res.NotListable = true
			return res, nil
		}
		return res, classify(t.provider.Name, err)
	}
	objs := make([]store.TargetObject, 0, len(page.Resources))
	for _, r := range page.Resources {
		if r.ID == "" {
			continue
		}
		objs = append(objs, targetObject(in.Kind, r, hidden))
	}
	if err := a.Store.PutTargetObjects(ctx, in.ReadBack, t.provider.ID, readAt, objs); err != nil {
		return res, err
	}
	res.Read = len(objs)
	res.Next = nextPage(in.Page, q, page)
	return res, nil
}

// notListable reports whether a list request was refused as such: 400 tooMany (RFC 7644
// §3.4.2.4), or the endpoint refusing GET without a filter (403, 404, 405, 501).
func notListable(err error) bool {
	se, ok := err.(*scim.Error)
	if !ok || se.Err != nil {
		return false
	}
	switch se.Status {
	case 400:
		return strings.EqualFold(se.ScimType, "tooMany")
	case 403, 404, 405, 501:
		return true
	}
	return false
}

// nextPage is the page after page, or nil when it was the last.
func nextPage(at PageToken, q scim.Query, page scim.ListResponse) *PageToken {
	n := len(page.Resources)
	if n == 0 {
		return nil
	}
	if q.UseCursor {
		if page.NextCursor == "" {
			return nil
		}
		return &PageToken{Cursor: page.NextCursor}
	}
	start := max(at.StartIndex, 1)
	first := page.Resources[0].ID
	switch {
	case first != "" && first == at.First: // the target ignored startIndex
		return nil
	case page.TotalResults > 0 && start+n > page.TotalResults:
		return nil
	case page.TotalResults == 0 && n < q.Count:
		return nil
	}
	return &PageToken{StartIndex: start + n, First: first}
}

// targetObject is what the store keeps of a remote resource.
func targetObject(kind string, r scim.Resource, membersHidden bool) store.TargetObject {
	o := store.TargetObject{Kind: kind, RemoteID: r.ID, ExternalID: r.ExternalID}
	body := map[string]any{}
	for k, v := range r.Attributes {
		switch strings.ToLower(k) {
		case "meta", "members", "groups", "schemas", "id":
			continue
		case "password": // never compared; a target should not return it, and it is not kept
			continue
		}
		body[k] = v
	}
	key := "userName"
	if kind == object.Group {
		key = "displayName"
	}
	o.Name, _ = scim.Attr(r.Attributes, key).(string)
	o.Body, _ = json.Marshal(body)
	if kind == object.Group && !membersHidden {
		o.Members = store.StringList(memberValues(scim.Attr(r.Attributes, "members")))
	}
	return o
}

// memberValues returns the sorted member ids of a members attribute ([] when none).
func memberValues(v any) []string {
	ids := []string{}
	ms, _ := v.([]any)
	for _, m := range ms {
		if mm, ok := m.(map[string]any); ok {
			if id := stringValue(scim.Attr(mm, "value")); id != "" {
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	return slices.Compact(ids)
}

func stringValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64, json.Number:
		return fmt.Sprint(x)
	}
	return ""
}

// ReadLinked reads back the provider's linked objects of one kind one by one (GET by id),
// for a target that cannot list: in object id order after in.After, in.Limit at a time. An
// object the target answers 404 for is left out of the read-back: gone.
func (a *Activities) ReadLinked(ctx context.Context, in ReadLinkedInput) (ReadLinkedResult, error) {
	var res ReadLinkedResult
	t, err := a.target(ctx, in.Provider)
	if err != nil {
		return res, err
	}
	links, err := a.Store.LiveLinks(ctx, t.provider.ID, in.Kind, in.After, max(in.Limit, 1))
	if err != nil {
		return res, err
	}
	hidden := in.Kind == object.Group && t.client.Compat().GroupMembersHidden
	var objs []store.TargetObject
	readAt := a.Store.Clock()
	for _, l := range links {
		r, err := t.client.Get(ctx, scimKind(in.Kind), l.Remote())
		if scim.IsNotFound(err) {
			res.Missing++
			continue
		}
		if err != nil {
			return res, classify(t.provider.Name, err)
		}
		if r.ID == "" {
			r.ID = l.Remote()
		}
		objs = append(objs, targetObject(in.Kind, r, hidden))
	}
	if err := a.Store.PutTargetObjects(ctx, in.ReadBack, t.provider.ID, readAt, objs); err != nil {
		return res, err
	}
	res.Read = len(objs)
	if len(links) == max(in.Limit, 1) {
		res.Next = links[len(links)-1].ObjectID
	}
	return res, nil
}

// FinishReadBackInput carries a read-back's figures to record.
type FinishReadBackInput struct {
	Provider string          `json:"provider"`
	Figures  ReadBackFigures `json:"figures"`
}

// FinishReadBack records what the read-back found and did, and drops what it read.
func (a *Activities) FinishReadBack(ctx context.Context, in FinishReadBackInput) error {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return err
	}
	b, err := json.Marshal(in.Figures)
	if err != nil {
		return err
	}
	return a.Store.FinishReadBack(ctx, p.ID, in.Figures.ID, b)
}
