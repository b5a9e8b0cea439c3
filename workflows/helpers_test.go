package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/workflows"
)

// acts is the nil receiver through which the tests name activities, as the workflows do.
var acts *activities.Activities

// provider is the provider every test syncs to.
const provider = "acme"

// start is the workflow clock's start in every test, so that elapsed times are exact.
var start = time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)

// newEnv returns a test environment with the three workflows registered under their
// documented names, as the worker registers them.
func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.ObjectSync, workflow.RegisterOptions{Name: workflows.ObjectSyncWorkflow})
	env.RegisterWorkflowWithOptions(workflows.FullSync, workflow.RegisterOptions{Name: workflows.FullSyncWorkflow})
	env.RegisterWorkflowWithOptions(workflows.SyncBatch, workflow.RegisterOptions{Name: workflows.SyncBatchWorkflow})
	env.SetStartTime(start)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "wf", TaskQueue: "scimsync-test"})
	return env
}

// call is one activity call: the activity's name and its input.
type call struct {
	Activity string
	Input    any
}

// fake answers every activity of the workflows from in-memory data and records each call
// in order. Zero fields give harmless answers: nothing in scope, nothing stale, every
// object mapped as changed and written as created.
type fake struct {
	Provider activities.ProviderInfo
	// InScope and Stale are the ids, in id order, that ListInScope and ListStale page
	// through, by kind.
	InScope map[string][]string
	Stale   map[string][]string
	// StaleCount answers CountStale.
	StaleCount activities.StaleCount
	// Due are the user ids, in id order, that ListDueDeletions pages through; DeleteDue
	// answers DeleteDue (nil deletes every object).
	Due       []string
	DeleteDue func(activities.ObjectsInput) (activities.WriteResult, error)
	// Map answers MapObjects; nil maps every id as changed.
	Map func(activities.ObjectsInput) (activities.MapResult, error)
	// Write answers WriteObjects; nil creates every object.
	Write func(activities.WriteInput) (activities.WriteResult, error)
	// Deprovision answers Deprovision; nil deprovisions every object.
	Deprovision func(activities.ObjectsInput) (activities.WriteResult, error)
	// SyncMembers answers SyncMembers; nil succeeds.
	SyncMembers func(activities.ObjectsInput) (activities.WriteResult, error)
	// OnList sees every ListInScope input before it is answered.
	OnList func(activities.ListInput)
	// MapDelay is how long each MapObjects call takes on the workflow clock.
	MapDelay time.Duration
	// ReadPages answers ReadTargetPage, in turn, by kind; ReadLinked answers ReadLinked.
	ReadPages  map[string][]activities.ReadPageResult
	ReadLinked map[string][]activities.ReadLinkedResult
	// Orphans answers HandleOrphans (one page), by kind; deletions are counted when asked.
	Orphans map[string]activities.OrphanCounts
	// Finished holds what FinishReadBack was given.
	Finished []activities.FinishReadBackInput

	mu    sync.Mutex
	calls []call
	// pacingReads counts PacingState calls, which come on a timer and are kept out of calls.
	pacingReads int
}

// fakePacing is what the fake's PacingState answers.
var fakePacing = activities.PacingInfo{LimitPerMinute: 1200, LimitSource: "config", AllowedPerMinute: 1140,
	SentPerMinute: 1100, AcceptedPerMinute: 1100, At: start}

// PacingReads returns how many times the pacing was read.
func (f *fake) PacingReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pacingReads
}

func (f *fake) record(name string, in any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{name, in})
}

// Calls returns every activity call so far, in order.
func (f *fake) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Inputs returns the inputs of the calls of one activity, in order.
func (f *fake) Inputs(name string) []any {
	var out []any
	for _, c := range f.Calls() {
		if c.Activity == name {
			out = append(out, c.Input)
		}
	}
	return out
}

// page answers a keyset page: the ids after after, at most limit of them.
func page(ids []string, after string, limit int) activities.IDList {
	out := activities.IDList{IDs: []string{}}
	for _, id := range ids {
		if id > after && len(out.IDs) < limit {
			out.IDs = append(out.IDs, id)
		}
	}
	return out
}

// changed maps ids as changed objects.
func changed(ids ...string) []activities.MappedObject {
	out := make([]activities.MappedObject, len(ids))
	for i, id := range ids {
		out[i] = activities.MappedObject{ID: id, Payload: map[string]any{"externalId": id}, Hash: "h-" + id}
	}
	return out
}

