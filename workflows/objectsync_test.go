package workflows_test

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/workflows"
)

var enabled = activities.ProviderInfo{Name: provider, Enabled: true, PageSize: 2}

// round is the activity calls of one ObjectSync round of a user that is mapped as changed
// and written.
func round(id string) []call {
	return []call{
		{"LoadProvider", activities.ProviderInput{Provider: provider}},
		{"MapObjects", activities.ObjectsInput{Provider: provider, Kind: object.User, IDs: []string{id}}},
		{"WriteObjects", activities.WriteInput{Provider: provider, Kind: object.User, Objects: changed(id)}},
	}
}

func rounds(id string, n int) []call {
	var out []call
	for range n {
		out = append(out, round(id)...)
	}
	return out
}

// TestObjectSyncCoalescesSignals sends object-changed signals at given times while the
// rounds run (MapObjects takes a minute of workflow time) and checks that all signals
// that arrive during one round cause exactly one more round, and that the workflow
// completes right after a round during which no signal arrived.
func TestObjectSyncCoalescesSignals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signals []time.Duration
		rounds  int
	}{
		{"no signal", nil, 1},
		{"signal with start", []time.Duration{0}, 1},
		{"three signals during the first round", []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second}, 2},
		{"signal with start and one during the round", []time.Duration{0, 30 * time.Second}, 2},
		{"signals during the first and second rounds", []time.Duration{10 * time.Second, 70 * time.Second, 80 * time.Second}, 3},
		{"signals during each of three rounds", []time.Duration{10 * time.Second, 70 * time.Second, 130 * time.Second}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			f := &fake{Provider: enabled, MapDelay: time.Minute,
				Write: func(in activities.WriteInput) (activities.WriteResult, error) {
					return activities.WriteResult{Updated: len(in.Objects)}, nil
				}}
			f.install(env)
			for i, at := range tc.signals {
				env.RegisterDelayedCallback(func() {
					env.SignalWorkflow(workflows.SignalObjectChanged, workflows.ObjectChanged{Reason: "change " + string(rune('a'+i))})
				}, at)
			}
			env.ExecuteWorkflow(workflows.ObjectSyncWorkflow,
				workflows.ObjectSyncInput{Provider: provider, Kind: object.User, ObjectID: "u1"})

			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("workflow error: %v", err)
			}
			equal(t, "activity calls", f.Calls(), rounds("u1", tc.rounds))
			if got, want := env.Now().Sub(start), time.Duration(tc.rounds)*time.Minute; got != want {
				t.Errorf("completed after %s of workflow time, want %s (right after the last round)", got, want)
			}
		})
	}
}

// TestObjectSyncContinuesAsNewWhenSuggested checks that a round with pending signals ends
// the run with continue-as-new (same input) when the server suggests it, and that the
// suggestion alone does not: a round without signals completes.
func TestObjectSyncContinuesAsNewWhenSuggested(t *testing.T) {
	in := workflows.ObjectSyncInput{Provider: provider, Kind: object.User, ObjectID: "u1"}

	t.Run("signals pending", func(t *testing.T) {
		env := newEnv(t)
		f := &fake{Provider: enabled, MapDelay: time.Minute}
		f.install(env)
		env.SetContinueAsNewSuggested(true)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalObjectChanged, workflows.ObjectChanged{Reason: "user update"})
		}, 30*time.Second)
		env.ExecuteWorkflow(workflows.ObjectSyncWorkflow, in)

		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if !errors.As(err, &can) {
			t.Fatalf("workflow error = %v, want a ContinueAsNewError", err)
		}
		if can.WorkflowType.Name != workflows.ObjectSyncWorkflow {
			t.Errorf("continues as %q, want %q", can.WorkflowType.Name, workflows.ObjectSyncWorkflow)
		}
		var next workflows.ObjectSyncInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
			t.Fatal(err)
		}
		equal(t, "continue-as-new input", next, in)
		equal(t, "activity calls", f.Calls(), rounds("u1", 1))
	})

	t.Run("no signal pending", func(t *testing.T) {
		env := newEnv(t)
		f := &fake{Provider: enabled, MapDelay: time.Minute}
		f.install(env)
		env.SetContinueAsNewSuggested(true)
		env.ExecuteWorkflow(workflows.ObjectSyncWorkflow, in)

		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("workflow error = %v, want completion", err)
		}
		equal(t, "activity calls", f.Calls(), rounds("u1", 1))
	})
}

