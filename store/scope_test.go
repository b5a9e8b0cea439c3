package store_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

// scopeFixture is one directory exercising every scope rule:
//
//	eng ─ backend ─ db        (three levels)
//	contractors, sales
//	alice∈eng  bob∈backend  carol∈db  frank∈db,contractors  dave∈contractors
//	erin (no group)  gina (bound directly)  svc∈eng (service account)
//
//	wiki (mode all): eng, NOT contractors, disabled: sales  → eng tree minus contractors
//	chat (mode any): backend, user gina, disabled: eng     → backend tree + gina
//	open: no bindings                                       → everybody
//	closed: only a disabled binding                         → everybody
type scopeFixture struct {
	s      *store.Store
	users  map[string]string // name → id
	groups map[string]string
}

func newScopeFixture(t *testing.T) *scopeFixture {
	t.Helper()
	s := freshStore(t)
	ctx := ctxT(t)
	f := &scopeFixture{s: s, users: map[string]string{}, groups: map[string]string{}}
	mustTx(t, s, func(tx *store.Tx) error {
		group := func(name, parent string) error {
			g := store.Group{Name: name}
			if parent != "" {
				id := f.groups[parent]
				g.ParentID = &id
			}
			out, err := tx.CreateGroup(ctx, g)
			f.groups[name] = out.ID
			return err
		}
		for _, g := range [][2]string{{"eng", ""}, {"backend", "eng"}, {"db", "backend"}, {"contractors", ""}, {"sales", ""}} {
			if err := group(g[0], g[1]); err != nil {
				return err
			}
		}
		members := map[string][]string{
			"alice": {"eng"}, "bob": {"backend"}, "carol": {"db"}, "frank": {"db", "contractors"},
			"dave": {"contractors"}, "erin": nil, "gina": nil, "svc": {"eng"},
		}
		for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina", "svc"} {
			typ := store.UserInternal
			if name == "svc" {
				typ = store.UserServiceAccount
			}
			u, err := tx.CreateUser(ctx, store.User{Username: name, Type: typ, IsActive: true})
			if err != nil {
				return err
			}
			f.users[name] = u.ID
			for _, g := range members[name] {
				if err := tx.AddMember(ctx, f.groups[g], u.ID); err != nil {
					return err
				}
			}
		}
		app := func(name, mode string, bindings ...store.Binding) (string, error) {
			a, err := tx.CreateApplication(ctx, store.Application{Name: name, PolicyEngineMode: mode})
			if err != nil {
				return "", err
			}
			for _, b := range bindings {
				b.ApplicationID = a.ID
				if _, err := tx.CreateBinding(ctx, b); err != nil {
					return "", err
				}
			}
			return a.ID, nil
		}
		g := func(name string, negate, enabled bool) store.Binding {
			id := f.groups[name]
			return store.Binding{GroupID: &id, Negate: negate, Enabled: enabled}
		}
		gina := f.users["gina"]
		apps := map[string]string{}
		var err error
		if apps["wiki"], err = app("wiki", "all", g("eng", false, true), g("contractors", true, true), g("sales", false, false)); err != nil {
			return err
		}
		if apps["chat"], err = app("chat", "any", g("backend", false, true), store.Binding{UserID: &gina, Enabled: true}, g("eng", false, false)); err != nil {
			return err
		}
		if apps["open"], err = app("open", "any"); err != nil {
			return err
		}
		if apps["closed"], err = app("closed", "any", g("sales", false, false)); err != nil {
			return err
		}
		for _, p := range []struct {
			name, app string
			excludeSA bool
			filters   []string
		}{
			{"p-wiki", "wiki", true, nil},
			{"p-wiki-svc", "wiki", false, nil},
			{"p-chat", "chat", true, []string{"backend"}},
			{"p-open", "open", true, nil},
			{"p-closed", "closed", true, nil},
			{"p-none", "", false, []string{"eng", "db"}},
		} {
			cfg := provider(p.name)
			cfg.ExcludeServiceAccounts = p.excludeSA
			if p.app != "" {
				id := apps[p.app]
				cfg.ApplicationID = &id
			}
			saved, err := tx.UpsertProvider(ctx, cfg)
			if err != nil {
				return err
			}
			var ids []string
			for _, name := range p.filters {
				ids = append(ids, f.groups[name])
			}
			if err := tx.SetGroupFilters(ctx, saved.ID, ids); err != nil {
				return err
			}
		}
		return nil
	})
	return f
}

func (f *scopeFixture) ids(m map[string]string, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = m[n]
	}
	return sorted(out...)
}

