package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBenchSmall runs the benchmark harness at the CI size (S1-S4 and S8 with 1,000 users
// and 100 groups) so that it keeps working. It checks what must hold whatever the machine:
// the exact state at the target after each full sync, a second full sync that sends
// nothing, every S4 change arriving, a limit that replays the very requests of S1, and every
// drift of S8 repaired by one full sync. Timings are printed, not asserted.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("the benchmark needs PostgreSQL and the Temporal CLI")
	}
	testenv.DatabaseURL(t) // skips, or fails under CI=true, when PostgreSQL is missing
	cli, err := testenv.TemporalCLI()
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	cfg := DefaultConfig()
	cfg.Users, cfg.Groups = SmallUsers, SmallGroups
	cfg.Scenarios = []string{"S1", "S2", "S3", "S4", "S8"}
	cfg.TemporalCLI = cli
	cfg.Log = testLog{t}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		var table bytes.Buffer
		rep.WriteTable(&table)
		t.Log("\n" + table.String())
	}
	if err != nil {
		t.Fatal(err)
	}

	byID := map[string]*Result{}
	for _, r := range rep.Results {
		byID[r.Scenario] = r
		for _, c := range r.Checks {
			t.Errorf("%s: %s", r.Scenario, c)
		}
	}
	for _, id := range cfg.Scenarios {
		if byID[id] == nil {
			t.Fatalf("no result for %s", id)
		}
	}
	memberships := SmallUsers * cfg.MembershipsPerUser
	want := RemoteState{Users: SmallUsers, Groups: SmallGroups, Members: memberships}
	for _, id := range []string{"S1", "S2", "S3"} {
		r := byID[id]
		if r.Remote != want || r.Memberships != memberships {
			t.Errorf("%s: target holds %+v (directory %d memberships), want %+v", id, r.Remote, r.Memberships, want)
		}
	}

	s1 := byID["S1"]
	// Without Bulk: a POST per user and per group, a membership PATCH per group, discovery.
	if s1.Routes["POST /Users"] != SmallUsers || s1.Routes["POST /Groups"] != SmallGroups ||
		s1.Routes["PATCH /Groups/{id}"] != SmallGroups || s1.Mutations != SmallUsers+2*SmallGroups {
		t.Errorf("S1 requests = %v", s1.Routes)
	}
	if s1.Limit == nil || s1.Limit.Requests != s1.RequestsTotal || s1.Ratio <= 0 {
		t.Errorf("S1 limit = %+v (ratio %v), want a replay of its %d requests", s1.Limit, s1.Ratio, s1.RequestsTotal)
	}
	if s1.Workflows == 0 || s1.Activities == 0 || s1.WorkflowsByType["SyncBatch"] == 0 {
		t.Errorf("S1 counted %d workflows (%v) and %d activities", s1.Workflows, s1.WorkflowsByType, s1.Activities)
	}
	if s1.WorkerPeakRSSMB <= 0 || s1.History == nil || s1.History.Runs < 1 {
		t.Errorf("S1 peak RSS %.0f MB, history %+v", s1.WorkerPeakRSSMB, s1.History)
	}

	// With Bulk (maxOperations 100): users, groups and membership changes go in Bulk
	// requests.
	s2 := byID["S2"]
	if s2.Routes["POST /Users"] != 0 || s2.Routes["PATCH /Groups/{id}"] != 0 || s2.Routes["POST /Bulk"] == 0 ||
		s2.Routes["POST /Bulk"] > (SmallUsers+2*SmallGroups)/cfg.BulkMaxOperations+4 {
		t.Errorf("S2 requests = %v", s2.Routes)
	}

	// Nothing changed: nothing written, nothing sent but reads.
	s3 := byID["S3"]
	if s3.Mutations != 0 || s3.Progress == nil || s3.Progress.Users.Unchanged != SmallUsers ||
		s3.Progress.Groups.Unchanged != SmallGroups {
		t.Errorf("S3: %d mutations, progress %+v", s3.Mutations, s3.Progress)
	}

	s4 := byID["S4"]
	if s4.Latency == nil || s4.Latency.Arrived != cfg.Changes || s4.Routes["PATCH /Users/{id}"] != cfg.Changes {
		t.Errorf("S4: latency %+v, requests %v; want all %d changes, one PATCH each", s4.Latency, s4.Routes, cfg.Changes)
	}
	if s4.WorkflowsByType["ObjectSync"] != cfg.Changes {
		t.Errorf("S4 workflows = %v, want %d ObjectSync", s4.WorkflowsByType, cfg.Changes)
	}

	// The drift made at the target: the exact state and requests are S8's own checks (listed
	// above when they fail); here, that the read-back read every page and the figures add up.
	s8 := byID["S8"]
	f := s8.Reconcile
	if f == nil || f.Edited != s8Edited || f.Deleted != s8Deleted || f.MembersRemoved != s8MembersRemoved ||
		f.StrangersAdded != s8Strangers || f.Orphans != s8Orphans || f.GroupsTouched < s8MembersRemoved {
		t.Fatalf("S8 drift = %+v", f)
	}
	// 1,010 users (980 left, 30 remote-only) in pages of 100, and 100 groups in one page.
	if f.ReadRequests != 11+1 || f.S1Requests != s1.RequestsTotal {
		t.Errorf("S8 read back with %d list requests (routes %v), S1 sent %d", f.ReadRequests, s8.Routes, f.S1Requests)
	}
	if want := want; s8.Remote != (RemoteState{Users: want.Users + s8Strangers + s8Orphans, Groups: want.Groups, Members: want.Members}) {
		t.Errorf("S8: target holds %+v", s8.Remote)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, jsonPath, err := parseFlags([]string{"--small", "--json", "out.json"}, &bytes.Buffer{})
	if err != nil || cfg.Users != SmallUsers || cfg.Groups != SmallGroups || jsonPath != "out.json" ||
		strings.Join(cfg.Scenarios, ",") != "S1,S2,S3,S4,S8" {
		t.Errorf("--small: %+v %q %v", cfg, jsonPath, err)
	}
	cfg, _, err = parseFlags([]string{"--users", "100000"}, &bytes.Buffer{})
	if err != nil || strings.Join(cfg.Scenarios, ",") != "S6" || cfg.S6Users != 100000 {
		t.Errorf("--users 100000: %+v %v", cfg, err)
	}
	cfg, _, err = parseFlags([]string{"--scenarios", "s6,S1"}, &bytes.Buffer{})
	if err != nil || strings.Join(cfg.Scenarios, ",") != "S1,S6" {
		t.Errorf("--scenarios s6,S1: %v %v", cfg.Scenarios, err)
	}
	if _, _, err := parseFlags([]string{"--scenarios", "S9"}, &bytes.Buffer{}); err == nil {
		t.Error("--scenarios S9 accepted")
	}
	if _, _, err := parseFlags([]string{"--temporal-config", "novalue"}, &bytes.Buffer{}); err == nil {
		t.Error("--temporal-config without = accepted")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP temporal_workflow_completed_total x
# TYPE temporal_workflow_completed_total counter
temporal_workflow_completed_total{namespace="default",task_queue="q",workflow_type="SyncBatch"} 11
temporal_workflow_completed_total{namespace="default",task_queue="q",workflow_type="FullSync"} 1
temporal_activity_execution_latency_seconds_count{activity_type="MapObjects",workflow_type="SyncBatch"} 11
temporal_activity_execution_latency_seconds_count{activity_type="WriteObjects",workflow_type="SyncBatch"} 10
temporal_request_total{operation="PollActivityTaskQueue"} 3
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	wf := m.byLabel("temporal_workflow_completed_total", "workflow_type")
	acts := m.byLabel("temporal_activity_execution_latency_seconds_count", "activity_type")
	if wf["SyncBatch"] != 11 || wf["FullSync"] != 1 || len(wf) != 2 || acts["MapObjects"] != 11 || acts["WriteObjects"] != 10 ||
		len(acts) != 2 || m["temporal_request_total"] != 3 {
		t.Errorf("workflows %v, activities %v, requests %v", wf, acts, m["temporal_request_total"])
	}
}

// testLog writes the harness's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
