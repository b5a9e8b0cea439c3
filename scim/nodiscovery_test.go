package scim_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

// discoveryRequests counts the requests to either discovery path.
func discoveryRequests(srv *scimtest.Server) int {
	return srv.Count("GET /ServiceProviderConfig") + srv.Count("GET /ServiceProviderConfigs")
}

// TestModesWithoutDiscovery: vcenter and gitlab never request the ServiceProviderConfig;
// they work with their fixed capability set against servers whose discovery answers
// nothing usable, and the servers' quirks bite a client in the default mode.
func TestModesWithoutDiscovery(t *testing.T) {
	ctx := context.Background()
	assumed := scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true},
		Filter: scim.FilterConfig{Supported: true}, Assumed: true}
	for _, tt := range []struct {
		mode scim.Mode
		want scim.Capabilities
	}{
		{scim.ModeVCenter, scim.Capabilities{Mode: scim.ModeVCenter, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePut,
			MaxMembersPerRequest: scim.DefaultMaxMembersPerRequest, Filter: true}},
		{scim.ModeGitLab, scim.Capabilities{Mode: scim.ModeGitLab, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePatch,
			MemberPatch: true, MaxMembersPerRequest: scim.DefaultMaxMembersPerRequest, Filter: true}},
	} {
		t.Run(string(tt.mode), func(t *testing.T) {
			srv, c := newPair(t, scimtest.Options{Quirks: scimtest.Profile(string(tt.mode))}, scim.Options{Mode: tt.mode})
			spc, err := c.Discover(ctx)
			if err != nil || spc != assumed {
				t.Fatalf("Discover = %+v, %v; want the assumed configuration %+v", spc, err, assumed)
			}
			caps, err := c.Capabilities(ctx)
			if err != nil || !reflect.DeepEqual(caps, tt.want) {
				t.Fatalf("Capabilities =\n %+v, %v\nwant\n %+v", caps, err, tt.want)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Fatalf("%d requests sent by Discover and Capabilities, want none", n)
			}

			// A user is changed by PATCH; a vcenter group is created and replaced with its
			// members inline.
			u1 := srv.AddUser(map[string]any{"userName": "u1"})
			u2 := srv.AddUser(map[string]any{"userName": "u2"})
			if _, err := c.Patch(ctx, scim.Users, u1, []scim.PatchOp{{Op: "replace", Path: "title", Value: "t"}}); err != nil {
				t.Fatalf("PATCH user: %v", err)
			}
			g, err := c.Create(ctx, scim.Groups, map[string]any{"displayName": "g", "members": scim.MemberRefs([]string{u1, u2}, caps)})
			if err != nil {
				t.Fatalf("create group: %v", err)
			}
			if got := srv.GroupMembers(g.ID); !reflect.DeepEqual(got, sortedIDs(u1, u2)) {
				t.Errorf("members after create = %v, want %v", got, sortedIDs(u1, u2))
			}
			if tt.mode == scim.ModeVCenter {
				if err := c.UpdateMembers(ctx, g.ID, nil, []string{u2}); !errors.Is(err, scim.ErrUnsupported) {
					t.Errorf("UpdateMembers = %v, want ErrUnsupported (members are written inline)", err)
				}
				if _, err := c.Replace(ctx, scim.Groups, g.ID, map[string]any{"displayName": "g", "members": scim.MemberRefs([]string{u1}, caps)}); err != nil {
					t.Fatalf("PUT group: %v", err)
				}
			} else if err := c.UpdateMembers(ctx, g.ID, nil, []string{u2}); err != nil {
				t.Fatalf("UpdateMembers: %v", err)
			}
			if got := srv.GroupMembers(g.ID); !reflect.DeepEqual(got, []string{u1}) {
				t.Errorf("members after the change = %v, want [%s]", got, u1)
			}
			if n := discoveryRequests(srv); n != 0 {
				t.Errorf("%d discovery requests, want none", n)
			}
			if _, err := c.Bulk(ctx, []scim.BulkOperation{{Method: "DELETE", Kind: scim.Users, ID: u2}}, 0); !errors.Is(err, scim.ErrUnsupported) {
				t.Errorf("Bulk = %v, want ErrUnsupported: the assumed set has no Bulk", err)
			}
			if n := srv.Count("POST /Bulk"); n != 0 {
				t.Errorf("%d Bulk requests, want none", n)
			}
		})
	}

	t.Run("the quirks bite without the mode", func(t *testing.T) {
		// vcenter's discovery answers 500: a default client cannot even start; told that
		// the target takes PATCH, its member PATCHes are refused.
		srv, c := newPair(t, scimtest.Options{Quirks: scimtest.Profile("vcenter")}, scim.Options{})
		if _, err := c.Discover(ctx); scim.StatusOf(err) != http.StatusInternalServerError {
			t.Errorf("vcenter server, default mode: Discover err = %v, want 500", err)
		}
		u := srv.AddUser(map[string]any{"userName": "u"})
		gid := srv.AddGroup(map[string]any{"displayName": "g"})
		c = clientFor(t, srv, scim.Options{Config: &scim.ServiceProviderConfig{Patch: scim.Supported{Supported: true}}})
		if err := c.UpdateMembers(ctx, gid, []string{u}, nil); scim.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("vcenter server, member PATCH: err = %v, want 400", err)
		}

		// gitlab's discovery answers 404: the fallback has no PATCH, and its PUT is refused.
		gl, c := newPair(t, scimtest.Options{Quirks: scimtest.Profile("gitlab")}, scim.Options{})
		caps, err := c.Capabilities(ctx)
		if err != nil || caps.UserUpdate != scim.UpdatePut || discoveryRequests(gl) != 1 {
			t.Fatalf("gitlab server, default mode: caps %+v, %v after %d discovery requests; want the PUT fallback after one",
				caps, err, discoveryRequests(gl))
		}
		id := gl.AddUser(map[string]any{"userName": "u"})
		if _, err := c.Replace(ctx, scim.Users, id, map[string]any{"userName": "u", "title": "t"}); scim.StatusOf(err) != http.StatusMethodNotAllowed {
			t.Errorf("gitlab server, PUT user: err = %v, want 405", err)
		}
	})
}

