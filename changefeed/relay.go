// Package changefeed relays the directory's change outbox (store.Change rows) to Temporal:
// every change becomes a SignalWithStart on the per-object sync workflow of each enabled
// provider (or, for an access-binding change, a trigger of the provider's full-sync
// schedule), and the outbox row is deleted only once Temporal has accepted every signal.
//
// Every worker runs a Relay. Rows are claimed with FOR UPDATE SKIP LOCKED, so several relays
// share the work without handing a change out twice; while Temporal is unreachable the rows
// stay in the outbox and the relay backs off and retries, so no change is lost. Delivery is
// at least once: a relay that dies after signalling but before its transaction commits
// leaves rows that are signalled again, which the ObjectSync workflow absorbs because a
// signal only means "look at the object again".
//
// A change that Temporal refuses permanently (see Permanent: an invalid argument such as a
// payload over the size limit, a namespace that does not exist or is being deleted) would
// fail its batch at every attempt. The relay parks it instead: in the transaction that
// deletes the rest of its batch, it moves the change to the dead-letter table with the
// refusal, where `starter status` shows it and `starter outbox retry|drop` deals with it.
// A transient failure (Unavailable, DeadlineExceeded, ResourceExhausted, a namespace
// failing over, anything not known to be permanent) still leaves the whole batch in the
// outbox, parking nothing.
//
// The package does no SCIM work and reads nothing from the directory but the outbox, the
// provider list and, once per batch, the names of the objects it signals, for the summary
// of the ObjectSyncs it starts (workflows.ObjectSyncSummary). Its logs and errors carry ids
// (provider names, object uuids, workflow IDs), never usernames, emails or secrets.
package changefeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// Defaults of the Relay's zero-valued settings.
const (
	DefaultPollInterval = time.Second
	DefaultBatchSize    = 100
	DefaultConcurrency  = 16
	DefaultCallTimeout  = 10 * time.Second
	DefaultMaxBackoff   = 10 * time.Second
	// minBackoff is the first wait after a failed batch; it doubles up to MaxBackoff.
	minBackoff = 200 * time.Millisecond
)

// Temporal is the part of a Temporal client the relay uses. A client.Client satisfies it;
// tests wrap one to count or fail calls.
type Temporal interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID string, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
	ScheduleClient() client.ScheduleClient
}

// Relay moves outbox rows to Temporal. Set its fields, then call Run; a Relay must not be
// copied or reconfigured once Run has started. Zero-valued settings take the defaults
// documented on each field.
type Relay struct {
	// Store holds the outbox and the providers. Required.
	Store *store.Store
	// Temporal receives the signals and schedule triggers. Required.
	Temporal Temporal
	// DatabaseURL, when set, is used for a dedicated LISTEN connection on
	// store.ChangesChannel so committed changes are relayed at once. Empty means poll only.
	DatabaseURL string
	// Logger receives the relay's logs; nil means slog.Default().
	Logger *slog.Logger
	// PollInterval is how often the outbox is read without a NOTIFY (NOTIFY is only a
	// hint: notifications are lost while the LISTEN connection is down). Zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// BatchSize is how many outbox rows one transaction claims. Zero means DefaultBatchSize.
	BatchSize int
	// Concurrency bounds the Temporal calls in flight for one batch. Zero means
	// DefaultConcurrency.
	Concurrency int
	// CallTimeout bounds each Temporal call. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// MaxBackoff caps the wait between attempts after a failed batch (it starts at 200 ms
	// and doubles). Zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Installation is the installation whose workflows the relay starts and whose
	// schedules it triggers. Empty means the Store's (store.Installation).
	Installation workflows.Installation
	// TaskQueue is the task queue of the workflows the relay starts. Empty means
	// workflows.DefaultTaskQueue(Installation); tests set their own to stay isolated.
	TaskQueue string
	// SummaryIDsOnly leaves names out of the summaries of the ObjectSyncs the relay starts:
	// they show the object id, and the relay reads no names (SCIMSYNC_SUMMARY_NAMES=false).
	SummaryIDsOnly bool

	instMu sync.Mutex
	inst   workflows.Installation

	changesRelayed     atomic.Int64
	changesParked      atomic.Int64
	signalsSent        atomic.Int64
	schedulesTriggered atomic.Int64
	batches            atomic.Int64
	errs               atomic.Int64
}

