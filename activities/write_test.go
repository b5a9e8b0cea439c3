package activities_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
)

// TestWriteRidesOutTransientStatuses: a create answered once with 408 or with a status a
// CDN in front of the target sends when the origin blips (522) is tried again within the
// same activity and the user is created once. A 408 says the request was not acted on, so
// it is posted again straight away; after a 522 the create may have gone through, so it is
// looked up first.
func TestWriteRidesOutTransientStatuses(t *testing.T) {
	for _, tt := range []struct {
		status int
		routes []string
	}{
		{408, []string{"GET /ServiceProviderConfig", "POST /Users", "POST /Users"}},
		{522, []string{"GET /ServiceProviderConfig", "POST /Users", "GET /Users", "POST /Users"}},
	} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			w := newWorld(t, scimtest.Options{}, nil)
			w.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: tt.status, Times: 1})
			u := user("ada", "ext-ada")
			res, err := w.write(object.User, u)
			if err != nil {
				t.Fatalf("WriteObjects: %v", err)
			}
			if res.Created != 1 || len(res.Failed) != 0 {
				t.Errorf("result %+v, want 1 created, nothing failed", res)
			}
			users := w.target.Users()
			if len(users) != 1 || users[0]["userName"] != "ada" {
				t.Fatalf("target users %v, want ada alone", users)
			}
			if l, ok := w.link(object.User, u.ID); !ok || l.Remote() != users[0]["id"] || l.LastError != "" {
				t.Errorf("link %+v, want remote id %v and no error", l, users[0]["id"])
			}
			if got := w.routes(); !slices.Equal(got, tt.routes) {
				t.Errorf("requests %v, want %v", got, tt.routes)
			}
		})
	}
}

// TestWriteErrorClassByStatus: when a target keeps answering a status, the write activity
// fails with an error Temporal retries for 408 and every 5xx but 501 and 505 (here with a
// Retry-After beyond what one activity attempt waits, so that the attempt ends at once),
// and with a non-retryable error for 501 and 505. Nothing is created either way.
func TestWriteErrorClassByStatus(t *testing.T) {
	for _, tt := range []struct {
		status    int
		retryable bool
	}{
		{408, true}, {500, true}, {507, true}, {520, true}, {521, true}, {522, true}, {523, true}, {524, true},
		{599, true}, {501, false}, {505, false},
	} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			w := newWorld(t, scimtest.Options{}, nil)
			w.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: tt.status, RetryAfter: "60"})
			u := user("ada", "ext-ada")
			_, err := w.write(object.User, u)
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) {
				t.Fatalf("WriteObjects error %v (%T), want a Temporal application error", err, err)
			}
			if ae.NonRetryable() == tt.retryable {
				t.Errorf("error %v: non-retryable %v, want %v", err, ae.NonRetryable(), !tt.retryable)
			}
			if !tt.retryable && ae.Type() != activities.ErrTypeTargetInvalid {
				t.Errorf("error type %q, want %q", ae.Type(), activities.ErrTypeTargetInvalid)
			}
			if n := len(w.target.Users()); n != 0 {
				t.Errorf("target has %d users, want none", n)
			}
			if l, ok := w.link(object.User, u.ID); ok && l.Remote() != "" {
				t.Errorf("link %+v, want no remote id", l)
			}
		})
	}
}
