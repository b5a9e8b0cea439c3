package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// Schedule upkeep: every enabled provider has exactly one Temporal Schedule,
// workflows.FullSyncScheduleID(installation, name), that starts its FullSync every
// FullSyncInterval.
//
// A disabled provider's schedule is deleted rather than paused: "disabled" and "removed"
// then look the same in Temporal (no schedule), nothing stale is left for an operator to
// wonder about, and re-enabling simply creates the schedule again, with an immediate full
// sync that catches up on whatever changed meanwhile. A full sync already running when its
// schedule is deleted runs to its end.
//
// The keeper touches the schedules of its own installation only, those under
// workflows.FullSyncSchedulePrefix(installation): one whose provider no longer exists is
// deleted; the schedules of other installations sharing the namespace, under their own
// prefixes, and every other schedule are left alone. A schedule of the form before
// installation ids, workflows.LegacyFullSyncScheduleID(name), is replaced (deleted, the
// installation's own created) when name is a provider of this installation's database,
// and left alone otherwise: it may be another installation's, not upgraded yet. While
// workers before installation ids poll the legacy schedule's task queue (a rolling
// upgrade), it is kept: they would create it again at once.

// DefaultScheduleKeeperInterval is how often a ScheduleKeeper reconciles by default.
const DefaultScheduleKeeperInterval = 30 * time.Second

