package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/scimsync/scimsync/codec"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// rawSummary waits until the execution exists and returns the summary payload Temporal
// stores for it, as DescribeWorkflowExecution answers it (ExecutionConfig.UserMetadata),
// and checks that the history's first event holds the same bytes.
func (e *env) rawSummary(c client.Client, id string) *commonpb.Payload {
	e.t.Helper()
	var p *commonpb.Payload
	e.waitFor(time.Minute, func() string {
		desc, err := c.DescribeWorkflowExecution(e.ctx, id, "")
		if err != nil {
			return "describe " + id + ": " + err.Error()
		}
		if p = desc.GetExecutionConfig().GetUserMetadata().GetSummary(); p == nil {
			e.t.Fatalf("%s has no summary", id)
		}
		return ""
	})
	it := c.GetWorkflowHistory(e.ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := it.Next()
	if err != nil {
		e.t.Fatal(err)
	}
	if h := first.GetUserMetadata().GetSummary(); h == nil || !bytes.Equal(h.GetData(), p.GetData()) {
		e.t.Errorf("%s: the started event's summary %v differs from the described %v", id, h, p)
	}
	return p
}

// summaryText decodes a summary payload with dc.
func summaryText(t *testing.T, dc converter.DataConverter, p *commonpb.Payload) string {
	t.Helper()
	var s string
	if err := dc.FromPayload(p, &s); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	return s
}

// TestWorkflowSummariesAreSealedByTheCodec: a worker with SCIMSYNC_CODEC_KEYS gives the
// ObjectSyncs its change feed starts, the full sync its schedule starts and that sync's
// batches their summaries, and stores each sealed: the raw bytes Temporal keeps hold no
// name, and the codec opens them to the expected text. A starter without the keys still
// describes the schedule (its sealed summary reads as codec.SealedText).
func TestWorkflowSummariesAreSealedByTheCodec(t *testing.T) {
	e := newEnvWithoutWorker(t, scimtest.Options{})
	key := make([]byte, 32)
	rand.Read(key)
	const provider = "summaries"
	e.provider(provider, nil)
	var alice store.User
	var eng store.Group
	e.tx(func(tx *store.Tx) (err error) {
		if alice, err = tx.CreateUser(e.ctx, store.User{Username: "alice@example.com", Name: "Alice Liddell",
			Email: "alice@example.com", IsActive: true}); err != nil {
			return err
		}
		if eng, err = tx.CreateGroup(e.ctx, store.Group{Name: "Engineering"}); err != nil {
			return err
		}
		return tx.AddMember(e.ctx, eng.ID, alice.ID)
	})
	// The full sync writes these; the change feed then gets changes of its own.
	e.clearOutbox()
	w := e.newWorkerProc(buildWorker(t), workerOptions{Env: []string{
		"IT_CODEC_KEY=" + base64.StdEncoding.EncodeToString(key), "SCIMSYNC_CODEC_KEYS=k1=env:IT_CODEC_KEY"}})
	w.Start()
	sealed := codecClient(t, codec.Key{ID: "k1", Secret: key})
	dc := codec.DataConverter(mustCodec(t, codec.Key{ID: "k1", Secret: key}))

	check := func(id, want string) {
		t.Helper()
		p := e.rawSummary(e.temporal, id)
		if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != codec.MetadataEncoding {
			t.Errorf("%s: summary encoding %q, want %q (sealed)", id, enc, codec.MetadataEncoding)
		}
		for _, clear := range []string{"alice", "dave", "Engineering", provider, "full sync", "batch"} {
			if bytes.Contains(p.GetData(), []byte(clear)) {
				t.Errorf("%s: the stored summary shows %q in clear", id, clear)
			}
		}
		if got := summaryText(t, dc, p); got != want {
			t.Errorf("%s: summary %q, want %q", id, got, want)
		}
	}
	full := e.scheduledFullSync(e.temporal, provider, time.Minute)
	check(full, "full sync of summaries")
	if _, err := e.awaitWorkflow(sealed, full, 2*time.Minute); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	check(full+"/user-batch-1", "summaries users batch 1 (1 object)")
	check(full+"/group-batch-2", "summaries groups batch 2 (1 object)")

	// A new member: the worker's change feed starts the ObjectSyncs of the user and the group.
	var dave store.User
	e.tx(func(tx *store.Tx) (err error) {
		if dave, err = tx.CreateUser(e.ctx, store.User{Username: "dave@example.com", Email: "dave@example.com", IsActive: true}); err != nil {
			return err
		}
		return tx.AddMember(e.ctx, eng.ID, dave.ID)
	})
	check(workflows.ObjectSyncID(e.inst, provider, object.User, dave.ID), "summaries · user · dave@example.com")
	check(workflows.ObjectSyncID(e.inst, provider, object.Group, eng.ID), "summaries · group · Engineering")

	// The schedule's action carries the full sync's summary, sealed too.
	sched := workflows.FullSyncScheduleID(e.inst, provider)
	desc, err := sealed.ScheduleClient().GetHandle(e.ctx, sched).Describe(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || a.StaticSummary != "full sync of summaries" {
		t.Errorf("schedule action %+v, want the summary", desc.Schedule.Action)
	}
	keyless, err := client.NewClientFromExisting(e.temporal, client.Options{DataConverter: codec.KeylessDataConverter()})
	if err != nil {
		t.Fatal(err)
	}
	defer keyless.Close()
	desc, err = keyless.ScheduleClient().GetHandle(e.ctx, sched).Describe(e.ctx)
	if err != nil {
		t.Fatalf("describe the schedule without the keys: %v", err)
	}
	if a := desc.Schedule.Action.(*client.ScheduleWorkflowAction); a.StaticSummary != codec.SealedText {
		t.Errorf("schedule summary without the keys %q, want %q", a.StaticSummary, codec.SealedText)
	}
	r := e.starterDialing(map[string]string{"TEMPORAL_ADDRESS": testenv.Temporal(t).FrontendHostPort()},
		"status", "--provider", provider)
	r.expect(t, 0, "schedule")
	if strings.Contains(r.stdout+r.stderr, "could not decode") {
		t.Errorf("starter status without the keys: %s%s", r.stdout, r.stderr)
	}
}

func mustCodec(t *testing.T, keys ...codec.Key) *codec.Codec {
	t.Helper()
	c, err := codec.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStarterSyncSummaryIsReadableWithoutTheCodec: `starter sync --via-temporal` starts
// the ObjectSync with the user's name in its summary; without payload encryption the stored
// summary is plain JSON, readable by anyone who can read the namespace. With
// SCIMSYNC_SUMMARY_NAMES=false the summary shows the object id; a value that is not a
// boolean stops the command before it signals anything.
func TestStarterSyncSummaryIsReadableWithoutTheCodec(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	const provider = "plain-summaries"
	e.provider(provider, nil)
	var bob, carol store.User
	var sales store.Group
	e.tx(func(tx *store.Tx) (err error) {
		if bob, err = tx.CreateUser(e.ctx, store.User{Username: "bob@example.com", Email: "bob@example.com", IsActive: true}); err != nil {
			return err
		}
		if sales, err = tx.CreateGroup(e.ctx, store.Group{Name: "Sales Team"}); err != nil {
			return err
		}
		if err := tx.AddMember(e.ctx, sales.ID, bob.ID); err != nil {
			return err
		}
		carol, err = tx.CreateUser(e.ctx, store.User{Username: "carol@example.com", Email: "carol@example.com", IsActive: true})
		return err
	})
	e.clearOutbox()

	e.starter("sync", "user", "bob@example.com", "--provider", provider, "--via-temporal").expect(t, 0, "result     ok\n")
	p := e.rawSummary(e.temporal, workflows.ObjectSyncID(e.inst, provider, object.User, bob.ID))
	if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != converter.MetadataEncodingJSON {
		t.Errorf("summary encoding %q, want %q", enc, converter.MetadataEncodingJSON)
	}
	if want := `"plain-summaries · user · bob@example.com"`; string(p.GetData()) != want {
		t.Errorf("stored summary %s, want %s in clear", p.GetData(), want)
	}

	// Bob's ObjectSync linked him, so its activity SignalGroupsOfUsers started his group's,
	// named in the summary too.
	p = e.rawSummary(e.temporal, workflows.ObjectSyncID(e.inst, provider, object.Group, sales.ID))
	if got, want := summaryText(t, converter.GetDefaultDataConverter(), p), "plain-summaries · group · Sales Team"; got != want {
		t.Errorf("summary of the group's ObjectSync %q, want %q", got, want)
	}

	r := e.runStarter(map[string]string{"SCIMSYNC_SUMMARY_NAMES": "maybe"}, "sync", "user", "carol@example.com",
		"--provider", provider, "--via-temporal")
	r.expect(t, 2)
	if !strings.Contains(r.stderr, `SCIMSYNC_SUMMARY_NAMES "maybe": use true or false`) {
		t.Errorf("stderr %q, want the bad setting named", r.stderr)
	}
	carolSync := workflows.ObjectSyncID(e.inst, provider, object.User, carol.ID)
	if _, err := e.temporal.DescribeWorkflowExecution(e.ctx, carolSync, ""); err == nil {
		t.Errorf("%s started although the setting was refused", carolSync)
	}
	e.runStarter(map[string]string{"SCIMSYNC_SUMMARY_NAMES": "false"}, "sync", "user", "carol@example.com",
		"--provider", provider, "--via-temporal").expect(t, 0, "result     ok\n")
	p = e.rawSummary(e.temporal, carolSync)
	if got, want := summaryText(t, converter.GetDefaultDataConverter(), p), "plain-summaries · user · "+carol.ID; got != want {
		t.Errorf("summary with SCIMSYNC_SUMMARY_NAMES=false %q, want %q", got, want)
	}
}
