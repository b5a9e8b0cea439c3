package integration

import (
	"fmt"
	"sort"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/store"
)

// directory is a fixture directory and the facts a test needs to compute the expected
// remote state without running the product's own mapping code.
type directory struct {
	users       []store.User
	groups      []store.Group
	members     map[string][]string // group name → usernames (direct members)
	parent      map[string]string   // group name → parent name
	inScope     map[string]bool     // username → in the provider's scope
	application string
}

// buildDirectory writes a directory of nUsers users and 20 nested groups:
//
//	g00 ─┬ g01 ─ g05, g06 ─ (g13 under g05, g14 under g06)
//	     ├ g02 ─ g07, g08 ─ (g15 under g07, g16 under g08)
//	     ├ g03 ─ g09, g10
//	     └ g04 ─ g11, g12
//	g17, g18, g19 (outside the tree)
//
// The application "portal" is bound to g00, so members of the tree (any depth) may use it.
// Users 0..n-41 belong to a group of the tree (every fifth also to g18); the next 30 only
// to g17..g19 and the next 9 to no group: both out of scope. The last user is a service
// account in g00, excluded by the provider.
func buildDirectory(e *env, nUsers int) *directory {
	d := &directory{members: map[string][]string{}, parent: map[string]string{}, inScope: map[string]bool{}, application: "portal"}
	parents := map[int]int{1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 6: 1, 7: 2, 8: 2, 9: 3, 10: 3, 11: 4, 12: 4, 13: 5, 14: 6, 15: 7, 16: 8}
	e.tx(func(tx *store.Tx) error {
		ids := map[int]string{}
		for i := 0; i < 20; i++ {
			g := store.Group{Name: fmt.Sprintf("g%02d", i)}
			if p, ok := parents[i]; ok {
				id := ids[p]
				g.ParentID = &id
				d.parent[g.Name] = fmt.Sprintf("g%02d", p)
			}
			saved, err := tx.CreateGroup(e.ctx, g)
			if err != nil {
				return err
			}
			ids[i] = saved.ID
			d.groups = append(d.groups, saved)
		}
		app, err := tx.CreateApplication(e.ctx, store.Application{Name: d.application})
		if err != nil {
			return err
		}
		root := ids[0]
		if _, err := tx.CreateBinding(e.ctx, store.Binding{ApplicationID: app.ID, GroupID: &root, Enabled: true}); err != nil {
			return err
		}
		for i := 0; i < nUsers; i++ {
			u := store.User{
				Username: fmt.Sprintf("user%04d", i),
				Name:     fmt.Sprintf("Given%d Family%d", i, i),
				Email:    fmt.Sprintf("user%04d@example.test", i),
				IsActive: i%7 != 0,
			}
			if i%3 == 0 {
				u.Locale = "en-GB"
			}
			var groups []int
			switch {
			case i == nUsers-1:
				u.Type = store.UserServiceAccount
				groups = []int{0}
			case i < nUsers-40:
				groups = []int{i % 17}
				if i%5 == 0 {
					groups = append(groups, 18)
				}
				d.inScope[u.Username] = true
			case i < nUsers-10:
				groups = []int{17 + i%3}
			}
			saved, err := tx.CreateUser(e.ctx, u)
			if err != nil {
				return err
			}
			d.users = append(d.users, saved)
			for _, g := range groups {
				if err := tx.AddMember(e.ctx, ids[g], saved.ID); err != nil {
					return err
				}
				name := fmt.Sprintf("g%02d", g)
				d.members[name] = append(d.members[name], saved.Username)
			}
		}
		return nil
	})
	return d
}

// expectedUser is what the default user mapping must produce (shared/reference/anchors.md).
func expectedUser(u store.User) map[string]any {
	given, family := splitName(u.Name)
	p := map[string]any{
		"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    u.Username,
		"active":      u.IsActive,
		"externalId":  mapping.HashedUserID(u.ID, installationSecret),
		"displayName": u.Name,
		"name":        map[string]any{"formatted": u.Name, "givenName": given, "familyName": family},
		"emails":      []any{map[string]any{"value": u.Email, "type": "other", "primary": true}},
	}
	if u.Locale != "" {
		p["locale"] = u.Locale
	}
	return normalize(p)
}

func splitName(n string) (string, string) {
	for i := range n {
		if n[i] == ' ' {
			return n[:i], n[i+1:]
		}
	}
	return n, ""
}

func expectedGroup(g store.Group) map[string]any {
	return normalize(map[string]any{
		"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": g.Name,
		"externalId":  g.ID,
	})
}

// expectedUsers is the remote user state: every in-scope user, by userName.
func (d *directory) expectedUsers() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, u := range d.users {
		if d.inScope[u.Username] {
			out[u.Username] = expectedUser(u)
		}
	}
	return out
}

// expectedMembers is the remote membership: each group's direct members that are in scope
// (flatten adds the members of descendants).
func (d *directory) expectedMembers(flatten bool) map[string][]string {
	out := map[string][]string{}
	for _, g := range d.groups {
		set := map[string]bool{}
		for _, name := range d.groupAndDescendants(g.Name, flatten) {
			for _, u := range d.members[name] {
				if d.inScope[u] {
					set[u] = true
				}
			}
		}
		var list []string
		for u := range set {
			list = append(list, u)
		}
		sort.Strings(list)
		out[g.Name] = list
	}
	return out
}

func (d *directory) groupAndDescendants(name string, flatten bool) []string {
	out := []string{name}
	if !flatten {
		return out
	}
	for child, parent := range d.parent {
		if parent == name {
			out = append(out, d.groupAndDescendants(child, true)...)
		}
	}
	return out
}