// ScheduleOptions configure ReconcileSchedules. The zero value is ready to use.
type ScheduleOptions struct {
	// Installation is the installation whose schedules are kept. Empty means the store's
	// (store.Installation).
	Installation workflows.Installation
	// TaskQueue is the task queue of the full syncs the schedules start. Empty means
	// workflows.DefaultTaskQueue(Installation).
	TaskQueue string
	// Jitter returns the schedule jitter for a provider's full-sync interval, so that
	// providers with equal intervals do not all start at the same second. Nil means
	// DefaultJitter.
	Jitter func(interval time.Duration) time.Duration
	// NoInitialRun creates schedules without starting a full sync at once. By default a
	// new schedule (a new or re-enabled provider) starts one immediately rather than after
	// its first interval.
	NoInitialRun bool
	// DataConverter decodes the arguments of existing schedules, to tell whether they need
	// an update. Nil means converter.GetDefaultDataConverter(); set it to the client's data
	// converter when that one uses a payload codec.
	DataConverter converter.DataConverter
	// Logger receives one line per schedule created, updated or deleted. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultJitter is a tenth of the interval, at most five minutes.
func DefaultJitter(interval time.Duration) time.Duration {
	return min(interval/10, 5*time.Minute)
}

func (o ScheduleOptions) taskQueue() string {
	if o.TaskQueue == "" {
		return workflows.DefaultTaskQueue(o.Installation)
	}
	return o.TaskQueue
}

// withInstallation returns o with its Installation set, read from s when empty.
func (o ScheduleOptions) withInstallation(ctx context.Context, s *store.Store) (ScheduleOptions, error) {
	if o.Installation != "" {
		return o, nil
	}
	inst, err := s.Installation(ctx)
	if err != nil {
		return o, err
	}
	o.Installation, err = workflows.NewInstallation(inst.ID)
	return o, err
}

func (o ScheduleOptions) jitter(interval time.Duration) time.Duration {
	if o.Jitter == nil {
		return DefaultJitter(interval)
	}
	return o.Jitter(interval)
}

func (o ScheduleOptions) dataConverter() converter.DataConverter {
	if o.DataConverter == nil {
		return converter.GetDefaultDataConverter()
	}
	return o.DataConverter
}

func (o ScheduleOptions) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// ReconcileSchedules makes the installation's full-sync schedules match the providers in
// s: it creates the schedule of every enabled provider that lacks one, updates those whose
// interval, jitter, overlap policy or action differ from the provider's, and deletes the
// schedules of disabled providers and of providers that no longer exist. A paused schedule
// stays paused. It replaces the schedules its providers had before installation ids
// (deleting them) and touches no other installation's.
//
// It is idempotent, and safe to run from several workers at once: a schedule created
// concurrently by another worker is updated instead (temporal.ErrScheduleAlreadyRunning),
// and a schedule already deleted is not an error. It goes through every provider even when
// one fails, and returns the failures joined.
func ReconcileSchedules(ctx context.Context, c client.Client, s *store.Store, opts ScheduleOptions) error {
	opts, err := opts.withInstallation(ctx, s)
	if err != nil {
		return fmt.Errorf("worker: reconcile schedules: %w", err)
	}
	providers, err := s.Providers(ctx)
	if err != nil {
		return fmt.Errorf("worker: reconcile schedules: %w", err)
	}
	var errs []error
	enabled, known := map[string]bool{}, map[string]bool{}
	for _, p := range providers {
		known[p.Name] = true
		if p.Enabled {
			enabled[p.Name] = true
			if err := ensureSchedule(ctx, c.ScheduleClient(), p, opts); err != nil {
				errs = append(errs, fmt.Errorf("worker: schedule of provider %s: %w", p.Name, err))
			}
		}
	}
	// Delete the schedules of disabled providers by ID, whether or not the (eventually
	// consistent) schedule list shows them yet, and then every other orphan of this
	// installation the list shows, and the legacy schedules of its providers.
	unwanted, legacy := map[string]bool{}, map[string]bool{}
	for _, p := range providers {
		if !p.Enabled {
			unwanted[p.Name] = true
		}
	}
	own := workflows.FullSyncSchedulePrefix(opts.Installation)
	iter, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("worker: list schedules: %w", err))
	} else {
		for iter.HasNext() {
			entry, err := iter.Next()
			if err != nil {
				errs = append(errs, fmt.Errorf("worker: list schedules: %w", err))
				break
			}
			if name, ok := strings.CutPrefix(entry.ID, own); ok {
				if !enabled[name] {
					unwanted[name] = true
				}
			} else if known[legacyScheduleProvider(entry.ID)] {
				legacy[legacyScheduleProvider(entry.ID)] = true
			}
		}
	}
	for name := range unwanted {
		if err := removeSchedule(ctx, c.ScheduleClient(), s, name, opts); err != nil {
			errs = append(errs, fmt.Errorf("worker: schedule of provider %s: %w", name, err))
		}
	}
	for name := range legacy {
		if err := removeLegacySchedule(ctx, c, name, enabled[name], opts); err != nil {
			errs = append(errs, fmt.Errorf("worker: legacy schedule of provider %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// legacyScheduleProvider returns the provider whose schedule before installation ids has
// the ID id (workflows.LegacyFullSyncScheduleID), "" when id is of no such schedule.
func legacyScheduleProvider(id string) string {
	name, ok := strings.CutPrefix(id, workflows.LegacyFullSyncScheduleID(""))
	if !ok || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// desiredSchedule is what the provider's schedule must be.
func desiredSchedule(p store.Provider, opts ScheduleOptions) (client.ScheduleSpec, *client.ScheduleWorkflowAction, client.SchedulePolicies) {
	spec := client.ScheduleSpec{
		Intervals: []client.ScheduleIntervalSpec{{Every: p.FullSyncInterval}},
		Jitter:    opts.jitter(p.FullSyncInterval),
	}
	action := &client.ScheduleWorkflowAction{
		ID:        workflows.FullSyncWorkflowID(opts.Installation, p.Name),
		Workflow:  workflows.FullSyncWorkflow,
		Args:      []any{workflows.FullSyncInput{Provider: p.Name}},
		TaskQueue: opts.taskQueue(),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProviderAttribute.ValueSet(p.Name)),
		StaticSummary: workflows.FullSyncSummary(p.Name),
	}
	policy := client.SchedulePolicies{
		// Never two full syncs of one provider at once; a run that would overlap is
		// dropped, the next interval brings another.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		// After a Temporal outage, a run missed by more than one interval is superseded by
		// the next one anyway.
		CatchupWindow: p.FullSyncInterval,
	}
	return spec, action, policy
}

// ensureSchedule creates the provider's schedule, or updates it when it differs.
func ensureSchedule(ctx context.Context, sc client.ScheduleClient, p store.Provider, opts ScheduleOptions) error {
	id := workflows.FullSyncScheduleID(opts.Installation, p.Name)
	spec, action, policy := desiredSchedule(p, opts)
	log := opts.logger()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:                 id,
		Spec:               spec,
		Action:             action,
		Overlap:            policy.Overlap,
		CatchupWindow:      policy.CatchupWindow,
		TriggerImmediately: !opts.NoInitialRun,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProviderAttribute.ValueSet(p.Name)),
	})
	if err == nil {
		log.Info("worker: full-sync schedule created", "provider", p.Name, "schedule", id,
			"interval", p.FullSyncInterval, "jitter", spec.Jitter)
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create %s: %w", id, err)
	}
	updated := false
	err = sc.GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			cur := in.Description.Schedule
			if scheduleMatches(cur, spec, action, policy, opts.dataConverter()) {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			updated = true
			next := cur // keeps State: a schedule an operator paused stays paused
			next.Spec = &spec
			next.Action = action
			if cur.Policy != nil {
				policy.PauseOnFailure = cur.Policy.PauseOnFailure
			}
			next.Policy = &policy
			return &client.ScheduleUpdate{Schedule: &next}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if updated {
		log.Info("worker: full-sync schedule updated", "provider", p.Name, "schedule", id,
			"interval", p.FullSyncInterval, "jitter", spec.Jitter)
	}
	return nil
}

// scheduleMatches reports whether the existing schedule cur already has the desired spec,
// action and policies.
func scheduleMatches(cur client.Schedule, spec client.ScheduleSpec, action *client.ScheduleWorkflowAction,
	policy client.SchedulePolicies, dc converter.DataConverter) bool {
	s := cur.Spec
	if s == nil || len(s.Intervals) != 1 || s.Intervals[0] != spec.Intervals[0] || s.Jitter != spec.Jitter ||
		len(s.Calendars) != 0 || len(s.CronExpressions) != 0 || len(s.Skip) != 0 ||
		!s.StartAt.IsZero() || !s.EndAt.IsZero() || s.TimeZoneName != "" {
		return false
	}
	if cur.Policy == nil || cur.Policy.Overlap != policy.Overlap || cur.Policy.CatchupWindow != policy.CatchupWindow {
		return false
	}
	a, ok := cur.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.ID != action.ID || a.TaskQueue != action.TaskQueue || a.Workflow != action.Workflow ||
		a.WorkflowExecutionTimeout != 0 || a.WorkflowRunTimeout != 0 || len(a.Args) != 1 ||
		a.StaticSummary != action.StaticSummary {
		return false
	}
	payload, ok := a.Args[0].(*commonpb.Payload)
	if !ok {
		return false
	}
	var in workflows.FullSyncInput
	if err := dc.FromPayload(payload, &in); err != nil {
		return false
	}
	want := action.Args[0].(workflows.FullSyncInput)
	if in.Provider != want.Provider || in.AllowDeletions || in.Parallelism != 0 || in.State != nil {
		return false
	}
	got, _ := a.TypedSearchAttributes.GetKeyword(workflows.ProviderAttribute)
	wantSA, _ := action.TypedSearchAttributes.GetKeyword(workflows.ProviderAttribute)
	return got == wantSA
}

// removeSchedule deletes the schedule of provider name unless the provider is (again)
// enabled: the decision is re-read from the store so that a worker with a stale provider
// list never deletes the schedule another worker has just created. A schedule that is
// already gone is not an error.
func removeSchedule(ctx context.Context, sc client.ScheduleClient, s *store.Store, name string, opts ScheduleOptions) error {
	reason := "provider disabled"
	p, err := s.Provider(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		reason = "provider removed"
	case err != nil:
		return err
	case p.Enabled:
		return nil
	}
	id := workflows.FullSyncScheduleID(opts.Installation, name)
	deleted, err := deleteSchedule(ctx, sc, id)
	if deleted {
		opts.logger().Info("worker: full-sync schedule deleted", "provider", name, "schedule", id, "reason", reason)
	}
	return err
}

// removeLegacySchedule deletes the schedule the provider name of this installation had
// before installation ids; replaced says whether the provider is enabled, and has its own
// schedule now. It keeps the schedule while workers before installation ids poll its task
// queue: they are this installation's not upgraded yet (or another's that shares the
// queue), whose keepers would create it again.
func removeLegacySchedule(ctx context.Context, c client.Client, name string, replaced bool, opts ScheduleOptions) error {
	id := workflows.LegacyFullSyncScheduleID(name)
	desc, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe %s: %w", id, err)
	}
	if a, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction); ok && a.TaskQueue != "" {
		identities, err := pollerIdentities(ctx, c, a.TaskQueue)
		if err != nil {
			return err
		}
		old := 0
		for _, identity := range identities {
			if _, ok := WorkerInstallation(identity); !ok {
				old++
			}
		}
		if old > 0 {
			opts.logger().Info("worker: legacy full-sync schedule (before installation ids) kept while workers before "+
				"installation ids poll its task queue", "provider", name, "schedule", id, "task_queue", a.TaskQueue, "workers", old)
			return nil
		}
	}
	deleted, err := deleteSchedule(ctx, c.ScheduleClient(), id)
	if deleted {
		reason := "provider disabled"
		if replaced {
			reason = "replaced by " + workflows.FullSyncScheduleID(opts.Installation, name)
		}
		opts.logger().Info("worker: legacy full-sync schedule (before installation ids) deleted", "provider", name,
			"schedule", id, "reason", reason)
	}
	return err
}

