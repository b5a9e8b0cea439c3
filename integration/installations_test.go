package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// namedTB is tb under another name: a test's databases are named after it, so a second
// database of one test needs a name of its own.
type namedTB struct {
	testing.TB
	name string
}

func (n namedTB) Name() string { return n.name }

// installationWorld is one installation of TestTwoInstallationsInOneNamespace: its
// database, directory and worker, its provider "acme" (the name the other installation's
// provider has too) on a target of its own, and a provider only it has, on another.
type installationWorld struct {
	e          *env
	d          *directory
	ft         *flakyTarget // acme's target
	solo       string       // the provider only this installation has
	soloTarget *scimtest.Server
	w          *workerProc
	fullSync   string               // the full sync of acme its schedule started
	created    map[string]time.Time // schedule ID → when it was created
}

// TestTwoInstallationsInOneNamespace: two installations (two databases, two workers, two
// targets per installation) share one Temporal namespace with the default settings (no
// task queue configured), each with a provider named acme and one of its own. Both
// full-sync and relay directory changes at once. Each target ends in exactly its own
// directory's state; every workflow ran on its installation's own task queue and each of
// its activities on a worker of its installation; no schedule of either installation is
// deleted (each was created once and started one full sync), and no worker deletes one.
//
// On the code before installation ids both workers polled the task queue "scimsync" and
// shared the schedule scim-full-sync/acme, and each keeper deleted the schedule of the
// other's provider every interval.
func TestTwoInstallationsInOneNamespace(t *testing.T) {
	dev := newDevServer(t, false)
	bin := buildWorker(t)
	const provider = "acme"
	worlds := []*installationWorld{{solo: "solo-a"}, {solo: "solo-b"}}
	for i, in := range worlds {
		dsn := "" // the first database is named after the test
		if i > 0 {
			dsn = testenv.NewDatabase(namedTB{t, fmt.Sprintf("%s_%d", t.Name(), i)}, true)
		}
		in.e = newIsolatedEnv(t, dev, dsn)
		in.e.extend(10 * time.Minute)
		in.d, in.ft = in.e.flatWorld(provider, scimtest.Options{}, uint64(i+1), 60-15*i, 6-i, nil)
		// Slow answers keep the full syncs running while the changes are relayed.
		in.ft.SetLatency(15 * time.Millisecond)
		in.soloTarget = scimtest.NewServer(scimtest.Options{Token: targetToken})
		t.Cleanup(in.soloTarget.Close)
		in.e.provider(in.solo, func(p *store.Provider) { p.BaseURL = in.soloTarget.URL })
	}
	if a, b := worlds[0].e.inst, worlds[1].e.inst; a == b {
		t.Fatalf("both databases have the installation %s", a)
	}
	for _, in := range worlds {
		in.w = in.e.newWorkerProc(bin, workerOptions{TemporalAddress: dev.Addr, DefaultTaskQueue: true})
		in.w.Start()
	}
	for _, in := range worlds {
		in.fullSync = in.e.scheduledFullSync(in.e.temporal, provider, time.Minute)
		in.created = map[string]time.Time{}
		for _, name := range []string{provider, in.solo} {
			id := workflows.FullSyncScheduleID(in.e.inst, name)
			desc, err := in.e.temporal.ScheduleClient().GetHandle(in.e.ctx, id).Describe(in.e.ctx)
			if err != nil {
				t.Fatalf("schedule %s: %v", id, err)
			}
			in.created[id] = desc.Info.CreatedAt
		}
	}

	// Changes in both directories while both full syncs write: every fourth user renamed,
	// one user deleted, one membership removed, one user added.
	for i, in := range worlds {
		e, d := in.e, in.d
		e.waitTargetUsers(in.ft, 1, time.Minute)
		e.tx(func(tx *store.Tx) error {
			for j := range d.users {
				if j%4 != 1 {
					continue
				}
				u := d.users[j]
				u.Name = fmt.Sprintf("Renamed%d Installation%d", j, i)
				saved, err := tx.UpdateUser(e.ctx, u)
				if err != nil {
					return err
				}
				d.users[j] = saved
			}
			gone := d.users[2]
			if err := tx.DeleteUser(e.ctx, gone.ID); err != nil {
				return err
			}
			d.users = append(d.users[:2], d.users[3:]...)
			delete(d.inScope, gone.Username)
			for g, members := range d.members {
				d.members[g] = without(members, gone.Username)
			}
			g0, left := d.groups[0], d.members[d.groups[0].Name][0]
			for _, u := range d.users {
				if u.Username == left {
					if err := tx.RemoveMember(e.ctx, g0.ID, u.ID); err != nil {
						return err
					}
				}
			}
			d.members[g0.Name] = without(d.members[g0.Name], left)
			added, err := tx.CreateUser(e.ctx, store.User{Username: fmt.Sprintf("added-%d", i), Name: fmt.Sprintf("Added Installation%d", i),
				Email: fmt.Sprintf("added-%d@example.test", i), IsActive: true})
			if err != nil {
				return err
			}
			d.users = append(d.users, added)
			d.inScope[added.Username] = true
			return nil
		})
		if p, ok := queryProgress(e.ctx, e.temporal, in.fullSync); ok && p.Phase == workflows.PhaseDone {
			t.Logf("installation %s: the full sync was done before the changes", e.inst)
		}
	}

	for _, in := range worlds {
		progress, err := in.e.awaitWorkflow(in.e.temporal, in.fullSync, 5*time.Minute)
		if err != nil || progress.Phase != workflows.PhaseDone || progress.Users.Failed+progress.Groups.Failed != 0 {
			t.Errorf("installation %s: full sync %s: %+v, %v; want done with no failure", in.e.inst, in.fullSync, progress, err)
		}
	}
	for _, in := range worlds {
		if r := in.e.waitState(in.ft.Server, in.d, in.ft.Creates, 2*time.Minute); !r.ok() {
			t.Errorf("installation %s: target of %s: %s", in.e.inst, provider, r)
		}
		if r := in.e.waitState(in.soloTarget, in.d, nil, 2*time.Minute); !r.ok() {
			t.Errorf("installation %s: target of %s: %s", in.e.inst, in.solo, r)
		}
	}

	// Both installations' schedules are still the ones first seen: never deleted (a
	// schedule created again would be younger and would have started another full sync).
	for _, in := range worlds {
		for id, created := range in.created {
			desc, err := in.e.temporal.ScheduleClient().GetHandle(in.e.ctx, id).Describe(in.e.ctx)
			switch {
			case err != nil:
				t.Errorf("installation %s: schedule %s: %v", in.e.inst, id, err)
			case !desc.Info.CreatedAt.Equal(created) || desc.Info.NumActions != 1:
				t.Errorf("installation %s: schedule %s created %s with %d actions, want created %s with 1 (it was deleted and created again)",
					in.e.inst, id, desc.Info.CreatedAt, desc.Info.NumActions, created)
			}
		}
		if lines := grepFile(in.w.Log, "schedule deleted"); len(lines) > 0 {
			t.Errorf("installation %s: the worker deleted schedules:\n%s", in.e.inst, strings.Join(lines, "\n"))
		}
	}
	checkWorkflowsStayInTheirInstallation(t, worlds[0].e, map[workflows.Installation]bool{worlds[0].e.inst: true, worlds[1].e.inst: true})
}

