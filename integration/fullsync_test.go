package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// checkRemoteState compares the target with the directory: every user and its attributes,
// every group, and every group's members.
func checkRemoteState(t *testing.T, target *scimtest.Server, d *directory, flatten bool) {
	t.Helper()
	gotUsers := remoteUsers(target)
	wantUsers := d.expectedUsers()
	if len(gotUsers) != len(wantUsers) {
		t.Errorf("remote has %d users, want %d", len(gotUsers), len(wantUsers))
	}
	for name, want := range wantUsers {
		if diff := diffJSON(gotUsers[name], want); diff != "" {
			t.Errorf("remote user %s:\n%s", name, diff)
			break
		}
	}
	for name := range gotUsers {
		if wantUsers[name] == nil {
			t.Errorf("remote has user %s, which is out of scope", name)
		}
	}
	gotGroups := remoteGroups(target)
	if len(gotGroups) != len(d.groups) {
		t.Errorf("remote has %d groups, want %d", len(gotGroups), len(d.groups))
	}
	members := d.expectedMembers(flatten)
	for _, g := range d.groups {
		got, ok := gotGroups[g.Name]
		if !ok {
			t.Errorf("group %s missing remotely", g.Name)
			continue
		}
		if diff := diffJSON(got.Body, expectedGroup(g)); diff != "" {
			t.Errorf("remote group %s:\n%s", g.Name, diff)
		}
		if strings.Join(got.Members, ",") != strings.Join(members[g.Name], ",") {
			t.Errorf("remote group %s members = %v\nwant %v", g.Name, got.Members, members[g.Name])
		}
	}
}

func TestFullSyncProducesExactRemoteStateInBatches(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	d := buildDirectory(e, 340) // 300 in scope: three batches of 100
	app, err := e.store.ApplicationByName(e.ctx, d.application)
	if err != nil {
		t.Fatal(err)
	}
	e.provider("portal", func(p *store.Provider) { p.ApplicationID = &app.ID })

	progress, run, err := e.fullSync("portal", workflows.FullSyncInput{})
	if err != nil {
		t.Fatalf("full sync: %v", err)
	}
	checkRemoteState(t, e.target, d, false)
	if progress.Phase != workflows.PhaseDone || progress.Users.Created != 300 || progress.Groups.Created != 20 ||
		progress.Users.Failed != 0 || progress.Groups.Failed != 0 {
		t.Errorf("progress = %+v", progress)
	}

	// One child workflow per batch: 3 of users, 1 of groups.
	children := childWorkflows(t, e, run.GetID(), run.GetRunID())
	want := []string{"group-batch-4", "user-batch-1", "user-batch-2", "user-batch-3"}
	if strings.Join(children, ",") != strings.Join(want, ",") {
		t.Errorf("child workflows = %v, want %v", children, want)
	}

	// Nothing changed: the second full sync writes nothing.
	e.target.ResetLog()
	progress, _, err = e.fullSync("portal", workflows.FullSyncInput{})
	if err != nil {
		t.Fatalf("second full sync: %v", err)
	}
	if m := e.target.Mutations(); m != 0 {
		t.Errorf("second full sync sent %d mutating requests (%v), want 0", m, e.target.Counts())
	}
	if progress.Users.Unchanged != 300 || progress.Groups.Unchanged != 20 {
		t.Errorf("second progress = %+v, want all unchanged", progress)
	}
}

// childWorkflows lists the suffixes of the child workflow IDs a run started, sorted.
func childWorkflows(t *testing.T, e *env, id, runID string) []string {
	t.Helper()
	iter := e.temporal.GetWorkflowHistory(context.Background(), id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []string
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes(); a != nil {
			out = append(out, strings.TrimPrefix(a.WorkflowId, id+"/"))
		}
	}
	sort.Strings(out)
	return out
}

var _ = fmt.Sprint
var _ *history.HistoryEvent
