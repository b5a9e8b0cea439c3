package activities

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scim"
)

func TestRequestFailedSortsOutcomes(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: `https://t.example/Users?filter=userName eq "ada@example.test"`,
		Err: errors.New("dial tcp 10.0.0.1:443: connect: connection refused")}
	for _, tc := range []struct {
		info             scim.RequestInfo
		failed, answered bool
	}{
		{scim.RequestInfo{Status: 200}, false, true},
		{scim.RequestInfo{Status: 404}, false, true},
		{scim.RequestInfo{Status: 409}, false, true},
		{scim.RequestInfo{Status: 501}, false, true},
		{scim.RequestInfo{Status: 505}, false, true},
		{scim.RequestInfo{Status: 429}, false, false},
		{scim.RequestInfo{Status: 408}, true, false},
		{scim.RequestInfo{Status: 500}, true, false},
		{scim.RequestInfo{Status: 503}, true, false},
		{scim.RequestInfo{Status: 522}, true, false},
		{scim.RequestInfo{Err: refused}, true, false},
		{scim.RequestInfo{Err: context.Canceled}, false, false},
		{scim.RequestInfo{Err: scim.ErrCanceled}, false, false},
		{scim.RequestInfo{DryRun: true}, false, false},
	} {
		failed, answered := requestFailed(tc.info)
		if failed != tc.failed || answered != tc.answered {
			t.Errorf("%+v: failed %v answered %v, want %v %v", tc.info, failed, answered, tc.failed, tc.answered)
		}
	}
	// The text names the request by its path, never by the URL and its filter.
	msg := failureText(scim.RequestInfo{Method: "GET", Path: "/Users", Err: refused})
	if msg != "GET /Users: no answer: dial tcp 10.0.0.1:443: connect: connection refused" || strings.Contains(msg, "ada") {
		t.Errorf("failure text %q", msg)
	}
}