// Stats are the relay's counters since it was created, for metrics.
type Stats struct {
	// ChangesRelayed counts outbox rows handled and deleted.
	ChangesRelayed int64
	// ChangesParked counts outbox rows Temporal refused permanently, moved to the
	// dead-letter table.
	ChangesParked int64
	// SignalsSent counts SignalWithStart calls Temporal accepted (after coalescing).
	SignalsSent int64
	// SchedulesTriggered counts full-sync schedule triggers Temporal accepted.
	SchedulesTriggered int64
	// Batches counts transactions that relayed at least one row.
	Batches int64
	// Errors counts failed attempts; their rows stayed in the outbox for a retry.
	Errors int64
}

// Stats returns a snapshot of the relay's counters. It is safe to call at any time.
func (r *Relay) Stats() Stats {
	return Stats{
		ChangesRelayed:     r.changesRelayed.Load(),
		ChangesParked:      r.changesParked.Load(),
		SignalsSent:        r.signalsSent.Load(),
		SchedulesTriggered: r.schedulesTriggered.Load(),
		Batches:            r.batches.Load(),
		Errors:             r.errs.Load(),
	}
}

// OutboxLag returns how many changes wait in the outbox and the age of the oldest one,
// for the outbox-lag metric.
func (r *Relay) OutboxLag(ctx context.Context) (count int, oldest time.Duration, err error) {
	return r.Store.OutboxLag(ctx)
}

