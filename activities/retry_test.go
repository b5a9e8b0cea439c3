package activities_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
)

// TestRetrySchedulerOutcomes: what the per-object retry scheduler (each, pass) makes of
// one object's update, by what the target answers, with the exact number of attempts the
// target received. An object error and a success end the object in one attempt; a
// transient failure is tried again in the next pass, after Retry-After; passes that
// finish nothing end the activity with the transient error after maxIdlePasses (3); a
// Retry-After longer than a pass may wait, and any error that is not transient, end it at
// once. In every case but a success the link keeps what was last written.
func TestRetrySchedulerOutcomes(t *testing.T) {
	const patchRoute = "PATCH /Users/{id}"
	for _, tt := range []struct {
		name     string
		faults   []scimtest.Fault
		attempts int
		res      func(id string) activities.WriteResult
		// errType is the Temporal error type the activity fails with ("" for none), and
		// whether Temporal may retry it, after at least retryDelay.
		errType    string
		retryable  bool
		retryDelay time.Duration
		linkError  string
	}{
		{name: "written", attempts: 1,
			res: func(string) activities.WriteResult { return activities.WriteResult{Updated: 1} }},
		{name: "transient, then written", attempts: 2,
			faults: []scimtest.Fault{{Method: "PATCH", Route: "/Users/{id}", Status: 500, RetryAfter: "1", Times: 1}},
			res:    func(string) activities.WriteResult { return activities.WriteResult{Updated: 1} }},
		{name: "object error", attempts: 1,
			faults: []scimtest.Fault{{Method: "PATCH", Route: "/Users/{id}", Status: 400, ScimType: "invalidValue"}},
			res: func(id string) activities.WriteResult {
				return activities.WriteResult{Failed: []activities.ObjectFailure{{ID: id, Error: "scim: patch PATCH /Users/{remote}: 400 Bad Request (scimType invalidValue)"}}}
			},
			linkError: "scim: patch PATCH /Users/{remote}: 400 Bad Request (scimType invalidValue)"},
		{name: "transient in every pass", attempts: 3,
			faults:  []scimtest.Fault{{Method: "PATCH", Route: "/Users/{id}", Status: 500, RetryAfter: "1"}},
			errType: "TargetUnavailable", retryable: true, retryDelay: time.Second},
		{name: "Retry-After beyond a pass's wait", attempts: 1,
			faults:  []scimtest.Fault{{Method: "PATCH", Route: "/Users/{id}", Status: 500, RetryAfter: "60"}},
			errType: "TargetUnavailable", retryable: true, retryDelay: time.Minute},
		{name: "not transient", attempts: 1,
			faults:  []scimtest.Fault{{Method: "PATCH", Route: "/Users/{id}", Status: 401}},
			errType: activities.ErrTypeProvider},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, scimtest.Options{}, nil)
			ada, remote := w.linkedUser()
			before := ada
			ada = changed(ada, "displayName", "Ada King")
			for _, f := range tt.faults {
				w.target.AddFault(f)
			}
			res, err := w.write(object.User, ada)
			if n := w.target.Count(patchRoute); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
			var ae *temporal.ApplicationError
			switch {
			case tt.errType == "" && err != nil:
				t.Fatalf("WriteObjects: %v", err)
			case tt.errType != "" && !errors.As(err, &ae):
				t.Fatalf("WriteObjects error %v, want a Temporal application error of type %s", err, tt.errType)
			case tt.errType != "":
				if ae.Type() != tt.errType || ae.NonRetryable() == tt.retryable || ae.NextRetryDelay() != tt.retryDelay {
					t.Errorf("error %v: type %s, retryable %v, next retry after %s; want %s, %v, %s", err,
						ae.Type(), !ae.NonRetryable(), ae.NextRetryDelay(), tt.errType, tt.retryable, tt.retryDelay)
				}
			}
			var want activities.WriteResult
			if tt.res != nil {
				want = tt.res(ada.ID)
				for i := range want.Failed {
					want.Failed[i].Error = replaceRemote(want.Failed[i].Error, remote)
				}
			}
			if !reflect.DeepEqual(outcome(res), want) {
				t.Errorf("result %+v, want %+v", res, want)
			}
			row := linkRow{Remote: remote, Hash: before.Hash, Payload: payloadJSON(t, before), Members: "null",
				LastError: replaceRemote(tt.linkError, remote), CreateUncertain: true}
			if tt.errType == "" && tt.linkError == "" {
				row.Hash, row.Payload = ada.Hash, payloadJSON(t, ada)
			}
			w.checkRow(object.User, ada, row)
		})
	}

	// Canceled while it waits for the next pass: the activity ends with the
	// cancellation, after the one attempt.
	t.Run("canceled", func(t *testing.T) {
		w := newWorld(t, scimtest.Options{}, nil)
		ada, remote := w.linkedUser()
		before := ada
		ada = changed(ada, "displayName", "Ada King")
		w.target.AddFault(scimtest.Fault{Method: "PATCH", Route: "/Users/{id}", Status: 500, RetryAfter: "9"})
		ctx, cancel := context.WithCancel(w.ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := w.acts.WriteObjects(ctx, activities.WriteInput{Provider: w.provider.Name, Kind: object.User,
				Objects: []activities.MappedObject{ada}})
			done <- err
		}()
		deadline := time.Now().Add(30 * time.Second)
		for w.target.Count(patchRoute) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no attempt within 30s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("WriteObjects error %v, want the cancellation", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("WriteObjects did not end within 30s of its cancellation")
		}
		if n := w.target.Count(patchRoute); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
		w.checkRow(object.User, ada, linkRow{Remote: remote, Hash: before.Hash, Payload: payloadJSON(t, before), Members: "null", CreateUncertain: true})
	})
}

// replaceRemote puts remote in place of "{remote}" in s.
func replaceRemote(s, remote string) string { return strings.ReplaceAll(s, "{remote}", remote) }

// TestRetrySchedulerStopsAPassAfterFailuresInARow: three transient failures in a row (the
// target may be down) stop the pass from starting more requests; the next pass tries the
// three again, then the objects the first never tried, each written once. One request at
// a time, so that "in a row" is the order of the objects.
func TestRetrySchedulerStopsAPassAfterFailuresInARow(t *testing.T) {
	w := newWorld(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}}, nil)
	w.acts.WriteConcurrency = 1
	var objs []activities.MappedObject
	var remotes []string
	for _, name := range []string{"u1", "u2", "u3", "u4", "u5"} {
		o := user(name, "ext-"+name)
		remote := w.target.AddUser(o.Payload)
		w.saveLink(object.User, o, remote, nil)
		objs, remotes = append(objs, changed(o, "displayName", name)), append(remotes, remote)
	}
	w.target.AddFault(scimtest.Fault{Method: "PATCH", Route: "/Users/{id}", Status: 500, RetryAfter: "1", Times: 3})
	w.writeExpect(activities.WriteResult{Updated: 5}, object.User, objs...)
	var want []string
	for _, i := range []int{0, 1, 2, 0, 1, 2, 3, 4} {
		want = append(want, `PATCH /Users/`+remotes[i]+` `+patchOps(`{"op":"add","path":"displayName","value":"u`+string(rune('1'+i))+`"}`))
	}
	w.checkSent(want...)
	for i, o := range objs {
		w.checkRow(object.User, o, linkRow{Remote: remotes[i], Hash: o.Hash, Payload: payloadJSON(t, o), Members: "null", CreateUncertain: true})
	}
}
