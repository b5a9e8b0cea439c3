package scim_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

// TestBasicAuth: the exact Authorization the target receives, a 401 for a wrong password
// (a provider error, not retried, whose text holds neither the password nor its encoding),
// and credentials New refuses without echoing them.
func TestBasicAuth(t *testing.T) {
	ctx := context.Background()
	const user, pass, wrong = "scim-admin", "pa55-w0rd-9f2e", "wrong-pa55-7a1c"
	srv := scimtest.NewServer(scimtest.Options{Basic: &scimtest.BasicAuth{Username: user, Password: pass}})
	t.Cleanup(srv.Close)

	c := clientFor(t, srv, scim.Options{Basic: &scim.Basic{Username: user, Password: pass}})
	if _, err := c.Create(ctx, scim.Users, map[string]any{"userName": "ada"}); err != nil {
		t.Fatalf("create with the right password: %v", err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	if got := srv.Requests()[0].Header.Get("Authorization"); got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}

	srv.ResetLog()
	c = clientFor(t, srv, scim.Options{Basic: &scim.Basic{Username: user, Password: wrong}})
	_, err := c.Create(ctx, scim.Users, map[string]any{"userName": "bob"})
	var se *scim.Error
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || !scim.IsProviderFatal(err) || scim.IsRetryable(err) {
		t.Fatalf("create with a wrong password: %v, want a 401 provider error, not retryable", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Status != http.StatusUnauthorized {
		t.Fatalf("requests %+v, want one, answered 401 (no retry of a Basic 401)", srv.Counts())
	}
	if got, want := reqs[0].Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+wrong)); got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if _, ok := srv.UserByName("bob"); ok {
		t.Error("the refused create was carried out")
	}
	for _, secret := range []string{wrong, pass, base64.StdEncoding.EncodeToString([]byte(user + ":" + wrong))} {
		if strings.Contains(err.Error(), secret) || strings.Contains(se.Detail, secret) {
			t.Errorf("error %q holds a credential", err)
		}
	}

	for _, b := range []scim.Basic{{Username: "a:" + pass, Password: pass}, {}} {
		_, err := scim.New(scim.Options{BaseURL: srv.URL, Basic: &b})
		if err == nil || strings.Contains(err.Error(), pass) {
			t.Errorf("New(Basic %q) = %v, want an error that does not echo the credentials", b.Username, err)
		}
	}
}