// Run relays changes until ctx ends, then returns nil. It reads the outbox at start, on
// every NOTIFY and every PollInterval, draining it batch by batch. A failed batch stays in
// the outbox and is retried after an exponential backoff; Run never gives up on its own. It
// returns an error only when the Relay lacks its Store or Temporal client.
func (r *Relay) Run(ctx context.Context) error {
	if r.Store == nil || r.Temporal == nil {
		return errors.New("changefeed: relay needs a Store and a Temporal client")
	}
	log := r.logger()
	var wake <-chan struct{}
	if r.DatabaseURL != "" {
		wake = listen(ctx, r.DatabaseURL, store.ChangesChannel, log)
	}
	poll := time.NewTicker(r.pollInterval())
	defer poll.Stop()
	log.Info("changefeed: relay started", "poll_interval", r.pollInterval(), "batch_size", r.batchSize(),
		"listen", r.DatabaseURL != "")

	failures := 0
	for {
		err := r.Drain(ctx)
		if ctx.Err() != nil {
			log.Info("changefeed: relay stopped")
			return nil
		}
		if err != nil {
			failures++
			delay := backoff(failures, r.maxBackoff())
			log.Warn("changefeed: relay failed, changes stay in the outbox", "error", err,
				"attempt", failures, "retry_in", delay.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				log.Info("changefeed: relay stopped")
				return nil
			case <-time.After(delay):
			}
			continue
		}
		if failures > 0 {
			log.Info("changefeed: relay recovered", "failed_attempts", failures)
			failures = 0
		}
		select {
		case <-ctx.Done():
			log.Info("changefeed: relay stopped")
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// Drain relays batches until the outbox holds no unclaimed row, or a batch fails; the
// failed batch stays in the outbox and its error is returned. A change Temporal refuses
// permanently does not fail its batch: it is parked. Run calls Drain; it is exported for
// tools and tests that relay once without a loop.
func (r *Relay) Drain(ctx context.Context) error {
	for {
		var refusals []store.Refusal
		relayed, parked, err := r.Store.RelayChanges(ctx, r.batchSize(),
			func(ctx context.Context, changes []store.Change) ([]store.Refusal, error) {
				var err error
				refusals, err = r.relayBatch(ctx, changes)
				return refusals, err
			})
		if err != nil {
			if ctx.Err() == nil {
				r.errs.Add(1)
			}
			return err
		}
		if n := relayed + parked; n > 0 {
			r.batches.Add(1)
			r.changesRelayed.Add(int64(relayed))
			r.changesParked.Add(int64(parked))
		}
		r.logParked(refusals)
		if relayed+parked < r.batchSize() {
			return nil
		}
	}
}

// logParked logs the changes a committed batch parked, once the park is certain.
func (r *Relay) logParked(refusals []store.Refusal) {
	seen := map[int64]bool{}
	for _, ref := range refusals {
		if seen[ref.ChangeID] {
			continue
		}
		seen[ref.ChangeID] = true
		r.logger().Error("changefeed: Temporal refused a change permanently; parked it, the rest of its batch is relayed "+
			"(starter status lists it; starter outbox retry|drop)", "change", ref.ChangeID, "provider", ref.Provider,
			"error", ref.Error)
	}
}

// signal is one coalesced SignalWithStart: an object at a provider, why it is signalled,
// and the changes it relays.
type signal struct {
	provider, kind, objectID string
	name                     string // for the summary; "" shows the object id
	reasons                  []string
	changes                  []int64
}

// plan is what one batch of changes asks of Temporal, coalesced: one signal per
// (provider, kind, object) and one trigger per provider schedule, in order of appearance,
// each with the ids of the changes it relays.
type plan struct {
	signals  []*signal
	byKey    map[signalKey]*signal
	triggers []string           // provider names
	trigger  map[string][]int64 // provider name → the changes its trigger relays
}

// signalKey names the ObjectSync a signal is for, within the installation.
type signalKey struct{ provider, kind, objectID string }

func (p *plan) addSignal(provider, kind, objectID, reason string, change int64) {
	key := signalKey{provider, kind, objectID}
	s, ok := p.byKey[key]
	if !ok {
		s = &signal{provider: provider, kind: kind, objectID: objectID}
		p.byKey[key] = s
		p.signals = append(p.signals, s)
	}
	if n := len(s.changes); n == 0 || s.changes[n-1] != change {
		s.changes = append(s.changes, change)
	}
	for _, r := range s.reasons {
		if r == reason {
			return
		}
	}
	s.reasons = append(s.reasons, reason)
}

func (p *plan) addTrigger(provider string, change int64) {
	changes, ok := p.trigger[provider]
	if !ok {
		p.triggers = append(p.triggers, provider)
	}
	if n := len(changes); n == 0 || changes[n-1] != change {
		p.trigger[provider] = append(changes, change)
	}
}

// planBatch maps changes to signals and triggers for the enabled providers:
// user → the user; group → the group; membership → the group and the user (the user's
// groups and perhaps its scope changed); binding → the full-sync schedule of every enabled
// provider attached to the application.
func planBatch(changes []store.Change, providers []store.Provider) *plan {
	p := &plan{byKey: map[signalKey]*signal{}, trigger: map[string][]int64{}}
	for _, c := range changes {
		reason := c.Kind + " " + c.Op
		for _, prov := range providers {
			if !prov.Enabled {
				continue
			}
			switch c.Kind {
			case store.ChangeUser:
				p.addSignal(prov.Name, object.User, c.ObjectID, reason, c.ID)
			case store.ChangeGroup:
				p.addSignal(prov.Name, object.Group, c.ObjectID, reason, c.ID)
			case store.ChangeMembership:
				p.addSignal(prov.Name, object.Group, c.ObjectID, reason, c.ID)
				if c.RelatedID != nil {
					p.addSignal(prov.Name, object.User, *c.RelatedID, reason, c.ID)
				}
			case store.ChangeBinding:
				if prov.ApplicationID != nil && *prov.ApplicationID == c.ObjectID {
					p.addTrigger(prov.Name, c.ID)
				}
			}
		}
	}
	return p
}

// relayBatch is the RelayChanges handler. It returns nil error only when Temporal accepted
// every signal and trigger of the batch or refused it permanently, so that a transient
// failure leaves all the batch's rows in the outbox; the refusals name the changes each
// permanently refused call was relaying, to be parked while the others are deleted.
func (r *Relay) relayBatch(ctx context.Context, changes []store.Change) ([]store.Refusal, error) {
	inst, err := r.installation(ctx)
	if err != nil {
		return nil, err
	}
	providers, err := r.Store.Providers(ctx)
	if err != nil {
		return nil, err
	}
	if providers, err = r.withoutQuarantined(ctx, providers); err != nil {
		return nil, err
	}
	p := planBatch(changes, providers)
	log := r.logger()
	r.nameSignals(ctx, p.signals)
	log.Debug("changefeed: relaying batch", "changes", len(changes), "first_change", changes[0].ID,
		"signals", len(p.signals), "triggers", len(p.triggers))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		failed   int
		refused  = map[int]*store.Refusal{} // call index → its refusal, for a stable order
		sem      = make(chan struct{}, r.concurrency())
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failed++
		if firstErr == nil {
			firstErr = err
			cancel() // the batch will be retried as a whole; stop spending calls on it
		}
	}
	refuse := func(i int, provider string, err error) {
		mu.Lock()
		defer mu.Unlock()
		refused[i] = &store.Refusal{Provider: provider, Error: refusalText(err)}
	}
	calls := 0
	run := func(provider string, f func() error) {
		i := calls
		calls++
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := f()
			switch {
			case err == nil:
			case Permanent(err):
				refuse(i, provider, err) // the rest of the batch goes on
			default:
				fail(err)
			}
		}()
	}
	for _, s := range p.signals {
		run(s.provider, func() error { return r.sendSignal(ctx, inst, s) })
	}
	for _, name := range p.triggers {
		run(name, func() error { return r.triggerFullSync(ctx, inst, name) })
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("changefeed: batch of %d changes from id %d: %d calls failed, first: %w",
			len(changes), changes[0].ID, failed, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Every change a refused call relays is parked, with the first refusal it met; calls are
	// indexed signals first, then triggers, in plan order.
	var refusals []store.Refusal
	for i := range calls {
		ref := refused[i]
		if ref == nil {
			continue
		}
		var ids []int64
		if i < len(p.signals) {
			ids = p.signals[i].changes
		} else {
			ids = p.trigger[p.triggers[i-len(p.signals)]]
		}
		for _, id := range ids {
			refusals = append(refusals, store.Refusal{ChangeID: id, Provider: ref.Provider, Error: ref.Error})
		}
	}
	return refusals, nil
}

// Permanent reports whether Temporal refused a call for good, so that trying it again can
// only fail the same way: an invalid argument (which is how Temporal refuses a payload over
// the namespace's blob size limit), a namespace that does not exist, or one in a state that
// refuses work (being deleted). Anything else is transient and retried, in particular
// Unavailable, DeadlineExceeded, ResourceExhausted, Canceled, a namespace not active here
// or unavailable (a failover), a permission denied (credentials can be fixed), and errors
// not from Temporal's service at all.
func Permanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		invalid    *serviceerror.InvalidArgument
		nsNotFound *serviceerror.NamespaceNotFound
		nsInvalid  *serviceerror.NamespaceInvalidState
	)
	return errors.As(err, &invalid) || errors.As(err, &nsNotFound) || errors.As(err, &nsInvalid)
}

// maxRefusalText bounds a refusal's text as stored: enough for Temporal's message and the
// workflow or schedule ID it names.
const maxRefusalText = 1000

// refusalText is how a refusal is stored: the call (its workflow or schedule ID), the kind
// of refusal and Temporal's message. The relay sends Temporal ids only (workflow IDs,
// provider names, object uuids, reasons such as "user update"), so Temporal's answer
// echoes no personal data.
func refusalText(err error) string {
	kind := "refused"
	var (
		invalid    *serviceerror.InvalidArgument
		nsNotFound *serviceerror.NamespaceNotFound
		nsInvalid  *serviceerror.NamespaceInvalidState
	)
	switch {
	case errors.As(err, &invalid):
		kind = "InvalidArgument"
	case errors.As(err, &nsNotFound):
		kind = "NamespaceNotFound"
	case errors.As(err, &nsInvalid):
		kind = "NamespaceInvalidState"
	}
	text := fmt.Sprintf("%s (%s)", err.Error(), kind)
	if len(text) > maxRefusalText {
		text = strings.ToValidUTF8(text[:maxRefusalText], "") + "…"
	}
	return text
}

// sendSignal signals the object's ObjectSync workflow, starting it when none runs.
func (r *Relay) sendSignal(ctx context.Context, inst workflows.Installation, s *signal) error {
	ctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	defer cancel()
	// The start options (ID, task queue, USE_EXISTING, search attributes) come from the
	// workflows contract, shared with every other caller that signals an ObjectSync.
	opts := workflows.ObjectSyncStartOptions(r.TaskQueue, inst, s.provider, s.kind, s.objectID)
	if s.name != "" {
		opts.StaticSummary = workflows.ObjectSyncSummary(s.provider, s.kind, s.name)
	}
	id := opts.ID
	_, err := r.Temporal.SignalWithStartWorkflow(ctx, id, workflows.SignalObjectChanged,
		workflows.ObjectChanged{Reason: strings.Join(s.reasons, ", ")}, opts,
		workflows.ObjectSyncWorkflow,
		workflows.ObjectSyncInput{Provider: s.provider, Kind: s.kind, ObjectID: s.objectID})
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	r.signalsSent.Add(1)
	return nil
}

// nameSignals sets the name of every signal's object, read in one query for the whole
// batch, unless SummaryIDsOnly. A name only labels the workflow a signal may start, so a
// failed read costs no delivery: the signals go out with the object ids in their summaries.
func (r *Relay) nameSignals(ctx context.Context, signals []*signal) {
	if r.SummaryIDsOnly || len(signals) == 0 {
		return
	}
	var users, groups []string
	seen := map[signalKey]bool{}
	for _, s := range signals {
		key := signalKey{kind: s.kind, objectID: s.objectID}
		if seen[key] {
			continue // the same object at several providers
		}
		seen[key] = true
		if s.kind == object.Group {
			groups = append(groups, s.objectID)
		} else {
			users = append(users, s.objectID)
		}
	}
	names, err := r.Store.NamesByID(ctx, users, groups)
	if err != nil {
		r.logger().Warn("changefeed: could not read the names for the workflow summaries; they show object ids",
			"error", err)
		return
	}
	for _, s := range signals {
		s.name = names.Of(s.kind, s.objectID)
	}
}

// triggerFullSync starts a full sync of the provider now through its schedule, so it never
// overlaps a running one: BUFFER_ONE queues it behind a full sync already running, which may
// have read the scope before the change. A missing schedule is not an error: the schedule
// keeper creates it, and a new schedule starts with a full sync.
func (r *Relay) triggerFullSync(ctx context.Context, inst workflows.Installation, provider string) error {
	ctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	defer cancel()
	id := workflows.FullSyncScheduleID(inst, provider)
	err := r.Temporal.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{
		Overlap: enums.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	})
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		r.logger().Warn("changefeed: access binding changed but the provider has no full-sync schedule yet; "+
			"its first full sync will apply the change", "provider", provider, "schedule", id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("trigger schedule %s: %w", id, err)
	}
	r.schedulesTriggered.Add(1)
	return nil
}

