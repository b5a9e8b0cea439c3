package workflows_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

func TestInstallationScopesEveryID(t *testing.T) {
	inst, err := workflows.NewInstallation("7F3A9C2E-41B0-4c1d-9e2f-0123456789ab")
	if err != nil || inst != "7f3a9c2e41b0" {
		t.Fatalf("NewInstallation = %q, %v; want 7f3a9c2e41b0", inst, err)
	}
	for _, bad := range []string{"", "7f3a9c2e", "not-a-uuid-at-all-zz"} {
		if got, err := workflows.NewInstallation(bad); err == nil {
			t.Errorf("NewInstallation(%q) = %q, want an error", bad, got)
		}
	}
	for _, tc := range []struct{ got, want string }{
		{workflows.ObjectSyncID(inst, "acme", object.User, "u1"), "scim/7f3a9c2e41b0/acme/user/u1"},
		{workflows.FullSyncScheduleID(inst, "acme"), "scim-full-sync-7f3a9c2e41b0/acme"},
		{workflows.FullSyncWorkflowID(inst, "acme"), "scim-full-sync-7f3a9c2e41b0/acme"},
		{workflows.FullSyncSchedulePrefix(inst), "scim-full-sync-7f3a9c2e41b0/"},
		{workflows.DefaultTaskQueue(inst), "scimsync-7f3a9c2e41b0"},
		{workflows.LegacyFullSyncScheduleID("acme"), "scim-full-sync/acme"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for id, want := range map[string]workflows.Installation{
		"scim/7f3a9c2e41b0/acme/group/g1":                                    inst,
		"scim-full-sync-7f3a9c2e41b0/acme-2026-01-02T03:00:00Z":              inst,
		"scim-full-sync-7f3a9c2e41b0/acme-2026-01-02T03:00:00Z/user-batch-3": inst,
		"scim-full-sync/7f3a9c2e41b0/acme-2026-01-02T03:00:00Z":              "", // no such form
		"scim/ba9876543210/acme/user/u1":                                     "ba9876543210",
		"scim/acme/user/u1":                                                  "", // before installation ids
		"scim-full-sync/acme-2026-01-02T03:00:00Z":                           "",
		"scim-full-sync/acme-2026-01-02T03:00:00Z/user-batch-1":              "",
		"scim/7F3A9C2E41B0/acme/user/u1":                                     "",
		"scim/7f3a9c2e41b0":                                                  "",
		"elsewhere/7f3a9c2e41b0/acme":                                        "",
	} {
		got, ok := workflows.WorkflowInstallation(id)
		if got != want || ok != (want != "") {
			t.Errorf("WorkflowInstallation(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
}

// TestFullSyncProgressReadsTheEarlierBatchesName: progress written by an earlier worker
// (a continue-as-new input, a result, a query answer) named BatchesTotal "batchesStarted";
// it still reads, and what is written now round-trips.
func TestFullSyncProgressReadsTheEarlierBatchesName(t *testing.T) {
	for _, c := range []struct {
		json string
		want workflows.FullSyncProgress
	}{
		{`{"phase":"users","batchesDone":2,"batchesStarted":3,"users":{"created":5},"runs":1}`,
			workflows.FullSyncProgress{Phase: "users", BatchesDone: 2, BatchesTotal: 3, Users: workflows.Counts{Created: 5}, Runs: 1}},
		{`{"phase":"done","batchesDone":4,"batchesTotal":4}`,
			workflows.FullSyncProgress{Phase: "done", BatchesDone: 4, BatchesTotal: 4}},
	} {
		var got workflows.FullSyncProgress
		if err := json.Unmarshal([]byte(c.json), &got); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", c.json, got, err, c.want)
		}
		b, err := json.Marshal(got)
		if err != nil || !strings.Contains(string(b), fmt.Sprintf(`"batchesTotal":%d`, c.want.BatchesTotal)) || strings.Contains(string(b), "batchesStarted") {
			t.Errorf("Marshal = %s, %v; want batchesTotal only", b, err)
		}
	}
	var bad workflows.FullSyncProgress
	if err := json.Unmarshal([]byte(`{"batchesDone":"x"}`), &bad); err == nil {
		t.Error("a malformed progress decoded without error")
	}
}
