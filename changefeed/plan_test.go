package changefeed

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

func ptr(s string) *string { return &s }

// planInstallation is the installation of the plans' workflow IDs.
const planInstallation workflows.Installation = "0123456789ab"

// workflowID is the ID of the ObjectSync the signal is for.
func (s *signal) workflowID() string {
	return workflows.ObjectSyncID(planInstallation, s.provider, s.kind, s.objectID)
}

func TestPlanBatchMapsAndCoalescesChanges(t *testing.T) {
	const (
		u1, u2 = "00000000-0000-0000-0000-0000000000u1", "00000000-0000-0000-0000-0000000000u2"
		g1     = "00000000-0000-0000-0000-0000000000g1"
		app    = "00000000-0000-0000-0000-00000000app1"
		other  = "00000000-0000-0000-0000-00000000app2"
	)
	providers := []store.Provider{
		{Name: "a", Enabled: true, ApplicationID: ptr(app)},
		{Name: "b", Enabled: true},
		{Name: "off", Enabled: false, ApplicationID: ptr(app)},
		{Name: "c", Enabled: true, ApplicationID: ptr(other)},
	}
	changes := []store.Change{
		{Kind: store.ChangeUser, Op: "update", ObjectID: u1},
		{Kind: store.ChangeUser, Op: "update", ObjectID: u1},
		{Kind: store.ChangeGroup, Op: "insert", ObjectID: g1},
		{Kind: store.ChangeMembership, Op: "insert", ObjectID: g1, RelatedID: ptr(u2)},
		{Kind: store.ChangeMembership, Op: "insert", ObjectID: g1, RelatedID: ptr(u1)},
		{Kind: store.ChangeBinding, Op: "insert", ObjectID: app},
		{Kind: store.ChangeBinding, Op: "delete", ObjectID: app},
		{Kind: store.ChangeUser, Op: "update", ObjectID: u1},
	}
	p := planBatch(changes, providers)

	var got []string
	for _, s := range p.signals {
		got = append(got, s.workflowID()+" <- "+strings.Join(s.reasons, ", "))
	}
	want := []string{
		"scim/0123456789ab/a/user/" + u1 + " <- user update, membership insert",
		"scim/0123456789ab/b/user/" + u1 + " <- user update, membership insert",
		"scim/0123456789ab/c/user/" + u1 + " <- user update, membership insert",
		"scim/0123456789ab/a/group/" + g1 + " <- group insert, membership insert",
		"scim/0123456789ab/b/group/" + g1 + " <- group insert, membership insert",
		"scim/0123456789ab/c/group/" + g1 + " <- group insert, membership insert",
		"scim/0123456789ab/a/user/" + u2 + " <- membership insert",
		"scim/0123456789ab/b/user/" + u2 + " <- membership insert",
		"scim/0123456789ab/c/user/" + u2 + " <- membership insert",
	}
	if !slices.Equal(got, want) {
		t.Errorf("signals:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if !slices.Equal(p.triggers, []string{"a"}) {
		t.Errorf("triggers = %q, want [a] (the enabled provider attached to the application, once)", p.triggers)
	}
}

func TestPlanBatchWithoutEnabledProvidersDoesNothing(t *testing.T) {
	p := planBatch([]store.Change{{Kind: store.ChangeUser, Op: "insert", ObjectID: "x"}},
		[]store.Provider{{Name: "off", Enabled: false}})
	if len(p.signals) != 0 || len(p.triggers) != 0 {
		t.Fatalf("plan for disabled providers = %d signals, %q triggers; want none", len(p.signals), p.triggers)
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	for _, tc := range []struct {
		n    int
		base time.Duration
	}{{1, 200 * time.Millisecond}, {2, 400 * time.Millisecond}, {3, 800 * time.Millisecond},
		{6, 6400 * time.Millisecond}, {7, 10 * time.Second}, {50, 10 * time.Second}} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			for range 100 {
				d := backoff(tc.n, 10*time.Second)
				lo, hi := time.Duration(float64(tc.base)*0.8), time.Duration(float64(tc.base)*1.2)
				if d < lo || d > hi {
					t.Fatalf("backoff(%d) = %s, want within [%s, %s]", tc.n, d, lo, hi)
				}
			}
		})
	}
}
