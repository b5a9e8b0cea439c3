package worker_test

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/worker"
	"github.com/scimsync/scimsync/workflows"
)

// registrations records what Register gives a Temporal worker. The SDK's Registry has more
// methods; Register must call none of them (the embedded nil interface would panic).
type registrations struct {
	sdkworker.Registry
	workflows  []string
	activities map[string]string // name → the method registered under it
}

func (r *registrations) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	r.workflows = append(r.workflows, o.Name)
}

func (r *registrations) RegisterActivityWithOptions(fn any, o activity.RegisterOptions) {
	name := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name() // ....(*Activities).WriteObjects-fm
	name = strings.TrimSuffix(name[strings.LastIndex(name, ".")+1:], "-fm")
	if _, dup := r.activities[o.Name]; dup {
		panic("activity " + o.Name + " registered twice")
	}
	r.activities[o.Name] = name
}

// TestRegisterRegistersEveryActivityByName: every exported method of activities.Activities
// is registered, each once, under its name in the contract; so is every workflow. An
// activity method added without its name in workflows.ActivityMethods fails here, not at
// run time with "activity not registered".
func TestRegisterRegistersEveryActivityByName(t *testing.T) {
	r := &registrations{activities: map[string]string{}}
	worker.Register(r, &activities.Activities{})

	if want := []string{workflows.ObjectSyncWorkflow, workflows.FullSyncWorkflow, workflows.SyncBatchWorkflow}; !slices.Equal(r.workflows, want) {
		t.Errorf("workflows registered %v, want %v", r.workflows, want)
	}
	typ := reflect.TypeFor[*activities.Activities]()
	var methods, registered []string
	for i := range typ.NumMethod() {
		methods = append(methods, typ.Method(i).Name)
	}
	for _, method := range r.activities {
		registered = append(registered, method)
	}
	slices.Sort(registered)
	if !slices.Equal(registered, methods) {
		t.Errorf("registered activity methods %v, want every exported method of activities.Activities %v", registered, methods)
	}
}
