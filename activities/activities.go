package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/pacing"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// ObjectSignaler asks for the per-object sync of an object to run (SignalWithStart on its
// ObjectSync workflow). name is the object's name for the summary of an ObjectSync it
// starts ("" where unknown). The worker wires the change feed's implementation.
type ObjectSignaler interface {
	SignalObjectSync(ctx context.Context, provider, kind, objectID, name, reason string) error
}

// Activities holds the dependencies of every activity; register a *Activities with the
// worker. Fields must be set before the worker starts and not changed afterwards.
type Activities struct {
	// Store is the scimsync database. Required.
	Store *store.Store
	// Mapper runs property mappings; its Secret is the installation secret. Required.
	Mapper *mapping.Engine
	// Signaler starts per-object syncs of groups when one of their users is linked. nil:
	// those groups wait for their own next change or the next full sync.
	Signaler ObjectSignaler
	// HTTPClient, when set, is used for SCIM requests of providers that verify TLS (tests
	// use it to trust their own certificates).
	HTTPClient *http.Client
	// ServiceConfigTTL is how long a discovered ServiceProviderConfig is used; 0 means 1 h.
	ServiceConfigTTL time.Duration
	// WriteConcurrency bounds the SCIM requests one activity has in flight; 0 means 8.
	WriteConcurrency int
	// RequestTimeout bounds each SCIM request; 0 means the scim package's default.
	RequestTimeout time.Duration
	// OnRequest, when set, sees every SCIM request (provider name, method, path, status,
	// duration), for metrics and request logs.
	OnRequest func(provider string, info scim.RequestInfo)
	// OnObjects, when set, counts objects by outcome: created, updated, unchanged, skipped,
	// failed, deprovisioned.
	OnObjects func(provider, kind, action string, n int)
	// Pacing paces every SCIM request to each provider, with every other worker of the
	// installation. nil: a registry of its own on Store, which learns of other workers'
	// pauses at its exchanges with the shared state rather than by notification.
	Pacing *pacing.Registry
	// DryRun runs every provider in dry run: GETs are sent, writes are recorded with what
	// they would change, nothing is stored of them (starter plan).
	DryRun bool

	targets    sync.Map // provider id → *target
	health     targetHealth
	programs   sync.Map // mapping id + updated_at → *mapping.Program
	pacingOnce sync.Once
}

// pacers returns the pacing registry, creating one on Store when none was given.
func (a *Activities) pacers() *pacing.Registry {
	a.pacingOnce.Do(func() {
		if a.Pacing == nil {
			a.Pacing = pacing.NewRegistry(a.Store, nil)
		}
	})
	return a.Pacing
}

func (a *Activities) ttl() time.Duration {
	if a.ServiceConfigTTL > 0 {
		return a.ServiceConfigTTL
	}
	return time.Hour
}

func (a *Activities) concurrency() int {
	if a.WriteConcurrency > 0 {
		return a.WriteConcurrency
	}
	return 8
}

// LoadProvider returns the non-secret configuration workflows need. A provider that does
// not exist is a non-retryable ConfigError.
func (a *Activities) LoadProvider(ctx context.Context, in ProviderInput) (ProviderInfo, error) {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return ProviderInfo{}, err
	}
	due, err := a.readBackDue(ctx, p)
	if err != nil {
		return ProviderInfo{}, err
	}
	return ProviderInfo{
		Name: p.Name, Enabled: p.Enabled, PageSize: p.PageSize, DryRun: p.DryRun,
		DeprovisionAction: p.DeprovisionAction, DeprovisionThreshold: p.DeprovisionThreshold,
		ReadBackDue: due, Orphans: p.Orphans,
	}, nil
}

func (a *Activities) provider(ctx context.Context, name string) (store.Provider, error) {
	p, err := a.Store.Provider(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Provider{}, nonRetryable(ErrTypeConfig, fmt.Errorf("provider %q does not exist", name))
	}
	if err != nil {
		return store.Provider{}, err
	}
	p.DryRun = p.DryRun || a.DryRun
	return p, nil
}

// ListStale pages through the ids of linked objects that are deleted or out of scope.
func (a *Activities) ListStale(ctx context.Context, in ListInput) (IDList, error) {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return IDList{}, err
	}
	ids, err := a.Store.StaleLinkIDs(ctx, p.ID, in.Kind, in.After, in.Limit)
	return IDList{IDs: ids}, err
}

// CountStale counts the provider's linked objects that are deleted or out of scope, and
// the deactivated users whose deletion is due.
func (a *Activities) CountStale(ctx context.Context, in ProviderInput) (StaleCount, error) {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return StaleCount{}, err
	}
	users, groups, err := a.Store.CountStaleLinks(ctx, p.ID)
	if err != nil {
		return StaleCount{}, err
	}
	due, err := a.Store.CountDueDeletions(ctx, p.ID)
	return StaleCount{Users: users, Groups: groups, Due: due}, err
}

// SignalGroupsOfUsers signals the per-object syncs of the groups the users (in.IDs) are
// direct members of, so that the groups' members include users that just got linked.
func (a *Activities) SignalGroupsOfUsers(ctx context.Context, in SignalInput) error {
	if a.Signaler == nil {
		return nil
	}
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return err
	}
	return a.signalGroupsOf(ctx, p, in.IDs, in.Reason)
}

// signalGroupsOf signals the syncs of the in-scope groups the users are direct members of.
func (a *Activities) signalGroupsOf(ctx context.Context, p store.Provider, userIDs []string, reason string) error {
	if a.Signaler == nil || len(userIDs) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var signal []string
	for _, userID := range userIDs {
		groups, err := a.Store.GroupIDsOfUser(ctx, userID)
		if err != nil {
			return err
		}
		inScope, err := a.Store.GroupsInScope(ctx, p.ID, groups)
		if err != nil {
			return err
		}
		for _, g := range inScope {
			if !seen[g] {
				seen[g] = true
				signal = append(signal, g)
			}
		}
	}
	// The groups' names label the ObjectSyncs the signals may start; one query for all.
	names, err := a.Store.NamesByID(ctx, nil, signal)
	if err != nil {
		return err
	}
	for _, g := range signal {
		if err := a.Signaler.SignalObjectSync(ctx, p.Name, object.Group, g, names.Of(object.Group, g), reason); err != nil {
			return fmt.Errorf("signal group %s: %w", g, err)
		}
	}
	return nil
}

// logger returns the activity's logger (or the default one outside an activity, in tests).
func logger(ctx context.Context) log.Logger {
	if activity.IsActivity(ctx) {
		return activity.GetLogger(ctx)
	}
	return log.NewStructuredLogger(slog.Default())
}

// observe reports object outcomes to OnObjects.
func (a *Activities) observe(provider, kind string, counts map[string]int) {
	if a.OnObjects == nil {
		return
	}
	for action, n := range counts {
		a.OnObjects(provider, kind, action, n)
	}
}
