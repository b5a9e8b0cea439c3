package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// The scope rules (docs/architecture.md, "Scope"), in SQL so that a page of in-scope ids costs
// one query:
//
//   - users: every user, minus service accounts when the provider excludes them, minus
//     users the provider's application does not admit;
//   - an application admits a user when, among its enabled bindings, any (mode "any") or
//     every (mode "all") binding passes; a binding passes when the user is bound directly or
//     is a member of the bound group or of one of its descendants, inverted by negate; an
//     application without enabled bindings admits everybody;
//   - groups: the provider's group filters when it has any, else every group. Group
//     filters never limit users.
//
// $1 is the provider id. Descendants are walked with UNION, so a cycle in parent_id ends.
const scopedUsersCTE = `
WITH RECURSIVE
prov AS (
	SELECT p.exclude_service_accounts, p.application_id, COALESCE(a.policy_engine_mode, 'any') AS mode
	FROM providers p LEFT JOIN applications a ON a.id = p.application_id
	WHERE p.id = $1
),
bindings AS (
	SELECT b.id, b.group_id, b.user_id, b.negate
	FROM application_bindings b JOIN prov ON b.application_id = prov.application_id
	WHERE b.enabled
),
tree(binding_id, group_id) AS (
	SELECT id, group_id FROM bindings WHERE group_id IS NOT NULL
	UNION
	SELECT t.binding_id, g.id FROM tree t JOIN groups g ON g.parent_id = t.group_id
),
matched(binding_id, user_id) AS (
	SELECT t.binding_id, gm.user_id FROM tree t JOIN group_members gm ON gm.group_id = t.group_id
	UNION
	SELECT id, user_id FROM bindings WHERE user_id IS NOT NULL
),
totals AS (
	SELECT count(*) AS n, count(*) FILTER (WHERE negate) AS negated FROM bindings
),
-- Per matched user: plain bindings it matches (they pass) and negated ones it matches (they
-- fail). Unmatched negated bindings pass, so passing = plain + (negated - negated matched).
matches AS (
	SELECT m.user_id,
	       count(*) FILTER (WHERE NOT b.negate) AS plain,
	       count(*) FILTER (WHERE b.negate) AS negated
	FROM matched m JOIN bindings b ON b.id = m.binding_id
	GROUP BY m.user_id
),
scoped AS (
	SELECT u.id FROM users u
	CROSS JOIN prov CROSS JOIN totals
	LEFT JOIN matches x ON x.user_id = u.id
	WHERE NOT (prov.exclude_service_accounts AND u.type = 'service_account')
	  AND (totals.n = 0
	       OR (prov.mode = 'any' AND COALESCE(x.plain, 0) + totals.negated - COALESCE(x.negated, 0) > 0)
	       OR (prov.mode = 'all' AND COALESCE(x.plain, 0) + totals.negated - COALESCE(x.negated, 0) = totals.n))
)
`

// ScopedUserIDs returns up to limit ids of users in the provider's scope, greater than
// after (empty for the first page), in id order. Callers page by passing the last id of the
// previous page, which returns every in-scope id exactly once even while rows are added.
func (s *Store) ScopedUserIDs(ctx context.Context, providerID, after string, limit int) ([]string, error) {
	ids := []string{}
	err := s.db.SelectContext(ctx, &ids, scopedUsersCTE+`
		SELECT id FROM scoped
		WHERE id > COALESCE(NULLIF($2, '')::uuid, '00000000-0000-0000-0000-000000000000')
		ORDER BY id LIMIT $3`, providerID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: scoped users of provider %s: %w", providerID, translate(err))
	}
	return ids, nil
}

// UsersInScope returns those of ids that exist and are in the provider's scope, sorted.
func (s *Store) UsersInScope(ctx context.Context, providerID string, ids []string) ([]string, error) {
	out := []string{}
	if len(ids) == 0 {
		return out, nil
	}
	err := s.db.SelectContext(ctx, &out, scopedUsersCTE+`
		SELECT id FROM scoped WHERE id = ANY($2::uuid[]) ORDER BY id`,
		providerID, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("store: users in scope of provider %s: %w", providerID, translate(err))
	}
	return out, nil
}

const scopedGroupsWhere = `
	(NOT EXISTS (SELECT 1 FROM provider_group_filters f WHERE f.provider_id = $1)
	 OR EXISTS (SELECT 1 FROM provider_group_filters f WHERE f.provider_id = $1 AND f.group_id = g.id))
	AND EXISTS (SELECT 1 FROM providers p WHERE p.id = $1)`

// ScopedGroupIDs pages through the ids of groups in the provider's scope like ScopedUserIDs.
func (s *Store) ScopedGroupIDs(ctx context.Context, providerID, after string, limit int) ([]string, error) {
	ids := []string{}
	err := s.db.SelectContext(ctx, &ids, `
		SELECT g.id FROM groups g
		WHERE g.id > COALESCE(NULLIF($2, '')::uuid, '00000000-0000-0000-0000-000000000000') AND `+scopedGroupsWhere+`
		ORDER BY g.id LIMIT $3`, providerID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: scoped groups of provider %s: %w", providerID, translate(err))
	}
	return ids, nil
}

// GroupsInScope returns those of ids that exist and are in the provider's scope, sorted.
func (s *Store) GroupsInScope(ctx context.Context, providerID string, ids []string) ([]string, error) {
	out := []string{}
	if len(ids) == 0 {
		return out, nil
	}
	err := s.db.SelectContext(ctx, &out, `
		SELECT g.id FROM groups g WHERE g.id = ANY($2::uuid[]) AND `+scopedGroupsWhere+` ORDER BY g.id`,
		providerID, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("store: groups in scope of provider %s: %w", providerID, translate(err))
	}
	return out, nil
}
