package changefeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/scimsync/scimsync/store"
)

func TestPermanentParksOnlyWhatTemporalRefusesForGood(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{serviceerror.NewInvalidArgument("Blob data size exceeds limit."), true},
		{fmt.Errorf("signal scim/p/user/x: %w", serviceerror.NewInvalidArgument("invalid search attribute")), true},
		{serviceerror.NewNamespaceNotFound("gone"), true},
		{serviceerror.NewNamespaceInvalidState("deleting", enumspb.NAMESPACE_STATE_DELETED, nil), true},

		{nil, false},
		{serviceerror.NewUnavailable("frontend restarting"), false},
		{serviceerror.NewDeadlineExceeded("deadline"), false},
		{serviceerror.NewResourceExhausted(enumspb.RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT, "rps"), false},
		{serviceerror.NewNamespaceNotActive("ns", "standby", "active"), false},
		{serviceerror.NewNamespaceUnavailable("ns"), false},
		{serviceerror.NewPermissionDenied("api key expired", ""), false},
		{serviceerror.NewFailedPrecondition("not now"), false},
		{serviceerror.NewInternal("oops"), false},
		{serviceerror.NewCanceled("canceled"), false},
		{serviceerror.NewNotFound("schedule"), false},
		{context.Canceled, false},
		{fmt.Errorf("signal: %w", context.DeadlineExceeded), false},
		// A call cut short by the relay's own context is never a refusal, whatever it says.
		{errors.Join(context.Canceled, serviceerror.NewInvalidArgument("x")), false},
		{errors.New("connection refused"), false},
	} {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%T %v) = %v, want %v", tc.err, tc.err, got, tc.want)
		}
	}
}

func TestRefusalTextNamesTheRefusalAndIsBounded(t *testing.T) {
	err := fmt.Errorf("signal scim/p/user/x: %w", serviceerror.NewInvalidArgument("Blob data size exceeds limit."))
	if got, want := refusalText(err), "signal scim/p/user/x: Blob data size exceeds limit. (InvalidArgument)"; got != want {
		t.Errorf("refusalText = %q, want %q", got, want)
	}
	long := refusalText(serviceerror.NewInvalidArgument(strings.Repeat("é", 2*maxRefusalText)))
	if len(long) > maxRefusalText+len("…") || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("refusalText of a long message: %d bytes, valid UTF-8 %v", len(long), utf8.ValidString(long))
	}
}

func TestPlanBatchKnowsTheChangesOfEverySignalAndTrigger(t *testing.T) {
	const u1, g1, app = "u1", "g1", "app1"
	providers := []store.Provider{{Name: "a", Enabled: true, ApplicationID: ptr(app)}, {Name: "b", Enabled: true}}
	changes := []store.Change{
		{ID: 1, Kind: store.ChangeUser, Op: "update", ObjectID: u1},
		{ID: 2, Kind: store.ChangeMembership, Op: "insert", ObjectID: g1, RelatedID: ptr(u1)},
		{ID: 3, Kind: store.ChangeBinding, Op: "insert", ObjectID: app},
		{ID: 4, Kind: store.ChangeUser, Op: "update", ObjectID: u1},
		{ID: 5, Kind: store.ChangeBinding, Op: "delete", ObjectID: app},
	}
	p := planBatch(changes, providers)
	var got []string
	for _, s := range p.signals {
		got = append(got, fmt.Sprintf("%s %v", s.workflowID(), s.changes))
	}
	want := []string{"scim/0123456789ab/a/user/u1 [1 2 4]", "scim/0123456789ab/b/user/u1 [1 2 4]",
		"scim/0123456789ab/a/group/g1 [2]", "scim/0123456789ab/b/group/g1 [2]"}
	if !slices.Equal(got, want) {
		t.Errorf("signals' changes = %q, want %q", got, want)
	}
	if !slices.Equal(p.triggers, []string{"a"}) || !slices.Equal(p.trigger["a"], []int64{3, 5}) {
		t.Errorf("triggers %q with changes %v, want [a] with [3 5]", p.triggers, p.trigger)
	}
}