// backoff returns the wait before attempt n+1 after n consecutive failures: 200 ms doubling
// up to max, with ±20 % jitter so that relays on several workers do not retry in step.
func backoff(n int, max time.Duration) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (r *Relay) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Relay) pollInterval() time.Duration { return orDefault(r.PollInterval, DefaultPollInterval) }
func (r *Relay) callTimeout() time.Duration  { return orDefault(r.CallTimeout, DefaultCallTimeout) }
func (r *Relay) maxBackoff() time.Duration   { return orDefault(r.MaxBackoff, DefaultMaxBackoff) }
func (r *Relay) batchSize() int              { return orDefault(r.BatchSize, DefaultBatchSize) }
func (r *Relay) concurrency() int            { return orDefault(r.Concurrency, DefaultConcurrency) }

// installation returns Installation, else the store's, read once.
func (r *Relay) installation(ctx context.Context) (workflows.Installation, error) {
	if r.Installation != "" {
		return r.Installation, nil
	}
	r.instMu.Lock()
	defer r.instMu.Unlock()
	if r.inst == "" {
		inst, err := r.Store.Installation(ctx)
		if err != nil {
			return "", err
		}
		if r.inst, err = workflows.NewInstallation(inst.ID); err != nil {
			return "", err
		}
	}
	return r.inst, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