// TestObjectSyncOutcomes checks the exact activity calls of one round for each thing that
// can happen to the object.
func TestObjectSyncOutcomes(t *testing.T) {
	load := call{"LoadProvider", activities.ProviderInput{Provider: provider}}
	objects := func(kind, id string) activities.ObjectsInput {
		return activities.ObjectsInput{Provider: provider, Kind: kind, IDs: []string{id}}
	}
	for _, tc := range []struct {
		name     string
		kind, id string
		provider activities.ProviderInfo
		mapped   activities.MapResult
		written  activities.WriteResult
		want     []call
	}{{
		name: "disabled provider does nothing",
		kind: object.User, id: "u1",
		provider: activities.ProviderInfo{Name: provider, Enabled: false, PageSize: 100},
		want:     []call{load},
	}, {
		name: "gone user is deprovisioned",
		kind: object.User, id: "u1", provider: enabled,
		mapped: activities.MapResult{Gone: []string{"u1"}},
		want: []call{load,
			{"MapObjects", objects(object.User, "u1")},
			{"Deprovision", objects(object.User, "u1")},
		},
	}, {
		name: "gone group is deprovisioned, its members are not synced",
		kind: object.Group, id: "g1", provider: enabled,
		mapped: activities.MapResult{Gone: []string{"g1"}},
		want: []call{load,
			{"MapObjects", objects(object.Group, "g1")},
			{"Deprovision", objects(object.Group, "g1")},
		},
	}, {
		name: "changed group is written, then its members",
		kind: object.Group, id: "g1", provider: enabled,
		mapped:  activities.MapResult{Changed: changed("g1")},
		written: activities.WriteResult{Updated: 1},
		want: []call{load,
			{"MapObjects", objects(object.Group, "g1")},
			{"WriteObjects", activities.WriteInput{Provider: provider, Kind: object.Group, Objects: changed("g1")}},
			{"SyncMembers", objects(object.Group, "g1")},
		},
	}, {
		name: "unchanged group still gets its members synced",
		kind: object.Group, id: "g1", provider: enabled,
		mapped: activities.MapResult{Unchanged: []string{"g1"}},
		want: []call{load,
			{"MapObjects", objects(object.Group, "g1")},
			{"SyncMembers", objects(object.Group, "g1")},
		},
	}, {
		name: "skipped group is left alone",
		kind: object.Group, id: "g1", provider: enabled,
		mapped: activities.MapResult{Skipped: []string{"g1"}},
		want: []call{load,
			{"MapObjects", objects(object.Group, "g1")},
		},
	}, {
		name: "linked user makes its groups sync",
		kind: object.User, id: "u1", provider: enabled,
		mapped:  activities.MapResult{Changed: changed("u1")},
		written: activities.WriteResult{Created: 1, Linked: []string{"u1"}},
		want: []call{load,
			{"MapObjects", objects(object.User, "u1")},
			{"WriteObjects", activities.WriteInput{Provider: provider, Kind: object.User, Objects: changed("u1")}},
			{"SignalGroupsOfUsers", activities.SignalInput{Provider: provider, Kind: object.Group, IDs: []string{"u1"}, Reason: "member linked"}},
		},
	}, {
		name: "updated user that was linked before signals nobody",
		kind: object.User, id: "u1", provider: enabled,
		mapped:  activities.MapResult{Changed: changed("u1")},
		written: activities.WriteResult{Updated: 1},
		want: []call{load,
			{"MapObjects", objects(object.User, "u1")},
			{"WriteObjects", activities.WriteInput{Provider: provider, Kind: object.User, Objects: changed("u1")}},
		},
	}, {
		name: "unchanged user is not written",
		kind: object.User, id: "u1", provider: enabled,
		mapped: activities.MapResult{Unchanged: []string{"u1"}},
		want: []call{load,
			{"MapObjects", objects(object.User, "u1")},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			f := &fake{Provider: tc.provider,
				Map:   func(activities.ObjectsInput) (activities.MapResult, error) { return tc.mapped, nil },
				Write: func(activities.WriteInput) (activities.WriteResult, error) { return tc.written, nil },
			}
			f.install(env)
			env.ExecuteWorkflow(workflows.ObjectSyncWorkflow,
				workflows.ObjectSyncInput{Provider: provider, Kind: tc.kind, ObjectID: tc.id})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("workflow error: %v", err)
			}
			equal(t, "activity calls", f.Calls(), tc.want)
		})
	}
}