// clientFor is a client of srv (which takes testToken) with opts.
func clientFor(t *testing.T, srv *scimtest.Server, opts scim.Options) *scim.Client {
	t.Helper()
	opts.BaseURL, opts.HTTPClient = srv.URL, srv.Client()
	if opts.Token == "" && opts.Basic == nil {
		opts.Token = testToken
	}
	c, err := scim.New(opts)
	if err != nil {
		t.Fatalf("scim.New: %v", err)
	}
	return c
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// TestDiscoveryOffAndOverride: with NoDiscovery no discovery request is sent and the
// override's capabilities are used; with discovery on, the override wins for the fields
// it gives and the discovered document decides the others.
func TestDiscoveryOffAndOverride(t *testing.T) {
	ctx := context.Background()
	yes, no := true, false
	t.Run("off", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{NoDiscovery: true,
			Override: &scim.ConfigOverride{Patch: &yes, Bulk: &scim.BulkConfig{Supported: false}, Filter: &yes}})
		spc, err := c.Discover(ctx)
		if err != nil || spc != (scim.ServiceProviderConfig{Assumed: true}) {
			t.Fatalf("Discover = %+v, %v; want an assumed document with nothing optional", spc, err)
		}
		caps, err := c.Capabilities(ctx)
		want := scim.Capabilities{Mode: scim.ModeDefault, UserUpdate: scim.UpdatePatch, GroupUpdate: scim.UpdatePatch,
			MemberPatch: true, MaxMembersPerRequest: scim.DefaultMaxMembersPerRequest, Filter: true}
		if err != nil || !reflect.DeepEqual(caps, want) {
			t.Fatalf("Capabilities =\n %+v, %v\nwant\n %+v", caps, err, want)
		}
		if _, err := c.Bulk(ctx, []scim.BulkOperation{{Method: "POST", Kind: scim.Users, Data: map[string]any{"userName": "a"}}}, 0); !errors.Is(err, scim.ErrUnsupported) {
			t.Errorf("Bulk = %v, want ErrUnsupported (the override says no Bulk; the server has it)", err)
		}
		if got := srv.Counts(); len(got) != 0 {
			t.Errorf("requests %v, want none", got)
		}
	})
	t.Run("off ignores a cached document", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{NoDiscovery: true,
			Config: &scim.ServiceProviderConfig{Bulk: scim.BulkConfig{Supported: true}}})
		caps, err := c.Capabilities(ctx)
		if err != nil || caps.Bulk || caps.MemberPatch || caps.Filter || len(srv.Requests()) != 0 {
			t.Errorf("Capabilities = %+v, %v after %d requests; want nothing optional, no request", caps, err, len(srv.Requests()))
		}
	})
	t.Run("off with a bulk override", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{NoDiscovery: true,
			Override: &scim.ConfigOverride{Bulk: &scim.BulkConfig{Supported: true, MaxOperations: 2, MaxPayloadSize: 4096}}})
		var ops []scim.BulkOperation
		for _, n := range []string{"a", "b", "c"} {
			ops = append(ops, scim.BulkOperation{Method: "POST", Kind: scim.Users, Data: map[string]any{"userName": n}})
		}
		results, err := c.Bulk(ctx, ops, 0)
		if err != nil || len(results) != 3 {
			t.Fatalf("Bulk = %v, %v", results, err)
		}
		if got := srv.Counts(); !reflect.DeepEqual(got, map[string]int{"POST /Bulk": 2}) {
			t.Errorf("requests %v, want two Bulk requests of at most 2 operations and no discovery", got)
		}
	})
	t.Run("auto: the override wins for the fields it gives", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Config: scimtest.Config{NoFilter: true, BulkMaxOperations: 7}},
			scim.Options{Override: &scim.ConfigOverride{Bulk: &scim.BulkConfig{Supported: true, MaxPayloadSize: 5000}, Patch: &no}})
		caps, err := c.Capabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := scim.Capabilities{Mode: scim.ModeDefault, UserUpdate: scim.UpdatePut, GroupUpdate: scim.UpdatePut,
			MaxMembersPerRequest: 7, FilterMaxResults: 200, Bulk: true, BulkMaxOperations: 7, BulkMaxPayloadSize: 5000}
		if !reflect.DeepEqual(caps, want) {
			t.Errorf("Capabilities =\n %+v\nwant\n %+v", caps, want)
		}
		spc, _ := c.Config()
		if !spc.Patch.Supported || spc.Bulk.MaxPayloadSize != 1<<20 {
			t.Errorf("Config = %+v, want the document as discovered (the override applies on top)", spc)
		}
		if got := srv.Counts(); !reflect.DeepEqual(got, map[string]int{"GET /ServiceProviderConfig": 1}) {
			t.Errorf("requests %v, want one discovery", got)
		}
	})
	t.Run("auto: bulk false on a target with Bulk", func(t *testing.T) {
		_, c := newPair(t, scimtest.Options{}, scim.Options{Override: &scim.ConfigOverride{Bulk: &scim.BulkConfig{}}})
		caps, err := c.Capabilities(ctx)
		if err != nil || caps.Bulk || !caps.MemberPatch || caps.MaxMembersPerRequest != scim.DefaultMaxMembersPerRequest {
			t.Errorf("Capabilities = %+v, %v; want PATCH without Bulk", caps, err)
		}
	})
	t.Run("mode without discovery takes the override on top", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{Quirks: scimtest.Profile("gitlab")},
			scim.Options{Mode: scim.ModeGitLab, Override: &scim.ConfigOverride{Filter: &no}})
		caps, err := c.Capabilities(ctx)
		if err != nil || caps.Filter || caps.UserUpdate != scim.UpdatePatch || len(srv.Requests()) != 0 {
			t.Errorf("Capabilities = %+v, %v; want gitlab's PATCH without filter and no request", caps, err)
		}
	})
}