func (f *scopeFixture) providerID(t *testing.T, name string) string {
	p, err := f.s.Provider(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func TestScopeRules(t *testing.T) {
	f := newScopeFixture(t)
	ctx := ctxT(t)
	allUsers := []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina", "svc"}
	allHumans := []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina"}
	allGroups := []string{"eng", "backend", "db", "contractors", "sales"}
	cases := []struct {
		provider string
		users    []string
		groups   []string
	}{
		{"p-wiki", []string{"alice", "bob", "carol"}, allGroups},
		{"p-wiki-svc", []string{"alice", "bob", "carol", "svc"}, allGroups},
		{"p-chat", []string{"bob", "carol", "frank", "gina"}, []string{"backend"}},
		{"p-open", allHumans, allGroups},
		{"p-closed", allHumans, allGroups},
		{"p-none", allUsers, []string{"eng", "db"}},
	}
	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			pid := f.providerID(t, c.provider)
			gotUsers, err := f.s.ScopedUserIDs(ctx, pid, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if want := f.ids(f.users, c.users...); !equal(gotUsers, want) {
				t.Errorf("users = %v\nwant %v (%v)", gotUsers, want, c.users)
			}
			gotGroups, err := f.s.ScopedGroupIDs(ctx, pid, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if want := f.ids(f.groups, c.groups...); !equal(gotGroups, want) {
				t.Errorf("groups = %v\nwant %v (%v)", gotGroups, want, c.groups)
			}
			// The id-filtered form agrees with the paged form.
			inScope, err := f.s.UsersInScope(ctx, pid, f.ids(f.users, allUsers...))
			if err != nil {
				t.Fatal(err)
			}
			if !equal(inScope, gotUsers) {
				t.Errorf("UsersInScope = %v, want %v", inScope, gotUsers)
			}
			groupsInScope, err := f.s.GroupsInScope(ctx, pid, f.ids(f.groups, allGroups...))
			if err != nil {
				t.Fatal(err)
			}
			if !equal(groupsInScope, gotGroups) {
				t.Errorf("GroupsInScope = %v, want %v", groupsInScope, gotGroups)
			}
		})
	}
}

func TestStaleLinksAreDeletedOrOutOfScopeObjects(t *testing.T) {
	f := newScopeFixture(t)
	ctx := ctxT(t)
	pid := f.providerID(t, "p-chat")
	remote := 0
	link := func(kind, id string) {
		remote++
		r := fmt.Sprintf("r%d", remote)
		if err := f.s.SaveLink(ctx, store.Link{ProviderID: pid, Kind: kind, ObjectID: id, RemoteID: &r, PayloadHash: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"bob", "alice", "gina", "erin"} { // alice and erin are out of chat's scope
		link(object.User, f.users[u])
	}
	for _, g := range []string{"backend", "eng", "sales"} { // eng and sales were synced before the filter
		link(object.Group, f.groups[g])
	}
	mustTx(t, f.s, func(tx *store.Tx) error {
		if err := tx.DeleteUser(ctx, f.users["gina"]); err != nil {
			return err
		}
		return tx.DeleteGroup(ctx, f.groups["sales"])
	})

	users, err := f.s.StaleLinkIDs(ctx, pid, object.User, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.ids(f.users, "alice", "erin", "gina"); !equal(users, want) {
		t.Errorf("stale users = %v, want %v", users, want)
	}
	groups, err := f.s.StaleLinkIDs(ctx, pid, object.Group, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	// Only the deleted group: changing group filters removes nothing synced before.
	if want := f.ids(f.groups, "sales"); !equal(groups, want) {
		t.Errorf("stale groups = %v, want %v", groups, want)
	}
	links, err := f.s.Links(ctx, pid, object.User, []string{f.users["gina"]})
	if err != nil || links[f.users["gina"]].Remote() == "" {
		t.Errorf("the link of a deleted user must survive until deprovisioned: %v %+v", err, links)
	}
}

func TestKeysetPagingSeesEveryIDOnceWhileRowsAreInserted(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("paging"))
	mustTx(t, s, func(tx *store.Tx) error {
		for i := range 500 {
			if _, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("before%03d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	var before []string
	if err := s.DB().SelectContext(ctx, &before, `SELECT id FROM users ORDER BY id`); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			err := s.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.CreateUser(ctx, store.User{Username: fmt.Sprintf("during%05d", i)})
				return err
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()

	seen := map[string]int{}
	after, pages := "", 0
	for {
		page, err := s.ScopedUserIDs(ctx, p.ID, after, 37)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages++
		for _, id := range page {
			seen[id]++
		}
		after = page[len(page)-1]
	}
	stop.Store(true)
	wg.Wait()

	for _, id := range before {
		if seen[id] != 1 {
			t.Fatalf("id present before paging was seen %d times", seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("id %s seen %d times", id, n)
		}
	}
	if pages < 500/37 {
		t.Fatalf("only %d pages", pages)
	}
}