// TestSyncBatch checks a full sync's batch: gone objects deprovisioned, changed ones
// written, members synced for the groups present (in input order), the counts added up,
// and no signal to the groups of linked users (the groups phase follows anyway).
func TestSyncBatch(t *testing.T) {
	t.Run("users linked in a batch signal nobody", func(t *testing.T) {
		env := newEnv(t)
		f := &fake{Provider: enabled,
			Map: func(in activities.ObjectsInput) (activities.MapResult, error) {
				return activities.MapResult{Changed: changed("u1", "u2"), Unchanged: []string{"u3"}}, nil
			},
			Write: func(in activities.WriteInput) (activities.WriteResult, error) {
				return activities.WriteResult{Created: 1, Updated: 1, Linked: []string{"u1"}}, nil
			},
		}
		f.install(env)
		in := workflows.SyncBatchInput{Provider: provider, Kind: object.User, IDs: []string{"u1", "u2", "u3"}}
		env.ExecuteWorkflow(workflows.SyncBatchWorkflow, in)

		var got workflows.SyncBatchResult
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "result", got, workflows.SyncBatchResult{Counts: workflows.Counts{Created: 1, Updated: 1, Unchanged: 1}})
		equal(t, "activity calls", f.Calls(), []call{
			{"MapObjects", activities.ObjectsInput{Provider: provider, Kind: object.User, IDs: in.IDs}},
			{"WriteObjects", activities.WriteInput{Provider: provider, Kind: object.User, Objects: changed("u1", "u2")}},
		})
	})

	t.Run("groups", func(t *testing.T) {
		env := newEnv(t)
		f := &fake{Provider: enabled,
			Map: func(in activities.ObjectsInput) (activities.MapResult, error) {
				return activities.MapResult{
					Changed: changed("g1", "g3"), Skipped: []string{"g2"}, Unchanged: []string{"g4"}, Gone: []string{"g5"},
				}, nil
			},
			Write: func(in activities.WriteInput) (activities.WriteResult, error) {
				return activities.WriteResult{Created: 1, Updated: 1, Linked: []string{"g3"}}, nil
			},
			SyncMembers: func(in activities.ObjectsInput) (activities.WriteResult, error) {
				return activities.WriteResult{Failed: []activities.ObjectFailure{{ID: "g4", Error: "400 invalidValue"}}}, nil
			},
		}
		f.install(env)
		in := workflows.SyncBatchInput{Provider: provider, Kind: object.Group, IDs: []string{"g5", "g4", "g3", "g2", "g1"}}
		env.ExecuteWorkflow(workflows.SyncBatchWorkflow, in)

		var got workflows.SyncBatchResult
		if err := env.GetWorkflowResult(&got); err != nil {
			t.Fatalf("workflow error: %v", err)
		}
		equal(t, "result", got, workflows.SyncBatchResult{Counts: workflows.Counts{
			Created: 1, Updated: 1, Unchanged: 1, Skipped: 1, Failed: 1, Deprovisioned: 1}})
		equal(t, "activity calls", f.Calls(), []call{
			{"MapObjects", activities.ObjectsInput{Provider: provider, Kind: object.Group, IDs: in.IDs}},
			{"Deprovision", activities.ObjectsInput{Provider: provider, Kind: object.Group, IDs: []string{"g5"}}},
			{"WriteObjects", activities.WriteInput{Provider: provider, Kind: object.Group, Objects: changed("g1", "g3")}},
			{"SyncMembers", activities.ObjectsInput{Provider: provider, Kind: object.Group, IDs: []string{"g4", "g3", "g1"}}},
		})
	})
}