// deleteSchedule deletes the schedule id and reports whether it did; one already gone is
// not an error.
func deleteSchedule(ctx context.Context, sc client.ScheduleClient, id string) (bool, error) {
	err := sc.GetHandle(ctx, id).Delete(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", id, err)
	}
	return true, nil
}

// ScheduleKeeper keeps the full-sync schedules reconciled: at start and then every
// Interval. Several workers may each run one.
type ScheduleKeeper struct {
	// Client is the Temporal client. Required.
	Client client.Client
	// Store holds the providers. Required.
	Store *store.Store
	// Options configure each reconciliation.
	Options ScheduleOptions
	// Interval is the time between reconciliations. Zero means
	// DefaultScheduleKeeperInterval.
	Interval time.Duration
}

// Run reconciles at once and then every Interval until ctx ends, then returns nil. A failed
// reconciliation is logged and retried at the next tick. It returns an error only when the
// keeper lacks its Client or Store.
func (k *ScheduleKeeper) Run(ctx context.Context) error {
	if k.Client == nil || k.Store == nil {
		return errors.New("worker: schedule keeper needs a Client and a Store")
	}
	tick := time.NewTicker(k.interval())
	defer tick.Stop()
	for {
		k.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Reconcile runs one reconciliation and reports whether it succeeded; a failure is logged
// (Run retries it at the next tick).
func (k *ScheduleKeeper) Reconcile(ctx context.Context) bool {
	err := ReconcileSchedules(ctx, k.Client, k.Store, k.Options)
	if err != nil && ctx.Err() == nil {
		k.Options.logger().Warn("worker: reconciling full-sync schedules failed; retrying",
			"error", err, "retry_in", k.interval())
	}
	return err == nil
}

func (k *ScheduleKeeper) interval() time.Duration {
	if k.Interval <= 0 {
		return DefaultScheduleKeeperInterval
	}
	return k.Interval
}
