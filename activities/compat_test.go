package activities_test

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/sealed"
	"github.com/scimsync/scimsync/store"
)

// TestDiscoveryOffUsesTheOverride: a provider with discovery off never asks for the
// ServiceProviderConfig, caches nothing, and writes with the capabilities of its
// service_provider_config: here Bulk off, so three users are three POSTs although the
// target has Bulk (which the same write with discovery on uses).
func TestDiscoveryOffUsesTheOverride(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name      string
		edit      func(p *store.Provider)
		want      map[string]int
		discovery activities.DiscoverResult
	}{
		{"discovery on", nil, map[string]int{"GET /ServiceProviderConfig": 1, "POST /Bulk": 1},
			activities.DiscoverResult{Patch: true, Bulk: true, Filter: true, MaxOperations: 1000, Cached: true}},
		{"discovery off", func(p *store.Provider) {
			p.Discovery = store.DiscoveryOff
			p.ServiceConfig = store.ServiceConfigOverride{Patch: &yes, Filter: &yes, Bulk: &store.BulkOverride{}}
		}, map[string]int{"POST /Users": 3}, activities.DiscoverResult{Patch: true, Filter: true, Assumed: true}},
		{"discovery on, override bulk off", func(p *store.Provider) {
			p.ServiceConfig = store.ServiceConfigOverride{Bulk: &store.BulkOverride{}}
		}, map[string]int{"GET /ServiceProviderConfig": 1, "POST /Users": 3}, activities.DiscoverResult{Patch: true, Filter: true, Cached: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, scimtest.Options{}, func(_ *scimtest.Server, p *store.Provider) {
				if tc.edit != nil {
					tc.edit(p)
				}
			})
			res, err := w.write(object.User, user("ada", "e-ada"), user("bob", "e-bob"), user("cy", "e-cy"))
			if err != nil || res.Created != 3 || len(res.Failed) != 0 {
				t.Fatalf("WriteObjects = %+v, %v", res, err)
			}
			if got := w.target.Counts(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("requests %v, want %v", got, tc.want)
			}
			if n := len(w.target.Users()); n != 3 {
				t.Errorf("%d users at the target, want 3", n)
			}
			got, err := w.acts.Discover(w.ctx, activities.ProviderInput{Provider: w.provider.Name})
			if err != nil || got != tc.discovery {
				t.Errorf("Discover = %+v, %v; want %+v", got, err, tc.discovery)
			}
			var cached int
			if err := w.store.DB().GetContext(w.ctx, &cached, `SELECT count(*) FROM provider_service_configs WHERE provider_id = $1`, w.provider.ID); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 0, false: 1}[w.provider.Discovery == store.DiscoveryOff]; cached != want {
				t.Errorf("%d cached ServiceProviderConfig rows, want %d", cached, want)
			}
			if n := w.target.Count("GET /ServiceProviderConfig"); n != tc.want["GET /ServiceProviderConfig"] {
				t.Errorf("Discover sent a discovery request: %d in all", n)
			}
		})
	}
}

// TestBasicAuthProvider: auth mode basic sends the provider's credentials, the password
// opened from its sealed form; the row never holds it in clear; a wrong password is a 401
// that stops the write as a provider error, and no error text holds either password.
func TestBasicAuthProvider(t *testing.T) {
	const username, password, wrong = "scim-admin", "b4sic-pa55-31d7", "wr0ng-pa55-c0de"
	box, err := sealed.New("activities-test-secret") // the world's installation secret
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, scimtest.Options{Basic: &scimtest.BasicAuth{Username: username, Password: password}},
		func(_ *scimtest.Server, p *store.Provider) {
			p.AuthMode, p.Token = "basic", ""
			p.BasicUsername, p.BasicPassword = username, box.Seal(password)
		})
	if res, err := w.write(object.User, user("ada", "e-ada")); err != nil || res.Created != 1 {
		t.Fatalf("WriteObjects = %+v, %v", res, err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
	for _, r := range w.target.Requests() {
		if got := r.Header.Get("Authorization"); got != want {
			t.Errorf("%s: Authorization %q, want %q", r.Route, got, want)
		}
	}
	var row string
	if err := w.store.DB().GetContext(w.ctx, &row, `SELECT row_to_json(p)::text FROM providers p WHERE id = $1`, w.provider.ID); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row, password) || !strings.Contains(row, `"basic_password":"sealed:v1:`) {
		t.Errorf("stored provider row %s: want the password sealed, never in clear", row)
	}

	// A wrong password.
	p := w.provider
	p.BasicPassword = box.Seal(wrong)
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) { w.provider, err = tx.UpsertProvider(w.ctx, p); return err }); err != nil {
		t.Fatal(err)
	}
	w.target.ResetLog()
	_, err = w.write(object.User, user("bob", "e-bob"))
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeProvider || !appErr.NonRetryable() || !strings.Contains(err.Error(), "401") {
		t.Fatalf("WriteObjects with a wrong password: %v, want a non-retryable provider error naming the 401", err)
	}
	reqs := w.target.Requests()
	if len(reqs) != 1 || reqs[0].Status != 401 ||
		reqs[0].Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(username+":"+wrong)) {
		t.Errorf("requests %v, want one, with the wrong Basic credentials, answered 401", w.routes())
	}
	for _, text := range []string{err.Error(), appErr.Message()} {
		for _, secret := range []string{wrong, password, base64.StdEncoding.EncodeToString([]byte(username + ":" + wrong))} {
			if strings.Contains(text, secret) {
				t.Errorf("error %q holds a credential", text)
			}
		}
	}
	if _, ok := w.target.UserByName("bob"); ok {
		t.Error("bob was created with a wrong password")
	}

	// A password reference that cannot be resolved is a configuration error naming it.
	p.BasicPassword = "env:SCIMSYNC_TEST_UNSET_PASSWORD"
	if err := w.store.InTx(w.ctx, func(tx *store.Tx) (err error) { w.provider, err = tx.UpsertProvider(w.ctx, p); return err }); err != nil {
		t.Fatal(err)
	}
	_, err = w.write(object.User, user("cy", "e-cy"))
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeConfig ||
		!strings.Contains(err.Error(), "basic password: environment variable SCIMSYNC_TEST_UNSET_PASSWORD is not set") {
		t.Errorf("unresolvable password: %v", err)
	}
}
