package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// freshStore opens a store on a database of the test's own, so tests that assert whole
// tables see only their own rows.
func freshStore(t *testing.T) *store.Store {
	t.Helper()
	dsn := testenv.NewDatabase(t, true)
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustTx runs fn in a committed transaction and fails the test on error.
func mustTx(t *testing.T, s *store.Store, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := s.InTx(ctxT(t), fn); err != nil {
		t.Fatal(err)
	}
}

func createUser(t *testing.T, s *store.Store, u store.User) store.User {
	t.Helper()
	var out store.User
	mustTx(t, s, func(tx *store.Tx) (err error) {
		out, err = tx.CreateUser(ctxT(t), u)
		return err
	})
	return out
}

func createGroup(t *testing.T, s *store.Store, name string, parent *string) store.Group {
	t.Helper()
	var out store.Group
	mustTx(t, s, func(tx *store.Tx) (err error) {
		out, err = tx.CreateGroup(ctxT(t), store.Group{Name: name, ParentID: parent})
		return err
	})
	return out
}

func createProvider(t *testing.T, s *store.Store, p store.Provider) store.Provider {
	t.Helper()
	var out store.Provider
	mustTx(t, s, func(tx *store.Tx) (err error) {
		out, err = tx.UpsertProvider(ctxT(t), p)
		return err
	})
	return out
}

func provider(name string) store.Provider {
	p := store.ProviderDefaults()
	p.Name = name
	p.BaseURL = "https://scim.example.test/v2"
	p.Token = "env:TEST_TOKEN"
	return p
}

func TestMigrateEmptyDatabaseThenNoop(t *testing.T) {
	ctx := ctxT(t)
	dsn := testenv.NewDatabase(t, false)
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatalf("first migrate: %v", err)
	}
	wantVersions := []int64{1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12}
	if !slices.Equal(applied, wantVersions) {
		t.Fatalf("first migrate applied %v, want %v", applied, wantVersions)
	}
	var tables []string
	if err := s.DB().SelectContext(ctx, &tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	want := []string{"application_bindings", "applications", "direct_deprovisions", "goose_db_version", "group_members", "groups",
		"installation", "property_mappings", "provider_group_filters", "provider_mappings", "provider_pacing",
		"provider_pacing_slots", "provider_service_configs", "providers", "read_back_requests", "read_backs", "sync_changes", "sync_changes_parked", "sync_links",
		"target_health", "target_objects", "users"}
	if !equal(tables, want) {
		t.Fatalf("tables = %v\nwant %v", tables, want)
	}

	applied, err = s.Migrate(ctx)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", applied)
	}
	var versions int
	if err := s.DB().GetContext(ctx, &versions, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`); err != nil {
		t.Fatal(err)
	}
	if versions != len(wantVersions) {
		t.Fatalf("goose_db_version has %d applied rows, want %d", versions, len(wantVersions))
	}
}

func TestConcurrentMigrateTakesTurns(t *testing.T) {
	ctx := ctxT(t)
	dsn := testenv.NewDatabase(t, false)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			s, err := store.Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			_, err = s.Migrate(ctx)
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
}

func TestErrorsAreTranslated(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	createUser(t, s, store.User{Username: "ada", Email: "ada@example.test"})

	err := s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Username: "ada"})
		return err
	})
	var conflict *store.ConflictError
	if !errors.As(err, &conflict) || conflict.Constraint != "users_username_key" {
		t.Fatalf("duplicate username: got %v, want ConflictError on users_username_key", err)
	}

	err = s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Username: "bob", Type: "robot"})
		return err
	})
	var invalid *store.InvalidError
	if !errors.As(err, &invalid) || invalid.Constraint != "users_type_check" {
		t.Fatalf("bad type: got %v, want InvalidError on users_type_check", err)
	}

	err = s.InTx(ctx, func(tx *store.Tx) error {
		return tx.DeleteUser(ctx, "7d0b6a44-0f4a-4c7e-9d7e-2a8f0f6d5b11")
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of unknown user: got %v, want ErrNotFound", err)
	}

	p := provider("bad")
	p.CompatibilityMode = "okta"
	err = s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.UpsertProvider(ctx, p); return err })
	if !errors.As(err, &invalid) || invalid.Constraint != "providers_compatibility_mode_check" {
		t.Fatalf("bad compatibility mode: got %v, want InvalidError", err)
	}
}

func TestUsersByIDsCarriesGroups(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	u := createUser(t, s, store.User{Username: "ada", Name: "Ada Lovelace", Email: "ada@example.test",
		IsActive: true, Locale: "en", Attributes: store.JSONMap{"dept": "R&D"}})
	parent := createGroup(t, s, "engineering", nil)
	child := createGroup(t, s, "compilers", &parent.ID)
	mustTx(t, s, func(tx *store.Tx) error {
		if err := tx.AddMember(ctx, child.ID, u.ID); err != nil {
			return err
		}
		return tx.AddMember(ctx, parent.ID, u.ID)
	})

	users, err := s.UsersByIDs(ctx, []string{u.ID, "00000000-0000-0000-0000-000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 {
		t.Fatalf("got %d users, want 1", len(users))
	}
	got := users[0]
	if got.Username != "ada" || got.Name != "Ada Lovelace" || got.Email != "ada@example.test" || !got.IsActive ||
		got.Type != store.UserInternal || got.Locale != "en" || got.Attributes["dept"] != "R&D" ||
		!equal(got.Groups, []string{"compilers", "engineering"}) {
		t.Fatalf("user = %+v", got)
	}

	groups, err := s.GroupsByIDs(ctx, []string{child.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].ParentName != "engineering" || *groups[0].ParentID != parent.ID {
		t.Fatalf("groups = %+v", groups)
	}

	direct, err := s.GroupMembers(ctx, []string{parent.ID, child.ID}, false)
	if err != nil {
		t.Fatal(err)
	}
	other := createUser(t, s, store.User{Username: "grace"})
	mustTx(t, s, func(tx *store.Tx) error { return tx.AddMember(ctx, child.ID, other.ID) })
	nested, err := s.GroupMembers(ctx, []string{parent.ID}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(direct[parent.ID], []string{u.ID}) || !equal(direct[child.ID], []string{u.ID}) {
		t.Fatalf("direct members = %v", direct)
	}
	if !equal(nested[parent.ID], sorted(u.ID, other.ID)) {
		t.Fatalf("nested members of parent = %v, want %v", nested[parent.ID], sorted(u.ID, other.ID))
	}
}

func TestProviderUpsertKeepsCacheUnlessChanged(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("slack"))
	if p.PageSize != 100 || p.FullSyncInterval != time.Hour || !p.VerifyTLS || p.DeprovisionAction != "delete" {
		t.Fatalf("defaults not stored: %+v", p)
	}
	if err := s.PutServiceConfig(ctx, p.ID, []byte(`{"patch":{"supported":true}}`)); err != nil {
		t.Fatal(err)
	}
	createProvider(t, s, provider("slack")) // same settings
	if _, ok, _ := s.CachedServiceConfig(ctx, p.ID, time.Hour); !ok {
		t.Fatal("an unchanged upsert cleared the cached ServiceProviderConfig")
	}
	changed := provider("slack")
	changed.CompatibilityMode = "slack"
	createProvider(t, s, changed)
	if _, ok, _ := s.CachedServiceConfig(ctx, p.ID, time.Hour); ok {
		t.Fatal("changing the provider did not clear the cached ServiceProviderConfig")
	}
	if err := s.PutServiceConfig(ctx, p.ID, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, ok, _ := s.CachedServiceConfig(ctx, p.ID, time.Hour); ok {
		t.Fatal("a cached config older than maxAge was returned")
	}
}

// TestProviderBasicAuthAndDiscoveryRoundTrip: the columns of 00008 store what they are
// given, take their defaults, count as a change (the cached ServiceProviderConfig is
// cleared), and refuse values outside their lists.
func TestProviderBasicAuthAndDiscoveryRoundTrip(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	def := createProvider(t, s, provider("plain"))
	if def.Discovery != store.DiscoveryAuto || !def.ServiceConfig.IsZero() || def.BasicUsername != "" || def.BasicPassword != "" {
		t.Fatalf("defaults: discovery %q, override %+v, basic %q/%q", def.Discovery, def.ServiceConfig, def.BasicUsername, def.BasicPassword)
	}

	yes := false
	p := provider("vc")
	p.CompatibilityMode, p.AuthMode, p.Token = "vcenter", "basic", ""
	p.BasicUsername, p.BasicPassword = "scim-admin", "env:VC_PASSWORD"
	p.Discovery = store.DiscoveryOff
	p.ServiceConfig = store.ServiceConfigOverride{Filter: &yes, Bulk: &store.BulkOverride{Supported: true, MaxOperations: 50, MaxPayloadSize: 65536}}
	got := createProvider(t, s, p)
	if got.CompatibilityMode != "vcenter" || got.AuthMode != "basic" || got.BasicUsername != "scim-admin" ||
		got.BasicPassword != "env:VC_PASSWORD" || got.Discovery != "off" || !got.ServiceConfig.Equal(p.ServiceConfig) {
		t.Fatalf("stored %+v", got)
	}
	var raw string
	if err := s.DB().GetContext(ctx, &raw, `SELECT service_provider_config::text FROM providers WHERE name = 'vc'`); err != nil {
		t.Fatal(err)
	}
	if want := `{"bulk": {"supported": true, "maxOperations": 50, "maxPayloadSize": 65536}, "filter": false}`; raw != want {
		t.Errorf("service_provider_config = %s, want %s", raw, want)
	}
	loaded, err := s.Provider(ctx, "vc")
	if err != nil || !loaded.ServiceConfig.Equal(p.ServiceConfig) || loaded.ServiceConfig.Patch != nil {
		t.Fatalf("loaded %+v, %v", loaded.ServiceConfig, err)
	}

	// A change of the override alone clears the cache.
	if err := s.PutServiceConfig(ctx, got.ID, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	p.ServiceConfig.Filter = nil
	createProvider(t, s, p)
	if _, ok, _ := s.CachedServiceConfig(ctx, got.ID, time.Hour); ok {
		t.Error("changing service_provider_config did not clear the cached ServiceProviderConfig")
	}

	for _, tc := range []struct {
		edit       func(p *store.Provider)
		constraint string
	}{
		{func(p *store.Provider) { p.Discovery = "sometimes" }, "providers_discovery_check"},
		{func(p *store.Provider) { p.AuthMode = "digest" }, "providers_auth_mode_check"},
		{func(p *store.Provider) { p.CompatibilityMode = "okta" }, "providers_compatibility_mode_check"},
	} {
		bad := provider("bad")
		tc.edit(&bad)
		err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.UpsertProvider(ctx, bad); return err })
		var invalid *store.InvalidError
		if !errors.As(err, &invalid) || invalid.Constraint != tc.constraint {
			t.Errorf("got %v, want InvalidError on %s", err, tc.constraint)
		}
	}
}
