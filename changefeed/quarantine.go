package changefeed

import (
	"context"

	"github.com/scimsync/scimsync/store"
)

// withoutQuarantined leaves out of a batch's providers those quarantined now
// (store/quarantine.go): most of their writes fail, so their changes are left to their
// full syncs, which run at the provider's cadence and write every object that differs
// from what was last written there (changed, deleted, out of scope, membership), and the
// first of which that succeeds ends the quarantine. The batch's rows are deleted as
// usual once the other providers' calls are accepted: nothing of them is lost for the
// quarantined provider, whose full sync reads the directory itself.
func (r *Relay) withoutQuarantined(ctx context.Context, providers []store.Provider) ([]store.Provider, error) {
	quarantined, err := r.Store.QuarantinedProviders(ctx)
	if err != nil || len(quarantined) == 0 {
		return providers, err
	}
	healthy := make([]store.Provider, 0, len(providers))
	for _, p := range providers {
		if quarantined[p.ID] {
			r.logger().Debug("changefeed: provider quarantined, its changes are left to its full syncs", "provider", p.Name)
			continue
		}
		healthy = append(healthy, p)
	}
	return healthy, nil
}
