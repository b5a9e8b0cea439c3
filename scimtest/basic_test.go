package scimtest_test

import (
	"net/http"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
)

// TestBasicAuthOption: the server takes exactly its Basic credentials, answers anything
// else with 401 and a Basic challenge, and logs the Authorization it received.
func TestBasicAuthOption(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{Basic: &scimtest.BasicAuth{Username: "admin", Password: "s3cret"}})
	defer srv.Close()
	get := func(set func(r *http.Request)) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/Users", nil)
		if set != nil {
			set(req)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get(func(r *http.Request) { r.SetBasicAuth("admin", "s3cret") }); resp.StatusCode != 200 {
		t.Errorf("right credentials: %d, want 200", resp.StatusCode)
	}
	for name, set := range map[string]func(*http.Request){
		"none":           nil,
		"wrong password": func(r *http.Request) { r.SetBasicAuth("admin", "s3cret!") },
		"wrong user":     func(r *http.Request) { r.SetBasicAuth("root", "s3cret") },
		"bearer":         func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") },
	} {
		resp := get(set)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="scimtest", charset="UTF-8"` {
			t.Errorf("%s: %d with challenge %q, want 401 with a Basic challenge", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 5 || reqs[0].Header.Get("Authorization") != "Basic YWRtaW46czNjcmV0" || reqs[0].Status != 200 {
		t.Errorf("log %+v, want the five requests, the first with the Basic credentials", reqs)
	}
}