// install mocks every activity with the fake. Each mock may go uncalled: the tests assert
// the calls themselves.
func (f *fake) install(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(acts.PacingState, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ProviderInput) (activities.PacingInfo, error) {
			f.mu.Lock()
			f.pacingReads++
			f.mu.Unlock()
			return fakePacing, nil
		})
	env.OnActivity(acts.LoadProvider, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ProviderInput) (activities.ProviderInfo, error) {
			f.record("LoadProvider", in)
			return f.Provider, nil
		})
	env.OnActivity(acts.Discover, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ProviderInput) (activities.DiscoverResult, error) {
			f.record("Discover", in)
			return activities.DiscoverResult{Patch: true}, nil
		})
	env.OnActivity(acts.ListInScope, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ListInput) (activities.IDList, error) {
			f.record("ListInScope", in)
			if f.OnList != nil {
				f.OnList(in)
			}
			return page(f.InScope[in.Kind], in.After, in.Limit), nil
		})
	env.OnActivity(acts.ListStale, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ListInput) (activities.IDList, error) {
			f.record("ListStale", in)
			return page(f.Stale[in.Kind], in.After, in.Limit), nil
		})
	env.OnActivity(acts.ListDueDeletions, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ListInput) (activities.IDList, error) {
			f.record("ListDueDeletions", in)
			return page(f.Due, in.After, in.Limit), nil
		})
	env.OnActivity(acts.DeleteDue, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ObjectsInput) (activities.WriteResult, error) {
			f.record("DeleteDue", in)
			if f.DeleteDue != nil {
				return f.DeleteDue(in)
			}
			return activities.WriteResult{Deprovisioned: len(in.IDs)}, nil
		})
	env.OnActivity(acts.CountStale, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ProviderInput) (activities.StaleCount, error) {
			f.record("CountStale", in)
			return f.StaleCount, nil
		})
	env.OnActivity(acts.MapObjects, mock.Anything, mock.Anything).Maybe().After(f.MapDelay).Return(
		func(_ context.Context, in activities.ObjectsInput) (activities.MapResult, error) {
			f.record("MapObjects", in)
			if f.Map != nil {
				return f.Map(in)
			}
			return activities.MapResult{Changed: changed(in.IDs...)}, nil
		})
	env.OnActivity(acts.WriteObjects, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.WriteInput) (activities.WriteResult, error) {
			f.record("WriteObjects", in)
			if f.Write != nil {
				return f.Write(in)
			}
			return activities.WriteResult{Created: len(in.Objects)}, nil
		})
	env.OnActivity(acts.Deprovision, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ObjectsInput) (activities.WriteResult, error) {
			f.record("Deprovision", in)
			if f.Deprovision != nil {
				return f.Deprovision(in)
			}
			return activities.WriteResult{Deprovisioned: len(in.IDs)}, nil
		})
	env.OnActivity(acts.SyncMembers, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ObjectsInput) (activities.WriteResult, error) {
			f.record("SyncMembers", in)
			if f.SyncMembers != nil {
				return f.SyncMembers(in)
			}
			return activities.WriteResult{}, nil
		})
	env.OnActivity(acts.SignalGroupsOfUsers, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.SignalInput) error {
			f.record("SignalGroupsOfUsers", in)
			return nil
		})
	env.OnActivity(acts.StartReadBack, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ReadPageInput) error {
			f.record("StartReadBack", in)
			return nil
		})
	env.OnActivity(acts.ReadTargetPage, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ReadPageInput) (activities.ReadPageResult, error) {
			f.record("ReadTargetPage", in)
			f.mu.Lock()
			defer f.mu.Unlock()
			pages := f.ReadPages[in.Kind]
			if len(pages) == 0 {
				return activities.ReadPageResult{}, nil
			}
			f.ReadPages[in.Kind] = pages[1:]
			return pages[0], nil
		})
	env.OnActivity(acts.ReadLinked, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.ReadLinkedInput) (activities.ReadLinkedResult, error) {
			f.record("ReadLinked", in)
			f.mu.Lock()
			defer f.mu.Unlock()
			pages := f.ReadLinked[in.Kind]
			if len(pages) == 0 {
				return activities.ReadLinkedResult{}, nil
			}
			f.ReadLinked[in.Kind] = pages[1:]
			return pages[0], nil
		})
	env.OnActivity(acts.HandleOrphans, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.OrphansInput) (activities.OrphansResult, error) {
			f.record("HandleOrphans", in)
			c := f.Orphans[in.Kind]
			if in.Delete {
				c.Deleted = c.Ours + c.Strangers
			}
			return activities.OrphansResult{Counts: c}, nil
		})
	env.OnActivity(acts.FinishReadBack, mock.Anything, mock.Anything).Maybe().Return(
		func(_ context.Context, in activities.FinishReadBackInput) error {
			f.record("FinishReadBack", in)
			f.mu.Lock()
			f.Finished = append(f.Finished, in)
			f.mu.Unlock()
			return nil
		})
}

// equal fails the test when got differs from want, showing both as JSON.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, asJSON(got), asJSON(want))
	}
}

func asJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// ids returns prefix01 … prefixNN.
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i+1)
	}
	return out
}
