package workflows_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

func TestSummaries(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{workflows.ObjectSyncSummary("demo", object.User, "alice@example.com"), "demo · user · alice@example.com"},
		{workflows.ObjectSyncSummary("demo", object.Group, "Engineering"), "demo · group · Engineering"},
		// A name is one line: line breaks and control characters are spaces, runs one space.
		{workflows.ObjectSyncSummary("demo", object.Group, " Sales\n\tEMEA\x00 "), "demo · group · Sales EMEA"},
		{workflows.FullSyncSummary("slack"), "full sync of slack"},
		{workflows.SyncBatchSummary("demo", object.User, 3, 100), "demo users batch 3 (100 objects)"},
		{workflows.SyncBatchSummary("demo", object.Group, 12, 1), "demo groups batch 12 (1 object)"},
	} {
		if c.got != c.want {
			t.Errorf("summary %q, want %q", c.got, c.want)
		}
	}
	// The start options of an ObjectSync show the id until a caller names the object.
	opts := workflows.ObjectSyncStartOptions("", "0123456789ab", "demo", object.User, "34c0b596-0000-4000-8000-000000000001")
	if want := "demo · user · 34c0b596-0000-4000-8000-000000000001"; opts.StaticSummary != want {
		t.Errorf("start options summary %q, want %q", opts.StaticSummary, want)
	}
}

// TestSummaryNameIsBounded: a name of any length leaves a summary that Temporal accepts (a
// summary payload over 400 bytes is refused), cut at a character boundary.
func TestSummaryNameIsBounded(t *testing.T) {
	long := strings.Repeat("ü", 300) // 600 bytes
	s := workflows.ObjectSyncSummary("a-provider-name", object.Group, long)
	name := strings.TrimPrefix(s, "a-provider-name · group · ")
	if !utf8.ValidString(s) || !strings.HasSuffix(name, "…") || len(name) > 120 || len(name) < 110 {
		t.Fatalf("summary of a 600-byte name: %q (%d bytes of name)", s, len(name))
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(name, "…")) {
		t.Errorf("the cut name %q is not a prefix of the name", name)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Size(); n > 250 {
		t.Errorf("summary payload of %d bytes: too close to Temporal's 400 with the codec's envelope", n)
	}
}

// recordedBatchSummaryID is the FullSync recorded with summaries on its SyncBatch children
// (version batch-summary).
const recordedBatchSummaryID = recordedFullSyncPrefix + stubFullProvider + "-2026-12-02T04:00:00Z"

// recordBatchSummaries records, for TestRecordHistories, a FullSync of version
// batch-summary: as fullsync-batches-cleanup, its children now with summaries.
func recordBatchSummaries(ctx context.Context, t *testing.T, c client.Client, queue string) {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: recordedBatchSummaryID, TaskQueue: queue},
		workflows.FullSyncWorkflow, workflows.FullSyncInput{Provider: stubFullProvider, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, c, recordedBatchSummaryID, func(p workflows.FullSyncProgress) bool { return p.Phase == workflows.PhaseAwaitApproval })
	if err := c.SignalWorkflow(ctx, recordedBatchSummaryID, "", workflows.SignalApproveDeletions, workflows.DeletionApproval{Count: 7}); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("FullSync with batch summaries: %v", err)
	}
	writeHistory(ctx, t, c, recordedBatchSummaryID, "", "fullsync-batch-summaries.json")
}

// TestRecordedBatchSummaries reads the summaries in the recorded histories: the children of
// the batch-summary version carry theirs in the StartChildWorkflowExecutionInitiated
// events, those recorded before it none.
func TestRecordedBatchSummaries(t *testing.T) {
	summaries := func(file string) []string {
		t.Helper()
		var out []string
		for _, e := range readHistory(t, filepath.Join("testdata", file)).Events {
			if e.GetStartChildWorkflowExecutionInitiatedEventAttributes() == nil {
				continue
			}
			var s string
			if p := e.GetUserMetadata().GetSummary(); p != nil {
				if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, s)
		}
		return out
	}
	equal(t, "summaries of the children of batch-summary", summaries("fullsync-batch-summaries.2026-12-02.json"), []string{
		"acme-full users batch 1 (2 objects)", "acme-full users batch 2 (1 object)", "acme-full groups batch 3 (1 object)",
	})
	equal(t, "summaries of the children before batch-summary", summaries("fullsync-batches-cleanup.2026-12-02.json"), []string{"", "", ""})
}