// checkWorkflowsStayInTheirInstallation checks every workflow of the namespace: its ID
// names one of the installations, it ran on that installation's default task queue, and
// every activity it started ran on a worker of that installation.
func checkWorkflowsStayInTheirInstallation(t *testing.T, e *env, installations map[workflows.Installation]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	perInstallation := map[workflows.Installation]int{}
	var token []byte
	for {
		resp, err := e.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: testenv.Namespace, NextPageToken: token})
		if err != nil {
			t.Fatalf("list workflows: %v", err)
		}
		for _, info := range resp.GetExecutions() {
			id := info.GetExecution().GetWorkflowId()
			inst, ok := workflows.WorkflowInstallation(id)
			if !ok || !installations[inst] {
				t.Errorf("workflow %s names no installation of the test", id)
				continue
			}
			perInstallation[inst]++
			if q := info.GetTaskQueue(); q != workflows.DefaultTaskQueue(inst) {
				t.Errorf("workflow %s ran on task queue %q, want %q", id, q, workflows.DefaultTaskQueue(inst))
			}
			iter := e.temporal.GetWorkflowHistory(ctx, id, info.GetExecution().GetRunId(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for iter.HasNext() {
				ev, err := iter.Next()
				if err != nil {
					t.Fatalf("history of %s: %v", id, err)
				}
				a := ev.GetActivityTaskStartedEventAttributes()
				if a == nil {
					continue
				}
				if by, ok := worker.WorkerInstallation(a.GetIdentity()); !ok || by != inst {
					t.Errorf("an activity of workflow %s (installation %s) ran on worker %q", id, inst, a.GetIdentity())
				}
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	for inst := range installations {
		if perInstallation[inst] == 0 {
			t.Errorf("no workflow of installation %s", inst)
		}
	}
	t.Logf("workflows per installation: %v", perInstallation)
}

// without returns list without s.
func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}
